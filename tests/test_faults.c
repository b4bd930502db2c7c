/*
 * test_faults.c - the faults suite (issue 8): every public call that can
 * allocate or create a thread, failed at each of its allocations and
 * thread creations in turn.
 *
 * For each operation: one run without failures counts the hook calls it
 * makes (n allocations, m thread creations); then for every k in 1..n the
 * k-th allocation fails (and for every k in 1..m the k-th thread creation),
 * and the run checks that
 *   - the call returned the documented error (ENOMEM / EAGAIN), or 0 where
 *     the header documents a fallback (a parallel loop runs a half itself
 *     when it cannot hand it off; a worker's full deque spills to the
 *     injector), with the result the call promises;
 *   - nothing changed: the pointer out-parameter is untouched, the item of
 *     a failed push is not in the container and every other item is there
 *     in order, no pool hook ran, no thread is left, no task is lost;
 *   - the object still works afterwards (push, pop, execute, resize...);
 *   - nothing leaked: the epoch domains' counters return to pending = 0
 *     and destroy succeeds; the ASan build (detect_leaks=1) checks the heap.
 * A run where the k-th call was not reached (a count that depends on
 * timing, e.g. the halves a parallel loop hands off) is counted as
 * "unreached", not as a pass.
 *
 * Then the same under concurrency ("hammer"): threads push and pop, execute,
 * resize, spawn, defer and run nested loops while a share of all calls
 * (2%, 25%, 90% for the containers) fails at random; conservation is
 * checked over the whole run.  (A real thread limit, without hooks, is
 * tests/faults_nproc.c.)
 *
 * The last test reads the call-site names from src/ (every
 * conc__malloc/calloc/aligned_alloc/thread_create names its site) and
 * checks that the suite reached each one.
 *
 * Checks are counted, not asserted at once, so that one run reports every
 * bad case (with the site that failed); each test asserts bad == 0 at its
 * end.  Only the main thread asserts.
 */
#include <dirent.h>
#include <sys/stat.h>
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "testutil.h"

#include "conc/conc.h"
#include "queue/queue_internal.h"
#include "stack/stack_internal.h"
#include "base/fault.h"
#include "pool/pool_internal.h"
#include "scope/scope_internal.h"

#if !defined(CONC_FAULT_HOOKS) || !CONC_FAULT_HOOKS
#error "the faults suite needs -Dfault_hooks=true"
#endif

#define SENTINEL ((void *)&sentinel_byte)
static char sentinel_byte;

/* ---- the sweep --------------------------------------------------------- */

enum kind { CALIBRATE, FAIL_ALLOC, FAIL_THREAD };

struct sweep {
	const char *api;
	long n_alloc, n_thread;   /* calls counted in the calibration run */
	long ok_alloc, ok_thread; /* runs whose failure fired and checked out */
	long unreached;           /* runs where the k-th call did not happen */
	long bad;                 /* failed checks */
	enum kind kind;
	long k;
	const char *site; /* the site failed in this run, or NULL */
	long bad_before;
};

static long total_failed, total_bad, total_unreached;
static long hammer_failed; /* calls failed by conc__fault_fail_rate */

#define CHECK(sw, cond)                                                          \
	do {                                                                     \
		if (!(cond)) {                                                   \
			(sw)->bad++;                                             \
			printf("faults %s: %s k=%ld at %s: check failed: %s (%s:%d)\n", \
			       (sw)->api,                                        \
			       (sw)->kind == FAIL_ALLOC    ? "alloc"             \
			       : (sw)->kind == FAIL_THREAD ? "thread"            \
							   : "calibration",      \
			       (sw)->k, (sw)->site ? (sw)->site : "-", #cond,    \
			       __FILE__, __LINE__);                              \
			fflush(stdout);                                          \
		}                                                                \
	} while (0)

/* Arm the hooks for this run: count from zero, fail the k-th call. */
static void arm(struct sweep *sw)
{
	conc__fault_reset();
	if (sw->kind == FAIL_ALLOC)
		conc__fault_fail_alloc_at(sw->k);
	else if (sw->kind == FAIL_THREAD)
		conc__fault_fail_thread_at(sw->k);
	sw->site = NULL;
}

/* Disarm after the operation (and everything it started) is over; sets
 * sw->site to the site that was failed, NULL if the k-th call never came. */
static void disarm(struct sweep *sw)
{
	long a = conc__fault_alloc_calls(), t = conc__fault_thread_calls();
	sw->site = conc__fault_last_failed();
	conc__fault_reset();
	if (sw->kind == CALIBRATE) {
		sw->n_alloc = a;
		sw->n_thread = t;
	}
}

static bool site_is(const struct sweep *sw, const char *prefix)
{
	return sw->site && strncmp(sw->site, prefix, strlen(prefix)) == 0;
}

/* The error an injected failure must produce (0: none injected). */
static int want_err(const struct sweep *sw)
{
	if (!sw->site)
		return 0;
	return sw->kind == FAIL_ALLOC ? ENOMEM : EAGAIN;
}

typedef void (*run_fn)(struct sweep *sw);

static void sweep_report(struct sweep *sw)
{
	char a[64], t[64];
	if (sw->n_alloc)
		snprintf(a, sizeof a, "alloc_k=1..%ld ok=%ld", sw->n_alloc, sw->ok_alloc);
	else
		snprintf(a, sizeof a, "alloc_k=none");
	if (sw->n_thread)
		snprintf(t, sizeof t, "thread_k=1..%ld ok=%ld", sw->n_thread, sw->ok_thread);
	else
		snprintf(t, sizeof t, "thread_k=none");
	printf("reliability: faults %s | %s, %s, unreached=%ld bad=%ld\n", sw->api, a, t,
	       sw->unreached, sw->bad);
	fflush(stdout);
}

/* Run `run` once to count, then once per k for allocations and threads. */
static void sweep(const char *api, run_fn run)
{
	struct sweep sw = {.api = api};
	sw.kind = CALIBRATE;
	run(&sw);
	CHECK(&sw, sw.site == NULL);
	long na = sw.n_alloc, nt = sw.n_thread;
	for (int pass = 0; pass < 2; pass++) {
		long n = pass == 0 ? na : nt;
		for (long k = 1; k <= n; k++) {
			sw.kind = pass == 0 ? FAIL_ALLOC : FAIL_THREAD;
			sw.k = k;
			sw.bad_before = sw.bad;
			run(&sw);
			if (!sw.site) {
				sw.unreached++;
				continue;
			}
			total_failed++;
			if (sw.bad == sw.bad_before)
				*(pass == 0 ? &sw.ok_alloc : &sw.ok_thread) += 1;
		}
	}
	sweep_report(&sw);
	total_bad += sw.bad;
	total_unreached += sw.unreached;
	assert_int_equal(sw.bad, 0);
}

/* ---- helpers ----------------------------------------------------------- */

static unsigned threads_now(void)
{
	DIR *d = opendir("/proc/self/task");
	if (!d)
		return 0;
	unsigned n = 0;
	struct dirent *e;
	while ((e = readdir(d)))
		n += e->d_name[0] != '.';
	closedir(d);
	return n;
}

static void nap(void)
{
	struct timespec ts = {0, 1000000};
	nanosleep(&ts, NULL);
}

/*
 * At most n threads in the process, allowing for threads that were joined
 * but are still leaving the kernel: pthread_join returns when the exiting
 * thread's tid is cleared, a moment before the task disappears from
 * /proc (longer under qemu-user).  Gives up after 10 s.
 */
static bool threads_at_most(unsigned n)
{
	for (int i = 0; i < 10000; i++) {
		if (threads_now() <= n)
			return true;
		nap();
	}
	return false;
}

/* The domain's books balance: everything retired has run. */
static void check_domain_clean(struct sweep *sw, conc_epoch *d)
{
	CHECK(sw, conc_epoch_barrier(d) == 0);
	conc_epoch_stats st;
	conc_epoch_get_stats(d, &st);
	CHECK(sw, st.pending == 0);
	CHECK(sw, st.retired == st.freed);
}

static void check_destroy_domain(struct sweep *sw, conc_epoch *d)
{
	check_domain_clean(sw, d);
	CHECK(sw, conc_epoch_destroy(d) == 0);
}

