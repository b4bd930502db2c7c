/*
 * test_epoch.c - the epoch core (conc/epoch.h).
 *
 * The suite runs twice from meson: once as the library chooses (membarrier
 * where the kernel has it), once with CONC_EPOCH_FENCES=1 (the fence path).
 */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/wait.h>
#include <unistd.h>

#include "testutil.h"

#include "conc/epoch.h"
#include "epoch/epoch_internal.h"
#include "base/fault.h"

/* A retired object: the callback poisons it, counts, and frees it. */
#define LIVE 0x11111111u
#define POISON 0xdeadbeefu

typedef struct obj {
	conc_epoch_node node;
	atomic_uint tag; /* LIVE until the callback runs */
	atomic_int *counter;
	unsigned long value;
} obj;

static void obj_free(conc_epoch_node *n)
{
	obj *o = (obj *)n;
	atomic_store_explicit(&o->tag, POISON, memory_order_relaxed);
	if (o->counter)
		atomic_fetch_add(o->counter, 1);
	free(o);
}

static obj *obj_new(atomic_int *counter)
{
	obj *o = calloc(1, sizeof *o);
	atomic_init(&o->tag, LIVE);
	o->counter = counter;
	return o;
}

/* ---- single-threaded behaviour --------------------------------------- */

/* Start fn(arg) on *t and wait until it sets *flag. */
static void start_until(pthread_t *t, void *(*fn)(void *), void *arg, atomic_int *flag)
{
	assert_int_equal(pthread_create(t, NULL, fn, arg), 0);
	while (!atomic_load(flag))
		sched_yield();
}

/* A new domain (create asserted). */
static conc_epoch *new_domain(void)
{
	conc_epoch *d;
	assert_int_equal(conc_epoch_create(&d), 0);
	return d;
}

static void test_epoch_global_is_stable(void **state)
{
	(void)state;
	assert_non_null(conc_epoch_global());
	assert_ptr_equal(conc_epoch_global(), conc_epoch_global());
	assert_int_equal(conc_epoch_destroy(conc_epoch_global()), EINVAL);
	assert_int_equal(conc_epoch_destroy(NULL), EINVAL);
	assert_int_equal(conc_epoch_create(NULL), EINVAL);
}

static void test_epoch_nesting(void **state)
{
	(void)state;
	conc_epoch *d = new_domain();
	assert_false(conc_epoch_is_pinned(d));
	conc_epoch_pin(d);
	conc_epoch_pin(d);
	conc_epoch_pin(d);
	assert_true(conc_epoch_is_pinned(d));
	assert_int_equal(conc_epoch_barrier(d), EDEADLK);
	assert_int_equal(conc_epoch_destroy(d), EBUSY);
	conc_epoch_unpin(d);
	conc_epoch_unpin(d);
	assert_true(conc_epoch_is_pinned(d));
	assert_int_equal(conc_epoch_register(d), 0); /* allowed while pinned */
	conc_epoch_unpin(d);
	assert_false(conc_epoch_is_pinned(d));
	assert_int_equal(conc_epoch_barrier(d), 0);
	assert_int_equal(conc_epoch_destroy(d), 0);
}

static void test_epoch_register_idempotent(void **state)
{
	(void)state;
	conc_epoch *d = new_domain();
	conc_epoch_stats st;
	assert_int_equal(conc_epoch_register(NULL), EINVAL);
	assert_int_equal(conc_epoch_register(d), 0);
	assert_int_equal(conc_epoch_register(d), 0);
	conc_epoch_get_stats(d, &st);
	assert_int_equal(st.registered, 1);
	assert_int_equal(conc_epoch_destroy(d), 0);
}

