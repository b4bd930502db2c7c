/*
 * alg_queue.h (internal) - the queue's algorithm core: the push and try_pop
 * loops of the FAAArrayQueue (slot claim by fetch-and-add, the MS link and
 * tail swing, the head advance), written against base/atomics.h so
 * that src/queue/queue.c and the Relacy model (tests/models/relacy_queue.cc) run
 * the same code.  The argument (invariants, linearization points, why each
 * memory order) is in src/queue/queue.c's header comment.
 *
 * The includer provides, before including this file:
 *   CONC__Q_SEG_SLOTS (the largest segment), CONC__Q_SLOT_WAIT;
 *   optionally CONC__Q_CAP(s), segment s's capacity (CONC__Q_SEG_SLOTS by
 *     default; a power of two, at most CONC__Q_SEG_SLOTS), CONC__Q_SLOT(s, i),
 *     the position of slot index i in s (a permutation of [0, cap);
 *     identity by default), CONC__Q_NEXT_CAP(t), the capacity of the
 *     segment a single push links after the full segment t
 *     (CONC__Q_SEG_SLOTS by default), and CONC__Q_ESC_AT(s, p), the escape
 *     byte of slot position p (s->esc[p] by default);
 *   struct seg with CONC_ATOMIC enq, deq (uint_fast64_t), next and pending
 *     (struct seg *) and slot[] (uintptr_t: CONC__Q_EMPTY, CONC__Q_TAKEN,
 *     CONC__Q_ESC or an item's word), and CONC_PLAIN(unsigned char)
 *     escape bytes (the item of a slot whose word is CONC__Q_ESC);
 *   conc_queue with CONC_ATOMIC(struct seg *) head, tail;
 *   seg_get(q, cap) (a reset segment of capacity >= cap, or NULL),
 *     seg_put(q, s) (s was never published), seg_retire(q, s) (s left the
 *     list: reclaim it after a grace period).
 * The callers pin their epoch domain around these calls.
 * Only src/queue/queue.c includes it (the amalgamation inlines it there).
 */
#ifndef CONC_INTERNAL_ALG_QUEUE_H
#define CONC_INTERNAL_ALG_QUEUE_H

#include <errno.h>
#include <stddef.h>
#include <stdint.h>

#include "base/atomics.h"
#include "base/mutant.h"

/*
 * A segment's enq word: the count of indexes handed out (bits 0..47),
 * CONC__Q_END (bits 48..61: where a sealed segment ends), CONC__Q_CLOSED_BIT
 * (62: close reached the segment) and CONC__Q_SEAL_BIT (63: a batch sealed
 * the segment; no index from the end on holds an item, and the batch that
 * sealed it, in its pending field, is the only segment that may follow).
 * Pushes add 1 with a fetch-and-add; the seal is one CAS that sets the bit
 * and copies the count into the end field, so that the later pushes' adds
 * (each of which sees the bit and goes on) leave the end readable.
 */
#define CONC__Q_CLOSED_BIT ((uint_fast64_t)1 << 62)
#define CONC__Q_SEAL_BIT ((uint_fast64_t)1 << 63)
#define CONC__Q_END_SHIFT 48
#define CONC__Q_COUNT(e) ((e) & (((uint_fast64_t)1 << CONC__Q_END_SHIFT) - 1))
#define CONC__Q_SEALED(e) ((e) | CONC__Q_SEAL_BIT | (CONC__Q_COUNT(e) << CONC__Q_END_SHIFT))
#define CONC__Q_CLOSED_SEG ((struct seg *)(uintptr_t)1) /* never a segment address */

/* A test point on a batch's slow path (base/fault.h's conc__test_point in
 * the library; nothing in the Relacy model). */
#ifndef CONC__Q_TEST_POINT
#define CONC__Q_TEST_POINT(name) ((void)0)
#endif
#ifndef CONC__Q_CAP
#define CONC__Q_CAP(s) ((uint_fast64_t)CONC__Q_SEG_SLOTS)
#endif
#ifndef CONC__Q_NEXT_CAP
#define CONC__Q_NEXT_CAP(t) ((uint_fast64_t)CONC__Q_SEG_SLOTS)
#endif
#ifndef CONC__Q_ESC_AT
#define CONC__Q_ESC_AT(s, p) ((s)->esc[p])
#endif

