/*
 * test_injector.c - the pool's injector alone (src/pool/injector.h): FIFO
 * order across block boundaries, the batch sizes of a pop, empty pops,
 * block recycling, allocation failure and the close (single-threaded);
 * pushers and poppers together (every task popped exactly once, each
 * pusher's order kept); and lincheck histories of push / pop-one, with and
 * without the popper's remembered tail (`seen`).
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sched.h>
#include <time.h>

#include "testutil.h"
#include "lincheck.h"

#include "base/fault.h"
#include "pool/injector.h"

#define CAP CONC__INJ_CAP

/* Two task functions, so that a pop that returned the wrong slot's fn (or
 * a fn torn from another slot's arg) is seen: fn_even for even values. */
static void fn_even(void *a) { (void)a; }
static void fn_odd(void *a) { (void)a; }

static conc__task_fn fn_for(uintptr_t v)
{
	return v % 2 ? fn_odd : fn_even;
}

static conc__injector *inj_new(void)
{
	/* aligned: the injector's lines are CONC_ALIGNED */
	conc__injector *q = aligned_alloc(CONC_PAD, sizeof *q);
	assert_non_null(q);
	assert_int_equal(conc__inj_init(q), 0);
	return q;
}

static void inj_free(conc__injector *q)
{
	conc__inj_fini(q);
	free(q);
}

static void push_v(conc__injector *q, uintptr_t v)
{
	assert_int_equal(conc__inj_push(q, fn_for(v), (void *)v, false), 0);
}

static unsigned spares(conc__injector *q)
{
	unsigned n = 0;
	for (unsigned i = 0; i < CONC__INJ_SPARES; i++)
		n += atomic_load(&q->spare[i]) != NULL;
	return n;
}

/* FIFO, one at a time and in batches, over several blocks. */
static void test_injector_fifo_across_blocks(void **state)
{
	(void)state;
	for (int batched = 0; batched <= 1; batched++) {
		conc__injector *q = inj_new();
		const uintptr_t n = 3 * CAP + 10;
		for (uintptr_t v = 1; v <= n; v++)
			push_v(q, v);
		assert_int_equal(conc__inj_pushed(q), n);
		uintptr_t next = 1;
		uint64_t seen = 0;
		conc__task out[64];
		for (;;) {
			unsigned got = conc__inj_pop(q, out, batched ? 64 : 1, batched ? &seen : NULL);
			if (!got)
				break;
			for (unsigned i = 0; i < got; i++, next++) {
				assert_int_equal((uintptr_t)out[i].arg, next);
				assert_ptr_equal(out[i].fn, fn_for(next));
			}
		}
		assert_int_equal(next, n + 1);
		assert_int_equal(conc__inj_popped(q), n);
		inj_free(q);
	}
}

/* A pop takes half (rounded up) of what the head's block holds, at most
 * max, at least one. */
static void test_injector_batch_sizes(void **state)
{
	(void)state;
	conc__injector *q = inj_new();
	conc__task out[CAP];
	/* A full block (the tail is in the next one): 128, 64, ... 1. */
	for (uintptr_t v = 0; v < CAP; v++)
		push_v(q, v);
	static const unsigned full[] = {128, 64, 32, 16, 8, 4, 2, 1};
	uintptr_t next = 0;
	for (unsigned k = 0; k < sizeof full / sizeof full[0]; k++) {
		unsigned got = conc__inj_pop(q, out, CAP, NULL);
		assert_int_equal(got, full[k]);
		for (unsigned i = 0; i < got; i++)
			assert_int_equal((uintptr_t)out[i].arg, next++);
	}
	assert_int_equal(conc__inj_pop(q, out, CAP, NULL), 0);
	/* Ten in the current block: 5, 3, 1, 1; with max 2: 2, 2, 2, 2, then
	 * half of two is 1: 1, 1. */
	for (uintptr_t v = 0; v < 10; v++)
		push_v(q, v);
	static const unsigned ten[] = {5, 3, 1, 1};
	for (unsigned k = 0; k < 4; k++)
		assert_int_equal(conc__inj_pop(q, out, CAP, NULL), ten[k]);
	for (uintptr_t v = 0; v < 10; v++)
		push_v(q, v);
	static const unsigned ten_max2[] = {2, 2, 2, 2, 1, 1};
	for (unsigned k = 0; k < 6; k++)
		assert_int_equal(conc__inj_pop(q, out, 2, NULL), ten_max2[k]);
	assert_int_equal(conc__inj_pop(q, out, 2, NULL), 0);
	/* max 1 always takes one. */
	push_v(q, 7);
	push_v(q, 8);
	assert_int_equal(conc__inj_pop(q, out, 1, NULL), 1);
	assert_int_equal((uintptr_t)out[0].arg, 7);
	assert_int_equal(conc__inj_pop(q, out, 1, NULL), 1);
	assert_int_equal((uintptr_t)out[0].arg, 8);
	inj_free(q);
}

