/*
 * lifecycle_chan.c - the channels where their features meet, as
 * lifecycle-containers does it for the queue and the stack: blocking,
 * timed and select calls beside close, destroy once every call has
 * returned, threads that send or receive and exit, and drop functions that
 * call into another channel.
 *
 * One table, every combination run (not sampled):
 *   flavour   bounded (capacity 4: senders wait on a full channel),
 *             unbounded, rendezvous
 *   api       plain (send / recv), timed (send_timeout / recv_timeout:
 *             short timeouts racing with close, long ones where the
 *             receivers must be asleep), select (each send and receive a
 *             conc_select with a second operation that never becomes
 *             ready: a receive on a channel nobody sends on)
 *   event     blocked:   every receiver asleep in its call, then the
 *                        sends, then close
 *             racing:    close while the senders send and the receivers
 *                        receive (sends after it fail with EPIPE)
 *             leftovers: the receivers take half and return; then close,
 *                        which fails the senders still waiting for room or
 *                        a partner; destroy drops what the buffer holds
 *   threads   long-lived; senders that exit (a thread per few sends);
 *             receivers that exit (a thread per few receives)
 *   drop      count the item; forward it into another (unbounded) channel
 *             from inside destroy (a drop calling into the library),
 *             which is then drained and destroyed
 * Checked for each: every item whose send returned 0 is received or
 * dropped exactly once (lost, duplicated), no item whose send failed shows
 * up (duplicated), and once every receiver has seen EPIPE nothing is left
 * (stranded).  Item values start at 0 (NULL is an item).  Worker threads
 * record; only the main thread asserts.  No sleep synchronises anything:
 * the main thread waits on counters and on the channel's waiter count.
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

#include "conc/chan.h"
#include "chan/chan_internal.h"

enum { FL_BOUNDED, FL_UNBOUNDED, FL_ZERO, FL_N };
enum { API_PLAIN, API_TIMED, API_SELECT, API_N };
enum { EV_BLOCKED, EV_RACING, EV_LEFTOVERS, EV_N };
enum { TH_LONG, TH_SENDERS_EXIT, TH_RECEIVERS_EXIT, TH_N };
enum { DROP_COUNT, DROP_FORWARD, DROP_N };
static const char *const FL_NAME[FL_N] = {"bounded", "unbounded", "rendezvous"};
static const char *const API_NAME[API_N] = {"plain", "timed", "select"};
static const char *const EV_NAME[EV_N] = {"blocked", "racing", "leftovers"};
static const char *const TH_NAME[TH_N] = {"long-lived", "senders-exit", "receivers-exit"};
static const char *const DROP_NAME[DROP_N] = {"count", "forward"};
static const size_t FL_CAP[FL_N] = {4, CONC_CHAN_UNBOUNDED, 0};

enum { SENDERS = 2, RECEIVERS = 2, PER_THREAD_OP = 8 };
#define LONG_NS (60ull * 1000000000ull)
#define SHORT_NS 200000ull

typedef struct combo {
	int fl, api, ev, th, drop;
} combo;

typedef struct run {
	combo cb;
	conc_chan *c;
	conc_chan *never; /* the select's other operation: never ready */
	unsigned per_sender, n;
	atomic_uchar *seen;    /* receives and drops of each item */
	unsigned char *sent;   /* send returned 0; each sender its own ids */
	atomic_uint attempts;  /* sends begun (racing: when to close) */
	atomic_int budget;     /* leftovers: receives the receivers may take */
	atomic_uint epipe;     /* receivers that ended on EPIPE */
	atomic_uint odd;       /* unexpected return codes */
} run;

static run *cur; /* the run whose destroy is dropping (main thread only) */
static conc_chan *fwd_target;
static unsigned forward_failed;

/* ---- one send, one receive, in the combination's api ---------------------- */

static int send_one(run *r, void *item)
{
	switch (r->cb.api) {
	case API_PLAIN:
		return conc_chan_send(r->c, item);
	case API_TIMED:
		for (;;) {
			/* short: deadlines expire all through a close */
			int rc = conc_chan_send_timeout(r->c, item, SHORT_NS);
			if (rc != ETIMEDOUT)
				return rc;
		}
	default: {
		conc_select_op ops[2] = {{r->c, true, item}, {r->never, false, NULL}};
		size_t done = 2;
		int rc = conc_select(ops, 2, UINT64_MAX, 0, &done);
		if (done != 0)
			atomic_fetch_add(&r->odd, 1);
		return rc;
	}
	}
}

static int recv_one(run *r, void **item)
{
	switch (r->cb.api) {
	case API_PLAIN:
		return conc_chan_recv(r->c, item);
	case API_TIMED:
		/* long enough to be asleep when close comes, or short */
		return conc_chan_recv_timeout(r->c, item,
					      r->cb.ev == EV_BLOCKED ? LONG_NS : SHORT_NS);
	default: {
		conc_select_op ops[2] = {{r->never, false, NULL}, {r->c, false, NULL}};
		size_t done = 2;
		int rc = conc_select(ops, 2, r->cb.ev == EV_BLOCKED ? UINT64_MAX : SHORT_NS, 0,
				     &done);
		if (rc == ETIMEDOUT)
			return rc;
		if (done != 1)
			atomic_fetch_add(&r->odd, 1);
		*item = ops[1].item;
		return rc;
	}
	}
}

