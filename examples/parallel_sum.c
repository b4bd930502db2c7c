/*
 * parallel_sum.c - the tutorial's rayon example: the sum of 2*e over every
 * e in 0..999,999, computed by a parallel reduction on the global pool.
 */
#include <stdint.h>
#include <stdio.h>

#include <conc/parallel.h>

static void zero(void *acc, void *ctx)
{
	(void)ctx;
	*(uint64_t *)acc = 0;
}

static int fold(size_t lo, size_t hi, void *acc, void *ctx)
{
	(void)ctx;
	uint64_t s = *(uint64_t *)acc;
	for (size_t e = lo; e < hi; e++) /* a plain loop the compiler vectorises */
		s += 2 * (uint64_t)e;
	*(uint64_t *)acc = s;
	return 0; /* non-zero would cancel the loop */
}

static void add(void *acc, const void *other, void *ctx)
{
	(void)ctx;
	*(uint64_t *)acc += *(const uint64_t *)other;
}

int main(void)
{
	uint64_t sum;
	/* NULL pool: conc_pool_global(); grain 0: chosen from the length */
	int err = conc_parallel_reduce(NULL, 0, 1000000, 0, &sum, sizeof sum, zero, fold,
				       add, NULL);
	if (err)
		return 1;
	printf("Sum: %llu\n", (unsigned long long)sum);
	return sum != 999999000000ull;
}