static void test_epoch_retire_runs_once_after_barrier(void **state)
{
	(void)state;
	conc_epoch *d = new_domain();
	atomic_int ran = 0;
	conc_epoch_stats st;
	enum { N = 10000 };
	for (int i = 0; i < N; i++) {
		conc_epoch_pin(d);
		conc_epoch_retire(d, &obj_new(&ran)->node, obj_free);
		conc_epoch_unpin(d);
	}
	conc_epoch_get_stats(d, &st);
	assert_int_equal(st.retired, N);
	assert_int_equal(st.freed, (uint64_t)atomic_load(&ran));
	assert_int_equal(conc_epoch_barrier(d), 0);
	assert_int_equal(atomic_load(&ran), N);
	conc_epoch_get_stats(d, &st);
	assert_int_equal(st.retired, N);
	assert_int_equal(st.freed, N);
	assert_int_equal(st.pending, 0);
	assert_true(st.epoch >= 3);
	/* A second barrier with nothing pending returns at once, runs none. */
	assert_int_equal(conc_epoch_barrier(d), 0);
	assert_int_equal(atomic_load(&ran), N);
	assert_int_equal(conc_epoch_destroy(d), 0);
}

static void defer_count(void *arg)
{
	atomic_fetch_add((atomic_int *)arg, 1);
}

static void test_epoch_defer(void **state)
{
	(void)state;
	conc_epoch *d = new_domain();
	atomic_int ran = 0;
	assert_int_equal(conc_epoch_defer(NULL, defer_count, &ran), EINVAL);
	assert_int_equal(conc_epoch_defer(d, NULL, &ran), EINVAL);
	for (int i = 0; i < 100; i++)
		assert_int_equal(conc_epoch_defer(d, defer_count, &ran), 0);
#if defined(CONC_FAULT_HOOKS) && CONC_FAULT_HOOKS
	conc_epoch_stats before, after;
	conc_epoch_get_stats(d, &before);
	conc__fault_fail_alloc_at(1);
	assert_int_equal(conc_epoch_defer(d, defer_count, &ran), ENOMEM);
	conc__fault_reset();
	conc_epoch_get_stats(d, &after);
	assert_int_equal(after.retired, before.retired); /* nothing deferred */
#endif
	assert_int_equal(conc_epoch_barrier(d), 0);
	assert_int_equal(atomic_load(&ran), 100);
	/* destroy runs what is still pending */
	for (int i = 0; i < 10; i++)
		assert_int_equal(conc_epoch_defer(d, defer_count, &ran), 0);
	assert_int_equal(conc_epoch_destroy(d), 0);
	assert_int_equal(atomic_load(&ran), 110);
}

#if defined(CONC_FAULT_HOOKS) && CONC_FAULT_HOOKS
static void test_epoch_create_enomem(void **state)
{
	(void)state;
	conc_epoch *d = (conc_epoch *)&d;
	conc__fault_fail_alloc_at(1);
	assert_int_equal(conc_epoch_create(&d), ENOMEM);
	conc__fault_reset();
	assert_ptr_equal(d, (conc_epoch *)&d); /* untouched */
}
#endif

/* Callbacks may pin, retire and defer; barrier runs the chain to the end. */
typedef struct chain {
	conc_epoch_node node;
	conc_epoch *d;
	int left;
	atomic_int *ran;
} chain;

static void chain_step(conc_epoch_node *n)
{
	chain *c = (chain *)n;
	atomic_fetch_add(c->ran, 1);
	if (c->left > 0) {
		chain *next = malloc(sizeof *next);
		*next = (chain){.d = c->d, .left = c->left - 1, .ran = c->ran};
		conc_epoch_pin(c->d);
		conc_epoch_retire(c->d, &next->node, chain_step);
		conc_epoch_unpin(c->d);
		conc_epoch_flush(c->d);
	}
	free(c);
}

