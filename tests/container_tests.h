/*
 * container_tests.h - the contract tests the queue and the stack share
 * (DESIGN.md gives them the same shape), written once against a table of
 * calls.  test_queue.c and test_stack.c each define CT (their table) and
 * include this file; the tests differ only where FIFO and LIFO do.
 */
#ifndef CONC_CONTAINER_TESTS_H
#define CONC_CONTAINER_TESTS_H

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "adapters.h"
#include "lincheck.h"
#include "testutil.h"

#include "conc/epoch.h"
#include "epoch/epoch_internal.h"
#include "base/fault.h"
#include "base/park.h"

typedef struct ct_ops {
	const tl_container *ops;   /* the calls (lib/adapters.h) */
	lc_spec spec;
	void (*force_alloc)(void);  /* make the next push allocate, if it can */
	unsigned alloc_every;       /* pushes between allocations, at most */
	long steady_max_allocs;     /* bound in the cross-thread steady state */
} ct_ops;

static const ct_ops CT;

#define U(x) ((void *)(uintptr_t)(x))

static void *ct_new(void)
{
	void *c = NULL;
	assert_int_equal(CT.ops->create(&c), 0);
	assert_non_null(c);
	return c;
}

/* Pop everything with try_pop into out (up to cap); returns the count. */
static size_t ct_drain(void *c, uintptr_t *out, size_t cap)
{
	size_t n = 0;
	void *it;
	while (CT.ops->try_pop(c, &it)) {
		if (n < cap)
			out[n] = (uintptr_t)it;
		n++;
	}
	return n;
}

/* The i-th of n pushed values (0-based) that a full drain returns k-th. */
static uintptr_t ct_expect(size_t k, size_t n, uintptr_t base)
{
	return CT.spec == LC_FIFO ? base + k : base + (n - 1 - k);
}

/* ---- basics ---------------------------------------------------------------- */

static void ct_create_destroy(void **state)
{
	(void)state;
	void *c = ct_new();
	assert_true(CT.ops->is_empty(c));
	CT.ops->destroy(c, NULL);
	CT.ops->destroy(NULL, NULL);

	conc_epoch *d;
	assert_int_equal(conc_epoch_create(&d), 0);
	assert_int_equal(CT.ops->create_in(&c, d), 0);
	assert_int_equal(CT.ops->push(c, U(5)), 0);
	CT.ops->destroy(c, NULL);
	assert_int_equal(conc_epoch_destroy(d), 0);
}

static void ct_create_einval(void **state)
{
	(void)state;
	void *c = U(0x1234);
	assert_int_equal(CT.ops->create_in(NULL, conc_epoch_global()), EINVAL);
	assert_int_equal(CT.ops->create_in(&c, NULL), EINVAL);
	assert_ptr_equal(c, U(0x1234));
	assert_int_equal(CT.ops->create(NULL), EINVAL);
}

/* NULL arguments: EINVAL from the calls that return int, false from
 * try_pop, true from is_empty, nothing from close and destroy; in every
 * case nothing changes (the item pushed before is still there, the out
 * parameter untouched). */
static void ct_null_args(void **state)
{
	(void)state;
	void *c = ct_new();
	void *it = U(77);
	assert_int_equal(CT.ops->push(c, U(9)), 0);
	assert_int_equal(CT.ops->push(NULL, U(1)), EINVAL);
	assert_false(CT.ops->try_pop(NULL, &it));
	assert_false(CT.ops->try_pop(c, NULL));
	assert_int_equal(CT.ops->pop(NULL, &it), EINVAL);
	assert_int_equal(CT.ops->pop(c, NULL), EINVAL);
	assert_int_equal(CT.ops->pop_timeout(NULL, &it, 0), EINVAL);
	assert_int_equal(CT.ops->pop_timeout(c, NULL, 0), EINVAL);
	assert_int_equal(CT.ops->pop_timeout(c, NULL, 1000000), EINVAL);
	assert_ptr_equal(it, U(77));
	CT.ops->close(NULL);
	assert_true(CT.ops->is_empty(NULL));
	CT.ops->destroy(NULL, NULL);
	/* c is untouched: open, holding the one item */
	assert_false(CT.ops->is_empty(c));
	assert_true(CT.ops->try_pop(c, &it));
	assert_ptr_equal(it, U(9));
	assert_int_equal(CT.ops->push(c, U(10)), 0);
	CT.ops->destroy(c, NULL);
}

static void ct_empty(void **state)
{
	(void)state;
	void *c = ct_new();
	void *it = U(77);
	assert_false(CT.ops->try_pop(c, &it));
	assert_ptr_equal(it, U(77));
	assert_int_equal(CT.ops->pop_timeout(c, &it, 0), ETIMEDOUT);
	assert_ptr_equal(it, U(77));
	assert_true(CT.ops->is_empty(c));
	CT.ops->destroy(c, NULL);
}

static void ct_one(void **state)
{
	(void)state;
	void *c = ct_new();
	void *it = NULL;
	assert_int_equal(CT.ops->push(c, U(42)), 0);
	assert_false(CT.ops->is_empty(c));
	assert_true(CT.ops->try_pop(c, &it));
	assert_ptr_equal(it, U(42));
	assert_true(CT.ops->is_empty(c));
	assert_false(CT.ops->try_pop(c, &it));
	/* pop_timeout(0) takes what is there */
	assert_int_equal(CT.ops->push(c, U(43)), 0);
	assert_int_equal(CT.ops->pop_timeout(c, &it, 0), 0);
	assert_ptr_equal(it, U(43));
	assert_int_equal(CT.ops->push(c, U(44)), 0);
	assert_int_equal(CT.ops->pop(c, &it), 0);
	assert_ptr_equal(it, U(44));
	CT.ops->destroy(c, NULL);
}

