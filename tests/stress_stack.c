/*
 * stress_stack.c - the stack under 16 threads at producer:consumer ratios
 * 1:15, 8:8 and 15:1: nothing lost, nothing duplicated (a stack promises
 * no order across threads; the run and its checks are in
 * stress_container.h).
 */
#include "conc/stack.h"

#include "stress_container.h"

static int s_create(void **c)
{
	return conc_stack_create((conc_stack **)c);
}

static void s_destroy(void *c, void (*drop)(void *))
{
	conc_stack_destroy(c, drop);
}

static int s_push(void *c, void *item)
{
	return conc_stack_push(c, item);
}

static bool s_try_pop(void *c, void **item)
{
	return conc_stack_try_pop(c, item);
}

static int s_pop(void *c, void **item)
{
	return conc_stack_pop(c, item);
}

static int s_pop_timeout(void *c, void **item, uint64_t ns)
{
	return conc_stack_pop_timeout(c, item, ns);
}

static void s_close(void *c)
{
	conc_stack_close(c);
}

static bool s_is_empty(void *c)
{
	return conc_stack_is_empty(c);
}

static const sc_ops SC = {
	.name = "stack",
	.fifo = false,
	.create = s_create,
	.destroy = s_destroy,
	.push = s_push,
	.try_pop = s_try_pop,
	.pop = s_pop,
	.pop_timeout = s_pop_timeout,
	.close = s_close,
	.is_empty = s_is_empty,
};

int main(void)
{
	return sc_main("stack-stress");
}
