/*
 * test_scope.c - scoped threads (conc/scope.h) and their thread cache.
 *
 * Scoped threads never call cmocka asserts: they record into slots the
 * main thread checks after conc_scope_run has joined them.
 */
#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "helpers.h"
#include "testutil.h"

#include "conc/epoch.h"
#include "conc/scope.h"
#include "base/fault.h"
#include "scope/scope_internal.h"

static unsigned baseline_tasks; /* threads of the process before any scope */

/* Let every cached thread time out (the watchdog catches a hang), then set
 * the idle timeout to `then_ns`. */
static void drain_cache(uint64_t then_ns)
{
	conc__scope_set_idle_timeout_ns(1000000); /* 1 ms */
	while (conc__scope_live_threads() != 0)
		conc_test_nap();
	conc__scope_set_idle_timeout_ns(then_ns);
}

/* ---- argument checks, the empty scope ------------------------------------ */

static void *ret_arg(conc_scope *s, void *arg)
{
	(void)s;
	return arg;
}

struct einval_ctx {
	int spawn_null_scope, spawn_null_fn, join_null;
	conc_thread *untouched;
};

static void einval_body(conc_scope *s, void *ctx)
{
	struct einval_ctx *c = ctx;
	c->untouched = (conc_thread *)&c->untouched;
	c->spawn_null_scope = conc_scope_spawn(NULL, ret_arg, NULL, &c->untouched);
	c->spawn_null_fn = conc_scope_spawn(s, NULL, NULL, &c->untouched);
	c->join_null = conc_thread_join(NULL, NULL);
}

static void test_scope_einval(void **state)
{
	(void)state;
	conc_test_watchdog("scope_einval", 30);
	assert_int_equal(conc_scope_run(NULL, NULL), EINVAL);
	struct einval_ctx c;
	/* A spawn's EINVAL (NULL fn) is a spawn error like any other: the
	 * scope returns it (issue 15; a NULL scope has nowhere to record it). */
	assert_int_equal(conc_scope_run(einval_body, &c), EINVAL);
	assert_int_equal(c.spawn_null_scope, EINVAL);
	assert_int_equal(c.spawn_null_fn, EINVAL);
	assert_int_equal(c.join_null, EINVAL);
	assert_ptr_equal(c.untouched, (conc_thread *)&c.untouched);
	conc_test_watchdog_off();
}

static void empty_body(conc_scope *s, void *ctx)
{
	*(conc_scope **)ctx = s;
}

static void test_scope_empty(void **state)
{
	(void)state;
	conc_test_watchdog("scope_empty", 30);
	conc_scope *seen = NULL;
	assert_int_equal(conc_scope_run(empty_body, &seen), 0);
	assert_non_null(seen);
	conc_test_watchdog_off();
}

/* ---- the seed example --------------------------------------------------- */

#define SEED_N 1000

static void *seed_fn(conc_scope *s, void *arg)
{
	(void)s;
	uintptr_t n = (uintptr_t)arg;
	return (void *)(n * n + n * 5 + 250);
}

struct seed_ctx {
	conc_thread *h[SEED_N];
	int spawn_err[SEED_N];
	int join_err[SEED_N];
	uint64_t sum;
};

static void seed_body(conc_scope *s, void *ctx)
{
	struct seed_ctx *c = ctx;
	for (uintptr_t n = 0; n < SEED_N; n++)
		c->spawn_err[n] = conc_scope_spawn(s, seed_fn, (void *)n, &c->h[n]);
	c->sum = 0;
	for (unsigned n = 0; n < SEED_N; n++) {
		void *r = NULL;
		c->join_err[n] = c->spawn_err[n] ? -1 : conc_thread_join(c->h[n], &r);
		c->sum += (uintptr_t)r;
	}
}

static void test_scope_seed_sum(void **state)
{
	(void)state;
	conc_test_watchdog("scope_seed_sum", 60);
	static struct seed_ctx c;
	uint64_t expect = 0;
	for (uint64_t n = 0; n < SEED_N; n++)
		expect += n * n + n * 5 + 250;
	assert_int_equal(expect, 335581000u);
	unsigned long created0 = conc__scope_threads_created();
	assert_int_equal(conc_scope_run(seed_body, &c), 0);
	for (unsigned n = 0; n < SEED_N; n++) {
		assert_int_equal(c.spawn_err[n], 0);
		assert_int_equal(c.join_err[n], 0);
	}
	assert_int_equal(c.sum, 335581000u);
	/* Second round on a warm cache; the threads were reused. */
	assert_int_equal(conc_scope_run(seed_body, &c), 0);
	assert_int_equal(c.sum, 335581000u);
	assert_true(conc__scope_threads_created() - created0 < 2 * SEED_N);
	conc_test_watchdog_off();
}