static void ct_order(void **state)
{
	(void)state;
	void *c = ct_new();
	enum { N = 5000 }; /* several queue segments */
	static uintptr_t got[N];
	for (int round = 0; round < 3; round++) {
		for (size_t i = 0; i < N; i++)
			assert_int_equal(CT.ops->push(c, U(100 + i)), 0);
		assert_int_equal(ct_drain(c, got, N), N);
		for (size_t k = 0; k < N; k++)
			assert_int_equal(got[k], ct_expect(k, N, 100));
		assert_true(CT.ops->is_empty(c));
	}
	/* interleaved: push 2, pop 1 */
	size_t pushed = 0, popped = 0;
	for (int i = 0; i < 3000; i++) {
		assert_int_equal(CT.ops->push(c, U(pushed++)), 0);
		assert_int_equal(CT.ops->push(c, U(pushed++)), 0);
		void *it;
		assert_true(CT.ops->try_pop(c, &it));
		if (CT.spec == LC_FIFO)
			assert_ptr_equal(it, U(popped));
		else
			assert_ptr_equal(it, U(pushed - 1));
		popped++;
	}
	CT.ops->destroy(c, NULL);
}

static void ct_null_items(void **state)
{
	(void)state;
	void *c = ct_new();
	void *vals[] = {NULL, U(1), NULL, U(2), NULL};
	for (int i = 0; i < 5; i++)
		assert_int_equal(CT.ops->push(c, vals[i]), 0);
	assert_false(CT.ops->is_empty(c));
	for (int k = 0; k < 5; k++) {
		void *it = U(0xbad);
		assert_true(CT.ops->try_pop(c, &it));
		assert_ptr_equal(it, vals[CT.spec == LC_FIFO ? k : 4 - k]);
	}
	assert_true(CT.ops->is_empty(c));
	void *it = U(0xbad);
	assert_false(CT.ops->try_pop(c, &it));
	assert_ptr_equal(it, U(0xbad));
	/* blocking pop of a NULL item */
	assert_int_equal(CT.ops->push(c, NULL), 0);
	assert_int_equal(CT.ops->pop(c, &it), 0);
	assert_null(it);
	CT.ops->destroy(c, NULL);
}

static uintptr_t drop_log[4096];
static size_t drop_n;

static void drop_record(void *item)
{
	if (drop_n < 4096)
		drop_log[drop_n] = (uintptr_t)item;
	drop_n++;
}

static void ct_destroy_drops_in_order(void **state)
{
	(void)state;
	enum { N = 2500, POPPED = 100 };
	void *c = ct_new();
	for (size_t i = 0; i < N; i++)
		assert_int_equal(CT.ops->push(c, U(i)), 0);
	for (int i = 0; i < POPPED; i++) {
		void *it;
		assert_true(CT.ops->try_pop(c, &it));
	}
	drop_n = 0;
	CT.ops->destroy(c, drop_record);
	assert_int_equal(drop_n, N - POPPED);
	for (size_t k = 0; k < N - POPPED; k++)
		assert_int_equal(drop_log[k], CT.spec == LC_FIFO ? POPPED + k : N - POPPED - 1 - k);
	/* after close too, and empty */
	c = ct_new();
	assert_int_equal(CT.ops->push(c, NULL), 0);
	assert_int_equal(CT.ops->push(c, U(9)), 0);
	CT.ops->close(c);
	drop_n = 0;
	CT.ops->destroy(c, drop_record);
	assert_int_equal(drop_n, 2);
	assert_int_equal(drop_log[0], CT.spec == LC_FIFO ? 0 : 9);
	c = ct_new();
	drop_n = 0;
	CT.ops->destroy(c, drop_record);
	assert_int_equal(drop_n, 0);
}

/* ---- close and timeouts ------------------------------------------------------ */

static void ct_close(void **state)
{
	(void)state;
	void *c = ct_new();
	assert_int_equal(CT.ops->push(c, U(1)), 0);
	assert_int_equal(CT.ops->push(c, U(2)), 0);
	CT.ops->close(c);
	CT.ops->close(c); /* idempotent */
	assert_int_equal(CT.ops->push(c, U(3)), EPIPE);
	assert_int_equal(CT.ops->push(c, NULL), EPIPE);
	void *it = NULL;
	assert_int_equal(CT.ops->pop(c, &it), 0);
	assert_ptr_equal(it, U(CT.spec == LC_FIFO ? 1 : 2));
	assert_int_equal(CT.ops->pop_timeout(c, &it, UINT64_MAX), 0);
	assert_ptr_equal(it, U(CT.spec == LC_FIFO ? 2 : 1));
	it = U(0xbad);
	assert_int_equal(CT.ops->pop(c, &it), EPIPE);
	assert_int_equal(CT.ops->pop_timeout(c, &it, 0), EPIPE);
	uint64_t t0 = conc__now_ns();
	assert_int_equal(CT.ops->pop_timeout(c, &it, UINT64_MAX), EPIPE); /* at once */
	assert_true(conc__now_ns() - t0 < 1000000000ull);
	assert_ptr_equal(it, U(0xbad));
	assert_false(CT.ops->try_pop(c, &it));
	assert_true(CT.ops->is_empty(c));
	CT.ops->destroy(c, NULL);

	/* close of a queue that was used across segment boundaries */
	c = ct_new();
	for (int i = 0; i < 3000; i++)
		assert_int_equal(CT.ops->push(c, U(i)), 0);
	for (int i = 0; i < 1500; i++)
		assert_true(CT.ops->try_pop(c, &it));
	CT.ops->close(c);
	assert_int_equal(CT.ops->push(c, U(1)), EPIPE);
	assert_int_equal(ct_drain(c, NULL, 0), 1500);
	assert_int_equal(CT.ops->pop(c, &it), EPIPE);
	CT.ops->destroy(c, NULL);
}

static void ct_pop_timeout(void **state)
{
	(void)state;
	void *c = ct_new();
	void *it = U(0xbad);
	assert_int_equal(CT.ops->pop_timeout(c, &it, 0), ETIMEDOUT);
	uint64_t t0 = conc__now_ns();
	assert_int_equal(CT.ops->pop_timeout(c, &it, 3000000), ETIMEDOUT); /* 3 ms */
	uint64_t dt = conc__now_ns() - t0;
	assert_true(dt >= 3000000);
	assert_true(dt < 3000000000ull);
	assert_ptr_equal(it, U(0xbad));
	assert_int_equal(CT.ops->push(c, U(8)), 0);
	assert_int_equal(CT.ops->pop_timeout(c, &it, 3000000), 0);
	assert_ptr_equal(it, U(8));
	CT.ops->destroy(c, NULL);
}