struct gate {
	pthread_mutex_t m;
	pthread_cond_t c;
	int open, waiting;
};

static void gate_init(struct gate *g)
{
	pthread_mutex_init(&g->m, NULL);
	pthread_cond_init(&g->c, NULL);
	g->open = g->waiting = 0;
}

static void gate_wait(struct gate *g)
{
	pthread_mutex_lock(&g->m);
	g->waiting++;
	pthread_cond_broadcast(&g->c);
	while (!g->open)
		pthread_cond_wait(&g->c, &g->m);
	pthread_mutex_unlock(&g->m);
}

/* Wait until n threads are inside gate_wait. */
static void gate_await_waiters(struct gate *g, int n)
{
	pthread_mutex_lock(&g->m);
	while (g->waiting < n)
		pthread_cond_wait(&g->c, &g->m);
	pthread_mutex_unlock(&g->m);
}

static void gate_open(struct gate *g)
{
	pthread_mutex_lock(&g->m);
	g->open = 1;
	pthread_cond_broadcast(&g->c);
	pthread_mutex_unlock(&g->m);
}

static void gate_destroy(struct gate *g)
{
	pthread_mutex_destroy(&g->m);
	pthread_cond_destroy(&g->c);
}

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

/* ---- queue and stack ------------------------------------------------------ */

static atomic_long dropped;

static void drop_count(void *item)
{
	(void)item;
	atomic_fetch_add(&dropped, 1);
}

#define ITEM(i) ((void *)(uintptr_t)(i))

static void run_queue_create(struct sweep *sw, bool in)
{
	conc_epoch *d;
	CHECK(sw, conc_epoch_create(&d) == 0);
	conc_queue *q = SENTINEL;
	arm(sw);
	int err = in ? conc_queue_create_in(&q, d) : conc_queue_create(&q);
	disarm(sw);
	CHECK(sw, err == want_err(sw));
	if (err) {
		CHECK(sw, q == SENTINEL);
		CHECK(sw, conc_queue_create_in(&q, d) == 0);
	}
	void *x = NULL;
	CHECK(sw, conc_queue_push(q, ITEM(7)) == 0);
	CHECK(sw, conc_queue_try_pop(q, &x) && x == ITEM(7));
	conc_queue_destroy(q, NULL);
	check_destroy_domain(sw, d);
}

static void run_queue_create_global(struct sweep *sw)
{
	run_queue_create(sw, false);
}

static void run_queue_create_in(struct sweep *sw)
{
	run_queue_create(sw, true);
}

/* A push that needs a new segment: the queue holds exactly one full one. */
static void run_queue_push(struct sweep *sw)
{
	conc_epoch *d;
	conc_queue *q;
	CHECK(sw, conc_epoch_create(&d) == 0);
	CHECK(sw, conc_queue_create_in(&q, d) == 0);
	unsigned n = conc__queue_segment_slots();
	for (unsigned i = 1; i <= n; i++)
		CHECK(sw, conc_queue_push(q, ITEM(i)) == 0);
	arm(sw);
	int err = conc_queue_push(q, ITEM(n + 1));
	disarm(sw);
	CHECK(sw, err == want_err(sw));
	if (sw->kind == CALIBRATE)
		CHECK(sw, sw->n_alloc >= 1); /* it did need a segment */
	if (err) /* usable afterwards: the same item goes in now */
		CHECK(sw, conc_queue_push(q, ITEM(n + 1)) == 0);
	CHECK(sw, conc_queue_push(q, ITEM(n + 2)) == 0);
	/* every item once, in FIFO order: the failed push left no trace */
	void *x;
	for (unsigned i = 1; i <= n + 2; i++) {
		bool got = conc_queue_try_pop(q, &x);
		CHECK(sw, got && x == ITEM(i));
		if (!got || x != ITEM(i))
			break;
	}
	CHECK(sw, !conc_queue_try_pop(q, &x));
	CHECK(sw, conc_queue_is_empty(q));
	atomic_store(&dropped, 0);
	conc_queue_destroy(q, drop_count);
	CHECK(sw, atomic_load(&dropped) == 0);
	check_destroy_domain(sw, d);
}

/* Pops (try, blocking, timed out on empty) and close: no allocation. */
static void run_queue_pops(struct sweep *sw)
{
	conc_epoch *d;
	conc_queue *q;
	CHECK(sw, conc_epoch_create(&d) == 0);
	CHECK(sw, conc_queue_create_in(&q, d) == 0);
	for (uintptr_t i = 1; i <= 3; i++)
		CHECK(sw, conc_queue_push(q, ITEM(i)) == 0);
	void *x = NULL, *y = NULL, *z = NULL, *w = SENTINEL;
	arm(sw);
	bool a = conc_queue_try_pop(q, &x);
	int b = conc_queue_pop(q, &y);
	int c = conc_queue_pop_timeout(q, &z, 1000000);
	int e = conc_queue_pop_timeout(q, &w, 1000000); /* empty: sleeps, times out */
	conc_queue_close(q);
	int f = conc_queue_pop(q, &w);
	disarm(sw);
	CHECK(sw, a && x == ITEM(1) && b == 0 && y == ITEM(2) && c == 0 && z == ITEM(3));
	CHECK(sw, e == ETIMEDOUT && f == EPIPE && w == SENTINEL);
	conc_queue_destroy(q, NULL);
	check_destroy_domain(sw, d);
}

static void test_faults_queue(void **state)
{
	(void)state;
	conc_test_watchdog("faults_queue", 120);
	sweep("queue_create", run_queue_create_global);
	sweep("queue_create_in", run_queue_create_in);
	sweep("queue_push", run_queue_push);
	sweep("queue_pop_close", run_queue_pops);
	conc_test_watchdog_off();
}

static void run_stack_create(struct sweep *sw, bool in)
{
	conc_epoch *d;
	CHECK(sw, conc_epoch_create(&d) == 0);
	conc_stack *s = SENTINEL;
	arm(sw);
	int err = in ? conc_stack_create_in(&s, d) : conc_stack_create(&s);
	disarm(sw);
	CHECK(sw, err == want_err(sw));
	if (err) {
		CHECK(sw, s == SENTINEL);
		CHECK(sw, conc_stack_create_in(&s, d) == 0);
	}
	void *x = NULL;
	CHECK(sw, conc_stack_push(s, ITEM(7)) == 0);
	CHECK(sw, conc_stack_try_pop(s, &x) && x == ITEM(7));
	conc_stack_destroy(s, NULL);
	check_destroy_domain(sw, d);
}

static void run_stack_create_global(struct sweep *sw)
{
	run_stack_create(sw, false);
}

static void run_stack_create_in(struct sweep *sw)
{
	run_stack_create(sw, true);
}

/* Pop everything: the items must be want[0..n) from the top down. */
static void check_stack_holds(struct sweep *sw, conc_stack *s, const uintptr_t *want,
			      unsigned n)
{
	void *x;
	for (unsigned i = 0; i < n; i++) {
		bool got = conc_stack_try_pop(s, &x);
		CHECK(sw, got && x == ITEM(want[i]));
		if (!got || x != ITEM(want[i]))
			return;
	}
	CHECK(sw, !conc_stack_try_pop(s, &x));
	CHECK(sw, conc_stack_is_empty(s));
}

/* A push whose node must come from malloc: this thread's node cache and
 * the shared depot are emptied first. */
static void run_stack_push(struct sweep *sw)
{
	conc_epoch *d;
	conc_stack *s;
	CHECK(sw, conc_epoch_create(&d) == 0);
	CHECK(sw, conc_stack_create_in(&s, d) == 0);
	for (unsigned i = 1; i <= 3; i++)
		CHECK(sw, conc_stack_push(s, ITEM(i)) == 0);
	conc__stack_trim_caches();
	arm(sw);
	int err = conc_stack_push(s, ITEM(4));
	disarm(sw);
	CHECK(sw, err == want_err(sw));
	if (sw->kind == CALIBRATE)
		CHECK(sw, sw->n_alloc >= 1);
	if (err) {
		static const uintptr_t before[] = {3, 2, 1};
		check_stack_holds(sw, s, before, 3); /* unchanged */
		for (unsigned i = 1; i <= 3; i++)
			CHECK(sw, conc_stack_push(s, ITEM(i)) == 0);
		CHECK(sw, conc_stack_push(s, ITEM(4)) == 0); /* usable afterwards */
	}
	static const uintptr_t after[] = {4, 3, 2, 1};
	check_stack_holds(sw, s, after, 4);
	conc_stack_destroy(s, NULL);
	check_destroy_domain(sw, d);
}

