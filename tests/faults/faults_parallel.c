/*
 * faults_parallel.c - the faults suite (issue 8, tests/lib/faults.h): conc/parallel.h.
 * parallel_for, join and the reductions swept on a pool and on the
 * global pool (whose creation fails); nested loops with hand-offs
 * failing.
 */
#include <pthread.h>
#include <sched.h>
#include <stdlib.h>
#include <time.h>

#include "faults.h"

#include "queue/queue_internal.h"
#include "stack/stack_internal.h"
#include "pool/pool_internal.h"
#include "scope/scope_internal.h"

/* ---- parallel ---------------------------------------------------------------- */

#define PAR_N 512u
static atomic_int par_seen[PAR_N];
static conc_pool *par_pool;

static void par_reset(void)
{
	for (unsigned i = 0; i < PAR_N; i++)
		atomic_store(&par_seen[i], 0);
}

static bool par_each_once(void)
{
	for (unsigned i = 0; i < PAR_N; i++)
		if (atomic_load(&par_seen[i]) != 1)
			return false;
	return true;
}

static int par_body(size_t lo, size_t hi, void *ctx)
{
	(void)ctx;
	for (size_t i = lo; i < hi; i++)
		atomic_fetch_add(&par_seen[i], 1);
	return 0;
}

/* Failed hand-offs run inline: the loop always succeeds, every index once. */
static void run_parallel_for(struct sweep *sw)
{
	par_reset();
	conc__parallel_drop_tickets(); /* each run allocates its tickets */
	arm(sw);
	int err = conc_parallel_for(par_pool, 0, PAR_N, 4, par_body, NULL);
	disarm(sw);
	CHECK(sw, err == 0);
	CHECK(sw, par_each_once());
}

static atomic_int join_a, join_b;

static void join_fa(void *arg)
{
	(void)arg;
	atomic_fetch_add(&join_a, 1);
}

static void join_fb(void *arg)
{
	(void)arg;
	atomic_fetch_add(&join_b, 1);
}

static void run_join(struct sweep *sw)
{
	atomic_store(&join_a, 0);
	atomic_store(&join_b, 0);
	conc__parallel_drop_tickets(); /* each run allocates its tickets */
	arm(sw);
	int err = conc_join(par_pool, join_fa, NULL, join_fb, NULL);
	disarm(sw);
	CHECK(sw, err == 0);
	CHECK(sw, atomic_load(&join_a) == 1 && atomic_load(&join_b) == 1);
}

/* Accumulators above CONC_PARALLEL_STACK_ACC are allocated: a failure
 * there is ENOMEM (documented); a failed hand-off still runs inline. */
struct big_acc {
	uint64_t sum, pieces;
	unsigned char pad[CONC_PARALLEL_STACK_ACC];
};

struct small_acc {
	uint64_t sum, pieces;
};

static void red_identity(void *acc, void *ctx)
{
	(void)ctx;
	struct small_acc *a = acc;
	a->sum = a->pieces = 0;
}

static int red_body(size_t lo, size_t hi, void *acc, void *ctx)
{
	(void)ctx;
	struct small_acc *a = acc;
	for (size_t i = lo; i < hi; i++)
		a->sum += i;
	a->pieces++;
	return 0;
}

static void red_combine(void *acc, const void *other, void *ctx)
{
	(void)ctx;
	struct small_acc *a = acc;
	const struct small_acc *b = other;
	a->sum += b->sum;
	a->pieces += b->pieces;
}

