/*
 * faults_pool.c - the faults suite (issue 8, tests/lib/faults.h): conc/pool.h.
 * Create, resize, execute (from outside and from tasks), wait and
 * destroy swept; outside executors, subtasks and resizes with random
 * failures.
 */
#include <pthread.h>
#include <sched.h>
#include <stdlib.h>
#include <time.h>

#include "faults.h"

#include "queue/queue_internal.h"
#include "stack/stack_internal.h"

#include "pool/pool_internal.h"

/* ---- pool ------------------------------------------------------------------ */

#define POOL_T 3

static const conc_pool_config hooked = {
	.threads = POOL_T, .on_start = conc_test_count_start, .on_stop = conc_test_count_stop};

static void pool_reset_counts(void)
{
	atomic_store(&conc_test_counted.starts, 0);
	atomic_store(&conc_test_counted.stops, 0);
	atomic_store(&conc_test_counted.ran, 0);
}

/* The pool works: a task runs; then it is destroyed, every hook paired. */
static void check_pool_works_and_destroy(struct sweep *sw, conc_pool *p, bool hooks)
{
	long r0 = atomic_load(&conc_test_counted.ran);
	CHECK(sw, conc_pool_execute(p, conc_test_count_task, NULL) == 0);
	CHECK(sw, conc_pool_wait(p) == 0);
	CHECK(sw, atomic_load(&conc_test_counted.ran) == r0 + 1);
	unsigned n = conc_pool_threads(p);
	int s0 = atomic_load(&conc_test_counted.starts);
	CHECK(sw, conc_pool_destroy(p) == 0);
	CHECK(sw, atomic_load(&conc_test_counted.stops) == s0);
	CHECK(sw, !hooks || (unsigned)s0 >= n);
}

static void run_pool_create(struct sweep *sw)
{
	pool_reset_counts();
	unsigned t0 = conc_test_threads_now();
	conc_pool *p = SENTINEL;
	arm(sw);
	int err = conc_pool_create(&p, &hooked);
	disarm(sw);
	CHECK(sw, err == want_err(sw));
	if (err) {
		/* every started thread joined without running a hook */
		CHECK(sw, p == SENTINEL);
		CHECK(sw, atomic_load(&conc_test_counted.starts) == 0);
		CHECK(sw, atomic_load(&conc_test_counted.stops) == 0);
		CHECK(sw, conc_test_threads_at_most(t0));
		CHECK(sw, conc_pool_create(&p, &hooked) == 0); /* works again */
	}
	CHECK(sw, atomic_load(&conc_test_counted.starts) == POOL_T);
	CHECK(sw, conc_pool_threads(p) == POOL_T);
	check_pool_works_and_destroy(sw, p, true);
	CHECK(sw, conc_test_threads_at_most(t0));
}

/* Grow a pool of one to POOL_T; a failure leaves it at one. */
static void run_pool_resize(struct sweep *sw)
{
	pool_reset_counts();
	conc_pool_config one = hooked;
	one.threads = 1;
	conc_pool *p;
	CHECK(sw, conc_pool_create(&p, &one) == 0);
	unsigned t0 = conc_test_threads_now();
	arm(sw);
	int err = conc_pool_resize(p, POOL_T);
	disarm(sw);
	CHECK(sw, err == want_err(sw));
	if (err) {
		CHECK(sw, conc_pool_threads(p) == 1);
		CHECK(sw, atomic_load(&conc_test_counted.starts) == 1); /* no hook ran */
		CHECK(sw, atomic_load(&conc_test_counted.stops) == 0);
		CHECK(sw, conc_test_threads_at_most(t0));
		CHECK(sw, conc_pool_execute(p, conc_test_count_task, NULL) == 0);
		CHECK(sw, conc_pool_wait(p) == 0);
		CHECK(sw, atomic_load(&conc_test_counted.ran) == 1);
		CHECK(sw, conc_pool_resize(p, POOL_T) == 0); /* works again */
	}
	CHECK(sw, conc_pool_threads(p) == POOL_T);
	CHECK(sw, atomic_load(&conc_test_counted.starts) == POOL_T);
	check_pool_works_and_destroy(sw, p, true);
}