/* A thread blocked in pop / pop_timeout(huge) is woken by a push or close. */
typedef struct ct_waiter {
	void *c;
	int use_timeout;
	int rc;
	void *item;
} ct_waiter;

static void *ct_wait_thread(void *arg)
{
	ct_waiter *w = arg;
	w->rc = w->use_timeout ? CT.ops->pop_timeout(w->c, &w->item, UINT64_MAX - 1)
			       : CT.ops->pop(w->c, &w->item);
	return NULL;
}

static void ct_wait_sleepers(void *c, unsigned n)
{
	while (CT.ops->sleepers(c) < n)
		sched_yield();
}

static void ct_pop_woken_by_push(void **state)
{
	(void)state;
	conc_test_watchdog("pop woken by push", 30);
	for (int mode = 0; mode < 2; mode++) {
		void *c = ct_new();
		ct_waiter w = {c, mode, -1, U(0xbad)};
		pthread_t t;
		assert_int_equal(pthread_create(&t, NULL, ct_wait_thread, &w), 0);
		ct_wait_sleepers(c, 1); /* it is really asleep (or about to be) */
		assert_int_equal(CT.ops->push(c, U(31)), 0);
		pthread_join(t, NULL);
		assert_int_equal(w.rc, 0);
		assert_ptr_equal(w.item, U(31));
		CT.ops->destroy(c, NULL);
	}
	conc_test_watchdog_off();
}

static void ct_pop_woken_by_close(void **state)
{
	(void)state;
	conc_test_watchdog("pop woken by close", 30);
	enum { W = 4 };
	void *c = ct_new();
	ct_waiter w[W];
	pthread_t t[W];
	for (int i = 0; i < W; i++) {
		w[i] = (ct_waiter){c, i & 1, -1, U(0xbad)};
		assert_int_equal(pthread_create(&t[i], NULL, ct_wait_thread, &w[i]), 0);
	}
	ct_wait_sleepers(c, W);
	CT.ops->close(c);
	for (int i = 0; i < W; i++) {
		pthread_join(t[i], NULL);
		assert_int_equal(w[i].rc, EPIPE);
		assert_ptr_equal(w[i].item, U(0xbad));
	}
	CT.ops->destroy(c, NULL);
	conc_test_watchdog_off();
}

/* Many sleepers, items trickling in: no wake-up lost (each push wakes one;
 * waiters that time out re-check), then close releases the rest. */
typedef struct ct_sink {
	void *c;
	int timed;
	unsigned long got;
	uintptr_t sum;
	int rc;
} ct_sink;

static void *ct_sink_thread(void *arg)
{
	ct_sink *s = arg;
	for (;;) {
		void *it;
		int rc = s->timed ? CT.ops->pop_timeout(s->c, &it, 200000) : CT.ops->pop(s->c, &it);
		if (rc == ETIMEDOUT)
			continue;
		if (rc) {
			s->rc = rc;
			return NULL;
		}
		s->got++;
		s->sum += (uintptr_t)it;
	}
}

static void ct_blocking_handoff(void **state)
{
	(void)state;
	conc_test_watchdog("blocking hand-off", 60);
	enum { S = 4 };
	unsigned long n = conc_test_iters(20000, 10);
	void *c = ct_new();
	ct_sink s[S];
	pthread_t t[S];
	for (int i = 0; i < S; i++) {
		s[i] = (ct_sink){c, i & 1, 0, 0, 0};
		assert_int_equal(pthread_create(&t[i], NULL, ct_sink_thread, &s[i]), 0);
	}
	for (unsigned long i = 1; i <= n; i++) {
		assert_int_equal(CT.ops->push(c, U(i)), 0);
		if (i % 64 == 0)
			sched_yield(); /* let the sinks drain and fall asleep again */
	}
	/* every item gets taken although nobody is told to look */
	while (!CT.ops->is_empty(c))
		sched_yield();
	CT.ops->close(c);
	unsigned long got = 0;
	uintptr_t sum = 0;
	for (int i = 0; i < S; i++) {
		pthread_join(t[i], NULL);
		assert_int_equal(s[i].rc, EPIPE);
		got += s[i].got;
		sum += s[i].sum;
	}
	assert_int_equal(got, n);
	assert_int_equal(sum, (uintptr_t)n * (n + 1) / 2);
	CT.ops->destroy(c, NULL);
	conc_test_watchdog_off();
}

/* close racing pushes and pops: every push that returned 0 is popped
 * exactly once (by a pop before EPIPE or by the final drain), and no pop
 * returns EPIPE while a successful push's item can still appear. */
typedef struct ct_race {
	void *c;
	atomic_ulong pushes;
	unsigned long ok[4];
	atomic_uchar seen[4][1 << 16];
	unsigned long popped[2];
	int pop_rc[2];
	unsigned long after_epipe;
} ct_race;

typedef struct ct_race_arg {
	ct_race *r;
	unsigned id;
} ct_race_arg;

static void *ct_race_pusher(void *arg)
{
	ct_race_arg *a = arg;
	ct_race *r = a->r;
	for (uintptr_t i = 0; i < (1u << 16); i++) {
		int rc = CT.ops->push(r->c, U(((uintptr_t)a->id << 16) | i));
		if (rc == EPIPE)
			break;
		if (rc == 0)
			r->ok[a->id]++;
		atomic_fetch_add(&r->pushes, 1);
	}
	return NULL;
}

