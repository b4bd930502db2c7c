/*
 * lifecycle_pool.c - the pool's lifecycle suite (issue 22): destroy racing
 * with every call that can block inside a pool, from outside threads and
 * from another pool's tasks, with the caller's thread exiting early or late.
 *
 * The table: every combination of
 *   kind   - the call that is blocked inside pool P when destroy begins:
 *            conc_pool_wait; an execute held by max_queued; conc_join,
 *            conc_parallel_for, conc_parallel_reduce from outside P (their
 *            user code is running); resize growing (a new worker's on_start
 *            runs) and shrinking (a removed worker is still busy);
 *   caller - an outside thread (0); a task of another pool Q, destroying P
 *            (1: nesting across pools); a task of Q, destroying Q while
 *            its task is blocked in P (2);
 *   exit   - the caller's thread exits (or the other pool is destroyed)
 *            as soon as the call returns, racing with the destroy (1), or
 *            only after the destroy has returned (0).
 * Each run is made deterministic with test points (src/base/fault.h):
 * the call is known to be inside (a test point it passes, or its user code
 * running), destroy is known to have begun (its drain sleeps: test point
 * pool.wait.park on its thread), and only then is the gate opened that
 * lets everything finish.  No sleep is used to order anything.
 * Outcomes asserted: destroy returns 0 and does not hang; wait returns 0;
 * the held execute returns 0 (its task ran once) or EPIPE (it did not);
 * join ran both functions once, the loop covered every index once, the
 * reduce's sum is exact; the resize returns 0.  Under ASan/TSan the same
 * runs check that nothing touches a freed pool.
 */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

#include "conc/parallel.h"
#include "conc/pool.h"

#if defined(CONC_FAULT_HOOKS) && CONC_FAULT_HOOKS

enum kind { K_WAIT, K_EXEC_HELD, K_JOIN, K_FOR, K_REDUCE, K_GROW, K_SHRINK, K_N };
static const char *const kind_name[K_N] = {
	"wait", "execute-held", "join", "parallel_for", "parallel_reduce",
	"resize-grow", "resize-shrink"};
static const char *const caller_name[3] = {"outside", "task-of-Q/destroy-P",
					   "task-of-Q/destroy-Q"};

#define TAG_CALLER 1
#define TAG_DESTROY 2
#define LOOP_N 64u

struct run {
	int kind, caller, exits;
	conc_pool *p, *q;
	atomic_int gate;
	atomic_int inside;    /* the call's user code runs (join, loops, grow) */
	atomic_int returned;  /* the call returned */
	atomic_int destroyed; /* the target's destroy returned */
	atomic_int blockers_in;
	int ret, dret;
	atomic_long a_runs, b_runs, noop_runs, covered;
	uint64_t red;
	int w_inside;         /* watch of the point that says "inside", or -1 */
	int w_dpark;          /* destroy's drain sleeps */
};

static struct run *cur; /* one combination at a time */

static void wait_gate(struct run *r)
{
	while (!atomic_load(&r->gate))
		sched_yield();
}

static void blocker(void *arg)
{
	struct run *r = arg;
	atomic_fetch_add(&r->blockers_in, 1);
	wait_gate(r);
}

static void count_noop(void *arg)
{
	struct run *r = arg;
	atomic_fetch_add(&r->noop_runs, 1);
}

static void fa(void *arg)
{
	struct run *r = arg;
	atomic_store(&r->inside, 1);
	conc_test_points_signal();
	wait_gate(r);
	atomic_fetch_add(&r->a_runs, 1);
}

static void fb(void *arg)
{
	struct run *r = arg;
	atomic_fetch_add(&r->b_runs, 1);
}

static int for_body(size_t lo, size_t hi, void *ctx)
{
	struct run *r = ctx;
	atomic_store(&r->inside, 1);
	conc_test_points_signal();
	wait_gate(r);
	atomic_fetch_add(&r->covered, (long)(hi - lo));
	return 0;
}

static void red_identity(void *acc, void *ctx)
{
	(void)ctx;
	*(uint64_t *)acc = 0;
}

static int red_body(size_t lo, size_t hi, void *acc, void *ctx)
{
	struct run *r = ctx;
	atomic_store(&r->inside, 1);
	conc_test_points_signal();
	wait_gate(r);
	for (size_t i = lo; i < hi; i++)
		*(uint64_t *)acc += i;
	return 0;
}