/* Where segment s's items end, as its enq word e says: the end a seal
 * recorded, else the capacity.  Indexes from there on never hold an item. */
CONC_ALG_INLINE uint_fast64_t conc__q_lim(struct seg *s, uint_fast64_t e)
{
	(void)s;
	if (conc__unlikely(e & CONC__Q_SEAL_BIT))
		return (e >> CONC__Q_END_SHIFT) & ((CONC__Q_CLOSED_BIT >> CONC__Q_END_SHIFT) - 1);
	return CONC__Q_CAP(s);
}

/*
 * Slot words.  Every uintptr_t value is an item (the contract: any void *),
 * so no word can be kept back for the slot's own states; three small ones
 * are taken all the same, and the items that share them are escaped:
 *   CONC__Q_EMPTY (0)  no push has written the slot yet
 *   CONC__Q_TAKEN (1)  a pop burned the slot (its pusher was late)
 *   CONC__Q_ESC (2)    the item is esc[p], one of 0, 1, 2 (written before the
 *                   slot word, published by the same CAS)
 *   any other word  the item itself.
 * So items 0..2 cost one byte store more on push and one byte load on pop,
 * every other item nothing (one compare, as the old NULL test did); and
 * the escape is one compare with a constant (w <= CONC__Q_ESC), the same
 * for PIE and non-PIE programs: no item can collide with a mark (the marks
 * once were the addresses of two private objects, small fixed integers in
 * a non-PIE program).
 */
#define CONC__Q_EMPTY ((uintptr_t)0)
#define CONC__Q_TAKEN ((uintptr_t)1)
#define CONC__Q_ESC ((uintptr_t)2)

/* Index i's slot position in s.  Any permutation of [0, cap) is correct,
 * as long as every access to index i goes through it (the includer's walks
 * in index order too); an includer may map indexes so that consecutive
 * ones fall on different cache lines. */
#ifndef CONC__Q_SLOT
#define CONC__Q_SLOT(s, i) (i)
#endif

/* The slot word that stands for item w in slot position p of s: w itself,
 * or CONC__Q_ESC with w in its escape byte (items 0..2).  The byte is
 * plain: it is written by index p's one pusher (I3), or by a batch while
 * its segment is private, before the CAS that publishes the word, and read
 * only by whoever reads CONC__Q_ESC from that word (acquire).  A late
 * pusher whose CAS fails leaves a byte that nothing reads. */
CONC_ALG_INLINE uintptr_t conc__q_word(struct seg *s, uint_fast64_t p, uintptr_t w)
{
	if (conc__unlikely(w <= CONC__Q_ESC)) {
		conc_v(CONC__Q_ESC_AT(s, p)) = (unsigned char)w;
		return CONC__Q_ESC;
	}
	return w;
}

/* The item that slot word w (neither CONC__Q_EMPTY nor CONC__Q_TAKEN) at
 * position p of s stands for (the inverse of conc__q_word). */
CONC_ALG_INLINE void *conc__q_item(struct seg *s, uint_fast64_t p, uintptr_t w)
{
	if (conc__unlikely(w == CONC__Q_ESC))
		return (void *)(uintptr_t)conc_v(CONC__Q_ESC_AT(s, p));
	return (void *)w;
}

/* The link CAS's success order.  Only the Relacy harness overrides it (its
 * planted bug: the link weakened to relaxed must be reported). */
#ifndef CONC__Q_LINK_MO
#define CONC__Q_LINK_MO CONC_MO_SEQ_CST
#endif

/* Called after a push published its item at index i of segment t (the
 * slot path only; a push that links a new segment is rare).  queue.c's
 * contention pacing hooks in here; the Relacy model keeps the default. */
#ifndef CONC__Q_PUSHED
#define CONC__Q_PUSHED(t, i) ((void)0)
#endif

