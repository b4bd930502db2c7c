/*
 * test_pool.c - the thread pool (conc/pool.h).
 */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "pool_hold.h"
#include "testutil.h"

#include "conc/epoch.h"
#include "conc/pool.h"
#include "base/fault.h"
#include "pool/pool_internal.h"


static void sleep_ms(unsigned ms)
{
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
	nanosleep(&ts, NULL);
}

/* Wait (yielding) until *v >= want; used where conc_pool_wait would let
 * the caller run tasks itself and spoil what the test observes. */
static void spin_until(atomic_ulong *v, unsigned long want)
{
	while (atomic_load(v) < want)
		sched_yield();
}

/* ---- sums ------------------------------------------------------------------ */

static atomic_ullong sum;

static void add_arg(void *arg)
{
	atomic_fetch_add_explicit(&sum, (unsigned long long)(uintptr_t)arg, memory_order_relaxed);
}

static void noop(void *arg)
{
	(void)arg;
}

static void test_pool_create_destroy_unused(void **state)
{
	(void)state;
	conc_test_watchdog("create_destroy_unused", 60);
	conc_pool *p;
	assert_int_equal(conc_pool_create(&p, NULL), 0);
	assert_int_equal(conc_pool_threads(p), conc_cpu_count());
	assert_int_equal(conc_pool_queued(p), 0);
	assert_int_equal(conc_pool_wait(p), 0); /* nothing to wait for */
	assert_int_equal(conc_pool_destroy(p), 0);

	conc_pool_config cfg = {.threads = 1};
	for (int i = 0; i < 20; i++) {
		assert_int_equal(conc_pool_create(&p, &cfg), 0);
		assert_int_equal(conc_pool_threads(p), 1);
		if (i & 1)
			assert_int_equal(conc_pool_execute(p, noop, NULL), 0);
		assert_int_equal(conc_pool_destroy(p), 0);
	}
	conc_test_watchdog_off();
}

static void test_pool_one_task(void **state)
{
	(void)state;
	conc_test_watchdog("one_task", 60);
	conc_pool *p;
	assert_int_equal(conc_pool_create(&p, NULL), 0);
	atomic_store(&sum, 0);
	assert_int_equal(conc_pool_execute(p, add_arg, (void *)(uintptr_t)42), 0);
	assert_int_equal(conc_pool_wait(p), 0);
	assert_int_equal(atomic_load(&sum), 42);
	assert_int_equal(conc_pool_destroy(p), 0);
	conc_test_watchdog_off();
}

static void test_pool_million_tasks_sum(void **state)
{
	(void)state;
	conc_test_watchdog("million_tasks_sum", 120);
	unsigned long n = conc_test_iters(1000000, 10);
	conc_pool *p;
	assert_int_equal(conc_pool_create(&p, NULL), 0);
	for (int round = 0; round < 2; round++) { /* the pool stays usable */
		atomic_store(&sum, 0);
		for (unsigned long i = 0; i < n; i++)
			assert_int_equal(conc_pool_execute(p, add_arg, (void *)(uintptr_t)i), 0);
		assert_int_equal(conc_pool_wait(p), 0);
		assert_int_equal(atomic_load(&sum), (unsigned long long)n * (n - 1) / 2);
		assert_int_equal(conc_pool_queued(p), 0);
	}
	assert_int_equal(conc_pool_destroy(p), 0);
	conc_test_watchdog_off();
}

/* ---- recursive fan-out ------------------------------------------------------- */

struct fan {
	conc_pool *p;
	atomic_ulong count;
	atomic_int errors;
};
static struct fan fan;

static void fan_task(void *arg)
{
	uintptr_t depth = (uintptr_t)arg;
	atomic_fetch_add_explicit(&fan.count, 1, memory_order_relaxed);
	if (depth == 0)
		return;
	for (int k = 0; k < 2; k++)
		if (conc_pool_execute(fan.p, fan_task, (void *)(depth - 1)) != 0)
			atomic_fetch_add(&fan.errors, 1);
}

static void run_fanout(conc_pool *p, unsigned depth)
{
	fan.p = p;
	atomic_store(&fan.count, 0);
	atomic_store(&fan.errors, 0);
	assert_int_equal(conc_pool_execute(p, fan_task, (void *)(uintptr_t)depth), 0);
	assert_int_equal(conc_pool_wait(p), 0);
	assert_int_equal(atomic_load(&fan.errors), 0);
	assert_int_equal(atomic_load(&fan.count), (2ul << depth) - 1);
}

static void test_pool_fanout_depth20(void **state)
{
	(void)state;
	conc_test_watchdog("fanout_depth20", 120);
	conc_pool *p;
	assert_int_equal(conc_pool_create(&p, NULL), 0);
	run_fanout(p, CONC_TEST_SANITIZED ? 16 : 20);
	run_fanout(p, 3);
	assert_int_equal(conc_pool_destroy(p), 0);
	conc_test_watchdog_off();
}

/* ---- wait from many threads ----------------------------------------------------- */

#define WAITERS 8
struct waiter {
	conc_pool *p;
	atomic_ulong done;
	unsigned long n;
	int err;
	unsigned long seen;
};
static struct waiter waiters[WAITERS];

static void waiter_task(void *arg)
{
	struct waiter *w = arg;
	atomic_fetch_add_explicit(&w->done, 1, memory_order_relaxed);
}

static void *waiter_thread(void *arg)
{
	struct waiter *w = arg;
	for (int round = 0; round < 5; round++) {
		for (unsigned long i = 0; i < w->n; i++)
			if (conc_pool_execute(w->p, waiter_task, w))
				w->err++;
		if (conc_pool_wait(w->p))
			w->err++;
		/* everything this thread executed before the wait is done */
		unsigned long d = atomic_load_explicit(&w->done, memory_order_relaxed);
		if (d != w->n * (unsigned long)(round + 1))
			w->err++;
		w->seen = d;
	}
	return NULL;
}

static void test_pool_wait_from_many_threads(void **state)
{
	(void)state;
	conc_test_watchdog("wait_from_many_threads", 120);
	conc_pool *p;
	conc_pool_config cfg = {.threads = 3};
	assert_int_equal(conc_pool_create(&p, &cfg), 0);
	for (int i = 0; i < WAITERS; i++) {
		waiters[i].p = p;
		atomic_store(&waiters[i].done, 0);
		waiters[i].n = conc_test_iters(20000, 10);
		waiters[i].err = 0;
	}
	assert_int_equal(conc_test_run_threads(WAITERS, waiter_thread, waiters, sizeof waiters[0]), 0);
	for (int i = 0; i < WAITERS; i++) {
		assert_int_equal(waiters[i].err, 0);
		assert_int_equal(waiters[i].seen, waiters[i].n * 5);
	}
	assert_int_equal(conc_pool_destroy(p), 0);
	conc_test_watchdog_off();
}

/* ---- hooks, names, resize -------------------------------------------------------- */

#define MAXW 32
struct hooks {
	atomic_int starts[MAXW], stops[MAXW];
	char names[MAXW][16];
	atomic_int bad_index;
	_Atomic(void *) ctx_seen;
	int wait_err, resize_err, destroy_err;
	conc_pool **pp;
};
static struct hooks hk;

static void on_start(unsigned index, void *ctx)
{
	if (index >= MAXW) {
		atomic_fetch_add(&hk.bad_index, 1);
		return;
	}
	atomic_store(&hk.ctx_seen, ctx);
	pthread_getname_np(pthread_self(), hk.names[index], sizeof hk.names[index]);
	atomic_fetch_add(&hk.starts[index], 1);
}

static void on_stop(unsigned index, void *ctx)
{
	(void)ctx;
	if (index >= MAXW) {
		atomic_fetch_add(&hk.bad_index, 1);
		return;
	}
	atomic_fetch_add(&hk.stops[index], 1);
}

static void reset_hooks(void)
{
	memset(&hk, 0, sizeof hk);
}

static void test_pool_hooks_and_names(void **state)
{
	(void)state;
	conc_test_watchdog("hooks_and_names", 60);
	reset_hooks();
	conc_pool *p;
	conc_pool_config cfg = {.threads = 3, .name = "work", .on_start = on_start,
				.on_stop = on_stop, .ctx = &hk};
	assert_int_equal(conc_pool_create(&p, &cfg), 0);
	/* create returns after every on_start */
	for (int i = 0; i < 3; i++) {
		assert_int_equal(atomic_load(&hk.starts[i]), 1);
		char want[16];
		snprintf(want, sizeof want, "work-%d", i);
		assert_string_equal(hk.names[i], want);
	}
	assert_ptr_equal(atomic_load(&hk.ctx_seen), &hk);
	assert_int_equal(conc_pool_destroy(p), 0);
	for (int i = 0; i < 3; i++)
		assert_int_equal(atomic_load(&hk.stops[i]), 1);
	assert_int_equal(atomic_load(&hk.starts[3]), 0);

	/* a long name is cut to 15 characters; NULL name is "conc-pool" */
	reset_hooks();
	cfg.threads = 12;
	cfg.name = "a-very-long-pool-name";
	assert_int_equal(conc_pool_create(&p, &cfg), 0);
	assert_string_equal(hk.names[0], "a-very-long-poo");
	assert_string_equal(hk.names[11], "a-very-long-poo");
	assert_int_equal(conc_pool_destroy(p), 0);
	reset_hooks();
	cfg.threads = 11;
	cfg.name = "abcdefghijkl"; /* 12 + "-10" = 15 */
	assert_int_equal(conc_pool_create(&p, &cfg), 0);
	assert_string_equal(hk.names[10], "abcdefghijkl-10");
	assert_string_equal(hk.names[9], "abcdefghijkl-9");
	assert_int_equal(conc_pool_destroy(p), 0);
	reset_hooks();
	cfg.threads = 1;
	cfg.name = NULL;
	assert_int_equal(conc_pool_create(&p, &cfg), 0);
	assert_string_equal(hk.names[0], "conc-pool-0");
	assert_int_equal(conc_pool_destroy(p), 0);
	assert_int_equal(atomic_load(&hk.bad_index), 0);
	conc_test_watchdog_off();
}

