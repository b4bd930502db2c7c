/*
 * test_internal.c - the shared internals: padding, backoff, parking, the
 * CPU count and the failure hooks.
 */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <signal.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "testutil.h"

#include "conc/cpu.h"
#include "base/backoff.h"
#include "base/check.h"
#include "base/fault.h"
#include "base/pad.h"
#include "base/park.h"

/* ---- padding ---------------------------------------------------------- */

static void test_internal_cache_line_matches_sysconf(void **state)
{
	(void)state;
	long line = sysconf(_SC_LEVEL1_DCACHE_LINESIZE);
	if (line <= 0) {
		/* Some kernels/VMs hide it from sysconf; sysfs still knows. */
		FILE *f = fopen("/sys/devices/system/cpu/cpu0/cache/index0/coherency_line_size", "r");
		if (f) {
			if (fscanf(f, "%ld", &line) != 1)
				line = -1;
			fclose(f);
		}
	}
	/* One source must exist on the machines we support.  The padding
	 * must cover whole lines of the real size (128-byte-line AArch64 parts
	 * exist), and on x86-64 the line is the constant. */
	assert_true(line > 0);
	assert_true(CONC_PAD >= line && CONC_PAD % line == 0);
	assert_true(CONC_PAD % CONC_CACHE_LINE == 0);
	if (CONC_CACHE_LINE_EXACT)
		assert_int_equal(line, CONC_CACHE_LINE);
}

struct two_hot {
	CONC_ALIGNED atomic_uint a;
	CONC_ALIGNED atomic_uint b;
};

static void test_internal_padding_separates(void **state)
{
	(void)state;
	struct two_hot *h = conc__aligned_alloc("test.hot", CONC_PAD, sizeof *h);
	assert_non_null(h);
	assert_int_equal((uintptr_t)&h->a % CONC_PAD, 0);
	assert_int_equal((uintptr_t)&h->b % CONC_PAD, 0);
	assert_true((char *)&h->b - (char *)&h->a >= CONC_PAD);
	assert_int_equal(conc__round_up(1, 64), 64);
	assert_int_equal(conc__round_up(64, 64), 64);
	assert_int_equal(conc__round_up(65, 64), 128);
	assert_int_equal(CONC_PAD_AFTER(8) + 8, CONC_PAD);
	free(h);
}

/* ---- backoff ---------------------------------------------------------- */

static void test_internal_backoff_grows_then_yields(void **state)
{
	(void)state;
	conc__backoff b = CONC__BACKOFF_INIT;
	unsigned rounds = 0;
	while (!conc__backoff_is_yielding(&b)) {
		conc__backoff_spin(&b);
		rounds++;
		assert_true(rounds <= CONC_BACKOFF_SPIN_SHIFT + 1);
	}
	assert_int_equal(rounds, CONC_BACKOFF_SPIN_SHIFT + 1);
	conc__backoff_spin(&b); /* yields; stays yielding */
	assert_true(conc__backoff_is_yielding(&b));
	conc__backoff_reset(&b);
	assert_false(conc__backoff_is_yielding(&b));
}

/* A CAS-loop counter under contention with backoff loses no increment. */
static atomic_ulong backoff_counter;
static unsigned long backoff_iters;

static void *backoff_worker(void *arg)
{
	(void)arg;
	for (unsigned long i = 0; i < backoff_iters; i++) {
		conc__backoff b = CONC__BACKOFF_INIT;
		unsigned long v = atomic_load_explicit(&backoff_counter, memory_order_relaxed);
		while (!atomic_compare_exchange_weak_explicit(&backoff_counter, &v, v + 1,
							      memory_order_relaxed,
							      memory_order_relaxed))
			conc__backoff_spin(&b);
	}
	return NULL;
}

static void test_internal_backoff_cas_counter(void **state)
{
	(void)state;
	backoff_iters = conc_test_iters(200000, 10);
	atomic_store(&backoff_counter, 0);
	conc_test_watchdog(__func__, 60);
	assert_int_equal(conc_test_run_threads(8, backoff_worker, NULL, 0), 0);
	conc_test_watchdog_off();
	assert_int_equal(atomic_load(&backoff_counter), 8 * backoff_iters);
}

