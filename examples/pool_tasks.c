/*
 * pool_tasks.c - the tutorial's thread pool: a pool with one worker per CPU
 * runs ten million tiny tasks; task i adds i to one shared counter.
 */
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>

#include <conc/pool.h>

enum { TASKS = 10000000 };

static atomic_ullong counter;

static void add(void *arg)
{
	/* relaxed: only the total matters, read after conc_pool_wait */
	atomic_fetch_add_explicit(&counter, (uintptr_t)arg, memory_order_relaxed);
}

int main(void)
{
	conc_pool *p;
	if (conc_pool_create(&p, NULL) != 0) /* NULL config: one worker per CPU */
		return 1;
	for (uintptr_t i = 0; i < TASKS; i++)
		if (conc_pool_execute(p, add, (void *)i) != 0)
			return 1;
	conc_pool_wait(p); /* every task executed so far has finished */
	unsigned long long total = atomic_load(&counter);
	printf("Counter: %llu (%u workers)\n", total, conc_pool_threads(p));
	conc_pool_destroy(p);
	return total != (unsigned long long)TASKS * (TASKS - 1) / 2;
}
