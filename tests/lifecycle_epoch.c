/*
 * lifecycle_epoch.c - the epoch core where its features meet: many domains
 * per thread (records, eviction, the shared path), callbacks that call back
 * into the library, threads that exit in every state, and destroy beside
 * other domains in use.
 *
 * The first tests are the regressions of the lifecycle review, one per
 * fault; the enumeration after them runs every combination of a small
 * table instead of sampling it, and prints its counts.  Runs twice from
 * meson, like test_epoch: membarrier and CONC_EPOCH_FENCES=1.
 */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

#include "conc/epoch.h"

enum { RECS = 8 }; /* src/epoch/epoch.c's REC_SLOTS: records per thread */

/* ---- helpers ---------------------------------------------------------- */

static conc_epoch *make_domain(void)
{
	conc_epoch *d = NULL;
	assert_int_equal(conc_epoch_create(&d), 0);
	return d;
}

static uint64_t epoch_of(conc_epoch *d)
{
	conc_epoch_stats st;
	conc_epoch_get_stats(d, &st);
	return st.epoch;
}

/* Advance d to at least `target` from another thread: its flush advances
 * and collects the orphans and its own bags (it has none), never ours. */
typedef struct advancer {
	conc_epoch *d;
	uint64_t target;
} advancer;

static void *advance_main(void *arg)
{
	advancer *a = arg;
	while (epoch_of(a->d) < a->target)
		conc_epoch_flush(a->d);
	return NULL;
}

static void advance_to(conc_epoch *d, uint64_t target)
{
	advancer a = {d, target};
	pthread_t t;
	assert_int_equal(pthread_create(&t, NULL, advance_main, &a), 0);
	assert_int_equal(pthread_join(t, NULL), 0);
	assert_true(epoch_of(d) >= target);
}

/* A thread that pins n domains, says so, and stays pinned until released. */
typedef struct pinner {
	conc_epoch **ds;
	int n;
	atomic_int pinned, release;
	pthread_t t;
} pinner;

static void *pinner_main(void *arg)
{
	pinner *p = arg;
	for (int i = 0; i < p->n; i++)
		conc_epoch_pin(p->ds[i]);
	atomic_store(&p->pinned, 1);
	while (!atomic_load(&p->release))
		sched_yield();
	for (int i = p->n - 1; i >= 0; i--)
		conc_epoch_unpin(p->ds[i]);
	return NULL;
}

static void pinner_start(pinner *p, conc_epoch **ds, int n)
{
	p->ds = ds;
	p->n = n;
	atomic_init(&p->pinned, 0);
	atomic_init(&p->release, 0);
	assert_int_equal(pthread_create(&p->t, NULL, pinner_main, p), 0);
	while (!atomic_load(&p->pinned))
		sched_yield();
}

static void pinner_stop(pinner *p)
{
	atomic_store(&p->release, 1);
	assert_int_equal(pthread_join(p->t, NULL), 0);
}

/* A node that counts its callback's runs. */
typedef struct counted {
	conc_epoch_node node;
	atomic_ulong *ran;
} counted;

static void counted_run(conc_epoch_node *n)
{
	counted *c = (counted *)n;
	atomic_fetch_add(c->ran, 1);
	free(c);
}

static counted *counted_new(atomic_ulong *ran)
{
	counted *c = calloc(1, sizeof *c);
	if (!c)
		abort(); /* test memory; worker threads cannot use cmocka asserts */
	c->ran = ran;
	return c;
}

/* ---- fault 1: a callback that pins other domains evicts the record ---- */

/* The domains the evicting callback pins: as many as a thread has
 * records, so that every unpinned record of the thread is a victim. */
static conc_epoch *evictors[RECS];

static void evict_all(conc_epoch_node *n)
{
	for (int i = 0; i < RECS; i++) {
		conc_epoch_pin(evictors[i]);
		conc_epoch_unpin(evictors[i]);
	}
	free(n);
}

/* RECS domains of mine, each with a record of this thread, and RECS
 * evictors advanced to `evictor_epoch`. */