/* Nobody joins: results travel through arg; the scope end joins all. */
struct unjoined {
	uint64_t *out;
	uintptr_t n;
};

static void *unjoined_fn(conc_scope *s, void *arg)
{
	(void)s;
	struct unjoined *u = arg;
	u->out[u->n] = u->n * u->n + u->n * 5 + 250;
	return NULL;
}

struct unjoined_ctx {
	struct unjoined u[SEED_N];
	uint64_t out[SEED_N];
	int err;
};

static void unjoined_body(conc_scope *s, void *ctx)
{
	struct unjoined_ctx *c = ctx;
	c->err = 0;
	for (uintptr_t n = 0; n < SEED_N; n++) {
		c->u[n] = (struct unjoined){c->out, n};
		int e = conc_scope_spawn(s, unjoined_fn, &c->u[n], NULL);
		if (e)
			c->err = e;
	}
}

static void test_scope_unjoined_results(void **state)
{
	(void)state;
	conc_test_watchdog("scope_unjoined_results", 60);
	static struct unjoined_ctx c;
	memset(c.out, 0, sizeof c.out);
	assert_int_equal(conc_scope_run(unjoined_body, &c), 0);
	assert_int_equal(c.err, 0);
	uint64_t sum = 0;
	for (unsigned n = 0; n < SEED_N; n++)
		sum += c.out[n];
	assert_int_equal(sum, 335581000u);
	conc_test_watchdog_off();
}

/* ---- the caller's stack --------------------------------------------------- */

#define STK_THREADS 48
#define STK_SLICE 32

struct stk_ctx {
	int (*a)[STK_SLICE]; /* the caller's stack array */
};

struct stk_arg {
	int (*a)[STK_SLICE];
	unsigned i;
};

static void *stk_fn(conc_scope *s, void *arg)
{
	(void)s;
	struct stk_arg *x = arg;
	int sum = 0;
	for (unsigned k = 0; k < STK_SLICE; k++) {
		sum += x->a[x->i][k]; /* read what the caller wrote */
		x->a[x->i][k] = (int)(x->i * 1000 + k); /* write our part */
	}
	return (void *)(intptr_t)sum;
}

static void stk_body_joined(conc_scope *s, void *ctx)
{
	struct stk_ctx *c = ctx;
	struct stk_arg args[STK_THREADS];
	conc_thread *h[STK_THREADS];
	int sums[STK_THREADS];
	for (unsigned i = 0; i < STK_THREADS; i++) {
		args[i] = (struct stk_arg){c->a, i};
		if (conc_scope_spawn(s, stk_fn, &args[i], &h[i]))
			h[i] = NULL;
	}
	for (unsigned i = 0; i < STK_THREADS; i++) {
		void *r = NULL;
		sums[i] = h[i] && conc_thread_join(h[i], &r) == 0 ? (int)(intptr_t)r : -1;
	}
	for (unsigned i = 0; i < STK_THREADS; i++)
		c->a[i][0] = sums[i] == (int)(STK_SLICE * (STK_SLICE - 1) / 2) ? c->a[i][0] : -7;
}

static void test_scope_caller_stack(void **state)
{
	(void)state;
	conc_test_watchdog("scope_caller_stack", 60);
	int a[STK_THREADS][STK_SLICE];
	for (unsigned i = 0; i < STK_THREADS; i++)
		for (unsigned k = 0; k < STK_SLICE; k++)
			a[i][k] = (int)k;
	struct stk_ctx c = {a};
	assert_int_equal(conc_scope_run(stk_body_joined, &c), 0);
	for (unsigned i = 0; i < STK_THREADS; i++)
		for (unsigned k = 0; k < STK_SLICE; k++)
			assert_int_equal(a[i][k], (int)(i * 1000 + k));
	conc_test_watchdog_off();
}

/* ---- nesting --------------------------------------------------------------- */

#define DEPTH 10