/*
 * An outside execute that needs a new injector block.  The pool's only
 * worker is held in a gate task, so nothing is taken from the injector;
 * `fill` executes (found once, by watching the allocation count) leave
 * exactly one free slot before the block boundary.
 */
static long exec_fill = -1;
static conc_test_gate pool_gate;

static void gate_task(void *arg)
{
	conc_test_gate_wait(arg);
}

static conc_pool *held_pool(struct sweep *sw)
{
	conc_pool_config one = {.threads = 1};
	conc_pool *p;
	CHECK(sw, conc_pool_create(&p, &one) == 0);
	conc_test_gate_init(&pool_gate);
	CHECK(sw, conc_pool_execute(p, gate_task, &pool_gate) == 0);
	conc_test_gate_await_waiters(&pool_gate, 1);
	return p;
}

static void release_held_pool(struct sweep *sw, conc_pool *p)
{
	conc_test_gate_open(&pool_gate);
	CHECK(sw, conc_pool_wait(p) == 0);
	conc_test_gate_destroy(&pool_gate);
}

static void find_exec_fill(void)
{
	struct sweep sw = {.api = "pool_execute(fill)"};
	conc_pool *p = held_pool(&sw);
	atomic_store(&conc_test_counted.ran, 0);
	for (long i = 0; i < 100000 && exec_fill < 0; i++) {
		conc__fault_reset();
		assert_int_equal(conc_pool_execute(p, conc_test_count_task, NULL), 0);
		if (conc__fault_alloc_calls() > 0)
			exec_fill = i;
	}
	conc__fault_reset();
	release_held_pool(&sw, p);
	assert_int_equal(conc_pool_destroy(p), 0);
	assert_int_equal(sw.bad, 0);
	assert_true(exec_fill > 0);
}

static void run_pool_execute(struct sweep *sw)
{
	pool_reset_counts();
	conc_pool *p = held_pool(sw);
	for (long i = 0; i < exec_fill; i++)
		CHECK(sw, conc_pool_execute(p, conc_test_count_task, NULL) == 0);
	arm(sw);
	int err = conc_pool_execute(p, conc_test_count_task, NULL);
	disarm(sw);
	CHECK(sw, err == want_err(sw));
	if (sw->kind == CALIBRATE)
		CHECK(sw, sw->n_alloc >= 1);
	release_held_pool(sw, p);
	/* the failed task never runs; every other one runs once */
	CHECK(sw, atomic_load(&conc_test_counted.ran) == exec_fill + (err ? 0 : 1));
	check_pool_works_and_destroy(sw, p, false);
}

/*
 * Executes from inside a task go on the worker's deque; past its capacity
 * it grows (site deque.buf), and when it cannot, the task goes to the
 * injector instead (a fallback: the execute still succeeds).  One worker,
 * so that nobody steals and the growth happens where counted.
 */
#define LOCAL_N 600

static struct {
	int err[LOCAL_N];
	conc_pool *p;
} local;

static void spawner_task(void *arg)
{
	(void)arg;
	for (int i = 0; i < LOCAL_N; i++)
		local.err[i] = conc_pool_execute(local.p, conc_test_count_task, NULL);
}

static void run_pool_execute_local(struct sweep *sw)
{
	pool_reset_counts();
	conc_pool_config one = {.threads = 1};
	CHECK(sw, conc_pool_create(&local.p, &one) == 0);
	arm(sw);
	int err = conc_pool_execute(local.p, spawner_task, NULL);
	int werr = conc_pool_wait(local.p);
	disarm(sw);
	CHECK(sw, err == 0 && werr == 0);
	if (sw->kind == CALIBRATE)
		CHECK(sw, sw->n_alloc >= 1);
	int bad = 0;
	for (int i = 0; i < LOCAL_N; i++)
		bad += local.err[i] != 0;
	CHECK(sw, bad == 0);                      /* the fallback took them */
	CHECK(sw, atomic_load(&conc_test_counted.ran) == LOCAL_N); /* each ran once */
	check_pool_works_and_destroy(sw, local.p, false);
}

