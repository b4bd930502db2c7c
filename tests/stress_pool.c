/*
 * stress_pool.c - the pool under concurrent producers, spawning tasks,
 * waiters and resizes: every task runs exactly once (conservation, no
 * duplicate), waits see what they must, nothing hangs.  Plus issue 8's
 * liveness runs: 10^5 submit/wait cycles, 10^3 create/destroy cycles that
 * destroy a busy pool.  Every test runs under a progress watchdog (no
 * task finished for 5 s fails it) besides the overall one.
 */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

#include "conc/pool.h"

#define PRODUCERS 4

/* Bumped by every task that runs (relaxed: the progress watchdog only
 * looks for movement). */
static atomic_ulong progress;

/* One bit per task id: set once; a second set is a duplicate. */
struct ledger {
	atomic_ullong *bits;
	unsigned long n;
	atomic_ulong dups;
};

static int ledger_init(struct ledger *l, unsigned long n)
{
	l->n = n;
	l->bits = calloc((n + 63) / 64, sizeof *l->bits);
	atomic_init(&l->dups, 0);
	return l->bits ? 0 : ENOMEM;
}

static void ledger_mark(struct ledger *l, unsigned long id)
{
	atomic_fetch_add_explicit(&progress, 1, memory_order_relaxed);
	unsigned long long m = 1ull << (id % 64);
	if (atomic_fetch_or_explicit(&l->bits[id / 64], m, memory_order_relaxed) & m)
		atomic_fetch_add(&l->dups, 1);
}

static unsigned long ledger_count(struct ledger *l)
{
	unsigned long c = 0;
	for (unsigned long i = 0; i < (l->n + 63) / 64; i++)
		c += (unsigned long)__builtin_popcountll(atomic_load(&l->bits[i]));
	return c;
}

/* ---- producers + spawning + waits + resizes ----------------------------------- */

static conc_pool *pool;
static struct ledger ledger;
static unsigned long per_producer;
static atomic_int stop_resizer;

/* Task id layout: producer p's task k is p * per_producer * 2 + 2k; a
 * task with an even id spawns one child with id + 1. */
static void child_task(void *arg)
{
	ledger_mark(&ledger, (unsigned long)(uintptr_t)arg);
}

static void parent_task(void *arg)
{
	unsigned long id = (unsigned long)(uintptr_t)arg;
	ledger_mark(&ledger, id);
	if (conc_pool_execute(pool, child_task, (void *)(uintptr_t)(id + 1)))
		ledger_mark(&ledger, id + 1); /* never: makes the count fail */
}

struct prod {
	unsigned idx;
	int errors;
	unsigned long missing_after_wait;
};

static void *producer(void *arg)
{
	struct prod *pr = arg;
	unsigned long base = (unsigned long)pr->idx * per_producer * 2;
	for (unsigned long k = 0; k < per_producer; k++) {
		if (conc_pool_execute(pool, parent_task, (void *)(uintptr_t)(base + 2 * k)))
			pr->errors++;
		if (k % 4096 == 4095) {
			if (conc_pool_wait(pool))
				pr->errors++;
			/* every task (and child) this producer executed so far
			 * has run */
			for (unsigned long j = base; j < base + 2 * (k + 1); j++) {
				unsigned long long m = 1ull << (j % 64);
				if (!(atomic_load(&ledger.bits[j / 64]) & m))
					pr->missing_after_wait++;
			}
		}
	}
	return NULL;
}

static void *resizer(void *arg)
{
	(void)arg;
	uint64_t seed = 12345;
	while (!atomic_load(&stop_resizer)) {
		unsigned n = 1 + (unsigned)(conc_test_rand(&seed) % 6);
		if (conc_pool_resize(pool, n))
			return (void *)1;
		sched_yield();
	}
	return NULL;
}

