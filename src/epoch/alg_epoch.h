/*
 * alg_epoch.h (internal) - the epoch core: the pin announcement and its
 * barrier, the unpin release, the retire tag, the advance (the check over
 * the participants, the barrier, the CAS) and the due test, written
 * against base/atomics.h so that src/epoch/epoch.c and the Relacy model
 * (tests/models/relacy_epoch.cc) run the same code.  The grace-period
 * proof and the registration, bags and locks around it are in src/epoch/epoch.c.
 *
 * A record's state word is (e mod 2^32) << 32 | depth (pinned iff the
 * depth is not 0, having read E = e at the outermost pin); the domain's
 * epoch E only grows, by the CAS of an advance.  Both are plain uint64_t
 * accessed atomically in C (conc/epoch.h's inline pin reads them as C++
 * too), rl::atomic in the model.
 *
 * fence: true in fence mode (no membarrier: pin and the tag read need a
 * seq_cst fence of their own); false when the advancer's heavy barrier
 * (membarrier) stands in for them - the model has no membarrier and runs
 * fence mode, its planted bug is a pin without either.
 */
#ifndef CONC_INTERNAL_ALG_EPOCH_H
#define CONC_INTERNAL_ALG_EPOCH_H

#include <stdint.h>

#include "base/atomics.h"
#include "epoch/epoch_internal.h"
#include "base/mutant.h"

/* The reader's half of the pin/advance barrier pair. */
CONC_ALG_INLINE void conc__ebr_light_barrier(bool fence)
{
	if (conc__unlikely(fence))
		conc_fence(CONC_MO_SEQ_CST);
	else
		conc__compiler_barrier();
}

/* Outermost pin: announce "pinned at E" (LP: pin), then the light barrier
 * orders the announcement before the section's loads.  relaxed (both): a
 * stale E only makes this pin hold advances back longer. */
CONC_ALG_INLINE void conc__ebr_pin(CONC_RAW_ATOMIC(uint64_t) *state,
				 CONC_RAW_ATOMIC(uint64_t) *epoch, bool fence)
{
	uint64_t e = conc_raw_ld(epoch, CONC_MO_RELAXED);
	/* chaos mode (the slow path only; the header's inline pin has no
	 * chaos point, and is never armed in chaos mode): a pin store delayed
	 * after its load of E, the stale-pin case of src/epoch/epoch.c's proof */
	conc__chaos_point();
	conc_raw_st(state, e << 32 | 1, CONC_MO_RELAXED); /* LP: pin */
	conc__ebr_light_barrier(fence);
}

/* Outermost unpin.  release: everything the section did happens-before an
 * advance whose scan reads this store (acquire), hence before the
 * callbacks that advance lets run. */
CONC_ALG_INLINE void conc__ebr_unpin(CONC_RAW_ATOMIC(uint64_t) *state)
{
	conc_raw_st(state, 0, CONC_MO_RELEASE);
}

/* The epoch a collector acts on.  acquire: pairs with the release CAS of
 * an advance, so that a collector that sees E >= t + GRACE also sees the
 * critical sections that the advance waited for as finished. */
CONC_ALG_INLINE uint64_t conc__ebr_load_epoch(CONC_RAW_ATOMIC(uint64_t) *epoch)
{
	return conc_raw_ld(epoch, CONC_MO_ACQUIRE);
}

/* The tag of a node retired now.  Read after the caller's unlink; in fence
 * mode a seq_cst fence orders the two, with membarrier the proof needs
 * only program order (the compiler barrier keeps the compiler to it). */
CONC_ALG_INLINE uint64_t conc__ebr_retire_tag(CONC_RAW_ATOMIC(uint64_t) *epoch, bool fence)
{
	conc__ebr_light_barrier(fence);
	return conc__ebr_load_epoch(epoch);
}

/* Whether a node tagged t may run at epoch e. */
CONC_ALG_INLINE bool conc__ebr_due(uint64_t t, uint64_t e)
{
	return t + CONC__MUTANT_VALUE(4, CONC__EPOCH_GRACE, 1) <= e;
}

/* Whether the record with this state word holds the advance from e back:
 * pinned, at another epoch.  mo: relaxed for the cheap look, acquire for
 * the decisive scan (pairs with unpin's release). */
CONC_ALG_INLINE bool conc__ebr_holds_back(CONC_RAW_ATOMIC(uint64_t) *state, uint64_t e,
					CONC_MO_T mo)
{
	uint64_t s = conc_raw_ld(state, mo);
	return (uint32_t)s != 0 && (uint32_t)(s >> 32) != (uint32_t)e;
}

