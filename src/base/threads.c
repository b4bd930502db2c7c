/*
 * threads.c - the idle-thread releasers (base/threads.h).
 *
 * The table is a few atomic function pointers, filled once each by a CAS
 * from NULL and never cleared; no lock, so a fork that catches a
 * registration half-way leaves nothing held in the child.  A reader loads
 * each slot and calls what it finds: a releaser is a function of the
 * library, valid for the life of the process, and a registration racing
 * with a reader is either seen or not (a releaser registered after an
 * EAGAIN had no idle threads to give back before it anyway).
 */
#include <stdatomic.h>
#include <stddef.h>

#include "base/threads.h"

static _Atomic(conc__idle_releaser) table[CONC__IDLE_RELEASERS];

void conc__threads_add_releaser(conc__idle_releaser r)
{
	for (unsigned i = 0; i < CONC__IDLE_RELEASERS; i++) {
		conc__idle_releaser cur = NULL;
		/* relaxed: the pointer is all there is to publish (it names
		 * code, not data the writer prepared). */
		if (atomic_compare_exchange_strong_explicit(&table[i], &cur, r,
							    memory_order_relaxed,
							    memory_order_relaxed) ||
		    cur == r)
			return;
	}
}

unsigned conc__threads_release_idle(void)
{
	unsigned released = 0;
	for (unsigned i = 0; i < CONC__IDLE_RELEASERS; i++) {
		/* relaxed: see conc__threads_add_releaser. */
		conc__idle_releaser r = atomic_load_explicit(&table[i], memory_order_relaxed);
		if (r)
			released += r();
	}
	return released;
}
