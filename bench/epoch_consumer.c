/*
 * epoch_consumer.c - W6 pin+unpin as a program outside the project builds
 * it: plain `-O2`, none of the project's flags, no LTO, the installed-style
 * headers and libconc.a, beside urcu-memb's inline read lock.  The meson
 * target runs exactly:
 *
 *   cc -O2 -pthread -I include bench/epoch_consumer.c libconc.a -lurcu-memb
 *
 * (Debian's gcc makes a PIE by default, so this is what a consumer gets.)
 * Each round runs the implementations in turn, the order rotated every
 * round; each figure is the median over the rounds of the slowest thread's
 * ns per pair, and the ratio is that time / libconc's (> 1: libconc faster).
 * "libconc+global" is the same loop written the way a reader of the header
 * may write it, conc_epoch_pin(conc_epoch_global()) each time: then every
 * pin and every unpin also calls conc_epoch_global(), which is out of line.
 *
 *   epoch_consumer [ROUNDS [PAIRS_PER_THREAD]]     default 7 rounds, 20M
 *
 * The loops are noinline functions of their own (consumer_conc_loop,
 * consumer_conc_global_loop, consumer_memb_loop) so that `objdump -d --no-show-raw-insn epoch_consumer`
 * shows each one whole.
 */
#define _LGPL_SOURCE /* urcu's inline fast path, as bench/peers/urcu_memb.c */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include <urcu/urcu-memb.h>

#include <conc/epoch.h>

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

__attribute__((noinline)) void consumer_conc_loop(conc_epoch *d, unsigned long n);
__attribute__((noinline)) void consumer_conc_global_loop(unsigned long n);
__attribute__((noinline)) void consumer_memb_loop(unsigned long n);

__attribute__((noinline)) void consumer_conc_loop(conc_epoch *d, unsigned long n)
{
	for (unsigned long i = 0; i < n; i++) {
		conc_epoch_pin(d);
		conc_epoch_unpin(d);
	}
}

__attribute__((noinline)) void consumer_conc_global_loop(unsigned long n)
{
	for (unsigned long i = 0; i < n; i++) {
		conc_epoch_pin(conc_epoch_global());
		conc_epoch_unpin(conc_epoch_global());
	}
}

__attribute__((noinline)) void consumer_memb_loop(unsigned long n)
{
	for (unsigned long i = 0; i < n; i++) {
		urcu_memb_read_lock();
		urcu_memb_read_unlock();
	}
}

enum { CONC, CONC_GLOBAL, MEMB, NIMPL };
static unsigned long pairs = 20000000ul;
static pthread_barrier_t start;

struct job {
	int impl;
	double secs;
};

static void *job_main(void *arg)
{
	struct job *j = arg;
	conc_epoch *d = conc_epoch_global();
	if (j->impl == MEMB)
		urcu_memb_register_thread();
	else
		conc_epoch_register(d);
	pthread_barrier_wait(&start);
	double t0 = now();
	if (j->impl == CONC)
		consumer_conc_loop(d, pairs);
	else if (j->impl == CONC_GLOBAL)
		consumer_conc_global_loop(pairs);
	else
		consumer_memb_loop(pairs);
	j->secs = now() - t0;
	if (j->impl == MEMB)
		urcu_memb_unregister_thread();
	return NULL;
}

/* ns per pair of the slowest of `threads` threads started together. */
static double run(int impl, unsigned threads)
{
	pthread_t t[2];
	struct job jobs[2];
	pthread_barrier_init(&start, NULL, threads);
	for (unsigned i = 0; i < threads; i++) {
		jobs[i] = (struct job){impl, 0};
		if (pthread_create(&t[i], NULL, job_main, &jobs[i]) != 0) {
			perror("pthread_create");
			exit(1);
		}
	}
	double worst = 0;
	for (unsigned i = 0; i < threads; i++) {
		pthread_join(t[i], NULL);
		if (jobs[i].secs > worst)
			worst = jobs[i].secs;
	}
	pthread_barrier_destroy(&start);
	return worst * 1e9 / (double)pairs;
}

static int cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

int main(int argc, char **argv)
{
	int rounds = argc > 1 ? atoi(argv[1]) : 7;
	if (argc > 2)
		pairs = strtoul(argv[2], NULL, 10);
	if (rounds < 1 || rounds > 99 || pairs == 0) {
		fprintf(stderr, "usage: %s [ROUNDS (1-99) [PAIRS_PER_THREAD]]\n", argv[0]);
		return 2;
	}
	printf("pin+unpin, plain -O2 consumer, %d rounds of %lu pairs per thread\n",
	       rounds, pairs);
	printf("%4s  %-15s %10s  %-15s %7s\n", "thr", "impl", "median ns", "min-max", "ratio");
	static const char *names[] = {"libconc", "libconc+global", "urcu-memb"};
	for (unsigned threads = 1; threads <= 2; threads++) {
		double s[NIMPL][99];
		for (int i = 0; i < NIMPL; i++)
			run(i, threads); /* warm-up: registration, page faults */
		for (int k = 0; k < rounds; k++)
			for (int j = 0; j < NIMPL; j++) {
				int impl = (k + j) % NIMPL; /* A B C, B C A, ... */
				s[impl][k] = run(impl, threads);
			}
		double med[NIMPL];
		for (int i = 0; i < NIMPL; i++) {
			qsort(s[i], (size_t)rounds, sizeof s[i][0], cmp);
			med[i] = rounds % 2 ? s[i][rounds / 2]
					    : (s[i][rounds / 2 - 1] + s[i][rounds / 2]) / 2;
		}
		for (int i = 0; i < NIMPL; i++)
			printf("%4u  %-15s %10.3f  %6.3f-%-8.3f %7.2f\n", threads, names[i],
			       med[i], s[i][0], s[i][rounds - 1], med[i] / med[CONC]);
	}
	return 0;
}
