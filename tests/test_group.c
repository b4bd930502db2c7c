/*
 * test_group.c - task groups and broadcast (conc/pool.h).
 *
 * Outcomes that could fail: exact counts of every task (each index ran
 * exactly once, or not at all when skipped), the results wait returns, the
 * errors of misuse, and - for isolation - completion of a schedule that
 * deadlocks when a waiter picks up an unrelated task.  No sleeps as
 * synchronisation: tasks that must stay running wait on gates the test
 * opens.
 */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "pool_hold.h"
#include "testutil.h"

#include "conc/epoch.h"
#include "conc/parallel.h"
#include "conc/pool.h"
#include "base/fault.h"
#include "pool/pool_internal.h"

static void spin_until(atomic_int *v, int want)
{
	while (atomic_load(v) < want)
		sched_yield();
}

/* ---- exactly once ---------------------------------------------------------- */

struct marks {
	atomic_int *hit;
	size_t n;
};

struct mark_arg {
	struct marks *m;
	size_t i;
};

static int mark(void *arg)
{
	struct mark_arg *a = arg;
	atomic_fetch_add_explicit(&a->m->hit[a->i], 1, memory_order_relaxed);
	return 0;
}

static void check_once(struct marks *m)
{
	for (size_t i = 0; i < m->n; i++)
		if (atomic_load(&m->hit[i]) != 1)
			fail_msg("task %zu ran %d times", i, atomic_load(&m->hit[i]));
}

static void test_group_basic(void **state)
{
	(void)state;
	conc_test_watchdog(__func__, 60);
	for (unsigned threads = 1; threads <= 4; threads++) {
		conc_pool *p;
		conc_pool_config cfg = {.threads = threads};
		assert_int_equal(conc_pool_create(&p, &cfg), 0);
		conc_group *g;
		assert_int_equal(conc_group_create(&g, p), 0);
		enum { N = 5000 };
		struct marks m = {calloc(N, sizeof(atomic_int)), N};
		struct mark_arg *args = calloc(N, sizeof *args);
		assert_non_null(m.hit);
		assert_non_null(args);
		for (int round = 0; round < 3; round++) {
			for (size_t i = 0; i < N; i++) {
				atomic_store(&m.hit[i], 0);
				args[i] = (struct mark_arg){&m, i};
				assert_int_equal(conc_group_run(g, mark, &args[i]), 0);
			}
			assert_int_equal(conc_group_wait(g), 0);
			check_once(&m); /* reuse after wait: every round */
		}
		assert_false(conc_group_is_cancelled(g));
		assert_int_equal(conc_group_destroy(g), 0);
		/* the tokens left on the pool (the waiter ran their tasks) run
		 * after the destroy and free the group */
		assert_int_equal(conc_pool_wait(p), 0);
		assert_int_equal(conc_pool_destroy(p), 0);
		free(m.hit);
		free(args);
	}
	conc_test_watchdog_off();
}

static int ret_arg(void *arg)
{
	return (int)(intptr_t)arg;
}

static int self_wait(void *arg)
{
	conc_group *g = arg;
	return conc_group_wait(g) == EDEADLK ? 0 : 99;
}

static void bc_noop(unsigned index, void *ctx)
{
	(void)index;
	(void)ctx;
}

static void test_group_errors(void **state)
{
	(void)state;
	conc_test_watchdog(__func__, 60);
	conc_pool *p;
	conc_pool_config cfg = {.threads = 2};
	assert_int_equal(conc_pool_create(&p, &cfg), 0);
	conc_group *g;
	assert_int_equal(conc_group_create(NULL, p), EINVAL);
	assert_int_equal(conc_group_create(&g, p), 0);
	assert_int_equal(conc_group_run(NULL, ret_arg, NULL), EINVAL);
	assert_int_equal(conc_group_run(g, NULL, NULL), EINVAL);
	assert_int_equal(conc_group_wait(NULL), EINVAL);
	assert_int_equal(conc_group_destroy(NULL), 0);
	conc_group_cancel(NULL);
	assert_false(conc_group_is_cancelled(NULL));
	assert_int_equal(conc_pool_broadcast(p, NULL, NULL), EINVAL);
	assert_int_equal(conc_group_wait(g), 0); /* nothing to wait for */
	/* EDEADLK from one of its own tasks (the task checks it) */
	assert_int_equal(conc_group_run(g, self_wait, g), 0);
	assert_int_equal(conc_group_wait(g), 0);
	/* a task's error */
	assert_int_equal(conc_group_run(g, ret_arg, (void *)(intptr_t)42), 0);
	assert_int_equal(conc_group_wait(g), 42);
	assert_false(conc_group_is_cancelled(g));
	/* cancel with nothing queued: ECANCELED, then usable again */
	conc_group_cancel(g);
	assert_true(conc_group_is_cancelled(g));
	assert_int_equal(conc_group_run(g, ret_arg, NULL), ECANCELED);
	assert_int_equal(conc_group_wait(g), ECANCELED);
	assert_false(conc_group_is_cancelled(g));
	assert_int_equal(conc_group_run(g, ret_arg, NULL), 0);
	assert_int_equal(conc_group_wait(g), 0);
	assert_int_equal(conc_group_destroy(g), 0);
	/* the global pool */
	assert_int_equal(conc_group_create(&g, NULL), 0);
	assert_int_equal(conc_group_run(g, ret_arg, (void *)(intptr_t)5), 0);
	assert_int_equal(conc_group_wait(g), 5);
	assert_int_equal(conc_group_destroy(g), 0);
	assert_int_equal(conc_pool_broadcast(NULL, bc_noop, NULL), 0);
	assert_int_equal(conc_pool_destroy(p), 0);
	conc_test_watchdog_off();
}