/*
 * The record slot handover (src/epoch/epoch.c: rec_set_free, rec_is_free).  A
 * thread's record may be dropped by another thread (a destroy of its
 * domain, fork's child) while its owner later reuses the free slot without
 * a lock; freeing is the drop's last write, a release, and the owner's
 * look for a free slot an acquire, so the drop's writes (links, the state
 * word) happen-before the owner's reuse and cannot land on the record once
 * it is linked into another domain.  tests/models/relacy_record.cc runs
 * these two with a drop and a reuse.
 */
#define CONC__EBR_SLOT_MO(mo) CONC__MUTANT_MO(11, mo)

CONC_ALG_INLINE void conc__ebr_slot_free(CONC_RAW_ATOMIC(struct conc_epoch *) *slot,
				       struct conc_epoch *free_mark)
{
	/* release: publishes every write of the drop; pairs with the
	 * acquire in conc__ebr_slot_owner */
	conc_raw_st(slot, free_mark, CONC__EBR_SLOT_MO(CONC_MO_RELEASE));
}

CONC_ALG_INLINE struct conc_epoch *conc__ebr_slot_owner(CONC_RAW_ATOMIC(struct conc_epoch *) *slot)
{
	/* acquire: pairs with conc__ebr_slot_free's release */
	return conc_raw_ld(slot, CONC__EBR_SLOT_MO(CONC_MO_ACQUIRE));
}

/*
 * Try to move E from e to e+1: read E, a cheap look over the participants
 * (all_at(ctx, e, relaxed): a pin at an older epoch that is already
 * visible fails the advance anyway, so don't pay the heavy barrier for
 * it), the heavy barrier, the decisive scan (all_at(ctx, e, acquire): every
 * pinned participant is at e), then the CAS.  all_at returns whether no
 * participant holds e back (conc__ebr_holds_back on each).  Returns true
 * when E moved (by us); a failed CAS means another advancer moved it.
 */
CONC_ALG_INLINE bool conc__ebr_try_advance(CONC_RAW_ATOMIC(uint64_t) *epoch,
					 bool (*all_at)(void *ctx, uint64_t e, CONC_MO_T mo),
					 void *ctx, void (*heavy_barrier)(void))
{
	uint64_t e = conc__ebr_load_epoch(epoch);
	if (!all_at(ctx, e, CONC_MO_RELAXED))
		return false;
	conc__chaos_point(); /* readers pin and unpin between the scans */
	heavy_barrier();
	if (!all_at(ctx, e, CONC_MO_ACQUIRE))
		return false;
	conc__chaos_point(); /* between the decisive scan and the CAS */
	/* release: carries the scan above to every collector that reads the
	 * new epoch with acquire */
	return conc_raw_cas(epoch, &e, e + 1, CONC_MO_RELEASE, CONC_MO_RELAXED); /* LP: advance */
}

/*
 * The owner-private bag and its steal handshake (src/epoch/epoch.c, "Bags":
 * states, edges and the proof).  A record's owner pushes onto its bag
 * lists with plain (relaxed) loads and stores, no locked RMW; the rare
 * thieves (a barrier's steal, help_others) take a whole list with an
 * exchange, and exclude the owner's plain push by an asymmetric handshake:
 *
 *   owner  ops := w+1 (release; in a bag op); light barrier; steal == 0 ?
 *            yes: plain push (load head, n->next, store head)
 *            no:  CAS push (release), as if the bag were shared
 *          ops := w+2 (release: publishes the push)
 *   thief  steal += 1; heavy barrier; look at ops until it is even or
 *          has moved on; take (exchange); steal -= 1 (release)
 *
 * ops is the owner's word: twice its retire count, plus 1 inside a bag
 * op.  steal counts the thieves between their ask and their done.
 * fence: as for pin - false when the thief's heavy barrier is membarrier
 * (the owner's light barrier is then a compiler barrier), true in fence
 * mode and in the model (tests/models/relacy_retire.cc), where both are
 * seq_cst fences.  slow: the caller is a slow path (chaos points allowed).
 * (mutant 12: the owner ignores the steal request - a thief's exchange can
 * then fall between the owner's load and store of the head.)
 */
/* The owner opens a bag op (ops = w+1); returns whether it may push
 * plainly (no thief asked). */
CONC_ALG_INLINE bool conc__ebr_own_enter(CONC_ATOMIC(uint64_t) *ops, uint64_t w,
				       CONC_ATOMIC(int) *steal, bool fence)
{
	/* The light barrier (with the thief's heavy one) orders this store
	 * before the load of steal - a store-load (Dekker) pair, the same as
	 * pin's against the advance.  release: a thief whose look reads this
	 * value (having first seen the previous op's odd value) takes at
	 * once, so it must also see the previous op's push - the release
	 * sequence of that op's exit no longer runs through this plain store
	 * (C++20), this release carries it.  (A plain mov on x86.) */
	conc_st(ops, w + 1, CONC_MO_RELEASE);
	conc__ebr_light_barrier(fence);
	/* acquire: a thief's done (release) carries its take, so that the
	 * head loaded by the plain push is the one the take left */
	return CONC__MUTANT_VALUE(12, conc_ld(steal, CONC_MO_ACQUIRE) == 0, true);
}

