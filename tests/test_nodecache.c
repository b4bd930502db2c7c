/*
 * test_nodecache.c - unit suite of the stack's node cache
 * (src/stack/nodecache.h): get/put round trips, the magazine's transitions,
 * the depot between threads, trim, allocation failure, thread exit, the
 * batched retire; and a stress test of the concurrent part (the depot is a
 * spin flag taken by try-lock, not a lock-free structure, so it is checked
 * by a stress test with invariants over the whole run rather than by a
 * Relacy model: N1, no node handed to two owners at once; N4, every spare
 * batch whole; every node got is put back; the depot within DEPOT_MAX).
 *
 * The cache is process-wide; each test attaches as a stack would and
 * detaches at the end (the last detach trims the caller's caches and the
 * depot), so each starts from an empty depot and an empty magazine.
 */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

#include "conc/epoch.h"
#include "base/fault.h"
#include "stack/nodecache.h"

#define MAG CONC__NC_MAG_BATCH
#if defined(CONC_FAULT_HOOKS) && CONC_FAULT_HOOKS
#define HOOKS 1
#else
#define HOOKS 0
#endif

static unsigned depot_batches(void)
{
	return atomic_load_explicit(&conc__nc_depot_hint, memory_order_relaxed);
}

static unsigned chain_len(struct snode *n)
{
	unsigned k = 0;
	for (; n; n = n->next)
		k++;
	return k;
}

static int setup(void **state)
{
	(void)state;
	conc__nc_init();
	conc__nc_attach();
	conc__nc_trim(); /* start empty, whatever an earlier test left */
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	conc__nc_detach(); /* the last one: trims */
	return 0;
}

/* Nodes come out distinct, aligned and writable, and go back LIFO. */
static void test_nodecache_get_put_round_trip(void **state)
{
	(void)state;
	enum { N = 10 };
	struct snode *got[N];
	for (unsigned i = 0; i < N; i++) {
		got[i] = conc__nc_get();
		assert_non_null(got[i]);
		assert_int_equal((uintptr_t)got[i] % 8, 0);
		got[i]->next = NULL;
		got[i]->item = &got[i];
		for (unsigned j = 0; j < i; j++)
			assert_ptr_not_equal(got[i], got[j]);
	}
	for (unsigned i = 0; i < N; i++)
		conc__nc_put(got[i]);
	assert_int_equal(conc__nc_mag.n, N);
	for (unsigned i = N; i-- > 0;)
		assert_ptr_equal(conc__nc_get(), got[i]);
	assert_int_equal(conc__nc_mag.n, 0);
	for (unsigned i = 0; i < N; i++)
		conc__nc_put(got[i]);
}

/* Loose nodes up to MAG-1; the MAG-th makes the spare batch; a second
 * spare pushes the first to the depot; gets drain loose, spare, depot in
 * that order. */
static void test_nodecache_magazine_transitions(void **state)
{
	(void)state;
	enum { N = 3 * MAG };
	struct snode **got = malloc(N * sizeof *got);
	assert_non_null(got);
	for (unsigned i = 0; i < N; i++)
		assert_non_null(got[i] = conc__nc_get());
	assert_null(conc__nc_mag.head);
	assert_null(conc__nc_mag.full);

	for (unsigned i = 0; i < MAG - 1; i++)
		conc__nc_put(got[i]);
	assert_int_equal(conc__nc_mag.n, MAG - 1);
	assert_null(conc__nc_mag.full);
	conc__nc_put(got[MAG - 1]); /* full -> the spare */
	assert_int_equal(conc__nc_mag.n, 0);
	assert_null(conc__nc_mag.head);
	assert_int_equal(chain_len(conc__nc_mag.full), MAG);
	struct snode *first_spare = conc__nc_mag.full;
	for (unsigned i = MAG; i < 2 * MAG; i++)
		conc__nc_put(got[i]);
	/* the older spare went to the depot whole */
	assert_int_equal(depot_batches(), 1);
	assert_int_equal(chain_len(conc__nc_mag.full), MAG);
	assert_ptr_not_equal(conc__nc_mag.full, first_spare);

	/* 2*MAG gets: the spare (MAG), then the depot's batch (MAG) */
	for (unsigned i = 0; i < MAG; i++)
		assert_non_null(conc__nc_get());
	assert_null(conc__nc_mag.full);
	assert_null(conc__nc_mag.head);
	assert_int_equal(depot_batches(), 1);
	assert_ptr_equal(conc__nc_get(), first_spare); /* the batch's first node */
	assert_int_equal(depot_batches(), 0);
	assert_int_equal(conc__nc_mag.n, MAG - 1);
	/* back: all 3*MAG nodes are ours again, to put */
	for (unsigned i = 0; i < MAG - 1; i++)
		assert_non_null(conc__nc_get());
	for (unsigned i = 0; i < N; i++)
		conc__nc_put(got[i]);
	free(got);
}

