/*
 * test_chaos.c - chaos mode (CONC_CHAOS=1, base/chaos.h): the switch is
 * read once, libconc's own retired memory is poisoned, the epoch reclaims
 * eagerly, conc__park_wait wakes spuriously - and, under all of that,
 * blocking pops and pool waits still lose nothing.
 *
 * main() sets CONC_CHAOS=1 before libconc's first use (meson sets it too),
 * so everything here runs in chaos mode.  `test_chaos --probe` only reports
 * the switch through its exit status: the parsing test runs it in child
 * processes with other values.
 */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "testutil.h"

#include "conc/cpu.h"
#include "conc/epoch.h"
#include "conc/pool.h"
#include "conc/queue.h"
#include "conc/stack.h"
#include "base/chaos.h"
#include "epoch/epoch_internal.h"

#define PROBE_ON 10
#define PROBE_OFF 11

static conc__chaos_counts counts_now(void)
{
	conc__chaos_counts c;
	conc__chaos_get_counts(&c);
	return c;
}

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Figures of the blocking tests, for the summary line. */
static uint64_t spurious_total, lost_total;
static unsigned blocking_runs;

/* ---- the switch ------------------------------------------------------------ */

/* Run this binary with --probe and CONC_CHAOS = value (NULL: unset);
 * returns the probe's verdict (PROBE_ON / PROBE_OFF) or -1. */
static int probe(const char *value)
{
	pid_t pid = fork();
	if (pid < 0)
		return -1;
	if (pid == 0) {
		if (value)
			setenv("CONC_CHAOS", value, 1);
		else
			unsetenv("CONC_CHAOS");
		execl("/proc/self/exe", "test_chaos", "--probe", (char *)NULL);
		_exit(127);
	}
	int st;
	if (waitpid(pid, &st, 0) != pid || !WIFEXITED(st))
		return -1;
	return WEXITSTATUS(st);
}

static void test_switch_read_once(void **state)
{
	(void)state;
	assert_true(conc_chaos_enabled());
	/* Read once: changing the environment later changes nothing. */
	assert_int_equal(setenv("CONC_CHAOS", "0", 1), 0);
	assert_true(conc_chaos_enabled());
	assert_int_equal(unsetenv("CONC_CHAOS"), 0);
	assert_true(conc_chaos_enabled());
	assert_int_equal(setenv("CONC_CHAOS", "1", 1), 0);
}

/* The values: only "1" switches it on (child processes that exec this
 * binary: named *fork* so that qemu-user runs skip it, where
 * /proc/self/exe is the emulator). */
static void test_switch_values_fork(void **state)
{
	(void)state;
	assert_int_equal(probe("1"), PROBE_ON);
	assert_int_equal(probe(NULL), PROBE_OFF);
	assert_int_equal(probe("0"), PROBE_OFF);
	assert_int_equal(probe(""), PROBE_OFF);
	assert_int_equal(probe("10"), PROBE_OFF);
}

/* ---- poisoning ----------------------------------------------------------- */

static void test_poison_pattern(void **state)
{
	(void)state;
	unsigned char buf[96];
	memset(buf, 0, sizeof buf);
	uint64_t before = counts_now().poisoned;
	conc__chaos_poison(buf + 8, 80);
	for (size_t i = 0; i < sizeof buf; i++)
		assert_int_equal(buf[i], i >= 8 && i < 88 ? CONC__CHAOS_POISON : 0);
	assert_true(counts_now().poisoned >= before + 1);
}

static atomic_uint deferred_ran;

static void deferred_fn(void *arg)
{
	(void)arg;
	atomic_fetch_add(&deferred_ran, 1);
}

/* Every object libconc retires and owns - stack nodes, queue segments,
 * defer records - is poisoned before it is freed or cached.  (Counted, not
 * read back: reading freed memory would be the test's own bug.) */
