/*
 * stress_pool.c - the pool under concurrent producers, spawning tasks,
 * waiters and resizes: every task runs exactly once (conservation, no
 * duplicate), waits see what they must, nothing hangs.
 */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

#include "conc/pool.h"

#define PRODUCERS 4

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
	conc_test_watchdog_off();
}

/* ---- create / execute / destroy churn -------------------------------------------- */

static void stress_pool_churn(void **state)
{
	(void)state;
	conc_test_watchdog("churn", 300);
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
	conc_test_watchdog_off();
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(stress_pool_producers_spawn_wait_resize),
		cmocka_unit_test(stress_pool_deque_growth),
		cmocka_unit_test(stress_pool_bounded_producers),
		cmocka_unit_test(stress_pool_churn),
	};
	return cmocka_run_group_tests_name("pool-stress", tests, NULL, NULL);
}