static void run_reduce(struct sweep *sw, size_t size)
{
	struct big_acc r;
	memset(&r, 0xab, sizeof r);
	conc__parallel_drop_tickets(); /* each run allocates its tickets */
	arm(sw);
	int err = conc_parallel_reduce(par_pool, 0, PAR_N, 4, &r, size, red_identity,
				       red_body, red_combine, NULL);
	disarm(sw);
	bool acc_site = site_is(sw, "parallel.reduce_");
	CHECK(sw, err == (acc_site ? ENOMEM : 0));
	if (!err) {
		CHECK(sw, r.sum == (uint64_t)PAR_N * (PAR_N - 1) / 2);
		CHECK(sw, r.pieces == PAR_N / 4);
	}
	/* usable afterwards */
	memset(&r, 0, sizeof r);
	CHECK(sw, conc_parallel_reduce(par_pool, 0, PAR_N, 4, &r, size, red_identity,
				       red_body, red_combine, NULL) == 0);
	CHECK(sw, r.sum == (uint64_t)PAR_N * (PAR_N - 1) / 2);
}

static void run_reduce_small(struct sweep *sw)
{
	run_reduce(sw, sizeof(struct small_acc));
}

static void run_reduce_big(struct sweep *sw)
{
	run_reduce(sw, sizeof(struct big_acc));
}

/* Stolen halves of a big-accumulator reduce allocate their slots on the
 * thief (site parallel.reduce_slots): make the pieces slow enough that
 * the pool's workers steal.  Counts vary with timing: unreached runs are
 * reported, not passed. */
static int slow_red_body(size_t lo, size_t hi, void *acc, void *ctx)
{
	struct timespec ts = {0, 200000};
	nanosleep(&ts, NULL); /* work, not synchronisation */
	return red_body(lo, hi, acc, ctx);
}

static void run_reduce_stolen(struct sweep *sw)
{
	struct big_acc r;
	conc__parallel_drop_tickets(); /* each run allocates its tickets */
	arm(sw);
	int err = conc_parallel_reduce(par_pool, 0, 64, 1, &r, sizeof r, red_identity,
				       slow_red_body, red_combine, NULL);
	disarm(sw);
	CHECK(sw, err == (site_is(sw, "parallel.reduce_") ? ENOMEM : 0));
	if (!err)
		CHECK(sw, r.sum == 64u * 63 / 2 && r.pieces == 64);
}


static void test_faults_parallel(void **state)
{
	(void)state;
	conc_test_watchdog("faults_parallel", 180);
	conc_pool_config two = {.threads = 2};
	assert_int_equal(conc_pool_create(&par_pool, &two), 0);
	sweep("parallel_for", run_parallel_for);
	sweep("join", run_join);
	sweep("parallel_reduce", run_reduce_small);
	sweep("parallel_reduce_big", run_reduce_big);
	sweep("parallel_reduce_stolen", run_reduce_stolen);
	/* The stolen-half site needs a steal, which timing decides: retry
	 * (a few times at most) until it has been reached. */
	for (int tries = 0; tries < 10 && !site_reached("parallel.reduce_slots"); tries++)
		sweep("parallel_reduce_stolen(again)", run_reduce_stolen);
	assert_int_equal(conc_pool_destroy(par_pool), 0);
	conc_test_watchdog_off();
}

/*
 * p NULL: the global pool, created on first use.  While its creation
 * fails, the loop runs on the calling thread (documented) and a later call
 * tries again.  No calibration run is possible (the first success keeps the
 * pool for the process), so the sweep goes k = 1, 2, ... until the failed
 * call is no longer one of the creation's: threads first (its size is set
 * by CONC_NUM_THREADS, so the count is known), then allocations; the last
 * run creates the pool.
 */

static void run_global(struct sweep *sw)
{
	par_reset();
	conc__parallel_drop_tickets(); /* each run allocates its tickets */
	arm(sw);
	int err = conc_parallel_for(NULL, 0, PAR_N, 4, par_body, NULL);
	disarm(sw);
	CHECK(sw, err == 0);
	CHECK(sw, par_each_once());
}

