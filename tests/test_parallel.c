/*
 * test_parallel.c - fork-join and parallel loops (conc/parallel.h).
 */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdalign.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "pool_hold.h"
#include "testutil.h"

#include "conc/epoch.h"
#include "conc/parallel.h"
#include "conc/pool.h"
#include "base/fault.h"
#include "pool/pool_internal.h"

/* ---- pools ------------------------------------------------------------------ */

static conc_pool *make_pool(unsigned threads)
{
	conc_pool_config cfg = {.threads = threads};
	conc_pool *p = NULL;
	assert_int_equal(conc_pool_create(&p, &cfg), 0);
	return p;
}

/* The pools most tests run on: NULL is the global pool. */
#define NPOOLS 4
static const unsigned pool_threads[NPOOLS] = {1, 2, 3, 0};

static conc_pool *pool_at(int i)
{
	return pool_threads[i] ? make_pool(pool_threads[i]) : NULL;
}

static void pool_done(conc_pool *p)
{
	if (p)
		assert_int_equal(conc_pool_destroy(p), 0);
}

/* ---- the split tree, generated here on its own --------------------------------- */

struct piece {
	size_t lo, hi;
};

/* The header's grain-0 formula, written again. */
static size_t ref_grain(size_t n, size_t grain)
{
	if (grain)
		return grain;
	size_t g = n / 4096 + (n % 4096 != 0);
	return g < 4096 ? 4096 : g;
}

static size_t ref_pieces(size_t lo, size_t hi, size_t grain, struct piece *out, size_t k)
{
	if (hi - lo <= grain) {
		out[k].lo = lo;
		out[k].hi = hi;
		return k + 1;
	}
	size_t mid = lo + (hi - lo) / 2;
	k = ref_pieces(lo, mid, grain, out, k);
	return ref_pieces(mid, hi, grain, out, k);
}

static size_t ref_count(size_t lo, size_t hi, size_t grain)
{
	if (hi - lo <= grain)
		return 1;
	size_t mid = lo + (hi - lo) / 2;
	return ref_count(lo, mid, grain) + ref_count(mid, hi, grain);
}

static int cmp_piece(const void *a, const void *b)
{
	const struct piece *x = a, *y = b;
	return x->lo < y->lo ? -1 : x->lo > y->lo;
}

/* ---- recording pieces ------------------------------------------------------------ */

struct rec {
	size_t begin;
	struct piece *log;
	size_t cap;
	atomic_size_t n;
	atomic_uchar *count; /* per index (offset from begin), or NULL */
	atomic_int bad;      /* lo >= hi, or log overflow */
	pthread_t caller;
	atomic_int on_caller;
};

static int rec_body(size_t lo, size_t hi, void *ctx)
{
	struct rec *r = ctx;
	if (lo >= hi)
		atomic_store(&r->bad, 1);
	size_t k = atomic_fetch_add(&r->n, 1);
	if (k < r->cap) {
		r->log[k].lo = lo;
		r->log[k].hi = hi;
	} else {
		atomic_store(&r->bad, 1);
	}
	if (r->count)
		for (size_t i = lo; i < hi; i++)
			atomic_fetch_add_explicit(&r->count[i - r->begin], 1, memory_order_relaxed);
	if (pthread_equal(pthread_self(), r->caller))
		atomic_fetch_add(&r->on_caller, 1);
	return 0;
}

/* Run parallel_for over [begin, end) with grain on p; check that the pieces
 * are exactly the split tree and (when count) every index ran once. */
static void check_for(conc_pool *p, size_t begin, size_t end, size_t grain, bool count)
{
	size_t g = ref_grain(end - begin, grain);
	size_t np = end > begin ? ref_count(begin, end, g) : 0;
	struct rec r = {.begin = begin, .cap = np + 1, .caller = pthread_self()};
	r.log = calloc(np + 1, sizeof *r.log);
	struct piece *want = calloc(np + 1, sizeof *want);
	assert_non_null(r.log);
	assert_non_null(want);
	if (count) {
		r.count = calloc(end - begin + 1, 1);
		assert_non_null(r.count);
	}
	assert_int_equal(conc_parallel_for(p, begin, end, grain, rec_body, &r), 0);
	assert_int_equal(atomic_load(&r.bad), 0);
	assert_int_equal(atomic_load(&r.n), np);
	if (np)
		assert_int_equal(ref_pieces(begin, end, g, want, 0), np);
	qsort(r.log, np, sizeof *r.log, cmp_piece);
	for (size_t i = 0; i < np; i++) {
		if (r.log[i].lo != want[i].lo || r.log[i].hi != want[i].hi)
			fail_msg("[%zu, %zu) grain %zu: piece %zu is [%zu, %zu), want [%zu, %zu)",
				 begin, end, grain, i, r.log[i].lo, r.log[i].hi,
				 want[i].lo, want[i].hi);
	}
	if (count)
		for (size_t i = 0; i < end - begin; i++)
			if (atomic_load(&r.count[i]) != 1)
				fail_msg("[%zu, %zu) grain %zu: index %zu ran %u times", begin,
					 end, grain, begin + i, (unsigned)atomic_load(&r.count[i]));
	free((void *)r.count);
	free(r.log);
	free(want);
}

/* ---- errors and edges ---------------------------------------------------------------- */

static atomic_int calls;

static int count_body(size_t lo, size_t hi, void *ctx)
{
	(void)lo, (void)hi, (void)ctx;
	atomic_fetch_add(&calls, 1);
	return 0;
}

static void u64_zero(void *acc, void *ctx)
{
	(void)ctx;
	atomic_fetch_add(&calls, 1);
	*(uint64_t *)acc = 0;
}

static int u64_sum(size_t lo, size_t hi, void *acc, void *ctx)
{
	(void)ctx;
	uint64_t s = *(uint64_t *)acc;
	for (size_t i = lo; i < hi; i++)
		s += i;
	*(uint64_t *)acc = s;
	return 0;
}

static void u64_add(void *acc, const void *other, void *ctx)
{
	(void)ctx;
	*(uint64_t *)acc += *(const uint64_t *)other;
}

static void nop(void *arg)
{
	atomic_fetch_add(&calls, 1);
	(void)arg;
}

static void test_parallel_errors(void **state)
{
	(void)state;
	conc_test_watchdog("errors", 60);
	conc_pool *p = make_pool(2);
	uint64_t res = 77;
	atomic_store(&calls, 0);
	for (int k = 0; k < 2; k++) {
		conc_pool *q = k ? p : NULL;
		assert_int_equal(conc_join(q, NULL, NULL, nop, NULL), EINVAL);
		assert_int_equal(conc_join(q, nop, NULL, NULL, NULL), EINVAL);
		assert_int_equal(conc_parallel_for(q, 0, 10, 1, NULL, NULL), EINVAL);
		assert_int_equal(conc_parallel_for(q, 5, 5, 1, NULL, NULL), EINVAL); /* empty too */
		assert_int_equal(conc_parallel_for(q, 6, 5, 1, count_body, NULL), EINVAL);
		assert_int_equal(conc_parallel_for(q, SIZE_MAX, 0, 0, count_body, NULL), EINVAL);
		for (size_t e = 5; e <= 10; e += 5) { /* empty and not */
			assert_int_equal(conc_parallel_reduce(q, 5, e, 1, NULL, 8, u64_zero, u64_sum, u64_add, NULL), EINVAL);
			assert_int_equal(conc_parallel_reduce(q, 5, e, 1, &res, 0, u64_zero, u64_sum, u64_add, NULL), EINVAL);
			assert_int_equal(conc_parallel_reduce(q, 5, e, 1, &res, 8, NULL, u64_sum, u64_add, NULL), EINVAL);
			assert_int_equal(conc_parallel_reduce(q, 5, e, 1, &res, 8, u64_zero, NULL, u64_add, NULL), EINVAL);
			assert_int_equal(conc_parallel_reduce(q, 5, e, 1, &res, 8, u64_zero, u64_sum, NULL, NULL), EINVAL);
		}
		assert_int_equal(conc_parallel_reduce(q, 6, 5, 1, &res, 8, u64_zero, u64_sum, u64_add, NULL), EINVAL);
	}
	assert_int_equal(atomic_load(&calls), 0); /* nothing ran */
	assert_int_equal(res, 77);                /* untouched */
	pool_done(p);
	conc_test_watchdog_off();
}