static void test_epoch_callbacks_may_retire(void **state)
{
	(void)state;
	conc_epoch *d = new_domain();
	atomic_int ran = 0;
	chain *c = malloc(sizeof *c);
	*c = (chain){.d = d, .left = 20, .ran = &ran};
	conc_epoch_retire(d, &c->node, chain_step);
	/* Each barrier runs what was retired before it, possibly more. */
	for (int i = 0; i < 21 && atomic_load(&ran) < 21; i++)
		assert_int_equal(conc_epoch_barrier(d), 0);
	assert_int_equal(atomic_load(&ran), 21);
	/* destroy keeps going until callbacks stop adding */
	c = malloc(sizeof *c);
	*c = (chain){.d = d, .left = 5, .ran = &ran};
	conc_epoch_retire(d, &c->node, chain_step);
	assert_int_equal(conc_epoch_destroy(d), 0);
	assert_int_equal(atomic_load(&ran), 27);
}

/* ---- a pinned thread holds callbacks back ----------------------------- */

typedef struct holder {
	conc_epoch *d;
	atomic_int pinned, release, done;
} holder;

static void *hold_pinned(void *arg)
{
	holder *h = arg;
	conc_epoch_pin(h->d);
	atomic_store(&h->pinned, 1);
	while (!atomic_load(&h->release))
		sched_yield();
	conc_epoch_unpin(h->d);
	atomic_store(&h->done, 1);
	return NULL;
}

static void test_epoch_pinned_thread_blocks_callbacks(void **state)
{
	(void)state;
	conc_epoch *d = new_domain();
	atomic_int ran = 0;
	conc_epoch_stats st;
	holder h = {.d = d};
	pthread_t t;
	conc_test_watchdog(__func__, 60);
	start_until(&t, hold_pinned, &h, &h.pinned);
	/* Retired while h is pinned: none may run, however hard we push. */
	enum { N = 5000 };
	for (int i = 0; i < N; i++) {
		conc_epoch_pin(d);
		conc_epoch_retire(d, &obj_new(&ran)->node, obj_free);
		conc_epoch_unpin(d);
	}
	for (int i = 0; i < 100; i++)
		conc_epoch_flush(d);
	assert_int_equal(atomic_load(&ran), 0);
	conc_epoch_get_stats(d, &st);
	assert_int_equal(st.pending, N);
	assert_int_equal(st.registered, 2);
	assert_true(st.stalling >= 1); /* the stall is visible */
	assert_int_equal(conc_epoch_destroy(d), EBUSY);
	atomic_store(&h.release, 1);
	pthread_join(t, NULL);
	assert_int_equal(conc_epoch_barrier(d), 0);
	assert_int_equal(atomic_load(&ran), N);
	conc_epoch_get_stats(d, &st);
	assert_int_equal(st.stalling, 0);
	assert_int_equal(st.registered, 1); /* h's record went with its thread */
	conc_test_watchdog_off();
	assert_int_equal(conc_epoch_destroy(d), 0);
}

/* ---- thread exit with pending retirements ----------------------------- */

typedef struct exiter {
	conc_epoch *d;
	atomic_int *ran;
	int n;
} exiter;

static void *retire_and_exit(void *arg)
{
	exiter *x = arg;
	for (int i = 0; i < x->n; i++) {
		conc_epoch_pin(x->d);
		conc_epoch_retire(x->d, &obj_new(x->ran)->node, obj_free);
		conc_epoch_unpin(x->d);
	}
	return NULL; /* exits with its bags still full */
}

static void test_epoch_thread_exit_hands_over(void **state)
{
	(void)state;
	conc_epoch *d = new_domain();
	atomic_int ran = 0;
	conc_epoch_stats st;
	conc_epoch_pin(d); /* keeps everything pending while threads come and go */
	exiter xs[8];
	for (int i = 0; i < 8; i++)
		xs[i] = (exiter){d, &ran, 300};
	assert_int_equal(conc_test_run_threads(8, retire_and_exit, xs, sizeof xs[0]), 0);
	conc_epoch_get_stats(d, &st);
	assert_int_equal(st.registered, 1);       /* only us */
	assert_int_equal(st.retired, 8 * 300);   /* nothing lost */
	assert_int_equal(atomic_load(&ran), 0);  /* nothing run early */
	conc_epoch_unpin(d);
	assert_int_equal(conc_epoch_barrier(d), 0);
	assert_int_equal(atomic_load(&ran), 8 * 300);

	/* 1000 short-lived threads registering and exiting leave no record. */
	exiter one = {d, &ran, 2};
	for (int i = 0; i < 1000 / 8; i++)
		assert_int_equal(conc_test_run_threads(8, retire_and_exit, (exiter[8]){one, one, one, one, one, one, one, one}, sizeof one), 0);
	assert_int_equal(conc_epoch_barrier(d), 0);
	conc_epoch_get_stats(d, &st);
	assert_int_equal(st.registered, 1);
	assert_int_equal(st.pending, 0);
	assert_int_equal(atomic_load(&ran), 8 * 300 + 1000 * 2);
	assert_int_equal(conc_epoch_destroy(d), 0);
}