/* ---- parking ---------------------------------------------------------- */

static void test_internal_park_deadline(void **state)
{
	(void)state;
	conc__park p = CONC__PARK_INIT;

	/* A deadline already past: returns false without sleeping. */
	unsigned key = conc__park_prepare(&p);
	assert_false(conc__park_wait(&p, key, conc__now_ns() - 1));
	assert_false(conc__park_has_waiters(&p));

	/* A short deadline with nobody notifying: false, and not early.
	 * (The loop absorbs spurious returns, as every caller must.) */
	uint64_t deadline = conc__deadline_after(2000000); /* 2 ms */
	bool in_time = true;
	while (in_time) {
		key = conc__park_prepare(&p);
		in_time = conc__park_wait(&p, key, deadline);
	}
	assert_true(conc__now_ns() >= deadline);
	assert_false(conc__park_has_waiters(&p));

	/* Saturation: huge relative timeouts mean no deadline. */
	assert_true(conc__deadline_after(UINT64_MAX) == CONC__NO_DEADLINE);
	assert_true(conc__deadline_after(UINT64_MAX - 5) == CONC__NO_DEADLINE);
	assert_true(conc__deadline_after(1000) != CONC__NO_DEADLINE);
}

static void test_internal_park_stale_key_returns(void **state)
{
	(void)state;
	conc__park p = CONC__PARK_INIT;
	unsigned key = conc__park_prepare(&p);
	/* A notify between prepare and wait bumps seq: the wait must not
	 * sleep (this would hang under the watchdog if it did). */
	conc__park_notify_one(&p);
	conc_test_watchdog(__func__, 10);
	assert_true(conc__park_wait(&p, key, CONC__NO_DEADLINE));
	conc_test_watchdog_off();
	/* Nobody waits now: notify is a load only (seq unchanged). */
	unsigned seq = atomic_load(&p.seq);
	conc__park_notify_one(&p);
	conc__park_notify_all(&p);
	assert_int_equal(atomic_load(&p.seq), seq);
	key = conc__park_prepare(&p);
	conc__park_cancel(&p);
	assert_false(conc__park_has_waiters(&p));
	(void)key;
}

/*
 * Producers add units to a counter and notify; consumers take units and
 * park when there are none.  Conservation: every unit produced is consumed
 * exactly once, and every consumer finishes (a lost wake-up would leave one
 * asleep with units available: the watchdog fails the test).
 */
enum { PARK_PRODUCERS = 4, PARK_CONSUMERS = 4 };
static struct {
	atomic_long units;    /* available */
	atomic_long consumed; /* total taken */
	atomic_int producers_left;
	conc__park park;
	unsigned long per_producer;
} pc;

static void *park_producer(void *arg)
{
	(void)arg;
	for (unsigned long i = 0; i < pc.per_producer; i++) {
		/* seq_cst RMW: the publishing write the park protocol needs. */
		atomic_fetch_add_explicit(&pc.units, 1, memory_order_seq_cst);
		conc__park_notify_one(&pc.park);
		if ((i & 1023) == 0)
			sched_yield();
	}
	if (atomic_fetch_sub_explicit(&pc.producers_left, 1, memory_order_seq_cst) == 1)
		conc__park_notify_all(&pc.park);
	return NULL;
}

static bool take_unit(void)
{
	long u = atomic_load_explicit(&pc.units, memory_order_acquire);
	while (u > 0)
		if (atomic_compare_exchange_weak_explicit(&pc.units, &u, u - 1,
							  memory_order_acquire,
							  memory_order_acquire))
			return true;
	return false;
}