/*
 * Both ways out failing: every allocation fails while a task executes past
 * its deque's capacity, so neither can the deque grow nor, at the next
 * injector block boundary, the injector take the task.  Those executes
 * return ENOMEM; every task whose execute returned 0 runs once, the others
 * never, and wait still returns (the pool's task count stays exact).
 */
static atomic_int local_ran[LOCAL_N];

static void local_mark(void *arg)
{
	atomic_fetch_add(&local_ran[(uintptr_t)arg], 1);
}

static void spawner_marks(void *arg)
{
	(void)arg;
	for (uintptr_t i = 0; i < LOCAL_N; i++)
		local.err[i] = conc_pool_execute(local.p, local_mark, (void *)i);
}

static void test_faults_pool_local_no_memory(void **state)
{
	(void)state;
	conc_test_watchdog("faults_pool_local_no_memory", 60);
	conc_pool_config one = {.threads = 1};
	assert_int_equal(conc_pool_create(&local.p, &one), 0);
	for (unsigned i = 0; i < LOCAL_N; i++)
		atomic_store(&local_ran[i], 0);
	conc__fault_reset();
	conc__fault_fail_rate(1000000, 0, 1); /* every allocation fails */
	assert_int_equal(conc_pool_execute(local.p, spawner_marks, NULL), 0);
	assert_int_equal(conc_pool_wait(local.p), 0);
	long failed_calls = conc__fault_alloc_failures();
	conc__fault_reset();
	long ok = 0, enomem = 0, bad = 0;
	for (unsigned i = 0; i < LOCAL_N; i++) {
		int r = atomic_load(&local_ran[i]);
		if (local.err[i] == 0) {
			ok++;
			bad += r != 1;
		} else {
			enomem += local.err[i] == ENOMEM;
			bad += local.err[i] != ENOMEM || r != 0;
		}
	}
	/* usable afterwards */
	atomic_store(&conc_test_counted.ran, 0);
	assert_int_equal(conc_pool_execute(local.p, conc_test_count_task, NULL), 0);
	assert_int_equal(conc_pool_wait(local.p), 0);
	assert_int_equal(atomic_load(&conc_test_counted.ran), 1);
	assert_int_equal(conc_pool_destroy(local.p), 0);
	hammer_failed += failed_calls;
	printf("reliability: faults pool_execute_local_no_memory | executes=%d ok=%ld ENOMEM=%ld "
	       "(allocs failed %ld) bad=%ld\n",
	       LOCAL_N, ok, enomem, failed_calls, bad);
	fflush(stdout);
	assert_int_equal(bad, 0);
	assert_true(enomem > 0 && failed_calls > 0);
	conc_test_watchdog_off();
}

/* wait and destroy with tasks queued: they allocate nothing (counted). */
static void run_pool_wait(struct sweep *sw)
{
	pool_reset_counts();
	conc_pool *p = held_pool(sw);
	for (int i = 0; i < 100; i++)
		CHECK(sw, conc_pool_execute(p, conc_test_count_task, NULL) == 0);
	arm(sw);
	conc_test_gate_open(&pool_gate);
	int err = conc_pool_wait(p);
	disarm(sw);
	CHECK(sw, err == 0);
	CHECK(sw, atomic_load(&conc_test_counted.ran) == 100);
	conc_test_gate_destroy(&pool_gate);
	check_pool_works_and_destroy(sw, p, false);
}

static void run_pool_destroy(struct sweep *sw)
{
	pool_reset_counts();
	conc_pool *p = held_pool(sw);
	for (int i = 0; i < 100; i++)
		CHECK(sw, conc_pool_execute(p, conc_test_count_task, NULL) == 0);
	conc_test_gate_open(&pool_gate);
	arm(sw);
	int err = conc_pool_destroy(p);
	disarm(sw);
	CHECK(sw, err == 0);
	CHECK(sw, atomic_load(&conc_test_counted.ran) == 100);
	conc_test_gate_destroy(&pool_gate);
}

/* ---- task groups ------------------------------------------------------------ */

static int grp_count(void *arg)
{
	conc_test_count_task(arg);
	return 0;
}

/* create: the group's record (pool.group) and its queue's first block
 * (pool.inj_block); on failure *out is untouched. */