/* destroy reaches callbacks held by a live thread that went idle, and the
 * thread, exiting later, never touches the freed domain (ASan checks). */
typedef struct idler {
	conc_epoch *d;
	atomic_int *ran;
	atomic_int retired, go_exit;
} idler;

static void *retire_then_idle(void *arg)
{
	idler *x = arg;
	for (int i = 0; i < 50; i++)
		conc_epoch_retire(x->d, &obj_new(x->ran)->node, obj_free);
	atomic_store(&x->retired, 1);
	while (!atomic_load(&x->go_exit))
		sched_yield();
	return NULL;
}

/* Start an idler on d and wait until its 50 nodes are retired. */
static void idler_start(pthread_t *t, idler *x, conc_epoch *d, atomic_int *ran)
{
	*x = (idler){.d = d, .ran = ran};
	start_until(t, retire_then_idle, x, &x->retired);
}

/* Let it exit and join it. */
static void idler_stop(pthread_t t, idler *x)
{
	atomic_store(&x->go_exit, 1);
	pthread_join(t, NULL);
}

static void test_epoch_destroy_reaches_idle_threads(void **state)
{
	(void)state;
	conc_epoch *d = new_domain();
	atomic_int ran = 0;
	idler x;
	pthread_t t;
	conc_test_watchdog(__func__, 60);
	idler_start(&t, &x, d, &ran);
	/* barrier reaches the idle thread's bags too */
	assert_int_equal(conc_epoch_barrier(d), 0);
	assert_int_equal(atomic_load(&ran), 50);
	idler_stop(t, &x);

	idler_start(&t, &x, d, &ran);
	assert_int_equal(conc_epoch_destroy(d), 0);
	assert_int_equal(atomic_load(&ran), 100);
	idler_stop(t, &x);
	conc_test_watchdog_off();
}

/*
 * Barrier steals from owners that are retiring right now (the bag
 * handshake of src/epoch/epoch.c): every node retired before a barrier (a
 * retirer's published count, read before the call) has run when it
 * returns, and no node ever runs twice - also through help_others, which
 * takes the long-due bags of unpinned retirers after an advance.
 */
enum { RACE_T = 2, RACE_N = 60000 };

typedef struct race_node {
	conc_epoch_node node;
	atomic_int ran;
} race_node;

typedef struct racer {
	conc_epoch *d;
	race_node *nodes;
	atomic_long done; /* nodes retired so far (release) */
} racer;

static void race_run(conc_epoch_node *n)
{
	atomic_fetch_add_explicit(&((race_node *)n)->ran, 1, memory_order_relaxed);
}

static void *race_retire(void *arg)
{
	racer *x = arg;
	for (long i = 0; i < RACE_N; i++) {
		conc_epoch_retire(x->d, &x->nodes[i].node, race_run);
		atomic_store_explicit(&x->done, i + 1, memory_order_release);
		if (i % 4096 == 0)
			sched_yield(); /* let the barrier catch owners mid-bag */
	}
	return NULL;
}