/* ---- isolation --------------------------------------------------------------- */

/*
 * A thread holds M and waits on group g.  Unrelated tasks that take M were
 * queued before g's tasks, on the same queues, and occupy every other
 * worker.  A waiter that ran an unrelated task would block on M, which it
 * holds itself (M is an error-checking mutex: EDEADLK is recorded and the
 * round fails instead of hanging).  With isolation the waiter runs only g's
 * tasks and the round completes.
 */
static pthread_mutex_t iso_m;
static atomic_int iso_unrelated_ran, iso_relock;

static void iso_unrelated(void *arg)
{
	(void)arg;
	if (pthread_mutex_lock(&iso_m) != 0) {
		atomic_fetch_add(&iso_relock, 1);
		return;
	}
	atomic_fetch_add(&iso_unrelated_ran, 1);
	pthread_mutex_unlock(&iso_m);
}

struct iso_round {
	conc_pool *p;
	conc_group *g;
	unsigned threads;
	atomic_int mine;
	int err;
};

static int iso_mine(void *arg)
{
	struct iso_round *r = arg;
	atomic_fetch_add(&r->mine, 1);
	return 0;
}

static void iso_body(struct iso_round *r)
{
	int lk = pthread_mutex_lock(&iso_m);
	if (lk != 0) {
		r->err = 1000 + lk;
		return;
	}
	/* enough unrelated tasks to block every other worker, and more
	 * queued ahead of g's tasks */
	for (unsigned i = 0; i < 2 * r->threads + 4; i++)
		if (conc_pool_execute(r->p, iso_unrelated, NULL) != 0)
			r->err = 2000;
	for (int i = 0; i < 8; i++)
		if (conc_group_run(r->g, iso_mine, r) != 0)
			r->err = 3000;
	int w = conc_group_wait(r->g);
	if (w)
		r->err = 4000 + w;
	if (atomic_load(&r->mine) != 8)
		r->err = 5000;
	pthread_mutex_unlock(&iso_m);
}

static void iso_task(void *arg)
{
	iso_body(arg);
}

static void test_group_isolation(void **state)
{
	(void)state;
	conc_test_watchdog(__func__, 120);
	pthread_mutexattr_t ma;
	pthread_mutexattr_init(&ma);
	pthread_mutexattr_settype(&ma, PTHREAD_MUTEX_ERRORCHECK);
	pthread_mutex_init(&iso_m, &ma);
	pthread_mutexattr_destroy(&ma);
	unsigned long rounds = CONC_TEST_SANITIZED ? 200 : 1000;
	for (unsigned threads = 1; threads <= 4; threads++) {
		conc_pool *p;
		conc_pool_config cfg = {.threads = threads};
		assert_int_equal(conc_pool_create(&p, &cfg), 0);
		conc_group *g;
		assert_int_equal(conc_group_create(&g, p), 0);
		atomic_store(&iso_unrelated_ran, 0);
		for (unsigned long k = 0; k < rounds; k++) {
			struct iso_round r = {.p = p, .g = g, .threads = threads};
			if (k & 1) /* the waiter is a pool task on a worker */
				assert_int_equal(conc_pool_execute(p, iso_task, &r), 0);
			else /* the waiter is an outside thread */
				iso_body(&r);
			assert_int_equal(conc_pool_wait(p), 0);
			assert_int_equal(r.err, 0);
			assert_int_equal(atomic_load(&iso_relock), 0);
		}
		assert_int_equal(atomic_load(&iso_unrelated_ran),
				 (int)(rounds * (2 * threads + 4)));
		assert_int_equal(conc_group_destroy(g), 0);
		assert_int_equal(conc_pool_destroy(p), 0);
	}
	pthread_mutex_destroy(&iso_m);
	conc_test_watchdog_off();
}

/*
 * Isolation against the parallel loops' call trees (F1).  A group task run
 * by its waiter must not join the waiter's conc_join / loop tree: a join
 * inside it would then help with (steal) the outer tree's jobs, one of
 * which takes the lock the waiter holds around its wait.  Schedule (pool of
 * 2; W1, W2 its workers; main the test thread), every step forced:
 *   main: conc_join(A, B) roots tree T; B's ticket goes to the injector;
 *   W1 (W2 is held): runs B (tree T): conc_join(B1, B2) puts B2, tagged T,
 *     on W1's deque (a nested join: offered at once under the test switch
 *     conc__parallel_eager) and runs B1, which holds W1 until b1_gate;
 *   main (A): locks M, runs G in group g and waits; nobody else is free,
 *     so main runs G itself: conc_join(Ga, Gb), Gb's ticket to the
 *     injector; Ga lets W2 go and returns once W2 runs Gb; main's join must
 *     wait for Gb and helps: with the bug under tag T, stealing B2, which
 *     relocks M (EDEADLK: an error-checking mutex); fixed, under G's own
 *     tree, finding nothing;
 *   Gb returns once main has found nothing to help ("parallel.join.idle"
 *   on main: the test hook), and opens b1_gate.
 */
#if defined(CONC_FAULT_HOOKS) && CONC_FAULT_HOOKS
static pthread_mutex_t f1_m;
static conc_pool *f1_p;
static conc_group *f1_g;
static atomic_int f1_b2_queued, f1_b1_gate, f1_gb_started, f1_main_idle;
static atomic_int f1_relock, f1_b2_ran, f1_err;
static _Thread_local int f1_is_main;

static void f1_hook(const char *point)
{
	if (f1_is_main && strcmp(point, "parallel.join.idle") == 0)
		atomic_store(&f1_main_idle, 1);
}

