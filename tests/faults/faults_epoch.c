/*
 * faults_epoch.c - the faults suite (issue 8, tests/lib/faults.h): conc/epoch.h.
 * Domains, defers and retires swept; registration past the
 * thread records; defers from four threads with a quarter failing.
 */
#include <pthread.h>
#include <sched.h>
#include <stdlib.h>
#include <time.h>

#include "faults.h"

#include "queue/queue_internal.h"
#include "stack/stack_internal.h"
#include "pool/pool_internal.h"
#include "scope/scope_internal.h"

/* ---- epoch --------------------------------------------------------------- */

static atomic_long dropped_nodes;

static void bump(void *arg)
{
	atomic_fetch_add((atomic_long *)arg, 1);
}

static void run_epoch_create(struct sweep *sw)
{
	conc_epoch *d = SENTINEL;
	arm(sw);
	int err = conc_epoch_create(&d);
	disarm(sw);
	CHECK(sw, err == want_err(sw));
	if (err) {
		CHECK(sw, d == SENTINEL);
		CHECK(sw, conc_epoch_create(&d) == 0); /* usable afterwards */
	}
	atomic_long n = 0;
	CHECK(sw, conc_epoch_defer(d, bump, &n) == 0);
	CHECK(sw, conc_epoch_barrier(d) == 0);
	CHECK(sw, atomic_load(&n) == 1);
	check_destroy_domain(sw, d);
}

static void run_epoch_defer(struct sweep *sw)
{
	conc_epoch *d;
	CHECK(sw, conc_epoch_create(&d) == 0);
	atomic_long n = 0;
	arm(sw);
	int err = conc_epoch_defer(d, bump, &n);
	disarm(sw);
	CHECK(sw, err == want_err(sw));
	CHECK(sw, conc_epoch_barrier(d) == 0);
	conc_epoch_stats st;
	conc_epoch_get_stats(d, &st);
	/* ENOMEM: nothing deferred - not counted, never run */
	CHECK(sw, atomic_load(&n) == (err ? 0 : 1));
	CHECK(sw, st.retired == (err ? 0u : 1u));
	CHECK(sw, conc_epoch_defer(d, bump, &n) == 0); /* usable afterwards */
	CHECK(sw, conc_epoch_barrier(d) == 0);
	CHECK(sw, atomic_load(&n) == (err ? 1 : 2));
	check_destroy_domain(sw, d);
}

static conc_epoch_node retire_nodes[64];

static void count_node(conc_epoch_node *n)
{
	(void)n;
	atomic_fetch_add(&dropped_nodes, 1);
}

/* retire, pin/unpin, flush, barrier, destroy: documented never to fail;
 * the count shows they make no allocation at all. */
static void run_epoch_rest(struct sweep *sw)
{
	conc_epoch *d;
	CHECK(sw, conc_epoch_create(&d) == 0);
	atomic_store(&dropped_nodes, 0);
	arm(sw);
	for (int i = 0; i < 64; i++) {
		conc_epoch_pin(d);
		conc_epoch_retire(d, &retire_nodes[i], count_node);
		conc_epoch_unpin(d);
		if (i % 16 == 0)
			conc_epoch_flush(d);
	}
	int b = conc_epoch_barrier(d);
	int x = conc_epoch_destroy(d);
	disarm(sw);
	CHECK(sw, b == 0 && x == 0);
	CHECK(sw, atomic_load(&dropped_nodes) == 64);
}

static void test_faults_epoch(void **state)
{
	(void)state;
	conc_test_watchdog("faults_epoch", 120);
	sweep("epoch_create", run_epoch_create);
	sweep("epoch_defer", run_epoch_defer);
	sweep("epoch_retire_flush_barrier_destroy", run_epoch_rest);
	conc_test_watchdog_off();
}

/*
 * conc_epoch_register allocates nothing: a thread's records live in its
 * thread-local storage, and a record the thread is not pinned in is
 * reused.  Only when every record is pinned does register return ENOMEM,
 * and the thread then goes through the shared path, which needs no memory.
 * Shown here in a fresh thread: register and stay pinned in one domain
 * after another until ENOMEM; that domain still works (pin, retire,
 * defer, barrier); once the others are unpinned, register succeeds.
 */
#define REG_DOMAINS 24

static struct reg_result {
	int err[REG_DOMAINS];
	int recs, shared_ok, err_after;
} reg;
static conc_epoch *reg_d[REG_DOMAINS];

static atomic_int reg_retired_ran;

static void reg_retire_fn(conc_epoch_node *n)
{
	(void)n;
	atomic_fetch_add(&reg_retired_ran, 1);
}

static void *reg_thread(void *arg)
{
	(void)arg;
	static conc_epoch_node node;
	int r = 0;
	while (r < REG_DOMAINS && (reg.err[r] = conc_epoch_register(reg_d[r])) == 0)
		conc_epoch_pin(reg_d[r++]);
	reg.recs = r;
	if (r == REG_DOMAINS)
		return NULL;
	conc_epoch *x = reg_d[r];
	atomic_long n = 0;
	conc_epoch_pin(x);
	int pinned = conc_epoch_is_pinned(x);
	conc_epoch_retire(x, &node, reg_retire_fn);
	conc_epoch_unpin(x);
	int deferred = conc_epoch_defer(x, bump, &n) == 0;
	int barrier = conc_epoch_barrier(x) == 0;
	reg.shared_ok = pinned && !conc_epoch_is_pinned(x) && deferred && barrier &&
			atomic_load(&n) == 1 && atomic_load(&reg_retired_ran) == 1;
	for (int i = 0; i < r; i++)
		conc_epoch_unpin(reg_d[i]);
	reg.err_after = conc_epoch_register(x);
	return NULL;
}

