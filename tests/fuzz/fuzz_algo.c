/*
 * fuzz_algo.c - libFuzzer target: conc_parallel_sort and
 * conc_parallel_stable_sort (and the radix sort of u64) against qsort-based
 * references.  The input's first bytes choose the element size (1..40),
 * how many bytes of an element are its key (many equal keys when few),
 * whether the comparator is consistent, and the array: the input's
 * remaining bytes as elements, or (above the serial cutoff, where the
 * parallel paths start) n elements made from a seed, a pattern and a key
 * range.  Checks: sorted and a permutation (unstable); exactly the
 * reference order, qsort by (key, original index) (stable); with the
 * comparator answering at random, still a permutation, nothing written
 * outside (ASan, and guard bytes).  A mismatch prints and traps.
 *
 * One pool of two threads lives across inputs.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conc/algo.h"
#include "conc/pool.h"

#define FZ_CHECK(cond, ...)                                                     \
	do {                                                                    \
		if (!(cond)) {                                                  \
			fprintf(stderr, "fuzz mismatch (algo): ");              \
			fprintf(stderr, __VA_ARGS__);                           \
			fputc('\n', stderr);                                    \
			__builtin_trap();                                       \
		}                                                               \
	} while (0)

#define GUARD 64

static conc_pool *fz_pool;

static uint64_t mix(uint64_t x)
{
	x += UINT64_C(0x9e3779b97f4a7c15);
	x = (x ^ (x >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
	x = (x ^ (x >> 27)) * UINT64_C(0x94d049bb133111eb);
	return x ^ (x >> 31);
}

struct fz_cmp {
	size_t keylen; /* bytes of key at the front of an element (>= 1) */
	bool random;
};

static _Thread_local uint64_t fz_rnd = 1;

static int fz_compare(const void *a, const void *b, void *ctx)
{
	const struct fz_cmp *c = ctx;
	if (c->random) {
		fz_rnd = mix(fz_rnd);
		return (int)(fz_rnd % 3) - 1;
	}
	return memcmp(a, b, c->keylen);
}

/* The reference: indexes sorted by (key, index) with qsort. */
static const unsigned char *ref_base;
static size_t ref_size, ref_keylen;

static int ref_cmp(const void *x, const void *y)
{
	size_t i = *(const size_t *)x, j = *(const size_t *)y;
	int c = memcmp(ref_base + i * ref_size, ref_base + j * ref_size, ref_keylen);
	if (c)
		return c;
	return (i > j) - (i < j);
}

static int full_cmp(const void *x, const void *y)
{
	return memcmp(x, y, ref_size);
}

static int u64_cmp(const void *x, const void *y)
{
	uint64_t a = *(const uint64_t *)x, b = *(const uint64_t *)y;
	return (a > b) - (a < b);
}

static void check_perm(const unsigned char *out, const unsigned char *in, size_t n, size_t size)
{
	unsigned char *a = malloc(n * size + 1), *b = malloc(n * size + 1);
	memcpy(a, out, n * size);
	memcpy(b, in, n * size);
	ref_size = size;
	qsort(a, n, size, full_cmp);
	qsort(b, n, size, full_cmp);
	FZ_CHECK(n == 0 || memcmp(a, b, n * size) == 0, "not a permutation (n %zu size %zu)", n, size);
	free(a);
	free(b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
	if (len < 3)
		return 0;
	if (!fz_pool) {
		conc_pool_config cfg = {.threads = 2};
		if (conc_pool_create(&fz_pool, &cfg))
			return 0;
	}
	size_t size = 1 + data[0] % 40;
	struct fz_cmp c = {1 + (size_t)(data[1] & 7), (data[1] & 0x80) != 0};
	if (c.keylen > size)
		c.keylen = size;
	bool generated = data[2] & 1;
	bool stable = data[2] & 2;
	data += 3;
	len -= 3;
	size_t n;
	unsigned char *in;
	if (generated) {
		/* n in [4000, 12000): around and above the serial cutoff */
		if (len < 4)
			return 0;
		n = 4000 + ((size_t)data[0] | (size_t)data[1] << 8) % 8000;
		unsigned pattern = data[2] % 4;
		unsigned range = data[3];
		in = malloc(n * size);
		for (size_t i = 0; i < n; i++) {
			uint64_t k;
			switch (pattern) {
			case 0: k = mix(i + len); break;
			case 1: k = i; break;
			case 2: k = n - i; break;
			default: k = i < n / 2 ? i : n - i; break;
			}
			if (range)
				k %= range;
			for (size_t b = 0; b < size; b++)
				in[i * size + b] = (unsigned char)(b < 8 ? k >> (8 * (size < 8 ? size - 1 - b : 7 - b))
									 : mix(i * 64 + b));
		}
	} else {
		n = len / size;
		in = malloc(n * size + 1);
		memcpy(in, data, n * size);
	}
	unsigned char *buf = malloc(n * size + 2 * GUARD);
	memset(buf, 0xa5, n * size + 2 * GUARD);
	unsigned char *a = buf + GUARD;
	memcpy(a, in, n * size);
	int err = stable ? conc_parallel_stable_sort(fz_pool, a, n, size, fz_compare, &c)
			 : conc_parallel_sort(fz_pool, a, n, size, fz_compare, &c);
	FZ_CHECK(err == 0, "error %d", err);
	for (size_t i = 0; i < GUARD; i++)
		FZ_CHECK(buf[i] == 0xa5 && a[n * size + i] == 0xa5, "write outside the array");
	if (c.random) {
		check_perm(a, in, n, size);
	} else if (stable) {
		size_t *idx = malloc((n + 1) * sizeof *idx);
		for (size_t i = 0; i < n; i++)
			idx[i] = i;
		ref_base = in;
		ref_size = size;
		ref_keylen = c.keylen;
		qsort(idx, n, sizeof *idx, ref_cmp);
		for (size_t i = 0; i < n; i++)
			FZ_CHECK(memcmp(a + i * size, in + idx[i] * size, size) == 0,
				 "stable sort differs at %zu (n %zu size %zu)", i, n, size);
		free(idx);
	} else {
		for (size_t i = 1; i < n; i++)
			FZ_CHECK(memcmp(a + (i - 1) * size, a + i * size, c.keylen) <= 0,
				 "not sorted at %zu (n %zu size %zu)", i, n, size);
		check_perm(a, in, n, size);
	}
	/* the radix sort on the same bytes, as u64 */
	if (size == 8 && !c.random) {
		uint64_t *u = malloc(n * 8 + 8), *r = malloc(n * 8 + 8);
		memcpy(u, in, n * 8);
		memcpy(r, in, n * 8);
		FZ_CHECK(conc_parallel_sort_u64(fz_pool, u, n) == 0, "radix error");
		qsort(r, n, 8, u64_cmp);
		FZ_CHECK(n == 0 || memcmp(u, r, n * 8) == 0, "radix sort differs (n %zu)", n);
		free(u);
		free(r);
	}
	free(buf);
	free(in);
	return 0;
}
