/*
 * queue_sum.c - the tutorial's first example with libconc: five threads
 * each push the number 10 a million times into one queue; once they are
 * done, the main thread pops everything and adds it up.
 */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>

#include <conc/queue.h>

enum { THREADS = 5, PUSHES = 1000000 };

static void *producer(void *arg)
{
	conc_queue *q = arg;
	for (int i = 0; i < PUSHES; i++)
		if (conc_queue_push(q, (void *)(uintptr_t)10) != 0)
			return (void *)1; /* ENOMEM: the item stays ours */
	return NULL;
}

int main(void)
{
	conc_queue *q;
	if (conc_queue_create(&q) != 0)
		return 1;

	pthread_t t[THREADS];
	for (int i = 0; i < THREADS; i++)
		if (pthread_create(&t[i], NULL, producer, q) != 0)
			return 1;
	int failed = 0;
	for (int i = 0; i < THREADS; i++) {
		void *r;
		pthread_join(t[i], &r);
		failed |= r != NULL;
	}

	uint64_t sum = 0;
	void *item;
	while (conc_queue_try_pop(q, &item))
		sum += (uintptr_t)item;
	printf("Final sum: %llu\n", (unsigned long long)sum);

	conc_queue_destroy(q, NULL);
	return failed || sum != (uint64_t)THREADS * PUSHES * 10;
}