/*
 * A push made while the pushing thread exits, after the stack's own
 * thread-exit hook has handed its node cache back (a destructor of a
 * pthread key created later runs after it): the node comes straight from
 * its own one-node slab (site stack.node_exiting).
 */
static pthread_key_t late_key;
static struct {
	conc_stack *s;
	int err_live, err_exiting;
} late;

static void late_destructor(void *arg)
{
	(void)arg;
	late.err_exiting = conc_stack_push(late.s, ITEM(2));
}

static void *late_thread(void *arg)
{
	(void)arg;
	late.err_live = conc_stack_push(late.s, ITEM(1));
	pthread_setspecific(late_key, &late);
	return NULL;
}

static void run_stack_push_at_exit(struct sweep *sw)
{
	conc_epoch *d;
	CHECK(sw, conc_epoch_create(&d) == 0);
	CHECK(sw, conc_stack_create_in(&late.s, d) == 0);
	late.err_live = late.err_exiting = -1;
	conc__stack_trim_caches(); /* the depot too: both pushes allocate */
	arm(sw);
	pthread_t t;
	int started = pthread_create(&t, NULL, late_thread, NULL) == 0;
	if (started)
		pthread_join(t, NULL);
	disarm(sw);
	CHECK(sw, started);
	if (sw->kind == CALIBRATE)
		CHECK(sw, sw->n_alloc >= 2);
	/* exactly the push whose site failed got the error */
	int want = want_err(sw);
	bool exiting = site_is(sw, "stack.node_exiting");
	CHECK(sw, late.err_live == (want && !exiting ? want : 0));
	CHECK(sw, late.err_exiting == (exiting ? want : 0));
	uintptr_t held[2];
	unsigned n = 0;
	if (late.err_exiting == 0)
		held[n++] = 2;
	if (late.err_live == 0)
		held[n++] = 1;
	check_stack_holds(sw, late.s, held, n);
	CHECK(sw, conc_stack_push(late.s, ITEM(3)) == 0); /* usable afterwards */
	static const uintptr_t three[] = {3};
	check_stack_holds(sw, late.s, three, 1);
	conc_stack_destroy(late.s, NULL);
	check_destroy_domain(sw, d);
}

static void run_stack_pops(struct sweep *sw)
{
	conc_epoch *d;
	conc_stack *s;
	CHECK(sw, conc_epoch_create(&d) == 0);
	CHECK(sw, conc_stack_create_in(&s, d) == 0);
	for (uintptr_t i = 1; i <= 3; i++)
		CHECK(sw, conc_stack_push(s, ITEM(i)) == 0);
	void *x = NULL, *y = NULL, *z = NULL, *w = SENTINEL;
	arm(sw);
	bool a = conc_stack_try_pop(s, &x);
	int b = conc_stack_pop(s, &y);
	int c = conc_stack_pop_timeout(s, &z, 1000000);
	int e = conc_stack_pop_timeout(s, &w, 1000000);
	conc_stack_close(s);
	int f = conc_stack_pop(s, &w);
	disarm(sw);
	CHECK(sw, a && x == ITEM(3) && b == 0 && y == ITEM(2) && c == 0 && z == ITEM(1));
	CHECK(sw, e == ETIMEDOUT && f == EPIPE && w == SENTINEL);
	conc_stack_destroy(s, NULL);
	check_destroy_domain(sw, d);
}

static void test_faults_stack(void **state)
{
	(void)state;
	conc_test_watchdog("faults_stack", 120);
	sweep("stack_create", run_stack_create_global);
	sweep("stack_create_in", run_stack_create_in);
	sweep("stack_push", run_stack_push);
	sweep("stack_pop_close", run_stack_pops);
	/* The stack's exit key exists once a thread has pushed; ours comes
	 * after it, so its destructor runs after the stack's. */
	conc_stack *s;
	assert_int_equal(conc_stack_create(&s), 0);
	assert_int_equal(conc_stack_push(s, ITEM(1)), 0);
	conc_stack_destroy(s, NULL);
	assert_int_equal(pthread_key_create(&late_key, late_destructor), 0);
	sweep("stack_push_at_exit", run_stack_push_at_exit);
	pthread_key_delete(late_key);
	conc_test_watchdog_off();
}

/* ---- pool ------------------------------------------------------------------ */

#define POOL_T 3

static atomic_int starts, stops;
static atomic_long ran;

static void on_start(unsigned i, void *ctx)
{
	(void)i;
	(void)ctx;
	atomic_fetch_add(&starts, 1);
}

static void on_stop(unsigned i, void *ctx)
{
	(void)i;
	(void)ctx;
	atomic_fetch_add(&stops, 1);
}

static void count_task(void *arg)
{
	(void)arg;
	atomic_fetch_add(&ran, 1);
}

static const conc_pool_config hooked = {
	.threads = POOL_T, .on_start = on_start, .on_stop = on_stop};

static void pool_reset_counts(void)
{
	atomic_store(&starts, 0);
	atomic_store(&stops, 0);
	atomic_store(&ran, 0);
}

/* The pool works: a task runs; then it is destroyed, every hook paired. */
static void check_pool_works_and_destroy(struct sweep *sw, conc_pool *p, bool hooks)
{
	long r0 = atomic_load(&ran);
	CHECK(sw, conc_pool_execute(p, count_task, NULL) == 0);
	CHECK(sw, conc_pool_wait(p) == 0);
	CHECK(sw, atomic_load(&ran) == r0 + 1);
	unsigned n = conc_pool_threads(p);
	int s0 = atomic_load(&starts);
	CHECK(sw, conc_pool_destroy(p) == 0);
	CHECK(sw, atomic_load(&stops) == s0);
	CHECK(sw, !hooks || (unsigned)s0 >= n);
}

static void run_pool_create(struct sweep *sw)
{
	pool_reset_counts();
	unsigned t0 = threads_now();
	conc_pool *p = SENTINEL;
	arm(sw);
	int err = conc_pool_create(&p, &hooked);
	disarm(sw);
	CHECK(sw, err == want_err(sw));
	if (err) {
		/* every started thread joined without running a hook */
		CHECK(sw, p == SENTINEL);
		CHECK(sw, atomic_load(&starts) == 0);
		CHECK(sw, atomic_load(&stops) == 0);
		CHECK(sw, threads_at_most(t0));
		CHECK(sw, conc_pool_create(&p, &hooked) == 0); /* works again */
	}
	CHECK(sw, atomic_load(&starts) == POOL_T);
	CHECK(sw, conc_pool_threads(p) == POOL_T);
	check_pool_works_and_destroy(sw, p, true);
	CHECK(sw, threads_at_most(t0));
}

/* Grow a pool of one to POOL_T; a failure leaves it at one. */
static void run_pool_resize(struct sweep *sw)
{
	pool_reset_counts();
	conc_pool_config one = hooked;
	one.threads = 1;
	conc_pool *p;
	CHECK(sw, conc_pool_create(&p, &one) == 0);
	unsigned t0 = threads_now();
	arm(sw);
	int err = conc_pool_resize(p, POOL_T);
	disarm(sw);
	CHECK(sw, err == want_err(sw));
	if (err) {
		CHECK(sw, conc_pool_threads(p) == 1);
		CHECK(sw, atomic_load(&starts) == 1); /* no hook ran */
		CHECK(sw, atomic_load(&stops) == 0);
		CHECK(sw, threads_at_most(t0));
		CHECK(sw, conc_pool_execute(p, count_task, NULL) == 0);
		CHECK(sw, conc_pool_wait(p) == 0);
		CHECK(sw, atomic_load(&ran) == 1);
		CHECK(sw, conc_pool_resize(p, POOL_T) == 0); /* works again */
	}
	CHECK(sw, conc_pool_threads(p) == POOL_T);
	CHECK(sw, atomic_load(&starts) == POOL_T);
	check_pool_works_and_destroy(sw, p, true);
}