static void test_epoch_barrier_races_retirers(void **state)
{
	(void)state;
	conc_epoch *d = new_domain();
	racer x[RACE_T];
	pthread_t t[RACE_T];
	conc_test_watchdog(__func__, 120);
	for (int i = 0; i < RACE_T; i++) {
		x[i].d = d;
		x[i].nodes = calloc(RACE_N, sizeof(race_node));
		assert_non_null(x[i].nodes);
		atomic_init(&x[i].done, 0);
		assert_int_equal(pthread_create(&t[i], NULL, race_retire, &x[i]), 0);
	}
	long bad = 0, barriers = 0;
	for (;;) {
		long seen[RACE_T];
		bool all = true;
		for (int i = 0; i < RACE_T; i++) {
			seen[i] = atomic_load_explicit(&x[i].done, memory_order_acquire);
			all = all && seen[i] == RACE_N;
		}
		assert_int_equal(conc_epoch_barrier(d), 0);
		barriers++;
		for (int i = 0; i < RACE_T; i++)
			for (long k = 0; k < seen[i]; k++)
				bad += atomic_load_explicit(&x[i].nodes[k].ran,
							    memory_order_relaxed) != 1;
		if (all || bad)
			break;
	}
	for (int i = 0; i < RACE_T; i++)
		pthread_join(t[i], NULL);
	assert_int_equal(conc_epoch_barrier(d), 0);
	for (int i = 0; i < RACE_T; i++) {
		for (long k = 0; k < RACE_N; k++)
			bad += atomic_load_explicit(&x[i].nodes[k].ran, memory_order_relaxed) != 1;
	}
	assert_int_equal(bad, 0);
	assert_true(barriers >= 1);
	conc_epoch_stats st;
	conc_epoch_get_stats(d, &st);
	assert_int_equal(st.retired, (uint64_t)RACE_T * RACE_N);
	assert_int_equal(st.pending, 0);
	assert_int_equal(conc_epoch_destroy(d), 0);
	for (int i = 0; i < RACE_T; i++)
		free(x[i].nodes);
	conc_test_watchdog_off();
}

/* ---- many domains per thread: records, eviction, the shared path ------- */

enum { NDOM = 20 };

typedef struct multi {
	conc_epoch **ds;
	atomic_int pinned, release;
} multi;

static void *pin_all(void *arg)
{
	multi *m = arg;
	for (int i = 0; i < NDOM; i++)
		conc_epoch_pin(m->ds[i]);
	atomic_store(&m->pinned, 1);
	while (!atomic_load(&m->release))
		sched_yield();
	for (int i = NDOM - 1; i >= 0; i--)
		conc_epoch_unpin(m->ds[i]);
	return NULL;
}

static void test_epoch_many_domains(void **state)
{
	(void)state;
	conc_epoch *ds[NDOM];
	atomic_int ran[NDOM];
	for (int i = 0; i < NDOM; i++) {
		assert_int_equal(conc_epoch_create(&ds[i]), 0);
		atomic_init(&ran[i], 0);
	}
	/* This thread: pinned in all 20 at once (beyond its records). */
	for (int i = 0; i < NDOM; i++)
		conc_epoch_pin(ds[i]);
	for (int i = 0; i < NDOM; i++)
		assert_true(conc_epoch_is_pinned(ds[i]));
	for (int i = NDOM - 1; i >= 0; i--)
		conc_epoch_unpin(ds[i]);
	for (int i = 0; i < NDOM; i++)
		assert_false(conc_epoch_is_pinned(ds[i]));

	/* Another thread pinned in all of them holds back every domain's
	 * callbacks, record or shared path alike. */
	multi m = {.ds = ds};
	pthread_t t;
	conc_test_watchdog(__func__, 60);
	start_until(&t, pin_all, &m, &m.pinned);
	for (int i = 0; i < NDOM; i++) {
		for (int k = 0; k < 300; k++)
			conc_epoch_retire(ds[i], &obj_new(&ran[i])->node, obj_free);
		for (int k = 0; k < 10; k++)
			conc_epoch_flush(ds[i]);
	}
	for (int i = 0; i < NDOM; i++)
		assert_int_equal(atomic_load(&ran[i]), 0);
	atomic_store(&m.release, 1);
	pthread_join(t, NULL);
	conc_test_watchdog_off();
	for (int i = 0; i < NDOM; i++) {
		assert_int_equal(conc_epoch_barrier(ds[i]), 0);
		assert_int_equal(atomic_load(&ran[i]), 300);
		assert_int_equal(conc_epoch_destroy(ds[i]), 0);
	}
	/* A domain created at a freed one's address starts clean. */
	conc_epoch *d = new_domain();
	assert_false(conc_epoch_is_pinned(d));
	conc_epoch_pin(d);
	conc_epoch_unpin(d);
	assert_int_equal(conc_epoch_destroy(d), 0);
}

