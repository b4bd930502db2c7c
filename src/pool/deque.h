/*
 * deque.h - the Chase-Lev work-stealing deque of a pool worker.
 *
 * Algorithm: Chase & Lev (SPAA 2005), with the C11 orderings of Le, Pop,
 *   Cohen & Zappa Nardelli (PPoPP 2013), except that the two standalone
 *   seq_cst fences are replaced by seq_cst operations on `top` and `bottom`
 *   (an exchange in pop, loads in steal): the same store-buffering argument,
 *   one instruction cheaper on x86 (xchg instead of mov + mfence), and
 *   visible to ThreadSanitizer, which does not model fences.
 *
 * One owner pushes and pops at the bottom (LIFO); any thread steals at the
 * top (FIFO).  An element is a task: a function and its argument, stored in
 * two atomic words of a circular buffer, so no task record is allocated.
 *
 * Invariants: top <= bottom + 1 (bottom is one below top only inside pop);
 *   the elements are the indexes [top, bottom); only the owner writes bottom
 *   and buf; top only grows, and only by a successful CAS.
 * Linearization points: push, the release store of bottom (LP: push);
 *   pop, the exchange of bottom when top < the new bottom, else the CAS on
 *   top (LP: pop); steal, the CAS on top (LP: steal); an empty steal, its
 *   load of bottom (LP: steal-empty).
 * Why the last element is never taken twice: pop exchanges bottom (seq_cst)
 *   and then loads top (seq_cst); steal loads top and then bottom (both
 *   seq_cst).  In the single order S either the thief's bottom load follows
 *   the owner's exchange (it sees the element gone, or, when one element is
 *   left, both go for the CAS on top and one wins), or the owner's load of
 *   top follows the thief's, and the owner takes the element only by the
 *   same CAS.
 * Growth: when full, the owner copies [top, bottom) into a buffer twice the
 *   size and publishes it (release).  A thief may still be reading the old
 *   buffer, so the old buffer is retired through the epoch domain `ebr`;
 *   thieves pin `ebr` while they hold a buffer pointer.  Nothing else on
 *   the per-task path touches the epoch: the owner never pins, and a thief
 *   pins only after seeing a non-empty deque.
 * Progress: push, pop wait-free (push allocates when it grows); steal
 *   lock-free (a failed CAS means another thread took an element).
 */
#ifndef CONC_INTERNAL_DEQUE_H
#define CONC_INTERNAL_DEQUE_H

#include <errno.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "conc/epoch.h"
#include "base/chaos.h"
#include "base/check.h"
#include "base/fault.h"
#include "base/pad.h"

typedef void (*conc__task_fn)(void *);

typedef struct conc__task {
	conc__task_fn fn;
	void *arg;
} conc__task;

/* tag: an opaque isolation tag the pusher gives (conc_join's and the
 * loops' root, src/parallel/parallel.c), NULL for a plain task; a thief can choose
 * by it without dereferencing arg (which may be stale before its CAS). */
struct conc__deque_slot {
	_Atomic(conc__task_fn) fn;
	_Atomic(void *) arg;
	_Atomic(void *) tag;
};

struct conc__deque_buf {
	conc_epoch_node node; /* for retirement; first member */
	int64_t mask;         /* capacity - 1; capacity a power of two */
	struct conc__deque_slot slot[];
};

typedef struct conc__deque {
	CONC_ALIGNED _Atomic int64_t top; /* thieves CAS it */
	CONC_ALIGNED _Atomic int64_t bottom;  /* the owner's */
	_Atomic(struct conc__deque_buf *) buf; /* stored by the owner only */
	conc_epoch *ebr;
} conc__deque;

enum { CONC__STEAL_EMPTY, CONC__STEAL_OK, CONC__STEAL_RETRY };

static inline struct conc__deque_buf *conc__deque_buf_new(int64_t cap)
{
	struct conc__deque_buf *a =
		conc__malloc("deque.buf", sizeof *a + (size_t)cap * sizeof a->slot[0]);
	if (a)
		a->mask = cap - 1;
	return a;
}

