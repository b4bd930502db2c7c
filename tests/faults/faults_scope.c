/*
 * faults_scope.c - the faults suite (issue 8, tests/lib/faults.h): conc/scope.h.
 * Spawns swept, with parked threads in the cache; scopes whose
 * threads spawn threads with spawns failing at random.
 */
#include <pthread.h>
#include <sched.h>
#include <stdlib.h>
#include <time.h>

#include "faults.h"

#include "queue/queue_internal.h"
#include "stack/stack_internal.h"

#include "scope/scope_internal.h"

/* ---- scope -------------------------------------------------------------------- */

#define SCOPE_NEW 3   /* threads each run must create */
#define SCOPE_WARM 40 /* parked threads before the sweep: > 32 handles */
#define SCOPE_MAX 512

static struct {
	conc_test_gate g;
	unsigned n;
	int err[SCOPE_MAX];
	conc_thread *h[SCOPE_MAX];
	atomic_int ran[SCOPE_MAX];
	int join_err;
	void *join_res;
} sc;

static void *scope_fn(conc_scope *s, void *arg)
{
	(void)s;
	unsigned i = (unsigned)(uintptr_t)arg;
	conc_test_gate_wait(&sc.g);
	atomic_fetch_add(&sc.ran[i], 1);
	return arg;
}

/* Every thread blocks in the gate until all are spawned: none is free for
 * reuse, so the spawns beyond the parked threads each create one. */
static void scope_body(conc_scope *s, void *ctx)
{
	(void)ctx;
	for (unsigned i = 0; i < sc.n; i++)
		sc.err[i] = conc_scope_spawn(s, scope_fn, (void *)(uintptr_t)i, &sc.h[i]);
	conc_test_gate_open(&sc.g);
	unsigned j = sc.err[0] ? 1 : 0;
	sc.join_err = conc_thread_join(sc.h[j], &sc.join_res);
	sc.join_res = sc.join_res == (void *)(uintptr_t)j ? NULL : SENTINEL;
}

static int scope_round(unsigned n)
{
	conc_test_gate_init(&sc.g);
	sc.n = n;
	for (unsigned i = 0; i < n; i++) {
		sc.err[i] = -1;
		sc.h[i] = SENTINEL;
		atomic_store(&sc.ran[i], 0);
	}
	int err = conc_scope_run(scope_body, NULL);
	conc_test_gate_destroy(&sc.g);
	return err;
}

static void run_scope(struct sweep *sw)
{
	/* the threads of the last round park on their own after their
	 * function returned: wait for them, so the counts are exact */
	while (conc__scope_idle_threads() != conc__scope_live_threads())
		conc_test_nap();
	unsigned idle = conc__scope_idle_threads();
	unsigned n = idle + SCOPE_NEW;
	if (n > SCOPE_MAX) {
		CHECK(sw, n <= SCOPE_MAX);
		return;
	}
	unsigned live0 = conc__scope_live_threads();
	arm(sw);
	int err = scope_round(n);
	disarm(sw);
	int want = want_err(sw);
	CHECK(sw, err == want);
	if (sw->kind == CALIBRATE)
		CHECK(sw, sw->n_alloc >= 1 && sw->n_thread >= SCOPE_NEW);
	unsigned failed = 0;
	for (unsigned i = 0; i < n; i++) {
		if (sc.err[i] != 0) {
			failed++;
			/* on failure fn does not run and *handle is untouched */
			CHECK(sw, sc.err[i] == want);
			CHECK(sw, sc.h[i] == SENTINEL);
			CHECK(sw, atomic_load(&sc.ran[i]) == 0);
		} else {
			CHECK(sw, atomic_load(&sc.ran[i]) == 1);
		}
	}
	CHECK(sw, failed == (want ? 1u : 0u));
	CHECK(sw, sc.join_err == 0 && sc.join_res == NULL);
	/* a failed spawn took no thread (its creation, or the thread it did
	 * not need, is not counted): live = parked before + those created */
	CHECK(sw, conc__scope_live_threads() == live0 + SCOPE_NEW - (want ? 1u : 0u));
	/* usable afterwards: a scope with one thread */
	CHECK(sw, scope_round(1) == 0 && sc.err[0] == 0 && atomic_load(&sc.ran[0]) == 1);
}