/* t's pushes are over (full, or sealed): link what may follow it, unless
 * something already does; the segment that follows t now (or NULL when t
 * is closed: CONC__Q_CLOSED_SEG).  e is t's enq word as last read; mine,
 * when not NULL, is what the caller would link after a full t. */
CONC_ALG_INLINE struct seg *conc__q_link_after(struct seg *t, uint_fast64_t e, struct seg *mine)
{
	struct seg *n = mine;
	/* A sealed segment is followed by the batch that sealed it, and by
	 * nothing else (any pusher that meets the seal links it: the batch
	 * may be preempted).  acquire: pairs with the batch's release CAS of
	 * pending, so the batch's segments are initialised before we
	 * publish them (our link is release too).  (The seq_cst read of the
	 * sealed enq word that brought us here already synchronises with the
	 * seal, which the batch made after it set pending: belt and braces,
	 * and free on x86.) */
	if (e & CONC__Q_SEAL_BIT)
		n = conc_ld(&t->pending, CONC_MO_ACQUIRE);
	struct seg *expect = NULL;
	/* seq_cst: publishes n (release part) and is the publishing write
	 * of park.h's protocol for the items already in n.  acquire on
	 * failure: the segment found is read next. */
	if (n && conc_cas(&t->next, &expect, n, CONC__Q_LINK_MO, /* LP: push (a batch linked by a helper) */
			  CONC_MO_ACQUIRE))
		return n;
	if (!n) /* acquire: as above */
		expect = conc_ld(&t->next, CONC_MO_ACQUIRE);
	return expect;
}

/*
 * Close's marks from the tail on: CONC__Q_CLOSED_BIT in the tail segment's
 * enq (pushes see it in their own fetch-and-add), then its next from NULL
 * to CONC__Q_CLOSED_SEG; if a segment was linked first, the same on that
 * one.  The list's end is marked when this returns (LP: close, the CAS
 * that succeeds or the load that finds the mark).  Run by close, and by
 * every push that sees the bit before it returns EPIPE: a pusher that had
 * claimed an index past a full t before close may still be about to link
 * a segment after t, and had that link come after an EPIPE (and a pop
 * after it that found the queue empty), no order of the calls would
 * explain its item (test_queue_push_epipe_after_close_marks_end).
 */
CONC_ALG_INLINE void conc__q_mark_end(conc_queue *q)
{
	for (;;) {
		/* acquire: as in push */
		struct seg *t = conc_ld(&q->tail, CONC_MO_ACQUIRE);
		/* seq_cst: pushes see the bit in their own fetch-and-add */
		conc_for(&t->enq, CONC__Q_CLOSED_BIT, CONC_MO_SEQ_CST);
		CONC__Q_TEST_POINT("queue.close.marked");
		struct seg *n = NULL;
		/* seq_cst: in S with the links' CASes; acquire on failure: the
		 * segment found is read next */
		if (conc_cas(&t->next, &n, CONC__Q_CLOSED_SEG, CONC_MO_SEQ_CST, CONC_MO_ACQUIRE) ||
		    n == CONC__Q_CLOSED_SEG)
			return;
		/* a segment was linked after t: mark that one too.  release:
		 * as in push */
		conc_cas(&q->tail, &t, n, CONC_MO_RELEASE, CONC_MO_RELAXED);
	}
}