struct chain {
	atomic_int visited[DEPTH];
	unsigned depth[DEPTH];
	int err;
};

struct chain_arg {
	struct chain *c;
	unsigned d;
};

static struct chain_arg chain_args[DEPTH];

/* Each link spawns the next into the same scope and returns without
 * joining it; the next link lingers first, so a scope end that waited only
 * for the body's own spawns would miss it. */
static void *chain_fn(conc_scope *s, void *arg)
{
	struct chain_arg *x = arg;
	if (x->d + 1 < DEPTH) {
		int e = conc_scope_spawn(s, chain_fn, &chain_args[x->d + 1], NULL);
		if (e)
			x->c->err = e;
	}
	for (int i = 0; i < 50; i++)
		sched_yield();
	atomic_store(&x->c->visited[x->d], 1);
	return NULL;
}

static void chain_body(conc_scope *s, void *ctx)
{
	struct chain *c = ctx;
	for (unsigned d = 0; d < DEPTH; d++)
		chain_args[d] = (struct chain_arg){c, d};
	c->err = conc_scope_spawn(s, chain_fn, &chain_args[0], NULL);
}

static void test_scope_nested_spawns(void **state)
{
	(void)state;
	conc_test_watchdog("scope_nested_spawns", 60);
	for (int round = 0; round < 20; round++) {
		struct chain c;
		for (unsigned d = 0; d < DEPTH; d++)
			atomic_init(&c.visited[d], 0);
		c.err = 0;
		assert_int_equal(conc_scope_run(chain_body, &c), 0);
		assert_int_equal(c.err, 0);
		for (unsigned d = 0; d < DEPTH; d++)
			assert_int_equal(atomic_load(&c.visited[d]), 1);
	}
	conc_test_watchdog_off();
}

/* Scopes inside scoped threads: each level runs a scope that spawns the
 * next level and joins it; the innermost returns 0, each level adds 1. */
struct nest {
	unsigned depth;
	uintptr_t result;
	int err;
};

static void *nest_fn(conc_scope *s, void *arg);

static void nest_body(conc_scope *s, void *ctx)
{
	struct nest *n = ctx;
	conc_thread *h;
	n->err = conc_scope_spawn(s, nest_fn, n, &h);
	if (n->err)
		return;
	void *r;
	n->err = conc_thread_join(h, &r);
	n->result = (uintptr_t)r;
}

static void *nest_fn(conc_scope *s, void *arg)
{
	(void)s;
	struct nest *parent = arg;
	if (parent->depth == 0)
		return (void *)0;
	struct nest me = {parent->depth - 1, 0, 0};
	int e = conc_scope_run(nest_body, &me);
	if (e || me.err)
		return (void *)(uintptr_t)1000;
	return (void *)(me.result + 1);
}

static void test_scope_nested_scopes(void **state)
{
	(void)state;
	conc_test_watchdog("scope_nested_scopes", 60);
	struct nest top = {DEPTH, 0, 0};
	assert_int_equal(conc_scope_run(nest_body, &top), 0);
	assert_int_equal(top.err, 0);
	assert_int_equal(top.result, DEPTH);
	conc_test_watchdog_off();
}

/* ---- each spawned function gets a thread of its own -------------------- */

#define PAIRS 24

struct pair {
	conc_test_gate g;
	int waited;
};

static void *waiter_fn(conc_scope *s, void *arg)
{
	(void)s;
	struct pair *p = arg;
	conc_test_gate_wait(&p->g); /* blocks until the later-spawned sibling signals */
	p->waited = 1;
	return NULL;
}

static void *signaler_fn(conc_scope *s, void *arg)
{
	(void)s;
	conc_test_gate_open(&((struct pair *)arg)->g);
	return NULL;
}

static void pairs_body(conc_scope *s, void *ctx)
{
	struct pair *p = ctx;
	for (unsigned i = 0; i < PAIRS; i++)
		conc_scope_spawn(s, waiter_fn, &p[i], NULL);
	for (unsigned i = 0; i < PAIRS; i++)
		conc_scope_spawn(s, signaler_fn, &p[i], NULL);
}