static void make_mine_and_evictors(conc_epoch **mine, uint64_t evictor_epoch)
{
	for (int i = 0; i < RECS; i++) {
		mine[i] = make_domain();
		evictors[i] = make_domain();
		advance_to(evictors[i], evictor_epoch);
	}
	for (int i = 0; i < RECS; i++) { /* a record in each of mine */
		conc_epoch_pin(mine[i]);
		conc_epoch_unpin(mine[i]);
	}
}

/*
 * Retire reuses a bag whose old nodes are due and runs them first; one of
 * them pins RECS other domains, which evicts the very record the retire is
 * filling.  The retired node must still be judged by its own domain: while
 * a reader pinned in that domain before the retire stays pinned, the node's
 * callback must not run, however much the other domains advance.
 */
static void test_lifecycle_callback_evicts_retire_record(void **state)
{
	(void)state;
	conc_test_watchdog(__func__, 120);
	conc_epoch *mine[RECS];
	/* evictors far ahead, so that a node judged by one of them is due */
	make_mine_and_evictors(mine, 64);
	conc_epoch *d0 = mine[0];
	uint64_t t0 = epoch_of(d0);
	conc_epoch_node *trigger = calloc(1, sizeof *trigger);
	assert_non_null(trigger);
	conc_epoch_retire(d0, trigger, evict_all); /* bag t0 & 3 */
	advance_to(d0, t0 + 4);                     /* the same bag again, due */

	pinner reader;
	pinner_start(&reader, &d0, 1);
	atomic_ulong ran = 0;
	/* tagged t0 + 4: reuses the trigger's bag, whose callback evicts */
	conc_epoch_retire(d0, &counted_new(&ran)->node, counted_run);
	for (int k = 0; k < 8; k++)
		for (int i = 0; i < RECS; i++)
			conc_epoch_flush(evictors[i]);
	assert_int_equal(atomic_load(&ran), 0); /* the reader is still pinned */
	pinner_stop(&reader);
	assert_int_equal(conc_epoch_barrier(d0), 0);
	assert_int_equal(atomic_load(&ran), 1); /* ran, once, in its domain */
	for (int i = 0; i < RECS; i++) {
		assert_int_equal(conc_epoch_destroy(mine[i]), 0);
		assert_int_equal(conc_epoch_destroy(evictors[i]), 0);
	}
	conc_test_watchdog_off();
}

/*
 * The same through flush: flush runs the due bags of the thread's record
 * one by one; the callback in the first evicts the record and retires one
 * node into each evicting domain, so that one lands in the record flush is
 * still walking, in a later bag.  Those nodes belong to their own domains:
 * a reader pinned in all of them keeps them back however far d0 goes, and
 * barriers on those domains run them.
 */
static atomic_ulong flush_ran;

static void evict_and_retire(conc_epoch_node *n)
{
	evict_all(n);
	for (int i = 0; i < RECS; i++)
		conc_epoch_retire(evictors[i], &counted_new(&flush_ran)->node, counted_run);
}

static void test_lifecycle_callback_evicts_flush_record(void **state)
{
	(void)state;
	conc_test_watchdog(__func__, 120);
	conc_epoch *mine[RECS];
	/* the nodes retired into the evictors go to bag 3, after the
	 * trigger's bag 0 in flush's walk, tagged so low that d0's epoch
	 * would find them due */
	make_mine_and_evictors(mine, 3);
	conc_epoch *d0 = mine[0];
	atomic_init(&flush_ran, 0);
	advance_to(d0, 8);
	uint64_t t0 = epoch_of(d0);
	assert_int_equal(t0 & 3, 0);
	conc_epoch_node *trigger = calloc(1, sizeof *trigger);
	assert_non_null(trigger);
	conc_epoch_retire(d0, trigger, evict_and_retire);
	advance_to(d0, t0 + 3); /* the trigger is due */

	pinner reader;
	pinner_start(&reader, evictors, RECS);
	conc_epoch_flush(d0);
	advance_to(d0, t0 + 80);
	for (int k = 0; k < 4; k++)
		conc_epoch_flush(d0);
	assert_int_equal(atomic_load(&flush_ran), 0); /* the reader holds them */
	pinner_stop(&reader);
	for (int i = 0; i < RECS; i++)
		assert_int_equal(conc_epoch_barrier(evictors[i]), 0);
	assert_int_equal(atomic_load(&flush_ran), RECS);
	for (int i = 0; i < RECS; i++) {
		assert_int_equal(conc_epoch_destroy(mine[i]), 0);
		assert_int_equal(conc_epoch_destroy(evictors[i]), 0);
	}
	conc_test_watchdog_off();
}

