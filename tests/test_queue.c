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

int main(void)
{
	const struct CMUnitTest tests[] = {
		CT_TESTS,
		CT_FAULT_TESTS,
		cmocka_unit_test(test_queue_segment_boundaries),
	};
	return cmocka_run_group_tests_name("queue", tests, NULL, NULL);
}