/* A batch one thread gives to the depot is what another thread takes,
 * and a thread's exit hands its spare and loose nodes to the depot. */
struct xfer {
	struct snode *nodes[2 * MAG + 5];
	unsigned n;
};

static void *give_and_exit(void *arg)
{
	struct xfer *x = arg;
	for (unsigned i = 0; i < x->n; i++)
		x->nodes[i] = conc__nc_get();
	for (unsigned i = 0; i < x->n; i++)
		if (x->nodes[i])
			conc__nc_put(x->nodes[i]);
	return NULL; /* exit: the spare batch and 5 loose nodes go to the depot */
}

static void *take_one(void *arg)
{
	struct snode **out = arg;
	out[0] = conc__nc_get();
	out[1] = conc__nc_get();
	conc__nc_put(out[1]);
	conc__nc_put(out[0]);
	return NULL;
}

static bool in_xfer(const struct xfer *x, const struct snode *n)
{
	for (unsigned i = 0; i < x->n; i++)
		if (x->nodes[i] == n)
			return true;
	return false;
}

static void test_nodecache_depot_exchange_and_thread_exit(void **state)
{
	(void)state;
	static struct xfer x = {.n = 2 * MAG + 5};
	pthread_t t;
	assert_int_equal(pthread_create(&t, NULL, give_and_exit, &x), 0);
	assert_int_equal(pthread_join(t, NULL), 0);
	for (unsigned i = 0; i < x.n; i++)
		assert_non_null(x.nodes[i]);
	/* while it ran: its first spare (when the second batch filled); at
	 * exit: its second spare and its 5 loose nodes, a short batch */
	assert_int_equal(depot_batches(), 3);

	/* another thread, its magazine empty, takes from the depot */
	struct snode *took[2];
	assert_int_equal(pthread_create(&t, NULL, take_one, took), 0);
	assert_int_equal(pthread_join(t, NULL), 0);
	assert_true(in_xfer(&x, took[0]));
	assert_true(in_xfer(&x, took[1]));
	/* it took one batch and its exit gave the rest back as a batch */
	assert_int_equal(depot_batches(), 3);

	/* and so does this thread: every node it gets is one of x's */
	assert_null(conc__nc_mag.head);
	for (unsigned i = 0; i < x.n; i++)
		assert_true(in_xfer(&x, conc__nc_get()));
	assert_int_equal(depot_batches(), 0);
	for (unsigned i = 0; i < x.n; i++)
		conc__nc_put(x.nodes[i]);
}

/* trim empties this thread's magazine, its carve state and the depot. */
static void test_nodecache_trim(void **state)
{
	(void)state;
	enum { N = 2 * MAG + 3 };
	struct snode *got[N];
	for (unsigned i = 0; i < N; i++)
		assert_non_null(got[i] = conc__nc_get());
	assert_true(conc__nc_carve.left > 0);
	for (unsigned i = 0; i < N; i++)
		conc__nc_put(got[i]);
	assert_int_equal(depot_batches(), 1);
	conc__nc_trim();
	assert_null(conc__nc_mag.head);
	assert_null(conc__nc_mag.full);
	assert_int_equal(conc__nc_mag.n, 0);
	assert_int_equal(conc__nc_carve.left, 0);
	assert_int_equal(depot_batches(), 0);
	/* and the cache still works after it */
	struct snode *n = conc__nc_get();
	assert_non_null(n);
	conc__nc_put(n);
}

/* A failed slab allocation is ENOMEM (NULL) and changes nothing; the next
 * get works.  Leaks: the ASan build's LeakSanitizer checks the process. */
