/*
 * injector.c - the cold half of pool/injector.h: blocks (allocation,
 * recycling through the spares), init and fini.  The protocol, its
 * invariants and its memory orders are in the header.
 */
#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>

#include "base/chaos.h"
#include "base/fault.h"
#include "pool/injector.h"

static void block_clear(struct conc__inj_block *b)
{
	atomic_init(&b->next, NULL);
	atomic_init(&b->reads, 0);
	for (unsigned i = 0; i < CONC__INJ_CAP; i++)
		atomic_init(&b->slot[i].fn, NULL);
}

__attribute__((cold)) struct conc__inj_block *conc__inj_block_get(conc__injector *q)
{
	for (unsigned i = 0; i < CONC__INJ_SPARES; i++) {
		/* relaxed: a peek; the exchange below does the taking. */
		if (!atomic_load_explicit(&q->spare[i], memory_order_relaxed))
			continue;
		/* acquire: pairs with the release CAS in block_put (the
		 * cleared block). */
		struct conc__inj_block *b =
			atomic_exchange_explicit(&q->spare[i], NULL, memory_order_acquire);
		if (b)
			return b;
	}
	int saved_errno = errno; /* the library never changes errno */
	struct conc__inj_block *b = conc__malloc("pool.inj_block", sizeof *b);
	if (b)
		block_clear(b);
	errno = saved_errno;
	return b;
}

void conc__inj_block_put(conc__injector *q, struct conc__inj_block *b)
{
	conc__chaos_poison(b, sizeof *b); /* chaos mode: a late reader sees garbage */
	block_clear(b);
	for (unsigned i = 0; i < CONC__INJ_SPARES; i++) {
		struct conc__inj_block *none = NULL;
		/* relaxed: a peek; the CAS below does the giving. */
		if (atomic_load_explicit(&q->spare[i], memory_order_relaxed))
			continue;
		/* release: publishes the cleared block to block_get's
		 * acquire. */
		if (atomic_compare_exchange_strong_explicit(&q->spare[i], &none, b,
							    memory_order_release,
							    memory_order_relaxed))
			return;
	}
	free(b);
}

int conc__inj_init(conc__injector *q)
{
	for (unsigned i = 0; i < CONC__INJ_SPARES; i++)
		atomic_init(&q->spare[i], NULL);
	struct conc__inj_block *b = conc__inj_block_get(q);
	if (!b)
		return ENOMEM;
	atomic_init(&q->head_idx, 0);
	atomic_init(&q->tail_idx, 0);
	atomic_init(&q->head_block, b);
	atomic_init(&q->tail_block, b);
	return 0;
}

void conc__inj_fini(conc__injector *q)
{
	/* relaxed (all): no other thread uses q any more (the pool joined its
	 * workers, or a fork child has none).  Drained, head and tail share
	 * one block whose next is NULL; otherwise the blocks from the head on
	 * are still linked (none was recycled: a block is recycled only once
	 * every slot was read, after the head moved past it). */
	struct conc__inj_block *b = atomic_load_explicit(&q->head_block, memory_order_relaxed);
	while (b) {
		struct conc__inj_block *next = atomic_load_explicit(&b->next, memory_order_relaxed);
		free(b);
		b = next;
	}
	for (unsigned i = 0; i < CONC__INJ_SPARES; i++)
		free(atomic_load_explicit(&q->spare[i], memory_order_relaxed));
}