/* Push item; 0, EPIPE (closed) or ENOMEM (nothing published). */
CONC_ALG_INLINE int conc__q_push(conc_queue *q, void *item)
{
	uintptr_t w = (uintptr_t)item;
	for (;;) {
		/* acquire: pairs with the CASes that move tail, so the segment's
		 * initialisation is visible */
		struct seg *t = conc_ld(&q->tail, CONC_MO_ACQUIRE);
		/* seq_cst: the emptiness check of pop (a seq_cst load of enq)
		 * and a sleeper's re-check rely on the single order S; on x86
		 * every RMW is a full barrier anyway.  A closed or sealed
		 * segment's word is far above any capacity: one compare
		 * sends both to the slow path. */
		uint_fast64_t i = conc_faa(&t->enq, 1, CONC_MO_SEQ_CST);
		if (conc__likely(i < CONC__Q_CAP(t))) {
			uint_fast64_t p = CONC__Q_SLOT(t, i);
			uintptr_t empty = CONC__Q_EMPTY;
			/* seq_cst: the publishing write of park.h's protocol, and
			 * the release of what the caller wrote before the push
			 * (and of the escape byte) for the pop's acquire load.
			 * A CAS, not an exchange: a slot a pop burned keeps
			 * CONC__Q_TAKEN, so a word other than EMPTY/TAKEN in a
			 * slot is always an item that was in the queue
			 * (is_empty relies on it).  relaxed on failure:
			 * nothing is read through CONC__Q_TAKEN. */
			if (conc_cas(&t->slot[p], &empty, conc__q_word(t, p, w), /* LP: push */
				     CONC__MUTANT_MO(1, CONC_MO_SEQ_CST), CONC_MO_RELAXED)) {
				CONC__Q_PUSHED(t, i);
				return 0;
			}
			/* It was CONC__Q_TAKEN: a pop gave up on our slot (I3).
			 * Next index. */
			conc__chaos_point(); /* a retry: the slow path */
			continue;
		}
		if (conc__unlikely(i & CONC__Q_CLOSED_BIT)) {
			conc__q_mark_end(q); /* before EPIPE: see there */
			return EPIPE;
		}
		/* t is full or sealed: help link or advance (Michael-Scott). */
		struct seg *n = conc_ld(&t->next, CONC_MO_ACQUIRE);
		if (!n && (i & CONC__Q_SEAL_BIT))
			n = conc__q_link_after(t, i, NULL);
		if (n == CONC__Q_CLOSED_SEG)
			return EPIPE;
		if (n) {
			/* release: publishes n's initialisation to tail readers */
			conc_cas(&q->tail, &t, n, CONC_MO_RELEASE, CONC_MO_RELAXED);
			conc__chaos_point(); /* between the help and the next load */
			continue;
		}
		CONC__Q_TEST_POINT("queue.push.link");
		struct seg *s = seg_get(q, CONC__Q_NEXT_CAP(t));
		if (!s)
			return ENOMEM; /* nothing published: the queue is unchanged */
		/* relaxed (both): s is private until the link CAS publishes it */
		conc_st(&s->slot[CONC__Q_SLOT(s, 0)], conc__q_word(s, CONC__Q_SLOT(s, 0), w),
			CONC_MO_RELAXED);
		conc_st(&s->enq, 1, CONC_MO_RELAXED);
		struct seg *expect = NULL;
		/* seq_cst: publishes s (release part) and is the publishing
		 * write of park.h's protocol for the item in slot 0. */
		if (conc_cas(&t->next, &expect, s, CONC__Q_LINK_MO, /* LP: push */
			     CONC_MO_ACQUIRE)) {
			conc_cas(&q->tail, &t, s, CONC_MO_RELEASE, CONC_MO_RELAXED);
			return 0;
		}
		seg_put(q, s); /* never published */
		if (expect == CONC__Q_CLOSED_SEG)
			return EPIPE;
		conc_cas(&q->tail, &t, expect, CONC_MO_RELEASE, CONC_MO_RELAXED);
		conc__chaos_point(); /* lost the link: a retry */
	}
}

/*
 * Push items[0..n) (n >= 1) as one batch: 0, EPIPE or ENOMEM, nothing
 * pushed on failure.  The batch is written into private segments first
 * (first .. last, linked by next, each full but maybe the last; capacities
 * from seg_get), and then the first is linked after the tail segment t
 * with one CAS, as a single push links a new segment: that CAS is the
 * batch's LP, so its items appear at once, consecutive and in order.
 * A t that still has room must take no push after the batch: the batch
 * first claims t's pending field for its first segment (so that every
 * pusher that meets the seal can link it: nobody waits for a preempted
 * batch), then seals t with one CAS on enq (SEAL bit and the end; indexes
 * claimed before it are items before the batch, later pushes see the bit
 * in their fetch-and-add and go on after it), then links.  A batch that
 * finds another batch's pending field set helps that one (seal, link) and
 * retries on the new tail.  The slots from the end up to the capacity are
 * lost (pops skip them); see queue.c for the bound.
 */
