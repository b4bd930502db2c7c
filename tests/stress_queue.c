/*
 * stress_queue.c - the queue under 16 threads at producer:consumer ratios
 * 1:15, 8:8 and 15:1: nothing lost, nothing duplicated, per-producer FIFO
 * (the run and its checks are in stress_container.h).
 */
#include "conc/queue.h"

#include "stress_container.h"

static int q_create(void **c)
{
	return conc_queue_create((conc_queue **)c);
}

static void q_destroy(void *c, void (*drop)(void *))
{
	conc_queue_destroy(c, drop);
}

static int q_push(void *c, void *item)
{
	return conc_queue_push(c, item);
}

static bool q_try_pop(void *c, void **item)
{
	return conc_queue_try_pop(c, item);
}

static int q_pop(void *c, void **item)
{
	return conc_queue_pop(c, item);
}

static int q_pop_timeout(void *c, void **item, uint64_t ns)
{
	return conc_queue_pop_timeout(c, item, ns);
}

static void q_close(void *c)
{
	conc_queue_close(c);
}

static bool q_is_empty(void *c)
{
	return conc_queue_is_empty(c);
}

static const sc_ops SC = {
	.name = "queue",
	.fifo = true,
	.create = q_create,
	.destroy = q_destroy,
	.push = q_push,
	.try_pop = q_try_pop,
	.pop = q_pop,
	.pop_timeout = q_pop_timeout,
	.close = q_close,
	.is_empty = q_is_empty,
};

int main(void)
{
	return sc_main("queue-stress");
}