static void red_combine(void *acc, const void *other, void *ctx)
{
	(void)ctx;
	*(uint64_t *)acc += *(const uint64_t *)other;
}

static void grow_start(unsigned index, void *ctx)
{
	struct run *r = ctx;
	if (index == 0)
		return;
	atomic_store(&r->inside, 1);
	conc_test_points_signal();
	wait_gate(r);
}

static int destroyed_pred(void *arg)
{
	return atomic_load(&((struct run *)arg)->destroyed);
}

static int returned_pred(void *arg)
{
	return atomic_load(&((struct run *)arg)->returned);
}

static int inside_pred(void *arg)
{
	struct run *r = arg;
	if (r->w_inside >= 0)
		return conc_test_watch_hits(r->w_inside) > 0;
	return atomic_load(&r->inside);
}

static int dpark_pred(void *arg)
{
	struct run *r = arg;
	return conc_test_watch_hits(r->w_dpark) > 0;
}

/* The blocking call, on the caller's thread (outside or Q's worker). */
static void do_call(struct run *r)
{
	conc_test_tag(TAG_CALLER);
	uint64_t red = 0;
	switch (r->kind) {
	case K_WAIT: r->ret = conc_pool_wait(r->p); break;
	case K_EXEC_HELD: r->ret = conc_pool_execute(r->p, count_noop, r); break;
	case K_JOIN: r->ret = conc_join(r->p, fa, r, fb, r); break;
	case K_FOR: r->ret = conc_parallel_for(r->p, 0, LOOP_N, 1, for_body, r); break;
	case K_REDUCE:
		r->ret = conc_parallel_reduce(r->p, 0, LOOP_N, 1, &red, sizeof red,
					      red_identity, red_body, red_combine, r);
		r->red = red;
		break;
	case K_GROW: r->ret = conc_pool_resize(r->p, 2); break;
	default: r->ret = conc_pool_resize(r->p, 1); break;
	}
	conc_test_tag(0);
	atomic_store(&r->returned, 1);
	conc_test_points_signal();
	/* exit 0: the thread (or Q's task) lives on until the destroy has
	 * returned - not when the destroy is Q's own (it waits for us). */
	if (!r->exits && r->caller != 2)
		conc_test_points_wait(destroyed_pred, r, 120);
}

static void *caller_thread(void *arg)
{
	do_call(arg);
	return NULL;
}

static void caller_task(void *arg)
{
	do_call(arg);
}

static void *destroy_thread(void *arg)
{
	struct run *r = arg;
	conc_test_tag(TAG_DESTROY);
	r->dret = conc_pool_destroy(r->caller == 2 ? r->q : r->p);
	conc_test_tag(0);
	atomic_store(&r->destroyed, 1);
	conc_test_points_signal();
	return NULL;
}

static int failures;

#define CHECK(cond, ...)                                                         \
	do {                                                                     \
		if (!(cond)) {                                                   \
			printf("lifecycle-pool: %s / %s / exit %s: ", kind_name[r->kind], \
			       caller_name[r->caller], r->exits ? "early" : "late"); \
			printf(__VA_ARGS__);                                     \
			printf("\n");                                            \
			failures++;                                              \
			return;                                                  \
		}                                                                \
	} while (0)