static void run_group_create(struct sweep *sw)
{
	conc_pool_config two = {.threads = 2};
	conc_pool *p;
	CHECK(sw, conc_pool_create(&p, &two) == 0);
	conc_group *g = SENTINEL;
	arm(sw);
	int err = conc_group_create(&g, p);
	disarm(sw);
	CHECK(sw, err == want_err(sw));
	if (err) {
		CHECK(sw, g == SENTINEL);
	} else {
		atomic_store(&conc_test_counted.ran, 0);
		CHECK(sw, conc_group_run(g, grp_count, NULL) == 0);
		CHECK(sw, conc_group_wait(g) == 0);
		CHECK(sw, atomic_load(&conc_test_counted.ran) == 1);
		CHECK(sw, conc_group_destroy(g) == 0);
	}
	CHECK(sw, conc_pool_destroy(p) == 0);
}

/*
 * Runs while every allocation fails: from outside (the token's injector
 * slot is claimed first; when the group's queue then cannot grow, the slot
 * is filled with a task that does nothing) and from a task (room on the
 * deque is reserved first).  Spare blocks made beforehand decide which
 * structure is the first that cannot grow: mode 0 the pool's injector,
 * mode 1 the group's queue (after the claim: the do-nothing fill), mode 2
 * the worker's deque (the reserve).  Every run that returned 0 runs once, every other
 * (ENOMEM) never, and wait returns 0: the counts stay exact.
 */
#define GRP_N 700

static struct {
	conc_pool *p;
	conc_group *g;
	int err[GRP_N];
} grp;
static atomic_int grp_ran[GRP_N];

static int grp_mark(void *arg)
{
	atomic_fetch_add(&grp_ran[(uintptr_t)arg], 1);
	return 0;
}

static void grp_spawner(void *arg)
{
	(void)arg;
	for (uintptr_t i = 0; i < GRP_N; i++)
		grp.err[i] = conc_group_run(grp.g, grp_mark, (void *)i);
}

static void test_faults_group_no_memory(void **state)
{
	(void)state;
	conc_test_watchdog("faults_group_no_memory", 60);
	long failed_total = 0;
	for (int mode = 0; mode < 3; mode++) {
		conc_pool_config one = {.threads = 1};
		assert_int_equal(conc_pool_create(&grp.p, &one), 0);
		assert_int_equal(conc_group_create(&grp.g, grp.p), 0);
		for (unsigned i = 0; i < GRP_N; i++)
			atomic_store(&grp_ran[i], 0);
		if (mode == 1) {
			/* spare blocks for the pool's injector only: the group's
			 * queue reaches its block boundary first */
			conc_test_gate_init(&pool_gate);
			assert_int_equal(conc_pool_execute(grp.p, gate_task, &pool_gate), 0);
			conc_test_gate_await_waiters(&pool_gate, 1);
			for (int i = 0; i < 1200; i++)
				assert_int_equal(conc_pool_execute(grp.p, conc_test_count_task, NULL), 0);
			conc_test_gate_open(&pool_gate);
			assert_int_equal(conc_pool_wait(grp.p), 0);
			conc_test_gate_destroy(&pool_gate);
		} else if (mode == 2) {
			/* spare blocks for the group's queue: the worker's deque
			 * is the first that cannot grow */
			for (uintptr_t i = 0; i < 1200; i++)
				assert_int_equal(conc_group_run(grp.g, grp_mark, (void *)(i % GRP_N)), 0);
			assert_int_equal(conc_group_wait(grp.g), 0);
			for (unsigned i = 0; i < GRP_N; i++)
				atomic_store(&grp_ran[i], 0);
		}
		conc_test_gate_init(&pool_gate);
		if (mode < 2) { /* from outside, the worker held */
			assert_int_equal(conc_pool_execute(grp.p, gate_task, &pool_gate), 0);
			conc_test_gate_await_waiters(&pool_gate, 1);
			conc__fault_reset();
			conc__fault_fail_rate(1000000, 0, 1); /* every allocation fails */
			grp_spawner(NULL);
			failed_total += conc__fault_alloc_failures();
			conc__fault_reset();
			conc_test_gate_open(&pool_gate);
		} else { /* from a task: the deque and the group's queue */
			conc_test_gate_open(&pool_gate);
			conc__fault_reset();
			conc__fault_fail_rate(1000000, 0, 1);
			assert_int_equal(conc_pool_execute(grp.p, grp_spawner, NULL), 0);
			assert_int_equal(conc_pool_wait(grp.p), 0);
			failed_total += conc__fault_alloc_failures();
			conc__fault_reset();
		}
		assert_int_equal(conc_group_wait(grp.g), 0);
		assert_int_equal(conc_pool_wait(grp.p), 0);
		long ok = 0, enomem = 0, bad = 0;
		for (unsigned i = 0; i < GRP_N; i++) {
			int r = atomic_load(&grp_ran[i]);
			if (grp.err[i] == 0) {
				ok++;
				bad += r != 1;
			} else {
				enomem += grp.err[i] == ENOMEM;
				bad += grp.err[i] != ENOMEM || r != 0;
			}
		}
		/* usable afterwards */
		atomic_store(&conc_test_counted.ran, 0);
		assert_int_equal(conc_group_run(grp.g, grp_count, NULL), 0);
		assert_int_equal(conc_group_wait(grp.g), 0);
		assert_int_equal(atomic_load(&conc_test_counted.ran), 1);
		assert_int_equal(conc_group_destroy(grp.g), 0);
		assert_int_equal(conc_pool_destroy(grp.p), 0);
		conc_test_gate_destroy(&pool_gate);
		printf("reliability: faults group_run_no_memory mode %d | runs=%d ok=%ld ENOMEM=%ld "
		       "bad=%ld\n", mode, GRP_N, ok, enomem, bad);
		fflush(stdout);
		assert_int_equal(bad, 0);
		assert_true(enomem > 0);
	}
	hammer_failed += failed_total;
	conc_test_watchdog_off();
}

