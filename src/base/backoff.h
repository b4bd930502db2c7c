/*
 * backoff.h - bounded exponential backoff for CAS loops and short waits.
 *
 * After the k-th consecutive failure a thread waits 2^k pause instructions,
 * up to 2^CONC_BACKOFF_SPIN_SHIFT; past that it yields the CPU instead.
 * Yielding is what matters when threads outnumber cores: the thread that
 * holds the contended line, or that will produce what we wait for, may be
 * preempted, and spinning would only burn its time slice.
 */
#ifndef CONC_INTERNAL_BACKOFF_H
#define CONC_INTERNAL_BACKOFF_H

#include <sched.h>

#include "base/arch.h"

#define CONC_BACKOFF_SPIN_SHIFT 6u /* largest spin: 64 pauses */

typedef struct conc__backoff {
	unsigned step;
} conc__backoff;

#define CONC__BACKOFF_INIT {0}

static inline void conc__backoff_reset(conc__backoff *b)
{
	b->step = 0;
}

/* True once spinning is over and each further round yields. */
static inline int conc__backoff_is_yielding(const conc__backoff *b)
{
	return b->step > CONC_BACKOFF_SPIN_SHIFT;
}

/* Wait one round; never fails. */
static inline void conc__backoff_spin(conc__backoff *b)
{
	if (b->step <= CONC_BACKOFF_SPIN_SHIFT) {
		unsigned n = 1u << b->step;
		for (unsigned i = 0; i < n; i++)
			conc__cpu_relax();
		b->step++;
	} else {
		sched_yield();
	}
}

#endif
