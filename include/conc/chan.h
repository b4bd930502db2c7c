/*
 * conc/chan.h - channels (bounded, unbounded, rendezvous) and select.
 *
 * A channel carries void * items (any value, NULL included, never
 * dereferenced) from senders to receivers in FIFO order.  Three flavours,
 * chosen by the capacity given to conc_chan_create:
 *   0                    rendezvous: a send completes only when a receiver
 *                        takes its item (a hand-over, nothing is buffered);
 *   1 .. SIZE_MAX - 1    bounded: an array of that many slots, each with a
 *                        sequence number, claimed with compare-and-swap on
 *                        head and tail (Vyukov's bounded MPMC queue, as in
 *                        crossbeam-channel); senders wait while it is full;
 *   CONC_CHAN_UNBOUNDED  unbounded: a conc_queue (conc/queue.h) underneath.
 * Waiting calls spin briefly, then sleep in the kernel (a futex) until an
 * item, a free slot, a partner or a close wakes them; an idle waiter uses
 * no CPU and is never pinned in an epoch while asleep.  conc_select waits
 * on any mix of sends and receives on any channels and completes exactly
 * one of them.
 *
 *   conc_chan *c;  conc_chan_create(&c, 64);
 *   producer:  conc_chan_send(c, job);  ...  conc_chan_close(c);
 *   consumer:  void *j; while (conc_chan_recv(c, &j) == 0) run(j);
 *
 * Concurrency: every call may run concurrently with every other, except
 * conc_chan_destroy (nothing else on c may run during or after it).
 * Timeouts are relative, in ns, on CLOCK_MONOTONIC, never end early; 0
 * makes the call a try (on a rendezvous channel a try-send succeeds only
 * when a receiver is already waiting, a try-receive only when a sender
 * is); huge values (up to UINT64_MAX) simply wait long.
 * Ordering (every flavour): everything a thread wrote before a send
 * happens-before what the thread whose receive returns that item does
 * after the receive.  Items sent by one thread are received in the order
 * that thread sent them.
 * Close: a send that starts after conc_chan_close has returned fails with
 * EPIPE; a send that overlaps the close either fails with EPIPE or
 * succeeds, and then its item is received like any other; receivers get
 * EPIPE only once the channel is closed and no item of a successful send
 * is left.
 *
 * fork().  A channel has no lock outside itself (its waiter lists are
 * guarded by spin flags of its own), so libconc registers no fork handler
 * for channels.  In the child, a channel created there, or inherited from
 * the parent while no other thread was inside a call on it, works as
 * before, with the items it held at the fork.  A channel that
 * another thread was inside a call on at the fork - blocked or not - may
 * be destroyed in the child (destroy takes no lock; it drops the items of
 * sends that had completed, the item of a send that was under way is not
 * there), and nothing else: a waiter list may be caught locked or hold a
 * thread that does not exist in the child.
 *
 * Debug-checks builds (libconc configured with -Ddebug_checks=true: a
 * debugging aid; in other builds these misuses are undefined): a channel
 * used after conc_chan_destroy - while its memory is among the last 64
 * destroyed objects, which such a build keeps allocated - makes the calls
 * that return int fail with EINVAL (conc_select too, when any of its
 * channels is such a one), and the others (close, len, capacity,
 * is_closed, a second destroy) print one line naming the call and the
 * misuse to stderr and abort; so does a destroy while a thread is blocked
 * in a send, receive or select on c (in a fork child: a thread of the
 * child).  A drop function that calls back into
 * the channel being destroyed gets EINVAL there.
 */
#ifndef CONC_CHAN_H
#define CONC_CHAN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "conc/attr.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct conc_chan conc_chan;

/* The capacity of an unbounded channel. */
#define CONC_CHAN_UNBOUNDED SIZE_MAX

/* conc_select flag: choose the lowest-index ready operation. */
#define CONC_SELECT_BIASED 1u

/* One operation of a conc_select: a send of item on chan (send true), or a
 * receive from chan whose item conc_select stores into item. */
typedef struct conc_select_op {
	conc_chan *chan;
	bool send;
	void *item;
} conc_select_op;

