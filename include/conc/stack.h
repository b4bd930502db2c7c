/*
 * conc/stack.h - LIFO stack (Treiber), lock-free, with an elimination
 * layer, blocking pop and close.
 *
 * Any number of threads may push and pop at once; items are any void *
 * (NULL included) and are never dereferenced.  Nodes come from per-thread
 * caches and return to them through the stack's epoch domain after a grace
 * period (which is also what makes the top-pointer CAS safe from ABA); under
 * contention a push and a pop that meet in the elimination array trade the
 * item directly instead of both fighting over the top pointer.
 * Memory: the nodes of live items, the caches (bounded) and a few
 * partly used node slabs; threads that push and exit hand their unused
 * nodes and the rest of their slab on to the next thread, so memory does
 * not grow with the number of threads that ever pushed.
 *
 *   conc_stack *s;  conc_stack_create(&s);
 *   conc_stack_push(s, obj);   ...   void *o; if (conc_stack_try_pop(s, &o)) use(o);
 *
 * Concurrency: every call may run concurrently with every other, except
 * conc_stack_destroy (nothing else on s may run during or after it).
 * A push that overlaps close may succeed or fail with EPIPE; a push that
 * starts after close has returned always fails, and a pop reports EPIPE
 * only when no item of a successful push is left.
 *
 * Debug-checks builds (libconc configured with -Ddebug_checks=true: a
 * debugging aid; in other builds these misuses are undefined): a stack used
 * after conc_stack_destroy - while its memory is among the last 64 destroyed
 * objects, which such a build keeps allocated - makes the calls that
 * return int fail with EINVAL, and the others (try_pop, close, is_empty, a
 * second destroy) print one line naming the call and the misuse to stderr
 * and abort; so does a destroy while a thread is blocked in a pop of s.
 * A stack counts as a user of its epoch domain there: destroying the domain
 * first returns EBUSY.
 */
#ifndef CONC_STACK_H
#define CONC_STACK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "conc/attr.h"
#include "conc/epoch.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct conc_stack conc_stack;

/*
 * conc_stack_create - a new empty stack that reclaims memory through
 * conc_epoch_global().
 *
 * Thread safety: any thread.  Progress: blocking (allocates).
 * Returns: 0 and *out set; EINVAL (out NULL); ENOMEM (*out untouched).
 */
CONC_NODISCARD int conc_stack_create(conc_stack **out);

/*
 * conc_stack_create_in - a new empty stack that reclaims memory through the
 * epoch domain d, which must outlive the stack (destroy the stack first,
 * then the domain).
 * Popped nodes are retired into d in batches: up to 64 per popping thread
 * wait in the stack for their batch, and destroy takes back those left.
 *
 * Thread safety: any thread.  Progress: blocking (allocates).
 * Returns: 0; EINVAL (out or d NULL, or d destroyed in a debug-checks
 *   build); ENOMEM (*out untouched).
 */
CONC_NODISCARD int conc_stack_create_in(conc_stack **out, conc_epoch *d);

/*
 * conc_stack_destroy - call drop(item) on every item still on the stack, from
 * the top down (when drop is not NULL), and free the stack.  Nodes still
 * waiting in the epoch domain return to the node caches when their grace
 * period ends.
 *
 * Thread safety: no other call on s may run concurrently or afterwards.
 * Progress: blocking.  s NULL: nothing happens.
 */
void conc_stack_destroy(conc_stack *s, void (*drop)(void *item));

/*
 * conc_stack_push - put item on the top of s.
 *
 * Thread safety: any number of threads may push and pop concurrently.
 * Ordering: everything the caller wrote before the push happens-before
 *   what the thread whose pop returns this item does after the pop.
 * Progress: lock-free; wakes one sleeping pop, at no cost when none sleeps.
 * Returns: 0; ENOMEM (no node could be had: nothing was pushed, item is
 *   still yours); EPIPE (s is closed; nothing was pushed); EINVAL (s NULL, or
 *   destroyed in a debug-checks build; nothing was pushed).
 */