/* ---- senders --------------------------------------------------------------- */

typedef struct span {
	run *r;
	unsigned first, count; /* item ids [first, first + count) */
} span;

static void *send_span(void *arg)
{
	span *s = arg;
	run *r = s->r;
	for (unsigned i = s->first; i < s->first + s->count; i++) {
		atomic_fetch_add(&r->attempts, 1);
		int rc = send_one(r, (void *)(uintptr_t)i);
		if (rc == 0)
			r->sent[i] = 1;
		else if (rc != EPIPE)
			atomic_fetch_add(&r->odd, 1);
	}
	return NULL;
}

typedef struct sender {
	run *r;
	unsigned p;
} sender;

static void *sender_main(void *arg)
{
	sender *sd = arg;
	run *r = sd->r;
	unsigned first = sd->p * r->per_sender;
	if (r->cb.th != TH_SENDERS_EXIT) {
		span s = {r, first, r->per_sender};
		return send_span(&s);
	}
	/* a short-lived thread per PER_THREAD_OP sends */
	for (unsigned i = 0; i < r->per_sender; i += PER_THREAD_OP) {
		span s = {r, first + i, PER_THREAD_OP};
		if (s.count > r->per_sender - i)
			s.count = r->per_sender - i;
		pthread_t t;
		if (pthread_create(&t, NULL, send_span, &s) != 0) {
			atomic_fetch_add(&r->odd, 1);
			send_span(&s);
			continue;
		}
		pthread_join(t, NULL);
	}
	return NULL;
}

/* ---- receivers ------------------------------------------------------------- */

/* Receive up to max items (0: no limit); 1 when a receive said EPIPE, 2
 * when the leftovers budget ran out, 0 when max was reached. */