static void test_scope_blocks_on_later_sibling(void **state)
{
	(void)state;
	conc_test_watchdog("scope_blocks_on_later_sibling", 60);
	struct pair p[PAIRS];
	for (unsigned i = 0; i < PAIRS; i++) {
		conc_test_gate_init(&p[i].g);
		p[i].waited = 0;
	}
	assert_int_equal(conc_scope_run(pairs_body, p), 0);
	for (unsigned i = 0; i < PAIRS; i++) {
		assert_int_equal(p[i].waited, 1);
		conc_test_gate_destroy(&p[i].g);
	}
	conc_test_watchdog_off();
}

/* ---- join: errors, a sibling joining ------------------------------------- */

struct self_join {
	conc_thread *me; /* written by the spawn before fn starts */
	int own, twice;
};

static void *self_join_fn(conc_scope *s, void *arg)
{
	(void)s;
	struct self_join *x = arg;
	x->own = conc_thread_join(x->me, NULL);
	return (void *)(uintptr_t)77;
}

struct sibling {
	conc_thread *target;
	int err;
	uintptr_t got;
};

static void *sibling_fn(conc_scope *s, void *arg)
{
	(void)s;
	struct sibling *x = arg;
	void *r = NULL;
	x->err = conc_thread_join(x->target, &r);
	x->got = (uintptr_t)r;
	return NULL;
}

struct join_ctx {
	struct self_join sj;
	struct sibling sib;
	int first, second, third, null_result;
	uintptr_t r;
};

static void join_body(conc_scope *s, void *ctx)
{
	struct join_ctx *c = ctx;
	c->first = -1;
	if (conc_scope_spawn(s, self_join_fn, &c->sj, &c->sj.me))
		return;
	void *r = NULL;
	c->first = conc_thread_join(c->sj.me, &r);
	c->r = (uintptr_t)r;
	c->second = conc_thread_join(c->sj.me, &r);

	/* A sibling joins a handle the body never joins. */
	conc_thread *a;
	if (conc_scope_spawn(s, ret_arg, (void *)(uintptr_t)5, &a))
		return;
	c->sib.target = a;
	conc_thread *b;
	if (conc_scope_spawn(s, sibling_fn, &c->sib, &b))
		return;
	c->null_result = conc_thread_join(b, NULL);
	c->third = conc_thread_join(a, NULL); /* already joined by b */
}

static void test_scope_join_errors(void **state)
{
	(void)state;
	conc_test_watchdog("scope_join_errors", 30);
	struct join_ctx c;
	memset(&c, 0, sizeof c);
	assert_int_equal(conc_scope_run(join_body, &c), 0);
	assert_int_equal(c.sj.own, EDEADLK);
	assert_int_equal(c.first, 0);
	assert_int_equal(c.r, 77);
	assert_int_equal(c.second, EINVAL);
	assert_int_equal(c.sib.err, 0);
	assert_int_equal(c.sib.got, 5);
	assert_int_equal(c.null_result, 0);
	assert_int_equal(c.third, EINVAL);
	conc_test_watchdog_off();
}

/* ---- many spawners at once in one scope ---------------------------------- */

#define SPAWNERS 6
#define CHILDREN 150

struct many {
	atomic_ulong ran;
	atomic_ulong joined_sum;
	int err[SPAWNERS];
};

static void *child_fn(conc_scope *s, void *arg)
{
	(void)s;
	atomic_fetch_add((atomic_ulong *)arg, 1);
	return (void *)(uintptr_t)3;
}

struct spawner_arg {
	struct many *m;
	unsigned i;
};

static void *spawner_fn(conc_scope *s, void *arg)
{
	struct spawner_arg *x = arg;
	conc_thread *h[CHILDREN];
	for (unsigned k = 0; k < CHILDREN; k++) {
		int e = conc_scope_spawn(s, child_fn, &x->m->ran, &h[k]);
		if (e) {
			x->m->err[x->i] = e;
			h[k] = NULL;
		}
	}
	/* Join every other one; the scope end joins the rest. */
	for (unsigned k = 0; k < CHILDREN; k += 2) {
		void *r = NULL;
		if (h[k] && conc_thread_join(h[k], &r) == 0)
			atomic_fetch_add(&x->m->joined_sum, (uintptr_t)r);
	}
	return NULL;
}

struct many_ctx {
	struct many *m;
	struct spawner_arg a[SPAWNERS];
};

