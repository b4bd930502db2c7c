/*
 * lifecycle_containers.c - the queue and the stack where their features
 * meet: blocking and timed pops beside close, destroy once every blocking
 * call has returned, threads that push or pop and exit, a private domain
 * destroyed after the container, and drop functions that call into other
 * containers.
 *
 * One table, every combination run (not sampled):
 *   container  queue, stack
 *   domain     the global one, a private one (destroyed afterwards: 0, not
 *              EBUSY)
 *   pop        blocking pop, timed pop (short timeouts racing with close;
 *              long ones where the consumers must be asleep)
 *   event      blocked:   every consumer asleep in its pop, then the
 *                         pushes, then close
 *              racing:    close while the producers push and the consumers
 *                         pop (pushes after it fail with EPIPE)
 *              leftovers: the consumers take half, the rest is dropped at
 *                         destroy
 *   threads    long-lived; pushers that exit (a thread per few pushes,
 *              every other one pushing its few as one push_n batch where
 *              the container has it: the queue); poppers that exit (a
 *              thread per few pops)
 *   drop       count the item; forward it into a container of the other
 *              kind on the same domain (a drop calling into the library),
 *              which is then drained and destroyed
 * Checked for each: every item whose push returned 0 is popped or dropped
 * exactly once (lost, duplicated), no item whose push failed shows up
 * (duplicated), and once every consumer has seen EPIPE nothing is left
 * (stranded: an EPIPE while an item of a successful push was still there,
 * issue 22, fault 9).  Item values start at 0, so NULL and the small words
 * the queue once reserved go through every combination (fault 10).
 * Worker threads record; only the main thread asserts.  No sleep
 * synchronises anything: the main thread waits on counters.
 */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "adapters.h"
#include "testutil.h"

#include "conc/epoch.h"
#include "conc/queue.h"
#include "conc/stack.h"
#include "queue/queue_internal.h"
#include "stack/stack_internal.h"

/* ---- the two containers behind one table of calls ---------------------- */

static const tl_container *const KINDS[2] = {&tl_queue, &tl_stack};

/* ---- the table ---------------------------------------------------------- */

enum { EV_BLOCKED, EV_RACING, EV_LEFTOVERS, EV_N };
enum { TH_LONG, TH_PUSHERS_EXIT, TH_POPPERS_EXIT, TH_N };
enum { DROP_COUNT, DROP_FORWARD, DROP_N };
static const char *const EV_NAME[EV_N] = {"blocked", "racing", "leftovers"};
static const char *const TH_NAME[TH_N] = {"long-lived", "pushers-exit", "poppers-exit"};
static const char *const DROP_NAME[DROP_N] = {"count", "forward"};

enum { PRODUCERS = 2, CONSUMERS = 2, PER_THREAD_OP = 8 };

typedef struct combo {
	int kind, priv, timed, ev, th, drop;
} combo;

typedef struct run {
	combo cb;
	const tl_container *k;
	void *c;
	conc_epoch *d;
	unsigned per_producer, n;
	atomic_uchar *seen; /* pops and drops of each item */
	unsigned char *pushed; /* push returned 0; each producer its own ids */
	atomic_uint push_attempts; /* pushes begun (racing: when to close) */
	atomic_int budget;  /* leftovers: pops the consumers may still take */
	atomic_uint epipe;  /* consumers that ended on EPIPE */
	atomic_uint odd;    /* unexpected return codes */
} run;

static run *cur; /* the run whose destroy is dropping (main thread only) */
static unsigned forward_failed;

/* ---- producers ---------------------------------------------------------- */

typedef struct span {
	run *r;
	unsigned first, count; /* item ids [first, first + count) */
	bool batch;            /* as one push_n (count <= PER_THREAD_OP) */
} span;

static void *push_span(void *arg)
{
	span *s = arg;
	run *r = s->r;
	if (s->batch && r->k->push_n) {
		/* the span as one batch: all of it or none (EPIPE) */
		void *items[PER_THREAD_OP];
		for (unsigned k = 0; k < s->count; k++)
			items[k] = (void *)(uintptr_t)(s->first + k);
		atomic_fetch_add(&r->push_attempts, s->count);
		int rc = r->k->push_n(r->c, items, s->count);
		for (unsigned k = 0; rc == 0 && k < s->count; k++)
			r->pushed[s->first + k] = 1;
		if (rc != 0 && rc != EPIPE)
			atomic_fetch_add(&r->odd, 1);
		return NULL;
	}
	for (unsigned i = s->first; i < s->first + s->count; i++) {
		atomic_fetch_add(&r->push_attempts, 1);
		int rc = r->k->push(r->c, (void *)(uintptr_t)i);
		if (rc == 0)
			r->pushed[i] = 1;
		else if (rc != EPIPE)
			atomic_fetch_add(&r->odd, 1);
	}
	return NULL;
}

typedef struct producer {
	run *r;
	unsigned p;
} producer;

