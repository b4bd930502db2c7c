/*
 * pool_hold.h - holding a pool's workers busy: a task that keeps its worker
 * until a gate opens, for the tests that need every worker of a pool
 * occupied (test_pool.c, test_parallel.c).
 */
#ifndef CONC_TEST_POOL_HOLD_H
#define CONC_TEST_POOL_HOLD_H

#include <stdatomic.h>

#include "conc/pool.h"

extern atomic_int conc_test_hold_gate; /* set: the holding tasks return */
extern atomic_ulong conc_test_hold_in; /* holding tasks that have started */

/* A task: counts itself in conc_test_hold_in, then holds its worker until
 * conc_test_hold_gate is set. */
void conc_test_hold_task(void *arg);

/* Close the gate and occupy one worker of p: returns once the holding task
 * runs.  Set conc_test_hold_gate to let it go. */
void conc_test_hold_one_worker(conc_pool *p);

#endif