/* ---- fault 2: the shared path and thread exit ------------------------- */

/* A thread that pins n domains (nested twice in the last), then exits
 * without unpinning any. */
typedef struct exit_pinned {
	conc_epoch **ds;
	int n;
} exit_pinned;

static void *pin_and_exit(void *arg)
{
	exit_pinned *x = arg;
	for (int i = 0; i < x->n; i++)
		conc_epoch_pin(x->ds[i]);
	conc_epoch_pin(x->ds[x->n - 1]);
	return NULL;
}

/*
 * A thread pinned in more domains than it has records exits pinned: the
 * domains beyond its records were pinned through the shared path.  Every
 * domain must advance again, its barrier return and its destroy succeed.
 * 9 domains: one past the records; 80: past every per-thread slot.
 */
static void exit_pinned_in(int n)
{
	conc_epoch **ds = calloc((size_t)n, sizeof *ds);
	assert_non_null(ds);
	for (int i = 0; i < n; i++)
		ds[i] = make_domain();
	exit_pinned x = {ds, n};
	pthread_t t;
	assert_int_equal(pthread_create(&t, NULL, pin_and_exit, &x), 0);
	assert_int_equal(pthread_join(t, NULL), 0);
	for (int i = 0; i < n; i++) {
		atomic_ulong ran = 0;
		conc_epoch_retire(ds[i], &counted_new(&ran)->node, counted_run);
		conc_epoch_stats st;
		conc_epoch_get_stats(ds[i], &st);
		assert_int_equal(st.stalling, 0);
		assert_int_equal(conc_epoch_barrier(ds[i]), 0);
		assert_int_equal(atomic_load(&ran), 1);
	}
	for (int i = 0; i < n; i++)
		assert_int_equal(conc_epoch_destroy(ds[i]), 0);
	free(ds);
}

static void test_lifecycle_exit_pinned_shared_path(void **state)
{
	(void)state;
	conc_test_watchdog(__func__, 120);
	exit_pinned_in(RECS + 1);
	exit_pinned_in(80);
	conc_test_watchdog_off();
}

/*
 * Pins through the shared path belong to their domain: a thread pinned in
 * 17 domains is not pinned in an 18th (is_pinned false, barrier 0), and an
 * unbalanced unpin of a domain it never pinned changes no other domain
 * (every destroy succeeds once the real pins are undone).
 */
static void test_lifecycle_shared_path_per_domain(void **state)
{
	(void)state;
	conc_test_watchdog(__func__, 120);
	enum { N = 17 };
	conc_epoch *ds[N + 1];
	for (int i = 0; i <= N; i++)
		ds[i] = make_domain();
	for (int i = 0; i < N; i++)
		conc_epoch_pin(ds[i]);
	for (int i = 0; i < N; i++)
		assert_true(conc_epoch_is_pinned(ds[i]));
	assert_false(conc_epoch_is_pinned(ds[N]));
	assert_int_equal(conc_epoch_barrier(ds[N]), 0);
#ifndef CONC_DEBUG_CHECKS
	/* unbalanced: must change nothing (debug-checks builds report it
	 * and abort instead: test_debug.c) */
	conc_epoch_unpin(ds[N]);
#endif
	assert_int_equal(conc_epoch_destroy(ds[N - 1]), EBUSY);
	for (int i = N - 1; i >= 0; i--)
		conc_epoch_unpin(ds[i]);
	for (int i = 0; i <= N; i++) {
		assert_false(conc_epoch_is_pinned(ds[i]));
		assert_int_equal(conc_epoch_barrier(ds[i]), 0);
		assert_int_equal(conc_epoch_destroy(ds[i]), 0);
	}
	conc_test_watchdog_off();
}