static void many_body(conc_scope *s, void *ctx)
{
	struct many_ctx *c = ctx;
	for (unsigned i = 0; i < SPAWNERS; i++) {
		c->a[i] = (struct spawner_arg){c->m, i};
		int e = conc_scope_spawn(s, spawner_fn, &c->a[i], NULL);
		if (e)
			c->m->err[i] = e;
	}
}

static void test_scope_concurrent_spawners(void **state)
{
	(void)state;
	conc_test_watchdog("scope_concurrent_spawners", 120);
	unsigned long rounds = conc_test_iters(10, 5);
	for (unsigned long r = 0; r < rounds; r++) {
		struct many m;
		struct many_ctx c = {&m, {{0, 0}}};
		atomic_init(&m.ran, 0);
		atomic_init(&m.joined_sum, 0);
		memset(m.err, 0, sizeof m.err);
		assert_int_equal(conc_scope_run(many_body, &c), 0);
		for (unsigned i = 0; i < SPAWNERS; i++)
			assert_int_equal(m.err[i], 0);
		assert_int_equal(atomic_load(&m.ran), SPAWNERS * CHILDREN);
		assert_int_equal(atomic_load(&m.joined_sum),
				 SPAWNERS * ((CHILDREN + 1) / 2) * 3);
	}
	conc_test_watchdog_off();
}

/* ---- a reused thread: TLS carries over, libconc's own state does not --- */

static _Thread_local uintptr_t user_tls;

struct reuse {
	pthread_t self;
	uintptr_t tls_seen;
	conc_thread *me;
	int own_join;
};

static void *reuse_first(conc_scope *s, void *arg)
{
	(void)s;
	struct reuse *x = arg;
	x->self = pthread_self();
	user_tls = 0xC0FFEE;
	return NULL;
}

static void *reuse_second(conc_scope *s, void *arg)
{
	(void)s;
	struct reuse *x = arg;
	x->self = pthread_self();
	x->tls_seen = user_tls;
	x->own_join = conc_thread_join(x->me, NULL); /* EDEADLK: ours now */
	return NULL;
}

struct reuse_ctx {
	struct reuse *x;
	void *(*fn)(conc_scope *, void *);
	conc_thread *prev; /* a handle of the earlier scope: gone, not ours */
};

static void reuse_body(conc_scope *s, void *ctx)
{
	struct reuse_ctx *c = ctx;
	conc_scope_spawn(s, c->fn, c->x, &c->x->me);
}

static void test_scope_reuse_keeps_tls(void **state)
{
	(void)state;
	conc_test_watchdog("scope_reuse_keeps_tls", 60);
	drain_cache(60ull * 1000000000u); /* empty cache; nobody times out */
	unsigned long c0 = conc__scope_threads_created();
	struct reuse a = {0}, b = {0};
	struct reuse_ctx ca = {&a, reuse_first, NULL};
	assert_int_equal(conc_scope_run(reuse_body, &ca), 0);
	assert_int_equal(conc__scope_threads_created(), c0 + 1);
	while (conc__scope_idle_threads() != 1)
		conc_test_nap();
	struct reuse_ctx cb = {&b, reuse_second, NULL};
	assert_int_equal(conc_scope_run(reuse_body, &cb), 0);
	assert_int_equal(conc__scope_threads_created(), c0 + 1); /* reused */
	assert_true(pthread_equal(a.self, b.self));
	assert_int_equal(b.tls_seen, 0xC0FFEE); /* documented carry-over */
	assert_int_equal(b.own_join, EDEADLK);
	conc__scope_set_idle_timeout_ns(0);
	conc_test_watchdog_off();
}

/* ---- a function that returns pinned: its thread is not reused ----------- */

static void *pin_and_return(conc_scope *s, void *arg)
{
	(void)s;
	(void)arg;
	conc_epoch_pin(conc_epoch_global()); /* the bug under test */
	return NULL;
}

static void *pinned_probe(conc_scope *s, void *arg)
{
	(void)s;
	*(int *)arg = conc_epoch_is_pinned(conc_epoch_global());
	return NULL;
}

static void pin_body(conc_scope *s, void *ctx)
{
	conc_thread *h;
	if (conc_scope_spawn(s, pin_and_return, NULL, &h) == 0)
		conc_thread_join(h, NULL);
	(void)ctx;
}

static void probe_body(conc_scope *s, void *ctx)
{
	conc_scope_spawn(s, pinned_probe, ctx, NULL);
}

