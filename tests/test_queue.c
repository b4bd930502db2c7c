/*
 * test_queue.c - conc/queue.h: the shared container contract
 * (container_tests.h) with FIFO expectations, plus what is the queue's own.
 */
#include "conc/queue.h"
#include "internal/containers.h"

#define CT_PRIM "test_queue"
#include "container_tests.h"

static int q_create(void **c)
{
	conc_queue *q = NULL;
	int rc = conc_queue_create(c ? &q : NULL);
	if (!rc)
		*c = q;
	return rc;
}

static int q_create_in(void **c, conc_epoch *d)
{
	conc_queue *q = NULL;
	int rc = conc_queue_create_in(c ? &q : NULL, d);
	if (!rc)
		*c = q;
	return rc;
}

static void q_destroy(void *c, void (*drop)(void *)) { conc_queue_destroy(c, drop); }
static int q_push(void *c, void *item) { return conc_queue_push(c, item); }
static bool q_try_pop(void *c, void **item) { return conc_queue_try_pop(c, item); }
static int q_pop(void *c, void **item) { return conc_queue_pop(c, item); }
static int q_pop_timeout(void *c, void **item, uint64_t ns) { return conc_queue_pop_timeout(c, item, ns); }
static void q_close(void *c) { conc_queue_close(c); }
static bool q_is_empty(void *c) { return conc_queue_is_empty(c); }
static unsigned q_sleepers(void *c) { return conc__queue_sleepers(c); }

static const ct_ops CT = {
	.spec = LC_FIFO,
	.create = q_create,
	.create_in = q_create_in,
	.destroy = q_destroy,
	.push = q_push,
	.try_pop = q_try_pop,
	.pop = q_pop,
	.pop_timeout = q_pop_timeout,
	.close = q_close,
	.is_empty = q_is_empty,
	.sleepers = q_sleepers,
	.force_alloc = NULL,
	.alloc_every = 4096, /* > one segment: the first segment's pushes do not allocate */
	.steady_max_allocs = 32,
};

/* A segment's slots are claimed by index: a queue that is pushed and popped
 * across many segment boundaries keeps its order and recycles segments. */
static void test_queue_segment_boundaries(void **state)
{
	(void)state;
	unsigned slots = conc__queue_segment_slots();
	assert_true(slots >= 2);
	conc_queue *q;
	assert_int_equal(conc_queue_create(&q), 0);
	uintptr_t next_push = 0, next_pop = 0;
	for (unsigned round = 0; round < 20; round++) {
		unsigned n = slots - 1 + round * 97 % slots;
		for (unsigned i = 0; i < n; i++)
			assert_int_equal(conc_queue_push(q, (void *)next_push++), 0);
		for (unsigned i = 0; i < n - round; i++) {
			void *it;
			assert_true(conc_queue_try_pop(q, &it));
			assert_ptr_equal(it, (void *)next_pop++);
		}
	}
	void *it;
	while (conc_queue_try_pop(q, &it))
		assert_ptr_equal(it, (void *)next_pop++);
	assert_int_equal(next_pop, next_push);
	conc_queue_destroy(q, NULL);
}

/* is_empty looks at the slots of the indexes not yet popped, wherever an
 * index's slot lies in its segment: with one item left at any index of the
 * first two segments, it still sees that item, NULL included. */
static void test_queue_is_empty_each_index(void **state)
{
	(void)state;
	conc_queue *q;
	assert_int_equal(conc_queue_create(&q), 0);
	unsigned n = conc__queue_segment_slots() + 40;
	for (uintptr_t i = 0; i < n; i++)
		assert_int_equal(conc_queue_push(q, i % 5 ? (void *)i : NULL), 0);
	for (uintptr_t i = 0; i < n; i++) {
		assert_false(conc_queue_is_empty(q));
		void *it;
		assert_true(conc_queue_try_pop(q, &it));
		assert_ptr_equal(it, i % 5 ? (void *)i : NULL);
	}
	assert_true(conc_queue_is_empty(q));
	conc_queue_destroy(q, NULL);
}