static void test_nodecache_alloc_failure(void **state)
{
	(void)state;
#if HOOKS
	assert_null(conc__nc_mag.head); /* setup trimmed: the next get carves */
	conc__fault_reset();
	conc__fault_fail_alloc_at(1);
	assert_null(conc__nc_get());
	assert_int_equal(conc__fault_site_failures("stack.node"), 1);
	assert_null(conc__nc_mag.head);
	assert_null(conc__nc_mag.full);
	assert_int_equal(conc__nc_carve.left, 0);
	conc__fault_reset();
	struct snode *n = conc__nc_get();
	assert_non_null(n);
	conc__nc_put(n);

	/* a retire that finds no record keeps its batch, and loses nothing */
	struct snode *r[CONC__NC_RETIRE_BATCH];
	for (unsigned i = 0; i < CONC__NC_RETIRE_BATCH; i++)
		assert_non_null(r[i] = conc__nc_get());
	conc__nc_trim(); /* no record cached: the flush must malloc one */
	conc__fault_reset();
	conc__fault_fail_alloc_at(1);
	conc__nc_pending p; /* unused on the global domain */
	conc__nc_pending_init(&p);
	for (unsigned i = 0; i < CONC__NC_RETIRE_BATCH; i++)
		conc__nc_retire(conc_epoch_global(), &p, r[i]);
	assert_int_equal(conc__fault_site_failures("stack.retire"), 1);
	assert_int_equal(conc__nc_rbatch.n, CONC__NC_RETIRE_BATCH);
	conc__fault_reset();
	conc__nc_flush(); /* now with a record */
	assert_int_equal(conc__nc_rbatch.n, 0);
	assert_int_equal(conc_epoch_barrier(conc_epoch_global()), 0);
#else
	skip(); /* needs -Dfault_hooks=true */
#endif
}

/* Retired nodes come back to the caches only after a grace period, in
 * batches: on the global domain through the thread's batch, on a private
 * one through the stack's pending list. */
static void test_nodecache_retire_batches(void **state)
{
	(void)state;
	enum { B = CONC__NC_RETIRE_BATCH };
	struct snode *r[B];
	conc__nc_pending p;
	conc__nc_pending_init(&p);

	for (unsigned i = 0; i < B; i++)
		assert_non_null(r[i] = conc__nc_get());
	for (unsigned i = 0; i < B - 1; i++)
		conc__nc_retire(conc_epoch_global(), &p, r[i]);
	assert_int_equal(conc__nc_rbatch.n, B - 1);
	assert_int_equal(conc__nc_mag.n, 0);
	conc__nc_retire(conc_epoch_global(), &p, r[B - 1]); /* flushes */
	assert_int_equal(conc__nc_rbatch.n, 0);
	/* the callback puts them in the magazine of whichever thread runs it
	 * (the ASan build checks that none is lost) */
	assert_int_equal(conc_epoch_barrier(conc_epoch_global()), 0);

	conc_epoch *d;
	assert_int_equal(conc_epoch_create(&d), 0);
	for (unsigned i = 0; i < B; i++)
		assert_non_null(r[i] = conc__nc_get());
	for (unsigned i = 0; i < B - 1; i++)
		conc__nc_retire(d, &p, r[i]);
	assert_int_equal(conc__nc_pending_count(&p), B - 1);
	conc__nc_retire(d, &p, r[B - 1]); /* the B-th: retired to d */
	assert_int_equal(conc__nc_pending_count(&p), 0);
	assert_int_equal(conc_epoch_barrier(d), 0);
	/* a few more, drained as a destroy does */
	for (unsigned i = 0; i < 3; i++) {
		struct snode *n = conc__nc_get();
		assert_non_null(n);
		conc__nc_retire(d, &p, n);
	}
	assert_int_equal(conc__nc_pending_count(&p), 3);
	conc__nc_pending_drain(&p);
	assert_int_equal(conc_epoch_destroy(d), 0);
}

/* ---- stress: the depot between threads ------------------------------------ */

#define ST_THREADS 4
#define ST_HOLD (3 * MAG) /* nodes a worker may hold at once */

static atomic_ulong st_gets, st_puts, st_progress;
static atomic_uint st_max_depot;
static atomic_int st_bad; /* first failed invariant, 0: none */

static void st_fail(int what)
{
	int none = 0;
	atomic_compare_exchange_strong(&st_bad, &none, what);
}