static void test_pool_stack_size(void **state)
{
	(void)state;
	conc_pool *p;
	conc_pool_config cfg = {.threads = 2, .stack_size = 1 << 20};
	assert_int_equal(conc_pool_create(&p, &cfg), 0);
	atomic_store(&sum, 0);
	assert_int_equal(conc_pool_execute(p, add_arg, (void *)7), 0);
	assert_int_equal(conc_pool_wait(p), 0);
	assert_int_equal(atomic_load(&sum), 7);
	assert_int_equal(conc_pool_destroy(p), 0);
	cfg.stack_size = 1000; /* below PTHREAD_STACK_MIN */
	assert_int_equal(conc_pool_create(&p, &cfg), EINVAL);
}

/* Tasks that count how many run at once. */
static atomic_int running_now, running_max;
static atomic_ulong conc_done;

static void conc_task(void *arg)
{
	(void)arg;
	int r = atomic_fetch_add(&running_now, 1) + 1;
	int m = atomic_load(&running_max);
	while (r > m && !atomic_compare_exchange_weak(&running_max, &m, r))
		;
	for (int i = 0; i < 200; i++)
		sched_yield();
	atomic_fetch_sub(&running_now, 1);
	atomic_fetch_add(&conc_done, 1);
}

struct producer {
	conc_pool *p;
	atomic_int stop;
	unsigned long pushed;
	int err;
};

static void *producer_thread(void *arg)
{
	struct producer *pr = arg;
	while (!atomic_load(&pr->stop)) {
		if (conc_pool_execute(pr->p, add_arg, (void *)1))
			pr->err++;
		pr->pushed++;
		if ((pr->pushed & 255) == 0)
			sched_yield();
	}
	return NULL;
}

static void test_pool_resize_while_running(void **state)
{
	(void)state;
	conc_test_watchdog("resize_while_running", 120);
	reset_hooks();
	conc_pool *p;
	conc_pool_config cfg = {.threads = 2, .on_start = on_start, .on_stop = on_stop};
	assert_int_equal(conc_pool_create(&p, &cfg), 0);
	atomic_store(&sum, 0);
	struct producer pr = {.p = p};
	pthread_t t;
	assert_int_equal(pthread_create(&t, NULL, producer_thread, &pr), 0);
	static const unsigned sizes[] = {5, 1, 8, 3, 1, 6, 2};
	int rounds = CONC_TEST_SANITIZED ? 2 : 6;
	for (int r = 0; r < rounds; r++)
		for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
			assert_int_equal(conc_pool_resize(p, sizes[i]), 0);
			assert_int_equal(conc_pool_threads(p), sizes[i]);
			/* each live index started once more than it stopped */
			for (unsigned k = 0; k < MAXW; k++)
				assert_int_equal(atomic_load(&hk.starts[k]) - atomic_load(&hk.stops[k]),
						 k < sizes[i] ? 1 : 0);
		}
	atomic_store(&pr.stop, 1);
	pthread_join(t, NULL);
	assert_int_equal(pr.err, 0);
	assert_int_equal(conc_pool_wait(p), 0);
	assert_int_equal(atomic_load(&sum), pr.pushed);

	/* after a shrink to 1, at most one task runs at once */
	assert_int_equal(conc_pool_resize(p, 1), 0);
	atomic_store(&running_max, 0);
	atomic_store(&conc_done, 0);
	for (int i = 0; i < 50; i++)
		assert_int_equal(conc_pool_execute(p, conc_task, NULL), 0);
	spin_until(&conc_done, 50); /* not conc_pool_wait: it would help */
	assert_int_equal(atomic_load(&running_max), 1);
	/* after a grow to 4, more than one can */
	assert_int_equal(conc_pool_resize(p, 4), 0);
	assert_int_equal(conc_pool_resize(p, 4), 0); /* same size: no-op */
	atomic_store(&running_max, 0);
	atomic_store(&conc_done, 0);
	for (int i = 0; i < 200; i++)
		assert_int_equal(conc_pool_execute(p, conc_task, NULL), 0);
	spin_until(&conc_done, 200);
	assert_true(atomic_load(&running_max) <= 4);
	assert_int_equal(conc_pool_destroy(p), 0);
	for (unsigned k = 0; k < MAXW; k++)
		assert_int_equal(atomic_load(&hk.starts[k]), atomic_load(&hk.stops[k]));
	conc_test_watchdog_off();
}

/* Tasks spawned by a worker that is then removed still run. */
static conc_pool *shrink_pool;
static atomic_ulong shrink_spawned_done;
static atomic_int shrink_gate;

static void shrink_child(void *arg)
{
	(void)arg;
	atomic_fetch_add(&shrink_spawned_done, 1);
}

static void shrink_parent(void *arg)
{
	(void)arg;
	for (int i = 0; i < 1000; i++)
		conc_pool_execute(shrink_pool, shrink_child, NULL);
	while (!atomic_load(&shrink_gate))
		sched_yield();
}

static void test_pool_shrink_hands_on_work(void **state)
{
	(void)state;
	conc_test_watchdog("shrink_hands_on_work", 60);
	conc_pool_config cfg = {.threads = 4};
	assert_int_equal(conc_pool_create(&shrink_pool, &cfg), 0);
	atomic_store(&shrink_spawned_done, 0);
	atomic_store(&shrink_gate, 0);
	for (int i = 0; i < 4; i++)
		assert_int_equal(conc_pool_execute(shrink_pool, shrink_parent, NULL), 0);
	sleep_ms(20); /* let the parents spawn (not needed for correctness) */
	atomic_store(&shrink_gate, 1);
	assert_int_equal(conc_pool_resize(shrink_pool, 1), 0);
	spin_until(&shrink_spawned_done, 4000);
	assert_int_equal(conc_pool_destroy(shrink_pool), 0);
	conc_test_watchdog_off();
}

/* ---- errors ------------------------------------------------------------------- */

struct self_calls {
	conc_pool *p;
	int wait_err, resize_err, destroy_err, other_wait_err;
	conc_pool *other;
	atomic_ulong done;
};
static struct self_calls sc;

static void self_call_task(void *arg)
{
	(void)arg;
	sc.wait_err = conc_pool_wait(sc.p);
	sc.resize_err = conc_pool_resize(sc.p, 3);
	sc.destroy_err = conc_pool_destroy(sc.p);
	/* waiting on another pool from a task is fine */
	conc_pool_execute(sc.other, noop, NULL);
	sc.other_wait_err = conc_pool_wait(sc.other);
	atomic_store(&sc.done, 1);
}

static void hook_calls(unsigned index, void *ctx)
{
	(void)index;
	struct hooks *h = ctx;
	h->wait_err = conc_pool_wait(*h->pp);
	h->resize_err = conc_pool_resize(*h->pp, 1);
	h->destroy_err = conc_pool_destroy(*h->pp);
}

static void test_pool_errors(void **state)
{
	(void)state;
	conc_test_watchdog("errors", 60);
	conc_pool *p;
	conc_pool_config cfg = {.threads = CONC_POOL_MAX_THREADS + 1};
	assert_int_equal(conc_pool_create(NULL, NULL), EINVAL);
	assert_int_equal(conc_pool_create(&p, &cfg), EINVAL);
	assert_int_equal(conc_pool_execute(NULL, noop, NULL), EINVAL);
	assert_int_equal(conc_pool_wait(NULL), EINVAL);
	assert_int_equal(conc_pool_resize(NULL, 1), EINVAL);
	assert_int_equal(conc_pool_destroy(NULL), EINVAL);
	assert_int_equal(conc_pool_threads(NULL), 0);
	assert_int_equal(conc_pool_queued(NULL), 0);
	assert_int_equal(conc_pool_active(NULL), 0);

	cfg.threads = 2;
	assert_int_equal(conc_pool_create(&p, &cfg), 0);
	assert_int_equal(conc_pool_execute(p, NULL, NULL), EINVAL);
	assert_int_equal(conc_pool_resize(p, 0), EINVAL);
	assert_int_equal(conc_pool_resize(p, CONC_POOL_MAX_THREADS + 1), EINVAL);
	assert_int_equal(conc_pool_threads(p), 2);

	/* EDEADLK from a task */
	sc.p = p;
	assert_int_equal(conc_pool_create(&sc.other, NULL), 0);
	atomic_store(&sc.done, 0);
	assert_int_equal(conc_pool_execute(p, self_call_task, NULL), 0);
	assert_int_equal(conc_pool_wait(p), 0);
	assert_int_equal(atomic_load(&sc.done), 1);
	assert_int_equal(sc.wait_err, EDEADLK);
	assert_int_equal(sc.resize_err, EDEADLK);
	assert_int_equal(sc.destroy_err, EDEADLK);
	assert_int_equal(sc.other_wait_err, 0);
	assert_int_equal(conc_pool_threads(p), 2); /* the resize did nothing */
	assert_int_equal(conc_pool_destroy(sc.other), 0);
	assert_int_equal(conc_pool_destroy(p), 0);

	/* EDEADLK from a hook */
	reset_hooks();
	hk.pp = &p;
	conc_pool_config hc = {.threads = 1, .on_stop = hook_calls, .ctx = &hk};
	assert_int_equal(conc_pool_create(&p, &hc), 0);
	assert_int_equal(conc_pool_destroy(p), 0);
	assert_int_equal(hk.wait_err, EDEADLK);
	assert_int_equal(hk.resize_err, EDEADLK);
	assert_int_equal(hk.destroy_err, EDEADLK);

	/* the global pool cannot be destroyed */
	conc_pool *g = conc_pool_global();
	assert_non_null(g);
	assert_ptr_equal(conc_pool_global(), g);
	assert_int_equal(conc_pool_destroy(g), EINVAL);
	conc_test_watchdog_off();
}

/* errno is never changed */
static void test_pool_keeps_errno(void **state)
{
	(void)state;
	conc_pool *p;
	errno = 12345;
	assert_int_equal(conc_pool_create(&p, NULL), 0);
	assert_int_equal(conc_pool_execute(p, noop, NULL), 0);
	assert_int_equal(conc_pool_wait(p), 0);
	assert_int_equal(conc_pool_resize(p, 3), 0);
	assert_int_equal(conc_pool_resize(p, 1), 0);
	assert_int_equal(conc_pool_destroy(p), 0);
	assert_int_equal(errno, 12345);
}