/* Empty pops: fresh, drained, and with a remembered tail. */
static void test_injector_empty_pop(void **state)
{
	(void)state;
	conc__injector *q = inj_new();
	conc__task out[4];
	uint64_t seen = 0;
	assert_int_equal(conc__inj_pop(q, out, 4, NULL), 0);
	assert_int_equal(conc__inj_pop(q, out, 4, &seen), 0);
	assert_int_equal(seen, 0);
	push_v(q, 1);
	push_v(q, 2);
	/* The head caught up with seen (0): the tail is read again. */
	assert_int_equal(conc__inj_pop(q, out, 4, &seen), 1);
	assert_int_equal(seen, 2);
	assert_int_equal(conc__inj_pop(q, out, 4, &seen), 1);
	assert_int_equal((uintptr_t)out[0].arg, 2);
	assert_int_equal(conc__inj_pop(q, out, 4, &seen), 0);
	assert_int_equal(conc__inj_pop(q, out, 4, NULL), 0);
	assert_int_equal(conc__inj_pushed(q), 2);
	assert_int_equal(conc__inj_popped(q), 2);
	bool closed = true;
	assert_int_equal(conc__inj_state(q, &closed), 0);
	assert_false(closed);
	inj_free(q);
}

/* A block whose slots were all read goes to the spares and is used again:
 * a steady stream allocates nothing. */
static void test_injector_block_recycling(void **state)
{
	(void)state;
	conc__injector *q = inj_new();
	conc__task out[CAP];
	assert_int_equal(spares(q), 0);
	for (uintptr_t v = 0; v < 2 * CAP; v++)
		push_v(q, v);
	uintptr_t next = 0;
	while (next < CAP) {
		unsigned got = conc__inj_pop(q, out, CAP, NULL);
		assert_true(got > 0);
		for (unsigned i = 0; i < got; i++)
			assert_int_equal((uintptr_t)out[i].arg, next++);
	}
	/* The first block is whole: recycled. */
	assert_int_equal(spares(q), 1);
	struct conc__inj_block *spare = atomic_load(&q->spare[0]);
	assert_null(atomic_load(&spare->next));
	for (unsigned i = 0; i < CAP; i++)
		assert_null(atomic_load(&spare->slot[i].fn));
	/* The next lap takes it from the spares. */
	for (uintptr_t v = 2 * CAP; v < 3 * CAP; v++)
		push_v(q, v);
	assert_int_equal(spares(q), 0);
#if defined(CONC_FAULT_HOOKS) && CONC_FAULT_HOOKS
	/* Steady state: pop a block, push a block - no allocation. */
	uintptr_t pushed = 3 * CAP;
	conc__fault_reset();
	for (int lap = 0; lap < 8; lap++) {
		for (unsigned k = 0; k < CAP; k++) {
			assert_int_equal(conc__inj_pop(q, out, 1, NULL), 1);
			assert_int_equal((uintptr_t)out[0].arg, next++);
		}
		for (unsigned k = 0; k < CAP; k++)
			push_v(q, pushed++);
	}
	assert_int_equal(conc__fault_alloc_calls(), 0);
#endif
	inj_free(q); /* non-empty, over two blocks: fini frees the chain */
}

/* Allocation failure: init fails with ENOMEM; a push that must link the
 * next block fails with ENOMEM and claims nothing; the next push works and
 * nothing was lost. */