static void *ct_race_popper(void *arg)
{
	ct_race_arg *a = arg;
	ct_race *r = a->r;
	void *it;
	int rc;
	while ((rc = CT.ops->pop(r->c, &it)) == 0) {
		uintptr_t v = (uintptr_t)it;
		atomic_fetch_add(&r->seen[(v >> 16) & 3][v & 0xffff], 1);
		r->popped[a->id]++;
	}
	r->pop_rc[a->id] = rc;
	/* after EPIPE nothing may show up any more */
	if (CT.ops->try_pop(r->c, &it))
		r->after_epipe++;
	return NULL;
}

static void ct_close_races(void **state)
{
	(void)state;
	conc_test_watchdog("close races", 60);
	unsigned long rounds = conc_test_iters(20, 4);
	ct_race *r = calloc(1, sizeof *r);
	assert_non_null(r);
	for (unsigned long round = 0; round < rounds; round++) {
		memset(r, 0, sizeof *r);
		r->c = ct_new();
		pthread_t pt[4], ct[2];
		ct_race_arg pa[4], ca[2];
		for (unsigned i = 0; i < 2; i++) {
			ca[i] = (ct_race_arg){r, i};
			assert_int_equal(pthread_create(&ct[i], NULL, ct_race_popper, &ca[i]), 0);
		}
		for (unsigned i = 0; i < 4; i++) {
			pa[i] = (ct_race_arg){r, i};
			assert_int_equal(pthread_create(&pt[i], NULL, ct_race_pusher, &pa[i]), 0);
		}
		/* close somewhere in the middle of the traffic */
		unsigned long at = 500 + (round * 977) % 20000;
		while (atomic_load(&r->pushes) < at && atomic_load(&r->pushes) < 4 * 60000)
			sched_yield();
		CT.ops->close(r->c);
		for (unsigned i = 0; i < 4; i++)
			pthread_join(pt[i], NULL);
		for (unsigned i = 0; i < 2; i++)
			pthread_join(ct[i], NULL);
		void *it;
		unsigned long drained = 0;
		while (CT.ops->try_pop(r->c, &it)) {
			uintptr_t v = (uintptr_t)it;
			atomic_fetch_add(&r->seen[(v >> 16) & 3][v & 0xffff], 1);
			drained++;
		}
		assert_int_equal(r->pop_rc[0], EPIPE);
		assert_int_equal(r->pop_rc[1], EPIPE);
		assert_int_equal(r->after_epipe, 0);
		assert_int_equal(drained, 0); /* the pops drained it before EPIPE */
		assert_int_equal(CT.ops->push(r->c, U(1)), EPIPE);
		unsigned long ok = 0;
		for (unsigned i = 0; i < 4; i++) {
			ok += r->ok[i];
			for (unsigned long k = 0; k < (1u << 16); k++)
				assert_int_equal(atomic_load(&r->seen[i][k]), k < r->ok[i] ? 1 : 0);
		}
		assert_int_equal(r->popped[0] + r->popped[1], ok);
		CT.ops->destroy(r->c, NULL);
	}
	free(r);
	conc_test_watchdog_off();
}

/* ---- MPMC: exactly once, per-producer order ------------------------------- */

typedef struct ct_mpmc {
	void *c;
	unsigned producers;
	unsigned long per;
	atomic_uchar *seen;
	atomic_bool done;
	atomic_ulong push_errors;
} ct_mpmc;

typedef struct ct_role {
	ct_mpmc *m;
	unsigned id;
	int blocking;
	unsigned long got, dup, order, bad;
	unsigned long *last; /* per producer: last sequence seen */
} ct_role;

static void *ct_producer(void *arg)
{
	ct_role *r = arg;
	ct_mpmc *m = r->m;
	for (unsigned long i = 0; i < m->per; i++) {
		uintptr_t v = ((uintptr_t)r->id << 32) | (i + 1);
		while (CT.ops->push(m->c, U(v)) != 0) {
			atomic_fetch_add(&m->push_errors, 1);
			sched_yield();
		}
	}
	return NULL;
}

static void ct_consume_one(ct_role *r, uintptr_t v)
{
	ct_mpmc *m = r->m;
	uintptr_t p = v >> 32, seq = v & 0xffffffffu;
	if (p >= m->producers || seq == 0 || seq > m->per) {
		r->bad++;
		return;
	}
	if (atomic_fetch_add_explicit(&m->seen[p * m->per + seq - 1], 1, memory_order_relaxed))
		r->dup++;
	if (CT.spec == LC_FIFO && seq <= r->last[p])
		r->order++;
	r->last[p] = seq;
	r->got++;
}

static void *ct_consumer(void *arg)
{
	ct_role *r = arg;
	ct_mpmc *m = r->m;
	void *it;
	for (;;) {
		if (r->blocking) {
			int rc = CT.ops->pop(m->c, &it);
			if (rc) /* EPIPE: closed and drained */
				return NULL;
			ct_consume_one(r, (uintptr_t)it);
		} else if (CT.ops->try_pop(m->c, &it)) {
			ct_consume_one(r, (uintptr_t)it);
		} else if (atomic_load(&m->done)) {
			if (!CT.ops->try_pop(m->c, &it))
				return NULL;
			ct_consume_one(r, (uintptr_t)it);
		} else {
			sched_yield();
		}
	}
}

