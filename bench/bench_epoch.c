/*
 * bench_epoch.c - W6 and retire-and-reclaim: libconc's epoch core against
 * liburcu (urcu-memb, urcu-mb, call_rcu), Concurrency Kit (ck_epoch) and
 * crossbeam-epoch (Rust, peers/crossbeam: built offline from Debian's crate;
 * "missing" in the table where cargo or the crate is not there).
 *
 *   pin+unpin       each thread runs N read-side sections back to back;
 *                   ns per pair per thread (flat from 1 to 2 threads is the
 *                   goal: the fast path touches only the thread's own line).
 *   retire+reclaim  each thread allocates N objects and retires each one;
 *                   the run ends when every callback has run (verified by
 *                   count); ns per object, the malloc and free included.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>

#include <ck_epoch.h>

#include "conc/epoch.h"
#include "harness.h"
#include "peers/epoch_peers.h"

static unsigned long pairs_n, retire_n;

/* Run fn(n) on `threads` threads started together; returns the longest
 * per-thread time. */
typedef double (*loop_fn)(unsigned long n);

struct job {
	loop_fn fn;
	unsigned long n;
	pthread_barrier_t *start;
	double secs;
};

static void *job_main(void *arg)
{
	struct job *j = arg;
	pthread_barrier_wait(j->start);
	j->secs = j->fn(j->n);
	return NULL;
}

static double run_threads(loop_fn fn, unsigned long n, unsigned threads)
{
	pthread_t t[BENCH_MAX_THREADS];
	struct job jobs[BENCH_MAX_THREADS];
	pthread_barrier_t start;
	pthread_barrier_init(&start, NULL, threads);
	for (unsigned i = 0; i < threads; i++) {
		jobs[i] = (struct job){fn, n, &start, 0};
		pthread_create(&t[i], NULL, job_main, &jobs[i]);
	}
	double worst = 0;
	for (unsigned i = 0; i < threads; i++) {
		pthread_join(t[i], NULL);
		if (jobs[i].secs > worst)
			worst = jobs[i].secs;
	}
	pthread_barrier_destroy(&start);
	return worst;
}

/* ---- libconc ----------------------------------------------------------- */

static double conc_pairs(unsigned long n)
{
	conc_epoch *d = conc_epoch_global();
	conc_epoch_register(d);
	double t0 = bench_now();
	for (unsigned long i = 0; i < n; i++) {
		conc_epoch_pin(d);
		conc_epoch_unpin(d);
	}
	return bench_now() - t0;
}

static atomic_ulong conc_reclaimed;

struct cobj {
	conc_epoch_node node;
	unsigned long v;
};

static void cobj_free(conc_epoch_node *n)
{
	free((struct cobj *)n);
	atomic_fetch_add_explicit(&conc_reclaimed, 1, memory_order_relaxed);
}

static double conc_retire(unsigned long n)
{
	conc_epoch *d = conc_epoch_global();
	double t0 = bench_now();
	for (unsigned long i = 0; i < n; i++) {
		struct cobj *o = malloc(sizeof *o);
		o->v = i;
		conc_epoch_retire(d, &o->node, cobj_free);
	}
	return bench_now() - t0;
}

/* ---- Concurrency Kit ---------------------------------------------------- */

static ck_epoch_t ck_global;
static atomic_ulong ck_reclaimed;

static double ck_pairs(unsigned long n)
{
	ck_epoch_record_t *rec = ck_epoch_recycle(&ck_global, NULL);
	if (!rec) {
		rec = malloc(sizeof *rec);
		ck_epoch_register(&ck_global, rec, NULL);
	}
	double t0 = bench_now();
	for (unsigned long i = 0; i < n; i++) {
		ck_epoch_begin(rec, NULL);
		ck_epoch_end(rec, NULL);
	}
	double t1 = bench_now();
	ck_epoch_unregister(rec);
	return t1 - t0;
}

struct kobj {
	ck_epoch_entry_t entry;
	unsigned long v;
};

static void kobj_free(ck_epoch_entry_t *e)
{
	free((struct kobj *)e);
	atomic_fetch_add_explicit(&ck_reclaimed, 1, memory_order_relaxed);
}

static double ck_retire(unsigned long n)
{
	ck_epoch_record_t *rec = ck_epoch_recycle(&ck_global, NULL);
	if (!rec) {
		rec = malloc(sizeof *rec);
		ck_epoch_register(&ck_global, rec, NULL);
	}
	double t0 = bench_now();
	for (unsigned long i = 0; i < n; i++) {
		struct kobj *o = malloc(sizeof *o);
		o->v = i;
		ck_epoch_call(rec, &o->entry, kobj_free);
		if ((i & 63) == 63)
			ck_epoch_poll(rec); /* ck's documented amortised reclaim */
	}
	/* A ck record's pending callbacks are only reachable from it: drain
	 * here, inside the timed region, before giving the record back. */
	ck_epoch_barrier(rec);
	double t1 = bench_now();
	ck_epoch_unregister(rec);
	return t1 - t0;
}

/* ---- crossbeam-epoch (peers/crossbeam/src/lib.rs) ---------------------- */