static void test_injector_enomem(void **state)
{
	(void)state;
#if defined(CONC_FAULT_HOOKS) && CONC_FAULT_HOOKS
	conc__injector *q = aligned_alloc(CONC_PAD, sizeof *q);
	assert_non_null(q);
	conc__fault_reset();
	conc__fault_fail_alloc_at(1);
	assert_int_equal(conc__inj_init(q), ENOMEM);
	conc__fault_reset();
	assert_int_equal(conc__inj_init(q), 0);
	for (uintptr_t v = 0; v < CAP - 1; v++)
		push_v(q, v);
	/* The block's last slot: its pusher needs the next block first. */
	conc__fault_fail_alloc_at(1);
	assert_int_equal(conc__inj_push(q, fn_odd, (void *)(uintptr_t)999, false), ENOMEM);
	assert_int_equal(conc__fault_site_failures("pool.inj_block"), 1);
	assert_int_equal(conc__inj_pushed(q), CAP - 1);
	conc__fault_reset();
	for (uintptr_t v = CAP - 1; v < CAP + 5; v++)
		push_v(q, v);
	conc__task out[1];
	for (uintptr_t v = 0; v < CAP + 5; v++) {
		assert_int_equal(conc__inj_pop(q, out, 1, NULL), 1);
		assert_int_equal((uintptr_t)out[0].arg, v);
	}
	assert_int_equal(conc__inj_pop(q, out, 1, NULL), 0);
	inj_free(q);
#else
	skip();
#endif
}

/* The close: later pushes fail with EPIPE unless forced; what was queued
 * stays and pops. */
static void test_injector_close(void **state)
{
	(void)state;
	conc__injector *q = inj_new();
	push_v(q, 1);
	assert_false(conc__inj_closed(q));
	conc__inj_close(q);
	assert_true(conc__inj_closed(q));
	assert_int_equal(conc__inj_push(q, fn_even, (void *)(uintptr_t)2, false), EPIPE);
	assert_int_equal(conc__inj_push(q, fn_even, (void *)(uintptr_t)2, true), 0);
	bool closed = false;
	assert_int_equal(conc__inj_state(q, &closed), 2);
	assert_true(closed);
	/* Forced pushes cross a block boundary with CLOSED kept. */
	for (uintptr_t v = 3; v < CAP + 10; v++)
		assert_int_equal(conc__inj_push(q, fn_for(v), (void *)v, true), 0);
	assert_true(conc__inj_closed(q));
	conc__task out[1];
	for (uintptr_t v = 1; v < CAP + 10; v++) {
		assert_int_equal(conc__inj_pop(q, out, 1, NULL), 1);
		assert_int_equal((uintptr_t)out[0].arg, v);
	}
	inj_free(q);
}

/* A pop that took a claimed slot waits for its fill. */
struct late_fill {
	conc__injector *q;
	struct conc__inj_slot *slot;
	atomic_int claimed;
};

static void *late_fill_run(void *arg)
{
	struct late_fill *lf = arg;
	while (!atomic_load(&lf->claimed))
		sched_yield();
	struct timespec ts = {0, 20 * 1000 * 1000}; /* the popper is waiting by now */
	nanosleep(&ts, NULL);
	conc__inj_fill(lf->slot, fn_odd, (void *)(uintptr_t)41);
	return NULL;
}

static void test_injector_pop_waits_for_fill(void **state)
{
	(void)state;
	struct late_fill lf = {.q = inj_new()};
	atomic_init(&lf.claimed, 0);
	pthread_t th;
	assert_int_equal(pthread_create(&th, NULL, late_fill_run, &lf), 0);
	assert_int_equal(conc__inj_claim(lf.q, false, &lf.slot), 0);
	assert_int_equal(conc__inj_pushed(lf.q), 1); /* counted at the claim */
	atomic_store(&lf.claimed, 1);
	conc__task out[1];
	assert_int_equal(conc__inj_pop(lf.q, out, 1, NULL), 1);
	assert_ptr_equal(out[0].fn, fn_odd);
	assert_int_equal((uintptr_t)out[0].arg, 41);
	pthread_join(th, NULL);
	inj_free(lf.q);
}

/* ---- pushers and poppers together --------------------------------------- */

#define PUSHERS 3
#define POPPERS 3
/* A value: pusher (8 bits) above its sequence number (from 1). */
#define VAL(p, i) (((uintptr_t)(p) << 48) | (uintptr_t)(i))
#define VAL_P(v) ((unsigned)((v) >> 48))
#define VAL_I(v) ((v) & (((uintptr_t)1 << 48) - 1))

struct mpmc {
	conc__injector *q;
	unsigned long per_pusher;
	atomic_ulong popped;   /* total, for the progress watchdog */
	atomic_uint pushers_left;
	atomic_uchar *seen[PUSHERS]; /* seen[p][i]: times value (p, i) was popped */
	atomic_ulong bad_order, bad_fn, bad_val;
};

struct mpmc_thread {
	struct mpmc *m;
	unsigned id; /* pushers 0..PUSHERS-1, then poppers */
};