static void ct_mpmc_run(unsigned p, unsigned long per)
{
	ct_mpmc m = {.c = ct_new(), .producers = p, .per = per};
	m.seen = calloc((size_t)p * per, 1);
	assert_non_null(m.seen);
	atomic_init(&m.done, false);
	atomic_init(&m.push_errors, 0);
	ct_role *roles = calloc(2 * p, sizeof *roles);
	pthread_t *t = calloc(2 * p, sizeof *t);
	assert_non_null(roles);
	assert_non_null(t);
	for (unsigned i = 0; i < 2 * p; i++) {
		roles[i] = (ct_role){.m = &m, .id = i < p ? i : i - p, .blocking = (i - p) & 1};
		roles[i].last = calloc(p, sizeof *roles[i].last);
		assert_non_null(roles[i].last);
	}
	for (unsigned i = 0; i < 2 * p; i++)
		assert_int_equal(pthread_create(&t[i], NULL, i < p ? ct_producer : ct_consumer,
						&roles[i]), 0);
	for (unsigned i = 0; i < p; i++)
		pthread_join(t[i], NULL);
	CT.ops->close(m.c); /* blocking consumers drain, then EPIPE */
	atomic_store(&m.done, true);
	unsigned long got = 0, dup = 0, order = 0, bad = 0;
	for (unsigned i = p; i < 2 * p; i++) {
		pthread_join(t[i], NULL);
		got += roles[i].got;
		dup += roles[i].dup;
		order += roles[i].order;
		bad += roles[i].bad;
	}
	unsigned long missing = 0;
	for (size_t i = 0; i < (size_t)p * per; i++)
		missing += atomic_load(&m.seen[i]) != 1;
	assert_int_equal(atomic_load(&m.push_errors), 0);
	assert_int_equal(bad, 0);
	assert_int_equal(dup, 0);
	assert_int_equal(order, 0);
	assert_int_equal(missing, 0);
	assert_int_equal(got, (unsigned long)p * per);
	assert_true(CT.ops->is_empty(m.c));
	CT.ops->destroy(m.c, NULL);
	for (unsigned i = 0; i < 2 * p; i++)
		free(roles[i].last);
	free(roles);
	free(t);
	free(m.seen);
}

static void ct_mpmc_1(void **state) { (void)state; conc_test_watchdog("mpmc 1", 120); ct_mpmc_run(1, conc_test_iters(200000, 10)); conc_test_watchdog_off(); }
static void ct_mpmc_2(void **state) { (void)state; conc_test_watchdog("mpmc 2", 120); ct_mpmc_run(2, conc_test_iters(100000, 10)); conc_test_watchdog_off(); }
static void ct_mpmc_4(void **state) { (void)state; conc_test_watchdog("mpmc 4", 120); ct_mpmc_run(4, conc_test_iters(50000, 10)); conc_test_watchdog_off(); }
static void ct_mpmc_16(void **state) { (void)state; conc_test_watchdog("mpmc 16", 120); ct_mpmc_run(16, conc_test_iters(12500, 10)); conc_test_watchdog_off(); }

/* Every thread both pushes and pops, so a node (or slot) one thread frees
 * is at once wanted by the same thread's next push while other threads
 * still hold pointers read before: the shape of ABA and of early reuse.
 * Every item is taken exactly once (by a pop here or the final drain). */
typedef struct ct_mixed {
	void *c;
	unsigned threads;
	unsigned long per;
	atomic_uchar *seen;
} ct_mixed;

typedef struct ct_mixed_arg {
	ct_mixed *m;
	unsigned id;
	unsigned long push_errors, bad, dup;
} ct_mixed_arg;

static void ct_mixed_take(ct_mixed *m, uintptr_t v, unsigned long *bad, unsigned long *dup)
{
	uintptr_t p = v >> 32, seq = v & 0xffffffffu;
	if (p >= m->threads || seq == 0 || seq > m->per)
		(*bad)++;
	else if (atomic_fetch_add_explicit(&m->seen[p * m->per + seq - 1], 1,
					   memory_order_relaxed))
		(*dup)++;
}

static void *ct_mixed_thread(void *arg)
{
	ct_mixed_arg *a = arg;
	ct_mixed *m = a->m;
	void *it;
	for (unsigned long i = 0; i < m->per; i++) {
		if (CT.ops->push(m->c, U(((uintptr_t)a->id << 32) | (i + 1))) != 0)
			a->push_errors++;
		if (CT.ops->try_pop(m->c, &it))
			ct_mixed_take(m, (uintptr_t)it, &a->bad, &a->dup);
	}
	return NULL;
}

static void ct_mixed_push_pop(void **state)
{
	(void)state;
	conc_test_watchdog("mixed push/pop", 120);
	enum { T = 8 };
	ct_mixed m = {.c = ct_new(), .threads = T, .per = conc_test_iters(100000, 10)};
	m.seen = calloc((size_t)T * m.per, 1);
	assert_non_null(m.seen);
	ct_mixed_arg a[T];
	for (unsigned i = 0; i < T; i++)
		a[i] = (ct_mixed_arg){&m, i, 0, 0, 0};
	assert_int_equal(conc_test_run_threads(T, ct_mixed_thread, a, sizeof a[0]), 0);
	unsigned long push_errors = 0, bad = 0, dup = 0, missing = 0;
	void *it;
	while (CT.ops->try_pop(m.c, &it))
		ct_mixed_take(&m, (uintptr_t)it, &bad, &dup);
	for (unsigned i = 0; i < T; i++) {
		push_errors += a[i].push_errors;
		bad += a[i].bad;
		dup += a[i].dup;
	}
	for (size_t i = 0; i < (size_t)T * m.per; i++)
		missing += atomic_load(&m.seen[i]) == 0;
	assert_int_equal(push_errors, 0);
	assert_int_equal(bad, 0);
	assert_int_equal(dup, 0);
	assert_int_equal(missing, 0);
	CT.ops->destroy(m.c, NULL);
	free(m.seen);
	conc_test_watchdog_off();
}

/* A push that finds a popper just going to sleep wakes it: one item at a
 * time, the next pushed only after the last was taken, and each pushed the
 * moment the popper announced itself as a sleeper (the tightest race
 * between its last look at the container and the push's publication).  A
 * wake-up lost there leaves the popper asleep beside an item that nobody
 * else will ever announce: after CT_WAKE_LIMIT_NS with the item untaken
 * and the popper still counted as a sleeper the test says so (then closes
 * the container, which lets the popper out with the item). */
#define CT_WAKE_LIMIT_NS 5000000000ull

typedef struct ct_wake {
	void *c;
	unsigned long rounds;
	atomic_ulong taken; /* items the popper has taken */
	unsigned long wrong;
	int rc;
} ct_wake;