CONC_ALG_INLINE int conc__q_link_batch(conc_queue *q, struct seg *first, struct seg *last)
{
	struct seg *t;
	for (;;) {
		/* acquire: as in push */
		t = conc_ld(&q->tail, CONC_MO_ACQUIRE);
		/* acquire (both): the segment found next is read */
		struct seg *n = conc_ld(&t->next, CONC_MO_ACQUIRE);
		if (n == first)
			break; /* a helper linked it for us */
		if (n == CONC__Q_CLOSED_SEG)
			return EPIPE;
		if (n) {
			/* release: as in push */
			conc_cas(&q->tail, &t, n, CONC_MO_RELEASE, CONC_MO_RELAXED);
			continue;
		}
		/* seq_cst: read in the order S of the pushes' fetch-and-adds
		 * and of close's fetch_or */
		uint_fast64_t e = conc_ld(&t->enq, CONC_MO_SEQ_CST);
		if (e & CONC__Q_CLOSED_BIT) {
			/* close is under way here: finish its seal of next, so
			 * that nobody can still link our batch after t, and see
			 * (next round) whether someone did */
			struct seg *x = NULL;
			/* seq_cst: as close's own CAS */
			conc_cas(&t->next, &x, CONC__Q_CLOSED_SEG, CONC_MO_SEQ_CST, CONC_MO_RELAXED);
			continue;
		}
		if (!(e & CONC__Q_SEAL_BIT) && CONC__Q_COUNT(e) < CONC__Q_CAP(t)) {
			/* Room in t: claim its pending field (or find the batch
			 * that did), then seal t for that batch.  release:
			 * publishes our segments' contents to the helpers that
			 * load pending (acquire) and link them. */
			struct seg *p = NULL;
			conc_cas(&t->pending, &p, first, CONC_MO_RELEASE, CONC_MO_ACQUIRE);
			CONC__Q_TEST_POINT("queue.batch.pending");
			while (!(e & (CONC__Q_SEAL_BIT | CONC__Q_CLOSED_BIT)) &&
			       CONC__Q_COUNT(e) < CONC__Q_CAP(t)) {
				/* seq_cst: the seal takes its place in S after
				 * the fetch-and-adds whose indexes are below the
				 * end and before those that see the bit */
				if (conc_cas(&t->enq, &e, CONC__Q_SEALED(e), CONC_MO_SEQ_CST,
					     CONC_MO_SEQ_CST))
					e = CONC__Q_SEALED(e);
			}
			/* Closed before anyone sealed t: nobody may link after
			 * it now (close seals next); see next round whether
			 * someone did.  Sealed and then closed: the seal was
			 * for the batch in pending, ours or another's, and a
			 * helper may have linked it and moved the tail on
			 * already; link_after below settles t's next either way
			 * (that batch, or close's mark), which the round-again
			 * path could not see once the tail had moved. */
			if ((e & CONC__Q_CLOSED_BIT) && !(e & CONC__Q_SEAL_BIT))
				continue;
			conc__chaos_point(); /* sealed, not linked yet: helpers link */
			CONC__Q_TEST_POINT("queue.batch.sealed");
		}
		/* t is sealed (its pending follows it) or full (ours may) */
		n = conc__q_link_after(t, e, first);
		if (n == first)
			break;
		if (n && n != CONC__Q_CLOSED_SEG)
			/* release: as in push */
			conc_cas(&q->tail, &t, n, CONC_MO_RELEASE, CONC_MO_RELAXED);
	}
	/* Linked (LP: the link CAS, ours or a helper's).  Move the tail along
	 * our segments (each full; pushers that find one help the same way).
	 * They cannot be reclaimed under us: we are still pinned.  Their next
	 * links were set before they were published and never change. */
	/* release: as in push */
	conc_cas(&q->tail, &t, first, CONC_MO_RELEASE, CONC_MO_RELAXED);
	for (struct seg *s = first; s != last;) {
		struct seg *n = conc_ld(&s->next, CONC_MO_ACQUIRE);
		struct seg *from = s;
		conc_cas(&q->tail, &from, n, CONC_MO_RELEASE, CONC_MO_RELAXED);
		s = n;
	}
	return 0;
}