static void stress_pool_producers_spawn_wait_resize(void **state)
{
	(void)state;
	conc_test_watchdog("producers_spawn_wait_resize", 300);
	conc_test_progress *pw = conc_test_progress_watchdog_start("producers_spawn_wait_resize", &progress, 5);
	assert_non_null(pw);
	per_producer = conc_test_iters(500000, 20);
	assert_int_equal(ledger_init(&ledger, per_producer * 2 * PRODUCERS), 0);
	conc_pool_config cfg = {.threads = 3};
	assert_int_equal(conc_pool_create(&pool, &cfg), 0);
	atomic_store(&stop_resizer, 0);
	pthread_t rt;
	assert_int_equal(pthread_create(&rt, NULL, resizer, NULL), 0);
	struct prod prods[PRODUCERS];
	for (unsigned i = 0; i < PRODUCERS; i++)
		prods[i] = (struct prod){.idx = i};
	assert_int_equal(conc_test_run_threads(PRODUCERS, producer, prods, sizeof prods[0]), 0);
	atomic_store(&stop_resizer, 1);
	void *rr;
	pthread_join(rt, &rr);
	assert_null(rr);
	assert_int_equal(conc_pool_wait(pool), 0);
	for (unsigned i = 0; i < PRODUCERS; i++) {
		assert_int_equal(prods[i].errors, 0);
		assert_int_equal(prods[i].missing_after_wait, 0);
	}
	assert_int_equal(atomic_load(&ledger.dups), 0);
	assert_int_equal(ledger_count(&ledger), ledger.n);
	assert_int_equal(conc_pool_queued(pool), 0);
	assert_int_equal(conc_pool_destroy(pool), 0);
	free(ledger.bits);
	conc_test_progress_watchdog_stop(pw);
	conc_test_watchdog_off();
}

/* ---- wide spawning: deque growth while others steal ----------------------------- */

static atomic_ulong wide_done;
static unsigned long wide_children;

static void wide_leaf(void *arg)
{
	ledger_mark(&ledger, (unsigned long)(uintptr_t)arg);
	atomic_fetch_add_explicit(&wide_done, 1, memory_order_relaxed);
}

static void wide_root(void *arg)
{
	unsigned long base = (unsigned long)(uintptr_t)arg;
	for (unsigned long i = 0; i < wide_children; i++)
		conc_pool_execute(pool, wide_leaf, (void *)(uintptr_t)(base + i));
}

static void stress_pool_deque_growth(void **state)
{
	(void)state;
	conc_test_watchdog("deque_growth", 300);
	conc_test_progress *pw = conc_test_progress_watchdog_start("deque_growth", &progress, 5);
	assert_non_null(pw);
	wide_children = conc_test_iters(50000, 10);
	unsigned roots = 8;
	assert_int_equal(ledger_init(&ledger, wide_children * roots), 0);
	conc_pool_config cfg = {.threads = 4};
	assert_int_equal(conc_pool_create(&pool, &cfg), 0);
	for (int round = 0; round < 3; round++) {
		memset(ledger.bits, 0, (ledger.n + 63) / 64 * sizeof *ledger.bits);
		atomic_store(&wide_done, 0);
		for (unsigned r = 0; r < roots; r++)
			assert_int_equal(conc_pool_execute(pool, wide_root,
							   (void *)(uintptr_t)(r * wide_children)), 0);
		assert_int_equal(conc_pool_wait(pool), 0);
		assert_int_equal(atomic_load(&wide_done), wide_children * roots);
		assert_int_equal(ledger_count(&ledger), ledger.n);
		assert_int_equal(atomic_load(&ledger.dups), 0);
	}
	assert_int_equal(conc_pool_destroy(pool), 0);
	free(ledger.bits);
	conc_test_progress_watchdog_stop(pw);
	conc_test_watchdog_off();
}

/* ---- bounded queue with several outside producers -------------------------------- */

static void *bounded_producer(void *arg)
{
	struct prod *pr = arg;
	unsigned long base = (unsigned long)pr->idx * per_producer;
	for (unsigned long k = 0; k < per_producer; k++)
		if (conc_pool_execute(pool, child_task, (void *)(uintptr_t)(base + k)))
			pr->errors++;
	return NULL;
}