static void *mpmc_run(void *arg)
{
	struct mpmc_thread *t = arg;
	struct mpmc *m = t->m;
	if (t->id < PUSHERS) {
		for (unsigned long i = 1; i <= m->per_pusher; i++) {
			uintptr_t v = VAL(t->id, i);
			struct conc__inj_slot *s;
			if (conc__inj_claim(m->q, false, &s) != 0) {
				atomic_fetch_add(&m->bad_val, 1); /* no hooks armed here */
				continue;
			}
			/* Now and then a pusher is slow between its claim and its
			 * fill (in the pool a wake sits there): a popper that took
			 * the slot must wait for the fill. */
			if (i % 64 == 0)
				sched_yield();
			conc__inj_fill(s, fn_for(v), (void *)v);
		}
		atomic_fetch_sub(&m->pushers_left, 1);
		return NULL;
	}
	uint64_t rng = 0x9E3779B97F4A7C15ull * (t->id + 1), seen = 0;
	uint64_t last[PUSHERS] = {0}; /* per pusher, the last sequence number we popped */
	conc__task out[32];
	for (;;) {
		bool done = atomic_load(&m->pushers_left) == 0;
		unsigned max = 1 + (unsigned)(conc_test_rand(&rng) % 32);
		unsigned got = conc__inj_pop(m->q, out, max, (t->id & 1) ? &seen : NULL);
		if (!got) {
			if (done)
				break; /* nothing pushed after we saw the pushers done */
			continue;
		}
		for (unsigned k = 0; k < got; k++) {
			uintptr_t v = (uintptr_t)out[k].arg;
			unsigned p = VAL_P(v);
			uint64_t i = VAL_I(v);
			if (p >= PUSHERS || i == 0 || i > m->per_pusher) {
				atomic_fetch_add(&m->bad_val, 1);
				continue;
			}
			if (out[k].fn != fn_for(v))
				atomic_fetch_add(&m->bad_fn, 1);
			/* FIFO: a popper sees each pusher's values in order. */
			if (i <= last[p])
				atomic_fetch_add(&m->bad_order, 1);
			last[p] = i;
			atomic_fetch_add_explicit(&m->seen[p][i - 1], 1, memory_order_relaxed);
		}
		atomic_fetch_add_explicit(&m->popped, got, memory_order_relaxed);
	}
	return NULL;
}

static void test_injector_mpmc(void **state)
{
	(void)state;
	struct mpmc m;
	m.per_pusher = conc_test_iters(200000, 10);
	m.q = inj_new();
	atomic_init(&m.popped, 0);
	atomic_init(&m.pushers_left, PUSHERS);
	atomic_init(&m.bad_order, 0);
	atomic_init(&m.bad_fn, 0);
	atomic_init(&m.bad_val, 0);
	for (unsigned p = 0; p < PUSHERS; p++) {
		m.seen[p] = calloc(m.per_pusher, sizeof *m.seen[p]);
		assert_non_null(m.seen[p]);
	}
	conc_test_progress *wd = conc_test_progress_watchdog_start("injector mpmc", &m.popped, 5);
	assert_non_null(wd);
	struct mpmc_thread t[PUSHERS + POPPERS];
	for (unsigned i = 0; i < PUSHERS + POPPERS; i++)
		t[i] = (struct mpmc_thread){&m, i};
	assert_int_equal(conc_test_run_threads(PUSHERS + POPPERS, mpmc_run, t, sizeof t[0]), 0);
	conc_test_progress_watchdog_stop(wd);
	assert_int_equal(atomic_load(&m.bad_val), 0);
	assert_int_equal(atomic_load(&m.bad_fn), 0);
	assert_int_equal(atomic_load(&m.bad_order), 0);
	/* Every task popped exactly once, over the whole run. */
	unsigned long lost = 0, twice = 0;
	for (unsigned p = 0; p < PUSHERS; p++) {
		for (unsigned long i = 0; i < m.per_pusher; i++) {
			unsigned c = atomic_load(&m.seen[p][i]);
			lost += c == 0;
			twice += c > 1;
		}
		free(m.seen[p]);
	}
	assert_int_equal(lost, 0);
	assert_int_equal(twice, 0);
	assert_int_equal(atomic_load(&m.popped), PUSHERS * m.per_pusher);
	assert_int_equal(conc__inj_pushed(m.q), PUSHERS * m.per_pusher);
	assert_int_equal(conc__inj_popped(m.q), PUSHERS * m.per_pusher);
	printf("reliability: injector mpmc | pushers=%u poppers=%u tasks=%lu lost=0 twice=0\n",
	       PUSHERS, POPPERS, PUSHERS * m.per_pusher);
	inj_free(m.q);
}