static void f1_b2(void *arg)
{
	(void)arg;
	int lk = pthread_mutex_lock(&f1_m);
	if (lk != 0) {
		atomic_fetch_add(&f1_relock, 1);
		return;
	}
	atomic_fetch_add(&f1_b2_ran, 1);
	pthread_mutex_unlock(&f1_m);
}

static void f1_b1(void *arg)
{
	(void)arg;
	atomic_store(&f1_b2_queued, 1); /* B2 was offered before B1 runs */
	spin_until(&f1_b1_gate, 1);
}

static void f1_b(void *arg)
{
	(void)arg;
	if (conc_join(f1_p, f1_b1, NULL, f1_b2, NULL) != 0)
		atomic_fetch_add(&f1_err, 1);
}

static void f1_ga(void *arg)
{
	(void)arg;
	atomic_store(&conc_test_hold_gate, 1); /* W2 goes, and takes Gb */
	spin_until(&f1_gb_started, 1);
}

static void f1_gb(void *arg)
{
	(void)arg;
	atomic_store(&f1_gb_started, 1);
	spin_until(&f1_main_idle, 1);
	atomic_store(&f1_b1_gate, 1);
}

static int f1_gtask(void *arg)
{
	(void)arg;
	return conc_join(f1_p, f1_ga, NULL, f1_gb, NULL);
}

static void f1_a(void *arg)
{
	(void)arg;
	spin_until(&f1_b2_queued, 1);
	if (pthread_mutex_lock(&f1_m) != 0) {
		atomic_fetch_add(&f1_err, 1);
		return;
	}
	if (conc_group_run(f1_g, f1_gtask, NULL) != 0 || conc_group_wait(f1_g) != 0)
		atomic_fetch_add(&f1_err, 1);
	pthread_mutex_unlock(&f1_m);
}

static void test_group_task_leaves_join_tree(void **state)
{
	(void)state;
	conc_test_watchdog(__func__, 60);
	pthread_mutexattr_t ma;
	pthread_mutexattr_init(&ma);
	pthread_mutexattr_settype(&ma, PTHREAD_MUTEX_ERRORCHECK);
	pthread_mutex_init(&f1_m, &ma);
	pthread_mutexattr_destroy(&ma);
	conc_pool_config cfg = {.threads = 2};
	assert_int_equal(conc_pool_create(&f1_p, &cfg), 0);
	assert_int_equal(conc_group_create(&f1_g, f1_p), 0);
	f1_is_main = 1;
	conc__test_set_hook(f1_hook);
	/* B's join is nested in main's tree: offer B2 at once, as before
	 * nested joins offered lazily (it must be there to be stolen). */
	atomic_store(&conc__parallel_eager, 1);
	int relocks = 0;
	for (int round = 0; round < 20; round++) {
		atomic_store(&f1_b2_queued, 0);
		atomic_store(&f1_b1_gate, 0);
		atomic_store(&f1_gb_started, 0);
		atomic_store(&f1_main_idle, 0);
		atomic_store(&f1_relock, 0);
		atomic_store(&f1_b2_ran, 0);
		atomic_store(&f1_err, 0);
		conc_test_hold_one_worker(f1_p); /* W2 */
		assert_int_equal(conc_join(f1_p, f1_a, NULL, f1_b, NULL), 0);
		assert_int_equal(conc_pool_wait(f1_p), 0);
		relocks += atomic_load(&f1_relock);
		assert_int_equal(atomic_load(&f1_err), 0);
		/* B2 ran once: locking M, or relocking it */
		assert_int_equal(atomic_load(&f1_relock) + atomic_load(&f1_b2_ran), 1);
	}
	atomic_store(&conc__parallel_eager, 0);
	conc__test_set_hook(NULL);
	f1_is_main = 0;
	/* never on the thread holding M */
	assert_int_equal(relocks, 0);
	assert_int_equal(conc_group_destroy(f1_g), 0);
	assert_int_equal(conc_pool_destroy(f1_p), 0);
	pthread_mutex_destroy(&f1_m);
	conc_test_watchdog_off();
}
#endif

/*
 * A group token must not run a task of its group nested in a join (F2).
 * Pool of 1 worker.  U, a pool task, holds M around conc_group_wait(g1);
 * g2 has an unrelated task that takes M (main's, its token in the
 * injector).  U runs g1's task G1 itself: conc_join(a, b) on the worker;
 * a runs a task in g2, whose token lands on the worker's deque above b's
 * job.  With the bug the join pops that token and it runs g2's oldest
 * task - main's, which relocks M (EDEADLK: an error-checking mutex).  Fixed,
 * the token is passed on to the pool's injector and runs at top level.
 */
static pthread_mutex_t f2_m;
static conc_pool *f2_p;
static conc_group *f2_g1, *f2_g2;
static atomic_int f2_locked, f2_gate, f2_relock, f2_ran, f2_err;

static int f2_takes_m(void *arg)
{
	(void)arg;
	if (pthread_mutex_lock(&f2_m) != 0) {
		atomic_fetch_add(&f2_relock, 1);
		return 0;
	}
	atomic_fetch_add(&f2_ran, 1);
	pthread_mutex_unlock(&f2_m);
	return 0;
}

static int f2_noop(void *arg)
{
	(void)arg;
	return 0;
}

static void f2_a(void *arg)
{
	(void)arg;
	if (conc_group_run(f2_g2, f2_noop, NULL) != 0)
		atomic_fetch_add(&f2_err, 1);
}

static void f2_b(void *arg)
{
	(void)arg;
}

static int f2_g1_task(void *arg)
{
	(void)arg;
	return conc_join(f2_p, f2_a, NULL, f2_b, NULL);
}

