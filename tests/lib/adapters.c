/* adapters.c - the queue and the stack behind one table (adapters.h). */
#include <stddef.h>

#include "adapters.h"

#include "conc/queue.h"
#include "conc/stack.h"
#include "queue/queue_internal.h"
#include "stack/stack_internal.h"

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
static int q_push_n(void *c, void *const *items, size_t n) { return conc_queue_push_n(c, items, n); }
static bool q_try_pop(void *c, void **item) { return conc_queue_try_pop(c, item); }
static int q_pop(void *c, void **item) { return conc_queue_pop(c, item); }
static int q_pop_timeout(void *c, void **item, uint64_t ns) { return conc_queue_pop_timeout(c, item, ns); }
static void q_close(void *c) { conc_queue_close(c); }
static bool q_is_empty(void *c) { return conc_queue_is_empty(c); }
static unsigned q_sleepers(void *c) { return conc__queue_sleepers(c); }

const tl_container tl_queue = {
	.name = "queue",
	.fifo = true,
	.create = q_create,
	.create_in = q_create_in,
	.destroy = q_destroy,
	.push = q_push,
	.push_n = q_push_n,
	.try_pop = q_try_pop,
	.pop = q_pop,
	.pop_timeout = q_pop_timeout,
	.close = q_close,
	.is_empty = q_is_empty,
	.sleepers = q_sleepers,
};

static int s_create(void **c)
{
	conc_stack *s = NULL;
	int rc = conc_stack_create(c ? &s : NULL);
	if (!rc)
		*c = s;
	return rc;
}

static int s_create_in(void **c, conc_epoch *d)
{
	conc_stack *s = NULL;
	int rc = conc_stack_create_in(c ? &s : NULL, d);
	if (!rc)
		*c = s;
	return rc;
}

static void s_destroy(void *c, void (*drop)(void *)) { conc_stack_destroy(c, drop); }
static int s_push(void *c, void *item) { return conc_stack_push(c, item); }
static bool s_try_pop(void *c, void **item) { return conc_stack_try_pop(c, item); }
static int s_pop(void *c, void **item) { return conc_stack_pop(c, item); }
static int s_pop_timeout(void *c, void **item, uint64_t ns) { return conc_stack_pop_timeout(c, item, ns); }
static void s_close(void *c) { conc_stack_close(c); }
static bool s_is_empty(void *c) { return conc_stack_is_empty(c); }
static unsigned s_sleepers(void *c) { return conc__stack_sleepers(c); }

const tl_container tl_stack = {
	.name = "stack",
	.fifo = false,
	.create = s_create,
	.create_in = s_create_in,
	.destroy = s_destroy,
	.push = s_push,
	.try_pop = s_try_pop,
	.pop = s_pop,
	.pop_timeout = s_pop_timeout,
	.close = s_close,
	.is_empty = s_is_empty,
	.sleepers = s_sleepers,
};
