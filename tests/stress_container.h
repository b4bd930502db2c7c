/*
 * stress_container.h - the stress run the queue and the stack share
 * (issue 8, "stress"), written once against a table of calls:
 * stress_queue.c and stress_stack.c each define SC (their table) and
 * include this file.
 *
 * One run: 16 threads on whatever cores there are (2 on the project's CI),
 * P producers and 16 - P consumers for P = 1, 8, 15.  Producer p pushes
 * the items (p, 0), (p, 1), ... (p, n-1), encoded in the pointer itself,
 * then the last producer to finish closes the container.  Consumers mix
 * try_pop, pop and pop_timeout (a failed try yields, or is followed by a
 * blocking call) until a blocking call reports EPIPE: closed and drained.  Checked over the whole run:
 *   - every item popped exactly once (a bitmap ledger: a bit set twice is a
 *     duplicate, a bit never set is lost),
 *   - the pops add up to the pushes, the container is empty afterwards and
 *     its destroy drops nothing,
 *   - for the queue, per-producer FIFO: each consumer sees each producer's
 *     sequence numbers strictly increase (if p pushed a before b, a's
 *     enqueue precedes b's, so a is dequeued first; a consumer that popped
 *     b and then a saw two dequeues in the wrong order).
 * Worker threads record what they saw; the main thread asserts after the
 * join.  A progress watchdog fails the run if no push or pop completes for
 * 5 s.
 */
#ifndef CONC_STRESS_CONTAINER_H
#define CONC_STRESS_CONTAINER_H

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "adapters.h"
#include "testutil.h"

/* The container under test (lib/adapters.h): the stress_<name>.c file
 * defines it. */
static const tl_container *const SC;

#define SC_THREADS 16
#define SC_SEQ_BITS 40 /* item = producer << SC_SEQ_BITS | sequence */
#define SC_PROGRESS_EVERY 1024 /* ops between bumps of the shared counter */

struct sc_run {
	void *c;
	unsigned producers;
	unsigned long per_producer;
	atomic_ullong *bits; /* the ledger: bit p * per_producer + seq */
	atomic_ulong dups;
	atomic_uint producers_left;
	atomic_ulong progress;
};

struct sc_thread {
	struct sc_run *run;
	unsigned idx;
	/* outcomes, read by the main thread after the join */
	unsigned long pushed, push_errors;
	unsigned long popped, bad_items, order, pop_errors;
	unsigned long by_try, by_pop, by_timeout, timeouts;
	char pad[64];
};

static void sc_bump(struct sc_run *r, unsigned long *since)
{
	if (++*since == SC_PROGRESS_EVERY) {
		/* relaxed: the watchdog only looks for movement */
		atomic_fetch_add_explicit(&r->progress, *since, memory_order_relaxed);
		*since = 0;
	}
}

static void *sc_producer(void *arg)
{
	struct sc_thread *t = arg;
	struct sc_run *r = t->run;
	unsigned long since = 0;
	uintptr_t base = (uintptr_t)t->idx << SC_SEQ_BITS;
	for (unsigned long s = 0; s < r->per_producer; s++) {
		if (SC->push(r->c, (void *)(base | s)) == 0)
			t->pushed++;
		else
			t->push_errors++;
		sc_bump(r, &since);
	}
	/* acq_rel: the last producer's close comes after every producer's
	 * pushes (each one's decrement releases them), so no push of the run
	 * can meet a closed container. */
	if (atomic_fetch_sub_explicit(&r->producers_left, 1, memory_order_acq_rel) == 1)
		SC->close(r->c);
	return NULL;
}

