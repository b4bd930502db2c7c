/*
 * conc/epoch.h - epoch-based reclamation (EBR).
 *
 * Lock-free structures unlink an object in one thread while others may still
 * be reading it.  EBR defers the free: readers bracket their accesses with
 * conc_epoch_pin/unpin, and an unlinked object is handed to conc_epoch_retire,
 * whose callback runs only once every thread that was pinned at the time of
 * the retire has unpinned.
 *
 *   conc_epoch_pin(d);  p = atomic_load(&shared);  use(p);  conc_epoch_unpin(d);
 *   old = atomic_exchange(&shared, new);  conc_epoch_retire(d, &old->node, free_it);
 *
 * Domains.  conc_epoch_global() serves most programs; a private domain
 * (conc_epoch_create) keeps one structure's garbage and its stalls away from
 * the others.  Any thread may use any domain; it registers on first use and
 * is unregistered when it exits (its pending callbacks pass to the domain:
 * never leaked, never run early).
 *
 * Concurrency.  Every function may be called by any number of threads at
 * once, except conc_epoch_destroy (no other call on that domain may run or
 * follow it).
 *
 * Callbacks run on whichever thread collects - inside pin, unpin, retire,
 * flush, barrier or destroy - never while libconc holds a lock.  A callback
 * may pin, unpin, retire, defer and flush; it must not call barrier or
 * destroy.
 *
 * fork().  The child may go on using every domain: the records of threads
 * that do not exist in the child are dropped there, and their pending
 * callbacks run later in the child.  Pinning or unpinning NULL does nothing.
 *
 * Lifecycles.
 *   Many domains per thread: any number, registered and pinned at once.
 *     The first 8 a thread uses at once get a per-thread record (a further
 *     one evicts an unpinned record the thread is not using, its garbage
 *     handed to that domain); a thread pinned in all of them pins the
 *     next 56 domains through per-thread shared-path slots, still exact
 *     per domain; beyond 64 domains pinned at once, further pins go to one
 *     process-wide count that holds back every domain until they are
 *     undone (meanwhile barrier returns EDEADLK in that thread and destroy
 *     EBUSY everywhere).
 *   Callbacks that call back in: a callback may pin, unpin, retire, defer
 *     and flush in any domain, the one being collected included; the
 *     record the outer call is using stays with its domain.
 *   Thread exit, in any state: a thread that exits pinned (a bug, cleaned
 *     up after) is unpinned, nested or not, through a record or the shared
 *     path, and its retired and deferred callbacks pass to the domain
 *     (never leaked, never run early).  The one case that cannot be
 *     cleaned up: when libconc could not install its thread-exit hook (no
 *     pthread key was left for it), a thread that exits pinned through the
 *     shared path holds those domains back for ever.
 *   Destroy: needs no thread pinned in d (EBUSY otherwise); records other
 *     live threads hold in d are released (those threads may go on with
 *     other domains, and reuse the slot); other domains are untouched.
 *   Debug-checks builds (libconc configured with -Ddebug_checks=true: a
 *     debugging aid; in other builds these misuses are undefined): a
 *     domain used after conc_epoch_destroy - while its memory is among the
 *     last 64 destroyed objects, which such a build keeps allocated -
 *     makes the calls that return int fail with EINVAL (a second destroy
 *     too), and pin, unpin, is_pinned, retire, flush and get_stats print
 *     one line naming the call and the misuse to stderr and abort; so does
 *     an unpin with no pin of the calling thread to match (an unbalanced
 *     unpin, which other builds ignore).  Destroy also returns EBUSY while
 *     a queue or stack created in d is not destroyed.
 *
 * The known limit of EBR: a thread that stays pinned holds every later
 * callback back (memory grows until it unpins).  conc_epoch_get_stats()
 * reports how many threads hold the epoch back, so a stall can be seen.
 */
#ifndef CONC_EPOCH_H
#define CONC_EPOCH_H

#include <stdbool.h>
#include <stdint.h>

