/*
 * injector.h - the pool's injector: a lock-free segmented FIFO of tasks
 * (two words each, copied into a slot: nothing is allocated per task).
 *
 * Used by src/pool/pool.c for the tasks executed from outside the pool, and
 * tested alone by tests/test_injector.c (unit, stress and lincheck).  The
 * fast paths are static inline here (the pool's execute inlines the push);
 * the block allocation, recycling, init and fini are cold, in injector.c.
 *
 * Layout.  A list of blocks of CONC__INJ_CAP slots.  `tail_idx` and
 *   `head_idx` are positions: block * CONC__INJ_LAP + offset, with
 *   CONC__INJ_LAP = CONC__INJ_CAP + 1.  Offset CONC__INJ_CAP is a sentinel:
 *   "this block is full, the next one is being installed", during which the
 *   others wait.  tail_idx carries the CLOSED bit in bit 0 (the position is
 *   tail_idx >> 1), so a close and a push are ordered by the one CAS.
 *
 * Invariants.
 *   I1 head <= tail (as positions); both only grow, and never repeat (64
 *      bits).  Slots [head, tail) are claimed and not yet taken.
 *   I2 A position enters a block (tail moves past the sentinel, or head
 *      does) only after that block was stored in tail_block / head_block
 *      and linked as the previous block's `next`; the index is stored with
 *      release after the block pointer, so an acquire load of the index
 *      followed by a load of the block pointer yields that position's block
 *      or a newer one - and a block pointer is dereferenced only after the
 *      CAS on the index read before it succeeded, which pins it to the
 *      index's block.
 *   I3 A slot is full when fn != NULL; it is filled exactly once, by the
 *      pusher that claimed it, and read exactly once, by the popper that
 *      claimed it.
 *   I4 CLOSED, once set, stays (fetch_or); a push that sees it (and is not
 *      forced) claims nothing.
 *
 * Operations and linearization points.
 *   claim (push, first half): CAS tail_idx forward one slot (LP: inj-push).
 *     The thread that takes a block's last slot links the next block
 *     (allocated before its CAS, so a failed allocation leaves nothing
 *     claimed: ENOMEM), moves tail_block and steps tail_idx past the
 *     sentinel.
 *   fill (push, second half): write arg, then store fn (release).  The pool
 *     wakes a sleeper after the fill, holding p alive meanwhile (pool.c,
 *     inj_push, says how).
 *   pop: CAS head_idx forward by n <= the slots below the tail (LP:
 *     inj-pop); the thread that takes a block's last slot waits for
 *     block->next and moves head_block and head_idx past the sentinel;
 *     then it waits for each claimed slot's fn.  An empty pop linearizes
 *     at its load of tail_idx (LP: inj-pop-empty).  A pop takes at most
 *     half of what the head's block holds (at least one), so that several
 *     poppers share a burst instead of the first taking all of it.
 *     A caller may pass `seen`, the tail it read last: it reads tail_idx
 *     again only once its head has caught up with it, so the pusher's line
 *     stays in the pusher's cache (this alone took the pool's seed
 *     workload from ~25 to ~55 M tasks/s on 2 cores).  Sound because the
 *     tail only grows: slots below an old tail are still claimed.
 *   FIFO: positions are handed out in CAS order on each index, and the
 *     slots of one pop are returned in position order.
 *
 * Reclamation.  A block is touched only by threads that claimed one of its
 *   slots (and the linking of block->next, done by the last slot's pusher
 *   before it fills that slot).  Each popper adds its count to
 *   block->reads after its last access; the one that brings it to
 *   CONC__INJ_CAP recycles the block: up to CONC__INJ_SPARES are kept for
 *   reuse (bursts of work do not call malloc), the rest are freed.  No
 *   epoch.  A block's pushers are done with it before its poppers finish
 *   (each popper waits for its slots' fn, the pusher's last write to it).
 *
 * Progress.  Lock-free except at a block boundary, where threads wait for
 *   the thread installing the next block, and a popper waits for a pusher
 *   that has claimed a slot but not yet filled it (both bounded by the
 *   other thread's next few instructions; waits back off into yields).
 *
 * Memory orders (why each is enough).
 *   claim's load of tail_idx, pop's load of head_idx: acquire, pairing with
 *     the release step past the sentinel (I2).
 *   loads of tail_block / head_block: acquire, pairing with the release
 *     stores that install a block (its cleared contents).
 *   claim's CAS on tail_idx: seq_cst.  Not for the queue (acq_rel would do
 *     for it) but for the pool's park protocols: it is the publishing write
 *     whose store-buffering argument (base/park.h) needs it in the single
 *     order S with a sleeping worker's seq_cst fence and re-check.
 *   pop's CAS on head_idx: seq_cst, likewise for the pool: the publishing
 *     write of room_park (an executor held by max_queued re-checks the
 *     head after its fence).
 *   link of next, step of tail_idx/head_idx past the sentinel, block
 *     pointer stores: release, each pairing with the acquire named above.
 *   fill's store of fn: release, publishing arg (and the caller's data);
 *     pop's load of fn: acquire.
 *   reads: acq_rel fetch_add - every popper's reads of the block
 *     happen-before its recycling by whoever makes the count whole.
 *   spares: release CAS in put, acquire exchange in get (the cleared
 *     block); the peeks before them are relaxed (the RMW does the work).
 *   conc__inj_pushed / _popped: acquire snapshots (the pool's counting
 *     argument: a task's count is in the tail before it can be taken).
 *   conc__inj_close, conc__inj_state: seq_cst, in S with the CASes above
 *     (the close is the publishing write of room_park; the held executor's
 *     re-check reads tail then head).
 */