static void run_one(struct run *r)
{
	conc_pool_config cfg = {.threads = r->kind == K_SHRINK ? 2 : 1,
				.max_queued = r->kind == K_EXEC_HELD ? 1 : 0,
				.on_start = r->kind == K_GROW ? grow_start : NULL,
				.ctx = r};
	CHECK(conc_pool_create(&r->p, &cfg) == 0, "create P");
	if (r->caller) {
		conc_pool_config qc = {.threads = 1};
		CHECK(conc_pool_create(&r->q, &qc) == 0, "create Q");
	}
	conc_test_points_start();
	r->w_inside = r->kind == K_WAIT ? conc_test_watch("pool.wait.park", TAG_CALLER, 0)
		    : r->kind == K_EXEC_HELD ? conc_test_watch("pool.room.park", TAG_CALLER, 0)
		    : r->kind == K_SHRINK ? conc_test_watch("pool.resize.locked", TAG_CALLER, 0)
		    : -1;
	r->w_dpark = conc_test_watch("pool.wait.park", TAG_DESTROY, 0);

	int nblock = r->kind == K_SHRINK ? 2 : 1;
	for (int i = 0; i < nblock; i++)
		CHECK(conc_pool_execute(r->p, blocker, r) == 0, "execute blocker");
	while (atomic_load(&r->blockers_in) < nblock)
		sched_yield();
	if (r->kind == K_EXEC_HELD) /* the bound (1) is full */
		CHECK(conc_pool_execute(r->p, count_noop, r) == 0, "execute filler");

	pthread_t tc = 0, td;
	if (r->caller == 0)
		CHECK(pthread_create(&tc, NULL, caller_thread, r) == 0, "caller thread");
	else
		CHECK(conc_pool_execute(r->q, caller_task, r) == 0, "caller task");
	CHECK(conc_test_points_wait(inside_pred, r, 60), "the call never got inside");
	CHECK(pthread_create(&td, NULL, destroy_thread, r) == 0, "destroy thread");
	CHECK(conc_test_points_wait(dpark_pred, r, 60), "destroy never began its drain");
	atomic_store(&r->gate, 1); /* everything may finish now */

	conc_pool *other = r->caller == 0 ? NULL : r->caller == 1 ? r->q : r->p;
	if (r->exits) {
		CHECK(conc_test_points_wait(returned_pred, r, 60), "the call never returned");
		if (r->caller == 0)
			pthread_join(tc, NULL); /* its exit races with the destroy */
		else
			CHECK(conc_pool_destroy(other) == 0, "destroy the other pool early");
	}
	CHECK(conc_test_points_wait(destroyed_pred, r, 60), "destroy hangs");
	pthread_join(td, NULL);
	if (!r->exits) {
		if (r->caller == 0)
			pthread_join(tc, NULL);
		else
			CHECK(conc_pool_destroy(other) == 0, "destroy the other pool late");
	}
	conc_test_points_stop();

	CHECK(r->dret == 0, "destroy returned %d", r->dret);
	switch (r->kind) {
	case K_WAIT: CHECK(r->ret == 0, "wait returned %d", r->ret); break;
	case K_EXEC_HELD:
		CHECK(r->ret == 0 || r->ret == EPIPE, "execute returned %d", r->ret);
		CHECK(atomic_load(&r->noop_runs) == 1 + (r->ret == 0),
		      "tasks run %ld for execute %d", atomic_load(&r->noop_runs), r->ret);
		break;
	case K_JOIN:
		CHECK(r->ret == 0 && atomic_load(&r->a_runs) == 1 && atomic_load(&r->b_runs) == 1,
		      "join %d ran a %ld, b %ld times", r->ret, atomic_load(&r->a_runs),
		      atomic_load(&r->b_runs));
		break;
	case K_FOR:
		CHECK(r->ret == 0 && atomic_load(&r->covered) == LOOP_N,
		      "for %d covered %ld", r->ret, atomic_load(&r->covered));
		break;
	case K_REDUCE:
		CHECK(r->ret == 0 && r->red == LOOP_N * (LOOP_N - 1) / 2,
		      "reduce %d gave %llu", r->ret, (unsigned long long)r->red);
		break;
	default: CHECK(r->ret == 0, "resize returned %d", r->ret); break;
	}
}

static void test_lifecycle_pool_destroy_races(void **state)
{
	(void)state;
	conc_test_watchdog("lifecycle_pool_destroy_races", 600);
	int n = 0;
	for (int kind = 0; kind < K_N; kind++)
		for (int caller = 0; caller < 3; caller++)
			for (int exits = 0; exits < 2; exits++) {
				struct run *r = calloc(1, sizeof *r);
				assert_non_null(r);
				r->kind = kind;
				r->caller = caller;
				r->exits = exits;
				cur = r;
				run_one(r);
				cur = NULL;
				free(r);
				n++;
			}
	printf("lifecycle-pool: combinations=%d failures=%d\n", n, failures);
	assert_int_equal(failures, 0);
	conc_test_watchdog_off();
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_lifecycle_pool_destroy_races),
	};
	return cmocka_run_group_tests_name("lifecycle-pool", tests, NULL, NULL);
}

#else
int main(void)
{
	printf("lifecycle-pool: needs -Dfault_hooks=true (test points); skipped\n");
	return 77;
}
#endif