/* The plain push, inside a bag op that conc__ebr_own_enter allowed.
 * relaxed (both): no thief takes this list until ops moves on (the
 * handshake), and conc__ebr_own_exit's release publishes. */
CONC_ALG_INLINE void conc__ebr_own_push_plain(CONC_ATOMIC(struct conc_epoch_node *) *head,
					    struct conc_epoch_node *n,
					    CONC_PLAIN(struct conc_epoch_node *) *n_next)
{
	struct conc_epoch_node *h = conc_ld(head, CONC_MO_RELAXED);
	conc_v(*n_next) = h;
	conc_st(head, n, CONC_MO_RELAXED);
}

/* A thief asked: push as onto a shared list.  release: publishes n's
 * fields to the take (its acquire exchange). */
CONC_ALG_INLINE void conc__ebr_own_push_cas(CONC_ATOMIC(struct conc_epoch_node *) *head,
					  struct conc_epoch_node *n,
					  CONC_PLAIN(struct conc_epoch_node *) *n_next)
{
	struct conc_epoch_node *h = conc_ld(head, CONC_MO_RELAXED);
	do
		conc_v(*n_next) = h;
	while (!conc_cas(head, &h, n, CONC_MO_RELEASE, CONC_MO_RELAXED));
}

/* The owner closes its bag op (ops = w+2).  release: publishes the push
 * (head, n's fields) to a thief that reads this value with acquire
 * (conc__ebr_steal_look). */
CONC_ALG_INLINE void conc__ebr_own_exit(CONC_ATOMIC(uint64_t) *ops, uint64_t w)
{
	conc_st(ops, w + 2, CONC_MO_RELEASE);
}

/* One whole bag op: enter, the push allowed, exit. */
CONC_ALG_INLINE void conc__ebr_own_push(CONC_ATOMIC(uint64_t) *ops, uint64_t w,
				      CONC_ATOMIC(int) *steal,
				      CONC_ATOMIC(struct conc_epoch_node *) *head,
				      struct conc_epoch_node *n,
				      CONC_PLAIN(struct conc_epoch_node *) *n_next,
				      bool fence, bool slow)
{
	if (conc__likely(conc__ebr_own_enter(ops, w, steal, fence))) {
		if (slow)
			conc__chaos_point(); /* a thief may ask now: it must wait */
		conc__ebr_own_push_plain(head, n, n_next);
	} else {
		conc__ebr_own_push_cas(head, n, n_next);
	}
	conc__ebr_own_exit(ops, w);
}

/* A thief asks, before its heavy barrier.  relaxed: the heavy barrier
 * orders it before the thief's look at ops (the other half of the pair). */
CONC_ALG_INLINE void conc__ebr_steal_ask(CONC_ATOMIC(int) *steal)
{
	conc_faa(steal, 1, CONC_MO_RELAXED);
}

/* After the heavy barrier: the owner's ops word.  acquire: pairs with
 * the release at the end of the owner's bag op, so that its push is
 * visible to the take. */
CONC_ALG_INLINE uint64_t conc__ebr_steal_look(CONC_ATOMIC(uint64_t) *ops)
{
	return conc_ld(ops, CONC_MO_ACQUIRE);
}

/* Whether the thief may take, having first seen w0 and now w: the owner
 * was outside a bag op (even), or the op it was in has ended (moved). */
CONC_ALG_INLINE bool conc__ebr_steal_settled(uint64_t w0, uint64_t w)
{
	return !(w0 & 1) || w != w0;
}

/* The take.  seq_cst: acquire pairs with the owner's release (CAS push,
 * or its ops release read by the look); src/epoch/epoch.c's barrier argument
 * wants its takes in the single order S. */
CONC_ALG_INLINE struct conc_epoch_node *
conc__ebr_take(CONC_ATOMIC(struct conc_epoch_node *) *head)
{
	return conc_xchg(head, (struct conc_epoch_node *)0, CONC_MO_SEQ_CST);
}

/* The thief is done with the record.  release: carries the take to the
 * owner's acquire load of steal in its next bag op. */
CONC_ALG_INLINE void conc__ebr_steal_done(CONC_ATOMIC(int) *steal)
{
	conc_faa(steal, -1, CONC_MO_RELEASE);
}

#endif
