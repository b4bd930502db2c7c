/*
 * alg_queue.h (internal) - the queue's algorithm core: the push and try_pop
 * loops of the FAAArrayQueue (slot claim by fetch-and-add, the MS link and
 * tail swing, the head advance), written against base/atomics.h so
 * that src/queue/queue.c and the Relacy model (tests/models/relacy_queue.cc) run
 * the same code.  The argument (invariants, linearization points, why each
 * memory order) is in src/queue/queue.c's header comment.
 *
 * The includer provides, before including this file:
 *   CONC__Q_SEG_SLOTS, CONC__Q_SLOT_WAIT;
 *   optionally CONC__Q_SLOT(i), the position of slot index i (a
 *     permutation of [0, CONC__Q_SEG_SLOTS); identity by default);
 *   struct seg with CONC_ATOMIC enq, deq (uint_fast64_t), next (struct
 *     seg *) and slot[CONC__Q_SEG_SLOTS] (uintptr_t: CONC__Q_EMPTY, CONC__Q_TAKEN,
 *     CONC__Q_ESC or an item's word), and CONC_PLAIN(unsigned char)
 *     esc[CONC__Q_SEG_SLOTS] (the item of a slot whose word is CONC__Q_ESC);
 *   conc_queue with CONC_ATOMIC(struct seg *) head, tail;
 *   seg_get(q) (a reset segment, or NULL), seg_put(q, s) (s was never
 *     published), seg_retire(q, s) (s left the list: reclaim it after a
 *     grace period).
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

#define CONC__Q_CLOSED_BIT ((uint_fast64_t)1 << 62)
#define CONC__Q_CLOSED_SEG ((struct seg *)(uintptr_t)1) /* never a segment address */

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

/* Index i's slot position.  Any permutation of [0, CONC__Q_SEG_SLOTS) is correct,
 * as long as every access to index i goes through it (the includer's walks
 * in index order too); an includer may map indexes so that consecutive
 * ones fall on different cache lines. */
#ifndef CONC__Q_SLOT
#define CONC__Q_SLOT(i) (i)
#endif

/* The slot word that stands for item w in slot position p of s: w itself,
 * or CONC__Q_ESC with w in s->esc[p] (items 0..2).  The byte is plain: it is
 * written by index p's one pusher (I3) before the CAS that publishes the
 * word, and read only by whoever reads CONC__Q_ESC from that word (acquire).
 * A late pusher whose CAS fails leaves a byte that nothing reads. */
CONC_ALG_INLINE uintptr_t conc__q_word(struct seg *s, uint_fast64_t p, uintptr_t w)
{
	if (conc__unlikely(w <= CONC__Q_ESC)) {
		conc_v(s->esc[p]) = (unsigned char)w;
		return CONC__Q_ESC;
	}
	return w;
}

/* The item that slot word w (neither CONC__Q_EMPTY nor CONC__Q_TAKEN) at
 * position p of s stands for (the inverse of conc__q_word). */