/* N4 on this thread's magazine: loose < MAG, the spare exactly MAG. */
static void st_check_mag(void)
{
	if (conc__nc_mag.n >= MAG || chain_len(conc__nc_mag.head) != conc__nc_mag.n)
		st_fail(1);
	if (conc__nc_mag.full && chain_len(conc__nc_mag.full) != MAG)
		st_fail(2);
}

struct st_arg {
	unsigned id;
	unsigned long rounds;
};

static void *st_worker(void *p)
{
	struct st_arg *a = p;
	uintptr_t tag = ((uintptr_t)a->id + 1) << 20; /* rounds < 2^20 */
	struct snode *held[ST_HOLD];
	uint32_t x = 2463534242u * (a->id + 1);
	for (unsigned long r = 0; r < a->rounds; r++) {
		x ^= x << 13;
		x ^= x >> 17;
		x ^= x << 5;
		unsigned k = 1 + x % ST_HOLD;
		unsigned got = 0;
		for (; got < k; got++) {
			struct snode *n = conc__nc_get();
			if (!n) {
				st_fail(3); /* no fault injection here: ENOMEM is real */
				break;
			}
			/* N1: the node is ours alone until we put it; mark it */
			n->next = (struct snode *)(tag | 1);
			n->item = (void *)(tag | r);
			held[got] = n;
		}
		atomic_fetch_add_explicit(&st_gets, got, memory_order_relaxed);
		if ((r & 7) == 0)
			sched_yield(); /* let the others churn the depot meanwhile */
		for (unsigned i = 0; i < got; i++)
			if (held[i]->next != (struct snode *)(tag | 1) ||
			    held[i]->item != (void *)(tag | r))
				st_fail(4); /* somebody else wrote our node */
		for (unsigned i = 0; i < got; i++)
			conc__nc_put(held[i]);
		atomic_fetch_add_explicit(&st_puts, got, memory_order_relaxed);
		st_check_mag();
		unsigned dn = depot_batches();
		unsigned mx = atomic_load_explicit(&st_max_depot, memory_order_relaxed);
		while (dn > mx && !atomic_compare_exchange_weak(&st_max_depot, &mx, dn))
			;
		atomic_fetch_add_explicit(&st_progress, 1, memory_order_relaxed);
	}
	return NULL; /* exit: the cache goes to the depot (mag_exit) */
}

static void test_nodecache_stress_depot(void **state)
{
	(void)state;
	unsigned long rounds = conc_test_iters(30000, 8);
	conc_test_progress *w = conc_test_progress_watchdog_start("nodecache stress",
								   &st_progress, 5);
	assert_non_null(w);
	/* generations of short-lived threads: each exit hands its magazine
	 * to the depot and parks its slab, and the next generation lives on
	 * what they left */
	for (unsigned gen = 0; gen < 6; gen++) {
		struct st_arg args[ST_THREADS];
		for (unsigned i = 0; i < ST_THREADS; i++)
			args[i] = (struct st_arg){gen * ST_THREADS + i, rounds / 6 + 1};
		assert_int_equal(conc_test_run_threads(ST_THREADS, st_worker, args, sizeof args[0]),
				 0);
	}
	conc_test_progress_watchdog_stop(w);
	assert_int_equal(atomic_load(&st_bad), 0);
	assert_int_equal(atomic_load(&st_gets), atomic_load(&st_puts));
	assert_true(atomic_load(&st_max_depot) <= 256); /* DEPOT_MAX */
	assert_true(depot_batches() > 0); /* the exits handed their caches on */
	/* teardown's detach trims: the depot is freed (ASan: no leak) */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_nodecache_get_put_round_trip, setup, teardown),
		cmocka_unit_test_setup_teardown(test_nodecache_magazine_transitions, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_nodecache_depot_exchange_and_thread_exit,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_nodecache_trim, setup, teardown),
		cmocka_unit_test_setup_teardown(test_nodecache_alloc_failure, setup, teardown),
		cmocka_unit_test_setup_teardown(test_nodecache_retire_batches, setup, teardown),
		cmocka_unit_test_setup_teardown(test_nodecache_stress_depot, setup, teardown),
	};
	return cmocka_run_group_tests_name("nodecache", tests, NULL, NULL);
}
