/*
 * bench_parallel.c - fork-join and parallel loops (conc/parallel.h) against
 * a serial loop and OpenMP, in the same run.
 *
 *   W5 seed      sum of 2*e over e in [0, 1,000,000): conc_parallel_reduce
 *                (grain 0) vs the serial loop vs OpenMP `parallel for
 *                reduction(+:s)`.  Verified: 999,999,000,000.
 *   W5 100M      the same over [0, 100,000,000).
 *   W5 map       out[e] = f(e) over [0, 1,000,000), f = 150 rounds of
 *                x ^= x >> 29; x *= 0x9E3779B97F4A7C15; x += round
 *                (about 200 ns): conc_parallel_for vs serial vs OpenMP
 *                `parallel for` vs rayon (`par_iter_mut`) vs oneTBB
 *                (`parallel_for`, auto_partitioner), each peer computing
 *                f natively.  Verified: a checksum of out.
 *   empty 1000   an empty parallel loop over 1,000 elements (overhead).
 *   empty 1M     the same over 1,000,000 elements (the splitting's cost).
 *   fib(30)      (W9c) recursive fibonacci through conc_join, no cutoff,
 *                vs OpenMP tasks (`task` for one branch, the other inline,
 *                `taskwait`) vs rayon::join vs oneTBB parallel_invoke vs
 *                plain recursion (its ratio is 1 / libconc's multiple of
 *                the serial time, printed after the row).  Verified: 832,040.
 *
 * The W5 sums also run on rayon (`into_par_iter().map().sum()`, each
 * element through black_box) and oneTBB (`parallel_reduce`, the default
 * auto_partitioner, each element through the same empty asm); both peers
 * are made once per thread count, before timing, like the pool (the
 * rayon pool has `threads` workers and its caller blocks; the TBB arena
 * has `threads` slots, the caller taking one).  A peer that cannot be
 * built is listed as missing with the reason.
 *
 * Every element passes an empty asm (bench_keep), so no compiler folds a
 * loop into a closed form or vectorises one side only.  The pool and the
 * OpenMP team are started before timing.  One timed run makes many calls
 * and reports the median call; the harness then takes the median of the
 * runs.  The table's ratio column is time / libconc time: for the serial
 * row that is libconc's speedup, for OpenMP the ratio OpenMP/libconc
 * (> 1: libconc is faster).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "peers/cxx_peers.h"
#include "conc/parallel.h"
#include "conc/pool.h"

#ifdef _OPENMP
#include <omp.h>
#define IF_OMP(f) f
#else
#define IF_OMP(f) NULL
#endif

#define SEED_N 1000000ul
#define BIG_N 100000000ul
#define MAP_N 1000000ul
#define MAP_ROUNDS 150u
#define FIB_N 30u
#define FIB_WANT 832040u

static conc_pool *pool;
static unsigned pool_size;
static uint64_t *map_out;
static uint64_t map_check;
static int calls_seed, calls_big, calls_map, calls_empty, calls_empty_big, calls_fib;

#ifdef BENCH_HAVE_RAYON
static void *ry_pool;
#endif
#ifdef BENCH_HAVE_TBB
static void *tbb_arena;
#endif

static void use_pool(unsigned threads)
{
	if (pool && pool_size == threads)
		return;
#ifdef BENCH_HAVE_RAYON
	if (ry_pool)
		rayon_pool_free(ry_pool);
	ry_pool = rayon_pool_new(threads);
#endif
#ifdef BENCH_HAVE_TBB
	if (tbb_arena)
		tbb_arena_free(tbb_arena);
	tbb_arena = tbb_arena_new(threads);
#endif
	if (pool)
		conc_pool_destroy(pool);
	conc_pool_config cfg = {.threads = threads};
	if (conc_pool_create(&pool, &cfg) != 0) {
		fprintf(stderr, "bench_parallel: cannot create a pool\n");
		exit(1);
	}
	pool_size = threads;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

/* Time `calls` calls of one(arg, threads) and return the median call. */
typedef bool (*one_call)(unsigned threads, size_t n);

/* A function pointer passed through the harness's void *. */
struct box {
	one_call f;
};
#define FN(arg) (((const struct box *)(arg))->f)

static bench_result median_of(one_call f, unsigned threads, size_t n, int calls)
{
	double t[256];
	bool ok = true;
	if (calls > 256)
		calls = 256;
	for (int i = 0; i < calls; i++) {
		double t0 = bench_now();
		ok = f(threads, n) && ok;
		t[i] = bench_now() - t0;
	}
	qsort(t, (size_t)calls, sizeof t[0], cmp_double);
	return (bench_result){t[calls / 2], ok};
}