/* ---- fault 4: a destroy hands a live thread's record back ------------ */

/*
 * conc_epoch_destroy drops the records other live threads hold in the
 * domain; the owner later finds the slot free, without a lock, and links
 * it into another domain.  The drop's writes must happen-before the
 * reuse.  The owner learns of the destroy through a relaxed flag, so
 * nothing but the slot's own handover orders the two: ThreadSanitizer
 * reports a race if that handover does not synchronise; on every build
 * the reused record must work in its new domain (a reader it holds keeps
 * a node back; the barrier runs it).
 */
typedef struct reuser {
	conc_epoch *doomed, *next;
	conc_epoch *fill[RECS - 1];
	atomic_int registered, destroyed, reused, release;
	int reg_err;
} reuser;

static void *reuser_main(void *arg)
{
	reuser *u = arg;
	for (int i = 0; i < RECS - 1; i++)
		conc_epoch_pin(u->fill[i]); /* pinned: never evicted */
	conc_epoch_pin(u->doomed);
	conc_epoch_unpin(u->doomed);
	atomic_store(&u->registered, 1);
	/* relaxed: on purpose no synchronisation with the destroyer */
	while (!atomic_load_explicit(&u->destroyed, memory_order_relaxed))
		sched_yield();
	u->reg_err = conc_epoch_register(u->next); /* the only free slot */
	conc_epoch_pin(u->next);
	atomic_store(&u->reused, 1);
	while (!atomic_load(&u->release))
		sched_yield();
	conc_epoch_unpin(u->next);
	for (int i = RECS - 2; i >= 0; i--)
		conc_epoch_unpin(u->fill[i]);
	return NULL;
}

static void test_lifecycle_destroy_hands_record_back(void **state)
{
	(void)state;
	conc_test_watchdog(__func__, 120);
	for (int round = 0; round < 20; round++) {
		reuser u = {0};
		u.doomed = make_domain();
		u.next = make_domain();
		for (int i = 0; i < RECS - 1; i++)
			u.fill[i] = make_domain();
		pthread_t t;
		assert_int_equal(pthread_create(&t, NULL, reuser_main, &u), 0);
		while (!atomic_load(&u.registered))
			sched_yield();
		assert_int_equal(conc_epoch_destroy(u.doomed), 0);
		atomic_store_explicit(&u.destroyed, 1, memory_order_relaxed);
		while (!atomic_load(&u.reused))
			sched_yield();
		assert_int_equal(u.reg_err, 0); /* the freed slot was taken */
		atomic_ulong ran = 0;
		conc_epoch_retire(u.next, &counted_new(&ran)->node, counted_run);
		for (int k = 0; k < 8; k++)
			conc_epoch_flush(u.next);
		assert_int_equal(atomic_load(&ran), 0); /* held by the reused record */
		atomic_store(&u.release, 1);
		assert_int_equal(pthread_join(t, NULL), 0);
		assert_int_equal(conc_epoch_barrier(u.next), 0);
		assert_int_equal(atomic_load(&ran), 1);
		assert_int_equal(conc_epoch_destroy(u.next), 0);
		for (int i = 0; i < RECS - 1; i++)
			assert_int_equal(conc_epoch_destroy(u.fill[i]), 0);
	}
	conc_test_watchdog_off();
}

/* ====================================================================== *
 * The enumeration: every combination of a small table, with counts.
 * ====================================================================== */

static atomic_ulong early_frees; /* a reader saw a poisoned object */
static atomic_ulong stalls;      /* a domain that should advance did not */
static unsigned long combinations;

/* ---- records x domains x re-entrant callbacks, under reader stress ---- */

enum cb_kind { CB_NONE, CB_PIN, CB_RETIRE, CB_FLUSH, CB_BARRIER, CB_KINDS };
static const char *const cb_names[CB_KINDS] = {"none", "pin", "retire", "flush", "barrier"};

#define LIVE 0x5a5a5a5au
#define POISON 0xdeaddeadu

/* An object readers reach through a domain's shared pointer.  Its callback
 * poisons it and parks it on a graveyard freed after the run, so that a
 * reader that reached it too early reads POISON (not freed memory). */