/*
 * conc_chan_create - a new empty channel of the given capacity: 0 makes a
 * rendezvous channel, CONC_CHAN_UNBOUNDED an unbounded one, anything else
 * a bounded one whose buffer is allocated here.
 *
 * Thread safety: any thread.  Progress: blocking (allocates).
 * Returns: 0 and *out set; EINVAL (out NULL); ENOMEM (*out untouched).
 */
CONC_NODISCARD int conc_chan_create(conc_chan **out, size_t capacity);

/*
 * conc_chan_destroy - call drop(item) on every item still buffered in c, in
 * FIFO order (when drop is not NULL), and free c.
 *
 * Thread safety: no other call on c may run concurrently or afterwards
 *   (no thread may still be blocked in a call on c).
 * Progress: blocking.  c NULL: nothing happens.
 */
void conc_chan_destroy(conc_chan *c, void (*drop)(void *item));

/*
 * conc_chan_send - send item on c, waiting while c is full (bounded) or
 * until a receiver takes it (rendezvous).
 *
 * Thread safety: any thread.
 * Ordering: everything the caller wrote before the send happens-before
 *   what the receiver of item does after its receive.
 * Progress: blocking while c is full; lock-free otherwise (bounded,
 *   unbounded); a rendezvous send takes a short lock of c.
 * Returns: 0; EPIPE (c is closed, or closes while the send waits; item is
 *   still yours); ENOMEM (unbounded only: nothing sent); EINVAL (c NULL).
 */
int conc_chan_send(conc_chan *c, void *item);

/*
 * conc_chan_send_timeout - conc_chan_send that gives up after timeout_ns;
 * 0 makes it a try.
 *
 * Thread safety: any thread.  Ordering: see conc_chan_send.
 * Progress: blocking for at most timeout_ns (and a short lock on a
 *   rendezvous channel).
 * Returns: 0; ETIMEDOUT (not sent); EPIPE (closed; not sent); ENOMEM
 *   (unbounded only); EINVAL (c NULL).
 */
int conc_chan_send_timeout(conc_chan *c, void *item, uint64_t timeout_ns);

/*
 * conc_chan_recv - take the oldest item of c, waiting for one.
 *
 * Thread safety: any thread.  Ordering: see conc_chan_send.
 * Progress: blocking while c is empty.
 * Returns: 0 and *item set; EPIPE once c is closed and drained (*item
 *   untouched); EINVAL (c or item NULL).
 */
CONC_NODISCARD int conc_chan_recv(conc_chan *c, void **item);

/*
 * conc_chan_recv_timeout - conc_chan_recv that gives up after timeout_ns;
 * 0 makes it a try.
 *
 * Thread safety: any thread.  Ordering: see conc_chan_send.
 * Progress: blocking for at most timeout_ns.
 * Returns: 0 and *item set; ETIMEDOUT (*item untouched); EPIPE (closed
 *   and drained, at once whatever the timeout); EINVAL (c or item NULL).
 */
CONC_NODISCARD int conc_chan_recv_timeout(conc_chan *c, void **item, uint64_t timeout_ns);

/*
 * conc_chan_send_many - send items[0..n) in order until all are in, the
 * timeout (for the whole call) passes or c closes; *sent says how many
 * went in (always a prefix).  n 0: returns 0 at once with *sent 0.
 *
 * Thread safety: any thread.  Ordering: see conc_chan_send (the n items
 *   of one call are received in order; other senders' items may come
 *   between them).
 * Progress: blocking for at most timeout_ns.
 * Returns: 0 (all n sent); ETIMEDOUT; EPIPE; ENOMEM (unbounded only);
 *   EINVAL (c, sent, or items with n > 0, NULL; *sent 0 when sent is not
 *   NULL).  *sent is valid on every return.
 */
int conc_chan_send_many(conc_chan *c, void *const *items, size_t n, uint64_t timeout_ns,
			size_t *sent);