/* Many calls per timing (for sub-microsecond calls): the mean of a batch,
 * the median of the batches. */
static bench_result median_of_batches(one_call f, unsigned threads, size_t n, int batches,
				      int per_batch)
{
	double t[256];
	bool ok = true;
	if (batches > 256)
		batches = 256;
	for (int i = 0; i < batches; i++) {
		double t0 = bench_now();
		for (int k = 0; k < per_batch; k++)
			ok = f(threads, n) && ok;
		t[i] = (bench_now() - t0) / per_batch;
	}
	qsort(t, (size_t)batches, sizeof t[0], cmp_double);
	return (bench_result){t[batches / 2], ok};
}

/* ---- sums: sum of 2*e ------------------------------------------------------- */

static uint64_t sum_want(size_t n)
{
	return (uint64_t)n * (uint64_t)(n - 1); /* 2 * n(n-1)/2 */
}

static uint64_t sum_range(size_t lo, size_t hi, uint64_t s)
{
	for (size_t e = lo; e < hi; e++) {
		uint64_t x = 2 * (uint64_t)e;
		bench_keep(x);
		s += x;
	}
	return s;
}

static void sum_zero(void *acc, void *ctx)
{
	(void)ctx;
	*(uint64_t *)acc = 0;
}

static int sum_body(size_t lo, size_t hi, void *acc, void *ctx)
{
	(void)ctx;
	*(uint64_t *)acc = sum_range(lo, hi, *(uint64_t *)acc);
	return 0;
}

static void sum_add(void *acc, const void *other, void *ctx)
{
	(void)ctx;
	*(uint64_t *)acc += *(const uint64_t *)other;
}

static bool sum_libconc(unsigned threads, size_t n)
{
	(void)threads;
	uint64_t s;
	int err = conc_parallel_reduce(pool, 0, n, 0, &s, sizeof s, sum_zero, sum_body, sum_add, NULL);
	return err == 0 && s == sum_want(n);
}

static bool sum_serial(unsigned threads, size_t n)
{
	(void)threads;
	return sum_range(0, n, 0) == sum_want(n);
}

#ifdef _OPENMP
static bool sum_omp(unsigned threads, size_t n)
{
	uint64_t s = 0;
#pragma omp parallel for reduction(+ : s) num_threads(threads) schedule(static)
	for (size_t e = 0; e < n; e++) {
		uint64_t x = 2 * (uint64_t)e;
		bench_keep(x);
		s += x;
	}
	return s == sum_want(n);
}
#endif

#ifdef BENCH_HAVE_RAYON
static bool sum_rayon(unsigned threads, size_t n)
{
	(void)threads;
	return ry_pool && rayon_sum2e(ry_pool, n) == sum_want(n);
}
#define IF_RAYON(f) f
#else
#define IF_RAYON(f) NULL
#endif

#ifdef BENCH_HAVE_TBB
static bool sum_tbb(unsigned threads, size_t n)
{
	(void)threads;
	return tbb_sum2e(tbb_arena, n) == sum_want(n);
}
#define IF_TBB(f) f
#else
#define IF_TBB(f) NULL
#endif

static bench_result seed_run(void *arg, unsigned threads)
{
	return median_of(FN(arg), threads, SEED_N, calls_seed);
}

static bench_result big_run(void *arg, unsigned threads)
{
	return median_of(FN(arg), threads, BIG_N, calls_big);
}

/* ---- the compute-bound map ---------------------------------------------------- */

static inline uint64_t map_f(uint64_t x)
{
	for (unsigned r = 0; r < MAP_ROUNDS; r++) {
		x ^= x >> 29;
		x *= 0x9E3779B97F4A7C15ull;
		x += r;
	}
	bench_keep(x);
	return x;
}

static int map_body(size_t lo, size_t hi, void *ctx)
{
	uint64_t *out = ctx;
	for (size_t e = lo; e < hi; e++)
		out[e] = map_f(e);
	return 0;
}

static uint64_t map_sum(size_t n)
{
	uint64_t s = 0;
	for (size_t e = 0; e < n; e++)
		s += map_out[e] * (e | 1);
	return s;
}

static bool map_verify(size_t n)
{
	bool ok = map_sum(n) == map_check;
	memset(map_out, 0, n * sizeof *map_out);
	return ok;
}

static bool map_libconc(unsigned threads, size_t n)
{
	(void)threads;
	return conc_parallel_for(pool, 0, n, 0, map_body, map_out) == 0;
}

static bool map_serial(unsigned threads, size_t n)
{
	(void)threads;
	return map_body(0, n, map_out) == 0;
}