static void *sc_consumer(void *arg)
{
	struct sc_thread *t = arg;
	struct sc_run *r = t->run;
	unsigned long since = 0;
	uint64_t seed = 0x9E3779B97F4A7C15ULL * (t->idx + 1);
	/* last[p]: the highest sequence seen from producer p, +1 (0: none) */
	unsigned long last[SC_THREADS] = {0};
	bool block_next = false;
	for (;;) {
		void *it;
		int rc;
		unsigned pick = (unsigned)(conc_test_rand(&seed) % 8);
		if (!block_next && pick < 4) {
			if (!SC->try_pop(r->c, &it)) {
				/* An empty container: yield and try again
				 * 3 times in 4, else block next (the
				 * sleeping path).  Blocking after every
				 * failed try makes 1:15 a futex storm - a
				 * wake-up syscall per push with 15 sleepers,
				 * ~10x slower - without testing more. */
				if (conc_test_rand(&seed) % 4)
					sched_yield();
				else
					block_next = true;
				continue;
			}
			t->by_try++;
			rc = 0;
		} else if (pick < 6) {
			/* 0-63 us: short enough to time out often while the
			 * producers are slow, long enough to also catch items */
			uint64_t ns = (conc_test_rand(&seed) % 64) * 1000;
			rc = SC->pop_timeout(r->c, &it, ns);
			if (rc == ETIMEDOUT) {
				t->timeouts++;
				continue;
			}
			if (rc == 0)
				t->by_timeout++;
		} else {
			rc = SC->pop(r->c, &it);
			if (rc == 0)
				t->by_pop++;
		}
		block_next = false;
		if (rc == EPIPE)
			break;
		if (rc != 0) {
			t->pop_errors++;
			break;
		}
		uintptr_t v = (uintptr_t)it;
		unsigned long p = (unsigned long)(v >> SC_SEQ_BITS);
		unsigned long s = (unsigned long)(v & (((uintptr_t)1 << SC_SEQ_BITS) - 1));
		t->popped++;
		sc_bump(r, &since);
		if (p >= r->producers || s >= r->per_producer) {
			t->bad_items++;
			continue;
		}
		unsigned long bit = p * r->per_producer + s;
		unsigned long long m = 1ULL << (bit % 64);
		/* relaxed: the join orders the ledger for the main thread */
		if (atomic_fetch_or_explicit(&r->bits[bit / 64], m, memory_order_relaxed) & m)
			atomic_fetch_add_explicit(&r->dups, 1, memory_order_relaxed);
		if (SC->fifo) {
			if (s + 1 <= last[p])
				t->order++;
			else
				last[p] = s + 1;
		}
	}
	return NULL;
}

static void *sc_thread_main(void *arg)
{
	struct sc_thread *t = arg;
	return t->idx < t->run->producers ? sc_producer(t) : sc_consumer(t);
}

static atomic_ulong sc_dropped;

static void sc_drop_count(void *item)
{
	(void)item;
	atomic_fetch_add(&sc_dropped, 1);
}

static double sc_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* Items (push + pop = 2 ops each) for one ratio: the run's 10^8 ops per
 * container (10^7 under the sanitizers) times CONC_STRESS_SCALE, split
 * evenly over the three ratios to fit the suite's time budget on 2 cores;
 * scale 0 is a smoke run of 10^5 ops in all. */
static unsigned long sc_items_per_ratio(void)
{
	unsigned long scale = conc_test_scale();
	unsigned long ops = scale ? (CONC_TEST_SANITIZED ? 10000000UL : 100000000UL) * scale
				  : 100000UL;
	return ops / 2 / 3;
}