static void *producer_main(void *arg)
{
	producer *pr = arg;
	run *r = pr->r;
	unsigned first = pr->p * r->per_producer;
	if (r->cb.th != TH_PUSHERS_EXIT) {
		span s = {r, first, r->per_producer, false};
		return push_span(&s);
	}
	/* a short-lived thread per PER_THREAD_OP pushes: each exits with its
	 * items still in the container and its node caches handed back */
	for (unsigned i = 0; i < r->per_producer; i += PER_THREAD_OP) {
		/* every other thread pushes its items as one batch
		 * (containers with push_n) */
		span s = {r, first + i, PER_THREAD_OP, (i / PER_THREAD_OP) % 2 == 1};
		if (s.count > r->per_producer - i)
			s.count = r->per_producer - i;
		pthread_t t;
		if (pthread_create(&t, NULL, push_span, &s) != 0) {
			atomic_fetch_add(&r->odd, 1);
			push_span(&s);
			continue;
		}
		pthread_join(t, NULL);
	}
	return NULL;
}

/* ---- consumers ---------------------------------------------------------- */

/* Pop up to `max` items (0: no limit); returns 1 when the pop said EPIPE,
 * 2 when the leftovers budget ran out, 0 when max was reached. */
static int pop_some(run *r, unsigned max)
{
	for (unsigned got = 0; max == 0 || got < max;) {
		if (r->cb.ev == EV_LEFTOVERS && atomic_fetch_sub(&r->budget, 1) <= 0)
			return 2;
		void *it;
		int rc;
		if (!r->cb.timed)
			rc = r->k->pop(r->c, &it);
		else if (r->cb.ev == EV_BLOCKED)
			/* long enough to be asleep when close comes */
			rc = r->k->pop_timeout(r->c, &it, 60ull * 1000000000ull);
		else
			/* short: deadlines expire all through the close */
			rc = r->k->pop_timeout(r->c, &it, 200000);
		if (rc == ETIMEDOUT) {
			if (r->cb.ev == EV_LEFTOVERS)
				atomic_fetch_add(&r->budget, 1); /* not taken */
			continue;
		}
		if (rc == EPIPE)
			return 1;
		if (rc != 0) {
			atomic_fetch_add(&r->odd, 1);
			return 1;
		}
		uintptr_t v = (uintptr_t)it;
		if (v < r->n)
			atomic_fetch_add(&r->seen[v], 1);
		else
			atomic_fetch_add(&r->odd, 1);
		got++;
	}
	return 0;
}

typedef struct popper {
	run *r;
	int status;
} popper;

static void *pop_few(void *arg)
{
	popper *p = arg;
	p->status = pop_some(p->r, PER_THREAD_OP);
	return NULL;
}

static void *consumer_main(void *arg)
{
	run *r = arg;
	int st;
	if (r->cb.th != TH_POPPERS_EXIT) {
		st = pop_some(r, 0);
	} else {
		/* a short-lived thread per PER_THREAD_OP pops: each exits with
		 * its retire batch handed over */
		do {
			popper p = {r, 0};
			pthread_t t;
			if (pthread_create(&t, NULL, pop_few, &p) != 0) {
				atomic_fetch_add(&r->odd, 1);
				pop_few(&p);
			} else {
				pthread_join(t, NULL);
			}
			st = p.status;
		} while (st == 0);
	}
	if (st == 1)
		atomic_fetch_add(&r->epipe, 1);
	return NULL;
}

/* ---- drop functions ------------------------------------------------------ */

static void drop_count(void *item)
{
	uintptr_t v = (uintptr_t)item;
	if (v < cur->n)
		atomic_fetch_add(&cur->seen[v], 1);
	else
		atomic_fetch_add(&cur->odd, 1);
}

static void *fwd_target;
static const tl_container *fwd_kind;

/* Calls back into the library: a push into a container of the other kind,
 * on the same domain, from inside this container's destroy. */
static void drop_forward(void *item)
{
	if (fwd_kind->push(fwd_target, item) != 0) {
		forward_failed++;
		drop_count(item); /* counted all the same: not lost */
	}
}

/* ---- one combination ----------------------------------------------------- */

typedef struct tally {
	unsigned long lost, duplicated, stranded, odd, dropped;
} tally;