/* ---- readers never see a freed object (stress) ------------------------ */

typedef struct rw {
	conc_epoch *d;
	_Atomic(obj *) shared;
	atomic_int stop;
	atomic_int freed;
	unsigned long writes_each;
	atomic_int writers_left;
} rw;

typedef struct rw_slot {
	rw *w;
	int writer;
	unsigned long reads, poisoned, swaps;
	char pad[64];
} rw_slot;

static void *rw_thread(void *arg)
{
	rw_slot *s = arg;
	rw *w = s->w;
	if (s->writer) {
		for (unsigned long i = 0; i < w->writes_each; i++) {
			obj *n = obj_new(&w->freed);
			n->value = i;
			conc_epoch_pin(w->d);
			/* acq_rel: publishes n's fields; takes the old one's */
			obj *old = atomic_exchange_explicit(&w->shared, n, memory_order_acq_rel);
			conc_epoch_unpin(w->d);
			conc_epoch_retire(w->d, &old->node, obj_free);
			s->swaps++;
		}
		atomic_fetch_sub(&w->writers_left, 1);
		return NULL;
	}
	while (atomic_load_explicit(&w->writers_left, memory_order_relaxed) > 0) {
		conc_epoch_pin(w->d);
		obj *o = atomic_load_explicit(&w->shared, memory_order_acquire);
		/* Read the object a few times while pinned: it must stay live. */
		for (int k = 0; k < 4; k++)
			if (atomic_load_explicit(&o->tag, memory_order_relaxed) != LIVE)
				s->poisoned++;
		conc_epoch_unpin(w->d);
		s->reads++;
	}
	return NULL;
}

static void run_rw(unsigned readers, unsigned writers, unsigned long writes_each)
{
	conc_epoch *d = new_domain();
	rw w = {.d = d, .writes_each = writes_each};
	atomic_init(&w.shared, obj_new(&w.freed));
	atomic_init(&w.writers_left, (int)writers);
	unsigned n = readers + writers;
	rw_slot *slots = calloc(n, sizeof *slots);
	for (unsigned i = 0; i < n; i++) {
		slots[i].w = &w;
		slots[i].writer = i < writers;
	}
	conc_test_watchdog("epoch reader/writer stress", 240);
	assert_int_equal(conc_test_run_threads(n, rw_thread, slots, sizeof *slots), 0);
	unsigned long poisoned = 0, swaps = 0;
	for (unsigned i = 0; i < n; i++) {
		poisoned += slots[i].poisoned;
		swaps += slots[i].swaps;
	}
	assert_int_equal(poisoned, 0);
	assert_int_equal(swaps, writers * writes_each);

	/* Bounded garbage: with everyone gone, a barrier leaves nothing. */
	assert_int_equal(conc_epoch_barrier(d), 0);
	assert_int_equal(atomic_load(&w.freed), (int)swaps);
	obj_free(&atomic_load(&w.shared)->node);
	conc_test_watchdog_off();
	conc_epoch_stats st;
	conc_epoch_get_stats(d, &st);
	assert_int_equal(st.pending, 0);
	assert_int_equal(st.retired, swaps);
	free(slots);
	assert_int_equal(conc_epoch_destroy(d), 0);
}