static void sc_run_ratio(unsigned producers)
{
	unsigned consumers = SC_THREADS - producers;
	char what[64];
	snprintf(what, sizeof what, "stress %s %u:%u", SC->name, producers, consumers);
	conc_test_watchdog(what, 600);

	struct sc_run r;
	memset(&r, 0, sizeof r);
	r.producers = producers;
	r.per_producer = sc_items_per_ratio() / producers;
	unsigned long items = r.per_producer * producers;
	unsigned long words = (items + 63) / 64;
	r.bits = calloc(words, sizeof *r.bits);
	assert_non_null(r.bits);
	atomic_init(&r.dups, 0);
	atomic_init(&r.producers_left, producers);
	atomic_init(&r.progress, 0);
	assert_int_equal(SC->create(&r.c), 0);

	struct sc_thread *th = calloc(SC_THREADS, sizeof *th);
	assert_non_null(th);
	for (unsigned i = 0; i < SC_THREADS; i++) {
		th[i].run = &r;
		th[i].idx = i;
	}
	conc_test_progress *pw = conc_test_progress_watchdog_start(what, &r.progress, 5);
	assert_non_null(pw);
	double t0 = sc_now();
	assert_int_equal(conc_test_run_threads(SC_THREADS, sc_thread_main, th, sizeof *th), 0);
	double secs = sc_now() - t0;
	conc_test_progress_watchdog_stop(pw);

	unsigned long pushed = 0, push_errors = 0, popped = 0, bad = 0, order = 0;
	unsigned long pop_errors = 0, by_try = 0, by_pop = 0, by_timeout = 0, timeouts = 0;
	for (unsigned i = 0; i < SC_THREADS; i++) {
		pushed += th[i].pushed;
		push_errors += th[i].push_errors;
		popped += th[i].popped;
		bad += th[i].bad_items;
		order += th[i].order;
		pop_errors += th[i].pop_errors;
		by_try += th[i].by_try;
		by_pop += th[i].by_pop;
		by_timeout += th[i].by_timeout;
		timeouts += th[i].timeouts;
	}
	unsigned long seen = 0;
	for (unsigned long w = 0; w < words; w++)
		seen += (unsigned long)__builtin_popcountll(atomic_load(&r.bits[w]));
	unsigned long dup = atomic_load(&r.dups);
	unsigned long lost = items - seen;

	/* closed and drained: nothing left, nothing for destroy to drop */
	void *it;
	bool left = SC->try_pop(r.c, &it);
	bool empty = SC->is_empty(r.c);
	atomic_store(&sc_dropped, 0);
	SC->destroy(r.c, sc_drop_count);
	unsigned long dropped = atomic_load(&sc_dropped);

	/* the measured counts, whatever they are; the asserts below judge */
	if (SC->fifo)
		printf("reliability: stress %s %u:%u | ops=%lu lost=%lu dup=%lu order=%lu"
		       " threads=%u time=%.1fs\n", SC->name, producers, consumers,
		       pushed + popped, lost, dup, order, SC_THREADS, secs);
	else
		printf("reliability: stress %s %u:%u | ops=%lu lost=%lu dup=%lu threads=%u"
		       " time=%.1fs\n", SC->name, producers, consumers, pushed + popped, lost,
		       dup, SC_THREADS, secs);
	printf("stress %s %u:%u: pops by try %lu, by pop %lu, by pop_timeout %lu"
	       " (%lu timed out)\n", SC->name, producers, consumers, by_try, by_pop, by_timeout,
	       timeouts);
	fflush(stdout);

	free(th);
	free(r.bits);
	assert_int_equal(push_errors, 0);
	assert_int_equal(pop_errors, 0);
	assert_int_equal(bad, 0);
	assert_int_equal(pushed, items);
	assert_int_equal(lost, 0);
	assert_int_equal(dup, 0);
	assert_int_equal(popped, pushed);
	assert_int_equal(order, 0);
	assert_false(left);
	assert_true(empty);
	assert_int_equal(dropped, 0);
	conc_test_watchdog_off();
}

static void sc_ratio_1_15(void **state)
{
	(void)state;
	sc_run_ratio(1);
}

static void sc_ratio_8_8(void **state)
{
	(void)state;
	sc_run_ratio(8);
}

static void sc_ratio_15_1(void **state)
{
	(void)state;
	sc_run_ratio(15);
}

static int sc_main(const char *group)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(sc_ratio_1_15),
		cmocka_unit_test(sc_ratio_8_8),
		cmocka_unit_test(sc_ratio_15_1),
	};
	return cmocka_run_group_tests_name(group, tests, NULL, NULL);
}

#endif