typedef struct robj {
	conc_epoch_node node;
	atomic_uint tag;
	struct robj *grave;
	struct world *w;
	unsigned dom;
} robj;

typedef struct world {
	conc_epoch **ds;
	_Atomic(robj *) *cur;
	unsigned n;
	enum cb_kind kind;
	conc_epoch *sink;          /* barrier's target: nothing collects in it in callbacks */
	_Atomic(robj *) graves;
	atomic_ulong ran, fillers_ran, retired;
	atomic_int stop;
	atomic_ulong reads;
} world;


static void robj_run(conc_epoch_node *n)
{
	robj *o = (robj *)n;
	world *w = o->w;
	atomic_store_explicit(&o->tag, POISON, memory_order_relaxed);
	robj *g = atomic_load(&w->graves);
	do
		o->grave = g;
	while (!atomic_compare_exchange_weak(&w->graves, &g, o));
	atomic_fetch_add(&w->ran, 1);
	unsigned next = (o->dom + 1) % w->n;
	switch (w->kind) {
	case CB_PIN: /* every other domain: evicts records when n > RECS */
		for (unsigned i = 0; i < w->n; i++) {
			conc_epoch_pin(w->ds[i]);
			conc_epoch_unpin(w->ds[i]);
		}
		break;
	case CB_RETIRE:
		atomic_fetch_add(&w->retired, 1);
		conc_epoch_retire(w->ds[next], &counted_new(&w->fillers_ran)->node, counted_run);
		break;
	case CB_FLUSH:
		conc_epoch_flush(w->ds[next]);
		break;
	case CB_BARRIER:
		conc_epoch_barrier(w->sink);
		break;
	default:
		break;
	}
}

static robj *robj_new(world *w, unsigned dom)
{
	robj *o = calloc(1, sizeof *o);
	if (!o)
		abort();
	atomic_init(&o->tag, LIVE);
	o->w = w;
	o->dom = dom;
	return o;
}

static void *world_reader(void *arg)
{
	world *w = arg;
	uint64_t seed = (uint64_t)(uintptr_t)&seed | 1;
	unsigned long reads = 0;
	while (!atomic_load_explicit(&w->stop, memory_order_relaxed)) {
		unsigned i = (unsigned)(conc_test_rand(&seed) % w->n);
		unsigned j = (unsigned)(conc_test_rand(&seed) % w->n);
		conc_epoch_pin(w->ds[i]);
		robj *a = atomic_load_explicit(&w->cur[i], memory_order_acquire);
		conc_epoch_pin(w->ds[j]); /* nested, maybe another domain */
		robj *b = atomic_load_explicit(&w->cur[j], memory_order_acquire);
		for (int k = 0; k < 2; k++) {
			if (atomic_load_explicit(&a->tag, memory_order_relaxed) != LIVE ||
			    atomic_load_explicit(&b->tag, memory_order_relaxed) != LIVE)
				atomic_fetch_add(&early_frees, 1);
			if (k == 0 && (reads & 3) == 0)
				sched_yield(); /* a long section now and then */
		}
		conc_epoch_unpin(w->ds[j]);
		conc_epoch_unpin(w->ds[i]);
		reads++;
		/* relaxed: a progress count the writer paces itself by */
		atomic_fetch_add_explicit(&w->reads, 1, memory_order_relaxed);
	}
	return NULL;
}

/* The writer: the thread with n domains.  Each round it pins all n (nested:
 * records, then the shared path past RECS), swaps every domain's object and
 * retires the old one while still pinned, unpins, and now and then flushes. */
static void *world_writer(void *arg)
{
	world *w = arg;
	unsigned long rounds = conc_test_iters(20000, 10) / w->n + 1;
	/* Go on (up to 8x) until the readers overlapped the run: at least a
	 * read per swap round. */
	for (unsigned long r = 0;
	     r < rounds || (r < 8 * rounds &&
			    atomic_load_explicit(&w->reads, memory_order_relaxed) < rounds);
	     r++) {
		for (unsigned i = 0; i < w->n; i++)
			conc_epoch_pin(w->ds[i]);
		for (unsigned i = 0; i < w->n; i++) {
			robj *old = atomic_exchange_explicit(&w->cur[i], robj_new(w, i),
							     memory_order_acq_rel);
			atomic_fetch_add(&w->retired, 1);
			conc_epoch_retire(w->ds[i], &old->node, robj_run);
		}
		for (unsigned i = w->n; i-- > 0;)
			conc_epoch_unpin(w->ds[i]);
		if (r % 16 == 0)
			conc_epoch_flush(w->ds[r % w->n]);
	}
	return NULL;
}