static void test_epoch_readers_never_see_freed(void **state)
{
	(void)state;
	run_rw(3, 1, conc_test_iters(200000, 20));
}

static void test_epoch_readers_oversubscribed(void **state)
{
	(void)state;
	run_rw(12, 4, conc_test_iters(50000, 20));
}

/* ---- bounded garbage while threads make progress ---------------------- */

/*
 * Garbage stays bounded while threads make progress.  Two threads retire in
 * lockstep rounds of BAG objects each (short pinned sections, as container
 * operations have) and meet at a barrier after every round, where one of
 * them samples stats.pending while both are unpinned.  Rounds keep the test
 * independent of how the machine schedules the threads: a thread preempted
 * while pinned only delays its round (EBR's known limit - a pinned thread
 * holds reclamation back - is not what this test is about).
 */
enum { CHURN_T = 2, BAG = 64 };

typedef struct churn {
	conc_epoch *d;
	unsigned long rounds;
	atomic_int *freed;
	pthread_barrier_t *meet;
	unsigned long *samples; /* thread 0 only */
} churn;

static void *churn_thread(void *arg)
{
	churn *c = arg;
	for (unsigned long r = 0; r < c->rounds; r++) {
		for (int i = 0; i < BAG; i++) {
			obj *o = obj_new(c->freed);
			conc_epoch_pin(c->d);
			atomic_store_explicit(&o->tag, LIVE, memory_order_relaxed);
			conc_epoch_unpin(c->d);
			conc_epoch_retire(c->d, &o->node, obj_free);
		}
		pthread_barrier_wait(c->meet);
		if (c->samples) {
			conc_epoch_stats st;
			conc_epoch_get_stats(c->d, &st);
			c->samples[r] = st.pending;
		}
		pthread_barrier_wait(c->meet);
	}
	return NULL;
}

static int cmp_ulong(const void *a, const void *b)
{
	unsigned long x = *(const unsigned long *)a, y = *(const unsigned long *)b;
	return (x > y) - (x < y);
}

static void test_epoch_garbage_stays_bounded(void **state)
{
	(void)state;
	conc_epoch *d = new_domain();
	atomic_int freed = 0;
	pthread_barrier_t meet;
	pthread_barrier_init(&meet, NULL, CHURN_T);
	unsigned long rounds = conc_test_iters(300000, 10) / BAG;
	unsigned long *samples = calloc(rounds, sizeof *samples);
	churn cs[CHURN_T];
	for (int i = 0; i < CHURN_T; i++)
		cs[i] = (churn){d, rounds, &freed, &meet, i == 0 ? samples : NULL};
	conc_test_watchdog(__func__, 240);
	assert_int_equal(conc_test_run_threads(CHURN_T, churn_thread, cs, sizeof cs[0]), 0);
	conc_test_watchdog_off();
	pthread_barrier_destroy(&meet);
	qsort(samples, rounds, sizeof *samples, cmp_ulong);
	unsigned long p50 = samples[rounds / 2], p90 = samples[rounds * 9 / 10];
	unsigned long peak = samples[rounds - 1];
	/* A thread tries to advance at least every ADVANCE_MAX retires (more
	 * often when the domain has not advanced for a while) and a node waits
	 * GRACE advances: the peak must stay within GRACE x ADVANCE_MAX a
	 * thread, and the median within one ADVANCE_MAX.  Without reclamation
	 * pending would climb to rounds x BAG x threads. */
	const unsigned long bag = CONC__EPOCH_ADVANCE_MAX;
	print_message("epoch: %lu rounds of %d retires x %d threads: pending p50 %lu, "
		      "p90 %lu, peak %lu (bounds: p50 %lu, peak %lu; unreclaimed would reach %lu)\n",
		      rounds, BAG, CHURN_T, p50, p90, peak, bag * CHURN_T,
		      CONC__EPOCH_GRACE * bag * CHURN_T, rounds * BAG * CHURN_T);
	assert_true(p50 <= bag * CHURN_T);
	assert_true(peak <= CONC__EPOCH_GRACE * bag * CHURN_T);
	free(samples);
	assert_int_equal(conc_epoch_barrier(d), 0);
	assert_int_equal(atomic_load(&freed), (int)(rounds * BAG * CHURN_T));
	assert_int_equal(conc_epoch_destroy(d), 0);
}