static void test_parallel_empty_range(void **state)
{
	(void)state;
	conc_test_watchdog("empty_range", 60);
	conc_pool *p = make_pool(2);
	atomic_store(&calls, 0);
	uint64_t res = 77;
	for (int k = 0; k < 2; k++) {
		conc_pool *q = k ? p : NULL;
		assert_int_equal(conc_parallel_for(q, 0, 0, 0, count_body, NULL), 0);
		assert_int_equal(conc_parallel_for(q, SIZE_MAX, SIZE_MAX, 1, count_body, NULL), 0);
		assert_int_equal(atomic_load(&calls), 0);
		res = 77;
		assert_int_equal(conc_parallel_reduce(q, 9, 9, 0, &res, sizeof res, u64_zero, u64_sum, u64_add, NULL), 0);
		assert_int_equal(res, 0); /* the identity */
		assert_int_equal(atomic_load(&calls), 1);
		atomic_store(&calls, 0);
	}
	pool_done(p);
	conc_test_watchdog_off();
}

/* One piece runs on the calling thread; grain 0 keeps ranges of up to
 * CONC_PARALLEL_GRAIN_MIN indexes in one piece. */
static void test_parallel_single_piece(void **state)
{
	(void)state;
	conc_test_watchdog("single_piece", 60);
	size_t lens[] = {1, 2, 999, 1000, CONC_PARALLEL_GRAIN_MIN};
	for (size_t i = 0; i < sizeof lens / sizeof lens[0]; i++) {
		struct piece log[2];
		struct rec r = {.begin = 3, .log = log, .cap = 2, .caller = pthread_self()};
		assert_int_equal(conc_parallel_for(NULL, 3, 3 + lens[i], 0, rec_body, &r), 0);
		assert_int_equal(atomic_load(&r.n), 1);
		assert_int_equal(log[0].lo, 3);
		assert_int_equal(log[0].hi, 3 + lens[i]);
		assert_int_equal(atomic_load(&r.on_caller), 1);
	}
	/* One more index: two pieces. */
	check_for(NULL, 0, CONC_PARALLEL_GRAIN_MIN + 1, 0, true);
	conc_test_watchdog_off();
}

/* ---- every index once; the pieces are the tree ------------------------------------------- */

static void test_parallel_for_pieces(void **state)
{
	(void)state;
	conc_test_watchdog("for_pieces", 240);
	static const size_t lens[] = {1, 2, 3, 5, 7, 64, 97, 1000, 1024, 1025, 4093, 4096,
				      65537, 100003};
	static const size_t grains[] = {0, 1, 2, 3, 7, 13, 64, 997, 1024, 5000};
	static const size_t begins[] = {0, 1, 12345};
	for (int pi = 0; pi < NPOOLS; pi++) {
		conc_pool *p = pool_at(pi);
		for (size_t a = 0; a < sizeof lens / sizeof lens[0]; a++)
			for (size_t b = 0; b < sizeof grains / sizeof grains[0]; b++) {
				if (CONC_TEST_SANITIZED && lens[a] > 5000 && grains[b] < 64 && grains[b])
					continue;
				size_t begin = begins[(a + b) % 3];
				check_for(p, begin, begin + lens[a], grains[b], true);
			}
		/* Long ranges with grain 0: the leaf count is capped. */
		check_for(p, 0, 4096u * 1024u, 0, false);
		check_for(p, 7, 7 + 4096u * 1024u + 1, 0, false);
		check_for(p, 0, CONC_TEST_SANITIZED ? 3000001 : 30000001, 0, false);
		pool_done(p);
	}
	conc_test_watchdog_off();
}

static void test_parallel_for_near_size_max(void **state)
{
	(void)state;
	conc_test_watchdog("for_near_size_max", 120);
	for (int pi = 0; pi < NPOOLS; pi++) {
		conc_pool *p = pool_at(pi);
		check_for(p, SIZE_MAX - 1, SIZE_MAX, 0, true);
		check_for(p, SIZE_MAX - 100003, SIZE_MAX, 0, true);
		check_for(p, SIZE_MAX - 100003, SIZE_MAX, 1, true);
		check_for(p, SIZE_MAX - 100003, SIZE_MAX, 997, true);
		check_for(p, SIZE_MAX - 5000, SIZE_MAX - 1, 3, true);
		/* The whole size_t range: pieces only, no per-index count. */
		check_for(p, 0, SIZE_MAX, 0, false);             /* 4096 pieces */
		check_for(p, 0, SIZE_MAX, SIZE_MAX / 1000, false);
		check_for(p, 1, SIZE_MAX, SIZE_MAX / 2, false);
		check_for(p, 0, SIZE_MAX, SIZE_MAX, false);      /* one piece */
		pool_done(p);
	}
	conc_test_watchdog_off();
}

/* ---- cancellation ------------------------------------------------------------------------ */

struct cancel {
	size_t stop_at; /* the piece holding this index returns 42 */
	atomic_size_t ran;
	atomic_size_t max_lo_plus1; /* pieces in order on one thread: the last */
	int every;      /* every piece returns 100 + lo % 1000 */
};

static int cancel_body(size_t lo, size_t hi, void *ctx)
{
	struct cancel *c = ctx;
	atomic_fetch_add(&c->ran, 1);
	if (lo + 1 > atomic_load(&c->max_lo_plus1))
		atomic_store(&c->max_lo_plus1, lo + 1);
	if (c->every)
		return 100 + (int)(lo % 1000);
	return lo <= c->stop_at && c->stop_at < hi ? 42 : 0;
}

struct in_task {
	conc_pool *p;
	struct cancel c;
	int ret;
};

static void cancel_task(void *arg)
{
	struct in_task *t = arg;
	t->ret = conc_parallel_for(t->p, 0, 10000, 1, cancel_body, &t->c);
}

static int cancel_rbody(size_t lo, size_t hi, void *acc, void *ctx)
{
	int r = cancel_body(lo, hi, ctx);
	*(uint64_t *)acc += lo;
	return r;
}

static void big_zero(void *acc, void *ctx);
static void big_add(void *acc, const void *other, void *ctx);

static void test_parallel_for_cancel(void **state)
{
	(void)state;
	conc_test_watchdog("for_cancel", 120);
	/* One worker running the loop alone: pieces in order, so exactly the
	 * pieces up to the cancelling one ran. */
	conc_pool *p1 = make_pool(1);
	for (size_t k = 0; k < 10000; k += 1237) {
		struct in_task t = {.p = p1, .c = {.stop_at = k}};
		assert_int_equal(conc_pool_execute(p1, cancel_task, &t), 0);
		assert_int_equal(conc_pool_wait(p1), 0);
		assert_int_equal(t.ret, 42);
		assert_int_equal(atomic_load(&t.c.ran), k + 1);
		assert_int_equal(atomic_load(&t.c.max_lo_plus1), k + 1);
	}
	pool_done(p1);

	for (int pi = 0; pi < NPOOLS; pi++) {
		conc_pool *p = pool_at(pi);
		unsigned threads = conc_pool_threads(p ? p : conc_pool_global());
		for (int rep = 0; rep < 20; rep++) {
			/* A piece somewhere cancels: its value comes back. */
			struct cancel c = {.stop_at = (size_t)rep * 499};
			assert_int_equal(conc_parallel_for(p, 0, 10000, 1, cancel_body, &c), 42);
			assert_true(atomic_load(&c.ran) <= 10000);
			/* Every piece cancels: each thread taking part runs one
			 * piece, then sees the cancel. */
			struct cancel e = {.every = 1};
			int r = conc_parallel_for(p, 0, 100000, 1, cancel_body, &e);
			assert_true(r >= 100 && r < 1100);
			assert_true(atomic_load(&e.ran) >= 1);
			assert_true(atomic_load(&e.ran) <= threads + 1);
			/* Reduce cancels the same way (small and large accumulators). */
			struct cancel d = {.stop_at = (size_t)rep * 97};
			uint64_t res;
			assert_int_equal(conc_parallel_reduce(p, 0, 10000, 1, &res, sizeof res, u64_zero,
							      cancel_rbody, u64_add, &d), 42);
			unsigned char big[1024];
			struct cancel f = {.stop_at = (size_t)rep * 97};
			assert_int_equal(conc_parallel_reduce(p, 0, 10000, 3, big, sizeof big, big_zero,
							      cancel_rbody, big_add, &f), 42);
		}
		pool_done(p);
	}
	conc_test_watchdog_off();
}

/* ---- reductions ------------------------------------------------------------------------------ */