static void f2_u(void *arg)
{
	(void)arg;
	if (pthread_mutex_lock(&f2_m) != 0) {
		atomic_fetch_add(&f2_err, 1);
		return;
	}
	atomic_store(&f2_locked, 1);
	spin_until(&f2_gate, 1);
	if (conc_group_run(f2_g1, f2_g1_task, NULL) != 0 || conc_group_wait(f2_g1) != 0)
		atomic_fetch_add(&f2_err, 1);
	pthread_mutex_unlock(&f2_m);
}

static void test_group_token_not_run_in_join(void **state)
{
	(void)state;
	conc_test_watchdog(__func__, 60);
	pthread_mutexattr_t ma;
	pthread_mutexattr_init(&ma);
	pthread_mutexattr_settype(&ma, PTHREAD_MUTEX_ERRORCHECK);
	pthread_mutex_init(&f2_m, &ma);
	pthread_mutexattr_destroy(&ma);
	conc_pool_config cfg = {.threads = 1};
	assert_int_equal(conc_pool_create(&f2_p, &cfg), 0);
	assert_int_equal(conc_group_create(&f2_g1, f2_p), 0);
	assert_int_equal(conc_group_create(&f2_g2, f2_p), 0);
	int rounds = 20, relocks = 0;
	atomic_store(&f2_ran, 0);
	for (int round = 0; round < rounds; round++) {
		atomic_store(&f2_locked, 0);
		atomic_store(&f2_gate, 0);
		atomic_store(&f2_relock, 0);
		atomic_store(&f2_err, 0);
		assert_int_equal(conc_pool_execute(f2_p, f2_u, NULL), 0);
		spin_until(&f2_locked, 1); /* U holds M and the only worker */
		assert_int_equal(conc_group_run(f2_g2, f2_takes_m, NULL), 0);
		atomic_store(&f2_gate, 1);
		assert_int_equal(conc_pool_wait(f2_p), 0);
		assert_int_equal(conc_group_wait(f2_g2), 0);
		relocks += atomic_load(&f2_relock);
		assert_int_equal(atomic_load(&f2_err), 0);
	}
	assert_int_equal(relocks, 0);
	assert_int_equal(atomic_load(&f2_ran), rounds);
	assert_int_equal(conc_group_destroy(f2_g1), 0);
	assert_int_equal(conc_group_destroy(f2_g2), 0);
	assert_int_equal(conc_pool_destroy(f2_p), 0);
	pthread_mutex_destroy(&f2_m);
	conc_test_watchdog_off();
}

/*
 * A run held by max_queued is not counted before it is queued (F3).  Pool
 * of 1 worker, max_queued 2.  U, a pool task on the only worker, waits on g
 * once main's third run is held for room (the "pool.room.park" point, just
 * before it sleeps).  With the bug that run was already counted pending:
 * U runs the two queued tasks, then sleeps for the third, which cannot be
 * queued before the worker - U - pops a token: a deadlock, ended by the
 * watchdog.  Fixed, U's wait returns after the two.
 */
#if defined(CONC_FAULT_HOOKS) && CONC_FAULT_HOOKS
static conc_group *f3_g;
static atomic_int f3_in, f3_held, f3_ran, f3_wait;

static void f3_hook(const char *point)
{
	if (strcmp(point, "pool.room.park") == 0)
		atomic_store(&f3_held, 1);
}

static int f3_task(void *arg)
{
	(void)arg;
	atomic_fetch_add(&f3_ran, 1);
	return 0;
}

static void f3_u(void *arg)
{
	(void)arg;
	atomic_store(&f3_in, 1);
	spin_until(&f3_held, 1);
	atomic_store(&f3_wait, 100 + conc_group_wait(f3_g));
}

static void test_group_held_run_not_pending(void **state)
{
	(void)state;
	conc_test_watchdog(__func__, 20);
	conc_pool *p;
	conc_pool_config cfg = {.threads = 1, .max_queued = 2};
	assert_int_equal(conc_pool_create(&p, &cfg), 0);
	assert_int_equal(conc_group_create(&f3_g, p), 0);
	for (int round = 0; round < 20; round++) {
		atomic_store(&f3_in, 0);
		atomic_store(&f3_held, 0);
		atomic_store(&f3_ran, 0);
		atomic_store(&f3_wait, 0);
		assert_int_equal(conc_pool_execute(p, f3_u, NULL), 0);
		spin_until(&f3_in, 1); /* U holds the only worker */
		/* two tokens in the injector: the bound */
		assert_int_equal(conc_group_run(f3_g, f3_task, NULL), 0);
		assert_int_equal(conc_group_run(f3_g, f3_task, NULL), 0);
		conc__test_set_hook(f3_hook);
		/* held until a worker pops a token: after U's wait */
		assert_int_equal(conc_group_run(f3_g, f3_task, NULL), 0);
		conc__test_set_hook(NULL);
		assert_int_equal(conc_pool_wait(p), 0);
		assert_int_equal(atomic_load(&f3_wait), 100);
		assert_int_equal(conc_group_wait(f3_g), 0);
		assert_int_equal(atomic_load(&f3_ran), 3);
	}
	assert_int_equal(conc_group_destroy(f3_g), 0);
	assert_int_equal(conc_pool_destroy(p), 0);
	conc_test_watchdog_off();
}
#endif

/* ---- cancellation ------------------------------------------------------------ */

static atomic_int gate, started, finished, skipped_ran;

static int blocker(void *arg)
{
	atomic_fetch_add(&started, 1);
	while (!atomic_load(&gate))
		sched_yield();
	atomic_fetch_add(&finished, 1);
	return (int)(intptr_t)arg;
}

/* blocker, held by its own gate */
static atomic_int gate2;

static int blocker2(void *arg)
{
	atomic_fetch_add(&started, 1);
	while (!atomic_load(&gate2))
		sched_yield();
	atomic_fetch_add(&finished, 1);
	return (int)(intptr_t)arg;
}

