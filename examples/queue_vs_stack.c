/*
 * queue_vs_stack.c - the tutorial's order demo: one thread pushes 1..10
 * into a queue and into a stack while another pops them as they come.  The
 * queue hands them over first in, first out; the stack last in, first out,
 * which shows once everything is pushed before the popping starts.
 */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>

#include <conc/queue.h>
#include <conc/stack.h>

enum { N = 10 };

static void *push_queue(void *arg)
{
	conc_queue *q = arg;
	for (uintptr_t i = 1; i <= N; i++)
		conc_queue_push(q, (void *)i);
	conc_queue_close(q); /* the popper's last pop gets EPIPE */
	return NULL;
}

int main(void)
{
	conc_queue *q;
	conc_stack *s;
	if (conc_queue_create(&q) != 0 || conc_stack_create(&s) != 0)
		return 1;

	/* Queue: a pushing thread and a popping thread at the same time. */
	pthread_t t;
	if (pthread_create(&t, NULL, push_queue, q) != 0)
		return 1;
	int ok = 1;
	uintptr_t expect = 1;
	void *item;
	printf("queue:");
	while (conc_queue_pop(q, &item) == 0) { /* blocks while empty */
		printf(" %lu", (unsigned long)(uintptr_t)item);
		ok &= (uintptr_t)item == expect++;
	}
	printf("\n");
	pthread_join(t, NULL);
	ok &= expect == N + 1;

	/* Stack: everything pushed first, then popped: last in, first out. */
	for (uintptr_t i = 1; i <= N; i++)
		conc_stack_push(s, (void *)i);
	printf("stack:");
	expect = N;
	while (conc_stack_try_pop(s, &item)) {
		printf(" %lu", (unsigned long)(uintptr_t)item);
		ok &= (uintptr_t)item == expect--;
	}
	printf("\n");
	ok &= expect == 0;

	conc_queue_destroy(q, NULL);
	conc_stack_destroy(s, NULL);
	return ok ? 0 : 1;
}