/*
 * An outside execute that needs a new injector block.  The pool's only
 * worker is held in a gate task, so nothing is taken from the injector;
 * `fill` executes (found once, by watching the allocation count) leave
 * exactly one free slot before the block boundary.
 */
static long exec_fill = -1;
static struct gate pool_gate;

static void gate_task(void *arg)
{
	gate_wait(arg);
}

static conc_pool *held_pool(struct sweep *sw)
{
	conc_pool_config one = {.threads = 1};
	conc_pool *p;
	CHECK(sw, conc_pool_create(&p, &one) == 0);
	gate_init(&pool_gate);
	CHECK(sw, conc_pool_execute(p, gate_task, &pool_gate) == 0);
	gate_await_waiters(&pool_gate, 1);
	return p;
}

static void release_held_pool(struct sweep *sw, conc_pool *p)
{
	gate_open(&pool_gate);
	CHECK(sw, conc_pool_wait(p) == 0);
	gate_destroy(&pool_gate);
}

static void find_exec_fill(void)
{
	struct sweep sw = {.api = "pool_execute(fill)"};
	conc_pool *p = held_pool(&sw);
	atomic_store(&ran, 0);
	for (long i = 0; i < 100000 && exec_fill < 0; i++) {
		conc__fault_reset();
		assert_int_equal(conc_pool_execute(p, count_task, NULL), 0);
		if (conc__fault_alloc_calls() > 0)
			exec_fill = i;
	}
	conc__fault_reset();
	release_held_pool(&sw, p);
	assert_int_equal(conc_pool_destroy(p), 0);
	assert_int_equal(sw.bad, 0);
	assert_true(exec_fill > 0);
}

static void run_pool_execute(struct sweep *sw)
{
	pool_reset_counts();
	conc_pool *p = held_pool(sw);
	for (long i = 0; i < exec_fill; i++)
		CHECK(sw, conc_pool_execute(p, count_task, NULL) == 0);
	arm(sw);
	int err = conc_pool_execute(p, count_task, NULL);
	disarm(sw);
	CHECK(sw, err == want_err(sw));
	if (sw->kind == CALIBRATE)
		CHECK(sw, sw->n_alloc >= 1);
	release_held_pool(sw, p);
	/* the failed task never runs; every other one runs once */
	CHECK(sw, atomic_load(&ran) == exec_fill + (err ? 0 : 1));
	check_pool_works_and_destroy(sw, p, false);
}

/*
 * Executes from inside a task go on the worker's deque; past its capacity
 * it grows (site deque.buf), and when it cannot, the task goes to the
 * injector instead (a fallback: the execute still succeeds).  One worker,
 * so that nobody steals and the growth happens where counted.
 */
#define LOCAL_N 600

static struct {
	int err[LOCAL_N];
	conc_pool *p;
} local;

static void spawner_task(void *arg)
{
	(void)arg;
	for (int i = 0; i < LOCAL_N; i++)
		local.err[i] = conc_pool_execute(local.p, count_task, NULL);
}

static void run_pool_execute_local(struct sweep *sw)
{
	pool_reset_counts();
	conc_pool_config one = {.threads = 1};
	CHECK(sw, conc_pool_create(&local.p, &one) == 0);
	arm(sw);
	int err = conc_pool_execute(local.p, spawner_task, NULL);
	int werr = conc_pool_wait(local.p);
	disarm(sw);
	CHECK(sw, err == 0 && werr == 0);
	if (sw->kind == CALIBRATE)
		CHECK(sw, sw->n_alloc >= 1);
	int bad = 0;
	for (int i = 0; i < LOCAL_N; i++)
		bad += local.err[i] != 0;
	CHECK(sw, bad == 0);                      /* the fallback took them */
	CHECK(sw, atomic_load(&ran) == LOCAL_N); /* each ran once */
	check_pool_works_and_destroy(sw, local.p, false);
}

/*
 * Both ways out failing: every allocation fails while a task executes past
 * its deque's capacity, so neither can the deque grow nor, at the next
 * injector block boundary, the injector take the task.  Those executes
 * return ENOMEM; every task whose execute returned 0 runs once, the others
 * never, and wait still returns (the pool's task count stays exact).
 */
static atomic_int local_ran[LOCAL_N];

static void local_mark(void *arg)
{
	atomic_fetch_add(&local_ran[(uintptr_t)arg], 1);
}

static void spawner_marks(void *arg)
{
	(void)arg;
	for (uintptr_t i = 0; i < LOCAL_N; i++)
		local.err[i] = conc_pool_execute(local.p, local_mark, (void *)i);
}

static void test_faults_pool_local_no_memory(void **state)
{
	(void)state;
	conc_test_watchdog("faults_pool_local_no_memory", 60);
	conc_pool_config one = {.threads = 1};
	assert_int_equal(conc_pool_create(&local.p, &one), 0);
	for (unsigned i = 0; i < LOCAL_N; i++)
		atomic_store(&local_ran[i], 0);
	conc__fault_reset();
	conc__fault_fail_rate(1000000, 0, 1); /* every allocation fails */
	assert_int_equal(conc_pool_execute(local.p, spawner_marks, NULL), 0);
	assert_int_equal(conc_pool_wait(local.p), 0);
	long failed_calls = conc__fault_alloc_failures();
	conc__fault_reset();
	long ok = 0, enomem = 0, bad = 0;
	for (unsigned i = 0; i < LOCAL_N; i++) {
		int r = atomic_load(&local_ran[i]);
		if (local.err[i] == 0) {
			ok++;
			bad += r != 1;
		} else {
			enomem += local.err[i] == ENOMEM;
			bad += local.err[i] != ENOMEM || r != 0;
		}
	}
	/* usable afterwards */
	atomic_store(&ran, 0);
	assert_int_equal(conc_pool_execute(local.p, count_task, NULL), 0);
	assert_int_equal(conc_pool_wait(local.p), 0);
	assert_int_equal(atomic_load(&ran), 1);
	assert_int_equal(conc_pool_destroy(local.p), 0);
	hammer_failed += failed_calls;
	printf("reliability: faults pool_execute_local_no_memory | executes=%d ok=%ld ENOMEM=%ld "
	       "(allocs failed %ld) bad=%ld\n",
	       LOCAL_N, ok, enomem, failed_calls, bad);
	fflush(stdout);
	assert_int_equal(bad, 0);
	assert_true(enomem > 0 && failed_calls > 0);
	conc_test_watchdog_off();
}

/* wait and destroy with tasks queued: they allocate nothing (counted). */
static void run_pool_wait(struct sweep *sw)
{
	pool_reset_counts();
	conc_pool *p = held_pool(sw);
	for (int i = 0; i < 100; i++)
		CHECK(sw, conc_pool_execute(p, count_task, NULL) == 0);
	arm(sw);
	gate_open(&pool_gate);
	int err = conc_pool_wait(p);
	disarm(sw);
	CHECK(sw, err == 0);
	CHECK(sw, atomic_load(&ran) == 100);
	gate_destroy(&pool_gate);
	check_pool_works_and_destroy(sw, p, false);
}

static void run_pool_destroy(struct sweep *sw)
{
	pool_reset_counts();
	conc_pool *p = held_pool(sw);
	for (int i = 0; i < 100; i++)
		CHECK(sw, conc_pool_execute(p, count_task, NULL) == 0);
	gate_open(&pool_gate);
	arm(sw);
	int err = conc_pool_destroy(p);
	disarm(sw);
	CHECK(sw, err == 0);
	CHECK(sw, atomic_load(&ran) == 100);
	gate_destroy(&pool_gate);
}

static void test_faults_pool(void **state)
{
	(void)state;
	conc_test_watchdog("faults_pool", 180);
	sweep("pool_create", run_pool_create);
	sweep("pool_resize", run_pool_resize);
	find_exec_fill();
	sweep("pool_execute", run_pool_execute);
	sweep("pool_execute_local", run_pool_execute_local);
	sweep("pool_wait", run_pool_wait);
	sweep("pool_destroy", run_pool_destroy);
	conc_test_watchdog_off();
}