static void test_parallel_reduce_u64(void **state)
{
	(void)state;
	conc_test_watchdog("reduce_u64", 120);
	static const size_t lens[] = {1, 2, 3, 1000, 1025, 65537, 1000003};
	static const size_t grains[] = {0, 1, 7, 1000};
	for (int pi = 0; pi < NPOOLS; pi++) {
		conc_pool *p = pool_at(pi);
		for (size_t a = 0; a < sizeof lens / sizeof lens[0]; a++)
			for (size_t b = 0; b < sizeof grains / sizeof grains[0]; b++) {
				if (lens[a] > 100000 && grains[b] && grains[b] < 100 && CONC_TEST_SANITIZED)
					continue;
				size_t begin = 11, end = begin + lens[a];
				uint64_t res = 1, want = 0;
				for (size_t i = begin; i < end; i++)
					want += i;
				assert_int_equal(conc_parallel_reduce(p, begin, end, grains[b], &res,
								      sizeof res, u64_zero, u64_sum,
								      u64_add, NULL), 0);
				assert_int_equal(res, want);
			}
		pool_done(p);
	}
	conc_test_watchdog_off();
}

/* Doubles: the reduction must be exactly the tree's, bit for bit. */
static double *dv;

static double dval(size_t i)
{
	double x = 1.0 / (double)(i + 1);
	return i % 3 ? x : -1.37 * x * x * 1e6;
}

static void dv_fill(size_t n)
{
	dv = malloc(n * sizeof *dv);
	assert_non_null(dv);
	for (size_t i = 0; i < n; i++)
		dv[i] = dval(i);
}

static void dv_free(void)
{
	free(dv);
	dv = NULL;
}

static void d_zero(void *acc, void *ctx)
{
	(void)ctx;
	*(double *)acc = 0.0;
}

static int d_sum(size_t lo, size_t hi, void *acc, void *ctx)
{
	(void)ctx;
	double s = *(double *)acc;
	for (size_t i = lo; i < hi; i++)
		s += dv[i];
	*(double *)acc = s;
	return 0;
}

static void d_add(void *acc, const void *other, void *ctx)
{
	(void)ctx;
	*(double *)acc += *(const double *)other;
}

static double ref_dsum(size_t lo, size_t hi, size_t grain)
{
	if (hi - lo <= grain) {
		double s = 0.0;
		for (size_t i = lo; i < hi; i++)
			s += dv[i];
		return s;
	}
	size_t mid = lo + (hi - lo) / 2;
	double l = ref_dsum(lo, mid, grain);
	return l + ref_dsum(mid, hi, grain);
}

static void test_parallel_reduce_double_bitwise(void **state)
{
	(void)state;
	conc_test_watchdog("reduce_double_bitwise", 180);
	size_t n = CONC_TEST_SANITIZED ? 200003 : 2000003;
	dv_fill(n);
	static const size_t grains[] = {0, 1000, 7777, 100000};
	static const unsigned threads[] = {1, 2, 3, 8};
	for (size_t g = 0; g < sizeof grains / sizeof grains[0]; g++) {
		double want = ref_dsum(5, n, ref_grain(n - 5, grains[g]));
		for (size_t t = 0; t < sizeof threads / sizeof threads[0]; t++) {
			conc_pool *p = make_pool(threads[t]);
			for (int rep = 0; rep < 5; rep++) {
				double got = 0.5;
				assert_int_equal(conc_parallel_reduce(p, 5, n, grains[g], &got, sizeof got,
								      d_zero, d_sum, d_add, NULL), 0);
				if (memcmp(&got, &want, sizeof got) != 0)
					fail_msg("grain %zu, %u threads: %.17g, want %.17g", grains[g],
						 threads[t], got, want);
			}
			pool_done(p);
		}
	}
	dv_free();
	conc_test_watchdog_off();
}

/* Large accumulators (allocated): 128 doubles, each lane its own sum;
 * lane 0 also checks the alignment. */
#define LANES 128
struct big {
	double v[LANES];
};

static atomic_int misaligned;

static void big_zero(void *acc, void *ctx)
{
	(void)ctx;
	if ((uintptr_t)acc % alignof(max_align_t))
		atomic_store(&misaligned, 1);
	memset(acc, 0, sizeof(struct big));
}

static int big_sum(size_t lo, size_t hi, void *acc, void *ctx)
{
	(void)ctx;
	struct big *b = acc;
	for (size_t i = lo; i < hi; i++)
		b->v[i % LANES] += dv[i];
	return 0;
}

static void big_add(void *acc, const void *other, void *ctx)
{
	(void)ctx;
	if ((uintptr_t)acc % alignof(max_align_t) || (uintptr_t)other % alignof(max_align_t))
		atomic_store(&misaligned, 1);
	struct big *b = acc;
	const struct big *o = other;
	for (int k = 0; k < LANES; k++)
		b->v[k] += o->v[k];
}

static void ref_big(size_t lo, size_t hi, size_t grain, struct big *out)
{
	if (hi - lo <= grain) {
		memset(out, 0, sizeof *out);
		big_sum(lo, hi, out, NULL);
		return;
	}
	size_t mid = lo + (hi - lo) / 2;
	struct big r;
	ref_big(lo, mid, grain, out);
	ref_big(mid, hi, grain, &r);
	for (int k = 0; k < LANES; k++)
		out->v[k] += r.v[k];
}

static void test_parallel_reduce_large_acc(void **state)
{
	(void)state;
	conc_test_watchdog("reduce_large_acc", 120);
	size_t n = 300007;
	dv_fill(n);
	static const size_t grains[] = {0, 333, 4096};
	for (size_t g = 0; g < sizeof grains / sizeof grains[0]; g++) {
		struct big want;
		ref_big(0, n, ref_grain(n, grains[g]), &want);
		for (int pi = 0; pi < NPOOLS; pi++) {
			conc_pool *p = pool_at(pi);
			for (int rep = 0; rep < 3; rep++) {
				/* result misaligned on purpose: only copied into */
				unsigned char raw[sizeof(struct big) + 1];
				assert_int_equal(conc_parallel_reduce(p, 0, n, grains[g], raw + 1,
								      sizeof(struct big), big_zero,
								      big_sum, big_add, NULL), 0);
				assert_memory_equal(raw + 1, &want, sizeof want);
			}
			pool_done(p);
		}
	}
	assert_int_equal(atomic_load(&misaligned), 0);
	dv_free();
	conc_test_watchdog_off();
}

/* Small accumulators are aligned too, and a misaligned result is fine. */
static void test_parallel_reduce_misaligned_result(void **state)
{
	(void)state;
	conc_test_watchdog("reduce_misaligned_result", 60);
	conc_pool *p = make_pool(2);
	alignas(max_align_t) unsigned char raw[16];
	uint64_t want = 0, got;
	for (size_t i = 0; i < 50000; i++)
		want += i;
	assert_int_equal(conc_parallel_reduce(p, 0, 50000, 10, raw + 3, sizeof got, u64_zero,
					      u64_sum, u64_add, NULL), 0);
	memcpy(&got, raw + 3, sizeof got);
	assert_int_equal(got, want);
	pool_done(p);
	conc_test_watchdog_off();
}

/* Any one failing allocation: the loop still gives the right answer (a
 * push that fails runs inline) or ENOMEM (an accumulator), and nothing
 * leaks (ASan). */
static void test_parallel_reduce_enomem(void **state)
{
	(void)state;
#if defined(CONC_FAULT_HOOKS) && CONC_FAULT_HOOKS
	conc_test_watchdog("reduce_enomem", 120);
	size_t n = 100003;
	dv_fill(n);
	struct big want;
	ref_big(0, n, 100, &want);
	conc_pool *p = make_pool(2);
	/* The first allocation is the root's block: ENOMEM before anything ran. */
	atomic_store(&calls, 0);
	conc__fault_fail_alloc_at(1);
	unsigned char res[sizeof(struct big)];
	memset(res, 7, sizeof res);
	assert_int_equal(conc_parallel_reduce(p, 0, n, 100, res, sizeof res, big_zero, big_sum,
					      big_add, NULL), ENOMEM);
	conc__fault_reset();
	for (size_t i = 0; i < sizeof res; i++)
		assert_int_equal(res[i], 7);
	int enomem = 0, ok = 0;
	for (long k = 2; k < 40; k++) {
		conc__fault_fail_alloc_at(k);
		struct big got;
		int r = conc_parallel_reduce(p, 0, n, 100, &got, sizeof got, big_zero, big_sum,
					     big_add, NULL);
		conc__fault_reset();
		if (r == 0) {
			assert_memory_equal(&got, &want, sizeof want);
			ok++;
		} else {
			assert_int_equal(r, ENOMEM);
			enomem++;
		}
	}
	assert_true(ok > 0);
	pool_done(p);
	dv_free();
	conc_test_watchdog_off();
#else
	skip();
#endif
}