int conc_stack_push(conc_stack *s, void *item);

/*
 * conc_stack_push_n - put items[0..n) on s as one batch: one chain that
 *   goes on with one CAS, items[n-1] on top, so pops take them back last
 *   first, and no other push lands between them.
 *
 * Thread safety: as conc_stack_push.  Ordering: as conc_stack_push, for
 *   each item (all n are published by the same step).
 * Progress: lock-free; wakes the sleeping pops (one when n is 1), at no
 *   cost when none sleeps.
 * Returns: 0 (n 0: at once, closed or not); ENOMEM (not enough nodes:
 *   nothing was pushed); EPIPE (s is closed; nothing was pushed); EINVAL (s
 *   NULL, items NULL with n > 0, or s destroyed in a debug-checks build;
 *   nothing was pushed).
 */
int conc_stack_push_n(conc_stack *s, void *const *items, size_t n);

/*
 * conc_stack_try_pop - take the item on the top of s, if there is one.
 *
 * Thread safety: any thread.  Ordering: see conc_stack_push.
 * Progress: lock-free.
 * Returns: true and *item set; false when s was empty (*item untouched),
 *   and when s or item is NULL (nothing taken).
 */
CONC_NODISCARD bool conc_stack_try_pop(conc_stack *s, void **item);

/*
 * conc_stack_try_pop_n - take up to max items from the top of s, top
 *   first, into items[0..max), with one CAS of top for the whole run.
 *
 * Thread safety: any thread.  Ordering: as conc_stack_push, for each item;
 *   the run is taken in one step (no other pop takes an item between them).
 * Progress: lock-free.
 * Returns: how many were taken (0 when s was empty, and when s or items is
 *   NULL or max is 0; nothing taken).
 */
CONC_NODISCARD size_t conc_stack_try_pop_n(conc_stack *s, void **items, size_t max);

/*
 * conc_stack_pop - take the item on the top of s, waiting for one.
 * Spins briefly, then sleeps in the kernel (not pinned, not spinning) until
 * a push or close wakes it.
 *
 * Thread safety: any thread.  Ordering: see conc_stack_push.
 * Progress: blocking while s is empty.
 * Returns: 0 and *item set; EPIPE when s is closed and empty; EINVAL
 *   (s or item NULL, or s destroyed in a debug-checks build; nothing
 *   taken).
 */
CONC_NODISCARD int conc_stack_pop(conc_stack *s, void **item);

/*
 * conc_stack_pop_timeout - conc_stack_pop that gives up after timeout_ns
 * (relative, CLOCK_MONOTONIC).  0 makes it a try; huge values (up to
 * UINT64_MAX) simply wait long.
 *
 * Thread safety: any thread.  Ordering: see conc_stack_push.
 * Progress: blocking while s is empty, for at most timeout_ns.
 * Returns: 0 and *item set; ETIMEDOUT (*item untouched); EPIPE when s is
 *   closed and empty (at once, whatever the timeout); EINVAL (s or item
 *   NULL, or s destroyed in a debug-checks build; nothing taken).
 */
CONC_NODISCARD int conc_stack_pop_timeout(conc_stack *s, void **item, uint64_t timeout_ns);

/*
 * conc_stack_close - refuse further pushes and wake every sleeping pop.
 * Pops still return what is left, then EPIPE.  Idempotent.  s NULL:
 * nothing happens.
 *
 * Thread safety: any thread.  Progress: lock-free (plus the wake-up).
 */
void conc_stack_close(conc_stack *s);

/*
 * conc_stack_is_empty - whether s held no item at some moment during the
 * call (a snapshot: concurrent pushes and pops may change it at once).
 *
 * Thread safety: any thread.  Progress: lock-free.
 * Returns: true when s held no item (as above); true for s NULL.
 */
bool conc_stack_is_empty(conc_stack *s);

#ifdef __cplusplus
}
#endif

#endif
