/*
 * prng.h - the library's one pseudo-random generator: xorshift64* (Vigna,
 * "An experimental exploration of Marsaglia's xorshift generators"), a
 * state word per thread or per worker.  Used where a choice only needs to
 * differ between threads and over time - the victim a thief starts at, the
 * elimination slot a push offers in, chaos mode's coin - never for
 * anything a test compares against fixed numbers.
 */
#ifndef CONC_BASE_PRNG_H
#define CONC_BASE_PRNG_H

#include <stdint.h>

/* A non-zero seed that differs per object: from an address (a TLS
 * variable's or a record's), or any other value. */
static inline uint64_t conc__rand_seed(uint64_t v)
{
	return v * 0x9E3779B97F4A7C15ULL | 1u;
}

/* The next number; *s must not be 0 (conc__rand_seed never gives 0, and
 * xorshift never reaches 0 from a non-zero state). */
static inline uint64_t conc__rand_next(uint64_t *s)
{
	uint64_t x = *s;
	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	*s = x;
	return x * 0x2545F4914F6CDD1DULL;
}

/* Uniform enough in [0, n), n > 0: the high half times n (no division). */
static inline unsigned conc__rand_below(uint64_t *s, unsigned n)
{
	return (unsigned)(((conc__rand_next(s) >> 32) * n) >> 32);
}

#endif