#ifdef _OPENMP
static bool map_omp(unsigned threads, size_t n)
{
#pragma omp parallel for num_threads(threads) schedule(static)
	for (size_t e = 0; e < n; e++)
		map_out[e] = map_f(e);
	return true;
}
#endif

#ifdef BENCH_HAVE_RAYON
static bool map_rayon(unsigned threads, size_t n)
{
	(void)threads;
	if (!ry_pool)
		return false;
	rayon_map(ry_pool, map_out, n);
	return true;
}
#endif

#ifdef BENCH_HAVE_TBB
static bool map_tbb(unsigned threads, size_t n)
{
	(void)threads;
	tbb_map(tbb_arena, map_out, n);
	return true;
}
#endif

static bench_result map_run(void *arg, unsigned threads)
{
	double t[64];
	bool ok = true;
	int calls = calls_map < 64 ? calls_map : 64;
	for (int i = 0; i < calls; i++) {
		double t0 = bench_now();
		ok = (FN(arg))(threads, MAP_N) && ok;
		t[i] = bench_now() - t0;
		ok = map_verify(MAP_N) && ok; /* outside the timing */
	}
	qsort(t, (size_t)calls, sizeof t[0], cmp_double);
	return (bench_result){t[calls / 2], ok};
}

/* ---- empty loops ----------------------------------------------------------------- */

/* Empty per element, like the other two loops. */
static int empty_body(size_t lo, size_t hi, void *ctx)
{
	(void)ctx;
	for (size_t e = lo; e < hi; e++)
		bench_keep(e);
	return 0;
}

static bool empty_libconc(unsigned threads, size_t n)
{
	(void)threads;
	return conc_parallel_for(pool, 0, n, 0, empty_body, NULL) == 0;
}

static bool empty_serial(unsigned threads, size_t n)
{
	(void)threads;
	for (size_t e = 0; e < n; e++)
		bench_keep(e);
	return true;
}

#ifdef _OPENMP
static bool empty_omp(unsigned threads, size_t n)
{
#pragma omp parallel for num_threads(threads) schedule(static)
	for (size_t e = 0; e < n; e++) {
		size_t x = e;
		bench_keep(x);
	}
	return true;
}
#endif

static bench_result empty_run(void *arg, unsigned threads)
{
	return median_of_batches(FN(arg), threads, 1000, 31, calls_empty);
}

static bench_result empty_big_run(void *arg, unsigned threads)
{
	return median_of(FN(arg), threads, SEED_N, calls_empty_big);
}

/* ---- fib(30) ------------------------------------------------------------------------- */

struct fib {
	unsigned n;
	uint64_t r;
};

static void fib_join(void *arg)
{
	struct fib *f = arg;
	if (f->n < 2) {
		f->r = f->n;
		return;
	}
	struct fib a = {f->n - 1, 0}, b = {f->n - 2, 0};
	conc_join(pool, fib_join, &a, fib_join, &b);
	f->r = a.r + b.r;
}

static uint64_t fib_plain(unsigned n)
{
	if (n < 2)
		return n;
	uint64_t a = fib_plain(n - 1);
	bench_keep(a);
	return a + fib_plain(n - 2);
}

static bool fib_libconc(unsigned threads, size_t n)
{
	(void)threads;
	struct fib f = {(unsigned)n, 0};
	fib_join(&f);
	return f.r == FIB_WANT;
}

static bool fib_serial(unsigned threads, size_t n)
{
	(void)threads;
	return fib_plain((unsigned)n) == FIB_WANT;
}

#ifdef _OPENMP
static uint64_t fib_task(unsigned n)
{
	if (n < 2)
		return n;
	uint64_t a, b;
#pragma omp task shared(a)
	a = fib_task(n - 1);
	b = fib_task(n - 2);
#pragma omp taskwait
	return a + b;
}

static bool fib_omp(unsigned threads, size_t n)
{
	uint64_t r = 0;
#pragma omp parallel num_threads(threads)
#pragma omp single
	r = fib_task((unsigned)n);
	return r == FIB_WANT;
}
#endif

#ifdef BENCH_HAVE_RAYON
static bool fib_rayon(unsigned threads, size_t n)
{
	(void)threads;
	return ry_pool && rayon_fib(ry_pool, (unsigned)n) == FIB_WANT;
}
#endif

#ifdef BENCH_HAVE_TBB
static bool fib_tbb(unsigned threads, size_t n)
{
	(void)threads;
	return tbb_fib(tbb_arena, (unsigned)n) == FIB_WANT;
}
#endif

static bench_result fib_run(void *arg, unsigned threads)
{
	return median_of(FN(arg), threads, FIB_N, calls_fib);
}