static void test_poison_on_reclaim(void **state)
{
	(void)state;
	conc_epoch *d;
	assert_int_equal(conc_epoch_create(&d), 0);

	/* Stack on a private domain: popped nodes are retired in batches of
	 * RETIRE_BATCH, and those still pending at destroy go back to the
	 * caches there: poisoned by the reclaim or by destroy. */
	conc_stack *s;
	assert_int_equal(conc_stack_create_in(&s, d), 0);
	enum { NODES = 300 };
	for (uintptr_t i = 1; i <= NODES; i++)
		assert_int_equal(conc_stack_push(s, (void *)i), 0);
	uint64_t before = counts_now().poisoned;
	for (unsigned i = 0; i < NODES; i++) {
		void *x;
		assert_true(conc_stack_try_pop(s, &x));
	}
	assert_int_equal(conc_epoch_barrier(d), 0);
	conc_stack_destroy(s, NULL);
	uint64_t stack_poisoned = counts_now().poisoned - before;
	assert_true(stack_poisoned >= NODES);

	/* Queue: 3 segments' worth of items; popping them retires the first
	 * two segments (the last stays as head). */
	conc_queue *q;
	assert_int_equal(conc_queue_create_in(&q, d), 0);
	unsigned items = 3 * 1024;
	for (uintptr_t i = 0; i < items; i++)
		assert_int_equal(conc_queue_push(q, (void *)i), 0);
	before = counts_now().poisoned;
	for (uintptr_t i = 0; i < items; i++) {
		void *x;
		assert_true(conc_queue_try_pop(q, &x));
		assert_ptr_equal(x, (void *)i);
	}
	assert_int_equal(conc_epoch_barrier(d), 0);
	assert_true(counts_now().poisoned - before >= 2);
	conc_queue_destroy(q, NULL);

	/* defer: the record around the callback. */
	atomic_store(&deferred_ran, 0);
	before = counts_now().poisoned;
	for (int i = 0; i < 10; i++)
		assert_int_equal(conc_epoch_defer(d, deferred_fn, NULL), 0);
	assert_int_equal(conc_epoch_barrier(d), 0);
	assert_int_equal(atomic_load(&deferred_ran), 10);
	assert_true(counts_now().poisoned - before >= 10);

	assert_int_equal(conc_epoch_destroy(d), 0);
	print_message("chaos: poisoned %llu stack nodes, >= 2 segments, 10 defer records\n",
		      (unsigned long long)stack_poisoned);
}

/* ---- eager reclamation ---------------------------------------------------- */

static atomic_ulong eager_freed;

static void eager_free(conc_epoch_node *n)
{
	(void)n;
	atomic_fetch_add(&eager_freed, 1);
}

/* Outside chaos mode a thread holds up to about GRACE x ADVANCE_EVERY
 * retired nodes; in chaos mode every retire advances and collects, so with
 * nobody pinned the backlog stays within a few nodes. */
static void test_eager_reclamation(void **state)
{
	(void)state;
	conc_epoch *d;
	assert_int_equal(conc_epoch_create(&d), 0);
	unsigned long n = conc_test_iters(20000, 10);
	conc_epoch_node *nodes = calloc(n, sizeof *nodes);
	assert_non_null(nodes);
	atomic_store(&eager_freed, 0);
	uint64_t max_pending = 0;
	for (unsigned long i = 0; i < n; i++) {
		conc_epoch_retire(d, &nodes[i], eager_free);
		conc_epoch_stats st;
		conc_epoch_get_stats(d, &st);
		if (st.pending > max_pending)
			max_pending = st.pending;
	}
	unsigned long freed_before_barrier = atomic_load(&eager_freed);
	assert_int_equal(conc_epoch_barrier(d), 0);
	assert_int_equal(atomic_load(&eager_freed), n);
	assert_int_equal(conc_epoch_destroy(d), 0);
	free(nodes);
	/* GRACE + 1 epochs of one node each, plus slack for one more. */
	assert_true(max_pending <= 2 * CONC__EPOCH_GRACE + 2);
	assert_true(max_pending < CONC__EPOCH_ADVANCE_EVERY);
	assert_true(freed_before_barrier + max_pending >= n);
	printf("reliability: chaos eager reclamation | retired=%lu max_pending=%llu"
	       " (normal bound ~%u)\n",
	       n, (unsigned long long)max_pending,
	       CONC__EPOCH_GRACE * CONC__EPOCH_ADVANCE_EVERY);
	fflush(stdout);
}

