#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "testutil.h"

/* CONC_TEST_SKIP=<glob>: cmocka skips the tests whose names match.  The
 * AArch64 cross files set it for what qemu-user cannot emulate (a thread
 * started in the child of a threaded fork fails an assertion inside qemu);
 * set before main so that no test file has to ask. */
__attribute__((constructor)) static void conc_test_skip_filter(void)
{
	const char *p = getenv("CONC_TEST_SKIP");
	if (p && *p) {
		/* cmocka 1.1 skips these silently: say so once */
		fprintf(stderr, "testutil: skipping tests that match CONC_TEST_SKIP=%s\n", p);
		cmocka_set_skip_filter(p);
	}
}

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
		/* no arithmetic on a NULL arg (UB, and UBSan says so) */
		err = pthread_create(&t[started], NULL, fn,
				     arg ? (char *)arg + (size_t)started * stride : NULL);
		if (err)
			break;
	}
	for (unsigned i = 0; i < started; i++)
		pthread_join(t[i], NULL);
	free(t);
	return err;
}