static void test_faults_epoch_register(void **state)
{
	(void)state;
	conc_test_watchdog("faults_epoch_register", 60);
	for (int i = 0; i < REG_DOMAINS; i++)
		assert_int_equal(conc_epoch_create(&reg_d[i]), 0);
	reg.err_after = -1;
	assert_int_equal(conc_test_run_threads(1, reg_thread, NULL, 0), 0);
	assert_true(reg.recs > 0 && reg.recs < REG_DOMAINS);
	assert_int_equal(reg.err[reg.recs], ENOMEM);
	assert_true(reg.shared_ok);
	assert_int_equal(reg.err_after, 0);
	for (int i = 0; i < REG_DOMAINS; i++) {
		conc_epoch_stats st;
		assert_int_equal(conc_epoch_barrier(reg_d[i]), 0);
		conc_epoch_get_stats(reg_d[i], &st);
		assert_int_equal(st.pending, 0);
		assert_int_equal(st.registered, 0); /* the thread has exited */
		assert_int_equal(conc_epoch_destroy(reg_d[i]), 0);
	}
	printf("reliability: faults epoch_register | records=%d pinned, then ENOMEM; shared path ok; "
	       "register ok after unpin\n",
	       reg.recs);
	fflush(stdout);
	conc_test_watchdog_off();
}

/* Defers from four threads into one domain, a quarter failing: the
 * domain's counters count exactly the ones that returned 0, and each of
 * those runs once. */
#define HD_T 4

static struct {
	conc_epoch *d;
	unsigned long m;
	atomic_uchar *ran;
	long ok[HD_T], enomem[HD_T], bad[HD_T];
} hd;

static void hd_fn(void *arg)
{
	atomic_fetch_add(&hd.ran[(uintptr_t)arg], 1);
}

static void *hd_thread(void *arg)
{
	unsigned t = (unsigned)(uintptr_t)arg;
	for (unsigned long i = 0; i < hd.m; i++) {
		uintptr_t idx = t * hd.m + i;
		conc_epoch_pin(hd.d);
		int err = conc_epoch_defer(hd.d, hd_fn, (void *)idx);
		conc_epoch_unpin(hd.d);
		if (err == 0)
			hd.ok[t]++;
		else if (err == ENOMEM)
			hd.enomem[t]++, hd.ran[idx] = 0xff; /* marks: must stay so */
		else
			hd.bad[t]++;
	}
	return NULL;
}

static void test_faults_hammer_epoch(void **state)
{
	(void)state;
	conc_test_watchdog("faults_hammer_epoch", 120);
	memset(&hd, 0, sizeof hd);
	hd.m = conc_test_iters(100000, 10);
	hd.ran = calloc(HD_T * hd.m, sizeof *hd.ran);
	assert_non_null(hd.ran);
	assert_int_equal(conc_epoch_create(&hd.d), 0);
	conc__fault_reset();
	conc__fault_fail_rate(HAM_PPM, 0, 0xdef);
	run_threads_indexed(HD_T, hd_thread);
	long calls = conc__fault_alloc_calls(), failed_calls = conc__fault_alloc_failures();
	conc__fault_reset();
	hammer_failed += failed_calls;
	assert_int_equal(conc_epoch_barrier(hd.d), 0);
	conc_epoch_stats st;
	conc_epoch_get_stats(hd.d, &st);
	long ok = 0, enomem = 0, bad = 0;
	for (unsigned t = 0; t < HD_T; t++)
		ok += hd.ok[t], enomem += hd.enomem[t], bad += hd.bad[t];
	long once = 0, wrong = 0;
	for (unsigned long i = 0; i < HD_T * hd.m; i++) {
		unsigned r = atomic_load(&hd.ran[i]);
		once += r == 1;
		wrong += r != 1 && r != 0xff;
	}
	assert_int_equal(conc_epoch_destroy(hd.d), 0);
	free(hd.ran);
	printf("reliability: faults hammer epoch_defer %u threads | defers=%lu ok=%ld ENOMEM=%ld "
	       "(allocs %ld, failed %ld) retired=%llu freed=%llu lost=%ld\n",
	       HD_T, HD_T * hd.m, ok, enomem, calls, failed_calls, (unsigned long long)st.retired,
	       (unsigned long long)st.freed, ok - once);
	fflush(stdout);
	assert_int_equal(bad, 0);
	assert_int_equal(wrong, 0);
	assert_int_equal(once, ok);
	assert_int_equal(enomem, failed_calls);
	assert_int_equal(st.retired, (uint64_t)ok);
	assert_int_equal(st.freed, (uint64_t)ok);
	assert_int_equal(st.pending, 0);
	conc_test_watchdog_off();
}


int main(void)
{
	faults_begin("epoch");
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_faults_epoch),
		cmocka_unit_test(test_faults_epoch_register),
		cmocka_unit_test(test_faults_hammer_epoch),
	};
	return faults_end(cmocka_run_group_tests(tests, NULL, NULL));
}