/* ---- queries, max_queued, destroy with a full queue ------------------------------ */

/* Workers held with tests/lib/pool_hold.h: conc_test_hold_gate lets them go. */

static void test_pool_queries(void **state)
{
	(void)state;
	conc_test_watchdog("queries", 60);
	conc_pool *p;
	conc_pool_config cfg = {.threads = 1};
	assert_int_equal(conc_pool_create(&p, &cfg), 0);
	conc_test_hold_one_worker(p);
	assert_int_equal(conc_pool_active(p), 1);
	for (int i = 0; i < 1000; i++)
		assert_int_equal(conc_pool_execute(p, noop, NULL), 0);
	assert_int_equal(conc_pool_queued(p), 1000);
	atomic_store(&conc_test_hold_gate, 1);
	assert_int_equal(conc_pool_wait(p), 0);
	assert_int_equal(conc_pool_queued(p), 0);
	assert_int_equal(conc_pool_destroy(p), 0);
	conc_test_watchdog_off();
}

struct bounded {
	conc_pool *p;
	unsigned long n;
	atomic_ulong pushed;
	int err;
};

static void *bounded_producer(void *arg)
{
	struct bounded *b = arg;
	for (unsigned long i = 0; i < b->n; i++) {
		if (conc_pool_execute(b->p, add_arg, (void *)1))
			b->err++;
		atomic_fetch_add(&b->pushed, 1);
	}
	return NULL;
}

static conc_pool *bq_pool;
static atomic_int bq_errors;
static atomic_ulong bq_done;

static void bq_spawner(void *arg)
{
	(void)arg;
	/* a task executing tasks is never held by max_queued */
	for (int i = 0; i < 500; i++)
		if (conc_pool_execute(bq_pool, add_arg, (void *)1))
			atomic_fetch_add(&bq_errors, 1);
	atomic_store(&bq_done, 1);
}

static void test_pool_max_queued(void **state)
{
	(void)state;
	conc_test_watchdog("max_queued", 60);
	conc_pool_config cfg = {.threads = 1, .max_queued = 64};
	assert_int_equal(conc_pool_create(&bq_pool, &cfg), 0);
	atomic_store(&sum, 0);
	conc_test_hold_one_worker(bq_pool);
	struct bounded b = {.p = bq_pool, .n = 1000};
	pthread_t t;
	assert_int_equal(pthread_create(&t, NULL, bounded_producer, &b), 0);
	spin_until(&b.pushed, 64);
	sleep_ms(50); /* give the producer time to overrun, if it would */
	assert_true(atomic_load(&b.pushed) <= 64);
	assert_true(conc_pool_queued(bq_pool) <= 64);
	atomic_store(&conc_test_hold_gate, 1);
	pthread_join(t, NULL);
	assert_int_equal(b.err, 0);
	assert_int_equal(conc_pool_wait(bq_pool), 0);
	assert_int_equal(atomic_load(&sum), 1000);

	/* tasks executing tasks past the bound */
	assert_int_equal(conc_pool_resize(bq_pool, 2), 0);
	conc_test_hold_one_worker(bq_pool);
	for (int i = 0; i < 63; i++) /* fill the bound */
		assert_int_equal(conc_pool_execute(bq_pool, noop, NULL), 0);
	atomic_store(&bq_done, 0);
	assert_int_equal(conc_pool_execute(bq_pool, bq_spawner, NULL), 0);
	spin_until(&bq_done, 1);
	atomic_store(&conc_test_hold_gate, 1);
	assert_int_equal(conc_pool_wait(bq_pool), 0);
	assert_int_equal(atomic_load(&bq_errors), 0);
	assert_int_equal(atomic_load(&sum), 1500);
	assert_int_equal(conc_pool_destroy(bq_pool), 0);
	conc_test_watchdog_off();
}

/* destroy runs every queued task; executes during destroy */
static conc_pool *dq_pool;
static atomic_int dq_outside_epipe, dq_inside_err;
static atomic_ulong dq_inner_ran;

static void dq_inner(void *arg)
{
	(void)arg;
	atomic_fetch_add(&dq_inner_ran, 1);
}

static void dq_first(void *arg)
{
	(void)arg;
	atomic_fetch_add(&conc_test_hold_in, 1);
	/* hold the pool until an outside execute has seen EPIPE */
	while (!atomic_load(&dq_outside_epipe))
		sched_yield();
	atomic_store(&dq_inside_err, conc_pool_execute(dq_pool, dq_inner, NULL));
}

static void *dq_destroyer(void *arg)
{
	(void)arg;
	return (void *)(intptr_t)conc_pool_destroy(dq_pool);
}

static void test_pool_destroy_full_queue(void **state)
{
	(void)state;
	conc_test_watchdog("destroy_full_queue", 60);
	conc_pool_config cfg = {.threads = 1};
	assert_int_equal(conc_pool_create(&dq_pool, &cfg), 0);
	atomic_store(&conc_test_hold_in, 0);
	atomic_store(&dq_outside_epipe, 0);
	atomic_store(&dq_inside_err, -1);
	atomic_store(&dq_inner_ran, 0);
	atomic_store(&sum, 0);
	assert_int_equal(conc_pool_execute(dq_pool, dq_first, NULL), 0);
	spin_until(&conc_test_hold_in, 1);
	unsigned long n = conc_test_iters(100000, 10);
	for (unsigned long i = 0; i < n; i++)
		assert_int_equal(conc_pool_execute(dq_pool, add_arg, (void *)1), 0);
	pthread_t t;
	assert_int_equal(pthread_create(&t, NULL, dq_destroyer, NULL), 0);
	/* destroy cannot finish while dq_first runs; keep executing until
	 * the close is seen */
	unsigned long extra = 0;
	int r;
	while ((r = conc_pool_execute(dq_pool, add_arg, (void *)1)) == 0)
		extra++;
	assert_int_equal(r, EPIPE);
	atomic_store(&dq_outside_epipe, 1);
	void *res;
	pthread_join(t, &res);
	assert_int_equal((intptr_t)res, 0);
	assert_int_equal(atomic_load(&sum), n + extra);
	assert_int_equal(atomic_load(&dq_inside_err), 0);
	assert_int_equal(atomic_load(&dq_inner_ran), 1);
	conc_test_watchdog_off();
}

/* ---- oversubscription ---------------------------------------------------------- */

static void test_pool_oversubscribed(void **state)
{
	(void)state;
	conc_test_watchdog("oversubscribed", 120);
	conc_pool *p;
	conc_pool_config cfg = {.threads = 16};
	assert_int_equal(conc_pool_create(&p, &cfg), 0);
	atomic_store(&sum, 0);
	unsigned long n = conc_test_iters(200000, 10);
	for (unsigned long i = 0; i < n; i++)
		assert_int_equal(conc_pool_execute(p, add_arg, (void *)(uintptr_t)i), 0);
	assert_int_equal(conc_pool_wait(p), 0);
	assert_int_equal(atomic_load(&sum), (unsigned long long)n * (n - 1) / 2);
	run_fanout(p, CONC_TEST_SANITIZED ? 12 : 16);
	assert_int_equal(conc_pool_destroy(p), 0);
	conc_test_watchdog_off();
}

/* ---- idle pool uses no CPU ------------------------------------------------------- */

#define IDLE_WORKERS 8
static clockid_t idle_clock[IDLE_WORKERS];
static atomic_int idle_clocks_ok;

static void record_cpu_clock(unsigned index, void *ctx)
{
	(void)ctx;
	if (index < IDLE_WORKERS &&
	    pthread_getcpuclockid(pthread_self(), &idle_clock[index]) == 0)
		atomic_fetch_add(&idle_clocks_ok, 1); /* seq_cst: publishes the clock id */
}

/* CPU time of the pool's workers alone: the process's own figure would
 * count sanitizer runtime threads and, under qemu-user, the emulator's. */