/*
 * The Ordering contract with data behind the item: the one producer writes
 * a cell, then pushes its address; the consumers read the cell after their
 * pop.  Several consumers, so that a pop can claim an index beyond the enq
 * value it read and meet its pusher only through the slot's exchange
 * (with one consumer, the enq load alone would order them).  A push or pop
 * that does not publish the cell shows as a wrong value here on a weak
 * machine and as a data race under TSan (mutant 1 weakens the push's
 * exchange to relaxed).  Each consumer also records its indexes in order
 * (one producer: FIFO means increasing), and every index is taken once.
 */
enum { PUB_CONSUMERS = 3 };

typedef struct pub_cell {
	uint64_t a, b;
} pub_cell;

typedef struct pub_ctx {
	conc_queue *q;
	pub_cell *cells;
	atomic_uchar *taken; /* per index: times popped */
	unsigned long n;
	atomic_ulong popped; /* relaxed: a stop condition, orders nothing */
} pub_ctx;

typedef struct pub_consumer {
	pub_ctx *x;
	unsigned long got, bad_value, bad_order;
} pub_consumer;

static uint64_t pub_value(unsigned long k)
{
	return (uint64_t)k * 0x9E3779B97F4A7C15ULL + 1;
}

static void *pub_consume(void *arg)
{
	pub_consumer *c = arg;
	pub_ctx *x = c->x;
	unsigned long last = 0;
	bool first = true;
	while (atomic_load_explicit(&x->popped, memory_order_relaxed) < x->n) {
		void *it;
		if (!conc_queue_try_pop(x->q, &it)) {
			sched_yield(); /* 2 cores: let the producer run */
			continue;
		}
		atomic_fetch_add_explicit(&x->popped, 1, memory_order_relaxed);
		pub_cell *cell = it;
		if (cell < x->cells || cell >= x->cells + x->n) {
			c->bad_value++;
			continue;
		}
		unsigned long k = (unsigned long)(cell - x->cells);
		if (cell->a != pub_value(k) || cell->b != ~pub_value(k))
			c->bad_value++;
		if (!first && k <= last)
			c->bad_order++;
		first = false;
		last = k;
		atomic_fetch_add_explicit(&x->taken[k], 1, memory_order_relaxed);
		c->got++;
	}
	return NULL;
}

static void test_queue_publishes_item_data(void **state)
{
	(void)state;
	conc_test_watchdog("queue publishes item data", 120);
	pub_ctx x = {.n = conc_test_iters(50000, 2)};
	assert_int_equal(conc_queue_create(&x.q), 0);
	x.cells = calloc(x.n, sizeof *x.cells);
	x.taken = calloc(x.n, sizeof *x.taken);
	assert_non_null(x.cells);
	assert_non_null(x.taken);
	atomic_init(&x.popped, 0);
	pub_consumer c[PUB_CONSUMERS];
	pthread_t t[PUB_CONSUMERS];
	for (int i = 0; i < PUB_CONSUMERS; i++) {
		c[i] = (pub_consumer){.x = &x};
		assert_int_equal(pthread_create(&t[i], NULL, pub_consume, &c[i]), 0);
	}
	for (unsigned long k = 0; k < x.n; k++) {
		x.cells[k].a = pub_value(k);
		x.cells[k].b = ~pub_value(k);
		assert_int_equal(conc_queue_push(x.q, &x.cells[k]), 0);
		if (k % 256 == 255)
			sched_yield(); /* keep the queue near empty: pops race pushes */
	}
	unsigned long got = 0, bad_value = 0, bad_order = 0;
	for (int i = 0; i < PUB_CONSUMERS; i++) {
		pthread_join(t[i], NULL);
		got += c[i].got;
		bad_value += c[i].bad_value;
		bad_order += c[i].bad_order;
	}
	assert_int_equal(bad_value, 0);
	assert_int_equal(bad_order, 0);
	assert_int_equal(got, x.n);
	for (unsigned long k = 0; k < x.n; k++)
		assert_int_equal(atomic_load_explicit(&x.taken[k], memory_order_relaxed), 1);
	assert_true(conc_queue_is_empty(x.q));
	conc_queue_destroy(x.q, NULL);
	free(x.cells);
	free(x.taken);
	conc_test_watchdog_off();
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		CT_TESTS,
		CT_FAULT_TESTS,
		cmocka_unit_test(test_queue_segment_boundaries),
		cmocka_unit_test(test_queue_is_empty_each_index),
		cmocka_unit_test(test_queue_publishes_item_data),
	};
	return cmocka_run_group_tests_name("queue", tests, NULL, NULL);
}
