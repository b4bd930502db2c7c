/*
 * single_example.c - libconc from the one-file distribution, conc_single.h,
 * built with nothing but `cc -std=c11 -pthread`:
 *
 *   cc -std=c11 -pthread -DCONC_IMPLEMENTATION single_example.c   (one file)
 *   cc -std=c11 -pthread single_impl.c single_example.c           (two)
 *
 * Scoped threads read a shared configuration that a writer replaces,
 * RCU-style: readers pin the epoch, the writer swaps the pointer and
 * retires the old copy, which is freed only once no reader can hold it.
 * Primitives that have landed are used too (CONC_HAVE_<PRIM>, defined by
 * conc_single.h).  Exit status 0 when every check held.
 */
#include "conc_single.h"

#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

static int failures;
#define CHECK(c)                                                         \
	do {                                                             \
		if (!(c)) {                                              \
			fprintf(stderr, "single_example.c:%d: %s\n", __LINE__, #c); \
			failures++;                                      \
		}                                                        \
	} while (0)

/* ---- epoch + scope: a configuration replaced under readers --------------- */

struct config {
	conc_epoch_node node; /* first member: the node is the object */
	unsigned generation;
	unsigned checksum; /* generation * 7, to catch a torn or freed read */
};

static _Atomic(struct config *) current_config;
static atomic_uint configs_freed;

static void free_config(conc_epoch_node *n)
{
	struct config *c = (struct config *)(void *)n;
	c->checksum = 0xdead; /* a reader that still saw it would notice */
	free(c);
	atomic_fetch_add(&configs_freed, 1);
}

struct reader_result {
	unsigned long reads, torn;
};

static void *reader(conc_scope *s, void *arg)
{
	(void)s;
	struct reader_result *r = arg;
	conc_epoch *d = conc_epoch_global();
	for (int i = 0; i < 20000; i++) {
		conc_epoch_pin(d);
		struct config *c = atomic_load_explicit(&current_config, memory_order_acquire);
		if (c->checksum != c->generation * 7)
			r->torn++;
		r->reads++;
		conc_epoch_unpin(d);
	}
	return r;
}

static void *writer(conc_scope *s, void *arg)
{
	(void)s;
	unsigned *published = arg;
	conc_epoch *d = conc_epoch_global();
	for (unsigned g = 1; g <= 200; g++) {
		struct config *c = malloc(sizeof *c);
		if (!c)
			return NULL;
		c->generation = g;
		c->checksum = g * 7;
		struct config *old = atomic_exchange_explicit(&current_config, c,
							      memory_order_acq_rel);
		conc_epoch_retire(d, &old->node, free_config);
		*published = g;
	}
	return published;
}

struct run {
	struct reader_result readers[3];
	unsigned published;
};

static void body(conc_scope *s, void *ctx)
{
	struct run *run = ctx;
	for (int i = 0; i < 3; i++)
		CHECK(conc_scope_spawn(s, reader, &run->readers[i], NULL) == 0);
	conc_thread *w = NULL;
	CHECK(conc_scope_spawn(s, writer, &run->published, &w) == 0);
	void *res = NULL;
	CHECK(w && conc_thread_join(w, &res) == 0 && res == &run->published);
	/* the readers are joined when the scope ends */
}

static void epoch_and_scope(void)
{
	struct config *first = malloc(sizeof *first);
	CHECK(first != NULL);
	if (!first)
		return;
	first->generation = 0;
	first->checksum = 0;
	atomic_store(&current_config, first);

	struct run run = {0};
	CHECK(conc_scope_run(body, &run) == 0);
	for (int i = 0; i < 3; i++) {
		CHECK(run.readers[i].reads == 20000);
		CHECK(run.readers[i].torn == 0);
	}
	CHECK(run.published == 200);

	conc_epoch *d = conc_epoch_global();
	CHECK(conc_epoch_barrier(d) == 0);
	CHECK(atomic_load(&configs_freed) == 200);
	free(atomic_load(&current_config));
	printf("epoch+scope: 3 readers x 20000 reads, 200 configs replaced and freed\n");
}

/* ---- the primitives that have landed ------------------------------------ */

#ifdef CONC_HAVE_QUEUE
static void queue_example(void)
{
	conc_queue *q;
	CHECK(conc_queue_create(&q) == 0);
	for (uintptr_t i = 1; i <= 100; i++)
		CHECK(conc_queue_push(q, (void *)i) == 0);
	conc_queue_close(q);
	uintptr_t expect = 1;
	void *item;
	while (conc_queue_pop(q, &item) == 0)
		CHECK((uintptr_t)item == expect++);
	CHECK(expect == 101);
	conc_queue_destroy(q, NULL);
	printf("queue: 100 items in FIFO order\n");
}
#endif

#ifdef CONC_HAVE_STACK
static void stack_example(void)
{
	conc_stack *st;
	CHECK(conc_stack_create(&st) == 0);
	for (uintptr_t i = 1; i <= 100; i++)
		CHECK(conc_stack_push(st, (void *)i) == 0);
	uintptr_t expect = 100;
	void *item;
	while (conc_stack_try_pop(st, &item))
		CHECK((uintptr_t)item == expect--);
	CHECK(expect == 0);
	conc_stack_destroy(st, NULL);
	printf("stack: 100 items in LIFO order\n");
}
#endif

#ifdef CONC_HAVE_POOL
static atomic_uint pool_ran;

static void pool_task(void *arg)
{
	(void)arg;
	atomic_fetch_add(&pool_ran, 1);
}

static void pool_example(void)
{
	conc_pool_config cfg = {.threads = 2, .name = "example"};
	conc_pool *p;
	CHECK(conc_pool_create(&p, &cfg) == 0);
	for (int i = 0; i < 1000; i++)
		CHECK(conc_pool_execute(p, pool_task, NULL) == 0);
	CHECK(conc_pool_wait(p) == 0);
	CHECK(atomic_load(&pool_ran) == 1000);
	CHECK(conc_pool_destroy(p) == 0);
	printf("pool: 1000 tasks on 2 threads\n");
}
#endif

#if defined(CONC_HAVE_PARALLEL) && defined(CONC_HAVE_POOL)
static void zero(void *acc, void *ctx)
{
	(void)ctx;
	*(uint64_t *)acc = 0;
}

static int add_range(size_t lo, size_t hi, void *acc, void *ctx)
{
	(void)ctx;
	for (size_t i = lo; i < hi; i++)
		*(uint64_t *)acc += i;
	return 0;
}

static void combine(void *acc, const void *other, void *ctx)
{
	(void)ctx;
	*(uint64_t *)acc += *(const uint64_t *)other;
}

static void parallel_example(void)
{
	conc_pool_config cfg = {.threads = 2};
	conc_pool *p;
	CHECK(conc_pool_create(&p, &cfg) == 0);
	uint64_t sum = 1;
	CHECK(conc_parallel_reduce(p, 0, 100000, 0, &sum, sizeof sum, zero,
				   add_range, combine, NULL) == 0);
	CHECK(sum == 4999950000u);
	CHECK(conc_pool_destroy(p) == 0);
	printf("parallel: reduce over 100000 indexes\n");
}
#endif

int main(void)
{
	CHECK(conc_cpu_count() >= 1);
	epoch_and_scope();
#ifdef CONC_HAVE_QUEUE
	queue_example();
#endif
#ifdef CONC_HAVE_STACK
	stack_example();
#endif
#ifdef CONC_HAVE_POOL
	pool_example();
#endif
#if defined(CONC_HAVE_PARALLEL) && defined(CONC_HAVE_POOL)
	parallel_example();
#endif
	printf("single_example: %d failures\n", failures);
	return failures ? 1 : 0;
}