static double workers_cpu_seconds(void)
{
	double total = 0;
	for (unsigned i = 0; i < IDLE_WORKERS; i++) {
		struct timespec ts;
		assert_int_equal(clock_gettime(idle_clock[i], &ts), 0); /* measured, or fail */
		total += (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
	}
	return total;
}

static void test_pool_idle_uses_no_cpu(void **state)
{
	(void)state;
	conc_test_watchdog("idle_uses_no_cpu", 60);
	conc_pool *p;
	atomic_store(&idle_clocks_ok, 0);
	conc_pool_config cfg = {.threads = IDLE_WORKERS, .on_start = record_cpu_clock};
	assert_int_equal(conc_pool_create(&p, &cfg), 0);
	/* create returns after every on_start: each worker's clock is known */
	assert_int_equal(atomic_load(&idle_clocks_ok), IDLE_WORKERS);
	run_fanout(p, 10);
	/* Workers spin briefly after work, then park: wait until all are
	 * registered in the pool's sleep (a state, not a delay), then measure
	 * a quiet half second. */
	while (conc__pool_parked(p) != IDLE_WORKERS)
		sched_yield();
	double c0 = workers_cpu_seconds();
	sleep_ms(500); /* the measurement window, not a synchronisation */
	double used = workers_cpu_seconds() - c0;
	assert_int_equal(conc_pool_active(p), 0);
	assert_int_equal(conc_pool_destroy(p), 0);
	/* One spinning worker alone would use ~0.5 s in the window; parked
	 * workers use nothing (the futex call of the last to park may still
	 * be finishing: a few microseconds). */
	if (used >= 0.02)
		fprintf(stderr, "idle pool's workers used %.3f s CPU in 0.5 s\n", used);
	assert_true(used < 0.02);
	conc_test_watchdog_off();
}

/* ---- a new task wakes one sleeper -------------------------------------------------- */

#define WAKE_WORKERS 6
static atomic_long worker_tid[WAKE_WORKERS];

static void record_tid(unsigned index, void *ctx)
{
	(void)ctx;
	if (index < WAKE_WORKERS)
		atomic_store(&worker_tid[index], (long)syscall(SYS_gettid));
}

/* Voluntary context switches of one thread of this process (each futex
 * sleep adds one). */
static long voluntary_switches(long tid)
{
	char path[64], line[128];
	snprintf(path, sizeof path, "/proc/self/task/%ld/status", tid);
	FILE *f = fopen(path, "r");
	long v = -1;
	while (f && fgets(line, sizeof line, f))
		if (!strncmp(line, "voluntary_ctxt_switches:", 24))
			v = atol(line + 24);
	if (f)
		fclose(f);
	return v;
}

/* The state letter of one of our threads ('S': sleeping, 'R': running). */
static char thread_state(long tid)
{
	char path[64], buf[256];
	snprintf(path, sizeof path, "/proc/self/task/%ld/stat", tid);
	FILE *f = fopen(path, "r");
	if (!f)
		return '?';
	size_t n = fread(buf, 1, sizeof buf - 1, f);
	fclose(f);
	buf[n] = '\0';
	char *c = strrchr(buf, ')'); /* the name may hold spaces */
	return c && c[1] == ' ' ? c[2] : '?';
}

/* Until every listed worker sleeps in the pool's park: all n registered
 * there (the pool's own count) and each in state 'S' (in the kernel).  An
 * observed state, not a delay.  Both: 'S' alone could be another wait (an
 * emulator's or a sanitizer's lock), the count alone a worker between its
 * registration and its futex call. */
static void until_all_sleep(conc_pool *p, unsigned n)
{
	for (;;) {
		while (conc__pool_parked(p) != n)
			sched_yield();
		unsigned asleep = 0;
		for (unsigned i = 0; i < n; i++)
			asleep += atomic_load(&worker_tid[i]) &&
				  thread_state(atomic_load(&worker_tid[i])) == 'S';
		if (asleep == n && conc__pool_parked(p) == n)
			return;
		sched_yield();
	}
}

static void test_pool_wakes_one_sleeper(void **state)
{
	(void)state;
	conc_test_watchdog("wakes_one_sleeper", 60);
	conc_pool *p;
	conc_pool_config cfg = {.threads = WAKE_WORKERS, .on_start = record_tid};
	for (int i = 0; i < WAKE_WORKERS; i++)
		atomic_store(&worker_tid[i], 0);
	assert_int_equal(conc_pool_create(&p, &cfg), 0);
	/* One round first that is not counted: the workers' first search and
	 * sleep (and, under qemu-user, the first translation of that code)
	 * happen there, not in a counted round. */
	until_all_sleep(p, WAKE_WORKERS);
	atomic_store(&conc_done, 0);
	assert_int_equal(conc_pool_execute(p, conc_task, NULL), 0);
	spin_until(&conc_done, 1);
	int woken_total = 0, rounds = 5;
	for (int r = 0; r < rounds; r++) {
		until_all_sleep(p, WAKE_WORKERS); /* every worker searches, then parks */
		long before[WAKE_WORKERS];
		for (int i = 0; i < WAKE_WORKERS; i++)
			before[i] = voluntary_switches(atomic_load(&worker_tid[i]));
		atomic_store(&conc_done, 0);
		atomic_store(&running_max, 0);
		assert_int_equal(conc_pool_execute(p, conc_task, NULL), 0);
		spin_until(&conc_done, 1);
		until_all_sleep(p, WAKE_WORKERS); /* the woken worker parks again */
		int woken = 0;
		for (int i = 0; i < WAKE_WORKERS; i++)
			woken += voluntary_switches(atomic_load(&worker_tid[i])) != before[i];
		woken_total += woken;
	}
	assert_int_equal(conc_pool_destroy(p), 0);
	/* One task, one sleeper woken (a stray wake-up of the machine is
	 * allowed once over all rounds). */
	if (woken_total > rounds + 1 || woken_total < rounds)
		fprintf(stderr, "workers woken over %d single tasks: %d\n", rounds, woken_total);
	assert_true(woken_total >= rounds && woken_total <= rounds + 1);
	conc_test_watchdog_off();
}

/* ---- a batch taken from the injector does not hide work from sleepers --- */

static atomic_int late_flag;

static void wait_for_late(void *arg)
{
	(void)arg;
	while (!atomic_load(&late_flag))
		sched_yield();
}

static void set_late(void *arg)
{
	(void)arg;
	atomic_store(&late_flag, 1);
}

/*
 * Both workers asleep; four tasks arrive at once.  The first worker woken
 * takes them all in one batch and runs the first, which waits for the last:
 * the other worker must be woken to steal it, or the pool deadlocks (the
 * watchdog fails the test).
 */
static void test_pool_batch_wakes_a_thief(void **state)
{
	(void)state;
	conc_test_watchdog("batch_wakes_a_thief", 60);
	conc_pool *p;
	conc_pool_config cfg = {.threads = 2, .on_start = record_tid};
	for (int i = 0; i < 2; i++)
		atomic_store(&worker_tid[i], 0);
	assert_int_equal(conc_pool_create(&p, &cfg), 0);
	for (int round = 0; round < 20; round++) {
		until_all_sleep(p, 2);
		atomic_store(&late_flag, 0);
		assert_int_equal(conc_pool_execute(p, wait_for_late, NULL), 0);
		assert_int_equal(conc_pool_execute(p, noop, NULL), 0);
		assert_int_equal(conc_pool_execute(p, noop, NULL), 0);
		assert_int_equal(conc_pool_execute(p, set_late, NULL), 0);
		assert_int_equal(conc_pool_wait(p), 0);
		assert_int_equal(atomic_load(&late_flag), 1);
	}
	assert_int_equal(conc_pool_destroy(p), 0);
	conc_test_watchdog_off();
}

/* ---- the global pool, fork ---------------------------------------------------------- */

static int child_sum_ok(void)
{
	conc_pool *g = conc_pool_global();
	if (!g)
		return 0;
	atomic_store(&sum, 0);
	for (int i = 0; i < 1000; i++)
		if (conc_pool_execute(g, add_arg, (void *)(uintptr_t)i))
			return 0;
	if (conc_pool_wait(g))
		return 0;
	return atomic_load(&sum) == 999ull * 1000 / 2;
}

/* In a child: set CONC_NUM_THREADS, return whether the global pool has
 * `want` threads and works. */
static int fork_global(const char *env, unsigned want)
{
	pid_t pid = fork();
	if (pid < 0)
		return 0;
	if (pid == 0) {
		if (env)
			setenv("CONC_NUM_THREADS", env, 1);
		else
			unsetenv("CONC_NUM_THREADS");
		conc_pool *g = conc_pool_global();
		int ok = g && conc_pool_threads(g) == want && child_sum_ok();
		_exit(ok ? 0 : 1);
	}
	int st;
	if (waitpid(pid, &st, 0) != pid)
		return 0;
	return WIFEXITED(st) && WEXITSTATUS(st) == 0;
}

static void test_pool_global_and_fork(void **state)
{
	(void)state;
	conc_test_watchdog("global_and_fork", 120);
	/* first use in this process: sized by the environment */
	setenv("CONC_NUM_THREADS", "3", 1);
	conc_pool *g = conc_pool_global();
	assert_non_null(g);
	assert_int_equal(conc_pool_threads(g), 3);
	assert_int_equal(child_sum_ok(), 1);
	unsetenv("CONC_NUM_THREADS");
	if (CONC_TEST_TSAN) {
		/* TSan does not support threads in the child of a threaded
		 * fork. */
		conc_test_watchdog_off();
		return;
	}
	unsigned cpus = conc_cpu_count();
	assert_true(fork_global(NULL, cpus));
	assert_true(fork_global("2", 2));
	assert_true(fork_global("1024", 1024));
	assert_true(fork_global("0", cpus));
	assert_true(fork_global("1025", cpus));
	assert_true(fork_global("abc", cpus));
	assert_true(fork_global(" 2", cpus));
	assert_true(fork_global("+2", cpus));
	assert_true(fork_global("2x", cpus));
	assert_true(fork_global("", cpus));
	/* the parent's global pool still works after the forks */
	assert_int_equal(child_sum_ok(), 1);
	conc_test_watchdog_off();
}

/* ---- failure injection ---------------------------------------------------------------- */

#if defined(CONC_FAULT_HOOKS) && CONC_FAULT_HOOKS
static void test_pool_create_failures(void **state)
{
	(void)state;
	conc_test_watchdog("create_failures", 120);
	conc_pool_config cfg = {.threads = 4, .on_start = on_start, .on_stop = on_stop};
	conc_pool *p;
	/* thread k fails: EAGAIN, no hook ran, nothing leaked (ASan) */
	for (long k = 1; k <= 4; k++) {
		reset_hooks();
		conc__fault_fail_thread_at(k);
		p = (conc_pool *)&cfg;
		assert_int_equal(conc_pool_create(&p, &cfg), EAGAIN);
		assert_ptr_equal(p, (conc_pool *)&cfg); /* untouched */
		conc__fault_reset();
		for (int i = 0; i < MAXW; i++) {
			assert_int_equal(atomic_load(&hk.starts[i]), 0);
			assert_int_equal(atomic_load(&hk.stops[i]), 0);
		}
	}
	/* allocation k fails: ENOMEM, until create needs no more */
	long k = 1;
	for (;; k++) {
		conc__fault_fail_alloc_at(k);
		int r = conc_pool_create(&p, &cfg);
		conc__fault_reset();
		if (r == 0)
			break;
		assert_int_equal(r, ENOMEM);
	}
	assert_true(k > 3);
	assert_int_equal(conc_pool_destroy(p), 0);

	/* resize: EAGAIN leaves the pool as it was */
	reset_hooks();
	cfg.threads = 2;
	assert_int_equal(conc_pool_create(&p, &cfg), 0);
	for (long j = 1; j <= 3; j++) {
		conc__fault_fail_thread_at(j);
		assert_int_equal(conc_pool_resize(p, 5), EAGAIN);
		conc__fault_reset();
		assert_int_equal(conc_pool_threads(p), 2);
		for (int i = 0; i < MAXW; i++)
			assert_int_equal(atomic_load(&hk.starts[i]), i < 2 ? 1 : 0);
	}
	assert_int_equal(conc_pool_resize(p, 5), 0);
	assert_int_equal(conc_pool_threads(p), 5);
	atomic_store(&sum, 0);
	for (int i = 0; i < 1000; i++)
		assert_int_equal(conc_pool_execute(p, add_arg, (void *)1), 0);
	assert_int_equal(conc_pool_wait(p), 0);
	assert_int_equal(atomic_load(&sum), 1000);
	assert_int_equal(conc_pool_destroy(p), 0);
	conc_test_watchdog_off();
}

/* Steady state: bursts of tasks, outside and from tasks, allocate nothing
 * once the pool has warmed up. */
static conc_pool *ss_pool;

static void ss_spawner(void *arg)
{
	for (int i = 0; i < 200; i++)
		conc_pool_execute(ss_pool, add_arg, arg);
}

/* Pushes more tasks into its worker's own deque than the rounds below can
 * (5 spawners x 200: the fair turn may start another spawner before a
 * worker's deque is drained), so that its buffer has grown for good.  Two
 * run at once, one per worker, taking turns: the one not pushing spins in
 * its task, so nobody steals from the deque being filled. */
static atomic_ulong ss_tickets, ss_turn;

static void ss_deque_warmer(void *arg)
{
	(void)arg;
	unsigned long t = atomic_fetch_add(&ss_tickets, 1);
	spin_until(&ss_turn, t);
	for (int i = 0; i < 1100; i++)
		conc_pool_execute(ss_pool, noop, NULL);
	atomic_fetch_add(&ss_turn, 1);
	while (!atomic_load(&conc_test_hold_gate))
		sched_yield();
}

static void test_pool_no_malloc_in_steady_state(void **state)
{
	(void)state;
	conc_test_watchdog("no_malloc_in_steady_state", 60);
	conc_pool_config cfg = {.threads = 2};
	assert_int_equal(conc_pool_create(&ss_pool, &cfg), 0);
	/* Warm up to the largest backlog the rounds below can have: both
	 * workers held while 3000 tasks queue (12 blocks, all kept as spares
	 * afterwards). */
	atomic_store(&conc_test_hold_gate, 0);
	atomic_store(&conc_test_hold_in, 0);
	for (int i = 0; i < 2; i++)
		assert_int_equal(conc_pool_execute(ss_pool, conc_test_hold_task, NULL), 0);
	spin_until(&conc_test_hold_in, 2);
	for (int i = 0; i < 3000; i++)
		assert_int_equal(conc_pool_execute(ss_pool, noop, NULL), 0);
	atomic_store(&conc_test_hold_gate, 1);
	assert_int_equal(conc_pool_wait(ss_pool), 0);
	/* And each worker's deque (see ss_deque_warmer). */
	atomic_store(&conc_test_hold_gate, 0);
	atomic_store(&ss_tickets, 0);
	atomic_store(&ss_turn, 0);
	for (int i = 0; i < 2; i++)
		assert_int_equal(conc_pool_execute(ss_pool, ss_deque_warmer, NULL), 0);
	spin_until(&ss_turn, 2);
	atomic_store(&conc_test_hold_gate, 1);
	assert_int_equal(conc_pool_wait(ss_pool), 0);
	atomic_store(&sum, 0);
	long calls = 0;
	for (int round = 0; round < 200; round++) {
		if (round == 50) {
			conc__fault_reset();
			calls = conc__fault_alloc_calls();
		}
		for (int i = 0; i < 2000; i++)
			assert_int_equal(conc_pool_execute(ss_pool, add_arg, (void *)1), 0);
		for (int i = 0; i < 5; i++)
			assert_int_equal(conc_pool_execute(ss_pool, ss_spawner, (void *)1), 0);
		assert_int_equal(conc_pool_wait(ss_pool), 0);
	}
	assert_int_equal(conc__fault_alloc_calls() - calls, 0);
	assert_int_equal(atomic_load(&sum), 200ull * 3000);
	assert_int_equal(conc_pool_destroy(ss_pool), 0);
	conc_test_watchdog_off();
}

static void test_pool_execute_enomem(void **state)
{
	(void)state;
	conc_test_watchdog("execute_enomem", 60);
	conc_pool *p;
	conc_pool_config cfg = {.threads = 1};
	assert_int_equal(conc_pool_create(&p, &cfg), 0);
	atomic_store(&sum, 0);
	conc_test_hold_one_worker(p);
	/* Nothing is consumed, so the injector must allocate blocks: fail
	 * each of the first few allocations in turn. */
	unsigned long ok = 0, failed = 0;
	for (long k = 1; k <= 3; k++) {
		conc__fault_fail_alloc_at(1);
		int r;
		while ((r = conc_pool_execute(p, add_arg, (void *)1)) == 0)
			ok++;
		conc__fault_reset();
		assert_int_equal(r, ENOMEM);
		failed++;
		assert_int_equal(conc_pool_queued(p), ok);
	}
	for (int i = 0; i < 300; i++, ok++)
		assert_int_equal(conc_pool_execute(p, add_arg, (void *)1), 0);
	atomic_store(&conc_test_hold_gate, 1);
	assert_int_equal(conc_pool_wait(p), 0);
	assert_int_equal(atomic_load(&sum), ok); /* each accepted task ran once */
	assert_int_equal(failed, 3);
	assert_int_equal(conc_pool_destroy(p), 0);
	conc_test_watchdog_off();
}
#endif

/* ---- the internal API for conc_join (issue 7) ---------------------------------------- */

struct ijoin {
	conc_pool *p;
	atomic_int b_done;
	int inline_hits, errors;
	atomic_ulong leaves, finished;
};

static void ij_leaf(void *arg)
{
	struct ijoin *j = arg;
	atomic_fetch_add(&j->leaves, 1);
}

static void ij_b(void *arg)
{
	struct ijoin *j = arg;
	ij_leaf(j);
	atomic_store_explicit(&j->b_done, 1, memory_order_release);
}

static void ij_task(void *arg)
{
	struct ijoin *j = arg;
	conc__worker *w = conc__pool_current(j->p);
	if (!conc__pool_in_task(j->p)) {
		j->errors++;
		return;
	}
	if (!w) { /* run by a helper (the thread in conc_pool_wait) */
		ij_leaf(j);
		ij_b(j);
		return;
	}
	if (conc__pool_push_local(w, ij_b, j)) {
		j->errors++;
		return;
	}
	ij_leaf(j); /* "a" */
	conc__task t;
	if (conc__pool_pop_local(w, &t)) {
		if (t.fn == ij_b && t.arg == j)
			j->inline_hits++;
		conc__pool_run(j->p, w, t);
	}
	while (!atomic_load_explicit(&j->b_done, memory_order_acquire))
		if (!conc__pool_run_one(j->p, w))
			sched_yield();
	atomic_fetch_add(&j->finished, 1);
}

static void test_pool_internal_join_api(void **state)
{
	(void)state;
	conc_test_watchdog("internal_join_api", 60);
	struct ijoin j = {0};
	conc_pool_config cfg = {.threads = 2};
	assert_int_equal(conc_pool_create(&j.p, &cfg), 0);
	assert_null(conc__pool_current(j.p));
	assert_false(conc__pool_in_task(j.p));
	for (int i = 0; i < 100; i++) {
		atomic_store(&j.b_done, 0);
		assert_int_equal(conc_pool_execute(j.p, ij_task, &j), 0);
		/* not conc_pool_wait: the caller would run the task itself */
		spin_until(&j.finished, (unsigned long)i + 1);
		assert_int_equal(atomic_load(&j.b_done), 1);
	}
	assert_int_equal(j.errors, 0);
	assert_int_equal(atomic_load(&j.leaves), 200);
	assert_true(j.inline_hits > 0);
	assert_int_equal(conc__pool_push_shared(j.p, ij_leaf, &j), 0);
	assert_int_equal(conc_pool_wait(j.p), 0);
	assert_int_equal(atomic_load(&j.leaves), 201);
	assert_int_equal(conc_pool_destroy(j.p), 0);
	conc_test_watchdog_off();
}

/* ---- issue 15: a task that returns pinned ------------------------------------ */

static conc_epoch *leak_dom;
static atomic_int leak_after; /* 1: the next task found the worker unpinned; 2: pinned */

/* Pins a private domain and the global one and returns without unpinning. */
static void leak_pins(void *arg)
{
	(void)arg;
	conc_epoch_pin(leak_dom);
	conc_epoch_pin(leak_dom); /* nested: the whole depth must go */
	conc_epoch_pin(conc_epoch_global());
}

static void check_unpinned(void *arg)
{
	(void)arg;
	bool pinned = conc_epoch_is_pinned(leak_dom) ||
		      conc_epoch_is_pinned(conc_epoch_global());
	atomic_store(&leak_after, pinned ? 2 : 1);
}

static void count_free(conc_epoch_node *n)
{
	(void)n;
}

/* The worker must not stay pinned after the task: the domain would stall,
 * barrier would hang and destroy would say EBUSY for ever.  One worker, so
 * the second task runs where the first left its pins. */
static void test_pool_task_left_pinned(void **state)
{
	(void)state;
	conc_test_watchdog(__func__, 60);
	assert_int_equal(conc_epoch_create(&leak_dom), 0);
	conc_pool *p;
	conc_pool_config cfg = {.threads = 1};
	assert_int_equal(conc_pool_create(&p, &cfg), 0);
	atomic_store(&leak_after, 0);
	assert_int_equal(conc_pool_execute(p, leak_pins, NULL), 0);
	assert_int_equal(conc_pool_wait(p), 0);
	assert_int_equal(conc_pool_execute(p, check_unpinned, NULL), 0);
	assert_int_equal(conc_pool_wait(p), 0);
	assert_int_equal(atomic_load(&leak_after), 1);
	/* Something to wait for: barrier must advance past the worker. */
	conc_epoch_node n;
	conc_epoch_retire(leak_dom, &n, count_free);
	assert_int_equal(conc_epoch_barrier(leak_dom), 0);
	assert_int_equal(conc_epoch_barrier(conc_epoch_global()), 0);
	assert_int_equal(conc_epoch_destroy(leak_dom), 0);
	assert_int_equal(conc_pool_destroy(p), 0);
	conc_test_watchdog_off();
}

/* ---- issue 15: a pool made before fork() ------------------------------------- */

static void add_one(void *arg)
{
	atomic_fetch_add((atomic_int *)arg, 1);
}

/* In the child the parent's pool has no workers: its calls refuse at once
 * (EPIPE) instead of accepting work that never runs, and destroy frees it
 * without joining threads that do not exist there.  The child reports by
 * its exit status (the step that failed); its alarm turns a hang into a
 * signal the parent sees. */
static void test_pool_fork_child_refuses(void **state)
{
	(void)state;
	conc_test_watchdog(__func__, 60);
	conc_pool *p;
	conc_pool_config cfg = {.threads = 2};
	assert_int_equal(conc_pool_create(&p, &cfg), 0);
	atomic_int ran = 0;
	for (int i = 0; i < 100; i++)
		assert_int_equal(conc_pool_execute(p, add_one, &ran), 0);
	assert_int_equal(conc_pool_wait(p), 0);
	assert_int_equal(atomic_load(&ran), 100);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		alarm(20);
		if (conc_pool_execute(p, add_one, &ran) != EPIPE)
			_exit(1);
		if (conc_pool_wait(p) != EPIPE)
			_exit(2);
		if (conc_pool_resize(p, 3) != EPIPE)
			_exit(3);
		if (conc_pool_execute(p, NULL, NULL) != EINVAL)
			_exit(4);
		if (conc_pool_destroy(p) != 0)
			_exit(5);
		if (atomic_load(&ran) != 100)
			_exit(6);
#if !CONC_TEST_TSAN
		/* A pool made in the child works (TSan does not support
		 * threads after a threaded fork). */
		conc_pool *q;
		if (conc_pool_create(&q, &cfg) != 0)
			_exit(7);
		if (conc_pool_execute(q, add_one, &ran) != 0 || conc_pool_wait(q) != 0 ||
		    atomic_load(&ran) != 101 || conc_pool_destroy(q) != 0)
			_exit(8);
#endif
		_exit(0);
	}
	int status = 0;
	assert_int_equal(waitpid(pid, &status, 0), pid);
	if (WIFSIGNALED(status))
		fail_msg("the child hung or crashed (signal %d)", WTERMSIG(status));
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
	/* The parent's pool is untouched. */
	assert_int_equal(conc_pool_execute(p, add_one, &ran), 0);
	assert_int_equal(conc_pool_wait(p), 0);
	assert_int_equal(atomic_load(&ran), 101);
	assert_int_equal(conc_pool_destroy(p), 0);
	conc_test_watchdog_off();
}

