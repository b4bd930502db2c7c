/*
 * test_algo.c - parallel algorithms over arrays (conc/algo.h), against
 * serial references: qsort-based sorts, the serial scan and filter loops.
 *
 * Each input pattern (random, sorted, reversed, all equal, few distinct,
 * organ pipe, sawtooth) at the sizes that matter: 0..3, the insertion-sort
 * and serial cutoffs +-1, the radix and scan block sizes +-1, 10^5 and
 * 10^6 (10^7 with CONC_STRESS_SCALE > 1).  Sorted, a permutation (records
 * carry their index and a payload derived from it), stable where
 * promised; the double order; the same bytes on pools of 1, 2 and 16
 * threads; a comparator that answers at random (guard bytes around the
 * array stay intact, the elements are a permutation); nested calls.
 */
#include <errno.h>
#include <math.h>
#include <stdalign.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

#include "conc/algo.h"
#include "conc/parallel.h"
#include "conc/pool.h"

/* ---- data ------------------------------------------------------------------- */

static uint64_t mix(uint64_t x)
{
	x += UINT64_C(0x9e3779b97f4a7c15);
	x = (x ^ (x >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
	x = (x ^ (x >> 27)) * UINT64_C(0x94d049bb133111eb);
	return x ^ (x >> 31);
}

enum pattern { P_RANDOM, P_SORTED, P_REVERSED, P_EQUAL, P_FEW, P_ORGAN, P_SAW, NPATTERNS };
static const char *const pattern_name[NPATTERNS] = {
	"random", "sorted", "reversed", "all-equal", "few-distinct", "organ-pipe", "sawtooth"};

static uint64_t key_at(enum pattern pat, size_t i, size_t n, uint64_t seed)
{
	switch (pat) {
	case P_RANDOM:
		return mix(seed ^ i);
	case P_SORTED:
		return i;
	case P_REVERSED:
		return n - i;
	case P_EQUAL:
		return 42;
	case P_FEW:
		return mix(seed + i) % 5;
	case P_ORGAN:
		return i < n / 2 ? i : n - i;
	case P_SAW:
		return i % 1000;
	default:
		return 0;
	}
}

static size_t big_n(void)
{
	/* stress scale 0: the smoke runs (the AArch64 builds under qemu);
	 * sanitizer builds the same (a 10^6 sort under TSan took 35 s) */
	unsigned long scale = conc_test_scale();
	if (scale == 0 || CONC_TEST_SANITIZED)
		return 100000u;
	return scale > 1 ? 10000000u : 1000000u;
}

static size_t sized(size_t n)
{
	/* sanitizer builds and smoke runs (stress scale 0: the AArch64
	 * builds under qemu): the largest inputs 10x smaller */
	bool small = CONC_TEST_SANITIZED || conc_test_scale() == 0;
	return small && n > 100000 ? n / 10 : n;
}

static conc_pool *make_pool(unsigned threads)
{
	conc_pool_config cfg = {.threads = threads};
	conc_pool *p = NULL;
	assert_int_equal(conc_pool_create(&p, &cfg), 0);
	return p;
}

/* ---- comparators ---------------------------------------------------------------- */

static int cmp_u64(const void *a, const void *b, void *ctx)
{
	(void)ctx;
	uint64_t x, y;
	memcpy(&x, a, 8);
	memcpy(&y, b, 8);
	return (x > y) - (x < y);
}

static int cmp_u64_plain(const void *a, const void *b)
{
	return cmp_u64(a, b, NULL);
}

/* Records: a key, the original index, a payload made from the index. */
struct rec {
	uint64_t key, idx;
};

static int cmp_rec_key(const void *a, const void *b, void *ctx)
{
	(void)ctx;
	const struct rec *x = a, *y = b;
	return (x->key > y->key) - (x->key < y->key);
}

static int cmp_rec_key_idx(const void *a, const void *b)
{
	const struct rec *x = a, *y = b;
	if (x->key != y->key)
		return (x->key > y->key) - (x->key < y->key);
	return (x->idx > y->idx) - (x->idx < y->idx);
}

/* Elements of any size >= 1: byte 0..min(8,size) the key's low bytes
 * (big-endian so memcmp order is key order), the rest a payload that
 * depends on the original index, and (size >= 16) the index at bytes 8..15. */
struct wide {
	size_t size, keybytes;
};

static void wide_fill(unsigned char *e, size_t size, uint64_t key, uint64_t idx)
{
	size_t kb = size < 8 ? size : 8;
	for (size_t b = 0; b < kb; b++)
		e[b] = (unsigned char)(key >> (8 * (kb - 1 - b)));
	if (size >= 16)
		memcpy(e + 8, &idx, 8);
	for (size_t b = 16; b < size; b++)
		e[b] = (unsigned char)mix(idx * 131 + b);
}

static int cmp_wide(const void *a, const void *b, void *ctx)
{
	const struct wide *w = ctx;
	return memcmp(a, b, w->keybytes);
}

static struct wide cmp_wide_plain_w;
static int cmp_wide_full(const void *a, const void *b)
{
	return memcmp(a, b, cmp_wide_plain_w.size);
}

/* ---- checks ----------------------------------------------------------------- */

/* sorted by key and the same multiset of whole elements as the input */
static void check_sorted_perm(const unsigned char *out, const unsigned char *in, size_t n,
			      size_t size, size_t keybytes)
{
	for (size_t i = 1; i < n; i++)
		assert_true(memcmp(out + (i - 1) * size, out + i * size, keybytes) <= 0);
	/* permutation: sort copies of both fully, compare */
	unsigned char *a = malloc(n * size + 1), *b = malloc(n * size + 1);
	assert_non_null(a);
	assert_non_null(b);
	memcpy(a, out, n * size);
	memcpy(b, in, n * size);
	cmp_wide_plain_w.size = size;
	qsort(a, n, size, cmp_wide_full);
	qsort(b, n, size, cmp_wide_full);
	assert_memory_equal(a, b, n * size);
	free(a);
	free(b);
}

/* ---- EINVAL and the trivial sizes ---------------------------------------------- */

static bool keep_all(const void *x, void *ctx)
{
	(void)x;
	(void)ctx;
	return true;
}

static void op_add_u64(void *acc, const void *x, void *ctx)
{
	(void)ctx;
	uint64_t a, b;
	memcpy(&a, acc, 8);
	memcpy(&b, x, 8);
	a += b;
	memcpy(acc, &a, 8);
}

static void test_algo_einval(void **state)
{
	(void)state;
	uint64_t v[4] = {3, 1, 2, 0}, d[4];
	size_t kept = 99;
	assert_int_equal(conc_parallel_sort(NULL, NULL, 2, 8, cmp_u64, NULL), EINVAL);
	assert_int_equal(conc_parallel_sort(NULL, v, 2, 8, NULL, NULL), EINVAL);
	assert_int_equal(conc_parallel_sort(NULL, v, 2, 0, cmp_u64, NULL), EINVAL);
	assert_int_equal(conc_parallel_sort(NULL, v, 0, 0, cmp_u64, NULL), EINVAL);
	assert_int_equal(conc_parallel_stable_sort(NULL, NULL, 2, 8, cmp_u64, NULL), EINVAL);
	assert_int_equal(conc_parallel_stable_sort(NULL, v, 2, 8, NULL, NULL), EINVAL);
	assert_int_equal(conc_parallel_stable_sort(NULL, v, 2, 0, cmp_u64, NULL), EINVAL);
	assert_int_equal(conc_parallel_sort_u64(NULL, NULL, 2), EINVAL);
	assert_int_equal(conc_parallel_sort_u32(NULL, NULL, 2), EINVAL);
	assert_int_equal(conc_parallel_sort_i64(NULL, NULL, 2), EINVAL);
	assert_int_equal(conc_parallel_sort_double(NULL, NULL, 2), EINVAL);
	assert_int_equal(conc_parallel_scan(NULL, NULL, 2, 8, op_add_u64, NULL), EINVAL);
	assert_int_equal(conc_parallel_scan(NULL, v, 2, 8, NULL, NULL), EINVAL);
	assert_int_equal(conc_parallel_scan(NULL, v, 2, 0, op_add_u64, NULL), EINVAL);
	assert_int_equal(conc_parallel_scan_u64(NULL, NULL, 2), EINVAL);
	assert_int_equal(conc_parallel_scan_double(NULL, NULL, 2), EINVAL);
	assert_int_equal(conc_parallel_scan_u64(NULL, NULL, 0), 0);
	assert_int_equal(conc_parallel_filter(NULL, NULL, 2, 8, keep_all, NULL, d, &kept), EINVAL);
	assert_int_equal(conc_parallel_filter(NULL, v, 2, 8, keep_all, NULL, NULL, &kept), EINVAL);
	assert_int_equal(conc_parallel_filter(NULL, v, 2, 8, NULL, NULL, d, &kept), EINVAL);
	assert_int_equal(conc_parallel_filter(NULL, v, 2, 8, keep_all, NULL, d, NULL), EINVAL);
	assert_int_equal(conc_parallel_filter(NULL, v, 2, 0, keep_all, NULL, d, &kept), EINVAL);
	assert_int_equal(kept, 99);
	/* nothing was touched */
	assert_true(v[0] == 3 && v[1] == 1 && v[2] == 2 && v[3] == 0);
	/* NULL arrays with n 0 are fine; n 0 and 1 return at once */
	assert_int_equal(conc_parallel_sort(NULL, NULL, 0, 8, cmp_u64, NULL), 0);
	assert_int_equal(conc_parallel_stable_sort(NULL, NULL, 0, 8, cmp_u64, NULL), 0);
	assert_int_equal(conc_parallel_sort_u64(NULL, NULL, 0), 0);
	assert_int_equal(conc_parallel_sort_double(NULL, NULL, 0), 0);
	assert_int_equal(conc_parallel_scan(NULL, NULL, 0, 8, op_add_u64, NULL), 0);
	assert_int_equal(conc_parallel_filter(NULL, NULL, 0, 8, keep_all, NULL, NULL, &kept), 0);
	assert_int_equal(kept, 0);
	assert_int_equal(conc_parallel_sort(NULL, v, 1, 8, cmp_u64, NULL), 0);
	assert_int_equal(conc_parallel_scan(NULL, v, 1, 8, op_add_u64, NULL), 0);
	assert_true(v[0] == 3);
}

/* ---- comparator sorts ------------------------------------------------------------ */

static const size_t small_sizes[] = {0, 1, 2, 3, 4, 5, 11, 12, 13, 16, 17, 23, 24, 25, 127,
				     128, 129, 4095, 4096, 4097, 8193, 20000};

/* u64 keys through the comparator: equal to qsort's output exactly. */
static void sort_u64_case(conc_pool *p, enum pattern pat, size_t n, bool stable)
{
	uint64_t *a = malloc((n + 1) * 8), *r = malloc((n + 1) * 8);
	assert_non_null(a);
	assert_non_null(r);
	for (size_t i = 0; i < n; i++)
		a[i] = r[i] = key_at(pat, i, n, n * 7 + pat);
	int err = stable ? conc_parallel_stable_sort(p, a, n, 8, cmp_u64, NULL)
			 : conc_parallel_sort(p, a, n, 8, cmp_u64, NULL);
	assert_int_equal(err, 0);
	qsort(r, n, 8, cmp_u64_plain);
	if (n && memcmp(a, r, n * 8) != 0) {
		printf("%s sort: %s n=%zu differs from qsort\n", stable ? "stable" : "unstable",
		       pattern_name[pat], n);
		fail();
	}
	free(a);
	free(r);
}

/* records: sorted by key; stable: index increasing within a key;
 * unstable: a permutation of the records */
static void sort_rec_case(conc_pool *p, enum pattern pat, size_t n, bool stable)
{
	struct rec *a = malloc((n + 1) * sizeof *a), *r = malloc((n + 1) * sizeof *r);
	assert_non_null(a);
	assert_non_null(r);
	for (size_t i = 0; i < n; i++) {
		a[i].key = key_at(pat, i, n, 99) % (pat == P_RANDOM ? 1000 : UINT64_MAX);
		a[i].idx = i;
		r[i] = a[i];
	}
	int err = stable ? conc_parallel_stable_sort(p, a, n, sizeof *a, cmp_rec_key, NULL)
			 : conc_parallel_sort(p, a, n, sizeof *a, cmp_rec_key, NULL);
	assert_int_equal(err, 0);
	qsort(r, n, sizeof *r, cmp_rec_key_idx);
	if (stable) {
		if (n && memcmp(a, r, n * sizeof *a) != 0) {
			printf("stable sort: %s n=%zu not stable or not sorted\n", pattern_name[pat], n);
			fail();
		}
	} else {
		for (size_t i = 1; i < n; i++)
			assert_true(a[i - 1].key <= a[i].key);
		qsort(a, n, sizeof *a, cmp_rec_key_idx);
		assert_true(n == 0 || memcmp(a, r, n * sizeof *a) == 0);
	}
	free(a);
	free(r);
}

static void test_algo_sort_patterns(void **state)
{
	(void)state;
	conc_pool *p = make_pool(2);
	for (int pat = 0; pat < NPATTERNS; pat++) {
		for (size_t k = 0; k < sizeof small_sizes / sizeof *small_sizes; k++) {
			size_t n = small_sizes[k];
			sort_u64_case(p, pat, n, false);
			sort_u64_case(p, pat, n, true);
			sort_rec_case(p, pat, n, false);
			sort_rec_case(p, pat, n, true);
		}
		sort_u64_case(p, pat, sized(200000), false);
		sort_rec_case(p, pat, sized(200000), true);
	}
	/* the big ones on the global pool */
	sort_u64_case(NULL, P_RANDOM, sized(big_n()), false);
	sort_rec_case(NULL, P_RANDOM, sized(big_n()), false);
	sort_rec_case(NULL, P_RANDOM, sized(big_n()), true);
	assert_int_equal(conc_pool_destroy(p), 0);
}

/* Element sizes from 1 byte to 5 KiB (the non-fast paths, the chunked swap). */
static void test_algo_sort_sizes(void **state)
{
	(void)state;
	static const size_t sizes[] = {1, 2, 3, 4, 5, 7, 8, 12, 16, 24, 64, 65, 100, 129, 5000};
	conc_pool *p = make_pool(2);
	for (size_t s = 0; s < sizeof sizes / sizeof *sizes; s++) {
		size_t size = sizes[s];
		size_t ns[] = {3, 25, 130, 4097, size >= 1000 ? 6000 : 30000};
		for (size_t k = 0; k < sizeof ns / sizeof *ns; k++) {
			size_t n = ns[k];
			for (int stable = 0; stable < 2; stable++) {
				unsigned char *in = malloc(n * size), *a = malloc(n * size);
				assert_non_null(in);
				assert_non_null(a);
				uint64_t keymod = size == 1 ? 256 : 1000;
				for (size_t i = 0; i < n; i++)
					wide_fill(in + i * size, size, mix(i + size) % keymod, i);
				memcpy(a, in, n * size);
				struct wide w = {size, size < 8 ? size : 8};
				int err = stable ? conc_parallel_stable_sort(p, a, n, size, cmp_wide, &w)
						 : conc_parallel_sort(p, a, n, size, cmp_wide, &w);
				assert_int_equal(err, 0);
				check_sorted_perm(a, in, n, size, w.keybytes);
				if (stable && size >= 16) {
					/* stable: within a key, index increasing */
					for (size_t i = 1; i < n; i++) {
						if (memcmp(a + (i - 1) * size, a + i * size, 8) == 0) {
							uint64_t x, y;
							memcpy(&x, a + (i - 1) * size + 8, 8);
							memcpy(&y, a + i * size + 8, 8);
							assert_true(x < y);
						}
					}
				}
				free(in);
				free(a);
			}
		}
	}
	assert_int_equal(conc_pool_destroy(p), 0);
}

/* ---- radix sorts -------------------------------------------------------------------- */

static int cmp_i64_plain(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
	return (x > y) - (x < y);
}

static int cmp_u32_plain(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
	return (x > y) - (x < y);
}

/* totalOrder on the bits, written as the standard says it */
static int cmp_total_plain(const void *a, const void *b)
{
	uint64_t x, y;
	memcpy(&x, a, 8);
	memcpy(&y, b, 8);
	bool nx = x >> 63, ny = y >> 63;
	if (nx != ny)
		return nx ? -1 : 1;
	if (nx) /* both negative: larger magnitude first */
		return (x < y) - (x > y);
	return (x > y) - (x < y);
}

static const size_t radix_sizes[] = {0, 1, 2, 3, 31, 32, 33, 4095, 4096, 4097, 65535, 65536,
				     65537, 300000};

static void test_algo_radix(void **state)
{
	(void)state;
	conc_pool *p = make_pool(2);
	size_t nsz = sizeof radix_sizes / sizeof *radix_sizes;
	for (int pat = 0; pat < NPATTERNS; pat++) {
		for (size_t k = 0; k <= nsz; k++) {
			size_t n = k < nsz ? sized(radix_sizes[k]) : (pat == P_RANDOM ? sized(big_n()) : 0);
			uint64_t *a = malloc((n + 1) * 8), *r = malloc((n + 1) * 8);
			assert_non_null(a);
			assert_non_null(r);
			/* u64: full-width keys; the few-distinct and small keys
			 * leave high bytes constant (skipped passes) */
			for (size_t i = 0; i < n; i++)
				a[i] = r[i] = key_at(pat, i, n, 5);
			assert_int_equal(conc_parallel_sort_u64(p, a, n), 0);
			qsort(r, n, 8, cmp_u64_plain);
			assert_true(n == 0 || memcmp(a, r, n * 8) == 0);
			/* i64: signed, spread over both signs */
			int64_t *s = (int64_t *)a, *sr = (int64_t *)r;
			for (size_t i = 0; i < n; i++)
				s[i] = sr[i] = (int64_t)(key_at(pat, i, n, 6) * UINT64_C(0x10001)) -
					       (int64_t)(n * 0x8000);
			assert_int_equal(conc_parallel_sort_i64(p, s, n), 0);
			qsort(sr, n, 8, cmp_i64_plain);
			assert_true(n == 0 || memcmp(s, sr, n * 8) == 0);
			/* u32 */
			uint32_t *u = (uint32_t *)a, *ur = (uint32_t *)r;
			for (size_t i = 0; i < n; i++)
				u[i] = ur[i] = (uint32_t)key_at(pat, i, n, 7);
			assert_int_equal(conc_parallel_sort_u32(p, u, n), 0);
			qsort(ur, n, 4, cmp_u32_plain);
			assert_true(n == 0 || memcmp(u, ur, n * 4) == 0);
			free(a);
			free(r);
		}
	}
	/* the global pool, once */
	uint64_t v[5000];
	for (size_t i = 0; i < 5000; i++)
		v[i] = mix(i);
	assert_int_equal(conc_parallel_sort_u64(NULL, v, 5000), 0);
	for (size_t i = 1; i < 5000; i++)
		assert_true(v[i - 1] <= v[i]);
	assert_int_equal(conc_pool_destroy(p), 0);
}

static void test_algo_radix_double(void **state)
{
	(void)state;
	static const uint64_t specials[] = {
		UINT64_C(0x7ff8000000000000), /* +qNaN */
		UINT64_C(0xfff8000000000000), /* -qNaN */
		UINT64_C(0x7ff0000000000001), /* +sNaN */
		UINT64_C(0xfff0000000000001), /* -sNaN */
		UINT64_C(0x7fffffffffffffff), /* +NaN, largest payload */
		UINT64_C(0xffffffffffffffff), /* -NaN, largest payload */
		UINT64_C(0x7ff0000000000000), /* +inf */
		UINT64_C(0xfff0000000000000), /* -inf */
		UINT64_C(0x0000000000000000), /* +0 */
		UINT64_C(0x8000000000000000), /* -0 */
		UINT64_C(0x0000000000000001), /* +denormal */
		UINT64_C(0x8000000000000001), /* -denormal */
		UINT64_C(0x3ff0000000000000), /* 1.0 */
		UINT64_C(0xbff0000000000000), /* -1.0 */
	};
	size_t nsp = sizeof specials / sizeof *specials;
	conc_pool *p = make_pool(2);
	size_t ns[] = {2, 14, 100, 4097, 70000, sized(500000)};
	for (size_t k = 0; k < sizeof ns / sizeof *ns; k++) {
		size_t n = ns[k];
		double *a = malloc(n * sizeof *a);
		uint64_t *r = malloc(n * 8);
		assert_non_null(a);
		assert_non_null(r);
		for (size_t i = 0; i < n; i++) {
			uint64_t m = mix(i * 3 + k);
			double d;
			if (m % 4 == 0)
				memcpy(&d, &specials[m / 4 % nsp], 8);
			else
				d = ((double)(int64_t)m) * 1e-10 * (m % 3 == 0 ? 1e300 : 1.0);
			a[i] = d;
			memcpy(&r[i], &d, 8);
		}
		assert_int_equal(conc_parallel_sort_double(p, a, n), 0);
		qsort(r, n, 8, cmp_total_plain);
		assert_memory_equal(a, r, n * 8);
		free(a);
		free(r);
	}
	/* the order of the specials, spelled out */
	double d[14];
	static const unsigned order[] = {5, 1, 3, 7, 13, 11, 9, 8, 10, 12, 6, 2, 0, 4};
	for (size_t i = 0; i < nsp; i++)
		memcpy(&d[i], &specials[i], 8);
	assert_int_equal(conc_parallel_sort_double(p, d, nsp), 0);
	for (size_t i = 0; i < nsp; i++) {
		uint64_t bits;
		memcpy(&bits, &d[i], 8);
		assert_true(bits == specials[order[i]]);
	}
	assert_true(signbit(d[6]) && d[6] == 0.0 && !signbit(d[7]) && d[7] == 0.0);
	assert_true(isinf(d[3]) && d[3] < 0 && isinf(d[10]) && d[10] > 0);
	assert_int_equal(conc_pool_destroy(p), 0);
}

/* ---- scan -------------------------------------------------------------------------- */

/* 2x2 matrices of u64 (mod 2^64) under multiplication: associative, not
 * commutative, so any misordering shows. */
struct mat {
	uint64_t a, b, c, d;
};

static void op_mat(void *acc, const void *x, void *ctx)
{
	(void)ctx;
	struct mat *m = acc;
	const struct mat *y = x;
	struct mat r = {m->a * y->a + m->b * y->c, m->a * y->b + m->b * y->d,
			m->c * y->a + m->d * y->c, m->c * y->b + m->d * y->d};
	*m = r;
}

/* 40 u64 lanes (320 bytes: above the stack accumulators), summed lane by lane */
struct wide_sum {
	uint64_t v[40];
};

static void op_wide_sum(void *acc, const void *x, void *ctx)
{
	(void)ctx;
	struct wide_sum *m = acc;
	const struct wide_sum *y = x;
	for (int i = 0; i < 40; i++)
		m->v[i] += y->v[i];
}

static void op_add_double(void *acc, const void *x, void *ctx)
{
	(void)ctx;
	*(double *)acc += *(const double *)x;
}

static void test_algo_scan(void **state)
{
	(void)state;
	conc_pool *p = make_pool(2);
	/* around the chunk sizes: 3 blocks of 2 MiB of elements, 65536 of the
	 * 32-byte matrices and 262144 of the u64, and a short last chunk
	 * (3072 elements: parallel; 3071: serial) */
	size_t ns[] = {2, 3, 16383, 16384, 16385, 3 * 65536 - 1, 3 * 65536, 3 * 65536 + 1,
		       3 * 65536 + 3072, 3 * 65536 + 3071, 3 * 262144 - 1, 3 * 262144 + 1,
		       3 * 262144 + 3072, sized(1000000)};
	for (size_t k = 0; k < sizeof ns / sizeof *ns; k++) {
		size_t n = ns[k];
		uint64_t *a = malloc(n * 8), *r = malloc(n * 8);
		assert_non_null(a);
		assert_non_null(r);
		for (size_t i = 0; i < n; i++)
			a[i] = r[i] = mix(i);
		assert_int_equal(conc_parallel_scan(p, a, n, 8, op_add_u64, NULL), 0);
		for (size_t i = 1; i < n; i++)
			r[i] += r[i - 1];
		assert_memory_equal(a, r, n * 8);
		/* the typed one */
		for (size_t i = 0; i < n; i++)
			a[i] = mix(i);
		assert_int_equal(conc_parallel_scan_u64(p, a, n), 0);
		assert_memory_equal(a, r, n * 8);
		/* doubles: the typed scan groups exactly as the generic one */
		double *d = (double *)a, *dr = (double *)r;
		for (size_t i = 0; i < n; i++)
			d[i] = dr[i] = (double)(int64_t)mix(i + 3) * 1e-9;
		assert_int_equal(conc_parallel_scan_double(p, d, n), 0);
		assert_int_equal(conc_parallel_scan(p, dr, n, 8, op_add_double, NULL), 0);
		assert_memory_equal(d, dr, n * 8);
		free(a);
		free(r);

		/* non-commutative, 32-byte elements */
		struct mat *m = malloc(n * sizeof *m), *mr = malloc(n * sizeof *mr);
		assert_non_null(m);
		assert_non_null(mr);
		for (size_t i = 0; i < n; i++) {
			uint64_t h = mix(i + 17);
			m[i] = (struct mat){h & 7, (h >> 3) & 7, (h >> 6) & 7, 1 + ((h >> 9) & 7)};
			mr[i] = m[i];
		}
		assert_int_equal(conc_parallel_scan(p, m, n, sizeof *m, op_mat, NULL), 0);
		for (size_t i = 1; i < n; i++) {
			struct mat acc = mr[i - 1];
			op_mat(&acc, &mr[i], NULL);
			mr[i] = acc;
		}
		assert_memory_equal(m, mr, n * sizeof *m);
		free(m);
		free(mr);
	}
	/* 320-byte elements: allocated accumulators */
	size_t wn[] = {5, 20000, sized(70000)};
	for (size_t k = 0; k < sizeof wn / sizeof *wn; k++) {
		size_t n = wn[k];
		struct wide_sum *w = malloc(n * sizeof *w), *wr = malloc(n * sizeof *wr);
		assert_non_null(w);
		assert_non_null(wr);
		for (size_t i = 0; i < n; i++)
			for (int l = 0; l < 40; l++)
				w[i].v[l] = wr[i].v[l] = mix(i * 40 + (size_t)l);
		assert_int_equal(conc_parallel_scan(p, w, n, sizeof *w, op_wide_sum, NULL), 0);
		for (size_t i = 1; i < n; i++) {
			struct wide_sum acc = wr[i - 1];
			op_wide_sum(&acc, &wr[i], NULL);
			wr[i] = acc;
		}
		assert_memory_equal(w, wr, n * sizeof *w);
		free(w);
		free(wr);
	}
	assert_int_equal(conc_pool_destroy(p), 0);
}

/* ---- filter ------------------------------------------------------------------------ */

struct keep_ctx {
	size_t size;
	atomic_ulong calls;
};

static bool keep_mod3(const void *x, void *ctx)
{
	struct keep_ctx *k = ctx;
	atomic_fetch_add_explicit(&k->calls, 1, memory_order_relaxed);
	unsigned char b;
	memcpy(&b, x, 1);
	return b % 3 == 0;
}

static bool keep_none(const void *x, void *ctx)
{
	(void)x;
	(void)ctx;
	return false;
}

static void test_algo_filter(void **state)
{
	(void)state;
	conc_pool *p = make_pool(2);
	size_t sizes[] = {1, 8, 24};
	size_t ns[] = {1, 2, 63, 64, 65, 16384, 16385, 65535, 65536, 65537, 200003, sized(1000000)};
	for (size_t s = 0; s < 3; s++) {
		size_t size = sizes[s];
		for (size_t k = 0; k < sizeof ns / sizeof *ns; k++) {
			size_t n = ns[k];
			unsigned char *src = malloc(n * size), *dst = malloc(n * size + 1),
				      *ref = malloc(n * size + 1);
			assert_non_null(src);
			assert_non_null(dst);
			assert_non_null(ref);
			for (size_t i = 0; i < n * size; i++)
				src[i] = (unsigned char)mix(i);
			memset(dst, 0xee, n * size + 1);
			struct keep_ctx kc = {size, 0};
			size_t kept = 0;
			assert_int_equal(conc_parallel_filter(p, src, n, size, keep_mod3, &kc, dst, &kept), 0);
			assert_int_equal(atomic_load(&kc.calls), n); /* once per element */
			size_t c = 0;
			for (size_t i = 0; i < n; i++)
				if (src[i * size] % 3 == 0)
					memcpy(ref + c++ * size, src + i * size, size);
			assert_int_equal(kept, c);
			assert_memory_equal(dst, ref, c * size);
			assert_int_equal(dst[c * size], 0xee); /* nothing beyond */
			assert_int_equal(conc_parallel_filter(p, src, n, size, keep_none, NULL, dst, &kept), 0);
			assert_int_equal(kept, 0);
			assert_int_equal(conc_parallel_filter(p, src, n, size, keep_all, NULL, dst, &kept), 0);
			assert_int_equal(kept, n);
			assert_memory_equal(dst, src, n * size);
			free(src);
			free(dst);
			free(ref);
		}
	}
	assert_int_equal(conc_pool_destroy(p), 0);
}

/* ---- the same bytes on 1, 2 and 16 threads --------------------------------------- */

static void test_algo_deterministic(void **state)
{
	(void)state;
	static const unsigned threads[] = {1, 2, 16};
	size_t n = sized(300000);
	struct rec *in = malloc(n * sizeof *in);
	double *din = malloc(n * sizeof *din);
	assert_non_null(in);
	assert_non_null(din);
	for (size_t i = 0; i < n; i++) {
		in[i].key = mix(i) % 100; /* many equal keys: unstable order shows */
		in[i].idx = i;
		din[i] = (double)(int64_t)mix(i + 1) * 1e-7;
	}
	struct rec *first[2] = {NULL, NULL};
	double *dfirst = NULL;
	for (int t = 0; t < 4; t++) {
		conc_pool *p = t < 3 ? make_pool(threads[t]) : NULL;
		for (int v = 0; v < 2; v++) {
			/* unstable sort, and an organ-pipe variant */
			struct rec *a = malloc(n * sizeof *a);
			assert_non_null(a);
			memcpy(a, in, n * sizeof *a);
			if (v == 1)
				for (size_t i = 0; i < n; i++)
					a[i].key = (i < n / 2 ? i : n - i) / 7;
			assert_int_equal(conc_parallel_sort(p, a, n, sizeof *a, cmp_rec_key, NULL), 0);
			if (!first[v])
				first[v] = a;
			else {
				if (memcmp(first[v], a, n * sizeof *a) != 0) {
					printf("unstable sort: output differs on pool %d\n", t);
					fail();
				}
				free(a);
			}
		}
		double *d = malloc(n * sizeof *d);
		assert_non_null(d);
		memcpy(d, din, n * sizeof *d);
		assert_int_equal(conc_parallel_scan(p, d, n, sizeof *d, op_add_double, NULL), 0);
		if (!dfirst)
			dfirst = d;
		else {
			assert_memory_equal(dfirst, d, n * sizeof *d);
			free(d);
		}
		double *e = malloc(n * sizeof *e);
		assert_non_null(e);
		memcpy(e, din, n * sizeof *e);
		assert_int_equal(conc_parallel_scan_double(p, e, n), 0);
		assert_memory_equal(dfirst, e, n * sizeof *e);
		free(e);
		if (p)
			assert_int_equal(conc_pool_destroy(p), 0);
	}
	free(first[0]);
	free(first[1]);
	free(dfirst);
	free(in);
	free(din);
}

/* ---- a comparator that answers at random ------------------------------------------ */

static _Thread_local uint64_t rnd_state = 1;

static int cmp_random(const void *a, const void *b, void *ctx)
{
	(void)a;
	(void)b;
	(void)ctx;
	rnd_state = mix(rnd_state);
	return (int)(rnd_state % 3) - 1;
}

#define GUARD 256

static void test_algo_inconsistent(void **state)
{
	(void)state;
	conc_pool *p = make_pool(2);
	size_t sizes[] = {1, 4, 8, 13, 16, 100};
	size_t ns[] = {2, 25, 200, 5000, sized(100000)};
	for (size_t s = 0; s < sizeof sizes / sizeof *sizes; s++) {
		for (size_t k = 0; k < sizeof ns / sizeof *ns; k++) {
			for (int stable = 0; stable < 2; stable++) {
				size_t size = sizes[s], n = ns[k];
				unsigned char *buf = malloc(n * size + 2 * GUARD), *in = malloc(n * size);
				assert_non_null(buf);
				assert_non_null(in);
				memset(buf, 0x5a, n * size + 2 * GUARD);
				unsigned char *a = buf + GUARD;
				for (size_t i = 0; i < n; i++)
					wide_fill(in + i * size, size, mix(i), i);
				memcpy(a, in, n * size);
				int err = stable ? conc_parallel_stable_sort(p, a, n, size, cmp_random, NULL)
						 : conc_parallel_sort(p, a, n, size, cmp_random, NULL);
				assert_int_equal(err, 0);
				for (size_t i = 0; i < GUARD; i++) {
					assert_int_equal(buf[i], 0x5a);
					assert_int_equal(a[n * size + i], 0x5a);
				}
				/* a permutation: sort both fully and compare */
				cmp_wide_plain_w.size = size;
				qsort(a, n, size, cmp_wide_full);
				qsort(in, n, size, cmp_wide_full);
				assert_memory_equal(a, in, n * size);
				free(buf);
				free(in);
			}
		}
	}
	assert_int_equal(conc_pool_destroy(p), 0);
}

/* ---- nested: sorts inside pool tasks, on pools of 1 and 2 threads ------------------ */

struct nest {
	conc_pool *p;
	uint64_t *a;
	size_t chunk;
};

static int nest_body(size_t lo, size_t hi, void *ctx)
{
	struct nest *ns = ctx;
	for (size_t c = lo; c < hi; c++) {
		uint64_t *a = ns->a + c * ns->chunk;
		int err;
		switch (c % 3) {
		case 0:
			err = conc_parallel_sort(ns->p, a, ns->chunk, 8, cmp_u64, NULL);
			break;
		case 1:
			err = conc_parallel_stable_sort(ns->p, a, ns->chunk, 8, cmp_u64, NULL);
			break;
		default:
			err = conc_parallel_sort_u64(ns->p, a, ns->chunk);
			break;
		}
		if (err)
			return err;
	}
	return 0;
}

static void test_algo_nested(void **state)
{
	(void)state;
	for (unsigned t = 1; t <= 2; t++) {
		conc_pool *p = make_pool(t);
		struct nest ns = {p, NULL, 20000};
		size_t chunks = 12;
		ns.a = malloc(chunks * ns.chunk * 8);
		assert_non_null(ns.a);
		for (size_t i = 0; i < chunks * ns.chunk; i++)
			ns.a[i] = mix(i);
		assert_int_equal(conc_parallel_for(p, 0, chunks, 1, nest_body, &ns), 0);
		for (size_t c = 0; c < chunks; c++)
			for (size_t i = 1; i < ns.chunk; i++)
				assert_true(ns.a[c * ns.chunk + i - 1] <= ns.a[c * ns.chunk + i]);
		free(ns.a);
		assert_int_equal(conc_pool_destroy(p), 0);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_algo_einval),
		cmocka_unit_test(test_algo_sort_patterns),
		cmocka_unit_test(test_algo_sort_sizes),
		cmocka_unit_test(test_algo_radix),
		cmocka_unit_test(test_algo_radix_double),
		cmocka_unit_test(test_algo_scan),
		cmocka_unit_test(test_algo_filter),
		cmocka_unit_test(test_algo_deterministic),
		cmocka_unit_test(test_algo_inconsistent),
		cmocka_unit_test(test_algo_nested),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