static int late(void *arg)
{
	(void)arg;
	atomic_fetch_add(&skipped_ran, 1);
	return 0;
}

static void test_group_cancel(void **state)
{
	(void)state;
	conc_test_watchdog(__func__, 60);
	conc_pool *p;
	conc_pool_config cfg = {.threads = 2};
	assert_int_equal(conc_pool_create(&p, &cfg), 0);
	conc_group *g;
	assert_int_equal(conc_group_create(&g, p), 0);
	for (int round = 0; round < 20; round++) {
		atomic_store(&gate, 0);
		atomic_store(&started, 0);
		atomic_store(&finished, 0);
		atomic_store(&skipped_ran, 0);
		/* both workers inside g's tasks, then more that cannot start */
		for (int i = 0; i < 2; i++)
			assert_int_equal(conc_group_run(g, blocker, NULL), 0);
		spin_until(&started, 2);
		for (int i = 0; i < 100; i++)
			assert_int_equal(conc_group_run(g, late, NULL), 0);
		assert_int_equal(conc_group_destroy(g), EBUSY);
		conc_group_cancel(g);
		assert_true(conc_group_is_cancelled(g));
		assert_int_equal(conc_group_run(g, late, NULL), ECANCELED);
		atomic_store(&gate, 1);
		assert_int_equal(conc_group_wait(g), ECANCELED);
		assert_int_equal(atomic_load(&finished), 2); /* started ones finish */
		assert_int_equal(atomic_load(&skipped_ran), 0); /* the rest skipped */
		assert_false(conc_group_is_cancelled(g));
	}
	/* The first error wins over a later cancel, and cancels the rest:
	 * blocker(7) fails while blocker2 still holds the other worker; the
	 * cancel comes once the error is recorded (is_cancelled), and the
	 * late tasks, queued behind both, all start after it: none runs. */
	atomic_store(&gate, 0);
	atomic_store(&gate2, 0);
	atomic_store(&started, 0);
	atomic_store(&finished, 0);
	atomic_store(&skipped_ran, 0);
	assert_int_equal(conc_group_run(g, blocker, (void *)(intptr_t)7), 0);
	assert_int_equal(conc_group_run(g, blocker2, NULL), 0);
	spin_until(&started, 2);
	for (int i = 0; i < 50; i++)
		assert_int_equal(conc_group_run(g, late, NULL), 0);
	atomic_store(&gate, 1);
	while (!conc_group_is_cancelled(g)) /* the error is recorded */
		sched_yield();
	conc_group_cancel(g);
	atomic_store(&gate2, 1);
	assert_int_equal(conc_group_wait(g), 7);
	assert_int_equal(atomic_load(&finished), 2);
	assert_int_equal(atomic_load(&skipped_ran), 0);
	assert_false(conc_group_is_cancelled(g));
	/* A cancel first, an error later: ECANCELED, and the rest skipped. */
	atomic_store(&gate, 0);
	atomic_store(&gate2, 0);
	atomic_store(&started, 0);
	atomic_store(&finished, 0);
	assert_int_equal(conc_group_run(g, blocker, (void *)(intptr_t)9), 0);
	assert_int_equal(conc_group_run(g, blocker2, NULL), 0);
	spin_until(&started, 2);
	for (int i = 0; i < 50; i++)
		assert_int_equal(conc_group_run(g, late, NULL), 0);
	conc_group_cancel(g);
	atomic_store(&gate, 1); /* blocker returns 9: after the cancel */
	atomic_store(&gate2, 1);
	assert_int_equal(conc_group_wait(g), ECANCELED);
	assert_int_equal(atomic_load(&finished), 2);
	assert_int_equal(atomic_load(&skipped_ran), 0);
	assert_int_equal(conc_group_destroy(g), 0);
	assert_int_equal(conc_pool_destroy(p), 0);
	conc_test_watchdog_off();
}

/* A cancel from inside: the first task cancels; its siblings queued behind
 * it on one worker are skipped. */
static int cancel_self(void *arg)
{
	conc_group_cancel(arg);
	atomic_store(&gate, 1); /* only now may the worker go on */
	return 0;
}

static void test_group_cancel_from_task(void **state)
{
	(void)state;
	conc_test_watchdog(__func__, 60);
	conc_pool *p;
	conc_pool_config cfg = {.threads = 1};
	assert_int_equal(conc_pool_create(&p, &cfg), 0);
	conc_group *g;
	assert_int_equal(conc_group_create(&g, p), 0);
	atomic_store(&gate, 0);
	atomic_store(&started, 0);
	/* hold the only worker, so that nothing of g starts before the wait */
	assert_int_equal(conc_group_run(g, blocker, NULL), 0);
	spin_until(&started, 1);
	atomic_store(&skipped_ran, 0);
	assert_int_equal(conc_group_run(g, cancel_self, g), 0);
	for (int i = 0; i < 20; i++)
		assert_int_equal(conc_group_run(g, late, NULL), 0);
	/* The worker is held until cancel_self opens the gate, so the wait
	 * takes the tasks alone, in FIFO order: cancel_self first. */
	assert_int_equal(conc_group_wait(g), ECANCELED);
	assert_int_equal(atomic_load(&skipped_ran), 0);
	assert_int_equal(conc_group_destroy(g), 0);
	assert_int_equal(conc_pool_destroy(p), 0);
	conc_test_watchdog_off();
}

/* ---- nesting, spawning from tasks, many threads ------------------------------ */

enum { DEPTH = 10 };

struct nest {
	conc_pool *p;
	atomic_int count;
	atomic_int errors;
};

struct nest_arg {
	struct nest *n;
	int level;
};