static void stress_pool_bounded_producers(void **state)
{
	(void)state;
	conc_test_watchdog("bounded_producers", 300);
	conc_test_progress *pw = conc_test_progress_watchdog_start("bounded_producers", &progress, 5);
	assert_non_null(pw);
	per_producer = conc_test_iters(100000, 20);
	assert_int_equal(ledger_init(&ledger, per_producer * PRODUCERS), 0);
	conc_pool_config cfg = {.threads = 2, .max_queued = 300};
	assert_int_equal(conc_pool_create(&pool, &cfg), 0);
	struct prod prods[PRODUCERS];
	for (unsigned i = 0; i < PRODUCERS; i++)
		prods[i] = (struct prod){.idx = i};
	assert_int_equal(conc_test_run_threads(PRODUCERS, bounded_producer, prods, sizeof prods[0]), 0);
	assert_int_equal(conc_pool_wait(pool), 0);
	for (unsigned i = 0; i < PRODUCERS; i++)
		assert_int_equal(prods[i].errors, 0);
	assert_int_equal(atomic_load(&ledger.dups), 0);
	assert_int_equal(ledger_count(&ledger), ledger.n);
	assert_int_equal(conc_pool_destroy(pool), 0);
	free(ledger.bits);
	conc_test_progress_watchdog_stop(pw);
	conc_test_watchdog_off();
}

/* ---- create / execute / destroy churn -------------------------------------------- */

static void stress_pool_churn(void **state)
{
	(void)state;
	conc_test_watchdog("churn", 300);
	conc_test_progress *pw = conc_test_progress_watchdog_start("churn", &progress, 5);
	assert_non_null(pw);
	unsigned long rounds = conc_test_iters(200, 10);
	assert_int_equal(ledger_init(&ledger, 1000), 0);
	for (unsigned long r = 0; r < rounds; r++) {
		memset(ledger.bits, 0, (ledger.n + 63) / 64 * sizeof *ledger.bits);
		conc_pool_config cfg = {.threads = 1 + (unsigned)(r % 4)};
		assert_int_equal(conc_pool_create(&pool, &cfg), 0);
		for (unsigned long i = 0; i < 500; i++)
			assert_int_equal(conc_pool_execute(pool, parent_task, (void *)(uintptr_t)(2 * i)), 0);
		/* destroy without a wait: it must run everything */
		assert_int_equal(conc_pool_destroy(pool), 0);
		assert_int_equal(ledger_count(&ledger), 1000);
		assert_int_equal(atomic_load(&ledger.dups), 0);
	}
	free(ledger.bits);
	conc_test_progress_watchdog_stop(pw);
	conc_test_watchdog_off();
}

/* ---- liveness: submit/wait cycles ------------------------------------------------ */

static atomic_ulong cycle_done;

static void cycle_task(void *arg)
{
	/* release: wait's ordering promise is what the main thread checks,
	 * but the value must also be this cycle's */
	atomic_store_explicit(&cycle_done, (unsigned long)(uintptr_t)arg, memory_order_release);
	atomic_fetch_add_explicit(&progress, 1, memory_order_relaxed);
}

/* Execute one task and wait for it, again and again: each wait must return
 * (a lost wake-up of the waiter hangs it: the watchdogs catch that) and
 * find its task done. */
static void stress_pool_submit_wait_cycles(void **state)
{
	(void)state;
	conc_test_watchdog("submit_wait_cycles", 300);
	conc_test_progress *pw = conc_test_progress_watchdog_start("submit_wait_cycles",
								   &progress, 5);
	assert_non_null(pw);
	unsigned long cycles = conc_test_iters(100000, 10);
	conc_pool_config cfg = {.threads = 2};
	assert_int_equal(conc_pool_create(&pool, &cfg), 0);
	atomic_store(&cycle_done, 0);
	unsigned long errors = 0, missed = 0;
	for (unsigned long i = 1; i <= cycles; i++) {
		if (conc_pool_execute(pool, cycle_task, (void *)(uintptr_t)i) != 0)
			errors++;
		if (conc_pool_wait(pool) != 0)
			errors++;
		/* acquire: pairs with the task's store (wait orders it too) */
		if (atomic_load_explicit(&cycle_done, memory_order_acquire) != i)
			missed++;
	}
	assert_int_equal(conc_pool_destroy(pool), 0);
	conc_test_progress_watchdog_stop(pw);
	printf("reliability: liveness pool submit/wait | cycles=%lu lost=%lu errors=%lu"
	       " threads=2\n", cycles, missed, errors);
	fflush(stdout);
	assert_int_equal(errors, 0);
	assert_int_equal(missed, 0);
	conc_test_watchdog_off();
}