static void *ct_wake_popper(void *arg)
{
	ct_wake *w = arg;
	for (unsigned long i = 1; i <= w->rounds; i++) {
		void *it;
		int rc = CT.ops->pop(w->c, &it);
		if (rc) {
			w->rc = rc;
			return NULL;
		}
		if ((uintptr_t)it != i)
			w->wrong++;
		atomic_store(&w->taken, i);
	}
	return NULL;
}

static void ct_wake_at_sleep(void **state)
{
	(void)state;
	conc_test_watchdog("wake at sleep", 120);
	ct_wake w = {.c = ct_new(), .rounds = conc_test_iters(20000, 10)};
	atomic_init(&w.taken, 0);
	pthread_t t;
	assert_int_equal(pthread_create(&t, NULL, ct_wake_popper, &w), 0);
	unsigned long lost = 0;
	for (unsigned long i = 1; i <= w.rounds && !lost; i++) {
		/* the popper is between prepare and the end of its wait */
		for (unsigned spins = 0; CT.ops->sleepers(w.c) == 0; spins++)
			if (spins % 256 == 255)
				sched_yield();
		assert_int_equal(CT.ops->push(w.c, U(i)), 0);
		uint64_t since = conc__now_ns();
		while (atomic_load(&w.taken) != i) {
			sched_yield();
			if (conc__now_ns() - since > CT_WAKE_LIMIT_NS && CT.ops->sleepers(w.c) != 0 &&
			    atomic_load(&w.taken) != i) {
				lost = i; /* asleep for 5 s beside item i */
				break;
			}
		}
	}
	if (lost) {
		print_message("lost wake-up: the popper slept beside item %lu for 5 s\n", lost);
		CT.ops->close(w.c);
	}
	pthread_join(t, NULL);
	assert_int_equal(lost, 0);
	assert_int_equal(w.rc, 0);
	assert_int_equal(w.wrong, 0);
	assert_int_equal(atomic_load(&w.taken), w.rounds);
	CT.ops->destroy(w.c, NULL);
	conc_test_watchdog_off();
}

/* ---- linearizability ------------------------------------------------------- */

static int lc_create(void **c) { return CT.ops->create(c); }
static void lc_destroy(void *c) { CT.ops->destroy(c, NULL); }
static int lc_push(void *c, void *item) { return CT.ops->push(c, item); }
static bool lc_try_pop(void *c, void **item) { return CT.ops->try_pop(c, item); }

/* How many histories a lincheck test records: CONC_LINCHECK_HISTORIES if
 * set, 1,000,000 under CONC_NIGHTLY=1, else `normal` scaled as the stress
 * suites are (a tenth in sanitizer builds). */
static unsigned long ct_lincheck_histories(unsigned long normal)
{
	const char *e = getenv("CONC_LINCHECK_HISTORIES");
	if (e && *e)
		return strtoul(e, NULL, 10);
	e = getenv("CONC_NIGHTLY");
	if (e && !strcmp(e, "1"))
		return 1000000;
	return conc_test_iters(normal, 10);
}

/*
 * Record and check `histories` histories of `threads` x `ops`, a third each
 * with 0, 1 and 2 items pushed first.  push_pct is chosen so that about a
 * third of the pops find the container empty (the pop-empty linearization
 * point is the subtle one).  `row` names the reliability line (NULL: none).
 */
static void ct_lincheck_run(unsigned threads, unsigned ops, unsigned long histories,
			    uint64_t seed, const char *row)
{
	static const lc_target target = {lc_create, lc_destroy, lc_push, lc_try_pop};
	lc_report rep;
	unsigned long total = 0, overlapping = 0, pops = 0, empty_pops = 0;
	/* One more container lives through the run, as in a program that
	 * does not destroy its last stack every 18 operations: destroying the
	 * last stack trims the node caches (and its epoch flush then issues a
	 * membarrier most rounds), which left the stack's histories almost
	 * never overlapping (0.2% against 3.5% with this). */
	void *keep = ct_new();
	for (unsigned prefill = 0; prefill <= 2; prefill++) {
		unsigned long rounds = histories / 3 + (prefill < histories % 3);
		if (rounds == 0)
			continue;
		/* Overlap needs two cores free at once; on a loaded machine a
		 * run may see none, so try again, twice (checking every
		 * history: the line counts them all). */
		for (int attempt = 0; attempt < 3; attempt++) {
			assert_int_equal(lc_run(&target, CT.spec, threads, ops, prefill, 42, rounds,
						seed + prefill + 7 * (uint64_t)attempt, &rep), 0);
			lc_print_violation(&rep);
			assert_int_equal(rep.violations, 0);
			assert_int_equal(rep.histories, rounds);
			total += rep.histories;
			overlapping += rep.overlapping;
			pops += rep.pops;
			empty_pops += rep.empty_pops;
			if (rep.overlapping > 0)
				break;
		}
	}
	CT.ops->destroy(keep, NULL);
	/* The histories were all linearizable; if none overlapped (a machine
	 * too loaded to run two of our threads at once) the run proved
	 * nothing about concurrency: say so rather than pass. */
	if (overlapping == 0)
		skip();
	print_message("%lu of %lu histories overlap, %lu of %lu pops found it empty\n",
		      overlapping, total, empty_pops, pops);
	if (row) {
		printf("reliability: lincheck %s | histories=%lu violations=0 empty_pops=%.0f%% "
		       "overlapping=%.1f%%\n", row, total, pops ? 100.0 * (double)empty_pops / (double)pops : 0.0,
		       100.0 * (double)overlapping / (double)total);
		fflush(stdout);
	}
}

/* The shape: 3 threads x 6 ops; the reliability line. */
static void ct_lincheck_3x6(void **state)
{
	(void)state;
	unsigned long n = ct_lincheck_histories(20000);
	conc_test_watchdog("lincheck 3x6", 120 + (unsigned)(n / 100));
	ct_lincheck_run(3, 6, n, 11, &CT_PRIM[5] /* "queue", "stack" */);
	conc_test_watchdog_off();
}

