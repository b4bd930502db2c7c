/*
 * bench_scope.c - scoped threads (W3) against raw pthread_create/join.
 *
 *   W3 seed        one scoped thread per n in 0..999 computing
 *                  n*n + n*5 + 250; the body joins all and sums
 *                  (= 335,581,000).  Raw: 1000 pthread_create, then 1000
 *                  pthread_join.
 *   W3 batches     100,000 spawns in batches of 100: each batch is one
 *                  conc_scope_run that spawns 100 and joins them.  Raw:
 *                  100 pthread_create + 100 pthread_join per batch.
 *
 * libconc's thread cache is warm after the harness's warm-up run, as it is
 * in any program that spawns more than once a second; the first cold run
 * creates about as many threads as raw pthreads would.
 */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>

#include "conc/scope.h"
#include "harness.h"

#define SEED_N 1000u
#define SEED_SUM 335581000ull
#define BATCH 100u

static unsigned long batches;

static uint64_t seed_value(uintptr_t n)
{
	return n * n + n * 5 + 250;
}

static uint64_t batch_sum(unsigned long nbatches)
{
	uint64_t one = 0;
	for (uintptr_t n = 0; n < BATCH; n++)
		one += seed_value(n);
	return one * nbatches;
}

/* ---- libconc ------------------------------------------------------------ */

static void *scoped_fn(conc_scope *s, void *arg)
{
	(void)s;
	return (void *)(uintptr_t)seed_value((uintptr_t)arg);
}

struct run_ctx {
	unsigned n;
	uint64_t sum;
	int err;
};

static void spawn_join_body(conc_scope *s, void *ctx)
{
	struct run_ctx *c = ctx;
	conc_thread *h[SEED_N];
	for (uintptr_t n = 0; n < c->n; n++)
		if (conc_scope_spawn(s, scoped_fn, (void *)n, &h[n]))
			c->err = 1;
	for (unsigned n = 0; n < c->n; n++) {
		void *r;
		if (conc_thread_join(h[n], &r))
			c->err = 1;
		c->sum += (uintptr_t)r;
	}
}

static bench_result seed_libconc(void *arg, unsigned threads)
{
	(void)arg;
	(void)threads;
	struct run_ctx c = {SEED_N, 0, 0};
	double t0 = bench_now();
	int e = conc_scope_run(spawn_join_body, &c);
	double t1 = bench_now();
	return (bench_result){t1 - t0, !e && !c.err && c.sum == SEED_SUM};
}

static bench_result batches_libconc(void *arg, unsigned threads)
{
	(void)arg;
	(void)threads;
	struct run_ctx c = {BATCH, 0, 0};
	int e = 0;
	double t0 = bench_now();
	for (unsigned long b = 0; b < batches; b++)
		e |= conc_scope_run(spawn_join_body, &c);
	double t1 = bench_now();
	return (bench_result){t1 - t0, !e && !c.err && c.sum == batch_sum(batches)};
}

/* ---- raw pthreads ----------------------------------------------------------- */

static void *raw_fn(void *arg)
{
	return (void *)(uintptr_t)seed_value((uintptr_t)arg);
}

static int raw_spawn_join(unsigned n, uint64_t *sum)
{
	pthread_t t[SEED_N];
	for (uintptr_t i = 0; i < n; i++)
		if (pthread_create(&t[i], NULL, raw_fn, (void *)i))
			return 1;
	for (unsigned i = 0; i < n; i++) {
		void *r;
		pthread_join(t[i], &r);
		*sum += (uintptr_t)r;
	}
	return 0;
}

static bench_result seed_raw(void *arg, unsigned threads)
{
	(void)arg;
	(void)threads;
	uint64_t sum = 0;
	double t0 = bench_now();
	int e = raw_spawn_join(SEED_N, &sum);
	double t1 = bench_now();
	return (bench_result){t1 - t0, !e && sum == SEED_SUM};
}

static bench_result batches_raw(void *arg, unsigned threads)
{
	(void)arg;
	(void)threads;
	uint64_t sum = 0;
	int e = 0;
	double t0 = bench_now();
	for (unsigned long b = 0; b < batches; b++)
		e |= raw_spawn_join(BATCH, &sum);
	double t1 = bench_now();
	return (bench_result){t1 - t0, !e && sum == batch_sum(batches)};
}

int main(int argc, char **argv)
{
	static const unsigned def_threads[] = {1, 0};
	bench_cfg cfg;
	bench_init(&cfg, argc, argv, def_threads);
	/* --quick: 20,000 spawns in the batch row (100,000 otherwise) */
	batches = (cfg.quick ? 20000 : 100000) / BATCH;

	if (bench_wanted(&cfg, "W3 seed")) {
		const bench_impl impls[] = {
			{"libconc scope", seed_libconc, NULL},
			{"raw pthread_create/join", seed_raw, NULL},
		};
		bench_row(&cfg, "W3 seed: 1000 scoped threads, join+sum", 1, SEED_N,
			  BENCH_MS, impls, 2);
	}
	if (bench_wanted(&cfg, "W3 batches")) {
		const bench_impl impls[] = {
			{"libconc scope", batches_libconc, NULL},
			{"raw pthread_create/join", batches_raw, NULL},
		};
		bench_row(&cfg, cfg.quick ? "W3 batches: 20,000 spawns, 100 per scope"
					  : "W3 batches: 100,000 spawns, 100 per scope", 1,
			  (double)batches * BATCH, BENCH_MS, impls, 2);
	}
	return bench_finish(&cfg);
}
