/*
 * fuzz_queue.c - libFuzzer target: conc/queue.h against a reference model
 * (fuzz_container.h has the driver and the input encoding).
 */
#include "conc/queue.h"

#include "fuzz_container.h"

static int q_create(void **c)
{
	conc_queue *x = NULL;
	int rc = conc_queue_create(&x);
	*c = x;
	return rc;
}

static int q_create_in(void **c, conc_epoch *d)
{
	conc_queue *x = NULL;
	int rc = conc_queue_create_in(&x, d);
	*c = x;
	return rc;
}

static void q_destroy(void *c, void (*drop)(void *)) { conc_queue_destroy(c, drop); }
static int q_push(void *c, void *item) { return conc_queue_push(c, item); }
static bool q_try_pop(void *c, void **item) { return conc_queue_try_pop(c, item); }
static int q_pop(void *c, void **item) { return conc_queue_pop(c, item); }
static int q_pop_timeout(void *c, void **item, uint64_t ns) { return conc_queue_pop_timeout(c, item, ns); }
static void q_close(void *c) { conc_queue_close(c); }
static bool q_is_empty(void *c) { return conc_queue_is_empty(c); }

static const fz_ops FZ = {
	.name = "queue",
	.lifo = false,
	.bulk_max = 1024,
	.create = q_create,
	.create_in = q_create_in,
	.destroy = q_destroy,
	.push = q_push,
	.try_pop = q_try_pop,
	.pop = q_pop,
	.pop_timeout = q_pop_timeout,
	.close = q_close,
	.is_empty = q_is_empty,
};