static void test_scope_pinned_thread_exits(void **state)
{
	(void)state;
	conc_test_watchdog("scope_pinned_thread_exits", 60);
	drain_cache(60ull * 1000000000u);
	unsigned long c0 = conc__scope_threads_created();
	assert_int_equal(conc_scope_run(pin_body, NULL), 0);
	assert_int_equal(conc__scope_threads_created(), c0 + 1);
	/* It does not park (the timeout is a minute): it exits. */
	while (conc__scope_live_threads() != 0)
		conc_test_nap();
	assert_int_equal(conc__scope_idle_threads(), 0);
	int pinned = -1;
	assert_int_equal(conc_scope_run(probe_body, &pinned), 0);
	assert_int_equal(pinned, 0);
	conc__scope_set_idle_timeout_ns(0);
	conc_test_watchdog_off();
}

/* ---- injected failures ----------------------------------------------------- */

#if defined(CONC_FAULT_HOOKS) && CONC_FAULT_HOOKS

#define FAIL_N 6

struct fail_ctx {
	conc_test_gate g;
	atomic_int ran;
	int err[FAIL_N];
	conc_thread *h[FAIL_N];
};

static void *gated_fn(conc_scope *s, void *arg)
{
	(void)s;
	struct fail_ctx *c = arg;
	conc_test_gate_wait(&c->g);
	atomic_fetch_add(&c->ran, 1);
	return NULL;
}

static void fail_thread_body(conc_scope *s, void *ctx)
{
	struct fail_ctx *c = ctx;
	/* All threads block on the gate, so none is free for reuse: every
	 * spawn must create a thread, and the third creation fails. */
	conc__fault_fail_thread_at(3);
	for (unsigned i = 0; i < FAIL_N; i++)
		c->err[i] = conc_scope_spawn(s, gated_fn, c, &c->h[i]);
	conc__fault_reset();
	conc_test_gate_open(&c->g);
}

static void test_scope_spawn_fails_eagain(void **state)
{
	(void)state;
	conc_test_watchdog("scope_spawn_fails_eagain", 60);
	drain_cache(0);
	struct fail_ctx c;
	conc_test_gate_init(&c.g);
	atomic_init(&c.ran, 0);
	for (unsigned i = 0; i < FAIL_N; i++)
		c.h[i] = (conc_thread *)&c; /* sentinel */
	assert_int_equal(conc_scope_run(fail_thread_body, &c), EAGAIN);
	for (unsigned i = 0; i < FAIL_N; i++) {
		assert_int_equal(c.err[i], i == 2 ? EAGAIN : 0);
		if (i == 2)
			assert_ptr_equal(c.h[i], (conc_thread *)&c);
		else
			assert_ptr_not_equal(c.h[i], (conc_thread *)&c);
	}
	assert_int_equal(atomic_load(&c.ran), FAIL_N - 1); /* the scope went on */
	conc_test_gate_destroy(&c.g);
	conc_test_watchdog_off();
}

#define ALLOC_N 100

struct alloc_ctx {
	int err[ALLOC_N];
	conc_thread *h[ALLOC_N];
	uint64_t out[ALLOC_N];
	struct unjoined u[ALLOC_N];
	conc_test_gate g;
	atomic_int ran;
};

static void alloc_body(conc_scope *s, void *ctx)
{
	struct alloc_ctx *c = ctx;
	/* The first 32 handles live in the scope; the 33rd spawn needs a heap
	 * chunk, and that allocation fails; the 34th allocates again. */
	conc__fault_fail_alloc_at(1);
	for (uintptr_t n = 0; n < ALLOC_N; n++) {
		c->u[n] = (struct unjoined){c->out, n};
		c->err[n] = conc_scope_spawn(s, unjoined_fn, &c->u[n], &c->h[n]);
	}
	conc__fault_reset();
}

static void test_scope_spawn_fails_enomem(void **state)
{
	(void)state;
	conc_test_watchdog("scope_spawn_fails_enomem", 60);
	static struct alloc_ctx c;
	memset(&c, 0, sizeof c);
	for (unsigned i = 0; i < ALLOC_N; i++)
		c.h[i] = (conc_thread *)&c;
	assert_int_equal(conc_scope_run(alloc_body, &c), ENOMEM);
	for (unsigned n = 0; n < ALLOC_N; n++) {
		if (n == 32) {
			assert_int_equal(c.err[n], ENOMEM);
			assert_ptr_equal(c.h[n], (conc_thread *)&c);
			assert_int_equal(c.out[n], 0); /* did not run */
		} else {
			assert_int_equal(c.err[n], 0);
			assert_int_equal(c.out[n], n * n + n * 5 + 250);
		}
	}
	conc_test_watchdog_off();
}