/* ---- issue 15: the queries after wait ------------------------------------------ */

static void child_task(void *arg)
{
	atomic_fetch_add((atomic_ulong *)arg, 1);
}

static conc_pool *kids_pool;

static void parent_task(void *arg)
{
	for (int i = 0; i < 4; i++)
		conc_pool_execute(kids_pool, child_task, arg);
	atomic_fetch_add((atomic_ulong *)arg, 1);
}

/* DESIGN.md: once wait has returned and nothing else runs, queued and
 * active read 0 - also right after tasks that executed children. */
static void test_pool_queries_zero_after_wait(void **state)
{
	(void)state;
	conc_test_watchdog(__func__, 120);
	/* The window is a few hundred instructions wide: about 1 in 2000
	 * rounds showed it on 2 cores before the fix. */
	unsigned long reps = conc_test_iters(20000, 10);
	for (unsigned threads = 1; threads <= 4; threads++) {
		conc_pool_config cfg = {.threads = threads};
		assert_int_equal(conc_pool_create(&kids_pool, &cfg), 0);
		atomic_ulong ran = 0;
		unsigned long bad_active = 0, bad_queued = 0;
		for (unsigned long r = 0; r < reps; r++) {
			for (unsigned i = 0; i < threads; i++)
				assert_int_equal(conc_pool_execute(kids_pool, parent_task, &ran), 0);
			assert_int_equal(conc_pool_wait(kids_pool), 0);
			bad_active += conc_pool_active(kids_pool) != 0;
			bad_queued += conc_pool_queued(kids_pool) != 0;
		}
		assert_int_equal(atomic_load(&ran), reps * threads * 5);
		if (bad_active || bad_queued)
			fail_msg("%u threads: active non-zero after wait %lu times, queued %lu times (of %lu)",
				 threads, bad_active, bad_queued, reps);
		assert_int_equal(conc_pool_destroy(kids_pool), 0);
	}
	conc_test_watchdog_off();
}