/* h is exhausted and n follows it: move head on (tail first, I1/I4). */
CONC_ALG_INLINE void conc__q_advance_head(conc_queue *q, struct seg *h, struct seg *n)
{
	struct seg *t = conc_ld(&q->tail, CONC_MO_ACQUIRE);
	if (t == h)
		/* release: publishes n's initialisation to tail readers */
		conc_cas(&q->tail, &t, n, CONC_MO_RELEASE, CONC_MO_RELAXED);
	/* release: publishes n to head readers (acquire in try_pop). */
	if (CONC__MUTANT_VALUE(9, conc_cas(&q->head, &h, n, CONC_MO_RELEASE, CONC_MO_RELAXED),
			       (conc_st(&q->head, n, CONC_MO_RELEASE), 1)))
		seg_retire(q, h); /* I4: head and tail have both left h */
}

/*
 * The pop of index i of h, which this pop claimed (I3: ours alone): true
 * and *item when the slot holds an item, now or after a short wait for its
 * pusher; false when the slot is burned (the pusher was late: it retries
 * elsewhere) or dead (i at or past where h's items end: h is full or was
 * sealed; *dead true then).  Its pusher writes the slot once, so a load
 * that finds an item takes it: no RMW.  quick: burn at once an index that
 * no push has claimed yet (try_pop_n, which found it past enq) rather than
 * wait for one.
 */
CONC_ALG_INLINE bool conc__q_take(struct seg *h, uint_fast64_t i, void **item, bool quick,
				  bool *dead)
{
	uint_fast64_t p = CONC__Q_SLOT(h, i);
	/* acquire: pairs with the pusher's seq_cst CAS (or the link CAS
	 * that published a batch); makes what the caller wrote before the
	 * push visible (the item's word comes with the load itself, an
	 * escaped item's byte after it). */
	uintptr_t w = conc_ld(&h->slot[p], CONC_MO_ACQUIRE); /* LP: pop (found the item) */
	if (conc__unlikely(w == CONC__Q_EMPTY)) {
		/* seq_cst: after our claim of i in S, so a push that claims
		 * i later is not missed, and a seal before it is seen */
		uint_fast64_t e = conc_ld(&h->enq, CONC_MO_SEQ_CST);
		if (i >= conc__q_lim(h, e)) {
			*dead = true; /* no push writes it: nothing to burn */
			return false;
		}
		/* Our slot's pusher may be between its fetch-and-add and its
		 * CAS: wait a little before making it retry. */
		bool claimed = !quick || CONC__Q_COUNT(e) > i;
		for (int k = 0; claimed && w == CONC__Q_EMPTY && k < CONC__Q_SLOT_WAIT; k++) {
			conc__cpu_relax();
			w = conc_ld(&h->slot[p], CONC_MO_ACQUIRE); /* LP: pop (found the item) */
		}
		/* Still empty: burn the slot.  CONC__Q_TAKEN tells a late
		 * pusher to retry elsewhere; acquire, as above, in case the
		 * pusher got there first after all.  The word swapped out is
		 * CONC__Q_EMPTY or an item's word (CONC__Q_ESC included): one
		 * pop per index (I3), and a segment's slots are reset before
		 * reuse. */
		if (w == CONC__Q_EMPTY)
			w = conc_xchg(&h->slot[p], CONC__Q_TAKEN, CONC_MO_ACQUIRE); /* LP: pop (item) */
		if (w == CONC__Q_EMPTY)
			return false;
	}
	*item = conc__q_item(h, p, w);
	return true;
}

