/*
 * chaos.h - chaos mode (CONC_CHAOS=1): what libconc does differently so that
 * a program's own use-after-free and ordering bugs show in its tests.
 *
 * The switch is an environment variable read once, at the first place that
 * asks (conc__chaos()), and kept in a relaxed atomic with three states
 * (unknown / off / on).  Two threads that race on the first read both read
 * the same variable and store the same state, so relaxed is enough: nothing
 * is published through it.
 *
 * Under it libconc
 *   - yields (sched_yield, half of the time, from a per-thread PRNG) at
 *     chaos points: in every epoch pin (between its load of the epoch and
 *     its store) and unpin - the header's inline fast path is never armed
 *     in chaos mode, as in fence mode - after a failed CAS in the retry
 *     loops of the containers
 *     and the pool's injector, between the loads and the CAS of the
 *     epoch advance, between taking a list of retired nodes and running it,
 *     in the pool's search/steal path and the deque's steal, and after
 *     park_prepare;
 *   - tries to advance the epoch and collect at every retire, with no rate
 *     limit (src/epoch/epoch.c);
 *   - poisons the memory it owns (queue segments, stack nodes, deque
 *     buffers, injector blocks, defer records) with CONC__CHAOS_POISON
 *     before freeing or caching it - never a user's item or node;
 *   - makes conc__park_wait return early now and then without a notify
 *     (a spurious wake-up: every caller re-checks its condition).
 *
 * Cost when off.  Every chaos point sits on a slow path (a CAS retry, an
 * advance, a collection, a sleep) and costs one load of the state and one
 * predicted branch there; the fast paths (pin/unpin, an uncontended push or
 * pop, pool execute) have none: the instr guard's counts are unchanged.
 */
#ifndef CONC_INTERNAL_CHAOS_H
#define CONC_INTERNAL_CHAOS_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/arch.h"

enum { CONC__CHAOS_UNKNOWN = 0, CONC__CHAOS_OFF = 1, CONC__CHAOS_ON = 2 };

#define CONC__CHAOS_POISON 0xdb

extern atomic_int conc__chaos_state;

bool conc__chaos_read(void); /* the first read of CONC_CHAOS; cold */

/* Whether chaos mode is on (reads the environment the first time). */
static inline bool conc__chaos(void)
{
	/* relaxed: see the top of this file */
	int s = atomic_load_explicit(&conc__chaos_state, memory_order_relaxed);
	if (conc__likely(s == CONC__CHAOS_OFF))
		return false;
	if (s == CONC__CHAOS_ON)
		return true;
	return conc__chaos_read();
}

void conc__chaos_yield_maybe(void); /* cold: the PRNG and sched_yield */

/* A chaos point: maybe yield here, in chaos mode only. */
static inline void conc__chaos_point(void)
{
	if (conc__unlikely(conc__chaos()))
		conc__chaos_yield_maybe();
}

/* A chaos point that fires with probability 1/2^k (k <= 16) only. */
bool conc__chaos_coin(unsigned k);

void conc__chaos_poison_now(void *p, size_t n); /* cold: memset + count */

/* In chaos mode, fill n bytes at p (memory libconc owns and is about to
 * free or cache: nobody may read it any more) with CONC__CHAOS_POISON and
 * count one poisoned object.  Off: one load and a predicted branch, inline
 * (reclaim paths call it per node). */
static inline void conc__chaos_poison(void *p, size_t n)
{
	if (conc__unlikely(conc__chaos()) && p)
		conc__chaos_poison_now(p, n);
}

/* Count one spurious wake-up injected (park.c). */
void conc__chaos_count_spurious(void);

/* Counters for the tests (relaxed sums since the start of the process). */
typedef struct conc__chaos_counts {
	uint64_t yields;   /* sched_yield calls at chaos points */
	uint64_t poisoned; /* objects poisoned */
	uint64_t spurious; /* spurious wake-ups injected by conc__park_wait */
} conc__chaos_counts;

void conc__chaos_get_counts(conc__chaos_counts *out);

#endif