/* ---- issue 22: destroy against callers already inside the pool -------------- */

#if defined(CONC_FAULT_HOOKS) && CONC_FAULT_HOOKS
/* A thread of these tests: tags itself, runs one call, records the result. */
struct caller {
	conc_pool *p;
	int tag;
	int what; /* 0 wait, 1 execute, 2 destroy */
	int ret;
	atomic_int done;
};

static void *caller_main(void *arg)
{
	struct caller *c = arg;
	conc_test_tag(c->tag);
	switch (c->what) {
	case 0: c->ret = conc_pool_wait(c->p); break;
	case 1: c->ret = conc_pool_execute(c->p, noop, NULL); break;
	default: c->ret = conc_pool_destroy(c->p); break;
	}
	atomic_store(&c->done, 1);
	conc_test_points_signal();
	return NULL;
}

struct race {
	int paused;  /* the watch that pauses the caller inside the pool */
	int waiting; /* destroy's watch: it waits for the callers inside */
	int reached; /* a watch the caller passes before the pause */
	struct caller *d;
};

static int race_reached(void *arg)
{
	struct race *r = arg;
	return conc_test_watch_hits(r->reached) > 0;
}

static int race_paused(void *arg)
{
	struct race *r = arg;
	return conc_test_watch_paused(r->paused);
}

/* The caller is paused, and destroy has either returned (the bug) or is
 * waiting for it (the fix). */
static int race_decided(void *arg)
{
	struct race *r = arg;
	return conc_test_watch_paused(r->paused) &&
	       (atomic_load(&r->d->done) || conc_test_watch_hits(r->waiting) > 0);
}

/*
 * Issue 22, fault 1: threads blocked in conc_pool_wait when destroy is
 * called.  The waiter is paused right after its wake-up (test point
 * pool.wait.woken) - the window in which destroy used to free the pool
 * under it.  Destroy must not return while the waiter is still inside; the
 * waiter then returns 0 (its tasks finished), and destroy completes.
 */
static void test_pool_destroy_waits_for_waiters(void **state)
{
	(void)state;
	conc_test_watchdog("destroy_waits_for_waiters", 60);
	conc_pool *p;
	conc_pool_config cfg = {.threads = 1};
	assert_int_equal(conc_pool_create(&p, &cfg), 0);
	conc_test_points_start();
	struct caller w = {.p = p, .tag = 1, .what = 0};
	struct caller d = {.p = p, .tag = 2, .what = 2};
	struct race r = {.paused = conc_test_watch("pool.wait.woken", 1, 1),
			 .waiting = conc_test_watch("pool.destroy.callers", 2, 0),
			 .reached = conc_test_watch("pool.wait.park", 1, 0),
			 .d = &d};
	conc_test_hold_one_worker(p);
	pthread_t tw, td;
	assert_int_equal(pthread_create(&tw, NULL, caller_main, &w), 0);
	assert_true(conc_test_points_wait(race_reached, &r, 30)); /* W sleeps in wait */
	assert_int_equal(pthread_create(&td, NULL, caller_main, &d), 0);
	atomic_store(&conc_test_hold_gate, 1); /* the last task ends: W and destroy wake */
	assert_true(conc_test_points_wait(race_decided, &r, 30));
	if (atomic_load(&d.done))
		fail_msg("conc_pool_destroy returned (freed the pool) while a thread was still inside conc_pool_wait");
	conc_test_watch_release(r.paused);
	pthread_join(tw, NULL);
	pthread_join(td, NULL);
	conc_test_points_stop();
	assert_int_equal(w.ret, 0);
	assert_int_equal(d.ret, 0);
	conc_test_watchdog_off();
}

/*
 * Issue 22, fault 2: an executor held by max_queued gets room and is
 * paused before it pushes (test point pool.room.got).  Destroy must wait
 * for it: its task is then accepted and runs (0), or refused (EPIPE) - but
 * destroy never returns while the executor still has to touch the pool.
 */
static void test_pool_destroy_waits_for_held_executor(void **state)
{
	(void)state;
	conc_test_watchdog("destroy_waits_for_held_executor", 60);
	conc_pool *p;
	conc_pool_config cfg = {.threads = 1, .max_queued = 1};
	assert_int_equal(conc_pool_create(&p, &cfg), 0);
	conc_test_points_start();
	struct caller e = {.p = p, .tag = 1, .what = 1};
	struct caller d = {.p = p, .tag = 2, .what = 2};
	struct race r = {.paused = conc_test_watch("pool.room.got", 1, 1),
			 .waiting = conc_test_watch("pool.destroy.callers", 2, 0),
			 .reached = conc_test_watch("pool.room.park", 1, 0),
			 .d = &d};
	conc_test_hold_one_worker(p);
	assert_int_equal(conc_pool_execute(p, noop, NULL), 0); /* the bound is full */
	pthread_t te, td;
	assert_int_equal(pthread_create(&te, NULL, caller_main, &e), 0);
	assert_true(conc_test_points_wait(race_reached, &r, 30)); /* E is held */
	atomic_store(&conc_test_hold_gate, 1); /* room: E wakes, and pauses before its push */
	assert_true(conc_test_points_wait(race_paused, &r, 30));
	assert_int_equal(pthread_create(&td, NULL, caller_main, &d), 0);
	assert_true(conc_test_points_wait(race_decided, &r, 30));
	if (atomic_load(&d.done))
		fail_msg("conc_pool_destroy returned (freed the pool) while an executor held by max_queued was still inside");
	conc_test_watch_release(r.paused);
	pthread_join(te, NULL);
	pthread_join(td, NULL);
	conc_test_points_stop();
	assert_true(e.ret == 0 || e.ret == EPIPE);
	assert_int_equal(d.ret, 0);
	conc_test_watchdog_off();
}

/* ---- issue 22, fault 3: fork while the global pool is being created ------- */

static void count_ran(void *arg)
{
	atomic_fetch_add_explicit((atomic_int *)arg, 1, memory_order_relaxed);
}