static void test_faults_global_pool(void **state)
{
	(void)state;
	conc_test_watchdog("faults_global_pool", 120);
	struct sweep sw = {.api = "global_pool"};
	sw.kind = FAIL_THREAD;
	for (sw.k = 1; sw.k <= GLOBAL_T; sw.k++) {
		sw.bad_before = sw.bad;
		run_global(&sw);
		CHECK(&sw, site_is(&sw, "pool.thread"));
		total_failed += sw.site != NULL;
		sw.ok_thread += sw.site && sw.bad == sw.bad_before;
	}
	sw.n_thread = GLOBAL_T;
	sw.kind = FAIL_ALLOC;
	for (sw.k = 1;; sw.k++) {
		sw.bad_before = sw.bad;
		run_global(&sw);
		if (!sw.site || !(site_is(&sw, "pool.") || site_is(&sw, "deque.")))
			break; /* the creation succeeded: the pool exists now */
		total_failed++;
		sw.ok_alloc += sw.bad == sw.bad_before;
	}
	sw.n_alloc = sw.k - 1;
	sw.kind = CALIBRATE;
	CHECK(&sw, conc_pool_global() != NULL);
	CHECK(&sw, conc_pool_threads(conc_pool_global()) == GLOBAL_T);
	CHECK(&sw, sw.n_alloc >= 2);
	sweep_report(&sw);
	total_bad += sw.bad;
	assert_int_equal(sw.bad, 0);
	conc_test_watchdog_off();
}

/* Parallel loops nested in bodies, on a pool, with hand-offs failing. */
#define HPAR_N 4096u
static atomic_uchar hpar_seen[HPAR_N];

static int hpar_inner(size_t lo, size_t hi, void *ctx)
{
	(void)ctx;
	for (size_t i = lo; i < hi; i++)
		atomic_fetch_add(&hpar_seen[i], 1);
	return 0;
}

static int hpar_outer(size_t lo, size_t hi, void *ctx)
{
	return conc_parallel_for(ctx, lo, hi, 8, hpar_inner, NULL);
}

static void test_faults_hammer_parallel(void **state)
{
	(void)state;
	conc_test_watchdog("faults_hammer_parallel", 120);
	conc_pool *p;
	conc_pool_config two = {.threads = 2};
	assert_int_equal(conc_pool_create(&p, &two), 0);
	unsigned long rounds = conc_test_iters(1000, 10);
	long bad = 0, red_enomem = 0, red_ok = 0;
	conc__fault_reset();
	conc__fault_fail_rate(HAM_PPM, 0, 0xa11);
	for (unsigned long r = 0; r < rounds; r++) {
		for (unsigned i = 0; i < HPAR_N; i++)
			atomic_store(&hpar_seen[i], 0);
		bad += conc_parallel_for(p, 0, HPAR_N, 256, hpar_outer, p) != 0;
		for (unsigned i = 0; i < HPAR_N; i++)
			bad += atomic_load(&hpar_seen[i]) != 1;
		struct big_acc acc;
		int err = conc_parallel_reduce(p, 0, HPAR_N, 64, &acc, sizeof acc, red_identity,
					       red_body, red_combine, NULL);
		if (err == ENOMEM)
			red_enomem++;
		else if (err == 0 && acc.sum == (uint64_t)HPAR_N * (HPAR_N - 1) / 2)
			red_ok++;
		else
			bad++;
	}
	long a_calls = conc__fault_alloc_calls(), a_failed = conc__fault_alloc_failures();
	conc__fault_reset();
	hammer_failed += a_failed;
	assert_int_equal(conc_pool_destroy(p), 0);
	printf("reliability: faults hammer parallel | rounds=%lu allocs=%ld failed=%ld "
	       "reduce ok=%ld ENOMEM=%ld bad=%ld\n",
	       rounds, a_calls, a_failed, red_ok, red_enomem, bad);
	fflush(stdout);
	assert_int_equal(bad, 0);
	if (expect_failures(a_calls, HAM_PPM))
		assert_true(a_failed > 0);
}


int main(void)
{
	faults_begin("parallel");
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_faults_parallel),
		cmocka_unit_test(test_faults_global_pool),
		cmocka_unit_test(test_faults_hammer_parallel),
	};
	return faults_end(cmocka_run_group_tests(tests, NULL, NULL));
}