#ifndef CONC_INTERNAL_INJECTOR_H
#define CONC_INTERNAL_INJECTOR_H

#include <errno.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>

#include "base/arch.h"
#include "base/backoff.h"
#include "base/chaos.h"
#include "base/pad.h"
#include "pool/deque.h"

#define CONC__INJ_CAP 255u
#define CONC__INJ_LAP 256u
#define CONC__INJ_CLOSED 1u
#define CONC__INJ_SPARES 16u /* recycled blocks kept: 16 x 4 KB */

struct conc__inj_slot {
	_Atomic(conc__task_fn) fn; /* NULL: not yet filled */
	void *arg;
};

struct conc__inj_block {
	_Atomic(struct conc__inj_block *) next;
	atomic_uint reads;
	struct conc__inj_slot slot[CONC__INJ_CAP];
};

/* Poppers' line, pushers' line, spares (each on its own line). */
typedef struct conc__injector {
	CONC_ALIGNED _Atomic uint64_t head_idx;
	_Atomic(struct conc__inj_block *) head_block;
	CONC_ALIGNED _Atomic uint64_t tail_idx; /* position << 1 | CLOSED */
	_Atomic(struct conc__inj_block *) tail_block;
	CONC_ALIGNED _Atomic(struct conc__inj_block *) spare[CONC__INJ_SPARES]; /* NULL: empty */
} conc__injector;

/* Cold (injector.c).  init: 0 or ENOMEM (site "pool.inj_block").  fini:
 * no other thread may use q any more; frees the blocks still linked from
 * the head (one when drained) and the spares.  block_get: a cleared block
 * (a spare, or a new one; NULL when malloc fails; keeps errno).
 * block_put: b is no longer touched by anybody. */
int conc__inj_init(conc__injector *q);
void conc__inj_fini(conc__injector *q);
struct conc__inj_block *conc__inj_block_get(conc__injector *q);
void conc__inj_block_put(conc__injector *q, struct conc__inj_block *b);

/* How many slots positions [0, pos) hold (the sentinels do not count). */
static inline uint64_t conc__inj_count(uint64_t pos)
{
	uint64_t off = pos % CONC__INJ_LAP;
	return pos / CONC__INJ_LAP * CONC__INJ_CAP + (off < CONC__INJ_CAP ? off : CONC__INJ_CAP);
}

/* Tasks ever pushed / popped: acquire snapshots (see Memory orders). */
static inline uint64_t conc__inj_pushed(conc__injector *q)
{
	return conc__inj_count(atomic_load_explicit(&q->tail_idx, memory_order_acquire) >> 1);
}

static inline uint64_t conc__inj_popped(conc__injector *q)
{
	return conc__inj_count(atomic_load_explicit(&q->head_idx, memory_order_acquire));
}

/* Set CLOSED: later pushes that are not forced fail with EPIPE.  seq_cst:
 * see Memory orders. */