/* ---- nesting -------------------------------------------------------------------------------- */

#define N1 6
#define N2 5
#define N3 64

struct nest {
	conc_pool *p;
	atomic_uint *hits; /* N1 * N2 * N3 */
	atomic_int err;
};

struct nest_arg {
	struct nest *n;
	size_t i, j;
};

static int nest3(size_t lo, size_t hi, void *ctx)
{
	struct nest_arg *a = ctx;
	for (size_t k = lo; k < hi; k++)
		atomic_fetch_add(&a->n->hits[(a->i * N2 + a->j) * N3 + k], 1);
	return 0;
}

static int nest2(size_t lo, size_t hi, void *ctx)
{
	struct nest_arg *up = ctx;
	for (size_t j = lo; j < hi; j++) {
		struct nest_arg a = {up->n, up->i, j};
		if (conc_parallel_for(up->n->p, 0, N3, 1, nest3, &a))
			atomic_store(&up->n->err, 1);
	}
	return 0;
}

static int nest1(size_t lo, size_t hi, void *ctx)
{
	struct nest *n = ctx;
	for (size_t i = lo; i < hi; i++) {
		struct nest_arg a = {n, i, 0};
		if (conc_parallel_for(n->p, 0, N2, 1, nest2, &a))
			atomic_store(&n->err, 1);
	}
	return 0;
}

static void nest_task(void *arg)
{
	struct nest *n = arg;
	if (conc_parallel_for(n->p, 0, N1, 1, nest1, n))
		atomic_store(&n->err, 1);
}

static void nest_check(struct nest *n, unsigned times)
{
	assert_int_equal(atomic_load(&n->err), 0);
	for (size_t i = 0; i < N1 * N2 * N3; i++)
		assert_int_equal(atomic_load(&n->hits[i]), times);
}

static void test_parallel_nested_depth3(void **state)
{
	(void)state;
	conc_test_watchdog("nested_depth3", 180);
	for (int pi = 0; pi < NPOOLS; pi++) {
		conc_pool *p = pool_at(pi);
		conc_pool *pp = p ? p : conc_pool_global();
		/* From outside, inside bodies. */
		struct nest n = {.p = p};
		n.hits = calloc(N1 * N2 * N3, sizeof *n.hits);
		assert_non_null(n.hits);
		nest_task(&n);
		nest_check(&n, 1);
		/* Inside pool tasks: more of them than threads, so every
		 * worker nests. */
		unsigned tasks = 8;
		for (unsigned t = 0; t < tasks; t++)
			assert_int_equal(conc_pool_execute(pp, nest_task, &n), 0);
		assert_int_equal(conc_pool_wait(pp), 0);
		nest_check(&n, 1 + tasks);
		free(n.hits);
		pool_done(p);
	}
	conc_test_watchdog_off();
}

/* A loop on one pool from inside a task of another. */
static void foreign_task(void *arg)
{
	struct nest *n = arg;
	nest_task(n);
}

static void test_parallel_foreign_pool(void **state)
{
	(void)state;
	conc_test_watchdog("foreign_pool", 120);
	conc_pool *a = make_pool(2), *b = make_pool(1);
	struct nest n = {.p = a};
	n.hits = calloc(N1 * N2 * N3, sizeof *n.hits);
	assert_non_null(n.hits);
	for (int t = 0; t < 3; t++)
		assert_int_equal(conc_pool_execute(b, foreign_task, &n), 0);
	assert_int_equal(conc_pool_wait(b), 0);
	nest_check(&n, 3);
	free(n.hits);
	pool_done(a);
	pool_done(b);
	conc_test_watchdog_off();
}

/* ---- conc_join --------------------------------------------------------------------------------- */

struct fib {
	conc_pool *p;
	unsigned n;
	uint64_t r;
};

static void fib_run(void *arg)
{
	struct fib *f = arg;
	if (f->n < 2) {
		f->r = f->n;
		return;
	}
	struct fib a = {f->p, f->n - 1, 0}, b = {f->p, f->n - 2, 0};
	conc_join(f->p, fib_run, &a, fib_run, &b);
	f->r = a.r + b.r;
}

static void test_parallel_join_fib(void **state)
{
	(void)state;
	conc_test_watchdog("join_fib", 180);
	unsigned n = CONC_TEST_SANITIZED ? 20 : 27;
	uint64_t want[2] = {0, 1};
	for (unsigned i = 2; i <= n; i++) {
		uint64_t t = want[0] + want[1];
		want[0] = want[1];
		want[1] = t;
	}
	for (int pi = 0; pi < NPOOLS; pi++) {
		conc_pool *p = pool_at(pi);
		struct fib f = {p, n, 0};
		fib_run(&f); /* from outside */
		assert_int_equal(f.r, want[1]);
		/* from inside a task */
		struct fib g = {p, n - 2, 0};
		conc_pool *pp = p ? p : conc_pool_global();
		assert_int_equal(conc_pool_execute(pp, fib_run, &g), 0);
		assert_int_equal(conc_pool_wait(pp), 0);
		assert_int_equal(g.r, want[1] - want[0]);
		pool_done(p);
	}
	conc_test_watchdog_off();
}

/* An outside thread's joins: it takes its own jobs back (LIFO), so its
 * stack stays as deep as the recursion, not as the number of tasks queued
 * (which overflowed the stack before outside offers could be claimed). */
static void *fib_thread(void *arg)
{
	fib_run(arg);
	return NULL;
}

static void test_parallel_join_outside_stack(void **state)
{
	(void)state;
	conc_test_watchdog("join_outside_stack", 180);
	conc_pool *p = make_pool(2);
	unsigned n = CONC_TEST_SANITIZED ? 22 : 28;
	uint64_t a = 0, b = 1;
	for (unsigned i = 0; i < n; i++) {
		uint64_t t = a + b;
		a = b;
		b = t;
	}
	for (int rep = 0; rep < 3; rep++) {
		pthread_attr_t attr;
		pthread_attr_init(&attr);
		/* fib's recursion needs ~n frames; a task-count-deep stack
		 * would need tens of MB */
		pthread_attr_setstacksize(&attr, CONC_TEST_SANITIZED ? 4u << 20 : 256u << 10);
		struct fib f = {p, n, 0};
		pthread_t t;
		assert_int_equal(pthread_create(&t, &attr, fib_thread, &f), 0);
		pthread_join(t, NULL);
		pthread_attr_destroy(&attr);
		assert_int_equal(f.r, a);
	}
	pool_done(p);
	conc_test_watchdog_off();
}

struct qs {
	conc_pool *p;
	uint32_t *v;
	size_t n;
};

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
	return x < y ? -1 : x > y;
}

static void qs_run(void *arg)
{
	struct qs *q = arg;
	uint32_t *v = q->v;
	size_t n = q->n;
	if (n <= 512) {
		qsort(v, n, sizeof *v, cmp_u32);
		return;
	}
	/* median of three, Hoare partition */
	uint32_t a = v[0], b = v[n / 2], c = v[n - 1];
	uint32_t piv = a < b ? (b < c ? b : (a < c ? c : a)) : (a < c ? a : (b < c ? c : b));
	size_t i = 0, j = n - 1;
	for (;;) {
		while (v[i] < piv)
			i++;
		while (v[j] > piv)
			j--;
		if (i >= j)
			break;
		uint32_t t = v[i];
		v[i] = v[j];
		v[j] = t;
		i++;
		j--;
	}
	struct qs l = {q->p, v, j + 1}, r = {q->p, v + j + 1, n - j - 1};
	conc_join(q->p, qs_run, &l, qs_run, &r);
}

static void test_parallel_join_quicksort(void **state)
{
	(void)state;
	conc_test_watchdog("join_quicksort", 180);
	size_t n = CONC_TEST_SANITIZED ? 200000 : 1000000;
	uint32_t *v = malloc(n * sizeof *v);
	assert_non_null(v);
	for (int pi = 0; pi < NPOOLS; pi++) {
		conc_pool *p = pool_at(pi);
		uint64_t seed = 0x1234567 + (uint64_t)pi, sum = 0, xr = 0;
		for (size_t i = 0; i < n; i++) {
			v[i] = (uint32_t)conc_test_rand(&seed) % (pi == 1 ? 1000u : 0xFFFFFFFFu);
			sum += v[i];
			xr ^= v[i] * 0x9E3779B97F4A7C15ull;
		}
		struct qs q = {p, v, n};
		qs_run(&q);
		uint64_t sum2 = 0, xr2 = 0;
		for (size_t i = 0; i < n; i++) {
			if (i && v[i - 1] > v[i])
				fail_msg("not sorted at %zu", i);
			sum2 += v[i];
			xr2 ^= v[i] * 0x9E3779B97F4A7C15ull;
		}
		assert_int_equal(sum, sum2);
		assert_int_equal(xr, xr2);
		pool_done(p);
	}
	free(v);
	conc_test_watchdog_off();
}