/* Four threads (more than the cores: preempted mid-operation). */
static void ct_lincheck_4x3(void **state)
{
	(void)state;
	unsigned long n = ct_lincheck_histories(3000);
	conc_test_watchdog("lincheck 4x3", 120 + (unsigned)(n / 100));
	ct_lincheck_run(4, 3, n, 23, NULL);
	conc_test_watchdog_off();
}

/* The checker itself must be able to say no. */
static void ct_lincheck_rejects(void **state)
{
	(void)state;
	bool fifo = CT.spec == LC_FIFO;
	/* push 1; push 2; pop -> (fifo ? 2 : 1): wrong for the spec */
	lc_op bad[] = {
		{1, 2, LC_PUSH, true, 1, 0},
		{3, 4, LC_PUSH, true, 2, 0},
		{5, 6, LC_POP, true, fifo ? 2 : 1, 0},
	};
	assert_false(lc_check(bad, 3, CT.spec));
	lc_op good[] = {
		{1, 2, LC_PUSH, true, 1, 0},
		{3, 4, LC_PUSH, true, 2, 0},
		{5, 6, LC_POP, true, fifo ? 1 : 2, 0},
	};
	assert_true(lc_check(good, 3, CT.spec));
	/* overlapping pushes may take either order */
	lc_op overlap[] = {
		{1, 4, LC_PUSH, true, 1, 0},
		{2, 3, LC_PUSH, true, 2, 1},
		{5, 6, LC_POP, true, 2, 0},
		{7, 8, LC_POP, true, 1, 0},
	};
	assert_true(lc_check(overlap, 4, CT.spec));
	/* an empty pop after a completed push with nothing popped */
	lc_op lost[] = {
		{1, 2, LC_PUSH, true, 7, 0},
		{3, 4, LC_POP, false, 0, 1},
	};
	assert_false(lc_check(lost, 2, CT.spec));
	/* a value popped twice */
	lc_op twice[] = {
		{1, 2, LC_PUSH, true, 7, 0},
		{3, 6, LC_POP, true, 7, 1},
		{4, 5, LC_POP, true, 7, 2},
	};
	assert_false(lc_check(twice, 3, CT.spec));
}

/* ---- threads that exit, private domains ------------------------------------ */

static void *ct_churn_thread(void *arg)
{
	void *c = arg;
	void *it;
	for (int i = 0; i < 3000; i++) {
		if (CT.ops->push(c, U(i)) != 0)
			return U(1);
		if (i % 3 == 0 && !CT.ops->try_pop(c, &it))
			return U(1);
	}
	return NULL;
}

/* Threads that used the container exit before it is destroyed; ASan/LSan
 * (and valgrind) check that nothing leaks at exit. */
static void ct_threads_exit_first(void **state)
{
	(void)state;
	for (int dom = 0; dom < 2; dom++) {
		conc_epoch *d = conc_epoch_global();
		if (dom)
			assert_int_equal(conc_epoch_create(&d), 0);
		void *c = NULL;
		assert_int_equal(CT.ops->create_in(&c, d), 0);
		pthread_t t[3];
		for (int i = 0; i < 3; i++)
			assert_int_equal(pthread_create(&t[i], NULL, ct_churn_thread, c), 0);
		for (int i = 0; i < 3; i++) {
			void *r;
			pthread_join(t[i], &r);
			assert_null(r);
		}
		assert_int_equal(ct_drain(c, NULL, 0), 3 * 2000);
		CT.ops->destroy(c, NULL);
		if (dom)
			assert_int_equal(conc_epoch_destroy(d), 0);
	}
}

/* ---- allocation failure ------------------------------------------------------ */
#if CONC_FAULT_HOOKS

/* Issue 22, fault 9: a timed pop whose deadline passed tries once more,
 * then reads the closed flag.  A push that completes and a close that
 * follows in that gap must not give EPIPE with the item left behind: the
 * pause point stops the popping thread exactly there, and the pause
 * function (run on that thread) does the push and the close. */
static void *ct_gap_c;
static atomic_bool ct_gap_armed;
static atomic_int ct_gap_hits;

static void ct_gap_pause(const char *point)
{
	if (strcmp(point, "waitpop.deadline") != 0 || !atomic_exchange(&ct_gap_armed, false))
		return;
	atomic_fetch_add(&ct_gap_hits, 1);
	/* no cmocka assert here: record, the test body checks */
	if (CT.ops->push(ct_gap_c, U(0x9e)) != 0)
		atomic_fetch_add(&ct_gap_hits, 100);
	CT.ops->close(ct_gap_c);
}

static void ct_timed_pop_push_close_at_deadline(void **state)
{
	(void)state;
	void *c = ct_new();
	ct_gap_c = c;
	atomic_store(&ct_gap_hits, 0);
	atomic_store(&ct_gap_armed, true);
	conc__test_set_hook(ct_gap_pause);
	void *it = U(0xbad);
	int rc = CT.ops->pop_timeout(c, &it, 1000000); /* 1 ms: the deadline passes */
	conc__test_set_hook(NULL);
	void *left = U(0xbad);
	bool still_there = CT.ops->try_pop(c, &left);
	print_message("timed pop at its deadline, push + close in the gap: rc=%d item=%p "
		      "left in the container: %s\n", rc, it, still_there ? "yes" : "no");
	assert_int_equal(atomic_load(&ct_gap_hits), 1);
	assert_false(still_there);
	assert_int_equal(rc, 0);
	assert_ptr_equal(it, U(0x9e));
	/* closed and empty now: EPIPE, at once and after a wait alike */
	assert_int_equal(CT.ops->pop_timeout(c, &it, 0), EPIPE);
	assert_int_equal(CT.ops->pop_timeout(c, &it, 1000000), EPIPE);
	CT.ops->destroy(c, NULL);
}

static void ct_create_enomem(void **state)
{
	(void)state;
	int failures = 0;
	for (long k = 1; k < 10; k++) {
		void *c = U(0x1234);
		conc__fault_reset();
		conc__fault_fail_alloc_at(k);
		int rc = CT.ops->create(&c);
		conc__fault_reset();
		if (rc == 0) {
			CT.ops->destroy(c, NULL);
			break;
		}
		assert_int_equal(rc, ENOMEM);
		assert_ptr_equal(c, U(0x1234));
		failures++;
	}
	assert_true(failures >= 1);
}