/* ---- liveness: create/destroy cycles, destroying a busy pool ----------------------- */

/*
 * One cycle: a pool of T = 1..4 workers gets T blockers, which occupy every
 * worker until the test lets them go, then QUEUED tasks that therefore sit
 * in the queue.  A prober thread executes counted tasks from outside until
 * one returns EPIPE - destroy has begun - and only then lets the blockers
 * go, so destroy starts with T tasks running and QUEUED + (the prober's)
 * queued.  Released, each blocker executes two children from inside the
 * pool (accepted during destroy, pool.h), half the queued tasks execute a
 * child, and each worker's on_stop executes one task (run by destroy's
 * caller).  pool.h's destroy contract: every queued task runs, and every
 * task executed by the pool's tasks or hooks too - so every id handed out
 * by an accepted execute must be marked exactly once when destroy returns,
 * and the id of the refused execute never.
 */
#define BUSY_QUEUED 32
#define BUSY_IDS (1u << 20)

struct busy {
	conc_pool *p;
	atomic_ulong next_id;
	atomic_uint started;
	atomic_int go;
	atomic_ulong inner_errors; /* executes from tasks or hooks that failed */
};

static struct busy busy;

static void busy_exec(void (*fn)(void *))
{
	unsigned long id = atomic_fetch_add(&busy.next_id, 1);
	if (id >= BUSY_IDS || conc_pool_execute(busy.p, fn, (void *)(uintptr_t)id) != 0)
		atomic_fetch_add(&busy.inner_errors, 1);
}

static void busy_leaf(void *arg)
{
	ledger_mark(&ledger, (unsigned long)(uintptr_t)arg);
}

static void busy_queued(void *arg)
{
	unsigned long id = (unsigned long)(uintptr_t)arg;
	ledger_mark(&ledger, id);
	if (id % 2)
		busy_exec(busy_leaf);
}

static void busy_blocker(void *arg)
{
	ledger_mark(&ledger, (unsigned long)(uintptr_t)arg);
	atomic_fetch_add(&busy.started, 1);
	/* held until the prober has seen destroy begin (a flag the test
	 * sets, not a sleep); the progress watchdog covers a hang here */
	while (!atomic_load(&busy.go))
		sched_yield();
	busy_exec(busy_leaf);
	busy_exec(busy_leaf);
}

static void busy_on_stop(unsigned index, void *ctx)
{
	(void)index;
	(void)ctx;
	busy_exec(busy_leaf);
}

struct prober {
	unsigned long accepted, other_errors, refused_id;
	int saw_epipe;
};

static void *busy_prober(void *arg)
{
	struct prober *pr = arg;
	for (;;) {
		unsigned long id = atomic_fetch_add(&busy.next_id, 1);
		if (id >= BUSY_IDS) {
			pr->other_errors++;
			break;
		}
		int rc = conc_pool_execute(busy.p, busy_leaf, (void *)(uintptr_t)id);
		if (rc == 0) {
			pr->accepted++;
		} else if (rc == EPIPE) {
			pr->saw_epipe = 1;
			pr->refused_id = id;
			break;
		} else {
			pr->other_errors++;
			break;
		}
		sched_yield(); /* let the main thread get on with destroy */
	}
	atomic_store(&busy.go, 1);
	return NULL;
}