static int recv_some(run *r, unsigned max)
{
	for (unsigned got = 0; max == 0 || got < max;) {
		if (r->cb.ev == EV_LEFTOVERS && atomic_fetch_sub(&r->budget, 1) <= 0)
			return 2;
		void *it = (void *)~(uintptr_t)0;
		int rc = recv_one(r, &it);
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

typedef struct receiver {
	run *r;
	int status;
} receiver;

static void *recv_few(void *arg)
{
	receiver *p = arg;
	p->status = recv_some(p->r, PER_THREAD_OP);
	return NULL;
}

static void *receiver_main(void *arg)
{
	run *r = arg;
	int st;
	if (r->cb.th != TH_RECEIVERS_EXIT) {
		st = recv_some(r, 0);
	} else {
		do {
			receiver p = {r, 0};
			pthread_t t;
			if (pthread_create(&t, NULL, recv_few, &p) != 0) {
				atomic_fetch_add(&r->odd, 1);
				recv_few(&p);
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

/* ---- drop functions -------------------------------------------------------- */

static void drop_count(void *item)
{
	uintptr_t v = (uintptr_t)item;
	if (v < cur->n)
		atomic_fetch_add(&cur->seen[v], 1);
	else
		atomic_fetch_add(&cur->odd, 1);
}

/* Calls back into the library from inside destroy: a send into another
 * channel. */
static void drop_forward(void *item)
{
	if (conc_chan_send(fwd_target, item) != 0) {
		forward_failed++;
		drop_count(item); /* counted all the same: not lost */
	}
}

/* ---- one combination ------------------------------------------------------- */

typedef struct tally {
	unsigned long lost, duplicated, stranded, odd, dropped;
} tally;

static void run_combo(const combo *cb, unsigned per_sender, tally *t)
{
	run r;
	memset(&r, 0, sizeof r);
	r.cb = *cb;
	r.per_sender = per_sender;
	r.n = SENDERS * per_sender;
	r.seen = calloc(r.n, sizeof *r.seen);
	r.sent = calloc(r.n, 1);
	assert_non_null(r.seen);
	assert_non_null(r.sent);
	atomic_init(&r.attempts, 0);
	atomic_init(&r.budget, (int)(r.n / 2));
	atomic_init(&r.epipe, 0);
	atomic_init(&r.odd, 0);
	assert_int_equal(conc_chan_create(&r.c, FL_CAP[cb->fl]), 0);
	assert_int_equal(conc_chan_create(&r.never, 1), 0);

	pthread_t snd[SENDERS], rcv[RECEIVERS];
	sender sd[SENDERS];
	for (unsigned i = 0; i < RECEIVERS; i++)
		assert_int_equal(pthread_create(&rcv[i], NULL, receiver_main, &r), 0);
	if (cb->ev == EV_BLOCKED) {
		/* every receiver asleep (registered) in its call before any send */
		while (conc__chan_waiters(r.c, false) < RECEIVERS)
			sched_yield();
	}
	for (unsigned p = 0; p < SENDERS; p++) {
		sd[p] = (sender){&r, p};
		assert_int_equal(pthread_create(&snd[p], NULL, sender_main, &sd[p]), 0);
	}
	if (cb->ev == EV_RACING) {
		/* close in the middle of the sends */
		while (atomic_load(&r.attempts) < r.n / 2)
			sched_yield();
		conc_chan_close(r.c);
	}
	if (cb->ev == EV_LEFTOVERS) {
		/* the receivers stop after half; the close then fails the
		 * senders that wait for room or a partner */
		for (unsigned i = 0; i < RECEIVERS; i++)
			pthread_join(rcv[i], NULL);
		conc_chan_close(r.c);
	}
	for (unsigned p = 0; p < SENDERS; p++)
		pthread_join(snd[p], NULL);
	if (cb->ev == EV_BLOCKED)
		conc_chan_close(r.c);
	if (cb->ev != EV_LEFTOVERS)
		for (unsigned i = 0; i < RECEIVERS; i++)
			pthread_join(rcv[i], NULL);
	/* every call has returned: destroy */
	bool all_epipe = atomic_load(&r.epipe) == RECEIVERS;

	unsigned long seen_before = 0;
	for (unsigned i = 0; i < r.n; i++)
		seen_before += atomic_load(&r.seen[i]);
	cur = &r;
	if (cb->drop == DROP_COUNT) {
		conc_chan_destroy(r.c, drop_count);
	} else {
		assert_int_equal(conc_chan_create(&fwd_target, CONC_CHAN_UNBOUNDED), 0);
		conc_chan_destroy(r.c, drop_forward);
		void *it;
		while (conc_chan_recv_timeout(fwd_target, &it, 0) == 0)
			drop_count(it);
		conc_chan_destroy(fwd_target, drop_count);
		fwd_target = NULL;
	}
	cur = NULL;
	conc_chan_destroy(r.never, NULL);

	unsigned long seen_after = 0;
	for (unsigned i = 0; i < r.n; i++) {
		unsigned s = atomic_load(&r.seen[i]);
		seen_after += s;
		if (r.sent[i] && s == 0)
			t->lost++;
		else if (s > 1 || (!r.sent[i] && s != 0))
			t->duplicated++;
	}
	unsigned long dropped = seen_after - seen_before;
	t->dropped += dropped;
	if (cb->ev != EV_LEFTOVERS) {
		if (!all_epipe)
			t->odd++;
		t->stranded += dropped;
	}
	t->odd += atomic_load(&r.odd);
	if (t->lost || t->duplicated || t->stranded || t->odd)
		print_message("lifecycle-chan: %s %s %s %s drop=%s: lost=%lu duplicated=%lu "
			      "stranded=%lu odd=%lu (running totals)\n",
			      FL_NAME[cb->fl], API_NAME[cb->api], EV_NAME[cb->ev], TH_NAME[cb->th],
			      DROP_NAME[cb->drop], t->lost, t->duplicated, t->stranded, t->odd);
	free(r.seen);
	free(r.sent);
}

static void test_lifecycle_chan_table(void **state)
{
	(void)state;
	conc_test_watchdog(__func__, 600);
	unsigned per_sender = CONC_TEST_SANITIZED || conc_test_scale() == 0 ? 16 : 64;
	tally t = {0};
	unsigned combos = 0;
	combo cb;
	for (cb.fl = 0; cb.fl < FL_N; cb.fl++)
		for (cb.api = 0; cb.api < API_N; cb.api++)
			for (cb.ev = 0; cb.ev < EV_N; cb.ev++)
				for (cb.th = 0; cb.th < TH_N; cb.th++)
					for (cb.drop = 0; cb.drop < DROP_N; cb.drop++) {
						run_combo(&cb, per_sender, &t);
						combos++;
					}
	printf("lifecycle-chan: combinations=%u lost=%lu duplicated=%lu\n", combos, t.lost,
	       t.duplicated);
	printf("lifecycle-chan: stranded after EPIPE=%lu, unexpected returns=%lu, "
	       "dropped at destroy=%lu, forwarded drops refused=%u\n",
	       t.stranded, t.odd, t.dropped, forward_failed);
	fflush(stdout);
	assert_int_equal(combos, FL_N * API_N * EV_N * TH_N * DROP_N);
	assert_int_equal(t.lost, 0);
	assert_int_equal(t.duplicated, 0);
	assert_int_equal(t.stranded, 0);
	assert_int_equal(t.odd, 0);
	assert_int_equal(forward_failed, 0);
	assert_true(t.dropped > 0); /* the bounded and unbounded leftovers rows did drop */
	conc_test_watchdog_off();
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_lifecycle_chan_table),
	};
	return cmocka_run_group_tests_name("lifecycle-chan", tests, NULL, NULL);
}
