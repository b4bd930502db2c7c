/*
 * fuzz_stack.c - libFuzzer target: conc/stack.h against a reference model
 * (fuzz_container.h has the driver and the input encoding).
 */
#include "conc/stack.h"

#include "fuzz_container.h"

static int s_create(void **c)
{
	conc_stack *x = NULL;
	int rc = conc_stack_create(&x);
	*c = x;
	return rc;
}

static int s_create_in(void **c, conc_epoch *d)
{
	conc_stack *x = NULL;
	int rc = conc_stack_create_in(&x, d);
	*c = x;
	return rc;
}

static void s_destroy(void *c, void (*drop)(void *)) { conc_stack_destroy(c, drop); }
static int s_push(void *c, void *item) { return conc_stack_push(c, item); }
static bool s_try_pop(void *c, void **item) { return conc_stack_try_pop(c, item); }
static int s_pop(void *c, void **item) { return conc_stack_pop(c, item); }
static int s_pop_timeout(void *c, void **item, uint64_t ns) { return conc_stack_pop_timeout(c, item, ns); }
static void s_close(void *c) { conc_stack_close(c); }
static bool s_is_empty(void *c) { return conc_stack_is_empty(c); }

static const fz_ops FZ = {
	.name = "stack",
	.lifo = true,
	.bulk_max = 256,
	.create = s_create,
	.create_in = s_create_in,
	.destroy = s_destroy,
	.push = s_push,
	.try_pop = s_try_pop,
	.pop = s_pop,
	.pop_timeout = s_pop_timeout,
	.close = s_close,
	.is_empty = s_is_empty,
};