/* ---- blocking pops under spurious wake-ups --------------------------------- */

#define PRODUCERS 4
#define CONSUMERS 4

typedef struct container_ops {
	const char *name;
	bool fifo; /* per-producer order holds for each consumer */
	int (*create)(void **c);
	void (*destroy)(void *c);
	int (*push)(void *c, void *item);
	int (*pop)(void *c, void **item);
	void (*close)(void *c);
} container_ops;

static int q_create(void **c) { return conc_queue_create((conc_queue **)c); }
static void q_destroy(void *c) { conc_queue_destroy(c, NULL); }
static int q_push(void *c, void *x) { return conc_queue_push(c, x); }
static int q_pop(void *c, void **x) { return conc_queue_pop(c, x); }
static void q_close(void *c) { conc_queue_close(c); }
static int s_create(void **c) { return conc_stack_create((conc_stack **)c); }
static void s_destroy(void *c) { conc_stack_destroy(c, NULL); }
static int s_push(void *c, void *x) { return conc_stack_push(c, x); }
static int s_pop(void *c, void **x) { return conc_stack_pop(c, x); }
static void s_close(void *c) { conc_stack_close(c); }

static const container_ops queue_ops = {"queue", true, q_create, q_destroy, q_push, q_pop, q_close};
static const container_ops stack_ops = {"stack", false, s_create, s_destroy, s_push, s_pop, s_close};

static struct {
	const container_ops *ops;
	void *c;
	unsigned long per;          /* items per producer */
	atomic_uchar *seen;         /* PRODUCERS x per, times seen */
	atomic_ulong bad_push;      /* pushes that failed */
	atomic_ulong bad_pop;       /* pops that returned other than 0/EPIPE */
	atomic_ulong order;         /* per-producer FIFO violations (queue) */
	atomic_ulong corrupt;       /* items that are not (producer, seq) */
} bt;

static const uintptr_t producer_ids[PRODUCERS] = {0, 1, 2, 3};

/* Items: producer << 32 | seq, + 1 (never NULL, though NULL is legal). */
static void *producer(void *arg)
{
	uintptr_t p = *(const uintptr_t *)arg;
	uint64_t rng = 0x9E3779B97F4A7C15ULL * (p + 1);
	for (unsigned long k = 0; k < bt.per; k++) {
		if (bt.ops->push(bt.c, (void *)((p << 32 | k) + 1)))
			atomic_fetch_add(&bt.bad_push, 1);
		/* let the consumers run dry and sleep now and then */
		if ((conc_test_rand(&rng) & 63) == 0)
			sched_yield();
	}
	return NULL;
}

static void *consumer(void *arg)
{
	(void)arg;
	unsigned long last[PRODUCERS];
	for (int p = 0; p < PRODUCERS; p++)
		last[p] = (unsigned long)-1;
	for (;;) {
		void *x;
		int rc = bt.ops->pop(bt.c, &x);
		if (rc == EPIPE)
			break;
		if (rc) {
			atomic_fetch_add(&bt.bad_pop, 1);
			break;
		}
		uintptr_t v = (uintptr_t)x - 1;
		uintptr_t p = v >> 32;
		unsigned long k = (unsigned long)(v & 0xffffffffu);
		if (p >= PRODUCERS || k >= bt.per) {
			atomic_fetch_add(&bt.corrupt, 1);
			continue;
		}
		atomic_fetch_add(&bt.seen[p * bt.per + k], 1);
		if (bt.ops->fifo) {
			if (last[p] != (unsigned long)-1 && k <= last[p])
				atomic_fetch_add(&bt.order, 1);
			last[p] = k;
		}
	}
	return NULL;
}

static void *run_consumers(void *arg)
{
	(void)arg;
	intptr_t rc = conc_test_run_threads(CONSUMERS, consumer, NULL, 0);
	return (void *)rc;
}

