/*
 * chaos.c - chaos mode's switch, PRNG, poisoning and counters
 * (base/chaos.h says what chaos mode does and what it costs).
 */
#include <errno.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>

#include "conc/cpu.h"
#include "base/chaos.h"
#include "base/prng.h"

atomic_int conc__chaos_state = CONC__CHAOS_UNKNOWN;

/* relaxed (all three): statistics for the tests, summed after joins */
static atomic_uint_fast64_t yields, poisoned, spurious;

/* The calling thread's xorshift state (0: not seeded yet). */
static _Thread_local uint64_t rng;

bool conc__chaos_read(void)
{
	int saved = errno; /* the library never changes errno */
	const char *env = getenv("CONC_CHAOS");
	bool on = env && env[0] == '1' && env[1] == '\0';
	errno = saved;
	/* relaxed: see base/chaos.h (every racing first reader stores the
	 * same value; nothing is published through it) */
	atomic_store_explicit(&conc__chaos_state, on ? CONC__CHAOS_ON : CONC__CHAOS_OFF,
			      memory_order_relaxed);
	return on;
}

bool conc_chaos_enabled(void)
{
	return conc__chaos();
}

static uint64_t next_rand(void)
{
	if (rng == 0) /* a different stream per thread: the TLS address differs */
		rng = conc__rand_seed((uint64_t)(uintptr_t)&rng);
	return conc__rand_next(&rng);
}

bool conc__chaos_coin(unsigned k)
{
	if (!conc__chaos())
		return false;
	return (next_rand() >> 40 & ((1u << k) - 1)) == 0;
}

void conc__chaos_yield_maybe(void)
{
	if (next_rand() >> 63) {
		atomic_fetch_add_explicit(&yields, 1, memory_order_relaxed);
		sched_yield();
	}
}

void conc__chaos_poison_now(void *p, size_t n)
{
	memset(p, CONC__CHAOS_POISON, n);
	atomic_fetch_add_explicit(&poisoned, 1, memory_order_relaxed);
}

void conc__chaos_count_spurious(void)
{
	atomic_fetch_add_explicit(&spurious, 1, memory_order_relaxed);
}

void conc__chaos_get_counts(conc__chaos_counts *out)
{
	out->yields = atomic_load_explicit(&yields, memory_order_relaxed);
	out->poisoned = atomic_load_explicit(&poisoned, memory_order_relaxed);
	out->spurious = atomic_load_explicit(&spurious, memory_order_relaxed);
}