/* 0, or the step that failed: conc_pool_global, execute, wait. */
static int use_global_pool(conc_pool **out)
{
	atomic_int ran = 0;
	conc_pool *p = conc_pool_global();
	if (out)
		*out = p;
	if (!p)
		return 1;
	if (conc_pool_execute(p, count_ran, &ran) != 0)
		return 2;
	if (conc_pool_wait(p) != 0 || atomic_load(&ran) != 1)
		return 3;
	return 0;
}

enum { FORK_CREATOR = 1, FORK_FORKER = 2 };

struct fork_race {
	int creating; /* pauses the creator inside conc_pool_global */
	int prepared; /* the forker passed the epoch's prepare */
	conc_pool *p; /* the creator's results */
	int ret;
};

static void *fork_race_creator(void *arg)
{
	struct fork_race *r = arg;
	conc_test_tag(FORK_CREATOR);
	r->ret = use_global_pool(&r->p);
	return NULL;
}

static int fork_race_paused(void *arg)
{
	struct fork_race *r = arg;
	return conc_test_watch_paused(r->creating);
}

static int fork_race_prepared(void *arg)
{
	struct fork_race *r = arg;
	return conc_test_watch_hits(r->prepared) > 0;
}

/* Lets the creator go once the forker, inside fork(), holds registry_lock:
 * nobody else can, the forker being stuck in fork() until it is over. */
static void *fork_race_releaser(void *arg)
{
	struct fork_race *r = arg;
	int ok = conc_test_points_wait(fork_race_prepared, r, 60);
	conc_test_watch_release(r->creating);
	return ok ? arg : NULL;
}

/* The child of the test: 0, or the step that went wrong.  No cmocka
 * asserts here (the child is a copy of the test; _exit with the step). */
static int fork_race_child(void)
{
	/* The epoch's first use registers its fork handlers, so that fork's
	 * prepare passes epoch.fork_prepare (a program with a pool has done
	 * this long before; the test may run alone). */
	conc_epoch *e;
	if (conc_epoch_create(&e) != 0)
		return 10;
	conc_epoch_destroy(e);
	conc_test_points_start();
	conc_test_tag(FORK_FORKER);
	struct fork_race r = {
		.creating = conc_test_watch("pool.global.creating", FORK_CREATOR, 1),
		.prepared = conc_test_watch("epoch.fork_prepare", FORK_FORKER, 0),
	};
	pthread_t tc, tr;
	if (pthread_create(&tc, NULL, fork_race_creator, &r) != 0)
		return 11;
	/* the creator holds global_lock, its pool and epoch domain unmade */
	if (!conc_test_points_wait(fork_race_paused, &r, 60))
		return 12;
	if (pthread_create(&tr, NULL, fork_race_releaser, &r) != 0)
		return 13;
	fflush(NULL);
	pid_t g = fork();
	if (g < 0)
		return 14;
	if (g == 0) {
		/* The grandchild: the creator is not here, and the hook's lock
		 * may have been copied held (the releaser): no more points. */
		conc__test_set_hook(NULL);
		_exit(use_global_pool(NULL));
	}
	void *ok;
	pthread_join(tr, &ok);
	pthread_join(tc, NULL);
	conc_test_points_stop();
	if (!ok)
		return 15; /* fork never reached the epoch's prepare */
	if (r.ret)
		return 20 + r.ret;
	if (conc_pool_global() != r.p)
		return 16;
	int status = 0;
	bool in_san = false;
	int rc = conc_test_wait_child(g, 10000, &status, &in_san);
	if (rc == ETIMEDOUT)
		return in_san ? 50 : 30;
	if (rc != 0 || !WIFEXITED(status))
		return 31;
	return WEXITSTATUS(status) ? 40 + WEXITSTATUS(status) : 0;
}

/*
 * Issue 22, fault 3: fork() while another thread creates the global pool.
 * conc_pool_global() holds global_lock while it creates the pool, whose
 * epoch domain takes registry_lock; fork's prepare used to take
 * registry_lock (the epoch's handler) and then global_lock (the pool's, run
 * after it when the pool registered first), so the two deadlocked.
 *
 * In a fork child (where the global pool does not exist yet: the parent's
 * is forgotten) the creator C is paused at pool.global.creating, holding
 * global_lock; the child's main thread forks; C is let go once that fork
 * holds registry_lock (epoch.fork_prepare), so C then waits for the fork
 * while the fork's remaining prepare handlers run - the interleaving of the
 * deadlock, every run.  Both must finish: C's pool runs a task, and the
 * grandchild creates its own global pool and runs a task.  The parent waits
 * for the child with a deadline (a hang is killed and fails the test).
 * Skipped under TSan: C and the pools' workers are threads started in the
 * child of a threaded fork, which TSan does not support.
 */
static void test_pool_global_create_during_fork(void **state)
{
	(void)state;
	if (CONC_TEST_TSAN) {
		print_message("pool: global_create_during_fork skipped under TSan (no thread "
			      "may start in the child of a threaded fork there)\n");
		skip();
	}
	conc_test_watchdog("global_create_during_fork", 60);
	fflush(NULL);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0)
		_exit(fork_race_child());
	int status = 0;
	bool in_san = false;
	int rc = conc_test_wait_child(pid, 20000, &status, &in_san);
	conc_test_watchdog_off();
	if ((rc == ETIMEDOUT && in_san) ||
	    (rc == 0 && WIFEXITED(status) && WEXITSTATUS(status) == 50)) {
		/* see conc_test_wait_child: the sanitizer's own locks */
		print_message("pool: global_create_during_fork: a child hung inside the "
			      "sanitizer runtime's locks; not counted\n");
		skip();
	}
	if (rc == ETIMEDOUT)
		fail_msg("fork and the global pool's creation deadlocked (the child hung)");
	assert_int_equal(rc, 0);
	if (WIFSIGNALED(status))
		fail_msg("the child died of signal %d", WTERMSIG(status));
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
}
#endif

/* ---- issue 22, fault 6: outside tasks are not starved --------------------- */

#define STARVE_WORKERS 2
static conc_pool *starve_pool;
static _Thread_local int starve_index = -1;
static atomic_ulong starve_requeues[STARVE_WORKERS];
static atomic_ulong starve_at[STARVE_WORKERS];
static atomic_ulong starve_base[STARVE_WORKERS];
static atomic_int starve_flag, starve_gave_up, starve_armed;
static unsigned long starve_cap;

static void starve_start(unsigned index, void *ctx)
{
	(void)ctx;
	starve_index = (int)index;
}

/* Re-executes itself (on its worker's deque) until the outside task set
 * the flag, or until the cap (the starvation the test looks for).  The cap
 * counts only requeues after the outside task was queued (armed): before
 * that, a loaded machine may leave one worker asleep for a while with both
 * self tasks in the other's deque, which is not what this test measures
 * (CI saw that under clang-asan with the cap counted from the start). */
static void self_requeue(void *arg)
{
	if (atomic_load(&starve_flag))
		return;
	unsigned long n = atomic_fetch_add(&starve_requeues[starve_index], 1) + 1;
	if (atomic_load(&starve_armed) &&
	    n - atomic_load(&starve_base[starve_index]) >= starve_cap) {
		atomic_store(&starve_gave_up, 1);
		return;
	}
	if (conc_pool_execute(starve_pool, self_requeue, arg) != 0)
		atomic_store(&starve_gave_up, 2);
}

static void outside_task(void *arg)
{
	(void)arg;
	for (int i = 0; i < STARVE_WORKERS; i++)
		atomic_store(&starve_at[i], atomic_load(&starve_requeues[i]));
	atomic_store(&starve_flag, 1);
}

/*
 * One self-re-executing task per worker; then a task from outside.  It must
 * start within a bounded number of requeues (conc/pool.h's fairness: a
 * worker takes the shared queue's oldest task at least once every
 * CONC_POOL_FAIR_EVERY tasks it starts).  Before the fix a worker read the
 * injector only when its own deque was empty: the outside task never ran
 * (the self tasks give up at the cap, 10^6 requeues each).
 */
static void test_pool_outside_task_not_starved(void **state)
{
	(void)state;
	conc_test_watchdog("outside_task_not_starved", 120);
	starve_cap = conc_test_iters(1000000, 10);
	atomic_store(&starve_flag, 0);
	atomic_store(&starve_gave_up, 0);
	atomic_store(&starve_armed, 0);
	for (int i = 0; i < STARVE_WORKERS; i++)
		atomic_store(&starve_requeues[i], 0);
	conc_pool_config cfg = {.threads = STARVE_WORKERS, .on_start = starve_start};
	assert_int_equal(conc_pool_create(&starve_pool, &cfg), 0);
	for (int i = 0; i < STARVE_WORKERS; i++)
		assert_int_equal(conc_pool_execute(starve_pool, self_requeue, NULL), 0);
	/* both workers busy with one self task each (the watchdog bounds a
	 * worker that never gets one) */
	for (int i = 0; i < STARVE_WORKERS; i++)
		while (atomic_load(&starve_requeues[i]) < 100 && !atomic_load(&starve_gave_up))
			sched_yield();
	unsigned long base[STARVE_WORKERS];
	for (int i = 0; i < STARVE_WORKERS; i++) {
		base[i] = atomic_load(&starve_requeues[i]);
		atomic_store(&starve_base[i], base[i]);
	}
	atomic_store(&starve_armed, 1);
	assert_int_equal(conc_pool_execute(starve_pool, outside_task, NULL), 0);
	/* The bound counts from the task being queued, which is before the
	 * execute returns: a count taken here (not before the call, when a
	 * loaded machine may leave this thread off its CPU for milliseconds
	 * while the workers requeue thousands of times: CI saw 3,560 under
	 * TSan) is the bound's own start, or later.  A task that started
	 * before it started within the bound. */
	unsigned long queued[STARVE_WORKERS];
	for (int i = 0; i < STARVE_WORKERS; i++)
		queued[i] = atomic_load(&starve_requeues[i]);
	assert_int_equal(conc_pool_wait(starve_pool), 0);
	unsigned long least = ~0ul;
	for (int i = 0; i < STARVE_WORKERS; i++) {
		unsigned long at = atomic_load(&starve_at[i]);
		unsigned long d = at > queued[i] ? at - queued[i] : 0;
		least = d < least ? d : least;
	}
	printf("starvation: outside task started after %lu requeues once queued (the fewer of the "
	       "two workers; %lu, %lu since the call to execute; bound %u; gave up: %d)\n", least,
	       atomic_load(&starve_at[0]) - base[0], atomic_load(&starve_at[1]) - base[1],
	       2 * CONC_POOL_FAIR_EVERY, atomic_load(&starve_gave_up));
	assert_int_equal(conc_pool_destroy(starve_pool), 0);
	assert_int_equal(atomic_load(&starve_gave_up), 0);
	assert_true(least <= 2 * CONC_POOL_FAIR_EVERY);
	conc_test_watchdog_off();
}