static void blocking_exactly_once(const container_ops *ops)
{
	conc_test_watchdog(ops->name, 120);
	bt.ops = ops;
	bt.per = conc_test_iters(50000, 10);
	bt.seen = calloc(PRODUCERS * bt.per, sizeof *bt.seen);
	assert_non_null(bt.seen);
	atomic_store(&bt.bad_push, 0);
	atomic_store(&bt.bad_pop, 0);
	atomic_store(&bt.order, 0);
	atomic_store(&bt.corrupt, 0);
	assert_int_equal(ops->create(&bt.c), 0);
	uint64_t spurious0 = counts_now().spurious;

	pthread_t cons;
	assert_int_equal(pthread_create(&cons, NULL, run_consumers, NULL), 0);
	int rc = conc_test_run_threads(PRODUCERS, producer, (void *)producer_ids,
				       sizeof producer_ids[0]);
	ops->close(bt.c); /* consumers drain, then see EPIPE */
	void *crc;
	assert_int_equal(pthread_join(cons, &crc), 0);
	assert_int_equal(rc, 0);
	assert_null(crc);

	unsigned long lost = 0, dup = 0;
	for (unsigned long i = 0; i < PRODUCERS * bt.per; i++) {
		unsigned char n = atomic_load(&bt.seen[i]);
		lost += n == 0;
		dup += n > 1;
	}
	uint64_t spurious = counts_now().spurious - spurious0;
	ops->destroy(bt.c);
	free(bt.seen);
	conc_test_watchdog_off();
	print_message("chaos %s: items=%lu lost=%lu dup=%lu order=%lu spurious=%llu\n",
		      ops->name, PRODUCERS * bt.per, lost, dup,
		      (unsigned long)atomic_load(&bt.order), (unsigned long long)spurious);
	spurious_total += spurious;
	lost_total += lost + dup;
	assert_int_equal(atomic_load(&bt.bad_push), 0);
	assert_int_equal(atomic_load(&bt.bad_pop), 0);
	assert_int_equal(atomic_load(&bt.corrupt), 0);
	assert_int_equal(lost, 0);
	assert_int_equal(dup, 0);
	assert_int_equal(atomic_load(&bt.order), 0);
	blocking_runs++;
}

static void test_queue_blocking_pops(void **state)
{
	(void)state;
	blocking_exactly_once(&queue_ops);
}

static void test_stack_blocking_pops(void **state)
{
	(void)state;
	blocking_exactly_once(&stack_ops);
}

/* A timed pop on an empty container must not return early on a spurious
 * wake-up: it waits for the whole timeout. */
static void test_timeout_not_cut_short(void **state)
{
	(void)state;
	conc_queue *q;
	conc_stack *s;
	assert_int_equal(conc_queue_create(&q), 0);
	assert_int_equal(conc_stack_create(&s), 0);
	uint64_t spurious0 = counts_now().spurious;
	const uint64_t timeout = 5000000; /* 5 ms */
	/* At least 20 rounds, then on until a spurious wake-up has been
	 * injected (each sleep is woken early with probability 1/4): 20 rounds
	 * alone miss one with probability 0.75^40, about 1e-5, which is a
	 * spurious failure; 200 rounds miss with 0.75^400, never in practice.
	 * Every round checks the whole timeout was waited. */
	int rounds = 0;
	while (rounds < 20 || (counts_now().spurious == spurious0 && rounds < 200)) {
		void *x;
		uint64_t t0 = now_ns();
		assert_int_equal(conc_queue_pop_timeout(q, &x, timeout), ETIMEDOUT);
		assert_true(now_ns() - t0 >= timeout);
		t0 = now_ns();
		assert_int_equal(conc_stack_pop_timeout(s, &x, timeout), ETIMEDOUT);
		assert_true(now_ns() - t0 >= timeout);
		rounds++;
	}
	uint64_t spurious = counts_now().spurious - spurious0;
	conc_queue_destroy(q, NULL);
	conc_stack_destroy(s, NULL);
	/* Some sleeps were woken early, and none returned before its time. */
	assert_true(spurious > 0);
	spurious_total += spurious;
}