/* Every worker busy: an outside join must not wait for them (the caller
 * runs b itself). */

static void set_flag(void *arg)
{
	atomic_store((atomic_int *)arg, 1);
}

static void test_parallel_join_busy_pool(void **state)
{
	(void)state;
	conc_test_watchdog("join_busy_pool", 60);
	conc_pool *p = make_pool(1);
	conc_test_hold_one_worker(p);
	atomic_int fa = 0, fb = 0;
	assert_int_equal(conc_join(p, set_flag, &fa, set_flag, &fb), 0);
	assert_int_equal(atomic_load(&fa), 1);
	assert_int_equal(atomic_load(&fb), 1);
	/* A loop too. */
	atomic_store(&calls, 0);
	assert_int_equal(conc_parallel_for(p, 0, 1000, 1, count_body, NULL), 0);
	assert_int_equal(atomic_load(&calls), 1000);
	atomic_store(&conc_test_hold_gate, 1);
	pool_done(p);
	conc_test_watchdog_off();
}

/* b stolen and slow: the joiner runs out of tasks, sleeps, and is woken by
 * b's end; b's writes are visible after the join. */
struct slow {
	conc_pool *p;
	atomic_int b_started;
	pthread_t a_thread, b_thread;
	int data;
	unsigned give_up_s; /* a stops waiting for b's start after this */
	int a_gave_up;
};

static void slow_a(void *arg)
{
	struct slow *s = arg;
	s->a_thread = pthread_self();
	uint64_t until = (uint64_t)time(NULL) + s->give_up_s;
	while (!atomic_load(&s->b_started)) {
		if ((uint64_t)time(NULL) > until) {
			s->a_gave_up = 1; /* nobody stole b: it runs after a */
			return;
		}
		sched_yield();
	}
}

static void slow_b(void *arg)
{
	struct slow *s = arg;
	s->b_thread = pthread_self();
	atomic_store(&s->b_started, 1);
	struct timespec ts = {0, 20 * 1000 * 1000};
	nanosleep(&ts, NULL);
	s->data = 1234; /* plain write: the join orders it */
}

static void slow_task(void *arg)
{
	struct slow *s = arg;
	conc_join(s->p, slow_a, arg, slow_b, arg);
}

static void test_parallel_join_stolen_sleep(void **state)
{
	(void)state;
	conc_test_watchdog("join_stolen_sleep", 200);
	conc_pool *p = make_pool(2);
	/* From a worker, b goes on the worker's deque, and the wake that
	 * brings a thief is best effort (conc__pool_push_local): when it is
	 * missed, b runs after a on a's thread (a gives up waiting after
	 * 2-3 s).  So every rep must join correctly (b's write seen), and 3
	 * of at most 20 must have been stolen.  From outside, both go
	 * through the injector, whose wake is never lost (park.h): there b
	 * must be taken by a worker every time (a waits up to 20 s). */
	int stolen = 0;
	for (int rep = 0; rep < 20 && (stolen < 3 || rep < 3); rep++) {
		/* from a worker (b goes on its deque; the other worker steals) */
		struct slow s = {.p = p, .give_up_s = 2};
		assert_int_equal(conc_pool_execute(p, slow_task, &s), 0);
		assert_int_equal(conc_pool_wait(p), 0);
		assert_int_equal(s.data, 1234);
		if (!s.a_gave_up) {
			assert_false(pthread_equal(s.a_thread, s.b_thread));
			stolen++;
		}
		/* from outside */
		struct slow o = {.p = p, .give_up_s = 20};
		assert_int_equal(conc_join(p, slow_a, &o, slow_b, &o), 0);
		assert_int_equal(o.a_gave_up, 0);
		assert_int_equal(o.data, 1234);
	}
	assert_true(stolen >= 3);
	pool_done(p);
	conc_test_watchdog_off();
}

/* ---- heartbeat: lazy offers of nested joins (issue 20) ----------------------- */

/*
 * A nested join's b is offered only when somebody wants work.  The root
 * join (from outside) runs A; A's nested join F has wait_a, which keeps
 * making nested joins (each looks at the demand now and then) until b has
 * started: the idle workers are the demand, F is the oldest frame not
 * offered, so F's b is promoted and a worker runs it while a still runs.
 * b's write is seen after the join.  (a gives up after 20 s: then the
 * promotion never came, and the test fails.)
 */
struct lazy {
	conc_pool *p;
	atomic_int b_started;
	pthread_t a_thread, b_thread;
	int data;
	int a_gave_up;
	int inner;
};

static void lazy_inner(void *arg)
{
	(void)arg;
}

static void lazy_a(void *arg)
{
	struct lazy *s = arg;
	s->a_thread = pthread_self();
	uint64_t until = (uint64_t)time(NULL) + 20;
	while (!atomic_load(&s->b_started)) {
		if ((uint64_t)time(NULL) > until) {
			s->a_gave_up = 1;
			return;
		}
		assert_int_equal(conc_join(s->p, lazy_inner, NULL, lazy_inner, NULL), 0);
		s->inner++;
		if (s->inner % 64 == 0)
			sched_yield();
	}
}

static void lazy_b(void *arg)
{
	struct lazy *s = arg;
	s->b_thread = pthread_self();
	atomic_store(&s->b_started, 1);
	s->data = 4321; /* plain write: the join orders it */
}

static void lazy_root_a(void *arg)
{
	struct lazy *s = arg;
	assert_int_equal(conc_join(s->p, lazy_a, s, lazy_b, s), 0);
}

static void lazy_task(void *arg)
{
	struct lazy *s = arg;
	assert_int_equal(conc_join(s->p, lazy_root_a, s, lazy_inner, NULL), 0);
}

static void test_parallel_join_promoted_when_idle(void **state)
{
	(void)state;
	conc_test_watchdog(__func__, 120);
	conc_pool *p = make_pool(2);
	for (int rep = 0; rep < 3; rep++) {
		/* from outside: the idle workers want work */
		struct lazy o = {.p = p};
		assert_int_equal(conc_join(p, lazy_root_a, &o, lazy_inner, NULL), 0);
		assert_int_equal(o.a_gave_up, 0);
		assert_int_equal(o.data, 4321);
		assert_false(pthread_equal(o.a_thread, o.b_thread));
		/* from a worker: the other worker wants work */
		struct lazy w = {.p = p};
		assert_int_equal(conc_pool_execute(p, lazy_task, &w), 0);
		assert_int_equal(conc_pool_wait(p), 0);
		assert_int_equal(w.a_gave_up, 0);
		assert_int_equal(w.data, 4321);
		assert_false(pthread_equal(w.a_thread, w.b_thread));
	}
	pool_done(p);
	conc_test_watchdog_off();
}

#if defined(CONC_FAULT_HOOKS) && CONC_FAULT_HOOKS
/* Every nested b offered (the test switch): the offered-job paths of nested
 * joins - popped back right after a, stolen and waited for, from workers
 * and from outside (tickets) - on every call, fib and quicksort checked
 * on pools of 1 to 3 threads and the global one. */
static void test_parallel_join_every_b_offered(void **state)
{
	(void)state;
	conc_test_watchdog(__func__, 180);
	atomic_store(&conc__parallel_eager, 1);
	bool smoke = conc_test_scale() == 0; /* qemu */
	unsigned n = smoke ? 12 : CONC_TEST_SANITIZED ? 16 : 22;
	uint64_t want[2] = {0, 1};
	for (unsigned i = 2; i <= n; i++) {
		uint64_t t = want[0] + want[1];
		want[0] = want[1];
		want[1] = t;
	}
	size_t m = smoke ? 5000 : CONC_TEST_SANITIZED ? 20000 : 200000;
	uint32_t *v = malloc(m * sizeof *v);
	assert_non_null(v);
	for (int pi = 0; pi < NPOOLS; pi++) {
		conc_pool *p = pool_at(pi);
		conc_pool *pp = p ? p : conc_pool_global();
		struct fib f = {p, n, 0}, g = {p, n, 0};
		fib_run(&f); /* from outside */
		assert_int_equal(f.r, want[1]);
		assert_int_equal(conc_pool_execute(pp, fib_run, &g), 0); /* from a worker */
		assert_int_equal(conc_pool_wait(pp), 0);
		assert_int_equal(g.r, want[1]);
		uint64_t seed = 77 + (uint64_t)pi, sum = 0, sum2 = 0;
		for (size_t i = 0; i < m; i++) {
			v[i] = (uint32_t)conc_test_rand(&seed);
			sum += v[i];
		}
		struct qs q = {p, v, m};
		qs_run(&q);
		for (size_t i = 0; i < m; i++) {
			if (i && v[i - 1] > v[i])
				fail_msg("not sorted at %zu", i);
			sum2 += v[i];
		}
		assert_int_equal(sum, sum2);
		pool_done(p);
	}
	free(v);
	atomic_store(&conc__parallel_eager, 0);
	conc_test_watchdog_off();
}
#endif