/* ---- parallel ---------------------------------------------------------------- */

#define PAR_N 512u
static atomic_int par_seen[PAR_N];
static conc_pool *par_pool;

static void par_reset(void)
{
	for (unsigned i = 0; i < PAR_N; i++)
		atomic_store(&par_seen[i], 0);
}

static bool par_each_once(void)
{
	for (unsigned i = 0; i < PAR_N; i++)
		if (atomic_load(&par_seen[i]) != 1)
			return false;
	return true;
}

static int par_body(size_t lo, size_t hi, void *ctx)
{
	(void)ctx;
	for (size_t i = lo; i < hi; i++)
		atomic_fetch_add(&par_seen[i], 1);
	return 0;
}

/* Failed hand-offs run inline: the loop always succeeds, every index once. */
static void run_parallel_for(struct sweep *sw)
{
	par_reset();
	conc__parallel_drop_tickets(); /* each run allocates its tickets */
	arm(sw);
	int err = conc_parallel_for(par_pool, 0, PAR_N, 4, par_body, NULL);
	disarm(sw);
	CHECK(sw, err == 0);
	CHECK(sw, par_each_once());
}

static atomic_int join_a, join_b;

static void join_fa(void *arg)
{
	(void)arg;
	atomic_fetch_add(&join_a, 1);
}

static void join_fb(void *arg)
{
	(void)arg;
	atomic_fetch_add(&join_b, 1);
}

static void run_join(struct sweep *sw)
{
	atomic_store(&join_a, 0);
	atomic_store(&join_b, 0);
	conc__parallel_drop_tickets(); /* each run allocates its tickets */
	arm(sw);
	int err = conc_join(par_pool, join_fa, NULL, join_fb, NULL);
	disarm(sw);
	CHECK(sw, err == 0);
	CHECK(sw, atomic_load(&join_a) == 1 && atomic_load(&join_b) == 1);
}

/* Accumulators above CONC_PARALLEL_STACK_ACC are allocated: a failure
 * there is ENOMEM (documented); a failed hand-off still runs inline. */
struct big_acc {
	uint64_t sum, pieces;
	unsigned char pad[CONC_PARALLEL_STACK_ACC];
};

struct small_acc {
	uint64_t sum, pieces;
};

static void red_identity(void *acc, void *ctx)
{
	(void)ctx;
	struct small_acc *a = acc;
	a->sum = a->pieces = 0;
}

static int red_body(size_t lo, size_t hi, void *acc, void *ctx)
{
	(void)ctx;
	struct small_acc *a = acc;
	for (size_t i = lo; i < hi; i++)
		a->sum += i;
	a->pieces++;
	return 0;
}

static void red_combine(void *acc, const void *other, void *ctx)
{
	(void)ctx;
	struct small_acc *a = acc;
	const struct small_acc *b = other;
	a->sum += b->sum;
	a->pieces += b->pieces;
}

static void run_reduce(struct sweep *sw, size_t size)
{
	struct big_acc r;
	memset(&r, 0xab, sizeof r);
	conc__parallel_drop_tickets(); /* each run allocates its tickets */
	arm(sw);
	int err = conc_parallel_reduce(par_pool, 0, PAR_N, 4, &r, size, red_identity,
				       red_body, red_combine, NULL);
	disarm(sw);
	bool acc_site = site_is(sw, "parallel.reduce_");
	CHECK(sw, err == (acc_site ? ENOMEM : 0));
	if (!err) {
		CHECK(sw, r.sum == (uint64_t)PAR_N * (PAR_N - 1) / 2);
		CHECK(sw, r.pieces == PAR_N / 4);
	}
	/* usable afterwards */
	memset(&r, 0, sizeof r);
	CHECK(sw, conc_parallel_reduce(par_pool, 0, PAR_N, 4, &r, size, red_identity,
				       red_body, red_combine, NULL) == 0);
	CHECK(sw, r.sum == (uint64_t)PAR_N * (PAR_N - 1) / 2);
}

static void run_reduce_small(struct sweep *sw)
{
	run_reduce(sw, sizeof(struct small_acc));
}

static void run_reduce_big(struct sweep *sw)
{
	run_reduce(sw, sizeof(struct big_acc));
}

/* Stolen halves of a big-accumulator reduce allocate their slots on the
 * thief (site parallel.reduce_slots): make the pieces slow enough that
 * the pool's workers steal.  Counts vary with timing: unreached runs are
 * reported, not passed. */
static int slow_red_body(size_t lo, size_t hi, void *acc, void *ctx)
{
	struct timespec ts = {0, 200000};
	nanosleep(&ts, NULL); /* work, not synchronisation */
	return red_body(lo, hi, acc, ctx);
}

static void run_reduce_stolen(struct sweep *sw)
{
	struct big_acc r;
	conc__parallel_drop_tickets(); /* each run allocates its tickets */
	arm(sw);
	int err = conc_parallel_reduce(par_pool, 0, 64, 1, &r, sizeof r, red_identity,
				       slow_red_body, red_combine, NULL);
	disarm(sw);
	CHECK(sw, err == (site_is(sw, "parallel.reduce_") ? ENOMEM : 0));
	if (!err)
		CHECK(sw, r.sum == 64u * 63 / 2 && r.pieces == 64);
}

static bool site_reached(const char *name)
{
	const char *v[128];
	size_t n = conc__fault_sites(v, 128);
	for (size_t i = 0; i < n && i < 128; i++)
		if (strcmp(v[i], name) == 0)
			return true;
	return false;
}

static void test_faults_parallel(void **state)
{
	(void)state;
	conc_test_watchdog("faults_parallel", 180);
	conc_pool_config two = {.threads = 2};
	assert_int_equal(conc_pool_create(&par_pool, &two), 0);
	sweep("parallel_for", run_parallel_for);
	sweep("join", run_join);
	sweep("parallel_reduce", run_reduce_small);
	sweep("parallel_reduce_big", run_reduce_big);
	sweep("parallel_reduce_stolen", run_reduce_stolen);
	/* The stolen-half site needs a steal, which timing decides: retry
	 * (a few times at most) until it has been reached. */
	for (int tries = 0; tries < 10 && !site_reached("parallel.reduce_slots"); tries++)
		sweep("parallel_reduce_stolen(again)", run_reduce_stolen);
	assert_int_equal(conc_pool_destroy(par_pool), 0);
	conc_test_watchdog_off();
}

/*
 * p NULL: the global pool, created on first use.  While its creation
 * fails, the loop runs on the calling thread (documented) and a later call
 * tries again.  No calibration run is possible (the first success keeps the
 * pool for the process), so the sweep goes k = 1, 2, ... until the failed
 * call is no longer one of the creation's: threads first (its size is set
 * by CONC_NUM_THREADS, so the count is known), then allocations; the last
 * run creates the pool.
 */
#define GLOBAL_T 2
#define GLOBAL_T_STR "2"

static void run_global(struct sweep *sw)
{
	par_reset();
	conc__parallel_drop_tickets(); /* each run allocates its tickets */
	arm(sw);
	int err = conc_parallel_for(NULL, 0, PAR_N, 4, par_body, NULL);
	disarm(sw);
	CHECK(sw, err == 0);
	CHECK(sw, par_each_once());
}

static void test_faults_global_pool(void **state)
{
	(void)state;
	conc_test_watchdog("faults_global_pool", 120);
	struct sweep sw = {.api = "global_pool"};
	sw.kind = FAIL_THREAD;
	for (sw.k = 1; sw.k <= GLOBAL_T; sw.k++) {
		sw.bad_before = sw.bad;
		run_global(&sw);
		CHECK(&sw, site_is(&sw, "pool.thread"));
		total_failed += sw.site != NULL;
		sw.ok_thread += sw.site && sw.bad == sw.bad_before;
	}
	sw.n_thread = GLOBAL_T;
	sw.kind = FAIL_ALLOC;
	for (sw.k = 1;; sw.k++) {
		sw.bad_before = sw.bad;
		run_global(&sw);
		if (!sw.site || !(site_is(&sw, "pool.") || site_is(&sw, "deque.")))
			break; /* the creation succeeded: the pool exists now */
		total_failed++;
		sw.ok_alloc += sw.bad == sw.bad_before;
	}
	sw.n_alloc = sw.k - 1;
	sw.kind = CALIBRATE;
	CHECK(&sw, conc_pool_global() != NULL);
	CHECK(&sw, conc_pool_threads(conc_pool_global()) == GLOBAL_T);
	CHECK(&sw, sw.n_alloc >= 2);
	sweep_report(&sw);
	total_bad += sw.bad;
	assert_int_equal(sw.bad, 0);
	conc_test_watchdog_off();
}

