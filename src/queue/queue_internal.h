/*
 * queue_internal.h - hooks into the queue (src/queue/queue.c) for the
 * tests and the bench binaries only; not installed, not part of the API.
 */
#ifndef CONC_QUEUE_INTERNAL_H
#define CONC_QUEUE_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>

#include "conc/queue.h"

/* Threads asleep (or about to sleep) in a blocking pop right now. */
unsigned conc__queue_sleepers(conc_queue *q);

/* Contention pacing (queue.c) on or off, for every queue of the process:
 * the bench compares both in one run.  On by default. */
void conc__queue_set_pacing(bool on);

/* Items per queue segment (a push past a full segment allocates). */
unsigned conc__queue_segment_slots(void);

/* The slot words the queue keeps for itself (the burned-slot mark and the
 * escape), for the test that pushes every value around them. */
void conc__queue_reserved_words(uintptr_t out[2]);

#endif