#include "conc/attr.h"
#ifdef __cplusplus
extern "C" {
#endif

typedef struct conc_epoch conc_epoch;

/*
 * Embed in an object to retire it without allocating.  The fields belong to
 * libconc from retire until fn(node) is called.
 */
typedef struct conc_epoch_node {
	struct conc_epoch_node *next;
	void (*fn)(struct conc_epoch_node *);
	uint64_t epoch;
} conc_epoch_node;

/*
 * conc_epoch_stats - what conc_epoch_get_stats reports about a domain:
 * counters since its creation and the threads in it now.
 */
typedef struct conc_epoch_stats {
	uint64_t epoch;      /* the domain's global epoch */
	uint64_t retired;    /* callbacks retired so far (retire and defer) */
	uint64_t freed;      /* callbacks run so far */
	uint64_t pending;    /* retired - freed */
	unsigned registered; /* threads registered in the domain now */
	unsigned stalling;   /* pinned threads holding the epoch back now */
} conc_epoch_stats;

/*
 * conc_epoch_global - the process-wide domain.
 *
 * Thread safety: any thread.  Progress: wait-free.
 * Returns: the domain; never NULL; it lives until the process exits.
 */
conc_epoch *conc_epoch_global(void);

/*
 * conc_epoch_create - a new private domain.
 *
 * Thread safety: any thread.  Progress: blocking (allocates).
 * Returns: 0 and *out set; EINVAL (out NULL); ENOMEM (*out untouched).
 */
CONC_NODISCARD int conc_epoch_create(conc_epoch **out);

/*
 * conc_epoch_destroy - run every pending callback of d and free it.
 *
 * Runs the callbacks still held by other live threads too, and keeps running
 * until none is left (callbacks may retire more).  Threads that used d and
 * exit later never touch it again.
 * Thread safety: no other call on d may run concurrently or afterwards.
 * Progress: blocking.
 * Returns: 0; EBUSY while any thread is pinned in d (nothing freed, d still
 *   usable), and in a debug-checks build also while a queue or stack
 *   created in d is not destroyed; EINVAL for NULL or the global domain,
 *   and in a debug-checks build for a destroyed d (a double destroy).
 */
int conc_epoch_destroy(conc_epoch *d);

/*
 * conc_epoch_register - register the calling thread in d now, rather than
 * on its first pin or retire.  Idempotent; allowed while pinned.
 *
 * Thread safety: any thread.  Progress: blocking (may allocate once).
 * Returns: 0; EINVAL (d NULL, or destroyed in a debug-checks build);
 *   ENOMEM - no per-thread record could be had,
 *   and the thread keeps using d through the shared path, which needs no
 *   memory (slower, never fails).
 */
int conc_epoch_register(conc_epoch *d);

/*
 * Internal, not API: the head of the calling thread's record in the domain
 * it pinned last, so that pin and unpin can be inlined (a call and return
 * cost as much as the pin itself).  src/epoch/epoch.c owns the layout and the
 * proof; the domain's first member is its epoch counter.
 */
struct conc__epoch_hot {
	conc_epoch *domain; /* __atomic access: cleared by other threads */
	uint64_t state;     /* __atomic access: epoch << 32 | nesting depth */
};
extern __thread struct conc__epoch_hot *conc__epoch_last;
void conc__epoch_pin_slow(conc_epoch *d);
void conc__epoch_unpin_slow(conc_epoch *d);

/*
 * conc_epoch_pin - enter a read-side critical section of d.  Nests: only
 * the outermost pin/unpin pair counts.  d NULL: nothing happens.
 *
 * Ordering: an object the thread reaches after the pin stays valid until
 *   the matching unpin: a callback retired for it (after it was unlinked)
 *   does not run before then (the grace-period argument is in src/epoch/epoch.c).
 * Thread safety: any thread.
 * Progress: wait-free; never fails.  The first pin of a thread in a domain
 *   registers it (once; takes the domain's lock).  Inline: a load of the
 *   epoch, a store to the thread's own record, no fence (the epoch advance
 *   pays with membarrier(2); where that is missing, pin issues a fence).
 */
inline void conc_epoch_pin(conc_epoch *d)
{
	struct conc__epoch_hot *h = conc__epoch_last;
	if (__builtin_expect(__atomic_load_n(&h->domain, __ATOMIC_RELAXED) == d, 1)) {
		uint64_t s = __atomic_load_n(&h->state, __ATOMIC_RELAXED);
		if (__builtin_expect((uint32_t)s == 0, 1)) {
			/* outermost: relaxed load of the epoch, relaxed store
			 * and a compiler barrier - the proof is in
			 * src/epoch/epoch.c (LP: pin); the same steps as
			 * conc__ebr_pin (src/epoch/alg_epoch.h) */
			uint64_t e = __atomic_load_n((const uint64_t *)(const void *)d,
						     __ATOMIC_RELAXED);
			__atomic_store_n(&h->state, e << 32 | 1, __ATOMIC_RELAXED);
			__atomic_signal_fence(__ATOMIC_SEQ_CST);
			return;
		}
		if ((uint32_t)s != UINT32_MAX) {
			/* nested: only the depth changes */
			__atomic_store_n(&h->state, s + 1, __ATOMIC_RELAXED);
			return;
		}
	}
	conc__epoch_pin_slow(d);
}

/*
 * conc_epoch_unpin - leave the critical section entered by the matching pin.
 * d NULL: nothing happens.
 *
 * Ordering: the thread's accesses inside the section happen-before any
 *   callback that waits for this section (a release store).
 * Thread safety: the pinning thread only.  Progress: wait-free.
 */
inline void conc_epoch_unpin(conc_epoch *d)
{
	struct conc__epoch_hot *h = conc__epoch_last;
	if (__builtin_expect(__atomic_load_n(&h->domain, __ATOMIC_RELAXED) == d, 1)) {
		uint64_t s = __atomic_load_n(&h->state, __ATOMIC_RELAXED);
		if (__builtin_expect((uint32_t)s == 1, 1)) {
			__atomic_store_n(&h->state, 0, __ATOMIC_RELEASE); /* outermost */
			return;
		}
		if ((uint32_t)s > 1) {
			__atomic_store_n(&h->state, s - 1, __ATOMIC_RELAXED); /* nested */
			return;
		}
	}
	conc__epoch_unpin_slow(d);
}

/*
 * conc_epoch_is_pinned - whether the calling thread is pinned in d.
 *
 * Thread safety: any thread; it answers for the caller.
 * Progress: wait-free (a scan of the caller's own records).
 * Returns: true when the caller is pinned in d; false otherwise and for
 *   d NULL.
 */
bool conc_epoch_is_pinned(conc_epoch *d);

/*
 * conc_epoch_retire - call fn(n) once no thread pinned in d at the time of
 * this call can still be inside that critical section.
 *
 * The caller must have made the object unreachable for new readers first.
 * d, n and fn must not be NULL (such a call does nothing).
 * Thread safety: any thread, pinned or not.
 * Progress: lock-free; never fails, never allocates.
 */
void conc_epoch_retire(conc_epoch *d, conc_epoch_node *n,
		       void (*fn)(conc_epoch_node *));

/*
 * conc_epoch_defer - the same as retire, for any pointer: fn(arg) later.
 *
 * Thread safety: any thread, pinned or not.
 * Progress: blocking (allocates a node), then as conc_epoch_retire.
 * Returns: 0; EINVAL (d or fn NULL, or d destroyed in a debug-checks
 *   build); ENOMEM (nothing deferred).
 */
int conc_epoch_defer(conc_epoch *d, void (*fn)(void *), void *arg);

/*
 * conc_epoch_flush - publish this thread's retired objects to the domain,
 * try to advance the epoch and run what is due.  d NULL: nothing happens.
 *
 * Thread safety: any thread.  Progress: lock-free (plus the callbacks).
 */
void conc_epoch_flush(conc_epoch *d);

/*
 * conc_epoch_barrier - wait until every callback retired in d before this
 * call, by any thread (also live threads that went idle), has run.
 *
 * Thread safety: any thread not pinned in d; not from a callback.
 * Progress: blocking (waits for pinned threads to unpin).
 * Returns: 0; EDEADLK (the caller is pinned in d, or holds pins beyond
 *   its 64 tracked domains, which hold d back too); EINVAL (d NULL, or
 *   destroyed in a debug-checks build).
 */
int conc_epoch_barrier(conc_epoch *d);

/*
 * conc_epoch_get_stats - a snapshot of d's counters (each read atomically,
 * not all at one instant).  d or out NULL: nothing happens.
 *
 * Thread safety: any thread.  Progress: lock-free.
 */
void conc_epoch_get_stats(conc_epoch *d, conc_epoch_stats *out);

#ifdef __cplusplus
}
#endif

#endif
