/*
 * stack_internal.h - hooks into the stack (src/stack/stack.c) for the
 * tests and the bench binaries only; not installed, not part of the API.
 */
#ifndef CONC_STACK_INTERNAL_H
#define CONC_STACK_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>

#include "conc/stack.h"

/* Threads asleep (or about to sleep) in a blocking pop right now. */
unsigned conc__stack_sleepers(conc_stack *s);

/* The stack's elimination layer: switch it off/on (on by default), and
 * count the push/pop pairs it has matched so far.  The count is kept only
 * in builds with the fault hooks (-Dfault_hooks=true, CONC_FAULT_HOOKS:
 * every test build): its counter would sit on the slot's line, which every
 * offer and take writes.  Without the hooks conc__stack_eliminated returns
 * 0 (bench_stack's "matched" column then reads 0). */
void conc__stack_set_elimination(conc_stack *s, bool on);
uint64_t conc__stack_eliminated(conc_stack *s);

/* The elimination protocol alone, for tests.  offer: a push that only
 * offers item in a slot and waits up to `wait` pause rounds; 1 if a pop
 * took it, 0 if not (withdrawn, slot busy or sealed), ENOMEM.  take: a pop
 * that only looks in the slots.  offers_waiting: slots holding an offer. */
int conc__stack_offer(conc_stack *s, void *item, unsigned wait);
bool conc__stack_take(conc_stack *s, void **item);
unsigned conc__stack_offers_waiting(conc_stack *s);

/* Nodes popped from s waiting in s for their batch retire (a stack on a
 * private domain); no pop of s may run meanwhile. */
unsigned conc__stack_pending(conc_stack *s);

/* Free the calling thread's cached stack nodes and the shared depot, so
 * that the next push has to allocate (failure-injection tests). */
void conc__stack_trim_caches(void);

#endif