/* ---- the pool: submit / wait rounds --------------------------------------- */

static struct {
	atomic_uchar *ran;
	atomic_ulong ran_count;
} pt;

static void pool_task(void *arg)
{
	atomic_fetch_add(&pt.ran[(uintptr_t)arg], 1);
	atomic_fetch_add(&pt.ran_count, 1);
}

/* Every round: execute `per` tasks, wait; when wait returns every task of
 * the round has run exactly once.  Workers park between rounds (and wake
 * spuriously); max_queued makes the submitter sleep on room too. */
static void test_pool_submit_wait(void **state)
{
	(void)state;
	conc_test_watchdog("pool submit/wait", 120);
	unsigned long rounds = conc_test_iters(2000, 10), per = 16;
	pt.ran = calloc(rounds * per, sizeof *pt.ran);
	assert_non_null(pt.ran);
	atomic_store(&pt.ran_count, 0);
	conc_pool *p;
	conc_pool_config cfg = {.threads = 4, .name = "chaos", .max_queued = 4};
	assert_int_equal(conc_pool_create(&p, &cfg), 0);
	uint64_t spurious0 = counts_now().spurious;
	unsigned long early = 0;
	for (unsigned long r = 0; r < rounds; r++) {
		for (unsigned long k = 0; k < per; k++)
			assert_int_equal(conc_pool_execute(p, pool_task,
							   (void *)(uintptr_t)(r * per + k)), 0);
		assert_int_equal(conc_pool_wait(p), 0);
		if (atomic_load(&pt.ran_count) != (r + 1) * per)
			early++; /* wait returned before the round's tasks ran */
	}
	assert_int_equal(conc_pool_destroy(p), 0);
	unsigned long lost = 0, dup = 0;
	for (unsigned long i = 0; i < rounds * per; i++) {
		unsigned char n = atomic_load(&pt.ran[i]);
		lost += n == 0;
		dup += n > 1;
	}
	free(pt.ran);
	uint64_t spurious = counts_now().spurious - spurious0;
	conc_test_watchdog_off();
	print_message("chaos pool: tasks=%lu lost=%lu dup=%lu early_wait=%lu spurious=%llu\n",
		      rounds * per, lost, dup, early, (unsigned long long)spurious);
	spurious_total += spurious;
	lost_total += lost + dup + early;
	assert_int_equal(lost, 0);
	assert_int_equal(dup, 0);
	assert_int_equal(early, 0);
	blocking_runs++;
}

/* Last: the summary line of the runs above. */
static void test_summary(void **state)
{
	(void)state;
	assert_int_equal(blocking_runs, 3);
	assert_true(spurious_total > 0);
	/* The chaos points were reached (the pool's search path has one). */
	uint64_t yields = counts_now().yields;
	print_message("chaos: %llu yields at chaos points so far\n", (unsigned long long)yields);
	assert_true(yields > 0);
	printf("reliability: chaos spurious wakeups | injected=%llu lost=%llu\n",
	       (unsigned long long)spurious_total, (unsigned long long)lost_total);
	fflush(stdout);
	assert_int_equal(lost_total, 0);
}

int main(int argc, char **argv)
{
	if (argc > 1 && strcmp(argv[1], "--probe") == 0)
		return conc_chaos_enabled() ? PROBE_ON : PROBE_OFF;
	/* Before libconc's first use: everything below runs in chaos mode. */
	setenv("CONC_CHAOS", "1", 1);
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_switch_read_once),
		cmocka_unit_test(test_switch_values_fork),
		cmocka_unit_test(test_poison_pattern),
		cmocka_unit_test(test_poison_on_reclaim),
		cmocka_unit_test(test_eager_reclamation),
		cmocka_unit_test(test_queue_blocking_pops),
		cmocka_unit_test(test_stack_blocking_pops),
		cmocka_unit_test(test_timeout_not_cut_short),
		cmocka_unit_test(test_pool_submit_wait),
		cmocka_unit_test(test_summary),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
