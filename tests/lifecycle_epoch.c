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

enum { RECS = 8 }; /* src/epoch.c's REC_SLOTS: records per thread */

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

/* A thread that pins d, says so, and stays pinned until released. */
typedef struct pinner {
	conc_epoch *d;
	atomic_int pinned, release;
	pthread_t t;
} pinner;

static void *pinner_main(void *arg)
{
	pinner *p = arg;
	conc_epoch_pin(p->d);
	atomic_store(&p->pinned, 1);
	while (!atomic_load(&p->release))
		sched_yield();
	conc_epoch_unpin(p->d);
	return NULL;
}

static void pinner_start(pinner *p, conc_epoch *d)
{
	p->d = d;
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

/* A node that records when its callback ran. */
typedef struct flagged {
	conc_epoch_node node;
	atomic_int *ran;
} flagged;

static void flagged_run(conc_epoch_node *n)
{
	flagged *f = (flagged *)n;
	atomic_fetch_add(f->ran, 1);
	free(f);
}

static flagged *flagged_new(atomic_int *ran)
{
	flagged *f = calloc(1, sizeof *f);
	assert_non_null(f);
	f->ran = ran;
	return f;
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
	for (int i = 0; i < RECS; i++) {
		mine[i] = make_domain();
		evictors[i] = make_domain();
		/* far ahead, so that a node judged by one of them is due */
		advance_to(evictors[i], 64);
	}
	for (int i = 0; i < RECS; i++) { /* a record in each of mine */
		conc_epoch_pin(mine[i]);
		conc_epoch_unpin(mine[i]);
	}
	conc_epoch *d0 = mine[0];
	uint64_t t0 = epoch_of(d0);
	conc_epoch_node *trigger = calloc(1, sizeof *trigger);
	assert_non_null(trigger);
	conc_epoch_retire(d0, trigger, evict_all); /* bag t0 & 3 */
	advance_to(d0, t0 + 4);                     /* the same bag again, due */

	pinner reader;
	pinner_start(&reader, d0);
	atomic_int ran = 0;
	/* tagged t0 + 4: reuses the trigger's bag, whose callback evicts */
	conc_epoch_retire(d0, &flagged_new(&ran)->node, flagged_run);
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
static atomic_int flush_ran;

static void evict_and_retire(conc_epoch_node *n)
{
	evict_all(n);
	for (int i = 0; i < RECS; i++)
		conc_epoch_retire(evictors[i], &flagged_new(&flush_ran)->node, flagged_run);
}

typedef struct multi_pinner {
	conc_epoch **ds;
	int n;
	atomic_int pinned, release;
} multi_pinner;

static void *multi_pinner_main(void *arg)
{
	multi_pinner *p = arg;
	for (int i = 0; i < p->n; i++)
		conc_epoch_pin(p->ds[i]);
	atomic_store(&p->pinned, 1);
	while (!atomic_load(&p->release))
		sched_yield();
	for (int i = p->n - 1; i >= 0; i--)
		conc_epoch_unpin(p->ds[i]);
	return NULL;
}

static void test_lifecycle_callback_evicts_flush_record(void **state)
{
	(void)state;
	conc_test_watchdog(__func__, 120);
	conc_epoch *mine[RECS];
	for (int i = 0; i < RECS; i++) {
		mine[i] = make_domain();
		evictors[i] = make_domain();
		/* the nodes retired into them go to bag 3, after the
		 * trigger's bag 0 in flush's walk, tagged so low that d0's
		 * epoch would find them due */
		advance_to(evictors[i], 3);
	}
	for (int i = 0; i < RECS; i++) {
		conc_epoch_pin(mine[i]);
		conc_epoch_unpin(mine[i]);
	}
	conc_epoch *d0 = mine[0];
	atomic_init(&flush_ran, 0);
	advance_to(d0, 8);
	uint64_t t0 = epoch_of(d0);
	assert_int_equal(t0 & 3, 0);
	conc_epoch_node *trigger = calloc(1, sizeof *trigger);
	assert_non_null(trigger);
	conc_epoch_retire(d0, trigger, evict_and_retire);
	advance_to(d0, t0 + 3); /* the trigger is due */

	multi_pinner reader = {.ds = evictors, .n = RECS};
	pthread_t rt;
	assert_int_equal(pthread_create(&rt, NULL, multi_pinner_main, &reader), 0);
	while (!atomic_load(&reader.pinned))
		sched_yield();
	conc_epoch_flush(d0);
	advance_to(d0, t0 + 80);
	for (int k = 0; k < 4; k++)
		conc_epoch_flush(d0);
	assert_int_equal(atomic_load(&flush_ran), 0); /* the reader holds them */
	atomic_store(&reader.release, 1);
	assert_int_equal(pthread_join(rt, NULL), 0);
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
		atomic_int ran = 0;
		conc_epoch_retire(ds[i], &flagged_new(&ran)->node, flagged_run);
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
	conc_epoch_unpin(ds[N]); /* unbalanced: must change nothing */
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
		atomic_int ran = 0;
		conc_epoch_retire(u.next, &flagged_new(&ran)->node, flagged_run);
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

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_lifecycle_callback_evicts_retire_record),
		cmocka_unit_test(test_lifecycle_callback_evicts_flush_record),
		cmocka_unit_test(test_lifecycle_exit_pinned_shared_path),
		cmocka_unit_test(test_lifecycle_shared_path_per_domain),
		cmocka_unit_test(test_lifecycle_destroy_hands_record_back),
	};
	return cmocka_run_group_tests_name("lifecycle-epoch", tests, NULL, NULL);
}