static int nest_task(void *arg)
{
	struct nest_arg *a = arg;
	atomic_fetch_add(&a->n->count, 1);
	if (a->level == DEPTH)
		return 0;
	/* a task of one group waits on another (a new one per level) */
	conc_group *h;
	if (conc_group_create(&h, a->n->p) != 0) {
		atomic_fetch_add(&a->n->errors, 1);
		return 0;
	}
	struct nest_arg kids[2] = {{a->n, a->level + 1}, {a->n, a->level + 1}};
	for (int i = 0; i < 2; i++)
		if (conc_group_run(h, nest_task, &kids[i]) != 0)
			atomic_fetch_add(&a->n->errors, 1);
	if (conc_group_wait(h) != 0 || conc_group_destroy(h) != 0)
		atomic_fetch_add(&a->n->errors, 1);
	return 0;
}

static void test_group_nested(void **state)
{
	(void)state;
	conc_test_watchdog(__func__, 120);
	for (unsigned threads = 1; threads <= 4; threads += 3) {
		conc_pool *p;
		conc_pool_config cfg = {.threads = threads};
		assert_int_equal(conc_pool_create(&p, &cfg), 0);
		struct nest n = {.p = p};
		conc_group *g;
		assert_int_equal(conc_group_create(&g, p), 0);
		struct nest_arg root = {&n, 0};
		assert_int_equal(conc_group_run(g, nest_task, &root), 0);
		assert_int_equal(conc_group_wait(g), 0);
		assert_int_equal(atomic_load(&n.errors), 0);
		/* levels 0..10: 2^11 - 1 tasks */
		assert_int_equal(atomic_load(&n.count), (1 << (DEPTH + 1)) - 1);
		assert_int_equal(conc_group_destroy(g), 0);
		assert_int_equal(conc_pool_destroy(p), 0);
	}
	conc_test_watchdog_off();
}

/* A task adds tasks to its own group (a tree); wait covers them all. */
struct tree {
	conc_group *g;
	atomic_int count;
	atomic_int errors;
};

struct tree_arg {
	struct tree *t;
	int depth;
};

static struct tree_arg tree_args[16];

static int tree_task(void *arg)
{
	struct tree_arg *a = arg;
	atomic_fetch_add(&a->t->count, 1);
	if (a->depth < 15 && conc_group_run(a->t->g, tree_task, &tree_args[a->depth + 1]) != 0)
		atomic_fetch_add(&a->t->errors, 1);
	if (a->depth < 15 && conc_group_run(a->t->g, tree_task, &tree_args[a->depth + 1]) != 0)
		atomic_fetch_add(&a->t->errors, 1);
	return 0;
}

static void test_group_spawn_in_group(void **state)
{
	(void)state;
	conc_test_watchdog(__func__, 120);
	conc_pool *p;
	conc_pool_config cfg = {.threads = 2};
	assert_int_equal(conc_pool_create(&p, &cfg), 0);
	struct tree t = {0};
	assert_int_equal(conc_group_create(&t.g, p), 0);
	for (int d = 0; d < 16; d++)
		tree_args[d] = (struct tree_arg){&t, d};
	assert_int_equal(conc_group_run(t.g, tree_task, &tree_args[0]), 0);
	assert_int_equal(conc_group_wait(t.g), 0);
	assert_int_equal(atomic_load(&t.errors), 0);
	assert_int_equal(atomic_load(&t.count), (1 << 16) - 1);
	assert_int_equal(conc_group_destroy(t.g), 0);
	assert_int_equal(conc_pool_destroy(p), 0);
	conc_test_watchdog_off();
}

/* 16 outside threads, each with its own groups on one pool, at once; and
 * the same groups used from pool tasks and from parallel-loop bodies. */
static conc_pool *mt_pool;
static atomic_int mt_errors;

static void *mt_thread(void *arg)
{
	(void)arg;
	enum { N = 200 };
	atomic_int hit[N];
	struct marks m = {hit, N};
	struct mark_arg args[N];
	conc_group *g;
	if (conc_group_create(&g, mt_pool) != 0) {
		atomic_fetch_add(&mt_errors, 1);
		return NULL;
	}
	unsigned long rounds = conc_test_iters(20, 5);
	for (unsigned long r = 0; r < rounds; r++) {
		for (size_t i = 0; i < N; i++) {
			atomic_store(&hit[i], 0);
			args[i] = (struct mark_arg){&m, i};
			if (conc_group_run(g, mark, &args[i]) != 0)
				atomic_fetch_add(&mt_errors, 1);
		}
		if (conc_group_wait(g) != 0)
			atomic_fetch_add(&mt_errors, 1);
		for (size_t i = 0; i < N; i++)
			if (atomic_load(&hit[i]) != 1)
				atomic_fetch_add(&mt_errors, 1);
	}
	if (conc_group_destroy(g) != 0)
		atomic_fetch_add(&mt_errors, 1);
	return NULL;
}

static void mt_pool_task(void *arg)
{
	mt_thread(arg);
}

static int mt_body(size_t lo, size_t hi, void *ctx)
{
	(void)ctx;
	for (size_t i = lo; i < hi; i++)
		mt_thread(NULL);
	return 0;
}

static void test_group_many_threads(void **state)
{
	(void)state;
	conc_test_watchdog(__func__, 120);
	conc_pool_config cfg = {.threads = 3};
	assert_int_equal(conc_pool_create(&mt_pool, &cfg), 0);
	atomic_store(&mt_errors, 0);
	assert_int_equal(conc_test_run_threads(16, mt_thread, NULL, 0), 0);
	assert_int_equal(atomic_load(&mt_errors), 0);
	for (int i = 0; i < 6; i++)
		assert_int_equal(conc_pool_execute(mt_pool, mt_pool_task, NULL), 0);
	assert_int_equal(conc_pool_wait(mt_pool), 0);
	assert_int_equal(atomic_load(&mt_errors), 0);
	assert_int_equal(conc_parallel_for(mt_pool, 0, 6, 1, mt_body, NULL), 0);
	assert_int_equal(atomic_load(&mt_errors), 0);
	assert_int_equal(conc_pool_destroy(mt_pool), 0);
	conc_test_watchdog_off();
}

