/*
 * faults_algo.c - the faults suite (issue 8, tests/lib/faults.h): conc/algo.h.
 * Each call swept on a pool of two: a failed scratch allocation
 * (algo.stable_sort, algo.radix, algo.scan, algo.filter) is ENOMEM with the
 * array (dst, *kept) untouched; a failed hand-off of the parallel layer
 * runs inline and the call succeeds with the right result.  Then sorts
 * under random failures.
 */
#include <stdlib.h>

#include "faults.h"

#include "pool/pool_internal.h"

static conc_pool *algo_pool;

static uint64_t mix(uint64_t x)
{
	x += UINT64_C(0x9e3779b97f4a7c15);
	x = (x ^ (x >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
	x = (x ^ (x >> 27)) * UINT64_C(0x94d049bb133111eb);
	return x ^ (x >> 31);
}

struct rec {
	uint64_t key, idx;
};

static int cmp_rec(const void *a, const void *b, void *ctx)
{
	(void)ctx;
	const struct rec *x = a, *y = b;
	return (x->key > y->key) - (x->key < y->key);
}

#define SORT_N 20000u
static struct rec rin[SORT_N], rbuf[SORT_N];

static void fill_recs(void)
{
	for (size_t i = 0; i < SORT_N; i++) {
		rin[i].key = mix(i) % 500;
		rin[i].idx = i;
	}
	memcpy(rbuf, rin, sizeof rin);
}

static bool recs_stable_sorted(void)
{
	for (size_t i = 1; i < SORT_N; i++) {
		if (rbuf[i - 1].key > rbuf[i].key)
			return false;
		if (rbuf[i - 1].key == rbuf[i].key && rbuf[i - 1].idx >= rbuf[i].idx)
			return false;
	}
	return true;
}

static bool recs_sorted_perm(void)
{
	static unsigned char seen[SORT_N];
	memset(seen, 0, sizeof seen);
	for (size_t i = 0; i < SORT_N; i++) {
		if (i && rbuf[i - 1].key > rbuf[i].key)
			return false;
		if (rbuf[i].idx >= SORT_N || seen[rbuf[i].idx]++ ||
		    rin[rbuf[i].idx].key != rbuf[i].key)
			return false;
	}
	return true;
}

static void run_stable_sort(struct sweep *sw)
{
	fill_recs();
	conc__parallel_drop_tickets(); /* each run allocates its tickets */
	arm(sw);
	int err = conc_parallel_stable_sort(algo_pool, rbuf, SORT_N, sizeof *rbuf, cmp_rec, NULL);
	disarm(sw);
	if (site_is(sw, "algo.")) {
		CHECK(sw, err == ENOMEM);
		CHECK(sw, memcmp(rbuf, rin, sizeof rin) == 0); /* untouched */
	} else {
		CHECK(sw, err == 0);
		CHECK(sw, recs_stable_sorted());
	}
}

static void run_sort(struct sweep *sw)
{
	fill_recs();
	conc__parallel_drop_tickets();
	arm(sw);
	int err = conc_parallel_sort(algo_pool, rbuf, SORT_N, sizeof *rbuf, cmp_rec, NULL);
	disarm(sw);
	CHECK(sw, err == 0); /* no scratch: it cannot fail */
	CHECK(sw, recs_sorted_perm());
}

#define RADIX_N 100000u
static uint64_t uin[RADIX_N], ubuf[RADIX_N];

static void run_radix(struct sweep *sw)
{
	for (size_t i = 0; i < RADIX_N; i++)
		uin[i] = ubuf[i] = mix(i + 7);
	conc__parallel_drop_tickets();
	arm(sw);
	int err = conc_parallel_sort_u64(algo_pool, ubuf, RADIX_N);
	disarm(sw);
	if (site_is(sw, "algo.")) {
		CHECK(sw, err == ENOMEM);
		CHECK(sw, memcmp(ubuf, uin, sizeof uin) == 0);
	} else {
		CHECK(sw, err == 0);
		bool ok = true;
		uint64_t sum = 0, sum_in = 0;
		for (size_t i = 0; i < RADIX_N; i++) {
			ok &= i == 0 || ubuf[i - 1] <= ubuf[i];
			sum += ubuf[i];
			sum_in += uin[i];
		}
		CHECK(sw, ok && sum == sum_in);
	}
}

/* 320-byte elements: the scan's accumulators are allocated. */
struct lanes {
	uint64_t v[40];
};

static void op_lanes(void *acc, const void *x, void *ctx)
{
	(void)ctx;
	struct lanes *a = acc;
	const struct lanes *b = x;
	for (int i = 0; i < 40; i++)
		a->v[i] += b->v[i];
}

#define SCAN_N 20000u
static struct lanes *lin, *lbuf;

static void run_scan(struct sweep *sw)
{
	for (size_t i = 0; i < SCAN_N; i++)
		for (int l = 0; l < 40; l++)
			lin[i].v[l] = lbuf[i].v[l] = i + (size_t)l;
	conc__parallel_drop_tickets();
	arm(sw);
	int err = conc_parallel_scan(algo_pool, lbuf, SCAN_N, sizeof *lbuf, op_lanes, NULL);
	disarm(sw);
	if (site_is(sw, "algo.")) {
		CHECK(sw, err == ENOMEM);
		CHECK(sw, memcmp(lbuf, lin, SCAN_N * sizeof *lin) == 0);
	} else {
		CHECK(sw, err == 0);
		bool ok = true;
		for (size_t i = 0; i < SCAN_N; i++)
			for (int l = 0; l < 40; l++)
				ok &= lbuf[i].v[l] == i * (i + 1) / 2 + (i + 1) * (size_t)l;
		CHECK(sw, ok);
	}
}

static bool keep_even(const void *x, void *ctx)
{
	(void)ctx;
	uint64_t v;
	memcpy(&v, x, 8);
	return v % 2 == 0;
}

static void run_filter(struct sweep *sw)
{
	for (size_t i = 0; i < RADIX_N; i++) {
		uin[i] = mix(i);
		ubuf[i] = 0xdd;
	}
	size_t kept = 12345;
	conc__parallel_drop_tickets();
	arm(sw);
	int err = conc_parallel_filter(algo_pool, uin, RADIX_N, 8, keep_even, NULL, ubuf, &kept);
	disarm(sw);
	if (site_is(sw, "algo.")) {
		CHECK(sw, err == ENOMEM);
		CHECK(sw, kept == 12345);
		bool ok = true;
		for (size_t i = 0; i < RADIX_N; i++)
			ok &= ubuf[i] == 0xdd;
		CHECK(sw, ok);
	} else {
		CHECK(sw, err == 0);
		size_t c = 0;
		bool ok = true;
		for (size_t i = 0; i < RADIX_N; i++)
			if (uin[i] % 2 == 0)
				ok &= ubuf[c++] == uin[i];
		CHECK(sw, ok && kept == c);
	}
}

static void test_faults_algo(void **state)
{
	(void)state;
	conc_test_watchdog("faults_algo", 300);
	conc_pool_config two = {.threads = 2};
	assert_int_equal(conc_pool_create(&algo_pool, &two), 0);
	lin = malloc(SCAN_N * sizeof *lin);
	lbuf = malloc(SCAN_N * sizeof *lbuf);
	assert_non_null(lin);
	assert_non_null(lbuf);
	sweep("parallel_sort", run_sort);
	sweep("parallel_stable_sort", run_stable_sort);
	sweep("parallel_sort_u64", run_radix);
	sweep("parallel_scan", run_scan);
	sweep("parallel_filter", run_filter);
	free(lin);
	free(lbuf);
	assert_int_equal(conc_pool_destroy(algo_pool), 0);
	conc_test_watchdog_off();
}

/* Random failures: every sort either succeeds or is ENOMEM, untouched. */
static void test_faults_hammer_algo(void **state)
{
	(void)state;
	conc_test_watchdog("faults_hammer_algo", 120);
	conc_pool *p;
	conc_pool_config two = {.threads = 2};
	assert_int_equal(conc_pool_create(&p, &two), 0);
	unsigned long rounds = conc_test_iters(100, 10);
	long bad = 0, ok = 0, enomem = 0;
	conc__fault_reset();
	conc__fault_fail_rate(HAM_PPM, 0, 0xa160);
	for (unsigned long r = 0; r < rounds; r++) {
		fill_recs();
		int err = conc_parallel_stable_sort(p, rbuf, SORT_N, sizeof *rbuf, cmp_rec, NULL);
		if (err == ENOMEM)
			enomem++, bad += memcmp(rbuf, rin, sizeof rin) != 0;
		else if (err == 0 && recs_stable_sorted())
			ok++;
		else
			bad++;
		for (size_t i = 0; i < RADIX_N; i++)
			uin[i] = ubuf[i] = mix(i * r + 1);
		err = conc_parallel_sort_u64(p, ubuf, RADIX_N);
		if (err == ENOMEM)
			enomem++, bad += memcmp(ubuf, uin, sizeof uin) != 0;
		else if (err == 0) {
			ok++;
			for (size_t i = 1; i < RADIX_N; i++)
				bad += ubuf[i - 1] > ubuf[i];
		} else
			bad++;
	}
	long a_calls = conc__fault_alloc_calls(), a_failed = conc__fault_alloc_failures();
	conc__fault_reset();
	hammer_failed += a_failed;
	assert_int_equal(conc_pool_destroy(p), 0);
	printf("reliability: faults hammer algo | rounds=%lu allocs=%ld failed=%ld "
	       "ok=%ld ENOMEM=%ld bad=%ld\n",
	       rounds, a_calls, a_failed, ok, enomem, bad);
	fflush(stdout);
	assert_int_equal(bad, 0);
	if (expect_failures(a_calls, HAM_PPM))
		assert_true(a_failed > 0);
	conc_test_watchdog_off();
}

int main(void)
{
	faults_begin("algo");
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_faults_algo),
		cmocka_unit_test(test_faults_hammer_algo),
	};
	return faults_end(cmocka_run_group_tests(tests, NULL, NULL));
}
