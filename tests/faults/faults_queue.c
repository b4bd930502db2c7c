/*
 * faults_queue.c - the faults suite (issue 8, tests/lib/faults.h): conc/queue.h.
 * Create, push, push_n and the pops swept; producers and consumers with 2%,
 * 25% and 90% of the allocations failing.
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

/* ---- queue ------------------------------------------------------------------ */

static void run_queue_create(struct sweep *sw, bool in)
{
	conc_epoch *d;
	CHECK(sw, conc_epoch_create(&d) == 0);
	conc_queue *q = SENTINEL;
	arm(sw);
	int err = in ? conc_queue_create_in(&q, d) : conc_queue_create(&q);
	disarm(sw);
	CHECK(sw, err == want_err(sw));
	if (err) {
		CHECK(sw, q == SENTINEL);
		CHECK(sw, conc_queue_create_in(&q, d) == 0);
	}
	void *x = NULL;
	CHECK(sw, conc_queue_push(q, ITEM(7)) == 0);
	CHECK(sw, conc_queue_try_pop(q, &x) && x == ITEM(7));
	conc_queue_destroy(q, NULL);
	check_destroy_domain(sw, d);
}

static void run_queue_create_global(struct sweep *sw)
{
	run_queue_create(sw, false);
}

static void run_queue_create_in(struct sweep *sw)
{
	run_queue_create(sw, true);
}

/* A push that needs a new segment: the queue holds exactly one full one. */
static void run_queue_push(struct sweep *sw)
{
	conc_epoch *d;
	conc_queue *q;
	CHECK(sw, conc_epoch_create(&d) == 0);
	CHECK(sw, conc_queue_create_in(&q, d) == 0);
	unsigned n = conc__queue_segment_slots();
	for (unsigned i = 1; i <= n; i++)
		CHECK(sw, conc_queue_push(q, ITEM(i)) == 0);
	arm(sw);
	int err = conc_queue_push(q, ITEM(n + 1));
	disarm(sw);
	CHECK(sw, err == want_err(sw));
	if (sw->kind == CALIBRATE)
		CHECK(sw, sw->n_alloc >= 1); /* it did need a segment */
	if (err) /* usable afterwards: the same item goes in now */
		CHECK(sw, conc_queue_push(q, ITEM(n + 1)) == 0);
	CHECK(sw, conc_queue_push(q, ITEM(n + 2)) == 0);
	/* every item once, in FIFO order: the failed push left no trace */
	void *x;
	for (unsigned i = 1; i <= n + 2; i++) {
		bool got = conc_queue_try_pop(q, &x);
		CHECK(sw, got && x == ITEM(i));
		if (!got || x != ITEM(i))
			break;
	}
	CHECK(sw, !conc_queue_try_pop(q, &x));
	CHECK(sw, conc_queue_is_empty(q));
	atomic_store(&dropped, 0);
	conc_queue_destroy(q, drop_count);
	CHECK(sw, atomic_load(&dropped) == 0);
	check_destroy_domain(sw, d);
}

/* push_n of a batch that needs three segments (two full-size, one small),
 * onto a queue whose tail has room (so the batch seals it): a failed
 * allocation leaves nothing pushed (all or nothing), and the queue takes
 * the same batch afterwards. */
static void run_queue_push_n(struct sweep *sw)
{
	conc_epoch *d;
	conc_queue *q;
	CHECK(sw, conc_epoch_create(&d) == 0);
	CHECK(sw, conc_queue_create_in(&q, d) == 0);
	unsigned slots = conc__queue_segment_slots();
	size_t n = 2 * (size_t)slots + 50;
	void **batch = malloc(n * sizeof *batch);
	CHECK(sw, batch != NULL);
	if (!batch)
		return;
	for (unsigned i = 1; i <= 10; i++)
		CHECK(sw, conc_queue_push(q, ITEM(i)) == 0);
	for (size_t k = 0; k < n; k++)
		batch[k] = ITEM(11 + k);
	arm(sw);
	int err = conc_queue_push_n(q, batch, n);
	disarm(sw);
	CHECK(sw, err == want_err(sw));
	if (sw->kind == CALIBRATE)
		CHECK(sw, sw->n_alloc >= 3); /* one segment each */
	if (err) { /* nothing went in: the first pop after the ten is empty */
		void *x;
		for (unsigned i = 1; i <= 10; i++)
			CHECK(sw, conc_queue_try_pop(q, &x) && x == ITEM(i));
		CHECK(sw, !conc_queue_try_pop(q, &x));
		for (unsigned i = 1; i <= 10; i++)
			CHECK(sw, conc_queue_push(q, ITEM(i)) == 0);
		CHECK(sw, conc_queue_push_n(q, batch, n) == 0);
	}
	CHECK(sw, conc_queue_push(q, ITEM(11 + n)) == 0);
	/* every item once, in FIFO order */
	void *x;
	for (size_t i = 1; i <= 11 + n; i++) {
		bool got = conc_queue_try_pop(q, &x);
		CHECK(sw, got && x == ITEM(i));
		if (!got || x != ITEM(i))
			break;
	}
	CHECK(sw, !conc_queue_try_pop(q, &x));
	atomic_store(&dropped, 0);
	conc_queue_destroy(q, drop_count);
	CHECK(sw, atomic_load(&dropped) == 0);
	check_destroy_domain(sw, d);
	free(batch);
}

static void run_queue_pops(struct sweep *sw)
{
	run_container_pops(sw, &tl_queue);
}

static void test_faults_queue(void **state)
{
	(void)state;
	conc_test_watchdog("faults_queue", 120);
	sweep("queue_create", run_queue_create_global);
	sweep("queue_create_in", run_queue_create_in);
	sweep("queue_push", run_queue_push);
	sweep("queue_push_n", run_queue_push_n);
	sweep("queue_pop_close", run_queue_pops);
	conc_test_watchdog_off();
}

static void test_faults_hammer_queue(void **state)
{
	(void)state;
	conc_test_watchdog("faults_hammer_queue", 120);
	hammer_container(&tl_queue, 0, 0); /* the baseline: allocations per push */
	hammer_container(&tl_queue, 20000, 1);
	hammer_container(&tl_queue, HAM_PPM, 2);
	hammer_container(&tl_queue, 900000, 3);
	conc_test_watchdog_off();
}

int main(void)
{
	faults_begin("queue");
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_faults_queue),
		cmocka_unit_test(test_faults_hammer_queue),
	};
	return faults_end(cmocka_run_group_tests(tests, NULL, NULL));
}