#if defined(CONC_FAULT_HOOKS) && CONC_FAULT_HOOKS
/*
 * A lazily offered b never runs inside its own a on the same thread
 * (review of the heartbeat join, F1): a holds an error-checking mutex
 * across a nested loop whose right half is offered; a body of that loop
 * promotes (the test switch: a join there offers whatever it may, deque
 * or not).  The frame of the join around a is older than the loop's job:
 * offered now, it would sit above that job on the deque, and the loop's
 * join - popping what lies above its job - would run b on top of a, which
 * then finds its mutex held by its own thread (EDEADLK; a default mutex
 * hangs).  b must run after a, or on another thread: 0 nested, 0 EDEADLK.
 */
struct bnx {
	conc_pool *p;
	pthread_mutex_t m;
	pthread_t a_thread;
	atomic_int a_live, b_runs, b_nested, b_edeadlk;
};

static void bnx_noop(void *x)
{
	(void)x;
}

static int bnx_body(size_t lo, size_t hi, void *ctx)
{
	struct bnx *s = ctx;
	(void)hi;
	if (lo == 1) {
		atomic_store(&conc__parallel_eager, 1);
		conc_join(s->p, bnx_noop, NULL, bnx_noop, NULL);
		atomic_store(&conc__parallel_eager, 0);
	}
	return 0;
}

static void bnx_a(void *ctx)
{
	struct bnx *s = ctx;
	assert_int_equal(pthread_mutex_lock(&s->m), 0);
	s->a_thread = pthread_self();
	atomic_store(&s->a_live, 1);
	assert_int_equal(conc_parallel_for(s->p, 0, 4, 1, bnx_body, s), 0);
	atomic_store(&s->a_live, 0);
	pthread_mutex_unlock(&s->m);
}

static void bnx_b(void *ctx)
{
	struct bnx *s = ctx;
	atomic_fetch_add(&s->b_runs, 1);
	if (atomic_load(&s->a_live) && pthread_equal(pthread_self(), s->a_thread))
		atomic_fetch_add(&s->b_nested, 1);
	int r = pthread_mutex_lock(&s->m);
	if (r == EDEADLK)
		atomic_fetch_add(&s->b_edeadlk, 1);
	else if (r == 0)
		pthread_mutex_unlock(&s->m);
}

static void bnx_mid(void *ctx)
{
	struct bnx *s = ctx;
	assert_int_equal(conc_join(s->p, bnx_a, s, bnx_b, s), 0); /* nested: lazy */
}

static void bnx_task(void *ctx)
{
	struct bnx *s = ctx;
	assert_int_equal(conc_join(s->p, bnx_mid, s, bnx_noop, NULL), 0); /* the root */
}

static void test_parallel_join_b_not_inside_own_a(void **state)
{
	(void)state;
	conc_test_watchdog(__func__, 120);
	unsigned reps = conc_test_scale() == 0 ? 5 : 40;
	for (unsigned threads = 1; threads <= 2; threads++) {
		conc_pool *p = make_pool(threads);
		struct bnx s = {.p = p};
		pthread_mutexattr_t at;
		pthread_mutexattr_init(&at);
		pthread_mutexattr_settype(&at, PTHREAD_MUTEX_ERRORCHECK);
		pthread_mutex_init(&s.m, &at);
		pthread_mutexattr_destroy(&at);
		for (unsigned i = 0; i < reps; i++) {
			assert_int_equal(conc_pool_execute(p, bnx_task, &s), 0);
			assert_int_equal(conc_pool_wait(p), 0);
		}
		bnx_task(&s); /* from outside as well */
		assert_int_equal(atomic_load(&s.b_runs), (int)reps + 1);
		assert_int_equal(atomic_load(&s.b_nested), 0);
		assert_int_equal(atomic_load(&s.b_edeadlk), 0);
		pthread_mutex_destroy(&s.m);
		pool_done(p);
	}
	conc_test_watchdog_off();
}
#endif

/* Nested joins inside group tasks: each task roots a tree of its own
 * (fib by conc_join), run by workers and by the waiter; every result
 * right, on a pool of 2 and on the global pool. */
static int gfib_task(void *arg)
{
	fib_run(arg);
	return 0;
}

static void test_parallel_join_in_group_tasks(void **state)
{
	(void)state;
	conc_test_watchdog(__func__, 120);
	unsigned n = conc_test_scale() == 0 ? 10 : CONC_TEST_SANITIZED ? 14 : 18;
	uint64_t want[2] = {0, 1};
	for (unsigned i = 2; i <= n; i++) {
		uint64_t t = want[0] + want[1];
		want[0] = want[1];
		want[1] = t;
	}
	for (int k = 0; k < 2; k++) {
		conc_pool *p = k ? NULL : make_pool(2);
		conc_group *g;
		assert_int_equal(conc_group_create(&g, p), 0);
		struct fib t[8];
		for (int round = 0; round < 3; round++) {
			for (int i = 0; i < 8; i++) {
				t[i] = (struct fib){p, n, 0};
				assert_int_equal(conc_group_run(g, gfib_task, &t[i]), 0);
			}
			assert_int_equal(conc_group_wait(g), 0);
			for (int i = 0; i < 8; i++)
				assert_int_equal(t[i].r, want[1]);
		}
		assert_int_equal(conc_group_destroy(g), 0);
		pool_done(p);
	}
	conc_test_watchdog_off();
}

/* ---- loops: the first piece decides serial or split (issue 20) -------------- */

/* Test points tell the paths apart: fault-hook builds only (the fuzz build
 * has none). */
#if defined(CONC_FAULT_HOOKS) && CONC_FAULT_HOOKS

/* The accumulator checks the combine order: a leaf is [lo, hi); combine
 * needs left.hi == right.lo. */
struct span {
	size_t lo, hi;
	int bad;
};

static void span_zero(void *acc, void *ctx)
{
	(void)ctx;
	*(struct span *)acc = (struct span){0, 0, 0};
}

static int span_body(size_t lo, size_t hi, void *acc, void *ctx)
{
	struct span *s = acc;
	size_t slow = *(size_t *)ctx;
	if (lo == slow) { /* long enough that the loop is split */
		struct timespec ts = {0, 1000 * 1000};
		nanosleep(&ts, NULL);
	}
	s->bad |= s->hi != 0; /* identity ran just before */
	s->lo = lo;
	s->hi = hi;
	return 0;
}

static void span_add(void *acc, const void *other, void *ctx)
{
	(void)ctx;
	struct span *l = acc;
	const struct span *r = other;
	l->bad |= r->bad | (l->hi != r->lo);
	l->hi = r->hi;
}

static atomic_int loop_split_hits, loop_serial_hits;

static void loop_hook(const char *point)
{
	if (strcmp(point, "parallel.loop.split") == 0)
		atomic_fetch_add(&loop_split_hits, 1);
	else if (strcmp(point, "parallel.loop.serial") == 0)
		atomic_fetch_add(&loop_serial_hits, 1);
}