static void run_world(unsigned n, enum cb_kind kind)
{
	world w = {.n = n, .kind = kind};
	w.ds = calloc(n, sizeof *w.ds);
	w.cur = calloc(n, sizeof *w.cur);
	assert_non_null(w.ds);
	assert_non_null(w.cur);
	w.sink = make_domain();
	for (unsigned i = 0; i < n; i++) {
		w.ds[i] = make_domain();
		atomic_init(&w.cur[i], robj_new(&w, i));
	}
	pthread_t readers[2], writer;
	for (int k = 0; k < 2; k++)
		assert_int_equal(pthread_create(&readers[k], NULL, world_reader, &w), 0);
	assert_int_equal(pthread_create(&writer, NULL, world_writer, &w), 0);
	assert_int_equal(pthread_join(writer, NULL), 0);
	atomic_store(&w.stop, 1);
	for (int k = 0; k < 2; k++)
		assert_int_equal(pthread_join(readers[k], NULL), 0);
	/* Every domain advances and its barrier runs what is left. */
	for (unsigned i = 0; i < n; i++) {
		uint64_t e = epoch_of(w.ds[i]);
		for (int k = 0; k < 64 && epoch_of(w.ds[i]) == e; k++)
			conc_epoch_flush(w.ds[i]);
		if (epoch_of(w.ds[i]) == e)
			atomic_fetch_add(&stalls, 1);
	}
	for (int round = 0; round < 3; round++) /* fillers retired by barriers' callbacks */
		for (unsigned i = 0; i < n; i++)
			assert_int_equal(conc_epoch_barrier(w.ds[i]), 0);
	unsigned long retired = atomic_load(&w.retired);
	unsigned long ran = atomic_load(&w.ran) + atomic_load(&w.fillers_ran);
	for (unsigned i = 0; i < n; i++) {
		robj *o = atomic_load(&w.cur[i]);
		free(o);
		assert_int_equal(conc_epoch_destroy(w.ds[i]), 0);
	}
	assert_int_equal(conc_epoch_destroy(w.sink), 0);
	/* Destroy runs whatever the last barriers' callbacks retired. */
	ran = atomic_load(&w.ran) + atomic_load(&w.fillers_ran);
	retired = atomic_load(&w.retired);
	assert_int_equal(ran, retired); /* nothing lost, nothing run twice */
	for (robj *g = atomic_load(&w.graves), *next; g; g = next) {
		next = g->grave;
		free(g);
	}
	free(w.ds);
	free(w.cur);
	combinations++;
	print_message("lifecycle-epoch: domains=%u callback=%s retired=%lu reads=%lu\n", n,
		      cb_names[kind], retired, atomic_load(&w.reads));
}

static void test_lifecycle_domains_x_callbacks(void **state)
{
	(void)state;
	conc_test_watchdog(__func__, 600);
	static const unsigned ns[] = {1, RECS, RECS + 1, 40};
	for (unsigned a = 0; a < sizeof ns / sizeof ns[0]; a++)
		for (int kind = 0; kind < CB_KINDS; kind++)
			run_world(ns[a], (enum cb_kind)kind);
	assert_int_equal(atomic_load(&early_frees), 0);
	assert_int_equal(atomic_load(&stalls), 0);
	conc_test_watchdog_off();
}

/* ---- thread exit in every state --------------------------------------- */

enum {
	EXIT_PINNED = 1,   /* pinned through a record */
	EXIT_SHARED = 2,   /* pinned through the shared path (RECS + 1 domains) */
	EXIT_NESTED = 4,   /* every pin nested three deep */
	EXIT_GARBAGE = 8,  /* retired nodes still in its bags */
	EXIT_DEFERS = 16,  /* deferred calls still pending */
	EXIT_STATES = 32
};

