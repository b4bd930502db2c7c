/*
 * conc/queue.h - unbounded MPMC FIFO queue, lock-free, with blocking pop
 * and close.
 *
 * Any number of threads may push and pop at once; items are any void *
 * value, NULL and small integers included, and are never dereferenced (no
 * value is reserved: the three slot states that share a word with items
 * 0, 1 and 2 send those to a side byte).
 * The queue is a Michael-Scott linked list whose nodes are arrays of slots
 * claimed with fetch-and-add (the FAAArrayQueue of Ramalhete and Correia):
 * in the common case a push is a fetch-and-add and a compare-and-swap of
 * the slot word from empty, and a pop a fetch-and-add and a load of it
 * (an exchange only when the push is late), segments
 * recycled through the queue's epoch domain, so steady-state traffic does
 * not call malloc or free.
 *
 *   conc_queue *q;  conc_queue_create(&q);
 *   conc_queue_push(q, job);   ...   void *j; if (conc_queue_pop(q, &j) == 0) run(j);
 *
 * Concurrency: every call may run concurrently with every other, except
 * conc_queue_destroy (nothing else on q may run during or after it).
 * close may overlap pushes: a push that overlaps close may succeed or fail
 * with EPIPE; a push that starts after close has returned always fails, and
 * a pop reports EPIPE only when no item of a successful push is left.
 *
 * Debug-checks builds (libconc configured with -Ddebug_checks=true: a
 * debugging aid; in other builds these misuses are undefined): a queue used
 * after conc_queue_destroy - while its memory is among the last 64 destroyed
 * objects, which such a build keeps allocated - makes the calls that
 * return int fail with EINVAL, and the others (try_pop, close, is_empty, a
 * second destroy) print one line naming the call and the misuse to stderr
 * and abort; so does a destroy while a thread is blocked in a pop of q.
 * A queue counts as a user of its epoch domain there: destroying the domain
 * first returns EBUSY.
 */
#ifndef CONC_QUEUE_H
#define CONC_QUEUE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "conc/attr.h"
#include "conc/epoch.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct conc_queue conc_queue;

/*
 * conc_queue_create - a new empty queue that reclaims memory through
 * conc_epoch_global().
 *
 * Thread safety: any thread.  Progress: blocking (allocates).
 * Returns: 0 and *out set; EINVAL (out NULL); ENOMEM (*out untouched).
 */
CONC_NODISCARD int conc_queue_create(conc_queue **out);

/*
 * conc_queue_create_in - a new empty queue that reclaims memory through the
 * epoch domain d, which must outlive the queue (destroy the queue first,
 * then the domain).
 *
 * Thread safety: any thread.  Progress: blocking (allocates).
 * Returns: 0; EINVAL (out or d NULL, or d destroyed in a debug-checks
 *   build); ENOMEM (*out untouched).
 */
CONC_NODISCARD int conc_queue_create_in(conc_queue **out, conc_epoch *d);

/*
 * conc_queue_destroy - call drop(item) on every item still queued, in FIFO
 * order (when drop is not NULL), and free the queue.  Memory still waiting
 * in the epoch domain is freed when its grace period ends.
 *
 * Thread safety: no other call on q may run concurrently or afterwards.
 * Progress: blocking.  q NULL: nothing happens.
 */
void conc_queue_destroy(conc_queue *q, void (*drop)(void *item));

/*
 * conc_queue_push - append item at the tail of q.
 *
 * Thread safety: any number of threads may push and pop concurrently.
 * Ordering: everything the caller wrote before the push happens-before
 *   what the thread whose pop returns this item does after the pop.
 *   Items pushed by one thread are popped in the order that thread pushed.
 * Progress: lock-free; wakes one sleeping pop, at no cost when none sleeps.
 * Returns: 0; ENOMEM (nothing was pushed, item is still yours);
 *   EPIPE (q is closed; nothing was pushed); EINVAL (q NULL, or
 *   destroyed in a debug-checks build; nothing was pushed).
 */
int conc_queue_push(conc_queue *q, void *item);