static void test_parallel_loop_first_piece(void **state)
{
	(void)state;
	conc_test_watchdog(__func__, 120);
	conc__test_set_hook(loop_hook);
	atomic_store(&loop_split_hits, 0);
	atomic_store(&loop_serial_hits, 0);
	conc_pool *p = make_pool(2);
	const size_t ranges[][3] = {{0, 64, 1}, {5, 1000, 7}, {0, 100000, 0}, {3, 3000, 1024}};
	for (size_t k = 0; k < sizeof ranges / sizeof ranges[0]; k++) {
		size_t begin = ranges[k][0], end = ranges[k][1], grain = ranges[k][2];
		for (int slow_first = 0; slow_first < 2; slow_first++) {
			int split0 = atomic_load(&loop_split_hits);
			int serial0 = atomic_load(&loop_serial_hits);
			size_t slow = slow_first ? begin : SIZE_MAX;
			struct span s = {0, 0, 1};
			assert_int_equal(conc_parallel_reduce(p, begin, end, grain, &s, sizeof s, span_zero,
							      span_body, span_add, &slow), 0);
			assert_int_equal(s.bad, 0);
			assert_int_equal(s.lo, begin);
			assert_int_equal(s.hi, end);
			/* a 1 ms first piece is never "too short to split" */
			if (slow_first)
				assert_true(atomic_load(&loop_split_hits) > split0);
			/* an explicit grain splits as asked, untimed: a cheap
			 * first piece says nothing of the rest (review F2) */
			if (grain)
				assert_int_equal(atomic_load(&loop_serial_hits), serial0);
			check_for(p, begin, end, grain, true);
		}
	}
	conc__test_set_hook(NULL);
	printf("loops: split %d, serial %d\n", atomic_load(&loop_split_hits),
	       atomic_load(&loop_serial_hits));
	pool_done(p);
	conc_test_watchdog_off();
}
#endif

/* ---- issue 15: bodies that return pinned ------------------------------------ */

static conc_epoch *leak_dom;

static void leak_pins(void)
{
	conc_epoch_pin(leak_dom);
	conc_epoch_pin(conc_epoch_global());
}

static int leak_for_body(size_t lo, size_t hi, void *ctx)
{
	(void)lo, (void)hi, (void)ctx;
	leak_pins();
	return 0;
}

static int leak_red_body(size_t lo, size_t hi, void *acc, void *ctx)
{
	(void)ctx;
	leak_pins();
	*(uint64_t *)acc = hi - lo;
	return 0;
}

static void leak_join_fn(void *ctx)
{
	(void)ctx;
	leak_pins();
}

/*
 * On the calling thread, pinned in `own` (depth 2) and the global domain
 * (depth 1) before the calls: the bodies' pins are undone by the time each
 * call returns, the caller's own stay, at their depth.  0, or bits saying
 * what was wrong (the caller's pins are dropped either way).
 */
static int leak_calls(conc_pool *p, conc_epoch *own)
{
	conc_epoch *g = conc_epoch_global();
	conc_epoch_pin(own);
	conc_epoch_pin(own);
	conc_epoch_pin(g);
	int bad = 0;
	if (conc_parallel_for(p, 0, 64, 1, leak_for_body, NULL) != 0)
		bad |= 1;
	bad |= conc_epoch_is_pinned(leak_dom) ? 2 : 0;
	uint64_t n = 0;
	if (conc_parallel_reduce(p, 0, 64, 1, &n, sizeof n, u64_zero, leak_red_body,
				 u64_add, NULL) != 0 || n != 64)
		bad |= 4;
	bad |= conc_epoch_is_pinned(leak_dom) ? 8 : 0;
	if (conc_join(p, leak_join_fn, NULL, leak_join_fn, NULL) != 0)
		bad |= 16;
	bad |= conc_epoch_is_pinned(leak_dom) ? 32 : 0;
	bad |= conc_epoch_is_pinned(own) ? 0 : 64;
	conc_epoch_unpin(own);
	bad |= conc_epoch_is_pinned(own) ? 0 : 128;
	conc_epoch_unpin(own);
	bad |= conc_epoch_is_pinned(own) ? 256 : 0;
	bad |= conc_epoch_is_pinned(g) ? 0 : 512;
	conc_epoch_unpin(g);
	bad |= conc_epoch_is_pinned(g) ? 1024 : 0;
	return bad;
}

struct leak_task {
	conc_pool *p;
	conc_epoch *own;
	atomic_int result; /* -1 until the task ran */
};

static void leak_task_fn(void *arg)
{
	struct leak_task *t = arg;
	atomic_store(&t->result, leak_calls(t->p, t->own));
}

static void nop_node(conc_epoch_node *n)
{
	(void)n;
}

/* A parallel_for/reduce body or a join function that returns pinned: on
 * the calling thread (an outside thread, and a pool worker running a task)
 * only the pins the body made are undone; on the workers that ran stolen
 * pieces nothing stays pinned, so barrier returns and destroy succeeds. */
static void test_parallel_body_left_pinned(void **state)
{
	(void)state;
	conc_test_watchdog(__func__, 120);
	conc_epoch *own;
	assert_int_equal(conc_epoch_create(&leak_dom), 0);
	assert_int_equal(conc_epoch_create(&own), 0);
	conc_pool *p;
	conc_pool_config cfg = {.threads = 2};
	assert_int_equal(conc_pool_create(&p, &cfg), 0);
	for (int rep = 0; rep < 20; rep++) {
		assert_int_equal(leak_calls(p, own), 0);
		struct leak_task t = {.p = p, .own = own};
		atomic_init(&t.result, -1);
		assert_int_equal(conc_pool_execute(p, leak_task_fn, &t), 0);
		assert_int_equal(conc_pool_wait(p), 0);
		assert_int_equal(atomic_load(&t.result), 0);
	}
	assert_false(conc_epoch_is_pinned(leak_dom));
	assert_false(conc_epoch_is_pinned(conc_epoch_global()));
	conc_epoch_node n;
	conc_epoch_retire(leak_dom, &n, nop_node);
	assert_int_equal(conc_epoch_barrier(leak_dom), 0);
	assert_int_equal(conc_epoch_barrier(conc_epoch_global()), 0);
	assert_int_equal(conc_epoch_destroy(leak_dom), 0);
	assert_int_equal(conc_epoch_destroy(own), 0);
	assert_int_equal(conc_pool_destroy(p), 0);
	conc_test_watchdog_off();
}


/* ---- issue 22, fault 5: outside calls leave nothing behind per call -------- */

static long rss_kb(void)
{
	long pages = 0, resident = 0;
	FILE *f = fopen("/proc/self/statm", "r");
	if (!f)
		return -1;
	if (fscanf(f, "%ld %ld", &pages, &resident) != 2)
		resident = -1;
	fclose(f);
	return resident < 0 ? -1 : resident * (sysconf(_SC_PAGESIZE) / 1024);
}

static atomic_int hold_gate, hold_in;

static void hold_task(void *arg)
{
	(void)arg;
	atomic_store(&hold_in, 1);
	while (!atomic_load(&hold_gate))
		sched_yield();
}

static int nop_body(size_t lo, size_t hi, void *ctx)
{
	(void)lo;
	(void)hi;
	(void)ctx;
	return 0;
}

/*
 * While every worker is busy, an outside thread calls conc_join (and
 * conc_parallel_for) many times: each call takes its job back itself.
 * Memory must follow the outstanding work (none, between calls), not the
 * number of calls: before the fix every call left an entry in the injector
 * and a malloc'd ticket (5,000,000 joins: queued 5,000,000, RSS +235 MB).
 */
static void test_parallel_outside_calls_memory_bounded(void **state)
{
	(void)state;
	conc_test_watchdog("outside_calls_memory_bounded", 300);
	conc_pool *p = make_pool(1);
	atomic_store(&hold_gate, 0);
	atomic_store(&hold_in, 0);
	assert_int_equal(conc_pool_execute(p, hold_task, NULL), 0);
	while (!atomic_load(&hold_in))
		sched_yield();
	unsigned long joins = conc_test_iters(2000000, 20);
	unsigned long loops = joins / 100;
	long rss0 = rss_kb();
	for (unsigned long i = 0; i < joins; i++)
		assert_int_equal(conc_join(p, nop, NULL, nop, NULL), 0);
	size_t queued_joins = conc_pool_queued(p);
	long rss1 = rss_kb();
	for (unsigned long i = 0; i < loops; i++)
		assert_int_equal(conc_parallel_for(p, 0, 1024, 1, nop_body, NULL), 0);
	size_t queued_loops = conc_pool_queued(p);
	long rss2 = rss_kb();
	printf("outside calls, workers busy: %lu joins: queued=%zu rss_growth=%ld KB; "
	       "%lu loops of 1024 pieces: queued=%zu rss_growth=%ld KB\n",
	       joins, queued_joins, rss1 - rss0, loops, queued_loops, rss2 - rss1);
	atomic_store(&hold_gate, 1);
	assert_int_equal(conc_pool_destroy(p), 0);
	/* bounded by the calls' nesting depth, not by their number */
	assert_true(queued_joins <= 64);
	assert_true(queued_loops <= 64);
	assert_true(rss0 < 0 || rss1 - rss0 <= 8192);
	assert_true(rss0 < 0 || rss2 - rss1 <= 8192);
	conc_test_watchdog_off();
}

/* ---- issue 22, fault 4: a helping waiter runs only its own subtree --------- */