/* ---- sleep and wake, many times (issue 20) ---------------------------------------- */

#define SW_WORKERS 3
#define SW_PUSHERS 2
static conc_pool *sw_pool;
static atomic_ullong sw_sum, sw_count;
static atomic_int sw_errors; /* failed executes (asserted on the main thread) */

/* A task of round r: adds its id; every third one executes a child from
 * inside (push_local's wake: the deque path). */
static void sw_task(void *arg)
{
	uintptr_t id = (uintptr_t)arg;
	atomic_fetch_add_explicit(&sw_sum, id, memory_order_relaxed);
	atomic_fetch_add_explicit(&sw_count, 1, memory_order_relaxed);
	if (id % 3 == 0 && conc_pool_execute(sw_pool, sw_task, (void *)(id + 1)) != 0)
		atomic_fetch_add(&sw_errors, 1);
}

struct sw_pusher {
	pthread_barrier_t *go;
	uint64_t seed;
	unsigned rounds;
	unsigned long long sum, count; /* what this pusher's tasks add */
};

static void *sw_push(void *arg)
{
	struct sw_pusher *s = arg;
	for (unsigned r = 0; r < s->rounds; r++) {
		pthread_barrier_wait(s->go); /* the round's start: workers asleep or not */
		unsigned k = 1 + (unsigned)(conc_test_rand(&s->seed) % 4);
		for (unsigned i = 0; i < k; i++) {
			uintptr_t id = 1 + (uintptr_t)(conc_test_rand(&s->seed) % 1000) * 3;
			if (i % 2)
				id++; /* not a multiple of 3: no child */
			s->sum += id;
			s->count++;
			if (id % 3 == 0) {
				s->sum += id + 1;
				s->count++;
			}
			if (conc_pool_execute(sw_pool, sw_task, (void *)id) != 0)
				atomic_fetch_add(&sw_errors, 1);
		}
		pthread_barrier_wait(s->go); /* the round's end */
	}
	return NULL;
}

/*
 * A lost wake-up leaves a task queued with every worker asleep: the
 * whole-run invariant - every task executed (from outside, in bursts of 1
 * to 4 per pusher, and by tasks) runs exactly once - fails or the wait
 * hangs (watchdog).  Rounds alternate between starting with every worker
 * parked (an observed state, conc__pool_parked) and starting at once, while
 * the workers of the previous round still search, so that pushes meet
 * sleepers, searchers and workers on their way into the park.
 */
static void test_pool_sleep_wake_rounds(void **state)
{
	(void)state;
	conc_test_watchdog("sleep_wake_rounds", 120);
	conc_pool_config cfg = {.threads = SW_WORKERS};
	assert_int_equal(conc_pool_create(&sw_pool, &cfg), 0);
	unsigned rounds = (unsigned)conc_test_iters(300, 10);
	pthread_barrier_t go;
	pthread_barrier_init(&go, NULL, SW_PUSHERS + 1);
	struct sw_pusher ps[SW_PUSHERS];
	pthread_t t[SW_PUSHERS];
	atomic_store(&sw_sum, 0);
	atomic_store(&sw_count, 0);
	atomic_store(&sw_errors, 0);
	for (int i = 0; i < SW_PUSHERS; i++) {
		ps[i] = (struct sw_pusher){&go, 0x9e3779b97f4a7c15ull * (uint64_t)(i + 1), rounds, 0, 0};
		assert_int_equal(pthread_create(&t[i], NULL, sw_push, &ps[i]), 0);
	}
	for (unsigned r = 0; r < rounds; r++) {
		if (r % 2 == 0)
			while (conc__pool_parked(sw_pool) != SW_WORKERS)
				sched_yield();
		pthread_barrier_wait(&go);
		pthread_barrier_wait(&go);
		assert_int_equal(conc_pool_wait(sw_pool), 0);
	}
	unsigned long long want_sum = 0, want_count = 0;
	for (int i = 0; i < SW_PUSHERS; i++) {
		pthread_join(t[i], NULL);
		want_sum += ps[i].sum;
		want_count += ps[i].count;
	}
	pthread_barrier_destroy(&go);
	assert_int_equal(conc_pool_destroy(sw_pool), 0);
	assert_int_equal(atomic_load(&sw_errors), 0);
	assert_int_equal(atomic_load(&sw_count), want_count);
	assert_int_equal(atomic_load(&sw_sum), want_sum);
	conc_test_watchdog_off();
}

#if defined(CONC_FAULT_HOOKS) && CONC_FAULT_HOOKS
/* ---- a searcher off its CPU is not relied on (issue 20) ---------------------------- */

#define STALE_TAG 20
static atomic_ulong stale_ran;

static void stale_start(unsigned index, void *ctx)
{
	record_tid(index, ctx);
	conc_test_tag(STALE_TAG);
}

static void stale_task(void *arg)
{
	(void)arg;
	atomic_fetch_add(&stale_ran, 1);
	conc_test_points_signal();
}

struct stale_wait {
	int watch;
	unsigned long want;
};

static int stale_paused(void *arg)
{
	return conc_test_watch_paused(((struct stale_wait *)arg)->watch);
}

static int stale_done(void *arg)
{
	return atomic_load(&stale_ran) >= ((struct stale_wait *)arg)->want;
}

/*
 * A worker that searches but is off its CPU - emulated: paused at the top
 * of a search round (test point pool.search.round) - still counts in
 * `searching`, and a pusher used to rely on it and skip its wake: the task
 * waited as long as the searcher was away (milliseconds under load, issue
 * 20's W9b tails; for ever here).  Once its beat is stale (an observed
 * state, conc__pool_searchers_stale) a push must wake the sleeping worker,
 * which runs both tasks while the searcher is still paused.
 */
static void test_pool_stale_searcher_not_relied_on(void **state)
{
	(void)state;
	conc_test_watchdog("stale_searcher_not_relied_on", 120);
	conc_pool *p;
	conc_pool_config cfg = {.threads = 2, .on_start = stale_start};
	for (int i = 0; i < 2; i++)
		atomic_store(&worker_tid[i], 0);
	assert_int_equal(conc_pool_create(&p, &cfg), 0);
	atomic_store(&stale_ran, 0);
	unsigned rounds = (unsigned)conc_test_iters(10, 2);
	for (unsigned r = 0; r < rounds; r++) {
		until_all_sleep(p, 2);
		conc_test_points_start();
		struct stale_wait sw = {conc_test_watch("pool.search.round", STALE_TAG, 1),
					2ul * (r + 1)};
		/* The first task wakes one worker, which pauses searching,
		 * before it has looked: the task stays queued. */
		assert_int_equal(conc_pool_execute(p, stale_task, NULL), 0);
		assert_true(conc_test_points_wait(stale_paused, &sw, 60));
		/* The other worker asleep, the searcher's beat old. */
		while (conc__pool_parked(p) != 1 || !conc__pool_searchers_stale(p))
			sched_yield();
		assert_int_equal(conc_pool_execute(p, stale_task, NULL), 0);
		bool ran = conc_test_points_wait(stale_done, &sw, 60);
		conc_test_watch_release(sw.watch);
		conc_test_points_stop();
		assert_true(ran);
		assert_int_equal(conc_pool_wait(p), 0);
	}
	assert_int_equal(conc_pool_destroy(p), 0);
	assert_int_equal(atomic_load(&stale_ran), 2ul * rounds);
	conc_test_watchdog_off();
}
#endif

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_pool_global_and_fork), /* first: env at first use */
		cmocka_unit_test(test_pool_create_destroy_unused),
		cmocka_unit_test(test_pool_one_task),
		cmocka_unit_test(test_pool_million_tasks_sum),
		cmocka_unit_test(test_pool_fanout_depth20),
		cmocka_unit_test(test_pool_wait_from_many_threads),
		cmocka_unit_test(test_pool_hooks_and_names),
		cmocka_unit_test(test_pool_stack_size),
		cmocka_unit_test(test_pool_resize_while_running),
		cmocka_unit_test(test_pool_shrink_hands_on_work),
		cmocka_unit_test(test_pool_errors),
		cmocka_unit_test(test_pool_keeps_errno),
		cmocka_unit_test(test_pool_queries),
		cmocka_unit_test(test_pool_task_left_pinned),
		cmocka_unit_test(test_pool_fork_child_refuses),
		cmocka_unit_test(test_pool_queries_zero_after_wait),
		cmocka_unit_test(test_pool_max_queued),
		cmocka_unit_test(test_pool_destroy_full_queue),
		cmocka_unit_test(test_pool_oversubscribed),
		cmocka_unit_test(test_pool_idle_uses_no_cpu),
		cmocka_unit_test(test_pool_wakes_one_sleeper),
#if defined(CONC_FAULT_HOOKS) && CONC_FAULT_HOOKS
		cmocka_unit_test(test_pool_create_failures),
		cmocka_unit_test(test_pool_execute_enomem),
		cmocka_unit_test(test_pool_no_malloc_in_steady_state),
		cmocka_unit_test(test_pool_destroy_waits_for_waiters),
		cmocka_unit_test(test_pool_destroy_waits_for_held_executor),
		cmocka_unit_test(test_pool_global_create_during_fork),
		cmocka_unit_test(test_pool_stale_searcher_not_relied_on),
#endif
		cmocka_unit_test(test_pool_sleep_wake_rounds),
		cmocka_unit_test(test_pool_batch_wakes_a_thief),
		cmocka_unit_test(test_pool_outside_task_not_starved),
		cmocka_unit_test(test_pool_internal_join_api),
	};
	return cmocka_run_group_tests_name("pool", tests, NULL, NULL);
}