/* ---- scope -------------------------------------------------------------------- */

#define SCOPE_NEW 3   /* threads each run must create */
#define SCOPE_WARM 40 /* parked threads before the sweep: > 32 handles */
#define SCOPE_MAX 512

static struct {
	struct gate g;
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
	gate_wait(&sc.g);
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
	gate_open(&sc.g);
	unsigned j = sc.err[0] ? 1 : 0;
	sc.join_err = conc_thread_join(sc.h[j], &sc.join_res);
	sc.join_res = sc.join_res == (void *)(uintptr_t)j ? NULL : SENTINEL;
}

static int scope_round(unsigned n)
{
	gate_init(&sc.g);
	sc.n = n;
	for (unsigned i = 0; i < n; i++) {
		sc.err[i] = -1;
		sc.h[i] = SENTINEL;
		atomic_store(&sc.ran[i], 0);
	}
	int err = conc_scope_run(scope_body, NULL);
	gate_destroy(&sc.g);
	return err;
}

static void run_scope(struct sweep *sw)
{
	/* the threads of the last round park on their own after their
	 * function returned: wait for them, so the counts are exact */
	while (conc__scope_idle_threads() != conc__scope_live_threads())
		nap();
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
		nap();
	conc__scope_set_idle_timeout_ns(0);
	conc_test_watchdog_off();
}

/* ---- under concurrency: random failures --------------------------------- */

/*
 * The sweeps above fail one call of one operation on a quiet object.  Here
 * many threads work at once while a fixed share of all allocations (and
 * thread creations) fails at random (conc__fault_fail_rate): a failed call
 * must still change nothing - every item whose push returned 0 is popped
 * exactly once, in per-producer order for the queue, and no item of a
 * failed push ever appears; every task whose execute returned 0 runs once;
 * every spawn that returned 0 runs once and the others never.
 */
#define HAM_P 2
#define HAM_C 2
#define HAM_PPM 250000 /* a quarter of all allocations fail */

struct ham {
	bool queue;
	conc_queue *q;
	conc_stack *s;
	unsigned long m; /* items per producer */
	atomic_uchar *seen;  /* [HAM_P * m] */
	unsigned char *fail; /* [HAM_P * m], written by the producer */
	atomic_int producers_left;
	long order_bad[HAM_C];
	long failed[HAM_P];
};

static struct ham ham;

/* Whether `calls` calls at `ppm` make at least 10 failures likely: only
 * then must there be one (a smoke run at CONC_STRESS_SCALE=0, or a low
 * rate on the queue's few segment allocations, may see none). */
static bool expect_failures(long calls, long ppm)
{
	return (double)calls * (double)ppm / 1e6 >= 10.0;
}

static void *ham_producer(void *arg)
{
	unsigned p = (unsigned)(uintptr_t)arg;
	for (unsigned long i = 0; i < ham.m; i++) {
		void *item = ITEM(((uintptr_t)p << 32) | (i + 1));
		int err = ham.queue ? conc_queue_push(ham.q, item) : conc_stack_push(ham.s, item);
		if (err) {
			ham.fail[p * ham.m + i] = err == ENOMEM ? 1 : 2;
			ham.failed[p]++;
		}
	}
	atomic_fetch_sub(&ham.producers_left, 1);
	return NULL;
}

static void *ham_consumer(void *arg)
{
	unsigned c = (unsigned)(uintptr_t)arg;
	uint64_t last[HAM_P] = {0};
	for (;;) {
		bool done = atomic_load(&ham.producers_left) == 0;
		void *x;
		bool got = ham.queue ? conc_queue_try_pop(ham.q, &x) : conc_stack_try_pop(ham.s, &x);
		if (!got) {
			if (done)
				break; /* empty after every producer finished */
			sched_yield();
			continue;
		}
		uintptr_t v = (uintptr_t)x;
		unsigned p = (unsigned)(v >> 32);
		uint64_t seq = v & 0xffffffffu;
		if (p >= HAM_P || seq == 0 || seq > ham.m) {
			ham.order_bad[c]++; /* not an item anybody pushed */
			continue;
		}
		atomic_fetch_add(&ham.seen[p * ham.m + seq - 1], 1);
		if (ham.queue) {
			if (seq <= last[p])
				ham.order_bad[c]++;
			last[p] = seq;
		}
	}
	return NULL;
}

static void *ham_thread(void *arg)
{
	unsigned i = (unsigned)(uintptr_t)arg;
	return i < HAM_P ? ham_producer(arg) : ham_consumer((void *)(uintptr_t)(i - HAM_P));
}

static void run_threads_indexed(unsigned n, void *(*fn)(void *))
{
	pthread_t t[16];
	assert_true(n <= 16);
	for (unsigned i = 0; i < n; i++)
		assert_int_equal(pthread_create(&t[i], NULL, fn, (void *)(uintptr_t)i), 0);
	for (unsigned i = 0; i < n; i++)
		pthread_join(t[i], NULL);
}

static void hammer_container(bool queue, long ppm, unsigned long seed)
{
	const char *name = queue ? "queue" : "stack";
	memset(&ham, 0, sizeof ham);
	ham.queue = queue;
	ham.m = conc_test_iters(300000, 10);
	ham.seen = calloc(HAM_P * ham.m, sizeof *ham.seen);
	ham.fail = calloc(HAM_P * ham.m, 1);
	assert_non_null(ham.seen);
	assert_non_null(ham.fail);
	atomic_store(&ham.producers_left, HAM_P);
	conc_epoch *d;
	assert_int_equal(conc_epoch_create(&d), 0);
	if (queue)
		assert_int_equal(conc_queue_create_in(&ham.q, d), 0);
	else
		assert_int_equal(conc_stack_create_in(&ham.s, d), 0);
	conc__fault_reset();
	conc__fault_fail_rate(ppm, 0, seed);
	run_threads_indexed(HAM_P + HAM_C, ham_thread);
	long calls = conc__fault_alloc_calls(), failed_calls = conc__fault_alloc_failures();
	/* a pop that finds no retire record keeps its nodes pending and still
	 * succeeds: those failures fail no call */
	long absorbed = conc__fault_site_failures("stack.retire");
	conc__fault_reset();
	long lost = 0, dup = 0, ghost = 0, wrong_err = 0, order = 0, failed = 0;
	for (unsigned long i = 0; i < HAM_P * ham.m; i++) {
		unsigned seen = atomic_load(&ham.seen[i]);
		if (ham.fail[i]) {
			failed++;
			ghost += seen != 0; /* a failed push must leave no item */
			wrong_err += ham.fail[i] != 1;
		} else {
			lost += seen == 0;
			dup += seen > 1;
		}
	}
	for (unsigned c = 0; c < HAM_C; c++)
		order += ham.order_bad[c];
	void *x;
	bool left = queue ? conc_queue_try_pop(ham.q, &x) : conc_stack_try_pop(ham.s, &x);
	if (queue)
		conc_queue_destroy(ham.q, NULL);
	else
		conc_stack_destroy(ham.s, NULL);
	assert_int_equal(conc_epoch_barrier(d), 0);
	conc_epoch_stats st;
	conc_epoch_get_stats(d, &st);
	assert_int_equal(conc_epoch_destroy(d), 0);
	free(ham.seen);
	free(ham.fail);
	hammer_failed += failed_calls;
	printf("reliability: faults hammer %s %u:%u fail=%ld%% | pushes=%lu failed=%ld (of %ld allocs, "
	       "%ld failed) lost=%ld dup=%ld ghost=%ld order=%ld\n",
	       name, HAM_P, HAM_C, ppm / 10000, HAM_P * ham.m, failed, calls, failed_calls, lost, dup,
	       ghost, order);
	fflush(stdout);
	assert_false(left);
	assert_int_equal(lost, 0);
	assert_int_equal(dup, 0);
	assert_int_equal(ghost, 0);
	assert_int_equal(wrong_err, 0);
	assert_int_equal(order, 0);
	assert_int_equal(st.pending, 0);
	/* each failed allocation failed exactly one push (the record
	 * failures of pops, absorbed, aside) */
	assert_int_equal(failed, failed_calls - absorbed);
	if (expect_failures(calls, ppm))
		assert_true(failed_calls > 0);
}