#if defined(CONC_FAULT_HOOKS) && CONC_FAULT_HOOKS
#define ISO_TAG_A 3
#define ISO_TAG_B 4
static conc_pool *iso_a, *iso_b;
static _Thread_local int iso_side = -1; /* 0: A's worker, 1: B's */
static int iso_w_wait[2], iso_w_waited[2], iso_w_idle_a;
static atomic_int iso_p2_started, iso_p3_started, iso_t_queued, iso_t_nested, iso_t_ran, iso_t_ret;
static atomic_ulong iso_idle_base;

static void iso_start_a(unsigned i, void *ctx)
{
	(void)i;
	(void)ctx;
	iso_side = 0;
	conc_test_tag(ISO_TAG_A);
}

static void iso_start_b(unsigned i, void *ctx)
{
	(void)i;
	(void)ctx;
	iso_side = 1;
	conc_test_tag(ISO_TAG_B);
}

static int iso_p2(void *arg)
{
	(void)arg;
	return atomic_load(&iso_p2_started);
}

static int iso_p3(void *arg)
{
	(void)arg;
	return atomic_load(&iso_p3_started);
}

/* T is queued on A and A's worker has looked for work since (and passed
 * on it, or ran it). */
static int iso_t_ready(void *arg)
{
	(void)arg;
	return atomic_load(&iso_t_queued) &&
	       conc_test_watch_hits(iso_w_idle_a) > atomic_load(&iso_idle_base);
}

static int iso_a_waits(void *arg)
{
	(void)arg;
	return atomic_load(&iso_p3_started) &&
	       conc_test_watch_hits(iso_w_wait[0]) > conc_test_watch_hits(iso_w_waited[0]);
}

/* The loop [0,4) on A, from B's task: piece 2 on A's worker (the root's
 * offered half), piece 3 stolen from A's deque by B's worker, so that A's
 * worker waits in its join while T sits in A's queue.  Piece 0, which the
 * loop runs and times before it offers anything, takes 1 ms, so that the
 * loop is split (a shorter one would run whole on B's worker). */
static int iso_body(size_t lo, size_t hi, void *ctx)
{
	(void)hi;
	(void)ctx;
	if (lo == 0) { /* B's worker, timed: long enough to be split */
		struct timespec ts = {0, 1000 * 1000};
		nanosleep(&ts, NULL);
	} else if (lo == 1) { /* B's worker: let A's worker take the offered half */
		conc_test_points_wait(iso_p2, NULL, 30);
	} else if (lo == 2) { /* A's worker: until piece 3 was stolen */
		atomic_store(&iso_p2_started, 1);
		conc_test_points_signal();
		conc_test_points_wait(iso_p3, NULL, 30);
	} else if (lo == 3) { /* B's worker: until A's worker had its chance at T */
		atomic_store(&iso_p3_started, 1);
		conc_test_points_signal();
		conc_test_points_wait(iso_t_ready, NULL, 30);
	}
	return 0;
}

static void iso_loop_task(void *arg)
{
	(void)arg;
	conc_parallel_for(iso_a, 0, 4, 1, iso_body, NULL);
}

/* A task of A that waits for B: run on top of the loop's join (on either
 * pool's worker) it would wait for B's task, which waits for the loop. */
static void iso_t(void *arg)
{
	(void)arg;
	int s = iso_side;
	int nested = s >= 0 && conc_test_watch_hits(iso_w_wait[s]) > conc_test_watch_hits(iso_w_waited[s]);
	atomic_store(&iso_t_nested, nested);
	atomic_store(&iso_t_ret, nested ? -1 : conc_pool_wait(iso_b)); /* nested: would deadlock */
	atomic_store(&iso_t_ran, 1);
}

/*
 * Pools A and B, one worker each; B's task runs a loop on A; a task T of A
 * calls conc_pool_wait(B).  A's worker, waiting in the loop's join, must not
 * pick T up and run it on top of the loop piece (nor may B's worker, waiting
 * in the root's join): T would then wait for B's task, which waits for the
 * piece buried under T - a deadlock (or, on B's worker, a spurious EDEADLK).
 * Before the fix A's worker ran T nested in its wait.
 */
static void test_parallel_waiter_helps_only_its_subtree(void **state)
{
	(void)state;
	conc_test_watchdog("waiter_helps_only_its_subtree", 120);
	atomic_store(&iso_p2_started, 0);
	atomic_store(&iso_p3_started, 0);
	atomic_store(&iso_t_queued, 0);
	atomic_store(&iso_t_ran, 0);
	atomic_store(&iso_t_nested, 0);
	conc_pool_config ca = {.threads = 1, .on_start = iso_start_a};
	conc_pool_config cb = {.threads = 1, .on_start = iso_start_b};
	assert_int_equal(conc_pool_create(&iso_a, &ca), 0);
	assert_int_equal(conc_pool_create(&iso_b, &cb), 0);
	conc_test_points_start();
	iso_w_wait[0] = conc_test_watch("parallel.join.wait", ISO_TAG_A, 0);
	iso_w_waited[0] = conc_test_watch("parallel.join.waited", ISO_TAG_A, 0);
	iso_w_wait[1] = conc_test_watch("parallel.join.wait", ISO_TAG_B, 0);
	iso_w_waited[1] = conc_test_watch("parallel.join.waited", ISO_TAG_B, 0);
	iso_w_idle_a = conc_test_watch("parallel.join.idle", ISO_TAG_A, 0);
	assert_int_equal(conc_pool_execute(iso_b, iso_loop_task, NULL), 0);
	assert_true(conc_test_points_wait(iso_a_waits, NULL, 30));
	atomic_store(&iso_idle_base, conc_test_watch_hits(iso_w_idle_a));
	assert_int_equal(conc_pool_execute(iso_a, iso_t, NULL), 0);
	atomic_store(&iso_t_queued, 1);
	conc_test_points_signal();
	assert_int_equal(conc_pool_wait(iso_b), 0);
	assert_int_equal(conc_pool_wait(iso_a), 0);
	conc_test_points_stop();
	printf("isolation: T ran %s a join wait, conc_pool_wait(B) in T returned %d\n",
	       atomic_load(&iso_t_nested) ? "NESTED in" : "outside", atomic_load(&iso_t_ret));
	assert_int_equal(atomic_load(&iso_t_ran), 1);
	assert_int_equal(atomic_load(&iso_t_nested), 0);
	assert_int_equal(atomic_load(&iso_t_ret), 0);
	assert_int_equal(conc_pool_destroy(iso_a), 0);
	assert_int_equal(conc_pool_destroy(iso_b), 0);
	conc_test_watchdog_off();
}
#endif

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parallel_errors),
		cmocka_unit_test(test_parallel_empty_range),
		cmocka_unit_test(test_parallel_single_piece),
		cmocka_unit_test(test_parallel_for_pieces),
		cmocka_unit_test(test_parallel_for_near_size_max),
		cmocka_unit_test(test_parallel_for_cancel),
		cmocka_unit_test(test_parallel_reduce_u64),
		cmocka_unit_test(test_parallel_reduce_double_bitwise),
		cmocka_unit_test(test_parallel_reduce_large_acc),
		cmocka_unit_test(test_parallel_reduce_misaligned_result),
		cmocka_unit_test(test_parallel_reduce_enomem),
		cmocka_unit_test(test_parallel_nested_depth3),
		cmocka_unit_test(test_parallel_foreign_pool),
		cmocka_unit_test(test_parallel_join_fib),
		cmocka_unit_test(test_parallel_join_outside_stack),
		cmocka_unit_test(test_parallel_join_quicksort),
		cmocka_unit_test(test_parallel_join_busy_pool),
		cmocka_unit_test(test_parallel_join_stolen_sleep),
		cmocka_unit_test(test_parallel_join_promoted_when_idle),
#if defined(CONC_FAULT_HOOKS) && CONC_FAULT_HOOKS
		cmocka_unit_test(test_parallel_join_every_b_offered),
		cmocka_unit_test(test_parallel_join_b_not_inside_own_a),
#endif
		cmocka_unit_test(test_parallel_join_in_group_tasks),
#if defined(CONC_FAULT_HOOKS) && CONC_FAULT_HOOKS
		cmocka_unit_test(test_parallel_loop_first_piece),
#endif
		cmocka_unit_test(test_parallel_body_left_pinned),
		cmocka_unit_test(test_parallel_outside_calls_memory_bounded),
#if defined(CONC_FAULT_HOOKS) && CONC_FAULT_HOOKS
		cmocka_unit_test(test_parallel_waiter_helps_only_its_subtree),
#endif
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