/* ---- lincheck ------------------------------------------------------------ */

/* A container for lc_run: the injector, and a generation so that a
 * popper's remembered tail is forgotten when a round makes a new one (the
 * address may be reused). */
struct lc_inj {
	conc__injector q; /* first: CONC_ALIGNED */
	unsigned gen;
};

static atomic_uint lc_gen;
static bool lc_use_seen;
static _Thread_local unsigned lc_my_gen;
static _Thread_local uint64_t lc_my_seen;

static int lc_inj_create(void **c)
{
	struct lc_inj *x = aligned_alloc(CONC_PAD, sizeof *x);
	if (!x)
		return ENOMEM;
	if (conc__inj_init(&x->q)) {
		free(x);
		return ENOMEM;
	}
	x->gen = atomic_fetch_add(&lc_gen, 1) + 1;
	*c = x;
	return 0;
}

static void lc_inj_destroy(void *c)
{
	conc__inj_fini(&((struct lc_inj *)c)->q);
	free(c);
}

static int lc_inj_push(void *c, void *item)
{
	return conc__inj_push(&((struct lc_inj *)c)->q, fn_even, item, false);
}

static bool lc_inj_try_pop(void *c, void **item)
{
	struct lc_inj *x = c;
	uint64_t *seen = NULL;
	if (lc_use_seen) {
		if (lc_my_gen != x->gen) {
			lc_my_gen = x->gen;
			lc_my_seen = 0;
		}
		seen = &lc_my_seen;
	}
	conc__task t;
	if (!conc__inj_pop(&x->q, &t, 1, seen))
		return false;
	if (t.fn != fn_even)
		abort(); /* not on the test's thread: no cmocka assert here */
	*item = t.arg;
	return true;
}

static void lincheck(bool use_seen)
{
	static const lc_target target = {lc_inj_create, lc_inj_destroy, lc_inj_push,
					  lc_inj_try_pop};
	lc_use_seen = use_seen;
	unsigned long rounds = conc_test_iters(20000, 10);
	unsigned long total = 0, overlapping = 0, empty = 0, pops = 0;
	/* One more injector lives through the run (as container_tests.h does
	 * for the queue and stack): the rounds' allocations then come from
	 * warm memory and their threads overlap more often. */
	void *keep;
	assert_int_equal(lc_inj_create(&keep), 0);
	for (unsigned prefill = 0; prefill <= 2; prefill++) {
		/* Overlap needs two cores free at once; on a loaded machine a
		 * run may see none, so try again, twice. */
		for (int attempt = 0; attempt < 3; attempt++) {
			lc_report rep;
			assert_int_equal(lc_run(&target, LC_FIFO, 3, 6, prefill, 42, rounds / 3 + 1,
						0x1234 + prefill + 100 * use_seen + 7 * (uint64_t)attempt,
						&rep),
					 0);
			lc_print_violation(&rep);
			assert_int_equal(rep.violations, 0);
			total += rep.histories;
			overlapping += rep.overlapping;
			empty += rep.empty_pops;
			pops += rep.pops;
			if (rep.overlapping > 0)
				break;
		}
	}
	lc_inj_destroy(keep);
	printf("reliability: lincheck injector%s | histories=%lu violations=0 overlapping=%lu "
	       "empty_pops=%lu/%lu\n",
	       use_seen ? " (seen)" : "", total, overlapping, empty, pops);
	/* All linearizable; but if none overlapped (a machine too loaded to
	 * run two of our threads at once) the run proved nothing about
	 * concurrency: say so rather than pass. */
	if (overlapping == 0)
		skip();
}

static void test_injector_lincheck(void **state)
{
	(void)state;
	lincheck(false);
}

static void test_injector_lincheck_seen(void **state)
{
	(void)state;
	lincheck(true);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_injector_fifo_across_blocks),
		cmocka_unit_test(test_injector_batch_sizes),
		cmocka_unit_test(test_injector_empty_pop),
		cmocka_unit_test(test_injector_block_recycling),
		cmocka_unit_test(test_injector_enomem),
		cmocka_unit_test(test_injector_close),
		cmocka_unit_test(test_injector_pop_waits_for_fill),
		cmocka_unit_test(test_injector_mpmc),
		cmocka_unit_test(test_injector_lincheck),
		cmocka_unit_test(test_injector_lincheck_seen),
	};
	return cmocka_run_group_tests_name("injector", tests, NULL, NULL);
}
