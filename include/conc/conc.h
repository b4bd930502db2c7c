/*
 * conc/conc.h - the whole of libconc in one include.
 *
 * Chaos mode: run a program's tests with CONC_CHAOS=1 in the environment
 * and libconc shakes its schedules, reclaims eagerly and poisons the memory
 * it frees, so that the program's own use-after-free and ordering bugs
 * surface (see conc_chaos_enabled in conc/cpu.h).
 *
 * NULL arguments, the same rule in every header: a function that returns
 * int returns EINVAL for a NULL object (queue, stack, pool, epoch domain,
 * scope, thread handle) or a NULL pointer it needs, having changed
 * nothing; a function that returns void does nothing; a query answers as
 * for an empty object (try_pop false, is_empty true, counts 0,
 * conc_epoch_is_pinned false).  No function that returns a pointer takes
 * an argument.  Where NULL means something else it says so (a NULL pool
 * in conc/parallel.h is the global pool, a NULL drop or handle is
 * allowed); items are never checked (NULL is an item like any other).
 */
#ifndef CONC_CONC_H
#define CONC_CONC_H

#include "conc/version.h"
#include "conc/attr.h"
#include "conc/cpu.h"
#include "conc/epoch.h"
#include "conc/queue.h"
#include "conc/stack.h"
#include "conc/chan.h"
#include "conc/pool.h"
#include "conc/scope.h"
#include "conc/parallel.h"
#include "conc/algo.h"

#endif