static inline void conc__deque_buf_free(conc_epoch_node *n)
{
	struct conc__deque_buf *a = (struct conc__deque_buf *)(void *)n;
	/* chaos mode: a thief that still read the old buffer would see this */
	conc__chaos_poison(a, sizeof *a + (size_t)(a->mask + 1) * sizeof a->slot[0]);
	free(a);
}

/* Empty deque of capacity 2^log2_cap; 0 or ENOMEM. */
static inline int conc__deque_init(conc__deque *q, unsigned log2_cap,
				   conc_epoch *ebr)
{
	struct conc__deque_buf *a = conc__deque_buf_new((int64_t)1 << log2_cap);
	if (!a)
		return ENOMEM;
	atomic_init(&q->top, 0);
	atomic_init(&q->bottom, 0);
	atomic_init(&q->buf, a);
	q->ebr = ebr;
	return 0;
}

/* No thread may use q any more (they were joined). */
static inline void conc__deque_fini(conc__deque *q)
{
	free(atomic_load_explicit(&q->buf, memory_order_relaxed));
}

/* Owner: double the buffer.  Returns the new buffer or NULL (unchanged).
 * Out of line: keeps the push fast path small. */
static __attribute__((noinline, unused)) struct conc__deque_buf *
conc__deque_grow(conc__deque *q, struct conc__deque_buf *a, int64_t t, int64_t b)
{
	struct conc__deque_buf *n = conc__deque_buf_new((a->mask + 1) * 2);
	if (!n)
		return NULL;
	for (int64_t i = t; i < b; i++) {
		struct conc__deque_slot *s = &a->slot[i & a->mask];
		struct conc__deque_slot *d = &n->slot[i & n->mask];
		/* relaxed: the slots are published by the release store of
		 * buf below. */
		atomic_store_explicit(&d->fn, atomic_load_explicit(&s->fn, memory_order_relaxed), memory_order_relaxed);
		atomic_store_explicit(&d->arg, atomic_load_explicit(&s->arg, memory_order_relaxed), memory_order_relaxed);
		atomic_store_explicit(&d->tag, atomic_load_explicit(&s->tag, memory_order_relaxed), memory_order_relaxed);
	}
	/* release: publishes the copied slots; pairs with the acquire load of
	 * buf in steal. */
	atomic_store_explicit(&q->buf, n, memory_order_release);
	/* Thieves that loaded the old pointer are pinned; it is freed once
	 * they have all unpinned. */
	conc_epoch_retire(q->ebr, &a->node, conc__deque_buf_free);
	return n;
}

/* Owner: make sure the next push will not need to grow the buffer (grow it
 * now if full), so that it cannot fail; 0 or ENOMEM (nothing changed).
 * Thieves only make more room meanwhile: top only grows. */
static inline int conc__deque_reserve(conc__deque *q)
{
	int64_t b = atomic_load_explicit(&q->bottom, memory_order_relaxed); /* own */
	/* acquire: as in push (a slot the grow copies was read by its thief
	 * before that thief's CAS). */
	int64_t t = atomic_load_explicit(&q->top, memory_order_acquire);
	struct conc__deque_buf *a = atomic_load_explicit(&q->buf, memory_order_relaxed); /* own */
	if (conc__unlikely(b - t > a->mask) && !conc__deque_grow(q, a, t, b))
		return ENOMEM;
	return 0;
}

/* Owner: room for k more elements without growing. */
static inline int64_t conc__deque_room(conc__deque *q)
{
	int64_t b = atomic_load_explicit(&q->bottom, memory_order_relaxed); /* own */
	/* relaxed: a stale top only under-reports the room. */
	int64_t t = atomic_load_explicit(&q->top, memory_order_relaxed);
	struct conc__deque_buf *a = atomic_load_explicit(&q->buf, memory_order_relaxed); /* own */
	return a->mask + 1 - (b - t);
}