typedef struct exit_case {
	conc_epoch **ds; /* RECS + 1 */
	unsigned flags;
	atomic_ulong *ran;
	unsigned long made;
} exit_case;

static void defer_count(void *arg)
{
	atomic_fetch_add((atomic_ulong *)arg, 1);
}

static void *exit_in_state(void *arg)
{
	exit_case *c = arg;
	unsigned nd = c->flags & EXIT_SHARED ? RECS + 1 : 1;
	unsigned depth = c->flags & EXIT_NESTED ? 3 : 1;
	for (unsigned i = 0; i < nd; i++) {
		conc_epoch_register(c->ds[i]);
		if (c->flags & EXIT_GARBAGE)
			for (int k = 0; k < 10; k++, c->made++)
				conc_epoch_retire(c->ds[i], &counted_new(c->ran)->node, counted_run);
		if (c->flags & EXIT_DEFERS)
			for (int k = 0; k < 10; k++, c->made++)
				if (conc_epoch_defer(c->ds[i], defer_count, c->ran) != 0)
					c->made--;
	}
	if (c->flags & (EXIT_PINNED | EXIT_SHARED))
		for (unsigned i = 0; i < nd; i++)
			for (unsigned k = 0; k < depth; k++)
				conc_epoch_pin(c->ds[i]);
	return NULL; /* exits in that state */
}

static void test_lifecycle_thread_exit_states(void **state)
{
	(void)state;
	conc_test_watchdog(__func__, 300);
	for (unsigned flags = 0; flags < EXIT_STATES; flags++) {
		conc_epoch *ds[RECS + 1];
		for (unsigned i = 0; i <= RECS; i++)
			ds[i] = make_domain();
		atomic_ulong ran = 0;
		exit_case c = {ds, flags, &ran, 0};
		/* A reader pinned in every domain before the thread retires:
		 * nothing may run while it stays. */
		pinner reader;
		pinner_start(&reader, ds, RECS + 1);
		pthread_t t;
		assert_int_equal(pthread_create(&t, NULL, exit_in_state, &c), 0);
		assert_int_equal(pthread_join(t, NULL), 0);
		for (unsigned i = 0; i <= RECS; i++)
			for (int k = 0; k < 4; k++)
				conc_epoch_flush(ds[i]);
		if (atomic_load(&ran) != 0)
			atomic_fetch_add(&early_frees, 1);
		pinner_stop(&reader);
		for (unsigned i = 0; i <= RECS; i++) {
			uint64_t e = epoch_of(ds[i]);
			for (int k = 0; k < 64 && epoch_of(ds[i]) == e; k++)
				conc_epoch_flush(ds[i]);
			if (epoch_of(ds[i]) == e)
				atomic_fetch_add(&stalls, 1);
			assert_int_equal(conc_epoch_barrier(ds[i]), 0);
		}
		assert_int_equal(atomic_load(&ran), c.made);
		for (unsigned i = 0; i <= RECS; i++) {
			conc_epoch_stats st;
			conc_epoch_get_stats(ds[i], &st);
			assert_int_equal(st.stalling, 0);
			assert_int_equal(st.pending, 0);
			assert_int_equal(conc_epoch_destroy(ds[i]), 0);
		}
		combinations++;
	}
	print_message("lifecycle-epoch: exit states=%d\n", EXIT_STATES);
	assert_int_equal(atomic_load(&early_frees), 0);
	assert_int_equal(atomic_load(&stalls), 0);
	conc_test_watchdog_off();
}

/* ---- destroy of one domain while other threads use others ------------- */

/*
 * Bystander threads pin, retire and flush in their own domains all along.
 * Each round main makes a domain x; every bystander registers in it and
 * retires one node there (then never touches it again), so that x holds
 * records of live threads; main destroys x - releasing those records to
 * their owners, who go on with their own domains and later register in
 * the next x, reusing the slot.
 */
typedef struct bystander {
	conc_epoch *own;
	conc_epoch *_Atomic *x;
	atomic_ulong *gen, *acks;
	atomic_ulong *x_ran;
	atomic_int stop;
	atomic_ulong ran;
	unsigned long made;
} bystander;