CONC_ALG_INLINE void *conc__q_item(struct seg *s, uint_fast64_t p, uintptr_t w)
{
	if (conc__unlikely(w == CONC__Q_ESC))
		return (void *)(uintptr_t)conc_v(s->esc[p]);
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
		 * every RMW is a full barrier anyway. */
		uint_fast64_t i = conc_faa(&t->enq, 1, CONC_MO_SEQ_CST);
		if (conc__unlikely(i & CONC__Q_CLOSED_BIT))
			return EPIPE;
		if (conc__likely(i < CONC__Q_SEG_SLOTS)) {
			uint_fast64_t p = CONC__Q_SLOT(i);
			uintptr_t empty = CONC__Q_EMPTY;
			/* seq_cst: the publishing write of park.h's protocol, and
			 * the release of what the caller wrote before the push
			 * (and of esc[p]) for the pop's acquire load.  A CAS,
			 * not an exchange: a slot a pop burned keeps CONC__Q_TAKEN,
			 * so a word other than EMPTY/TAKEN in a slot is always
			 * an item that was in the queue (is_empty relies on
			 * it).  relaxed on failure: nothing is read through
			 * CONC__Q_TAKEN. */
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
		/* t is full: help link or advance (Michael-Scott). */
		struct seg *n = conc_ld(&t->next, CONC_MO_ACQUIRE);
		if (n == CONC__Q_CLOSED_SEG)
			return EPIPE;
		if (n) {
			/* release: publishes n's initialisation to tail readers */
			conc_cas(&q->tail, &t, n, CONC_MO_RELEASE, CONC_MO_RELAXED);
			conc__chaos_point(); /* between the help and the next load */
			continue;
		}
		struct seg *s = seg_get(q);
		if (!s)
			return ENOMEM; /* nothing published: the queue is unchanged */
		/* relaxed (both): s is private until the link CAS publishes it */
		conc_st(&s->slot[CONC__Q_SLOT(0)], conc__q_word(s, CONC__Q_SLOT(0), w),
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

CONC_ALG_INLINE bool conc__q_try_pop(conc_queue *q, void **item)
{
	for (;;) {
		/* acquire: pairs with the CAS that moved head here */
		struct seg *h = conc_ld(&q->head, CONC_MO_ACQUIRE);
		/* seq_cst (both): the pop-empty argument in queue.c */
		uint_fast64_t d = conc_ld(&h->deq, CONC_MO_SEQ_CST);
		uint_fast64_t e = conc_ld(&h->enq, CONC_MO_SEQ_CST) /* LP: pop-empty */
				  & ~CONC__Q_CLOSED_BIT;
		if (d >= e) {
			struct seg *n = conc_ld(&h->next, CONC_MO_SEQ_CST);
			if (!n || n == CONC__Q_CLOSED_SEG)
				return false; /* empty */
			if (d >= CONC__Q_SEG_SLOTS) {
				conc__q_advance_head(q, h, n);
				conc__chaos_point(); /* h may be retired now */
				continue;
			}
		}
		/* seq_cst: see push's fetch-and-add */
		uint_fast64_t i = conc_faa(&h->deq, 1, CONC_MO_SEQ_CST);
		if (i >= CONC__Q_SEG_SLOTS) {
			struct seg *n = conc_ld(&h->next, CONC_MO_SEQ_CST);
			if (!n || n == CONC__Q_CLOSED_SEG)
				return false; /* LP: pop-empty (every slot of h claimed) */
			conc__q_advance_head(q, h, n);
			conc__chaos_point(); /* h may be retired now */
			continue;
		}
		uint_fast64_t p = CONC__Q_SLOT(i);
		/* Index i is ours alone (I3) and its pusher writes the slot
		 * once, so a load that finds an item takes it: no RMW.
		 * acquire: pairs with the pusher's seq_cst CAS; makes what
		 * the caller wrote before the push visible (the item's word
		 * comes with the load itself, an escaped item's byte after
		 * it). */
		uintptr_t w = conc_ld(&h->slot[p], CONC_MO_ACQUIRE); /* LP: pop (found the item) */
		/* Our slot's pusher may be between its fetch-and-add and its
		 * exchange: wait a little before making it retry. */
		for (int k = 0; w == CONC__Q_EMPTY && k < CONC__Q_SLOT_WAIT; k++) {
			conc__cpu_relax();
			w = conc_ld(&h->slot[p], CONC_MO_ACQUIRE); /* LP: pop (found the item) */
		}
		/* Still empty: burn the slot.  CONC__Q_TAKEN tells a late pusher
		 * to retry elsewhere; acquire, as above, in case the pusher
		 * got there first after all.  The word swapped out is
		 * CONC__Q_EMPTY or an item's word (CONC__Q_ESC included): one pop
		 * per index (I3), and a segment's slots are reset before
		 * reuse. */
		if (w == CONC__Q_EMPTY)
			w = conc_xchg(&h->slot[p], CONC__Q_TAKEN, CONC_MO_ACQUIRE); /* LP: pop (item) */
		if (w != CONC__Q_EMPTY) {
			*item = conc__q_item(h, p, w);
			return true;
		}
		conc__chaos_point(); /* burned a slot: a retry */
	}
}

/* Take up to max items from the head, in FIFO order, into items[]; how
 * many were taken.  Where the head segment holds items already published
 * (deq < enq), one fetch-and-add on deq claims a run of them (as many as
 * enq - deq, up to what is still wanted); each index of the run is then
 * popped as conc__q_try_pop pops one (the same I3 argument: the index is
 * ours alone), so each item taken is its own pop, linearized where that
 * pop's load (or exchange) finds it.  A run can reach past enq when other
 * pops claimed meanwhile: an index that no push has claimed yet (enq, read
 * again, is not past it) is burned at once rather than waited for, since
 * no pusher can be between its fetch-and-add and its CAS there.  Where
 * nothing can be claimed at once, one conc__q_try_pop decides (it moves
 * the head on, or finds the queue empty: then the batch ends). */
CONC_ALG_INLINE size_t conc__q_try_pop_n(conc_queue *q, void **items, size_t max)
{
	size_t got = 0;
	while (got < max) {
		/* acquire: pairs with the CAS that moved head here */
		struct seg *h = conc_ld(&q->head, CONC_MO_ACQUIRE);
		/* seq_cst (both): as in conc__q_try_pop */
		uint_fast64_t d = conc_ld(&h->deq, CONC_MO_SEQ_CST);
		uint_fast64_t e = conc_ld(&h->enq, CONC_MO_SEQ_CST) & ~CONC__Q_CLOSED_BIT;
		if (e > CONC__Q_SEG_SLOTS)
			e = CONC__Q_SEG_SLOTS;
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
		if (end > CONC__Q_SEG_SLOTS)
			end = CONC__Q_SEG_SLOTS; /* the rest: the next round advances */
		for (; i < end; i++) {
			uint_fast64_t p = CONC__Q_SLOT(i);
			/* acquire: as in conc__q_try_pop */
			uintptr_t w = conc_ld(&h->slot[p], CONC_MO_ACQUIRE); /* LP: pop (found the item) */
			if (w == CONC__Q_EMPTY) {
				/* seq_cst: orders after our fetch-and-add, so a
				 * pusher that claims i later is not missed */
				uint_fast64_t en = conc_ld(&h->enq, CONC_MO_SEQ_CST) &
						   ~CONC__Q_CLOSED_BIT;
				for (int r = 0; en > i && w == CONC__Q_EMPTY && r < CONC__Q_SLOT_WAIT;
				     r++) {
					conc__cpu_relax();
					w = conc_ld(&h->slot[p], CONC_MO_ACQUIRE); /* LP: pop (found the item) */
				}
				if (w == CONC__Q_EMPTY) /* acquire: as in conc__q_try_pop */
					w = conc_xchg(&h->slot[p], CONC__Q_TAKEN, /* LP: pop (item) */
						      CONC_MO_ACQUIRE);
			}
			if (w != CONC__Q_EMPTY)
				items[got++] = conc__q_item(h, p, w);
		}
		conc__chaos_point(); /* between runs */
	}
	return got;
}

#endif