/*
 * conc_queue_push_n - append items[0..n) at the tail of q as one batch:
 * they are consecutive in the queue, in order (no other push lands between
 * them), and appear at once (one step links them all).
 *
 * Thread safety: as conc_queue_push.
 * Ordering: as conc_queue_push, for each item (all n are published by
 *   the same step).  A thread's items, single or batched, are popped in
 *   the order that thread pushed them.
 * Progress: lock-free; wakes the sleeping pops (one when n is 1), at no
 *   cost when none sleeps.
 * Returns: 0 (n 0: at once, closed or not); ENOMEM (nothing was pushed);
 *   EPIPE (q is closed; nothing was pushed); EINVAL (q NULL, items NULL
 *   with n > 0, or q destroyed in a debug-checks build; nothing was
 *   pushed).
 */
int conc_queue_push_n(conc_queue *q, void *const *items, size_t n);

/*
 * conc_queue_try_pop - take the item at the head of q, if there is one.
 *
 * Thread safety: any thread.  Ordering: see conc_queue_push.
 * Progress: lock-free.
 * Returns: true and *item set; false when q was empty (*item untouched),
 *   and when q or item is NULL (nothing taken).
 */
CONC_NODISCARD bool conc_queue_try_pop(conc_queue *q, void **item);

/*
 * conc_queue_try_pop_n - take up to max items that are in q now, in FIFO
 * order, into items[0..max); claims a run of them with one fetch-and-add
 * where the items are already there.
 *
 * Thread safety: any thread.  Ordering: each item taken is one pop, as
 *   in conc_queue_try_pop; the batch as a whole is not one atomic step
 *   (items pushed while it runs may be taken too), but the items come out
 *   in the queue's order.
 * Progress: lock-free.
 * Returns: how many were taken (0 when q was empty, and when q or items
 *   is NULL or max is 0; nothing taken).
 */
CONC_NODISCARD size_t conc_queue_try_pop_n(conc_queue *q, void **items, size_t max);

/*
 * conc_queue_pop - take the item at the head of q, waiting for one.
 * Spins briefly, then sleeps in the kernel (not pinned, not spinning) until
 * a push or close wakes it.
 *
 * Thread safety: any thread.  Ordering: see conc_queue_push.
 * Progress: blocking while q is empty.
 * Returns: 0 and *item set; EPIPE when q is closed and empty; EINVAL
 *   (q or item NULL, or q destroyed in a debug-checks build; nothing
 *   taken).
 */
CONC_NODISCARD int conc_queue_pop(conc_queue *q, void **item);

/*
 * conc_queue_pop_timeout - conc_queue_pop that gives up after timeout_ns
 * (relative, CLOCK_MONOTONIC).  0 makes it a try; huge values (up to
 * UINT64_MAX) simply wait long.
 *
 * Thread safety: any thread.  Ordering: see conc_queue_push.
 * Progress: blocking while q is empty, for at most timeout_ns.
 * Returns: 0 and *item set; ETIMEDOUT (*item untouched); EPIPE when q is
 *   closed and empty (at once, whatever the timeout); EINVAL (q or item
 *   NULL, or q destroyed in a debug-checks build; nothing taken).
 */
CONC_NODISCARD int conc_queue_pop_timeout(conc_queue *q, void **item, uint64_t timeout_ns);

/*
 * conc_queue_close - refuse further pushes and wake every sleeping pop.
 * Pops still return what is left, then EPIPE.  Idempotent.  q NULL:
 * nothing happens.
 *
 * Thread safety: any thread.  Progress: lock-free (plus the wake-up).
 */
void conc_queue_close(conc_queue *q);

/*
 * conc_queue_is_empty - whether q holds no item.  Exact when no other
 * thread pushes or pops during the call.  With concurrent pushes and pops,
 * both answers are hints of different strength:
 *   false  an item was in q at some moment during the call (a push that
 *          lost its slot to a pop leaves no word behind, so no push that
 *          never completed is seen); it may have been popped since.
 *   true   may be wrong: a push and a pop racing with the scan can make it
 *          answer true for a queue that held an item throughout.
 * Either answer may be stale at once.
 *
 * Thread safety: any thread.  Progress: lock-free.
 * Returns: true when q held no item (as above); true for q NULL.
 */
bool conc_queue_is_empty(conc_queue *q);

#ifdef __cplusplus
}
#endif

#endif