static void *bystander_main(void *arg)
{
	bystander *b = arg;
	unsigned long seen = 0;
	while (!atomic_load_explicit(&b->stop, memory_order_relaxed)) {
		for (int k = 0; k < 32; k++, b->made++) {
			conc_epoch_pin(b->own);
			conc_epoch_retire(b->own, &counted_new(&b->ran)->node, counted_run);
			conc_epoch_unpin(b->own);
		}
		conc_epoch_flush(b->own);
		unsigned long g = atomic_load(b->gen);
		if (g != seen) {
			seen = g;
			conc_epoch *x = atomic_load(b->x);
			conc_epoch_pin(x);
			conc_epoch_retire(x, &counted_new(b->x_ran)->node, counted_run);
			conc_epoch_unpin(x);
			atomic_fetch_add(b->acks, 1); /* x is not touched again */
		}
	}
	return NULL;
}

static void test_lifecycle_destroy_beside_others(void **state)
{
	(void)state;
	conc_test_watchdog(__func__, 300);
	enum { B = 3 };
	bystander bs[B];
	pthread_t ts[B];
	conc_epoch *_Atomic x = NULL;
	atomic_ulong gen = 0, acks = 0, x_ran = 0;
	for (int i = 0; i < B; i++) {
		memset(&bs[i], 0, sizeof bs[i]);
		bs[i].own = make_domain();
		bs[i].x = &x;
		bs[i].gen = &gen;
		bs[i].acks = &acks;
		bs[i].x_ran = &x_ran;
		assert_int_equal(pthread_create(&ts[i], NULL, bystander_main, &bs[i]), 0);
	}
	unsigned long rounds = conc_test_iters(500, 10);
	for (unsigned long r = 1; r <= rounds; r++) {
		conc_epoch *d = make_domain();
		atomic_store(&x, d);
		atomic_store(&gen, r);
		while (atomic_load(&acks) < r * B)
			sched_yield();
		conc_epoch_stats st;
		conc_epoch_get_stats(d, &st);
		assert_int_equal(st.registered, B); /* live threads' records */
		assert_int_equal(conc_epoch_destroy(d), 0);
		assert_int_equal(atomic_load(&x_ran), r * B);
	}
	for (int i = 0; i < B; i++) {
		atomic_store(&bs[i].stop, 1);
		assert_int_equal(pthread_join(ts[i], NULL), 0);
		assert_int_equal(conc_epoch_barrier(bs[i].own), 0);
		assert_int_equal(atomic_load(&bs[i].ran), bs[i].made);
		assert_int_equal(conc_epoch_destroy(bs[i].own), 0);
	}
	combinations++;
	print_message("lifecycle-epoch: destroy beside others rounds=%lu\n", rounds);
	conc_test_watchdog_off();
}

/* The counts, printed last (the README's test command shows them). */
static void test_lifecycle_counts(void **state)
{
	(void)state;
	print_message("lifecycle-epoch: combinations=%lu early_frees=%lu stalls=%lu hangs=0\n",
		      combinations, atomic_load(&early_frees), atomic_load(&stalls));
	assert_true(combinations >= 4 * CB_KINDS + EXIT_STATES + 1);
	assert_int_equal(atomic_load(&early_frees), 0);
	assert_int_equal(atomic_load(&stalls), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_lifecycle_callback_evicts_retire_record),
		cmocka_unit_test(test_lifecycle_callback_evicts_flush_record),
		cmocka_unit_test(test_lifecycle_exit_pinned_shared_path),
		cmocka_unit_test(test_lifecycle_shared_path_per_domain),
		cmocka_unit_test(test_lifecycle_destroy_hands_record_back),
		cmocka_unit_test(test_lifecycle_domains_x_callbacks),
		cmocka_unit_test(test_lifecycle_thread_exit_states),
		cmocka_unit_test(test_lifecycle_destroy_beside_others),
		cmocka_unit_test(test_lifecycle_counts),
	};
	return cmocka_run_group_tests_name("lifecycle-epoch", tests, NULL, NULL);
}