CONC_ALG_INLINE bool conc__q_try_pop(conc_queue *q, void **item)
{
	for (;;) {
		/* acquire: pairs with the CAS that moved head here */
		struct seg *h = conc_ld(&q->head, CONC_MO_ACQUIRE);
		/* seq_cst (both): the pop-empty argument in queue.c */
		uint_fast64_t d = conc_ld(&h->deq, CONC_MO_SEQ_CST);
		uint_fast64_t ew = conc_ld(&h->enq, CONC_MO_SEQ_CST); /* LP: pop-empty */
		if (conc__unlikely(d >= CONC__Q_COUNT(ew))) {
			struct seg *n = conc_ld(&h->next, CONC_MO_SEQ_CST);
			if (!n || n == CONC__Q_CLOSED_SEG)
				return false; /* empty */
			if (d >= conc__q_lim(h, ew)) {
				conc__q_advance_head(q, h, n);
				conc__chaos_point(); /* h may be retired now */
				continue;
			}
		}
		/* seq_cst: see push's fetch-and-add */
		uint_fast64_t i = conc_faa(&h->deq, 1, CONC_MO_SEQ_CST);
		/* Past the capacity: h is exhausted.  Past a seal's end (below
		 * the capacity) the slot is empty: conc__q_take tells. */
		bool dead = i >= CONC__Q_CAP(h);
		if (conc__likely(!dead)) {
			if (conc__likely(conc__q_take(h, i, item, false, &dead)))
				return true;
			if (!dead) {
				conc__chaos_point(); /* burned a slot: a retry */
				continue;
			}
		}
		/* i is past h's items: h is exhausted */
		struct seg *n = conc_ld(&h->next, CONC_MO_SEQ_CST);
		if (!n || n == CONC__Q_CLOSED_SEG)
			return false; /* LP: pop-empty (every index of h with an item claimed) */
		conc__q_advance_head(q, h, n);
		conc__chaos_point(); /* h may be retired now */
	}
}

/* Take up to max items from the head, in FIFO order, into items[]; how
 * many were taken.  Where the head segment holds items already published
 * (deq < enq), one fetch-and-add on deq claims a run of them (as many as
 * enq - deq, up to what is still wanted); each index of the run is then
 * popped as conc__q_try_pop pops one (conc__q_take: the index is ours
 * alone), so each item taken is its own pop, linearized where that pop's
 * load (or exchange) finds it.  A run can reach past enq when other pops
 * claimed meanwhile: an index that no push has claimed yet is burned at
 * once rather than waited for, since no pusher can be between its
 * fetch-and-add and its CAS there.  Where nothing can be claimed at once,
 * one conc__q_try_pop decides (it moves the head on, or finds the queue
 * empty: then the batch ends).  A whole batch segment is one run. */
CONC_ALG_INLINE size_t conc__q_try_pop_n(conc_queue *q, void **items, size_t max)
{
	size_t got = 0;
	while (got < max) {
		/* acquire: pairs with the CAS that moved head here */
		struct seg *h = conc_ld(&q->head, CONC_MO_ACQUIRE);
		/* seq_cst (both): as in conc__q_try_pop */
		uint_fast64_t d = conc_ld(&h->deq, CONC_MO_SEQ_CST);
		uint_fast64_t ew = conc_ld(&h->enq, CONC_MO_SEQ_CST);
		uint_fast64_t e = CONC__Q_COUNT(ew), lim = conc__q_lim(h, ew);
		if (e > lim)
			e = lim;
		if (d >= e) {
			if (!conc__q_try_pop(q, &items[got]))
				break; /* empty */
			got++;
			continue;
		}
		uint_fast64_t k = e - d;
		if (k > max - got)
			k = max - got;
		/* seq_cst: see push's fetch-and-add */
		uint_fast64_t i = conc_faa(&h->deq, k, CONC_MO_SEQ_CST);
		uint_fast64_t end = i + k;
		if (end > lim)
			end = lim; /* the rest: the next round advances */
		for (; i < end; i++) {
			bool dead = false;
			if (conc__q_take(h, i, &items[got], true, &dead))
				got++;
			else if (dead)
				break; /* sealed meanwhile: the next round advances */
		}
		conc__chaos_point(); /* between runs */
	}
	return got;
}

#endif