/* The first error wins: ENOMEM, then EAGAIN. */
static void *gated_count_fn(conc_scope *s, void *arg)
{
	(void)s;
	struct alloc_ctx *c = arg;
	conc_test_gate_wait(&c->g);
	atomic_fetch_add(&c->ran, 1);
	return NULL;
}

static void first_error_body(conc_scope *s, void *ctx)
{
	struct alloc_ctx *c = ctx;
	for (uintptr_t n = 0; n < 32; n++) {
		c->u[n] = (struct unjoined){c->out, n};
		conc_scope_spawn(s, unjoined_fn, &c->u[n], NULL);
	}
	conc__fault_fail_alloc_at(1);
	c->err[0] = conc_scope_spawn(s, unjoined_fn, &c->u[0], NULL);
	conc__fault_reset();
	/* Gated threads keep their threads, so the cache runs dry and a
	 * creation is needed, which fails. */
	conc__fault_fail_thread_at(1);
	c->err[1] = 0;
	int spawned = 0;
	while (c->err[1] == 0 && spawned < 1000) {
		c->err[1] = conc_scope_spawn(s, gated_count_fn, c, NULL);
		spawned += c->err[1] == 0;
	}
	conc__fault_reset();
	c->err[2] = spawned;
	conc_test_gate_open(&c->g);
}

static void test_scope_first_error_wins(void **state)
{
	(void)state;
	conc_test_watchdog("scope_first_error_wins", 60);
	drain_cache(0);
	static struct alloc_ctx c;
	memset(&c, 0, sizeof c);
	conc_test_gate_init(&c.g);
	atomic_init(&c.ran, 0);
	assert_int_equal(conc_scope_run(first_error_body, &c), ENOMEM);
	assert_int_equal(c.err[0], ENOMEM);
	assert_int_equal(c.err[1], EAGAIN);
	assert_int_equal(atomic_load(&c.ran), c.err[2]);
	conc_test_gate_destroy(&c.g);
	conc_test_watchdog_off();
}
#endif

/* ---- fork, and exit with threads still parked ------------------------------ */

/* TSan does not support starting threads in the child of a threaded
 * process, so this one runs in the other builds. */
#if !CONC_TEST_TSAN
static void test_scope_fork_then_exit(void **state)
{
	(void)state;
	conc_test_watchdog("scope_fork_then_exit", 60);
	conc__scope_set_idle_timeout_ns(60ull * 1000000000u);
	static struct seed_ctx c;
	assert_int_equal(conc_scope_run(seed_body, &c), 0);
	while (conc__scope_idle_threads() == 0)
		conc_test_nap();
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		/* The child has none of the parent's parked threads: a cache
		 * that still listed them would hand jobs to nobody and hang.
		 * Then exit with the child's own threads parked: the
		 * exit-time drain must join them, not hang or crash.  (An
		 * alarm is not inherited: the child arms its own.) */
		conc_test_watchdog("scope_fork_then_exit (child)", 30);
		int ok = conc__scope_idle_threads() == 0 &&
			 conc_scope_run(seed_body, &c) == 0 && c.sum == 335581000u;
		while (ok && conc__scope_idle_threads() == 0)
			conc_test_nap();
		exit(ok ? 0 : 1);
	}
	int status = 0;
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
	conc__scope_set_idle_timeout_ns(0);
	conc_test_watchdog_off();
}
#endif

/* ---- no thread left once the cache timed out ------------------------------ */

static void *short_fn(conc_scope *s, void *arg)
{
	(void)s;
	conc_test_gate *g = arg;
	conc_test_gate_wait(g);
	return NULL;
}

static void eight_body(conc_scope *s, void *ctx)
{
	for (int i = 0; i < 8; i++)
		conc_scope_spawn(s, short_fn, ctx, NULL);
	conc_test_gate_open(ctx);
}