/* ---- main ------------------------------------------------------------------------------- */

/* ry / tb: the rayon and oneTBB versions of the workload, or NULL when it
 * has none (then the column is left out; a peer that could not be built is
 * listed as missing in the rows that have one). */
static void row(bench_cfg *cfg, const char *name, unsigned threads, double ops, bench_unit unit,
		bench_result (*run)(void *, unsigned), one_call lib, one_call ser, one_call omp,
		bool peers, one_call ry, one_call tb)
{
	if (!bench_wanted(cfg, name))
		return;
	use_pool(threads);
#ifdef _OPENMP
	{
		/* start the team */
		int x = 0;
#pragma omp parallel num_threads(threads)
		bench_keep(x);
	}
#endif
	struct box box[5] = {{lib}, {ser}, {omp}, {ry}, {tb}};
	bench_impl impls[5];
	int n = 0;
	impls[n++] = (bench_impl){"libconc", run, &box[0]};
	impls[n++] = (bench_impl){"serial loop", run, &box[1]};
	if (omp)
		impls[n++] = (bench_impl){"OpenMP", run, &box[2]};
	if (peers) {
#ifdef BENCH_HAVE_RAYON
		impls[n++] = (bench_impl){"rayon", run, &box[3]};
#else
		impls[n++] = (bench_impl)BENCH_MISSING("rayon", BENCH_RAYON_MISSING);
#endif
#ifdef BENCH_HAVE_TBB
		impls[n++] = (bench_impl){"oneTBB", run, &box[4]};
#else
		impls[n++] = (bench_impl)BENCH_MISSING("oneTBB", BENCH_TBB_MISSING);
#endif
	}
	(void)ry;
	(void)tb;
	bench_row(cfg, name, threads, ops, unit, impls, n);
}

int main(int argc, char **argv)
{
	const unsigned def_threads[] = {conc_cpu_count(), 0};
	bench_cfg cfg;
	bench_init(&cfg, argc, argv, def_threads);
	calls_seed = cfg.quick ? 101 : 201;
	calls_big = cfg.quick ? 3 : 7;
	calls_map = cfg.quick ? 3 : 7;
	calls_empty = cfg.quick ? 2000 : 10000;
	calls_empty_big = cfg.quick ? 51 : 101;
	calls_fib = cfg.quick ? 3 : 5;

	map_out = calloc(MAP_N, sizeof *map_out);
	if (!map_out)
		return 1;
	map_serial(1, MAP_N);
	map_check = map_sum(MAP_N);
	memset(map_out, 0, MAP_N * sizeof *map_out);

	for (int t = 0; t < cfg.nthreads; t++) {
		unsigned th = cfg.threads[t] ? cfg.threads[t] : conc_cpu_count();
		row(&cfg, "W5 seed: sum 2e, 0..1M", th, (double)SEED_N, BENCH_MS, seed_run,
		    sum_libconc, sum_serial, IF_OMP(sum_omp), true, IF_RAYON(sum_rayon),
		    IF_TBB(sum_tbb));
		row(&cfg, "W5 sum 2e, 0..100M", th, (double)BIG_N, BENCH_MS, big_run, sum_libconc,
		    sum_serial, IF_OMP(sum_omp), true, IF_RAYON(sum_rayon), IF_TBB(sum_tbb));
		row(&cfg, "W5 map ~200ns/elem, 1M", th, (double)MAP_N, BENCH_MS, map_run,
		    map_libconc, map_serial, IF_OMP(map_omp), true, IF_RAYON(map_rayon),
		    IF_TBB(map_tbb));
		row(&cfg, "empty parallel_for, 1000", th, 1, BENCH_NS_PER_OP, empty_run,
		    empty_libconc, empty_serial, IF_OMP(empty_omp), false, NULL, NULL);
		row(&cfg, "empty parallel_for, 1M", th, 1, BENCH_NS_PER_OP, empty_big_run,
		    empty_libconc, empty_serial, IF_OMP(empty_omp), false, NULL, NULL);
		row(&cfg, "W9c fib(30): conc_join, no cutoff", th, 1, BENCH_MS, fib_run, fib_libconc,
		    fib_serial, IF_OMP(fib_omp), true, IF_RAYON(fib_rayon), IF_TBB(fib_tbb));
	}
	if (pool)
		conc_pool_destroy(pool);
#ifdef BENCH_HAVE_RAYON
	if (ry_pool)
		rayon_pool_free(ry_pool);
#endif
#ifdef BENCH_HAVE_TBB
	if (tbb_arena)
		tbb_arena_free(tbb_arena);
#endif
	free(map_out);
	return bench_finish(&cfg);
}