static void ct_push_enomem(void **state)
{
	(void)state;
	void *c = ct_new();
	if (CT.force_alloc)
		CT.force_alloc();
	conc__fault_reset();
	conc__fault_fail_alloc_at(1);
	unsigned long ok = 0;
	int rc = 0;
	while (ok <= CT.alloc_every && (rc = CT.ops->push(c, U(ok + 1))) == 0)
		ok++;
	conc__fault_reset();
	assert_int_equal(rc, ENOMEM); /* the first push that had to allocate */
	/* nothing changed: exactly the successful pushes are there */
	assert_int_equal(CT.ops->push(c, U(ok + 1)), 0);
	ok++;
	uintptr_t *got = calloc(ok, sizeof *got);
	assert_non_null(got);
	assert_int_equal(ct_drain(c, got, ok), ok);
	for (size_t k = 0; k < ok; k++)
		assert_int_equal(got[k], ct_expect(k, ok, 1));
	free(got);
	CT.ops->destroy(c, NULL);
}

/* Steady state: push/pop traffic stops allocating once caches are warm. */
typedef struct ct_steady {
	void *c;
	unsigned long n;
	atomic_ulong pushed, popped;
} ct_steady;

static void *ct_steady_consumer(void *arg)
{
	ct_steady *s = arg;
	void *it;
	while (atomic_load(&s->popped) < s->n) {
		if (CT.ops->try_pop(s->c, &it))
			atomic_fetch_add(&s->popped, 1);
		else
			sched_yield();
	}
	return NULL;
}

static void ct_steady_state_no_malloc(void **state)
{
	(void)state;
	conc_test_watchdog("steady state", 60);
	void *c = ct_new();
	/* one thread; the warm-up runs the same pattern as the measured part,
	 * long enough to fill the caches with what the epoch holds back (up
	 * to GRACE advances of up to ADVANCE_MAX retires each) */
	for (int i = 0; i < 8 * (CONC__EPOCH_GRACE + 1) * CONC__EPOCH_ADVANCE_MAX; i++) {
		void *it;
		assert_int_equal(CT.ops->push(c, U(i)), 0);
		assert_true(CT.ops->try_pop(c, &it));
	}
	conc_epoch_flush(conc_epoch_global());
	conc__fault_reset();
	for (int i = 0; i < 40000; i++) {
		void *it;
		assert_int_equal(CT.ops->push(c, U(i)), 0);
		assert_true(CT.ops->try_pop(c, &it));
	}
	long one_thread = conc__fault_alloc_calls();
	/* producer and consumer on different threads, bounded backlog */
	ct_steady s = {.c = c, .n = conc_test_iters(200000, 10)};
	atomic_init(&s.pushed, 0);
	atomic_init(&s.popped, 0);
	pthread_t t;
	assert_int_equal(pthread_create(&t, NULL, ct_steady_consumer, &s), 0);
	conc__fault_reset();
	for (unsigned long i = 0; i < s.n; i++) {
		while (i - atomic_load(&s.popped) > 256)
			sched_yield();
		assert_int_equal(CT.ops->push(c, U(i)), 0);
	}
	pthread_join(t, NULL);
	long two_threads = conc__fault_alloc_calls();
	conc__fault_reset();
	CT.ops->destroy(c, NULL);
	print_message("allocations: %ld in 40000 one-thread pairs, %ld in %lu cross-thread pairs\n",
		      one_thread, two_threads, s.n);
	/* The epoch advances on a clock (at most every 20 us unless 1024
	 * retires pile up), so how many objects are in flight depends a little
	 * on speed: a stall after the warm-up may need a few more nodes, at
	 * most one advance window's worth.  Without caches this would be
	 * 40000. */
	assert_true(one_thread <= CONC__EPOCH_ADVANCE_MAX);
	/* without caches this would be one allocation per push (stack) or per
	 * segment (queue); the bound allows the caches' warm-up */
	assert_true(two_threads <= CT.steady_max_allocs);
	conc_test_watchdog_off();
}
#endif

/* cmocka shows each as test_<prim>_<behaviour> (CT_PRIM is "test_queue"...) */
#define CT_UNIT(f) {CT_PRIM "_" #f, ct_##f, NULL, NULL, NULL}

#define CT_TESTS                                                        \
	CT_UNIT(create_destroy),                            \
	CT_UNIT(create_einval),                             \
	CT_UNIT(null_args),                                 \
	CT_UNIT(empty),                                     \
	CT_UNIT(one),                                       \
	CT_UNIT(order),                                     \
	CT_UNIT(null_items),                                \
	CT_UNIT(destroy_drops_in_order),                    \
	CT_UNIT(close),                                     \
	CT_UNIT(pop_timeout),                               \
	CT_UNIT(pop_woken_by_push),                         \
	CT_UNIT(pop_woken_by_close),                        \
	CT_UNIT(blocking_handoff),                          \
	CT_UNIT(wake_at_sleep),                             \
	CT_UNIT(mixed_push_pop),                            \
	CT_UNIT(close_races),                               \
	CT_UNIT(mpmc_1),                                    \
	CT_UNIT(mpmc_2),                                    \
	CT_UNIT(mpmc_4),                                    \
	CT_UNIT(mpmc_16),                                   \
	CT_UNIT(lincheck_rejects),                          \
	CT_UNIT(lincheck_3x6),                              \
	CT_UNIT(lincheck_4x3),                              \
	CT_UNIT(threads_exit_first)

#if CONC_FAULT_HOOKS
#define CT_FAULT_TESTS                                                  \
	CT_UNIT(timed_pop_push_close_at_deadline),          \
	CT_UNIT(create_enomem),                             \
	CT_UNIT(push_enomem),                               \
	CT_UNIT(steady_state_no_malloc)
#else
#define CT_FAULT_TESTS CT_UNIT(empty)
#endif

#endif