/* ---- broadcast ---------------------------------------------------------------- */

enum { BC_MAX = 8 };

struct bc_rec {
	atomic_int per[BC_MAX];
	atomic_int bad;
};

static void bc_count(unsigned index, void *ctx)
{
	struct bc_rec *r = ctx;
	if (index >= BC_MAX)
		atomic_fetch_add(&r->bad, 1);
	else
		atomic_fetch_add(&r->per[index], 1);
}

static void bc_from_task(void *arg)
{
	atomic_int *res = arg;
	atomic_store(res, conc_pool_broadcast(NULL, bc_noop, NULL) == EDEADLK ? 1 : 2);
}

static void test_group_broadcast(void **state)
{
	(void)state;
	conc_test_watchdog(__func__, 60);
	conc_pool *p;
	conc_pool_config cfg = {.threads = 4};
	assert_int_equal(conc_pool_create(&p, &cfg), 0);
	for (int k = 0; k < 50; k++) {
		struct bc_rec r = {0};
		assert_int_equal(conc_pool_broadcast(p, bc_count, &r), 0);
		for (unsigned i = 0; i < BC_MAX; i++)
			assert_int_equal(atomic_load(&r.per[i]), i < 4 ? 1 : 0);
		assert_int_equal(atomic_load(&r.bad), 0);
	}
	/* EDEADLK from the pool's own task (the global pool here) */
	atomic_int res = 0;
	conc_pool *gp = conc_pool_global();
	assert_non_null(gp);
	assert_int_equal(conc_pool_execute(gp, bc_from_task, &res), 0);
	assert_int_equal(conc_pool_wait(gp), 0);
	assert_int_equal(atomic_load(&res), 1);
	assert_int_equal(conc_pool_destroy(p), 0);
	conc_test_watchdog_off();
}

/* Broadcasts while another thread resizes the pool between 1 and
 * BC_MAX workers: each broadcast runs exactly once on each worker of a
 * prefix 0..n-1 (the workers of the moment it held the pool). */
static atomic_int bc_stop;

static void *bc_resizer(void *arg)
{
	conc_pool *p = arg;
	uint64_t s = 12345;
	while (!atomic_load(&bc_stop))
		if (conc_pool_resize(p, 1 + (unsigned)(conc_test_rand(&s) % BC_MAX)) != 0)
			atomic_fetch_add(&mt_errors, 1);
	return NULL;
}

static void test_group_broadcast_during_resize(void **state)
{
	(void)state;
	conc_test_watchdog(__func__, 120);
	conc_pool *p;
	conc_pool_config cfg = {.threads = 2};
	assert_int_equal(conc_pool_create(&p, &cfg), 0);
	atomic_store(&bc_stop, 0);
	atomic_store(&mt_errors, 0);
	pthread_t th;
	assert_int_equal(pthread_create(&th, NULL, bc_resizer, p), 0);
	unsigned long n = conc_test_iters(300, 50);
	for (unsigned long k = 0; k < n; k++) {
		struct bc_rec r = {0};
		assert_int_equal(conc_pool_broadcast(p, bc_count, &r), 0);
		assert_int_equal(atomic_load(&r.bad), 0);
		unsigned i = 0;
		while (i < BC_MAX && atomic_load(&r.per[i]) == 1)
			i++;
		assert_true(i >= 1);
		for (; i < BC_MAX; i++)
			assert_int_equal(atomic_load(&r.per[i]), 0);
	}
	atomic_store(&bc_stop, 1);
	pthread_join(th, NULL);
	assert_int_equal(atomic_load(&mt_errors), 0);
	assert_int_equal(conc_pool_destroy(p), 0);
	conc_test_watchdog_off();
}

/* ---- fork -------------------------------------------------------------------- */

static void test_group_fork_child_refuses(void **state)
{
	(void)state;
	conc_test_watchdog(__func__, 60);
	conc_pool *p;
	conc_pool_config cfg = {.threads = 2};
	assert_int_equal(conc_pool_create(&p, &cfg), 0);
	conc_group *g;
	assert_int_equal(conc_group_create(&g, p), 0);
	assert_int_equal(conc_group_run(g, ret_arg, NULL), 0);
	assert_int_equal(conc_group_wait(g), 0);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		alarm(20);
		if (conc_group_run(g, ret_arg, NULL) != EPIPE)
			_exit(1);
		if (conc_group_wait(g) != EPIPE)
			_exit(2);
		if (conc_pool_broadcast(p, bc_noop, NULL) != EPIPE)
			_exit(3);
		if (conc_group_destroy(g) != 0)
			_exit(4);
		_exit(0);
	}
	int status = 0;
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
	assert_int_equal(conc_group_run(g, ret_arg, (void *)(intptr_t)3), 0);
	assert_int_equal(conc_group_wait(g), 3);
	assert_int_equal(conc_group_destroy(g), 0);
	assert_int_equal(conc_pool_destroy(p), 0);
	conc_test_watchdog_off();
}

/* ---- no allocation per run ---------------------------------------------------- */

#if defined(CONC_FAULT_HOOKS) && CONC_FAULT_HOOKS
static int noop_task(void *arg)
{
	(void)arg;
	return 0;
}

static conc_group *ss_g;

static void ss_from_task(void *arg)
{
	(void)arg;
	for (int i = 0; i < 100; i++)
		if (conc_group_run(ss_g, noop_task, NULL) != 0)
			atomic_fetch_add(&mt_errors, 1);
}

