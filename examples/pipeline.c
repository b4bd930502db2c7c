/*
 * pipeline.c - a three-stage pipeline joined by bounded channels.
 *
 *   source --[a: 16]--> 2 doublers --[b: 16]--> sink
 *
 * The source sends 1..N; the channels hold 16 items each, so a fast stage
 * waits for a slow one instead of filling memory (back-pressure).  Shutdown
 * is by close alone: the source closes `a` when it is done; each doubler
 * stops when its receive says EPIPE (closed and drained: nothing the
 * source sent is lost), and the last doubler to stop closes `b`; the sink
 * stops the same way and prints what it got.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>

#include <conc/chan.h>

enum { N = 100000, DOUBLERS = 2, CAP = 16 };

static conc_chan *a, *b;
static atomic_int doublers_left = DOUBLERS;
static size_t most_buffered; /* the sink's view of b's length */

static void *source(void *arg)
{
	(void)arg;
	for (uintptr_t i = 1; i <= N; i++)
		if (conc_chan_send(a, (void *)i) != 0) /* blocks while a is full */
			return (void *)1;
	conc_chan_close(a);
	return NULL;
}

static void *doubler(void *arg)
{
	(void)arg;
	void *it;
	while (conc_chan_recv(a, &it) == 0)
		if (conc_chan_send(b, (void *)((uintptr_t)it * 2)) != 0)
			return (void *)1;
	/* EPIPE: a is closed and empty; the last doubler closes b */
	if (atomic_fetch_sub(&doublers_left, 1) == 1)
		conc_chan_close(b);
	return NULL;
}

int main(void)
{
	if (conc_chan_create(&a, CAP) != 0 || conc_chan_create(&b, CAP) != 0)
		return 1;
	pthread_t s, d[DOUBLERS];
	pthread_create(&s, NULL, source, NULL);
	for (int i = 0; i < DOUBLERS; i++)
		pthread_create(&d[i], NULL, doubler, NULL);

	uint64_t sum = 0, count = 0;
	void *it;
	int r;
	while ((r = conc_chan_recv(b, &it)) == 0) {
		sum += (uintptr_t)it;
		count++;
		size_t len = conc_chan_len(b);
		if (len > most_buffered)
			most_buffered = len;
	}
	void *ret;
	int bad = r != EPIPE;
	pthread_join(s, &ret);
	bad |= ret != NULL;
	for (int i = 0; i < DOUBLERS; i++) {
		pthread_join(d[i], &ret);
		bad |= ret != NULL;
	}
	printf("Pipeline sum: %llu over %llu items\n", (unsigned long long)sum,
	       (unsigned long long)count);
	printf("At most %zu of %d items buffered between stages 2 and 3\n", most_buffered, CAP);
	conc_chan_destroy(a, NULL);
	conc_chan_destroy(b, NULL);
	return bad || most_buffered > CAP;
}