static inline void conc__inj_close(conc__injector *q)
{
	atomic_fetch_or_explicit(&q->tail_idx, CONC__INJ_CLOSED, memory_order_seq_cst);
}

/* Whether CLOSED is set; seq_cst (a re-check of a park protocol). */
static inline bool conc__inj_closed(conc__injector *q)
{
	return atomic_load_explicit(&q->tail_idx, memory_order_seq_cst) & CONC__INJ_CLOSED;
}

/* The tasks queued (pushed - popped) and whether CLOSED is set.  seq_cst
 * (both loads, tail first): a waiter's re-check in S with the pushers' and
 * poppers' CASes and the close. */
static inline uint64_t conc__inj_state(conc__injector *q, bool *closed)
{
	uint64_t t = atomic_load_explicit(&q->tail_idx, memory_order_seq_cst);
	uint64_t h = atomic_load_explicit(&q->head_idx, memory_order_seq_cst);
	*closed = t & CONC__INJ_CLOSED;
	return conc__inj_count(t >> 1) - conc__inj_count(h);
}

/*
 * Claim a slot at the tail (LP: inj-push).  force: claimed even after the
 * close (the pool: a task executing a task during destroy).  0 and *slot
 * set, or EPIPE (closed) or ENOMEM (no block for the next lap); on an error
 * nothing is claimed.  The caller must then conc__inj_fill the slot: a
 * popper that took it waits for the fill.
 */
static inline int conc__inj_claim(conc__injector *q, bool force, struct conc__inj_slot **slot)
{
	struct conc__inj_block *fresh = NULL;
	conc__backoff bo = CONC__BACKOFF_INIT;
	for (;;) {
		/* acquire: pairs with the release step past the sentinel, so
		 * tail_block below is this position's block or a newer one. */
		uint64_t t = atomic_load_explicit(&q->tail_idx, memory_order_acquire);
		if ((t & CONC__INJ_CLOSED) && !force) {
			/* free, not block_put: once CLOSED is seen, the owner
			 * (the pool's destroy) may free q at any moment - touch
			 * nothing of it. */
			free(fresh);
			return EPIPE;
		}
		uint64_t pos = t >> 1;
		unsigned off = (unsigned)(pos % CONC__INJ_LAP);
		if (conc__unlikely(off == CONC__INJ_CAP)) { /* next block being linked */
			conc__backoff_spin(&bo);
			continue;
		}
		if (conc__unlikely(off + 1 == CONC__INJ_CAP) && !fresh) {
			fresh = conc__inj_block_get(q);
			if (!fresh)
				return ENOMEM;
		}
		/* acquire: see tail_idx above. */
		struct conc__inj_block *b = atomic_load_explicit(&q->tail_block, memory_order_acquire);
		/* seq_cst: the publishing write of the pool's park protocol (a
		 * sleeping worker's re-check reads the tail after its seq_cst
		 * fence); the queue alone would need acq_rel. */
		if (!atomic_compare_exchange_weak_explicit(&q->tail_idx, &t, t + 2,
							   memory_order_seq_cst,
							   memory_order_relaxed)) { /* LP: inj-push */
			conc__chaos_point(); /* a retry: the slow path */
			continue;
		}
		if (conc__unlikely(off + 1 == CONC__INJ_CAP)) {
			/* release: publishes the cleared block; pairs with the
			 * acquire wait in conc__inj_pop. */
			atomic_store_explicit(&b->next, fresh, memory_order_release);
			/* release: pairs with the acquire loads of tail_block. */
			atomic_store_explicit(&q->tail_block, fresh, memory_order_release);
			/* release: moves past the sentinel (keeps CLOSED);
			 * pairs with the acquire load of tail_idx above. */
			atomic_fetch_add_explicit(&q->tail_idx, 2, memory_order_release);
			fresh = NULL;
		}
		if (fresh) /* another thread took the last slot first */
			conc__inj_block_put(q, fresh);
		*slot = &b->slot[off];
		return 0;
	}
}

/* Fill a claimed slot: the pusher's last access to the injector (after it
 * the block may be recycled, and q freed by its owner once drained). */
static inline void conc__inj_fill(struct conc__inj_slot *s, conc__task_fn fn, void *arg)
{
	s->arg = arg;
	/* release: publishes arg (and the caller's data); pairs with the
	 * acquire wait in conc__inj_pop. */
	atomic_store_explicit(&s->fn, fn, memory_order_release);
}