static void test_faults_pool(void **state)
{
	(void)state;
	conc_test_watchdog("faults_pool", 180);
	sweep("pool_create", run_pool_create);
	sweep("pool_resize", run_pool_resize);
	find_exec_fill();
	sweep("pool_execute", run_pool_execute);
	sweep("pool_execute_local", run_pool_execute_local);
	sweep("pool_wait", run_pool_wait);
	sweep("pool_destroy", run_pool_destroy);
	sweep("group_create", run_group_create);
	conc_test_watchdog_off();
}

/* The pool: two outside threads execute, tasks execute subtasks, a third
 * thread resizes, while allocations and thread creations fail at random. */
#define HP_SUB 40

static struct {
	conc_pool *p;
	unsigned long m;
	atomic_uchar *ran;   /* [2 * m] */
	unsigned char *fail; /* [2 * m] */
	atomic_long sub_ok, sub_ran, sub_bad_err;
	atomic_int execs_left;
	long resizes, resize_failed, resize_bad;
} hp;

static void hp_sub(void *arg)
{
	(void)arg;
	atomic_fetch_add(&hp.sub_ran, 1);
}

static void hp_task(void *arg)
{
	uintptr_t i = (uintptr_t)arg;
	atomic_fetch_add(&hp.ran[i], 1);
	if (i % 16 == 0)
		for (int k = 0; k < HP_SUB; k++) {
			int err = conc_pool_execute(hp.p, hp_sub, NULL);
			if (err == 0)
				atomic_fetch_add(&hp.sub_ok, 1);
			else if (err != ENOMEM)
				atomic_fetch_add(&hp.sub_bad_err, 1);
		}
}