/* ---- fork: the child goes on without the parent's other threads ------- */

static void test_epoch_fork_child_continues(void **state)
{
	(void)state;
	conc_epoch *d = new_domain();
	atomic_int ran = 0;
	holder h = {.d = d};
	pthread_t t;
	conc_test_watchdog(__func__, 60);
	start_until(&t, hold_pinned, &h, &h.pinned);
	conc_epoch_retire(d, &obj_new(&ran)->node, obj_free);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		/* The pinned thread does not exist here: barrier must not wait
		 * for it, and both callbacks (retired before and after the
		 * fork) must run.  Exit status tells the parent. */
		alarm(30);
		conc_epoch_retire(d, &obj_new(&ran)->node, obj_free);
		conc_epoch_stats st;
		conc_epoch_get_stats(d, &st);
		int ok = st.registered == 1 && conc_epoch_barrier(d) == 0 &&
			 atomic_load(&ran) == 2 && conc_epoch_destroy(d) == 0 &&
			 conc_epoch_barrier(conc_epoch_global()) == 0;
		_exit(ok ? 0 : 1);
	}
	int status = 0;
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
	/* The parent is untouched: its pinned thread still holds d back. */
	conc_epoch_flush(d);
	assert_int_equal(atomic_load(&ran), 0);
	atomic_store(&h.release, 1);
	pthread_join(t, NULL);
	assert_int_equal(conc_epoch_barrier(d), 0);
	assert_int_equal(atomic_load(&ran), 1);
	conc_test_watchdog_off();
	assert_int_equal(conc_epoch_destroy(d), 0);
}

/* NULL domains do nothing (documented), rather than corrupt a record. */
static void test_epoch_null_is_harmless(void **state)
{
	(void)state;
	conc_epoch_node n;
	conc_epoch_pin(NULL);
	conc_epoch_unpin(NULL);
	conc_epoch_retire(NULL, &n, NULL);
	assert_false(conc_epoch_is_pinned(NULL));
	assert_int_equal(conc_epoch_barrier(NULL), EINVAL);
	conc_epoch_flush(NULL);
	conc_epoch_stats st = {0};
	conc_epoch_get_stats(NULL, &st);
	assert_int_equal(st.registered, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_epoch_global_is_stable),
		cmocka_unit_test(test_epoch_nesting),
		cmocka_unit_test(test_epoch_register_idempotent),
		cmocka_unit_test(test_epoch_retire_runs_once_after_barrier),
		cmocka_unit_test(test_epoch_defer),
#if defined(CONC_FAULT_HOOKS) && CONC_FAULT_HOOKS
		cmocka_unit_test(test_epoch_create_enomem),
#endif
		cmocka_unit_test(test_epoch_callbacks_may_retire),
		cmocka_unit_test(test_epoch_pinned_thread_blocks_callbacks),
		cmocka_unit_test(test_epoch_thread_exit_hands_over),
		cmocka_unit_test(test_epoch_destroy_reaches_idle_threads),
		cmocka_unit_test(test_epoch_barrier_races_retirers),
		cmocka_unit_test(test_epoch_many_domains),
		cmocka_unit_test(test_epoch_readers_never_see_freed),
		cmocka_unit_test(test_epoch_readers_oversubscribed),
		cmocka_unit_test(test_epoch_garbage_stays_bounded),
		cmocka_unit_test(test_epoch_fork_child_continues),
		cmocka_unit_test(test_epoch_null_is_harmless),
	};
	return cmocka_run_group_tests_name("epoch", tests, NULL, NULL);
}