#ifdef BENCH_HAVE_CROSSBEAM
struct cb_collector;
uint64_t cb_epoch_pin_unpin_loop(uint64_t n);
struct cb_collector *cb_epoch_collector_new(void);
void cb_epoch_retire_loop(const struct cb_collector *c, uint64_t n);
uint64_t cb_epoch_collector_drop(struct cb_collector *c);

static double cb_pairs(unsigned long n)
{
	return (double)cb_epoch_pin_unpin_loop(n) * 1e-9;
}

static struct cb_collector *cb_run; /* the collector of the run going on */

static double cb_retire(unsigned long n)
{
	cb_epoch_retire_loop(cb_run, n);
	return 0;
}
#endif

/* ---- rows ---------------------------------------------------------------- */

static bench_result pairs_row(loop_fn fn, unsigned threads)
{
	return (bench_result){run_threads(fn, pairs_n, threads), true};
}

static bench_result r_conc_pairs(void *a, unsigned t) { (void)a; return pairs_row(conc_pairs, t); }
static bench_result r_memb_pairs(void *a, unsigned t) { (void)a; return pairs_row(urcu_memb_pairs, t); }
static bench_result r_mb_pairs(void *a, unsigned t) { (void)a; return pairs_row(urcu_mb_pairs, t); }
static bench_result r_ck_pairs(void *a, unsigned t) { (void)a; return pairs_row(ck_pairs, t); }
#ifdef BENCH_HAVE_CROSSBEAM
static bench_result r_cb_pairs(void *a, unsigned t) { (void)a; return pairs_row(cb_pairs, t); }
#endif

static bench_result r_conc_retire(void *a, unsigned threads)
{
	(void)a;
	double t0 = bench_now();
	run_threads(conc_retire, retire_n, threads);
	conc_epoch_barrier(conc_epoch_global());
	double secs = bench_now() - t0;
	unsigned long got = atomic_exchange(&conc_reclaimed, 0);
	return (bench_result){secs, got == retire_n * threads};
}

static bench_result r_memb_retire(void *a, unsigned threads)
{
	(void)a;
	double t0 = bench_now();
	run_threads(urcu_memb_retire, retire_n, threads);
	unsigned long got = urcu_memb_reclaim_finish();
	double secs = bench_now() - t0;
	return (bench_result){secs, got == retire_n * threads};
}

static bench_result r_ck_retire(void *a, unsigned threads)
{
	(void)a;
	double t0 = bench_now();
	run_threads(ck_retire, retire_n, threads);
	double secs = bench_now() - t0;
	unsigned long got = atomic_exchange(&ck_reclaimed, 0);
	return (bench_result){secs, got == retire_n * threads};
}

#ifdef BENCH_HAVE_CROSSBEAM
static bench_result r_cb_retire(void *a, unsigned threads)
{
	(void)a;
	double t0 = bench_now();
	cb_run = cb_epoch_collector_new();
	run_threads(cb_retire, retire_n, threads);
	/* crossbeam has no barrier: dropping the run's collector (every
	 * thread's handle is gone) runs each callback still queued. */
	unsigned long got = (unsigned long)cb_epoch_collector_drop(cb_run);
	double secs = bench_now() - t0;
	return (bench_result){secs, got == retire_n * threads};
}
#define CB_PAIRS {"crossbeam-epoch", r_cb_pairs, NULL}
#define CB_RETIRE {"crossbeam defer", r_cb_retire, NULL}
#else
#define CB_PAIRS BENCH_MISSING("crossbeam-epoch", BENCH_CROSSBEAM_MISSING)
#define CB_RETIRE BENCH_MISSING("crossbeam defer", BENCH_CROSSBEAM_MISSING)
#endif

int main(int argc, char **argv)
{
	/* W6 is defined at 1 and 2 threads; --full sweeps further.  --quick:
	 * 5M pairs and 200,000 retires per thread (W6 is 100M pairs). */
	static const unsigned def_threads[] = {1, 2, 0};
	bench_cfg cfg;
	bench_init(&cfg, argc, argv, def_threads);
	pairs_n = cfg.quick ? 5000000ul : 100000000ul;
	retire_n = cfg.quick ? 200000ul : 2000000ul;
	ck_epoch_init(&ck_global);

	const bench_impl pairs[] = {
		{"libconc", r_conc_pairs, NULL},
		{"urcu-memb", r_memb_pairs, NULL},
		{"urcu-mb", r_mb_pairs, NULL},
		{"ck_epoch", r_ck_pairs, NULL},
		CB_PAIRS,
	};
	const bench_impl retire[] = {
		{"libconc", r_conc_retire, NULL},
		{"urcu call_rcu", r_memb_retire, NULL},
		{"ck_epoch_call", r_ck_retire, NULL},
		CB_RETIRE,
	};
	for (int i = 0; i < cfg.nthreads; i++)
		bench_row(&cfg, "W6 pin+unpin (ns/pair/thread)", cfg.threads[i],
			  (double)pairs_n, BENCH_NS_PER_OP, pairs, 5);
	for (int i = 0; i < cfg.nthreads; i++)
		bench_row(&cfg, "retire+reclaim (ns/object/thread)", cfg.threads[i],
			  (double)retire_n, BENCH_NS_PER_OP, retire, 4);
	return bench_finish(&cfg);
}