static void *hp_thread(void *arg)
{
	unsigned t = (unsigned)(uintptr_t)arg;
	if (t < 2) {
		for (unsigned long i = 0; i < hp.m; i++) {
			uintptr_t idx = t * hp.m + i;
			int err = conc_pool_execute(hp.p, hp_task, (void *)idx);
			if (err)
				hp.fail[idx] = err == ENOMEM ? 1 : 2;
		}
		atomic_fetch_sub(&hp.execs_left, 1);
		return NULL;
	}
	unsigned long min_resizes = conc_test_iters(200, 4);
	for (unsigned n = 1; atomic_load(&hp.execs_left) > 0 || (unsigned long)hp.resizes < min_resizes;
	     n = n % 4 + 1) {
		unsigned before = conc_pool_threads(hp.p);
		int err = conc_pool_resize(hp.p, n);
		hp.resizes++;
		if (err) {
			hp.resize_failed++;
			/* unchanged; only this thread resizes */
			if ((err != EAGAIN && err != ENOMEM) || conc_pool_threads(hp.p) != before)
				hp.resize_bad++;
		} else if (conc_pool_threads(hp.p) != n) {
			hp.resize_bad++;
		}
	}
	return NULL;
}

static void test_faults_hammer_pool(void **state)
{
	(void)state;
	conc_test_watchdog("faults_hammer_pool", 120);
	memset(&hp, 0, sizeof hp);
	hp.m = conc_test_iters(200000, 10);
	hp.ran = calloc(2 * hp.m, sizeof *hp.ran);
	hp.fail = calloc(2 * hp.m, 1);
	assert_non_null(hp.ran);
	assert_non_null(hp.fail);
	atomic_store(&hp.execs_left, 2);
	conc_pool_config two = {.threads = 2};
	assert_int_equal(conc_pool_create(&hp.p, &two), 0);
	conc__fault_reset();
	conc__fault_fail_rate(HAM_PPM, 300000, 0xfee1);
	run_threads_indexed(3, hp_thread);
	assert_int_equal(conc_pool_wait(hp.p), 0);
	long a_calls = conc__fault_alloc_calls(), a_failed = conc__fault_alloc_failures();
	long t_calls = conc__fault_thread_calls(), t_failed = conc__fault_thread_failures();
	conc__fault_reset();
	hammer_failed += a_failed + t_failed;
	long lost = 0, dup = 0, ghost = 0, wrong_err = 0, failed = 0;
	for (unsigned long i = 0; i < 2 * hp.m; i++) {
		unsigned r = atomic_load(&hp.ran[i]);
		if (hp.fail[i]) {
			failed++;
			ghost += r != 0;
			wrong_err += hp.fail[i] != 1;
		} else {
			lost += r == 0;
			dup += r > 1;
		}
	}
	long sub_lost = atomic_load(&hp.sub_ok) - atomic_load(&hp.sub_ran);
	/* usable afterwards */
	assert_int_equal(conc_pool_resize(hp.p, 2), 0);
	atomic_store(&hp.sub_ran, 0);
	assert_int_equal(conc_pool_execute(hp.p, hp_sub, NULL), 0);
	assert_int_equal(conc_pool_wait(hp.p), 0);
	assert_int_equal(atomic_load(&hp.sub_ran), 1);
	assert_int_equal(conc_pool_destroy(hp.p), 0);
	free(hp.ran);
	free(hp.fail);
	printf("reliability: faults hammer pool | tasks=%lu failed=%ld subtasks=%ld resizes=%ld "
	       "(failed %ld) allocs=%ld failed=%ld threads=%ld failed=%ld lost=%ld dup=%ld ghost=%ld\n",
	       2 * hp.m, failed, atomic_load(&hp.sub_ok), hp.resizes, hp.resize_failed, a_calls,
	       a_failed, t_calls, t_failed, lost + (sub_lost > 0 ? sub_lost : 0),
	       dup + (sub_lost < 0 ? -sub_lost : 0), ghost);
	fflush(stdout);
	assert_int_equal(lost, 0);
	assert_int_equal(dup, 0);
	assert_int_equal(ghost, 0);
	assert_int_equal(wrong_err, 0);
	assert_int_equal(sub_lost, 0);
	assert_int_equal(atomic_load(&hp.sub_bad_err), 0);
	assert_int_equal(hp.resize_bad, 0);
}


int main(void)
{
	faults_begin("pool");
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_faults_pool),
		cmocka_unit_test(test_faults_pool_local_no_memory),
		cmocka_unit_test(test_faults_group_no_memory),
		cmocka_unit_test(test_faults_hammer_pool),
	};
	return faults_end(cmocka_run_group_tests(tests, NULL, NULL));
}