static void test_faults_scope(void **state)
{
	(void)state;
	conc_test_watchdog("faults_scope", 180);
	/* parked threads stay parked during the sweep (deterministic counts) */
	conc__scope_set_idle_timeout_ns(3600ull * 1000000000u);
	assert_int_equal(scope_round(SCOPE_WARM), 0);
	sweep("scope_spawn", run_scope);
	/* let the cache empty: threads exit after 1 ms idle */
	conc__scope_set_idle_timeout_ns(1000000);
	while (conc__scope_live_threads() != 0)
		conc_test_nap();
	conc__scope_set_idle_timeout_ns(0);
	conc_test_watchdog_off();
}

/* Scopes whose threads spawn threads, with spawns failing at random. */
#define HS_TOP 24
#define HS_KIDS 2
#define HS_SLOTS (HS_TOP * (1 + HS_KIDS))

static struct {
	int err[HS_SLOTS];
	atomic_int ran[HS_SLOTS];
} hs;

static void *hs_kid(conc_scope *s, void *arg)
{
	(void)s;
	atomic_fetch_add(&hs.ran[(uintptr_t)arg], 1);
	return NULL;
}

static void *hs_top(conc_scope *s, void *arg)
{
	uintptr_t i = (uintptr_t)arg;
	atomic_fetch_add(&hs.ran[i], 1);
	for (uintptr_t k = 0; k < HS_KIDS; k++) {
		uintptr_t slot = HS_TOP + i * HS_KIDS + k;
		hs.err[slot] = conc_scope_spawn(s, hs_kid, (void *)slot, NULL);
	}
	return NULL;
}

static void hs_body(conc_scope *s, void *ctx)
{
	(void)ctx;
	for (uintptr_t i = 0; i < HS_TOP; i++)
		hs.err[i] = conc_scope_spawn(s, hs_top, (void *)i, NULL);
}

static void test_faults_hammer_scope(void **state)
{
	(void)state;
	conc_test_watchdog("faults_hammer_scope", 120);
	unsigned long rounds = conc_test_iters(500, 10);
	long bad = 0, spawns = 0, failed = 0;
	conc__fault_reset();
	conc__fault_fail_rate(HAM_PPM, HAM_PPM, 0x5c0);
	for (unsigned long r = 0; r < rounds; r++) {
		for (unsigned i = 0; i < HS_SLOTS; i++) {
			hs.err[i] = -1;
			atomic_store(&hs.ran[i], 0);
		}
		int err = conc_scope_run(hs_body, NULL);
		bool any = false, saw_err = false;
		for (unsigned i = 0; i < HS_SLOTS; i++) {
			if (hs.err[i] == -1) { /* its parent did not run */
				bad += atomic_load(&hs.ran[i]) != 0;
				continue;
			}
			spawns++;
			if (hs.err[i]) {
				failed++;
				any = true;
				saw_err |= hs.err[i] == err;
				bad += hs.err[i] != EAGAIN && hs.err[i] != ENOMEM;
				bad += atomic_load(&hs.ran[i]) != 0;
			} else {
				bad += atomic_load(&hs.ran[i]) != 1;
			}
		}
		/* run returns 0, or the first spawn error (one of those seen) */
		bad += any ? !saw_err : err != 0;
	}
	long a_failed = conc__fault_alloc_failures(), t_failed = conc__fault_thread_failures();
	long calls = conc__fault_alloc_calls() + conc__fault_thread_calls();
	conc__fault_reset();
	hammer_failed += a_failed + t_failed;
	printf("reliability: faults hammer scope | rounds=%lu spawns=%ld failed=%ld "
	       "(allocs failed %ld, creations failed %ld) bad=%ld\n",
	       rounds, spawns, failed, a_failed, t_failed, bad);
	fflush(stdout);
	/* usable afterwards */
	for (unsigned i = 0; i < HS_SLOTS; i++)
		atomic_store(&hs.ran[i], 0);
	assert_int_equal(conc_scope_run(hs_body, NULL), 0);
	for (unsigned i = 0; i < HS_SLOTS; i++)
		assert_int_equal(atomic_load(&hs.ran[i]), 1);
	assert_int_equal(bad, 0);
	if (expect_failures(calls, HAM_PPM))
		assert_true(failed > 0);
}

int main(void)
{
	faults_begin("scope");
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_faults_scope),
		cmocka_unit_test(test_faults_hammer_scope),
	};
	return faults_end(cmocka_run_group_tests(tests, NULL, NULL));
}
