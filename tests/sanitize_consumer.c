/*
 * sanitize_consumer.c - a user's program, as tests/check_sanitize.sh builds
 * it against each form of libconc: through `pkg-config conc-tsan` (TSan),
 * `conc-asan` (ASan+UBSan), `conc` (valgrind, chaos mode), and from
 * dist/conc_single.h alone (-DCONC_SINGLE -DCONC_IMPLEMENTATION).
 *
 * A 3-stage pipeline:
 *   1. a scoped thread makes items 1..N and pushes them into q1; every 64
 *      items it replaces the shared configuration and retires the old one;
 *   2. two tasks on a private pool pop q1, read the configuration under an
 *      epoch pin, set v = v * k + 1 and push into q2;
 *   3. a scoped thread pops q2, sums, and retires each item (freed by the
 *      epoch once no reader can hold it).
 * The queues are closed behind each stage; the program checks the sum,
 * that every item and every configuration was freed, and exits 0.
 * Argument: N (default 20000).
 */
#ifdef CONC_SINGLE
#include "conc_single.h"
#else
#include <conc/conc.h>
#endif

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

struct item {
	conc_epoch_node node; /* first member: the node is the item */
	uint64_t v;
};

struct config {
	conc_epoch_node node;
	uint64_t k;        /* always 3: what changes is the object */
	uint64_t check;    /* k * 7, to catch a read of a freed copy */
};

static conc_queue *q1, *q2;
static _Atomic(struct config *) current;
static atomic_ulong items_freed, configs_freed, stage2_bad;
static uint64_t n_items = 20000, sum;

static void free_item(conc_epoch_node *n)
{
	free(n);
	atomic_fetch_add(&items_freed, 1);
}

static void free_config(conc_epoch_node *n)
{
	struct config *c = (struct config *)n;
	c->check = 0; /* a reader that still held it would see this */
	free(c);
	atomic_fetch_add(&configs_freed, 1);
}

static struct config *new_config(void)
{
	struct config *c = malloc(sizeof *c);
	if (!c)
		abort();
	c->k = 3;
	c->check = 21;
	return c;
}

static void *produce(conc_scope *s, void *arg)
{
	(void)s;
	(void)arg;
	for (uint64_t i = 1; i <= n_items; i++) {
		struct item *it = malloc(sizeof *it);
		if (!it)
			abort();
		it->v = i; /* published by the push */
		if (conc_queue_push(q1, it) != 0)
			abort();
		if (i % 64 == 0) {
			struct config *old = atomic_exchange(&current, new_config());
			conc_epoch_retire(conc_epoch_global(), &old->node, free_config);
		}
	}
	conc_queue_close(q1);
	return NULL;
}

static void transform(void *arg)
{
	void *p;
	(void)arg;
	while (conc_queue_pop(q1, &p) == 0) {
		struct item *it = p;
		conc_epoch *d = conc_epoch_global();
		conc_epoch_pin(d);
		struct config *c = atomic_load_explicit(&current, memory_order_acquire);
		uint64_t k = c->k;
		if (c->check != k * 7)
			atomic_fetch_add(&stage2_bad, 1);
		conc_epoch_unpin(d);
		it->v = it->v * k + 1;
		if (conc_queue_push(q2, it) != 0)
			abort();
	}
}

static void *consume(conc_scope *s, void *arg)
{
	void *p;
	(void)s;
	(void)arg;
	while (conc_queue_pop(q2, &p) == 0) {
		struct item *it = p;
		sum += it->v;
		conc_epoch_retire(conc_epoch_global(), &it->node, free_item);
	}
	return NULL;
}

static void pipeline(conc_scope *s, void *ctx)
{
	conc_pool *pool = ctx;
	if (conc_scope_spawn(s, produce, NULL, NULL) != 0 ||
	    conc_scope_spawn(s, consume, NULL, NULL) != 0 ||
	    conc_pool_execute(pool, transform, NULL) != 0 ||
	    conc_pool_execute(pool, transform, NULL) != 0 ||
	    conc_pool_wait(pool) != 0)
		abort();
	/* Both stage-2 tasks are done: nothing more comes into q2. */
	conc_queue_close(q2);
}

int main(int argc, char **argv)
{
	conc_pool_config cfg = {.threads = 2, .name = "stage2"};
	conc_pool *pool;
	if (argc > 1)
		n_items = strtoull(argv[1], NULL, 10);
	atomic_store(&current, new_config());
	if (conc_queue_create(&q1) != 0 || conc_queue_create(&q2) != 0 ||
	    conc_pool_create(&pool, &cfg) != 0)
		return 1;
	if (conc_scope_run(pipeline, pool) != 0)
		return 1;
	if (conc_pool_destroy(pool) != 0)
		return 1;
	conc_queue_destroy(q1, NULL);
	conc_queue_destroy(q2, NULL);
	struct config *last = atomic_exchange(&current, NULL);
	conc_epoch_retire(conc_epoch_global(), &last->node, free_config);
	if (conc_epoch_barrier(conc_epoch_global()) != 0)
		return 1;

	uint64_t want = 3 * (n_items * (n_items + 1) / 2) + n_items;
	unsigned long freed = atomic_load(&items_freed);
	unsigned long cfreed = atomic_load(&configs_freed);
	printf("pipeline: libconc %s items=%llu sum=%llu (want %llu) "
	       "items_freed=%lu configs_freed=%lu bad_reads=%lu chaos=%d\n",
	       conc_version(), (unsigned long long)n_items,
	       (unsigned long long)sum, (unsigned long long)want, freed, cfreed,
	       atomic_load(&stage2_bad), (int)conc_chaos_enabled());
	return sum == want && freed == n_items && cfreed == n_items / 64 + 1 &&
			       atomic_load(&stage2_bad) == 0
		       ? 0
		       : 1;
}