/* Owner: append n tasks; the caller checked conc__deque_room(q) >= n. */
static inline void conc__deque_push_n(conc__deque *q, const conc__task *tk, size_t n)
{
	int64_t b = atomic_load_explicit(&q->bottom, memory_order_relaxed); /* own */
	/* acquire: pairs with the thieves' CAS on top: a slot we overwrite
	 * below was read by its thief before that CAS. */
	int64_t t = atomic_load_explicit(&q->top, memory_order_acquire);
	struct conc__deque_buf *a = atomic_load_explicit(&q->buf, memory_order_relaxed); /* own */
	CONC__CHECK(b - t + (int64_t)n <= a->mask + 1, "deque: a batch fits the room its pusher made");
	(void)t;
	for (size_t i = 0; i < n; i++) {
		struct conc__deque_slot *s = &a->slot[(b + (int64_t)i) & a->mask];
		/* relaxed: published by the release store of bottom. */
		atomic_store_explicit(&s->fn, tk[i].fn, memory_order_relaxed);
		atomic_store_explicit(&s->arg, tk[i].arg, memory_order_relaxed);
		atomic_store_explicit(&s->tag, NULL, memory_order_relaxed);
	}
	/* release: publishes the slots and everything the owner wrote before
	 * (the tasks' data); pairs with the acquire load of bottom in steal. */
	atomic_store_explicit(&q->bottom, b + (int64_t)n, memory_order_release); /* LP: push */
}

/*
 * Owner: push one task with its isolation tag (NULL: none); 0 or ENOMEM
 * (the buffer could not grow; nothing pushed).  If `count` is not NULL, *count (the owner's own counter) is
 * incremented just before the task is published - the pool counts a task
 * in before anyone can take it.
 */
static inline int conc__deque_push(conc__deque *q, conc__task_fn fn, void *arg,
				   void *tag, _Atomic uint64_t *count)
{
	int64_t b = atomic_load_explicit(&q->bottom, memory_order_relaxed); /* own */
	/* acquire: pairs with the thieves' CAS on top (see push_n). */
	int64_t t = atomic_load_explicit(&q->top, memory_order_acquire);
	struct conc__deque_buf *a = atomic_load_explicit(&q->buf, memory_order_relaxed); /* own */
	if (conc__unlikely(b - t > a->mask)) {
		a = conc__deque_grow(q, a, t, b);
		if (!a)
			return ENOMEM;
	}
	struct conc__deque_slot *s = &a->slot[b & a->mask];
	/* relaxed: published by the release store of bottom. */
	atomic_store_explicit(&s->fn, fn, memory_order_relaxed);
	atomic_store_explicit(&s->arg, arg, memory_order_relaxed);
	atomic_store_explicit(&s->tag, tag, memory_order_relaxed);
	if (count) /* relaxed: one writer; ordered by the release below */
		atomic_store_explicit(count, atomic_load_explicit(count, memory_order_relaxed) + 1,
				      memory_order_relaxed);
	/* release: publishes the slot, the count and the task's data; pairs
	 * with the acquire load of bottom in steal. */
	atomic_store_explicit(&q->bottom, b + 1, memory_order_release); /* LP: push */
	return 0;
}

/* Owner: take the newest task; false when empty. */
static inline bool conc__deque_pop(conc__deque *q, conc__task *out)
{
	int64_t b = atomic_load_explicit(&q->bottom, memory_order_relaxed); /* own */
	/* relaxed: top only grows, so top >= b means empty for certain; a
	 * stale smaller value just takes the full path. */
	if (atomic_load_explicit(&q->top, memory_order_relaxed) >= b)
		return false;
	b--;
	struct conc__deque_buf *a = atomic_load_explicit(&q->buf, memory_order_relaxed); /* own */
	/* seq_cst exchange: the owner half of the store-buffering pair with
	 * steal (see the top of this file). */
	atomic_exchange_explicit(&q->bottom, b, memory_order_seq_cst); /* LP: pop (when top < b) */
	int64_t t = atomic_load_explicit(&q->top, memory_order_seq_cst);
	if (t > b) { /* a thief took the last one first */
		/* release: as every bottom store (steal reads it acquire). */
		atomic_store_explicit(&q->bottom, b + 1, memory_order_release);
		return false;
	}
	struct conc__deque_slot *s = &a->slot[b & a->mask];
	out->fn = atomic_load_explicit(&s->fn, memory_order_relaxed); /* own slot */
	out->arg = atomic_load_explicit(&s->arg, memory_order_relaxed);
	if (t < b)
		return true;
	/* One element left: race the thieves for it on top. */
	bool won = atomic_compare_exchange_strong_explicit(
		&q->top, &t, t + 1, memory_order_seq_cst, memory_order_relaxed); /* LP: pop */
	atomic_store_explicit(&q->bottom, b + 1, memory_order_release); /* release: as above */
	return won;
}