static void *park_consumer(void *arg)
{
	long *mine = arg;
	for (;;) {
		if (take_unit()) {
			(*mine)++;
			continue;
		}
		unsigned key = conc__park_prepare(&pc.park);
		if (take_unit()) {
			conc__park_cancel(&pc.park);
			(*mine)++;
			continue;
		}
		if (atomic_load_explicit(&pc.producers_left, memory_order_seq_cst) == 0) {
			conc__park_cancel(&pc.park);
			if (take_unit()) {
				(*mine)++;
				continue;
			}
			break;
		}
		conc__park_wait(&pc.park, key, CONC__NO_DEADLINE);
	}
	atomic_fetch_add(&pc.consumed, *mine);
	return NULL;
}

static void *park_role(void *arg)
{
	long *slot = arg;
	return slot[1] ? park_producer(slot) : park_consumer(slot);
}

static void test_internal_park_no_lost_wakeup(void **state)
{
	(void)state;
	long slots[PARK_PRODUCERS + PARK_CONSUMERS][2] = {{0}};
	atomic_store(&pc.units, 0);
	atomic_store(&pc.consumed, 0);
	atomic_store(&pc.producers_left, PARK_PRODUCERS);
	conc__park_init(&pc.park);
	pc.per_producer = conc_test_iters(500000, 20);
	for (int i = 0; i < PARK_PRODUCERS; i++)
		slots[i][1] = 1;
	conc_test_watchdog(__func__, 120);
	assert_int_equal(conc_test_run_threads(PARK_PRODUCERS + PARK_CONSUMERS,
					       park_role, slots, sizeof slots[0]), 0);
	conc_test_watchdog_off();
	long total = 0;
	for (int i = PARK_PRODUCERS; i < PARK_PRODUCERS + PARK_CONSUMERS; i++)
		total += slots[i][0];
	assert_int_equal(total, (long)(PARK_PRODUCERS * pc.per_producer));
	assert_int_equal(atomic_load(&pc.consumed), total);
	assert_int_equal(atomic_load(&pc.units), 0);
	assert_false(conc__park_has_waiters(&pc.park));
}

/*
 * A token passes around a ring of 8 threads on 2 cores: each waits (parked)
 * for its turn, hands the token on and wakes everyone.  Every hand-off needs
 * a real sleep and a real wake-up; a lost one stops the ring.
 */
enum { RING = 8 };
static struct {
	atomic_ulong turn; /* total hand-offs so far; owner = turn % RING */
	unsigned long rounds;
	conc__park park;
} ring;

static void *ring_worker(void *arg)
{
	unsigned long me = (unsigned long)(uintptr_t)arg;
	for (;;) {
		unsigned long t = atomic_load_explicit(&ring.turn, memory_order_acquire);
		if (t >= ring.rounds)
			break;
		if (t % RING != me) {
			unsigned key = conc__park_prepare(&ring.park);
			t = atomic_load_explicit(&ring.turn, memory_order_acquire);
			if (t % RING == me || t >= ring.rounds) {
				conc__park_cancel(&ring.park);
				continue;
			}
			conc__park_wait(&ring.park, key, CONC__NO_DEADLINE);
			continue;
		}
		atomic_store_explicit(&ring.turn, t + 1, memory_order_seq_cst);
		conc__park_notify_all(&ring.park);
	}
	return NULL;
}

static void test_internal_park_ring_oversubscribed(void **state)
{
	(void)state;
	pthread_t t[RING];
	ring.rounds = conc_test_iters(20000, 10);
	atomic_store(&ring.turn, 0);
	conc__park_init(&ring.park);
	conc_test_watchdog(__func__, 120);
	for (uintptr_t i = 0; i < RING; i++)
		assert_int_equal(pthread_create(&t[i], NULL, ring_worker, (void *)i), 0);
	for (int i = 0; i < RING; i++)
		pthread_join(t[i], NULL);
	conc_test_watchdog_off();
	assert_int_equal(atomic_load(&ring.turn), ring.rounds);
	assert_false(conc__park_has_waiters(&ring.park));
}

/* ---- cpu count, fault hooks ------------------------------------------- */