static void test_group_no_malloc_in_steady_state(void **state)
{
	(void)state;
	conc_test_watchdog(__func__, 60);
	conc_pool *p;
	conc_pool_config cfg = {.threads = 2};
	assert_int_equal(conc_pool_create(&p, &cfg), 0);
	assert_int_equal(conc_group_create(&ss_g, p), 0);
	atomic_store(&mt_errors, 0);
	/* Warm up past the largest backlog the rounds below can have: both
	 * workers held while 4,500 tasks queue, so that the group's queue and
	 * the pool's injector each go through more blocks than they keep as
	 * spares (16) and keep all 16 afterwards.  Without it a recycle racing
	 * a block boundary may still add a block late (it then stays). */
	atomic_store(&conc_test_hold_gate, 0);
	atomic_store(&conc_test_hold_in, 0);
	for (int i = 0; i < 2; i++)
		assert_int_equal(conc_pool_execute(p, conc_test_hold_task, NULL), 0);
	while (atomic_load(&conc_test_hold_in) < 2)
		sched_yield();
	for (int i = 0; i < 4500; i++)
		assert_int_equal(conc_group_run(ss_g, noop_task, NULL), 0);
	atomic_store(&conc_test_hold_gate, 1);
	assert_int_equal(conc_pool_wait(p), 0);
	assert_int_equal(conc_group_wait(ss_g), 0);
	long calls = 0;
	for (int round = 0; round < 300; round++) {
		if (round == 100) {
			conc__fault_reset();
			calls = conc__fault_alloc_calls();
		}
		for (int i = 0; i < 300; i++)
			assert_int_equal(conc_group_run(ss_g, noop_task, NULL), 0);
		assert_int_equal(conc_pool_execute(p, ss_from_task, NULL), 0);
		assert_int_equal(conc_pool_wait(p), 0);
		assert_int_equal(conc_group_wait(ss_g), 0);
	}
	assert_int_equal(conc__fault_alloc_calls() - calls, 0);
	assert_int_equal(atomic_load(&mt_errors), 0);
	assert_int_equal(conc_group_destroy(ss_g), 0);
	assert_int_equal(conc_pool_destroy(p), 0);
	conc_test_watchdog_off();
}
#endif

/* ---- groups made and destroyed in turn (issue 20: recycled records) ------------- */

static int fail_one(void *arg)
{
	(void)arg;
	return EIO;
}

/*
 * A group's record and queue are reused by the next create on the pool
 * once its last reference has gone (the last token may drop it after
 * destroy).  Each round: a group that is cancelled by a failing task and
 * destroyed, then one that must come out fresh - not cancelled, its runs
 * accepted, each task run exactly once, wait 0 - whether it is the
 * recycled record or a new one.
 */
static void test_group_made_in_turn(void **state)
{
	(void)state;
	conc_test_watchdog("group_made_in_turn", 60);
	conc_pool *p;
	conc_pool_config cfg = {.threads = 2};
	assert_int_equal(conc_pool_create(&p, &cfg), 0);
	enum { TASKS = 50 };
	atomic_int hit[TASKS];
	struct marks m = {hit, TASKS};
	struct mark_arg args[TASKS];
	unsigned long rounds = conc_test_iters(200, 20);
	for (unsigned long r = 0; r < rounds; r++) {
		conc_group *bad;
		assert_int_equal(conc_group_create(&bad, p), 0);
		assert_int_equal(conc_group_run(bad, fail_one, NULL), 0);
		assert_int_equal(conc_group_wait(bad), EIO);
		conc_group_cancel(bad);
		assert_true(conc_group_is_cancelled(bad));
		assert_int_equal(conc_group_destroy(bad), 0);
		/* every round but one in four: its tokens run first, so
		 * that its record is the one kept for the next create */
		if (r % 4)
			assert_int_equal(conc_pool_wait(p), 0);

		conc_group *g;
		assert_int_equal(conc_group_create(&g, p), 0);
		assert_false(conc_group_is_cancelled(g));
		for (size_t i = 0; i < TASKS; i++) {
			atomic_store(&hit[i], 0);
			args[i] = (struct mark_arg){&m, i};
			assert_int_equal(conc_group_run(g, mark, &args[i]), 0);
		}
		assert_int_equal(conc_group_wait(g), 0);
		check_once(&m);
		assert_int_equal(conc_group_destroy(g), 0);
	}
	assert_int_equal(conc_pool_destroy(p), 0);
	conc_test_watchdog_off();
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_group_basic),
		cmocka_unit_test(test_group_errors),
		cmocka_unit_test(test_group_isolation),
#if defined(CONC_FAULT_HOOKS) && CONC_FAULT_HOOKS
		cmocka_unit_test(test_group_task_leaves_join_tree),
		cmocka_unit_test(test_group_held_run_not_pending),
#endif
		cmocka_unit_test(test_group_token_not_run_in_join),
		cmocka_unit_test(test_group_cancel),
		cmocka_unit_test(test_group_cancel_from_task),
		cmocka_unit_test(test_group_nested),
		cmocka_unit_test(test_group_spawn_in_group),
		cmocka_unit_test(test_group_many_threads),
		cmocka_unit_test(test_group_broadcast),
		cmocka_unit_test(test_group_broadcast_during_resize),
		cmocka_unit_test(test_group_fork_child_refuses),
		cmocka_unit_test(test_group_made_in_turn),
#if defined(CONC_FAULT_HOOKS) && CONC_FAULT_HOOKS
		cmocka_unit_test(test_group_no_malloc_in_steady_state),
#endif
	};
	return cmocka_run_group_tests_name("group", tests, NULL, NULL);
}