/* Owner: the tag of the newest task, the one pop would take; false when
 * the deque looks empty (pop may still find it empty: a thief took it). */
static inline bool conc__deque_newest_tag(conc__deque *q, void **tag)
{
	int64_t b = atomic_load_explicit(&q->bottom, memory_order_relaxed); /* own */
	/* relaxed: a hint, as in pop's first check. */
	if (atomic_load_explicit(&q->top, memory_order_relaxed) >= b)
		return false;
	struct conc__deque_buf *a = atomic_load_explicit(&q->buf, memory_order_relaxed); /* own */
	*tag = atomic_load_explicit(&a->slot[(b - 1) & a->mask].tag, memory_order_relaxed); /* own slot */
	return true;
}

/* Any thread: take the oldest task if its tag is `want` (any tag when
 * `any`); CONC__STEAL_EMPTY also when the oldest has another tag. */
static inline int conc__deque_steal_if(conc__deque *q, conc__task *out, bool any,
				       void *want)
{
	/* seq_cst loads: the thief half of the store-buffering pair with pop;
	 * bottom is also an acquire that pairs with the release stores of
	 * bottom, so the slot and the task's data are visible. */
	int64_t t = atomic_load_explicit(&q->top, memory_order_seq_cst);
	int64_t b = atomic_load_explicit(&q->bottom, memory_order_seq_cst);
	if (t >= b)
		return CONC__STEAL_EMPTY; /* LP: steal-empty */
	conc_epoch_pin(q->ebr);
	/* acquire: pairs with the release store in grow (the copied slots). */
	struct conc__deque_buf *a = atomic_load_explicit(&q->buf, memory_order_acquire);
	struct conc__deque_slot *s = &a->slot[t & a->mask];
	/* relaxed: ordered by the acquire of bottom above; valid if the CAS
	 * below succeeds (the owner overwrites slot t only once top > t). */
	conc__task tk = {atomic_load_explicit(&s->fn, memory_order_relaxed),
			 atomic_load_explicit(&s->arg, memory_order_relaxed)};
	/* relaxed: as fn and arg; a stale tag only makes us skip, or try a
	 * CAS that then fails. */
	if (!any && atomic_load_explicit(&s->tag, memory_order_relaxed) != want) {
		conc_epoch_unpin(q->ebr);
		return CONC__STEAL_EMPTY; /* not ours to take */
	}
	conc__chaos_point(); /* a thief's path: between its loads and its CAS */
	bool won = atomic_compare_exchange_strong_explicit(
		&q->top, &t, t + 1, memory_order_seq_cst, memory_order_relaxed); /* LP: steal */
	conc_epoch_unpin(q->ebr);
	if (!won)
		return CONC__STEAL_RETRY;
	*out = tk;
	return CONC__STEAL_OK;
}

/* Any thread: take the oldest task. */
static inline int conc__deque_steal(conc__deque *q, conc__task *out)
{
	return conc__deque_steal_if(q, out, true, NULL);
}

/* Any thread: elements now (a snapshot; 0 when racing to empty). */
static inline size_t conc__deque_size(conc__deque *q)
{
	/* acquire: pairs with the release stores of bottom, the counters the
	 * caller sums are at least as new as what it saw before. */
	int64_t b = atomic_load_explicit(&q->bottom, memory_order_acquire);
	int64_t t = atomic_load_explicit(&q->top, memory_order_acquire);
	return b > t ? (size_t)(b - t) : 0;
}

#endif