/*
 * conc_chan_recv_many - wait up to timeout_ns for at least one item, then
 * take up to max items that are there, in FIFO order, into items[0..*got).
 * max 0: returns 0 at once with *got 0.
 *
 * Thread safety: any thread.  Ordering: see conc_chan_send.
 * Progress: blocking for at most timeout_ns.
 * Returns: 0 with *got >= 1; ETIMEDOUT (*got 0); EPIPE (closed and
 *   drained; *got 0); EINVAL (c, got, or items with max > 0, NULL).  *got
 *   is valid on every return (when got is not NULL).
 */
CONC_NODISCARD int conc_chan_recv_many(conc_chan *c, void **items, size_t max,
				       uint64_t timeout_ns, size_t *got);

/*
 * conc_chan_force_send - send item on a bounded channel without ever
 * waiting: when c is full, its oldest item is taken out into *old
 * (*evicted true: the caller owns it) to make room; when it is not,
 * *evicted is false and *old untouched.
 *
 * Thread safety: any thread.  Ordering: see conc_chan_send; an evicted
 *   item is handed over as a receive would.
 * Progress: lock-free (as a send; it may wait a moment for a receiver
 *   that is in the middle of taking the slot, or for another force_send
 *   that is in the middle of its own eviction - never for a receiver
 *   that has not started).
 * Returns: 0; EPIPE (closed: nothing sent, nothing evicted); EINVAL (c,
 *   evicted or old NULL, or c not bounded).
 */
int conc_chan_force_send(conc_chan *c, void *item, bool *evicted, void **old);

/*
 * conc_chan_close - refuse further sends, wake every blocked sender (with
 * EPIPE), receiver and select.  Receivers still take what is buffered,
 * then get EPIPE.  Idempotent.  c NULL: nothing happens.
 *
 * Thread safety: any thread.  Progress: blocking (takes the waiter lists'
 *   short locks to wake the sleepers).
 */
void conc_chan_close(conc_chan *c);

/*
 * conc_chan_len - the number of items buffered in c (0 for a rendezvous
 * channel).  Exact when no other thread uses c during the call, otherwise
 * a value it had at some moment of the call, or near one.
 *
 * Thread safety: any thread.  Progress: lock-free.
 * Returns: the count; 0 for c NULL.
 */
size_t conc_chan_len(conc_chan *c);

/*
 * conc_chan_capacity - the capacity c was created with (0 rendezvous,
 * CONC_CHAN_UNBOUNDED unbounded).
 *
 * Thread safety: any thread.  Progress: wait-free.
 * Returns: the capacity; 0 for c NULL.
 */
size_t conc_chan_capacity(conc_chan *c);

/*
 * conc_chan_is_closed - whether conc_chan_close was called on c.
 *
 * Thread safety: any thread.  Progress: wait-free.
 * Returns: true once closed; false for c NULL.
 */
bool conc_chan_is_closed(conc_chan *c);

/*
 * conc_select - complete exactly one of the n operations ops[0..n), or
 * none: a send of ops[i].item on ops[i].chan, or a receive from it into
 * ops[i].item.  Waits up to timeout_ns (0: a try) for one to be ready.  An
 * operation on a closed channel (for a receive: closed and drained) counts
 * as ready.  Among ready operations one is chosen uniformly at random, or
 * the lowest index with CONC_SELECT_BIASED in flags.  A channel may appear
 * in several operations; rendezvous sends and receives take part like any
 * other (a select never pairs with itself).
 *
 * Thread safety: any thread.  Ordering: the chosen operation orders as
 *   conc_chan_send / conc_chan_recv.
 * Progress: blocking for at most timeout_ns.
 * Returns: 0 and *done the index of the operation that completed (a
 *   receive's item in ops[*done].item); EPIPE and *done the index of an
 *   operation whose channel is closed (nothing done); ETIMEDOUT (nothing
 *   done); ENOMEM (more than 16 operations and no memory for the waiter
 *   records, or a send on an unbounded channel found no memory for its
 *   item: nothing done); EINVAL (ops or done NULL, n 0, a NULL chan,
 *   or flags other than 0 and CONC_SELECT_BIASED).
 */
CONC_NODISCARD int conc_select(conc_select_op *ops, size_t n, uint64_t timeout_ns,
			       unsigned flags, size_t *done);

#ifdef __cplusplus
}
#endif

#endif