static void test_scope_no_thread_left(void **state)
{
	(void)state;
	conc_test_watchdog("scope_no_thread_left", 30);
	/* A long idle timeout while the scope runs, so that its threads are
	 * certainly still cached when it returns (with 20 ms, a main thread
	 * descheduled that long would find them gone already) ... */
	conc__scope_set_idle_timeout_ns(60000000000ull); /* 60 s */
	conc_test_gate g;
	conc_test_gate_init(&g);
	assert_int_equal(conc_scope_run(eight_body, &g), 0);
	conc_test_gate_destroy(&g);
	assert_true(conc__scope_live_threads() >= 1);
	/* ... then a short one: setting it knocks the idle threads, which
	 * re-read their deadline.  Poll (the watchdog turns a thread that
	 * never leaves into a failure) until the process is back to its
	 * threads before any scope ran. */
	conc__scope_set_idle_timeout_ns(20000000); /* 20 ms */
	while (conc__scope_live_threads() != 0 || conc_test_threads_now() != baseline_tasks)
		conc_test_nap();
	assert_int_equal(conc__scope_idle_threads(), 0);
	conc__scope_set_idle_timeout_ns(0);
	conc_test_watchdog_off();
}

static void *own_tid(void *arg)
{
	*(long *)arg = (long)syscall(SYS_gettid);
	return NULL;
}

/* Whether /proc still lists thread tid of this process. */
static bool task_listed(long tid)
{
	char path[64];
	snprintf(path, sizeof path, "/proc/self/task/%ld", tid);
	return access(path, F_OK) == 0;
}

/* DESIGN.md: conc_scope_run returns the first spawn error of any kind -
 * EINVAL for a NULL function too, not only EAGAIN and ENOMEM.  The second
 * error (ENOMEM would be later) is not the one returned. */
static void null_fn_spawns(conc_scope *s, void *ctx)
{
	int *errs = ctx;
	errs[0] = conc_scope_spawn(s, NULL, NULL, NULL);
	conc_thread *h = NULL;
	errs[1] = conc_scope_spawn(s, ret_arg, (void *)1, &h);
	errs[2] = conc_thread_join(h, NULL);
}

static void test_scope_run_returns_einval_spawn(void **state)
{
	(void)state;
	int errs[3] = {-1, -1, -1};
	assert_int_equal(conc_scope_run(null_fn_spawns, errs), EINVAL);
	assert_int_equal(errs[0], EINVAL);
	assert_int_equal(errs[1], 0);
	assert_int_equal(errs[2], 0);
}


int main(void)
{
	/* Sanitizer runtimes start helper threads at the first thread
	 * creation: start and join one plain thread before the baseline. */
	pthread_t t;
	long tid = 0;
	if (pthread_create(&t, NULL, own_tid, &tid) == 0) {
		pthread_join(t, NULL);
		/* pthread_join returns when the thread's tid word is cleared,
		 * a moment before the task leaves /proc (longer under
		 * qemu-user): a baseline counted in between would be one too
		 * high, and the test that waits for it would never end.  At
		 * most 10 s (then the baseline is as it is). */
		for (int i = 0; i < 10000 && tid && task_listed(tid); i++)
			conc_test_nap();
	}
	baseline_tasks = conc_test_threads_now();
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_scope_einval),
		cmocka_unit_test(test_scope_empty),
		cmocka_unit_test(test_scope_run_returns_einval_spawn),
		cmocka_unit_test(test_scope_seed_sum),
		cmocka_unit_test(test_scope_unjoined_results),
		cmocka_unit_test(test_scope_caller_stack),
		cmocka_unit_test(test_scope_nested_spawns),
		cmocka_unit_test(test_scope_nested_scopes),
		cmocka_unit_test(test_scope_blocks_on_later_sibling),
		cmocka_unit_test(test_scope_join_errors),
		cmocka_unit_test(test_scope_concurrent_spawners),
		cmocka_unit_test(test_scope_reuse_keeps_tls),
#if defined(CONC_FAULT_HOOKS) && CONC_FAULT_HOOKS
		cmocka_unit_test(test_scope_spawn_fails_eagain),
		cmocka_unit_test(test_scope_spawn_fails_enomem),
		cmocka_unit_test(test_scope_first_error_wins),
#endif
		cmocka_unit_test(test_scope_pinned_thread_exits),
#if !CONC_TEST_TSAN
		cmocka_unit_test(test_scope_fork_then_exit),
#endif
		cmocka_unit_test(test_scope_no_thread_left),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