/* Claim and fill: 0, EPIPE or ENOMEM (nothing pushed). */
static inline int conc__inj_push(conc__injector *q, conc__task_fn fn, void *arg, bool force)
{
	struct conc__inj_slot *s;
	int err = conc__inj_claim(q, force, &s);
	if (err)
		return err;
	conc__inj_fill(s, fn, arg);
	return 0;
}

/*
 * Take up to max (>= 1) tasks (at most half of what the head's block
 * holds, at least one) from the head into out, in FIFO order; returns how
 * many (0: empty).  seen: NULL, or the caller's last-seen tail (0 at
 * first), which the pop reads and updates (see pop above).
 */
static inline unsigned conc__inj_pop(conc__injector *q, conc__task *out, unsigned max,
				     uint64_t *seen)
{
	conc__backoff bo = CONC__BACKOFF_INIT;
	for (;;) {
		/* acquire: pairs with the release step past the sentinel, so
		 * head_block below is this position's block or a newer one. */
		uint64_t h = atomic_load_explicit(&q->head_idx, memory_order_acquire);
		unsigned off = (unsigned)(h % CONC__INJ_LAP);
		if (conc__unlikely(off == CONC__INJ_CAP)) {
			conc__backoff_spin(&bo);
			continue;
		}
		/* The tail only grows: while the head is below the tail we saw
		 * last, that many slots are claimed without reading the tail
		 * again - its line stays with the pusher. */
		uint64_t t = seen ? *seen : 0;
		if (t <= h) {
			/* acquire: pairs with the pushers' CAS (a snapshot of
			 * what is claimed; we wait for each slot's fill). */
			t = atomic_load_explicit(&q->tail_idx, memory_order_acquire) >> 1; /* LP: inj-pop-empty (when t <= h) */
			if (seen)
				*seen = t;
			if (t <= h)
				return 0;
		}
		unsigned avail = h / CONC__INJ_LAP == t / CONC__INJ_LAP
					 ? (unsigned)(t % CONC__INJ_LAP) - off
					 : CONC__INJ_CAP - off;
		unsigned n = (avail + 1) / 2;
		if (n > max)
			n = max;
		/* acquire: see head_idx above. */
		struct conc__inj_block *b = atomic_load_explicit(&q->head_block, memory_order_acquire);
		/* seq_cst: the publishing write of the pool's room_park protocol
		 * (an executor held by max_queued re-checks the head). */
		if (!atomic_compare_exchange_weak_explicit(&q->head_idx, &h, h + n,
							   memory_order_seq_cst,
							   memory_order_relaxed)) { /* LP: inj-pop */
			conc__backoff_spin(&bo);
			conc__chaos_point(); /* a retry: the slow path */
			continue;
		}
		if (off + n == CONC__INJ_CAP) {
			struct conc__inj_block *nb;
			conc__backoff_reset(&bo);
			/* acquire: pairs with the release store of next. */
			while (!(nb = atomic_load_explicit(&b->next, memory_order_acquire)))
				conc__backoff_spin(&bo);
			/* release: pairs with the acquire loads of head_block. */
			atomic_store_explicit(&q->head_block, nb, memory_order_release);
			/* release: leaves the sentinel; pairs with head_idx's
			 * acquire load. */
			atomic_store_explicit(&q->head_idx, h + n + 1, memory_order_release);
		}
		for (unsigned i = 0; i < n; i++) {
			struct conc__inj_slot *s = &b->slot[off + i];
			conc__task_fn fn;
			conc__backoff_reset(&bo);
			/* acquire: pairs with the pusher's release store of fn
			 * (arg and the task's data). */
			while (!(fn = atomic_load_explicit(&s->fn, memory_order_acquire)))
				conc__backoff_spin(&bo);
			out[i].fn = fn;
			out[i].arg = s->arg;
		}
		/* acq_rel: our reads of the block happen-before its recycling
		 * by whoever makes the count whole. */
		if (atomic_fetch_add_explicit(&b->reads, n, memory_order_acq_rel) + n == CONC__INJ_CAP)
			conc__inj_block_put(q, b);
		return n;
	}
}

#endif
