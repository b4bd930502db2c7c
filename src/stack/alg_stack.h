/*
 * alg_stack.h (internal) - the stack's algorithm core: one attempt of the
 * Treiber push and pop CASes on top, written against base/atomics.h so
 * that src/stack/stack.c and the Relacy model (tests/models/relacy_stack.cc) run
 * the same code.  The retry loops around them (backoff, elimination) and
 * the argument (I1/I2, linearization points) are in src/stack/stack.c.
 *
 * The includer provides, before including this file, struct snode with a
 * field next (struct snode *; CONC_PLAIN in the harness) and CLOSED_TAG
 * (the low bit of top that marks the stack closed).  top is a
 * CONC_ATOMIC(uintptr_t): the top node's address | CLOSED_TAG.
 * Only src/stack/stack.c includes it (the amalgamation inlines it there).
 */
#ifndef CONC_INTERNAL_ALG_STACK_H
#define CONC_INTERNAL_ALG_STACK_H

#include <stdint.h>

#include "base/atomics.h"

/* top for a push: relaxed, push never reads through top, it only links
 * to it. */
CONC_ALG_INLINE uintptr_t conc__treiber_top_for_push(CONC_ATOMIC(uintptr_t) *top)
{
	return conc_ld(top, CONC_MO_RELAXED);
}

/* top for a pop: acquire, pairs with the push CAS; top->next and
 * top->item visible.  The caller is pinned (I2: the node stays valid). */
CONC_ALG_INLINE uintptr_t conc__treiber_top_for_pop(CONC_ATOMIC(uintptr_t) *top)
{
	return conc_ld(top, CONC_MO_ACQUIRE);
}

/* One push attempt: link n over *seen (a top without CLOSED_TAG) and try
 * to install it.  On failure *seen is the current top. */
CONC_ALG_INLINE bool conc__treiber_push_try(CONC_ATOMIC(uintptr_t) *top, uintptr_t *seen,
					  struct snode *n)
{
	conc_v(n->next) = (struct snode *)*seen;
	/* seq_cst: publishes n (release part) and is the publishing write of
	 * park.h's protocol */
	return conc_cas(top, seen, (uintptr_t)n, CONC_MO_SEQ_CST, /* LP: push */
			CONC_MO_RELAXED);
}

/* The node on top in *seen (read by conc__treiber_top_for_pop or by a
 * failed attempt); NULL: empty (LP: pop-empty, the load of top that found
 * no node). */
CONC_ALG_INLINE struct snode *conc__treiber_top_node(uintptr_t seen, uintptr_t closed_tag)
{
	return (struct snode *)(seen & ~closed_tag);
}

/* One pop attempt: unlink t, the node on top in *seen; the closed tag is
 * carried over to the new top.  On failure *seen is the current top.  The
 * caller is pinned, so t (and t->next) stay valid even if t was popped
 * meanwhile (I2). */
CONC_ALG_INLINE bool conc__treiber_pop_try(CONC_ATOMIC(uintptr_t) *top, uintptr_t *seen,
					 struct snode *t, uintptr_t closed_tag)
{
	struct snode *after = conc_v(t->next);
	uintptr_t next = (uintptr_t)after | (*seen & closed_tag);
	/* acquire on failure: the new top is read through next round */
	return conc_cas(top, seen, next, CONC_MO_ACQUIRE, CONC_MO_ACQUIRE); /* LP: pop */
}

#endif
