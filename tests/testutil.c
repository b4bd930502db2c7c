#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "testutil.h"

unsigned long conc_test_scale(void)
{
	const char *s = getenv("CONC_STRESS_SCALE");
	if (!s || !*s)
		return 1;
	char *end;
	unsigned long v = strtoul(s, &end, 10);
	return *end ? 1 : v;
}

unsigned long conc_test_iters(unsigned long n, unsigned long slow)
{
	unsigned long scale = conc_test_scale();
	unsigned long v = scale ? n * scale : n / 100;
	if (CONC_TEST_SANITIZED && slow > 1)
		v /= slow;
	return v ? v : 1;
}

static const char *volatile watchdog_what = "?";

static void on_alarm(int sig)
{
	(void)sig;
	static const char msg[] = "watchdog: test made no progress in time: ";
	/* async-signal-safe output only */
	ssize_t r = write(2, msg, sizeof msg - 1);
	r = write(2, watchdog_what, strlen(watchdog_what));
	r = write(2, "\n", 1);
	(void)r;
	_exit(3);
}

void conc_test_watchdog(const char *what, unsigned seconds)
{
	watchdog_what = what;
	signal(SIGALRM, on_alarm);
	alarm(CONC_TEST_SANITIZED ? seconds * 5 : seconds);
}

void conc_test_watchdog_off(void)
{
	alarm(0);
}

int conc_test_run_threads(unsigned n, void *(*fn)(void *), void *arg,
			  size_t stride)
{
	pthread_t *t = calloc(n, sizeof *t);
	if (!t)
		return 12;
	unsigned started = 0;
	int err = 0;
	for (; started < n; started++) {
		err = pthread_create(&t[started], NULL, fn,
				     (char *)arg + (size_t)started * stride);
		if (err)
			break;
	}
	for (unsigned i = 0; i < started; i++)
		pthread_join(t[i], NULL);
	free(t);
	return err;
}