static void test_internal_cpu_count(void **state)
{
	(void)state;
	cpu_set_t set;
	assert_int_equal(sched_getaffinity(0, sizeof set, &set), 0);
	assert_int_equal(conc_cpu_count(), (unsigned)CPU_COUNT(&set));
	assert_true(conc_cpu_count() >= 1);

	/* Narrow the mask to one CPU: the count follows. */
	int first = 0;
	while (!CPU_ISSET(first, &set))
		first++;
	cpu_set_t one;
	CPU_ZERO(&one);
	CPU_SET(first, &one);
	assert_int_equal(sched_setaffinity(0, sizeof one, &one), 0);
	unsigned narrowed = conc_cpu_count();
	assert_int_equal(sched_setaffinity(0, sizeof set, &set), 0);
	assert_int_equal(narrowed, 1);

	errno = 1234;
	(void)conc_cpu_count();
	assert_int_equal(errno, 1234); /* the library never changes errno */
}

#if defined(CONC_FAULT_HOOKS) && CONC_FAULT_HOOKS
static void *never_run(void *arg)
{
	return arg;
}

static void test_internal_fault_hooks(void **state)
{
	(void)state;
	conc__fault_fail_alloc_at(2);
	void *a = conc__malloc("test.alloc", 8);
	void *b = conc__malloc("test.alloc", 8);
	void *c = conc__malloc("test.alloc", 8);
	assert_non_null(a);
	assert_null(b);
	assert_non_null(c);
	assert_int_equal(conc__fault_alloc_calls(), 3);
	free(a);
	free(c);
	conc__fault_fail_thread_at(1);
	pthread_t t;
	assert_int_equal(conc__thread_create("test.thread", &t, NULL, never_run, NULL), EAGAIN);
	conc__fault_reset();
	assert_int_equal(conc__fault_alloc_calls(), 0);
}
#endif

/*
 * base/check.h: in a debug-checks build a broken invariant prints its name
 * and aborts (the child dies of SIGABRT with the message on its stderr);
 * in any other build the condition is not even evaluated (the child's
 * side effect does not happen) and nothing is printed.
 */
static int check_evaluated;

static __attribute__((unused)) bool check_planted(void)
{
	check_evaluated = 1;
	return false;
}

static void test_internal_check_fork(void **state)
{
	(void)state;
	int pipefd[2];
	assert_int_equal(pipe(pipefd), 0);
	fflush(NULL);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		dup2(pipefd[1], 2);
		close(pipefd[0]);
		CONC__CHECK(check_planted(), "planted by test_internal");
		_exit(check_evaluated ? 10 : 0);
	}
	close(pipefd[1]);
	char buf[256] = {0};
	ssize_t n = 0, r;
	while (n < (ssize_t)sizeof buf - 1 && (r = read(pipefd[0], buf + n, sizeof buf - 1 - n)) > 0)
		n += r;
	close(pipefd[0]);
	int status = 0;
	assert_int_equal(waitpid(pid, &status, 0), pid);
#ifdef CONC_DEBUG_CHECKS
	assert_true(WIFSIGNALED(status));
	assert_int_equal(WTERMSIG(status), SIGABRT);
	assert_non_null(strstr(buf, "libconc: invariant broken: planted by test_internal"));
#else
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0); /* not evaluated */
	assert_int_equal(n, 0);
#endif
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_internal_cache_line_matches_sysconf),
		cmocka_unit_test(test_internal_padding_separates),
		cmocka_unit_test(test_internal_backoff_grows_then_yields),
		cmocka_unit_test(test_internal_backoff_cas_counter),
		cmocka_unit_test(test_internal_park_deadline),
		cmocka_unit_test(test_internal_park_stale_key_returns),
		cmocka_unit_test(test_internal_park_no_lost_wakeup),
		cmocka_unit_test(test_internal_park_ring_oversubscribed),
		cmocka_unit_test(test_internal_cpu_count),
#if defined(CONC_FAULT_HOOKS) && CONC_FAULT_HOOKS
		cmocka_unit_test(test_internal_fault_hooks),
#endif
		cmocka_unit_test(test_internal_check_fork),
	};
	return cmocka_run_group_tests_name("internal", tests, NULL, NULL);
}