static void run_combo(const combo *cb, unsigned per_producer, tally *t)
{
	run r;
	memset(&r, 0, sizeof r);
	r.cb = *cb;
	r.k = KINDS[cb->kind];
	r.per_producer = per_producer;
	r.n = PRODUCERS * per_producer;
	r.seen = calloc(r.n, sizeof *r.seen);
	r.pushed = calloc(r.n, 1);
	assert_non_null(r.seen);
	assert_non_null(r.pushed);
	atomic_init(&r.push_attempts, 0);
	atomic_init(&r.budget, (int)(r.n / 2));
	atomic_init(&r.epipe, 0);
	atomic_init(&r.odd, 0);
	r.d = conc_epoch_global();
	if (cb->priv)
		assert_int_equal(conc_epoch_create(&r.d), 0);
	assert_int_equal(r.k->create_in(&r.c, r.d), 0);

	pthread_t prod[PRODUCERS], cons[CONSUMERS];
	producer pr[PRODUCERS];
	for (unsigned i = 0; i < CONSUMERS; i++)
		assert_int_equal(pthread_create(&cons[i], NULL, consumer_main, &r), 0);
	if (cb->ev == EV_BLOCKED) {
		/* every consumer asleep in its (timed) pop before any push */
		while (r.k->sleepers(r.c) < CONSUMERS)
			sched_yield();
	}
	for (unsigned p = 0; p < PRODUCERS; p++) {
		pr[p] = (producer){&r, p};
		assert_int_equal(pthread_create(&prod[p], NULL, producer_main, &pr[p]), 0);
	}
	if (cb->ev == EV_RACING) {
		/* close in the middle of the pushes */
		while (atomic_load(&r.push_attempts) < r.n / 2)
			sched_yield();
		r.k->close(r.c);
	}
	for (unsigned p = 0; p < PRODUCERS; p++)
		pthread_join(prod[p], NULL);
	if (cb->ev == EV_BLOCKED)
		r.k->close(r.c);
	for (unsigned i = 0; i < CONSUMERS; i++)
		pthread_join(cons[i], NULL);
	/* every blocking call has returned: destroy */
	bool all_epipe = atomic_load(&r.epipe) == CONSUMERS;
	if (cb->ev == EV_LEFTOVERS)
		r.k->close(r.c);

	unsigned long seen_before = 0;
	for (unsigned i = 0; i < r.n; i++)
		seen_before += atomic_load(&r.seen[i]);
	cur = &r;
	if (cb->drop == DROP_COUNT) {
		r.k->destroy(r.c, drop_count);
	} else {
		fwd_kind = KINDS[1 - cb->kind];
		assert_int_equal(fwd_kind->create_in(&fwd_target, r.d), 0);
		r.k->destroy(r.c, drop_forward);
		void *it;
		while (fwd_kind->try_pop(fwd_target, &it))
			drop_count(it);
		fwd_kind->destroy(fwd_target, drop_count);
	}
	cur = NULL;
	if (cb->priv) {
		assert_int_equal(conc_epoch_barrier(r.d), 0);
		assert_int_equal(conc_epoch_destroy(r.d), 0);
	}

	unsigned long seen_after = 0;
	for (unsigned i = 0; i < r.n; i++) {
		unsigned s = atomic_load(&r.seen[i]);
		seen_after += s;
		if (r.pushed[i] && s == 0)
			t->lost++;
		else if (s > 1 || (!r.pushed[i] && s != 0))
			t->duplicated++;
	}
	unsigned long dropped = seen_after - seen_before;
	t->dropped += dropped;
	/* consumers that all ended on EPIPE leave nothing behind */
	if (cb->ev != EV_LEFTOVERS) {
		if (!all_epipe)
			t->odd++;
		t->stranded += dropped;
	}
	t->odd += atomic_load(&r.odd);
	if (t->lost || t->duplicated || t->stranded || t->odd)
		print_message("lifecycle-containers: %s %s-domain %s %s %s drop=%s: lost=%lu "
			      "duplicated=%lu stranded=%lu odd=%lu (running totals)\n",
			      r.k->name, cb->priv ? "private" : "global",
			      cb->timed ? "pop_timeout" : "pop", EV_NAME[cb->ev], TH_NAME[cb->th],
			      DROP_NAME[cb->drop], t->lost, t->duplicated, t->stranded, t->odd);
	free(r.seen);
	free(r.pushed);
}

static void test_lifecycle_containers_table(void **state)
{
	(void)state;
	conc_test_watchdog(__func__, 600);
	unsigned per_producer = CONC_TEST_SANITIZED ? 64 : 256;
	tally t = {0};
	unsigned combos = 0;
	combo cb;
	for (cb.kind = 0; cb.kind < 2; cb.kind++)
		for (cb.priv = 0; cb.priv < 2; cb.priv++)
			for (cb.timed = 0; cb.timed < 2; cb.timed++)
				for (cb.ev = 0; cb.ev < EV_N; cb.ev++)
					for (cb.th = 0; cb.th < TH_N; cb.th++)
						for (cb.drop = 0; cb.drop < DROP_N; cb.drop++) {
							run_combo(&cb, per_producer, &t);
							combos++;
						}
	printf("lifecycle-containers: combinations=%u lost=%lu duplicated=%lu\n", combos, t.lost,
	       t.duplicated);
	printf("lifecycle-containers: stranded after EPIPE=%lu, unexpected returns=%lu, "
	       "dropped at destroy=%lu, forwarded drops refused=%u\n",
	       t.stranded, t.odd, t.dropped, forward_failed);
	fflush(stdout);
	assert_int_equal(combos, 2 * 2 * 2 * EV_N * TH_N * DROP_N);
	assert_int_equal(t.lost, 0);
	assert_int_equal(t.duplicated, 0);
	assert_int_equal(t.stranded, 0);
	assert_int_equal(t.odd, 0);
	assert_int_equal(forward_failed, 0);
	assert_true(t.dropped > 0); /* the leftovers rows did drop */
	conc_test_watchdog_off();
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_lifecycle_containers_table),
	};
	return cmocka_run_group_tests_name("lifecycle-containers", tests, NULL, NULL);
}
