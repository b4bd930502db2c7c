/*
 * tsan_planted_race.c - a data race on purpose.  The TSan build runs it
 * (tests/meson.build) and expects ThreadSanitizer to report it: a sanitizer
 * build that silently reports nothing would make every "clean under TSan"
 * worthless.
 */
#include <pthread.h>
#include <stdio.h>

static int counter; /* plain int, written by two threads: the race */

static void *bump(void *arg)
{
	(void)arg;
	for (int i = 0; i < 1000; i++)
		counter++;
	return NULL;
}

int main(void)
{
	pthread_t a, b;
	pthread_create(&a, NULL, bump, NULL);
	pthread_create(&b, NULL, bump, NULL);
	pthread_join(a, NULL);
	pthread_join(b, NULL);
	printf("counter=%d\n", counter);
	return 0;
}