static void stress_pool_create_destroy_busy(void **state)
{
	(void)state;
	conc_test_watchdog("create_destroy_busy", 300);
	conc_test_progress *pw = conc_test_progress_watchdog_start("create_destroy_busy",
								   &progress, 5);
	assert_non_null(pw);
	unsigned long cycles = conc_test_iters(1000, 1);
	assert_int_equal(ledger_init(&ledger, BUSY_IDS), 0);
	unsigned long tasks = 0, running_at_destroy = 0, queued_at_destroy = 0, lost = 0;
	unsigned long failures = 0, workers = 0;
	for (unsigned long c = 0; c < cycles; c++) {
		unsigned threads = 1 + (unsigned)(c % 4);
		workers += threads;
		atomic_store(&busy.next_id, 0);
		atomic_store(&busy.started, 0);
		atomic_store(&busy.go, 0);
		atomic_store(&busy.inner_errors, 0);
		conc_pool_config cfg = {.threads = threads, .on_stop = busy_on_stop};
		if (conc_pool_create(&busy.p, &cfg) != 0) {
			failures++;
			break;
		}
		for (unsigned i = 0; i < threads; i++)
			busy_exec(busy_blocker);
		/* Every worker runs a blocker: what follows stays queued.
		 * (Waiting for all T found a lost wake-up in the pool - a
		 * task left queued behind a blocking one while a worker
		 * slept - fixed in 29e1b0a.) */
		while (atomic_load(&busy.started) < threads)
			sched_yield();
		for (unsigned i = 0; i < BUSY_QUEUED; i++)
			busy_exec(busy_queued);
		size_t queued = conc_pool_queued(busy.p);
		unsigned started_before = atomic_load(&busy.started);
		struct prober pr = {0};
		pthread_t pt;
		if (pthread_create(&pt, NULL, busy_prober, &pr) != 0) {
			atomic_store(&busy.go, 1);
			failures++;
		}
		if (conc_pool_destroy(busy.p) != 0)
			failures++;
		pthread_join(pt, NULL);
		/* the accounting of this cycle */
		unsigned long ids = atomic_load(&busy.next_id);
		unsigned long expect = ids - (pr.saw_epipe ? 1 : 0);
		unsigned long seen = ledger_count(&ledger);
		if (pr.saw_epipe) {
			unsigned long long m = 1ull << (pr.refused_id % 64);
			if (atomic_load(&ledger.bits[pr.refused_id / 64]) & m)
				failures++; /* a refused task ran */
		}
		if (!pr.saw_epipe || pr.other_errors || atomic_load(&busy.inner_errors))
			failures++;
		lost += expect > seen ? expect - seen : 0;
		if (seen > expect)
			failures++;
		tasks += seen;
		running_at_destroy += started_before;
		queued_at_destroy += queued;
		memset(ledger.bits, 0, (ids + 63) / 64 * sizeof *ledger.bits);
	}
	conc_test_progress_watchdog_stop(pw);
	unsigned long dups = atomic_load(&ledger.dups);
	printf("reliability: liveness pool create/destroy busy | cycles=%lu tasks=%lu lost=%lu"
	       " dup=%lu running_at_destroy=%lu queued_at_destroy=%lu\n", cycles, tasks, lost,
	       dups, running_at_destroy, queued_at_destroy);
	fflush(stdout);
	free(ledger.bits);
	assert_int_equal(failures, 0);
	assert_int_equal(lost, 0);
	assert_int_equal(dups, 0);
	/* every cycle destroyed a busy pool: every worker running a task,
	 * at least BUSY_QUEUED tasks queued */
	assert_int_equal(running_at_destroy, workers);
	assert_true(queued_at_destroy >= cycles * BUSY_QUEUED);
	conc_test_watchdog_off();
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(stress_pool_producers_spawn_wait_resize),
		cmocka_unit_test(stress_pool_deque_growth),
		cmocka_unit_test(stress_pool_bounded_producers),
		cmocka_unit_test(stress_pool_churn),
		cmocka_unit_test(stress_pool_submit_wait_cycles),
		cmocka_unit_test(stress_pool_create_destroy_busy),
	};
	return cmocka_run_group_tests_name("pool-stress", tests, NULL, NULL);
}