static void test_faults_hammer_queue(void **state)
{
	(void)state;
	conc_test_watchdog("faults_hammer_queue", 120);
	hammer_container(true, 0, 0); /* the baseline: allocations per push */
	hammer_container(true, 20000, 1);
	hammer_container(true, HAM_PPM, 2);
	hammer_container(true, 900000, 3);
	conc_test_watchdog_off();
}

static void test_faults_hammer_stack(void **state)
{
	(void)state;
	conc_test_watchdog("faults_hammer_stack", 120);
	conc__stack_trim_caches();
	hammer_container(false, 0, 0);
	hammer_container(false, 20000, 4);
	hammer_container(false, HAM_PPM, 5);
	hammer_container(false, 900000, 6);
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

/* The pool: two outside threads execute, tasks execute subtasks, a third
 * thread resizes, while allocations and thread creations fail at random. */
#define HP_SUB 40

static struct {
	conc_pool *p;
	unsigned long m;
	atomic_uchar *ran;   /* [2 * m] */
	unsigned char *fail; /* [2 * m] */
	atomic_long sub_ok, sub_ran, sub_bad_err;
	atomic_int execs_left;
	long resizes, resize_failed, resize_bad;
} hp;

static void hp_sub(void *arg)
{
	(void)arg;
	atomic_fetch_add(&hp.sub_ran, 1);
}

static void hp_task(void *arg)
{
	uintptr_t i = (uintptr_t)arg;
	atomic_fetch_add(&hp.ran[i], 1);
	if (i % 16 == 0)
		for (int k = 0; k < HP_SUB; k++) {
			int err = conc_pool_execute(hp.p, hp_sub, NULL);
			if (err == 0)
				atomic_fetch_add(&hp.sub_ok, 1);
			else if (err != ENOMEM)
				atomic_fetch_add(&hp.sub_bad_err, 1);
		}
}

static void *hp_thread(void *arg)
{
	unsigned t = (unsigned)(uintptr_t)arg;
	if (t < 2) {
		for (unsigned long i = 0; i < hp.m; i++) {
			uintptr_t idx = t * hp.m + i;
			int err = conc_pool_execute(hp.p, hp_task, (void *)idx);
			if (err)
				hp.fail[idx] = err == ENOMEM ? 1 : 2;
		}
		atomic_fetch_sub(&hp.execs_left, 1);
		return NULL;
	}
	unsigned long min_resizes = conc_test_iters(200, 4);
	for (unsigned n = 1; atomic_load(&hp.execs_left) > 0 || (unsigned long)hp.resizes < min_resizes;
	     n = n % 4 + 1) {
		unsigned before = conc_pool_threads(hp.p);
		int err = conc_pool_resize(hp.p, n);
		hp.resizes++;
		if (err) {
			hp.resize_failed++;
			/* unchanged; only this thread resizes */
			if ((err != EAGAIN && err != ENOMEM) || conc_pool_threads(hp.p) != before)
				hp.resize_bad++;
		} else if (conc_pool_threads(hp.p) != n) {
			hp.resize_bad++;
		}
	}
	return NULL;
}

static void test_faults_hammer_pool(void **state)
{
	(void)state;
	conc_test_watchdog("faults_hammer_pool", 120);
	memset(&hp, 0, sizeof hp);
	hp.m = conc_test_iters(200000, 10);
	hp.ran = calloc(2 * hp.m, sizeof *hp.ran);
	hp.fail = calloc(2 * hp.m, 1);
	assert_non_null(hp.ran);
	assert_non_null(hp.fail);
	atomic_store(&hp.execs_left, 2);
	conc_pool_config two = {.threads = 2};
	assert_int_equal(conc_pool_create(&hp.p, &two), 0);
	conc__fault_reset();
	conc__fault_fail_rate(HAM_PPM, 300000, 0xfee1);
	run_threads_indexed(3, hp_thread);
	assert_int_equal(conc_pool_wait(hp.p), 0);
	long a_calls = conc__fault_alloc_calls(), a_failed = conc__fault_alloc_failures();
	long t_calls = conc__fault_thread_calls(), t_failed = conc__fault_thread_failures();
	conc__fault_reset();
	hammer_failed += a_failed + t_failed;
	long lost = 0, dup = 0, ghost = 0, wrong_err = 0, failed = 0;
	for (unsigned long i = 0; i < 2 * hp.m; i++) {
		unsigned r = atomic_load(&hp.ran[i]);
		if (hp.fail[i]) {
			failed++;
			ghost += r != 0;
			wrong_err += hp.fail[i] != 1;
		} else {
			lost += r == 0;
			dup += r > 1;
		}
	}
	long sub_lost = atomic_load(&hp.sub_ok) - atomic_load(&hp.sub_ran);
	/* usable afterwards */
	assert_int_equal(conc_pool_resize(hp.p, 2), 0);
	atomic_store(&hp.sub_ran, 0);
	assert_int_equal(conc_pool_execute(hp.p, hp_sub, NULL), 0);
	assert_int_equal(conc_pool_wait(hp.p), 0);
	assert_int_equal(atomic_load(&hp.sub_ran), 1);
	assert_int_equal(conc_pool_destroy(hp.p), 0);
	free(hp.ran);
	free(hp.fail);
	printf("reliability: faults hammer pool | tasks=%lu failed=%ld subtasks=%ld resizes=%ld "
	       "(failed %ld) allocs=%ld failed=%ld threads=%ld failed=%ld lost=%ld dup=%ld ghost=%ld\n",
	       2 * hp.m, failed, atomic_load(&hp.sub_ok), hp.resizes, hp.resize_failed, a_calls,
	       a_failed, t_calls, t_failed, lost + (sub_lost > 0 ? sub_lost : 0),
	       dup + (sub_lost < 0 ? -sub_lost : 0), ghost);
	fflush(stdout);
	assert_int_equal(lost, 0);
	assert_int_equal(dup, 0);
	assert_int_equal(ghost, 0);
	assert_int_equal(wrong_err, 0);
	assert_int_equal(sub_lost, 0);
	assert_int_equal(atomic_load(&hp.sub_bad_err), 0);
	assert_int_equal(hp.resize_bad, 0);
}

/* Parallel loops nested in bodies, on a pool, with hand-offs failing. */
#define HPAR_N 4096u
static atomic_uchar hpar_seen[HPAR_N];

static int hpar_inner(size_t lo, size_t hi, void *ctx)
{
	(void)ctx;
	for (size_t i = lo; i < hi; i++)
		atomic_fetch_add(&hpar_seen[i], 1);
	return 0;
}

static int hpar_outer(size_t lo, size_t hi, void *ctx)
{
	return conc_parallel_for(ctx, lo, hi, 8, hpar_inner, NULL);
}

static void test_faults_hammer_parallel(void **state)
{
	(void)state;
	conc_test_watchdog("faults_hammer_parallel", 120);
	conc_pool *p;
	conc_pool_config two = {.threads = 2};
	assert_int_equal(conc_pool_create(&p, &two), 0);
	unsigned long rounds = conc_test_iters(1000, 10);
	long bad = 0, red_enomem = 0, red_ok = 0;
	conc__fault_reset();
	conc__fault_fail_rate(HAM_PPM, 0, 0xa11);
	for (unsigned long r = 0; r < rounds; r++) {
		for (unsigned i = 0; i < HPAR_N; i++)
			atomic_store(&hpar_seen[i], 0);
		bad += conc_parallel_for(p, 0, HPAR_N, 256, hpar_outer, p) != 0;
		for (unsigned i = 0; i < HPAR_N; i++)
			bad += atomic_load(&hpar_seen[i]) != 1;
		struct big_acc acc;
		int err = conc_parallel_reduce(p, 0, HPAR_N, 64, &acc, sizeof acc, red_identity,
					       red_body, red_combine, NULL);
		if (err == ENOMEM)
			red_enomem++;
		else if (err == 0 && acc.sum == (uint64_t)HPAR_N * (HPAR_N - 1) / 2)
			red_ok++;
		else
			bad++;
	}
	long a_calls = conc__fault_alloc_calls(), a_failed = conc__fault_alloc_failures();
	conc__fault_reset();
	hammer_failed += a_failed;
	assert_int_equal(conc_pool_destroy(p), 0);
	printf("reliability: faults hammer parallel | rounds=%lu allocs=%ld failed=%ld "
	       "reduce ok=%ld ENOMEM=%ld bad=%ld\n",
	       rounds, a_calls, a_failed, red_ok, red_enomem, bad);
	fflush(stdout);
	assert_int_equal(bad, 0);
	if (expect_failures(a_calls, HAM_PPM))
		assert_true(a_failed > 0);
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

/* ---- every site in src/ was reached ---------------------------------------- */

#define MAX_SITES 128

struct names {
	const char *v[MAX_SITES];
	size_t n;
};

static bool has_suffix(const char *s, const char *suf)
{
	size_t a = strlen(s), b = strlen(suf);
	return a >= b && strcmp(s + a - b, suf) == 0;
}

static char *slurp(const char *path)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return NULL;
	size_t cap = 1 << 16, len = 0;
	char *buf = malloc(cap);
	size_t r;
	while (buf && (r = fread(buf + len, 1, cap - len - 1, f)) > 0) {
		len += r;
		if (cap - len - 1 == 0) {
			char *nb = realloc(buf, cap * 2);
			if (!nb) {
				free(buf);
				buf = NULL;
				break;
			}
			buf = nb;
			cap *= 2;
		}
	}
	fclose(f);
	if (buf)
		buf[len] = 0;
	return buf;
}

static bool ident_char(char c)
{
	return c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	       (c >= '0' && c <= '9');
}

/*
 * The sites of one file: every call of the four hook macros must name its
 * site with a string literal, and nothing allocates or creates a thread
 * without them; returns the number of calls that break either rule.
 */
static unsigned scan_file(const char *path, struct names *out, unsigned *dups)
{
	static const char *const macros[] = {"conc__malloc(", "conc__calloc(",
					     "conc__aligned_alloc(", "conc__thread_create("};
	char *text = slurp(path);
	assert_non_null(text);
	unsigned unnamed = 0;
	for (unsigned m = 0; m < 4; m++) {
		for (char *p = text; (p = strstr(p, macros[m])); p++) {
			if (p > text && ident_char(p[-1]))
				continue;
			char *q = p + strlen(macros[m]);
			while (*q == ' ' || *q == '\t' || *q == '\n')
				q++;
			char *end = *q == '"' ? strchr(q + 1, '"') : NULL;
			if (!end) {
				printf("faults sites: %s: a %s call without a site name\n", path,
				       macros[m]);
				unnamed++;
				continue;
			}
			size_t len = (size_t)(end - q - 1);
			char *name = malloc(len + 1);
			assert_non_null(name);
			memcpy(name, q + 1, len);
			name[len] = 0;
			for (size_t i = 0; i < out->n; i++)
				if (strcmp(out->v[i], name) == 0) {
					printf("faults sites: %s: site name \"%s\" used twice\n",
					       path, name);
					++*dups;
				}
			assert_true(out->n < MAX_SITES);
			out->v[out->n++] = name;
		}
	}
	/* and no allocation or thread creation bypasses the hooks */
	static const char *const raw[] = {"malloc(",         "calloc(",  "realloc(",
					  "aligned_alloc(",  "strdup(",  "strndup(",
					  "posix_memalign(", "pthread_create("};
	for (unsigned m = 0; m < sizeof raw / sizeof raw[0]; m++)
		for (char *p = text; (p = strstr(p, raw[m])); p++)
			if (p == text || !ident_char(p[-1])) {
				printf("faults sites: %s: %s called directly, not through a hook\n",
				       path, raw[m]);
				unnamed++;
			}
	free(text);
	return unnamed;
}

/* Every .c and .h file below dir (src/ and its module folders). */
static unsigned scan_dir(const char *dir, struct names *out, unsigned *dups, unsigned *files)
{
	DIR *d = opendir(dir);
	assert_non_null(d);
	unsigned unnamed = 0;
	struct dirent *e;
	while ((e = readdir(d))) {
		if (e->d_name[0] == '.')
			continue;
		char path[4096];
		snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
		struct stat st;
		assert_int_equal(stat(path, &st), 0);
		if (S_ISDIR(st.st_mode)) {
			unnamed += scan_dir(path, out, dups, files);
			continue;
		}
		/* fault.h defines the macros (no literal there) */
		if ((!has_suffix(e->d_name, ".c") && !has_suffix(e->d_name, ".h")) ||
		    strcmp(e->d_name, "fault.h") == 0)
			continue;
		unnamed += scan_file(path, out, dups);
		++*files;
	}
	closedir(d);
	return unnamed;
}

static void test_faults_sites(void **state)
{
	(void)state;
	struct names src = {{0}, 0};
	unsigned dups = 0, files = 0;
	unsigned unnamed = scan_dir(CONC_SRC_DIR, &src, &dups, &files);
	assert_true(files >= 20);
	const char *reached[MAX_SITES];
	size_t nr = conc__fault_sites(reached, MAX_SITES);
	assert_true(nr <= MAX_SITES);
	unsigned hit = 0, stray = 0;
	for (size_t i = 0; i < src.n; i++) {
		bool found = false;
		for (size_t j = 0; j < nr && !found; j++)
			found = strcmp(src.v[i], reached[j]) == 0;
		hit += found;
		if (!found)
			printf("faults sites: %s not reached by the suite\n", src.v[i]);
	}
	for (size_t j = 0; j < nr; j++) {
		bool found = false;
		for (size_t i = 0; i < src.n && !found; i++)
			found = strcmp(src.v[i], reached[j]) == 0;
		if (!found) { /* a name the source scan missed */
			printf("faults sites: %s reached but not found in %s\n", reached[j],
			       CONC_SRC_DIR);
			stray++;
		}
	}
	printf("reliability: faults sites | hit=%u/%zu\n", hit, src.n);
	printf("reliability: faults total | calls_failed=%ld (sweeps %ld, hammer %ld) bad=%ld "
	       "unreached=%ld\n",
	       total_failed + hammer_failed, total_failed, hammer_failed, total_bad,
	       total_unreached);
	fflush(stdout);
	for (size_t i = 0; i < src.n; i++)
		free((void *)src.v[i]);
	assert_int_equal(unnamed, 0);
	assert_int_equal(dups, 0);
	assert_int_equal(stray, 0);
	assert_true(src.n > 0);
	assert_int_equal(hit, src.n);
	assert_int_equal(total_bad, 0);
}

int main(void)
{
	/* the global pool's size, before anything can create it */
	setenv("CONC_NUM_THREADS", GLOBAL_T_STR, 1);
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_faults_epoch),
		cmocka_unit_test(test_faults_epoch_register),
		cmocka_unit_test(test_faults_queue),
		cmocka_unit_test(test_faults_stack),
		cmocka_unit_test(test_faults_pool),
		cmocka_unit_test(test_faults_pool_local_no_memory),
		cmocka_unit_test(test_faults_parallel),
		cmocka_unit_test(test_faults_global_pool),
		cmocka_unit_test(test_faults_scope),
		cmocka_unit_test(test_faults_hammer_epoch),
		cmocka_unit_test(test_faults_hammer_queue),
		cmocka_unit_test(test_faults_hammer_stack),
		cmocka_unit_test(test_faults_hammer_pool),
		cmocka_unit_test(test_faults_hammer_parallel),
		cmocka_unit_test(test_faults_hammer_scope),
		/* last: compares the sites the tests above reached */
		cmocka_unit_test(test_faults_sites),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
