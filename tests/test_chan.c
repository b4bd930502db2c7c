/*
 * test_chan.c - conc/chan.h: the three flavours (bounded, unbounded,
 * rendezvous), blocking / timed / try calls, batches, force_send, close and
 * its drain rule, select (biased, fair, exactly once under racing closes,
 * the same channel twice, rendezvous partners on both sides), every error
 * path, and a lincheck of the bounded channel against a FIFO.
 *
 * No sleeps as synchronisation: a test that needs a thread blocked waits
 * for conc__chan_waiters to show its entry.  Counts scale with
 * CONC_STRESS_SCALE (conc_test_iters).
 */
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
#include "lincheck.h"

#include "conc/chan.h"
#include "chan/chan_internal.h"

#define V(i) ((void *)(uintptr_t)(i))
#define U(p) ((uintptr_t)(p))

static const size_t caps[] = {0, 1, 4, 1000, CONC_CHAN_UNBOUNDED};
#define NCAPS (sizeof caps / sizeof caps[0])

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Wait (yielding) until k entries of that direction are registered on c. */
static void wait_waiters(conc_chan *c, bool send, size_t k)
{
	while (conc__chan_waiters(c, send) < k)
		sched_yield();
}

/* ---- errors ---------------------------------------------------------------- */

static void test_chan_errors(void **state)
{
	(void)state;
	conc_chan *c;
	void *it = V(5);
	bool ev = true;
	size_t k = 99, done = 99;
	assert_int_equal(conc_chan_create(NULL, 4), EINVAL);
	assert_int_equal(conc_chan_send(NULL, it), EINVAL);
	assert_int_equal(conc_chan_send_timeout(NULL, it, 0), EINVAL);
	assert_int_equal(conc_chan_recv(NULL, &it), EINVAL);
	assert_int_equal(conc_chan_recv_timeout(NULL, &it, 5), EINVAL);
	assert_int_equal(conc_chan_force_send(NULL, it, &ev, &it), EINVAL);
	assert_int_equal(conc_chan_send_many(NULL, &it, 1, 0, &k), EINVAL);
	assert_int_equal(k, 0);
	k = 99;
	assert_int_equal(conc_chan_recv_many(NULL, &it, 1, 0, &k), EINVAL);
	assert_int_equal(k, 0);
	conc_chan_close(NULL);
	conc_chan_destroy(NULL, NULL);
	assert_int_equal(conc_chan_len(NULL), 0);
	assert_int_equal(conc_chan_capacity(NULL), 0);
	assert_false(conc_chan_is_closed(NULL));
	for (size_t ci = 0; ci < NCAPS; ci++) {
		assert_int_equal(conc_chan_create(&c, caps[ci]), 0);
		assert_int_equal(conc_chan_capacity(c), caps[ci]);
		assert_int_equal(conc_chan_recv(c, NULL), EINVAL);
		assert_int_equal(conc_chan_recv_timeout(c, NULL, 0), EINVAL);
		k = 7;
		assert_int_equal(conc_chan_send_many(c, NULL, 1, 0, &k), EINVAL);
		assert_int_equal(k, 0);
		assert_int_equal(conc_chan_send_many(c, &it, 1, 0, NULL), EINVAL);
		k = 7;
		assert_int_equal(conc_chan_recv_many(c, NULL, 1, 0, &k), EINVAL);
		assert_int_equal(k, 0);
		assert_int_equal(conc_chan_recv_many(c, &it, 1, 0, NULL), EINVAL);
		/* n 0 / max 0: 0 at once, count 0, closed or not */
		k = 7;
		assert_int_equal(conc_chan_send_many(c, NULL, 0, 0, &k), 0);
		assert_int_equal(k, 0);
		k = 7;
		assert_int_equal(conc_chan_recv_many(c, NULL, 0, 0, &k), 0);
		assert_int_equal(k, 0);
		bool bounded = caps[ci] != 0 && caps[ci] != CONC_CHAN_UNBOUNDED;
		assert_int_equal(conc_chan_force_send(c, it, NULL, &it), EINVAL);
		assert_int_equal(conc_chan_force_send(c, it, &ev, NULL), EINVAL);
		if (!bounded)
			assert_int_equal(conc_chan_force_send(c, it, &ev, &it), EINVAL);
		assert_int_equal(conc_chan_len(c), 0);
		/* select's own */
		conc_select_op op = {c, false, NULL};
		assert_int_equal(conc_select(NULL, 1, 0, 0, &done), EINVAL);
		assert_int_equal(conc_select(&op, 1, 0, 0, NULL), EINVAL);
		assert_int_equal(conc_select(&op, 0, 0, 0, &done), EINVAL);
		assert_int_equal(conc_select(&op, 1, 0, 2u, &done), EINVAL);
		conc_select_op bad[2] = {{c, false, NULL}, {NULL, true, NULL}};
		assert_int_equal(conc_select(bad, 2, 0, 0, &done), EINVAL);
		/* a try on an empty channel */
		it = V(1);
		assert_int_equal(conc_chan_recv_timeout(c, &it, 0), ETIMEDOUT);
		assert_ptr_equal(it, V(1));
		assert_int_equal(conc_select(&op, 1, 0, 0, &done), ETIMEDOUT);
		k = 7;
		assert_int_equal(conc_chan_recv_many(c, &it, 1, 0, &k), ETIMEDOUT);
		assert_int_equal(k, 0);
		if (caps[ci] == 0) {
			/* rendezvous: no receiver waits, so a try-send fails */
			assert_int_equal(conc_chan_send_timeout(c, V(3), 0), ETIMEDOUT);
		}
		conc_chan_close(c);
		conc_chan_close(c); /* idempotent */
		assert_true(conc_chan_is_closed(c));
		assert_int_equal(conc_chan_send(c, V(1)), EPIPE);
		assert_int_equal(conc_chan_send_timeout(c, V(1), 0), EPIPE);
		assert_int_equal(conc_chan_send_timeout(c, V(1), 1000000), EPIPE);
		k = 7;
		assert_int_equal(conc_chan_send_many(c, &it, 1, 0, &k), EPIPE);
		assert_int_equal(k, 0);
		assert_int_equal(conc_chan_recv(c, &it), EPIPE);
		assert_int_equal(conc_chan_recv_timeout(c, &it, 0), EPIPE);
		assert_int_equal(conc_chan_recv_many(c, &it, 1, UINT64_MAX, &k), EPIPE);
		if (bounded)
			assert_int_equal(conc_chan_force_send(c, it, &ev, &it), EPIPE);
		assert_int_equal(conc_select(&op, 1, UINT64_MAX, 0, &done), EPIPE);
		assert_int_equal(done, 0);
		conc_chan_destroy(c, NULL);
	}
	/* capacities no allocation can hold */
	c = V(1);
	assert_int_equal(conc_chan_create(&c, SIZE_MAX - 1), ENOMEM);
	assert_ptr_equal(c, V(1));
}

/* ---- sequential behaviour ---------------------------------------------------- */

static atomic_uintptr_t dropped_sum;
static atomic_uint dropped_n;
static uintptr_t last_dropped;
static void drop_rec(void *p)
{
	/* FIFO order: each dropped item is larger than the one before */
	assert_true(U(p) > last_dropped || atomic_load(&dropped_n) == 0);
	last_dropped = U(p);
	atomic_fetch_add(&dropped_sum, U(p));
	atomic_fetch_add(&dropped_n, 1);
}

static void test_chan_bounded_fifo(void **state)
{
	(void)state;
	const size_t cs[] = {1, 3, 4, 7, 64};
	for (size_t ci = 0; ci < sizeof cs / sizeof cs[0]; ci++) {
		size_t cap = cs[ci];
		conc_chan *c;
		assert_int_equal(conc_chan_create(&c, cap), 0);
		uintptr_t next_in = 0, next_out = 0;
		/* many laps, at every fill level */
		for (unsigned round = 0; round < 50; round++) {
			size_t fill = round % (cap + 1);
			while (next_in - next_out < fill)
				assert_int_equal(conc_chan_send(c, V(next_in++)), 0);
			assert_int_equal(conc_chan_len(c), next_in - next_out);
			while (next_in - next_out < cap)
				assert_int_equal(conc_chan_send_timeout(c, V(next_in++), 0), 0);
			assert_int_equal(conc_chan_len(c), cap);
			/* full: a try and a short wait fail, nothing changes */
			assert_int_equal(conc_chan_send_timeout(c, V(999999), 0), ETIMEDOUT);
			assert_int_equal(conc_chan_send_timeout(c, V(999999), 1000), ETIMEDOUT);
			assert_int_equal(conc_chan_len(c), cap);
			size_t take = (round * 7) % (cap + 1);
			for (size_t j = 0; j < take; j++) {
				void *it;
				assert_int_equal(conc_chan_recv(c, &it), 0);
				assert_ptr_equal(it, V(next_out++));
			}
		}
		/* NULL is an item like any other */
		void *it = V(1);
		while (conc_chan_recv_timeout(c, &it, 0) == 0)
			assert_ptr_equal(it, V(next_out++));
		assert_int_equal(next_in, next_out);
		assert_int_equal(conc_chan_send(c, NULL), 0);
		assert_int_equal(conc_chan_recv(c, &it), 0);
		assert_null(it);
		/* destroy drops what is left, in order */
		for (size_t j = 0; j < cap; j++)
			assert_int_equal(conc_chan_send(c, V(100 + j)), 0);
		it = V(0);
		assert_int_equal(conc_chan_recv(c, &it), 0); /* head moves off slot 0 */
		assert_int_equal(conc_chan_send(c, V(100 + cap)), 0);
		atomic_store(&dropped_sum, 0);
		atomic_store(&dropped_n, 0);
		last_dropped = 0;
		conc_chan_destroy(c, drop_rec);
		assert_int_equal(atomic_load(&dropped_n), cap);
		uintptr_t want = 0;
		for (size_t j = 1; j <= cap; j++)
			want += 100 + j;
		assert_int_equal(atomic_load(&dropped_sum), want);
	}
}

static void test_chan_unbounded_fifo(void **state)
{
	(void)state;
	conc_chan *c;
	assert_int_equal(conc_chan_create(&c, CONC_CHAN_UNBOUNDED), 0);
	for (uintptr_t i = 0; i < 5000; i++)
		assert_int_equal(conc_chan_send_timeout(c, V(i), 0), 0);
	assert_int_equal(conc_chan_len(c), 5000);
	for (uintptr_t i = 0; i < 2500; i++) {
		void *it;
		assert_int_equal(conc_chan_recv(c, &it), 0);
		assert_ptr_equal(it, V(i));
	}
	assert_int_equal(conc_chan_len(c), 2500);
	atomic_store(&dropped_sum, 0);
	atomic_store(&dropped_n, 0);
	last_dropped = 0;
	conc_chan_destroy(c, drop_rec);
	assert_int_equal(atomic_load(&dropped_n), 2500);
}

static void test_chan_batches(void **state)
{
	(void)state;
	for (size_t ci = 1; ci < NCAPS; ci++) {
		conc_chan *c;
		assert_int_equal(conc_chan_create(&c, caps[ci]), 0);
		void *in[10], *out[16];
		for (int i = 0; i < 10; i++)
			in[i] = V(i + 1);
		size_t sent = 99, got = 99;
		size_t room = caps[ci] < 10 ? caps[ci] : 10;
		int r = conc_chan_send_many(c, in, 10, 0, &sent);
		assert_int_equal(r, room < 10 ? ETIMEDOUT : 0);
		assert_int_equal(sent, room);
		/* with a timeout, full: times out with the prefix count */
		if (room < 10) {
			assert_int_equal(conc_chan_send_many(c, in + room, 10 - room, 2000, &sent),
					 ETIMEDOUT);
			assert_int_equal(sent, 0);
		}
		assert_int_equal(conc_chan_recv_many(c, out, 16, UINT64_MAX, &got), 0);
		assert_int_equal(got, room);
		for (size_t i = 0; i < got; i++)
			assert_ptr_equal(out[i], V(i + 1));
		assert_int_equal(conc_chan_recv_many(c, out, 16, 1000, &got), ETIMEDOUT);
		assert_int_equal(got, 0);
		/* max smaller than what is there */
		assert_int_equal(conc_chan_send_many(c, in, room, UINT64_MAX, &sent), 0);
		assert_int_equal(sent, room);
		assert_int_equal(conc_chan_recv_many(c, out, 1, 0, &got), 0);
		assert_int_equal(got, 1);
		assert_ptr_equal(out[0], V(1));
		conc_chan_close(c);
		/* closed: what is buffered still comes out, then EPIPE */
		size_t total = 0;
		while ((r = conc_chan_recv_many(c, out, 16, UINT64_MAX, &got)) == 0)
			total += got;
		assert_int_equal(r, EPIPE);
		assert_int_equal(total, room - 1);
		assert_int_equal(conc_chan_send_many(c, in, 2, 0, &sent), EPIPE);
		assert_int_equal(sent, 0);
		conc_chan_destroy(c, NULL);
	}
}

static void test_chan_force_send(void **state)
{
	(void)state;
	conc_chan *c;
	assert_int_equal(conc_chan_create(&c, 2), 0);
	bool ev = true;
	void *old = V(77);
	assert_int_equal(conc_chan_force_send(c, V(1), &ev, &old), 0);
	assert_false(ev);
	assert_ptr_equal(old, V(77));
	assert_int_equal(conc_chan_force_send(c, V(2), &ev, &old), 0);
	assert_false(ev);
	for (uintptr_t i = 3; i < 40; i++) {
		assert_int_equal(conc_chan_force_send(c, V(i), &ev, &old), 0);
		assert_true(ev);
		assert_ptr_equal(old, V(i - 2));
		assert_int_equal(conc_chan_len(c), 2);
	}
	void *it;
	assert_int_equal(conc_chan_recv(c, &it), 0);
	assert_ptr_equal(it, V(38));
	assert_int_equal(conc_chan_force_send(c, V(40), &ev, &old), 0);
	assert_false(ev);
	assert_int_equal(conc_chan_recv(c, &it), 0);
	assert_ptr_equal(it, V(39));
	assert_int_equal(conc_chan_recv(c, &it), 0);
	assert_ptr_equal(it, V(40));
	conc_chan_close(c);
	assert_int_equal(conc_chan_force_send(c, V(41), &ev, &old), EPIPE);
	conc_chan_destroy(c, NULL);
}

/* ---- timeouts --------------------------------------------------------------- */

static void test_chan_timeouts_never_early(void **state)
{
	(void)state;
	const uint64_t ts[] = {1, 1000, 100000, 2000000};
	for (size_t ci = 0; ci < NCAPS; ci++) {
		conc_chan *c;
		assert_int_equal(conc_chan_create(&c, caps[ci]), 0);
		bool fillable = caps[ci] != CONC_CHAN_UNBOUNDED;
		if (caps[ci] != 0 && fillable)
			for (size_t i = 0; i < caps[ci]; i++)
				assert_int_equal(conc_chan_send(c, V(i)), 0);
		for (size_t ti = 0; ti < sizeof ts / sizeof ts[0]; ti++) {
			void *it = NULL;
			size_t done, got;
			uint64_t t0 = now_ns();
			if (caps[ci] == 0) {
				assert_int_equal(conc_chan_recv_timeout(c, &it, ts[ti]), ETIMEDOUT);
				assert_true(now_ns() - t0 >= ts[ti]);
				t0 = now_ns();
				assert_int_equal(conc_chan_recv_many(c, &it, 1, ts[ti], &got), ETIMEDOUT);
				assert_true(now_ns() - t0 >= ts[ti]);
			}
			if (fillable) {
				t0 = now_ns();
				assert_int_equal(conc_chan_send_timeout(c, V(1), ts[ti]), ETIMEDOUT);
				assert_true(now_ns() - t0 >= ts[ti]);
				conc_select_op op = {c, true, V(2)};
				t0 = now_ns();
				assert_int_equal(conc_select(&op, 1, ts[ti], 0, &done), ETIMEDOUT);
				assert_true(now_ns() - t0 >= ts[ti]);
			}
		}
		conc_chan_destroy(c, NULL);
	}
	/* a receive on an empty buffered channel */
	conc_chan *c;
	assert_int_equal(conc_chan_create(&c, 8), 0);
	void *it;
	uint64_t t0 = now_ns();
	assert_int_equal(conc_chan_recv_timeout(c, &it, 3000000), ETIMEDOUT);
	assert_true(now_ns() - t0 >= 3000000);
	conc_select_op ops[2] = {{c, false, NULL}, {c, false, NULL}};
	size_t done;
	t0 = now_ns();
	assert_int_equal(conc_select(ops, 2, 3000000, 0, &done), ETIMEDOUT);
	assert_true(now_ns() - t0 >= 3000000);
	conc_chan_destroy(c, NULL);
}

/* ---- blocking and close -------------------------------------------------------- */

struct blocker {
	conc_chan *c;
	int op; /* 0 recv, 1 send, 2 select recv, 3 select send */
	void *item;
	int ret;
};

static void *blocker_main(void *arg)
{
	struct blocker *b = arg;
	size_t done;
	conc_select_op op = {b->c, b->op == 3, b->item};
	switch (b->op) {
	case 0:
		b->ret = conc_chan_recv(b->c, &b->item);
		break;
	case 1:
		b->ret = conc_chan_send(b->c, b->item);
		break;
	default:
		b->ret = conc_select(&op, 1, UINT64_MAX, 0, &done);
		if (b->ret == 0 && b->op == 2)
			b->item = op.item;
		break;
	}
	return NULL;
}

/* A blocked receiver is woken by a send, a blocked sender by a receive
 * (rendezvous: the receive takes its item), and every blocked call by a
 * close; the select path the same. */
static void test_chan_blocking_and_close(void **state)
{
	(void)state;
	conc_test_watchdog("chan blocking and close", 60);
	for (size_t ci = 0; ci < NCAPS; ci++) {
		size_t cap = caps[ci];
		bool sender_blocks = cap != CONC_CHAN_UNBOUNDED;
		for (int op = 0; op < 4; op++) {
			bool send = op & 1;
			if (send && !sender_blocks)
				continue;
			/* woken by a partner */
			conc_chan *c;
			assert_int_equal(conc_chan_create(&c, cap), 0);
			if (send && cap != 0)
				for (size_t i = 0; i < cap; i++)
					assert_int_equal(conc_chan_send(c, V(1000 + i)), 0);
			struct blocker b = {c, op, V(42), -1};
			pthread_t t;
			assert_int_equal(pthread_create(&t, NULL, blocker_main, &b), 0);
			wait_waiters(c, send, 1);
			void *it;
			if (send) {
				assert_int_equal(conc_chan_recv(c, &it), 0);
				assert_ptr_equal(it, cap == 0 ? V(42) : V(1000));
			} else {
				assert_int_equal(conc_chan_send(c, V(7)), 0);
			}
			pthread_join(t, NULL);
			assert_int_equal(b.ret, 0);
			if (!send)
				assert_ptr_equal(b.item, V(7));
			conc_chan_destroy(c, NULL);

			/* woken by close */
			assert_int_equal(conc_chan_create(&c, cap), 0);
			if (send && cap != 0)
				for (size_t i = 0; i < cap; i++)
					assert_int_equal(conc_chan_send(c, V(1000 + i)), 0);
			struct blocker b2 = {c, op, V(42), -1};
			assert_int_equal(pthread_create(&t, NULL, blocker_main, &b2), 0);
			wait_waiters(c, send, 1);
			conc_chan_close(c);
			pthread_join(t, NULL);
			assert_int_equal(b2.ret, EPIPE);
			/* a blocked sender's item was not sent: only the old ones */
			size_t n = 0;
			while (conc_chan_recv(c, &it) == 0) {
				assert_ptr_equal(it, V(1000 + n));
				n++;
			}
			assert_int_equal(n, send && cap != 0 ? cap : 0);
			conc_chan_destroy(c, NULL);
		}
	}
	conc_test_watchdog_off();
}

/* ---- MPMC runs: nothing lost, nothing twice, per-sender order ----------------- */

#define MAXP 4
struct mpmc {
	conc_chan *c;
	unsigned senders, n;
	atomic_uint senders_left;
	atomic_uint closer_go; /* racing close: close after this many sends */
	bool racing_close;
	atomic_ulong sent_ok[MAXP];      /* successful sends per sender */
	atomic_ulong recv_count, recv_sum, sent_sum;
	atomic_uint bad_order;
	atomic_ulong progress;
	atomic_uint index;
	bool use_select, use_many;
};

static void *mpmc_sender(void *arg)
{
	struct mpmc *m = arg;
	unsigned id = atomic_fetch_add(&m->index, 1);
	uint64_t sum = 0;
	unsigned ok = 0;
	for (unsigned i = 0; i < m->n; i++) {
		/* item: sender in the top bits, sequence + 1 below */
		uintptr_t v = ((uintptr_t)id << 40) | (i + 1);
		int r;
		if (m->use_select && (i & 1)) {
			conc_select_op op = {m->c, true, V(v)};
			size_t done;
			r = conc_select(&op, 1, UINT64_MAX, 0, &done);
		} else if (m->use_many && (i % 3 == 0)) {
			void *it = V(v);
			size_t s;
			r = conc_chan_send_many(m->c, &it, 1, UINT64_MAX, &s);
		} else {
			r = conc_chan_send(m->c, V(v));
		}
		if (r == EPIPE)
			break;
		if (r != 0) {
			atomic_fetch_add(&m->bad_order, 1000);
			break;
		}
		ok++;
		sum += v;
		atomic_fetch_add_explicit(&m->progress, 1, memory_order_relaxed);
		if (m->racing_close && id == 0 && i == atomic_load(&m->closer_go))
			conc_chan_close(m->c);
	}
	atomic_store(&m->sent_ok[id], ok);
	atomic_fetch_add(&m->sent_sum, sum);
	if (atomic_fetch_sub(&m->senders_left, 1) == 1)
		conc_chan_close(m->c);
	return NULL;
}

static void *mpmc_receiver(void *arg)
{
	struct mpmc *m = arg;
	uint64_t last[MAXP] = {0};
	uint64_t count = 0, sum = 0;
	void *buf[8];
	for (;;) {
		int r;
		size_t got = 1;
		if (m->use_many && (count & 1)) {
			r = conc_chan_recv_many(m->c, buf, 8, UINT64_MAX, &got);
		} else if (m->use_select && (count & 2)) {
			conc_select_op op = {m->c, false, NULL};
			size_t done;
			r = conc_select(&op, 1, UINT64_MAX, 0, &done);
			buf[0] = op.item;
		} else {
			r = conc_chan_recv(m->c, &buf[0]);
		}
		if (r == EPIPE)
			break;
		if (r != 0) {
			atomic_fetch_add(&m->bad_order, 1000);
			break;
		}
		for (size_t k = 0; k < got; k++) {
			uintptr_t v = U(buf[k]);
			unsigned id = (unsigned)(v >> 40);
			uint64_t seq = v & ((1ull << 40) - 1);
			if (id >= MAXP || seq <= last[id])
				atomic_fetch_add(&m->bad_order, 1);
			else
				last[id] = seq;
			count++;
			sum += v;
		}
		atomic_fetch_add_explicit(&m->progress, got, memory_order_relaxed);
	}
	atomic_fetch_add(&m->recv_count, count);
	atomic_fetch_add(&m->recv_sum, sum);
	return NULL;
}

static void mpmc_run(size_t cap, unsigned senders, unsigned receivers, unsigned n,
		     bool racing_close, bool use_select, bool use_many)
{
	struct mpmc *m = calloc(1, sizeof *m);
	assert_non_null(m);
	assert_int_equal(conc_chan_create(&m->c, cap), 0);
	m->senders = senders;
	m->n = n;
	atomic_store(&m->senders_left, senders);
	m->racing_close = racing_close;
	atomic_store(&m->closer_go, n / 2);
	m->use_select = use_select;
	m->use_many = use_many;
	conc_test_progress *w = conc_test_progress_watchdog_start("chan mpmc", &m->progress, 20);
	assert_non_null(w);
	pthread_t t[2 * MAXP];
	for (unsigned i = 0; i < receivers; i++)
		assert_int_equal(pthread_create(&t[i], NULL, mpmc_receiver, m), 0);
	for (unsigned i = 0; i < senders; i++)
		assert_int_equal(pthread_create(&t[receivers + i], NULL, mpmc_sender, m), 0);
	for (unsigned i = 0; i < senders + receivers; i++)
		pthread_join(t[i], NULL);
	conc_test_progress_watchdog_stop(w);
	uint64_t total = 0;
	for (unsigned i = 0; i < senders; i++)
		total += atomic_load(&m->sent_ok[i]);
	if (!racing_close)
		assert_int_equal(total, (uint64_t)senders * n);
	/* every successful send received once, nothing else */
	assert_int_equal(atomic_load(&m->bad_order), 0);
	assert_int_equal(atomic_load(&m->recv_count), total);
	assert_int_equal(atomic_load(&m->recv_sum), atomic_load(&m->sent_sum));
	void *it;
	assert_int_equal(conc_chan_recv_timeout(m->c, &it, 0), EPIPE);
	conc_chan_destroy(m->c, NULL);
	free(m);
}

static void test_chan_mpmc(void **state)
{
	(void)state;
	unsigned n = (unsigned)conc_test_iters(20000, 10);
	const size_t cs[] = {0, 1, 16, 1024, CONC_CHAN_UNBOUNDED};
	for (size_t ci = 0; ci < sizeof cs / sizeof cs[0]; ci++) {
		unsigned nn = cs[ci] == 0 ? n / 4 : n;
		mpmc_run(cs[ci], 1, 1, nn, false, false, false);
		mpmc_run(cs[ci], 2, 2, nn / 2, false, true, true);
		mpmc_run(cs[ci], 4, 3, nn / 4, false, false, true);
	}
}

/* Close while senders are sending: nothing sent after the close is
 * received, nothing whose send succeeded is lost. */
static void test_chan_racing_close(void **state)
{
	(void)state;
	unsigned n = (unsigned)conc_test_iters(4000, 10);
	const size_t cs[] = {0, 2, 64, CONC_CHAN_UNBOUNDED};
	for (int rep = 0; rep < 5; rep++)
		for (size_t ci = 0; ci < sizeof cs / sizeof cs[0]; ci++)
			mpmc_run(cs[ci], 3, 2, n, true, rep & 1, rep & 2);
}

/* force_send under concurrency: every item sent is either received or
 * evicted, once. */
struct forcer {
	conc_chan *c;
	unsigned n;
	atomic_ulong sent_sum, got_sum, evicted_sum, got_n, evicted_n;
	atomic_uint left;
	atomic_ulong progress; /* force_sends done (the liveness watchdog's) */
};

static void *force_sender(void *arg)
{
	struct forcer *f = arg;
	static atomic_uint ids;
	uintptr_t base = (uintptr_t)(atomic_fetch_add(&ids, 1) + 1) << 32;
	uint64_t s = 0, es = 0, en = 0;
	for (unsigned i = 1; i <= f->n; i++) {
		bool ev;
		void *old;
		if (conc_chan_force_send(f->c, V(base | i), &ev, &old) != 0)
			abort();
		s += base | i;
		atomic_fetch_add_explicit(&f->progress, 1, memory_order_relaxed);
		if (ev) {
			es += U(old);
			en++;
		}
	}
	atomic_fetch_add(&f->sent_sum, s);
	atomic_fetch_add(&f->evicted_sum, es);
	atomic_fetch_add(&f->evicted_n, en);
	if (atomic_fetch_sub(&f->left, 1) == 1)
		conc_chan_close(f->c);
	return NULL;
}

static void *force_receiver(void *arg)
{
	struct forcer *f = arg;
	void *it;
	uint64_t s = 0, k = 0;
	while (conc_chan_recv(f->c, &it) == 0) {
		s += U(it);
		k++;
	}
	atomic_fetch_add(&f->got_sum, s);
	atomic_fetch_add(&f->got_n, k);
	return NULL;
}

static void test_chan_force_send_concurrent(void **state)
{
	(void)state;
	conc_test_watchdog("chan force_send concurrent", 120);
	const size_t cs[] = {1, 2, 8};
	for (size_t ci = 0; ci < 3; ci++) {
		struct forcer f = {0};
		f.n = (unsigned)conc_test_iters(20000, 10);
		atomic_store(&f.left, 2);
		assert_int_equal(conc_chan_create(&f.c, cs[ci]), 0);
		pthread_t t[4];
		pthread_create(&t[0], NULL, force_receiver, &f);
		pthread_create(&t[1], NULL, force_receiver, &f);
		pthread_create(&t[2], NULL, force_sender, &f);
		pthread_create(&t[3], NULL, force_sender, &f);
		for (int i = 0; i < 4; i++)
			pthread_join(t[i], NULL);
		assert_int_equal(atomic_load(&f.got_n) + atomic_load(&f.evicted_n), 2 * f.n);
		assert_int_equal(atomic_load(&f.got_sum) + atomic_load(&f.evicted_sum),
				 atomic_load(&f.sent_sum));
		conc_chan_destroy(f.c, NULL);
	}
	conc_test_watchdog_off();
}

/* Two force-senders into a full channel and no receiver at all (a
 * drop-oldest ring filled by several producers, drained after they are
 * joined): force_send never blocks, so both finish; then every item sent
 * is either evicted or still buffered, once.  Review finding: one sender's
 * head CAS failed behind the other's unfinished eviction, and it waited
 * for a receiver that never came (capacity >= 2). */
static void test_chan_force_send_no_receiver(void **state)
{
	(void)state;
	const size_t cs[] = {2, 4, 8};
	for (size_t ci = 0; ci < 3; ci++) {
		struct forcer f = {0};
		f.n = (unsigned)conc_test_iters(100000, 10);
		atomic_store(&f.left, 2);
		assert_int_equal(conc_chan_create(&f.c, cs[ci]), 0);
		conc_test_progress *w = conc_test_progress_watchdog_start(
			"chan force_send without a receiver", &f.progress, 5);
		assert_non_null(w);
		pthread_t t[2];
		assert_int_equal(pthread_create(&t[0], NULL, force_sender, &f), 0);
		assert_int_equal(pthread_create(&t[1], NULL, force_sender, &f), 0);
		for (int i = 0; i < 2; i++)
			pthread_join(t[i], NULL);
		conc_test_progress_watchdog_stop(w);
		force_receiver(&f); /* drain what is buffered (closed by the last sender) */
		assert_int_equal(atomic_load(&f.got_n), cs[ci]);
		assert_int_equal(atomic_load(&f.got_n) + atomic_load(&f.evicted_n), 2 * f.n);
		assert_int_equal(atomic_load(&f.got_sum) + atomic_load(&f.evicted_sum),
				 atomic_load(&f.sent_sum));
		conc_chan_destroy(f.c, NULL);
	}
}

/* Liveness without a rescuing close: two threads ping-pong one token over
 * two channels, each blocking in every receive until the other's send; a
 * lost wake-up leaves both asleep for good (the progress watchdog fails the
 * test).  Every flavour, and the select path on one side. */
struct pingpong {
	conc_chan *ping, *pong;
	unsigned rounds;
	bool use_select;
	atomic_ulong progress;
	int bad;
};

static void *pingpong_echo(void *arg)
{
	struct pingpong *pp = arg;
	for (unsigned i = 0; i < pp->rounds; i++) {
		void *v = NULL;
		int r;
		if (pp->use_select) {
			conc_select_op op = {pp->ping, false, NULL};
			size_t done;
			r = conc_select(&op, 1, UINT64_MAX, 0, &done);
			v = op.item;
		} else {
			r = conc_chan_recv(pp->ping, &v);
		}
		if (r || U(v) != i || conc_chan_send(pp->pong, V(U(v) + 1)) != 0) {
			pp->bad++;
			return NULL;
		}
	}
	return NULL;
}

static void test_chan_pingpong_liveness(void **state)
{
	(void)state;
	const size_t cs[] = {0, 1, 2, CONC_CHAN_UNBOUNDED};
	for (size_t ci = 0; ci < sizeof cs / sizeof cs[0]; ci++) {
		for (int sel = 0; sel < 2; sel++) {
			struct pingpong pp = {0};
			pp.rounds = (unsigned)conc_test_iters(cs[ci] == 0 ? 1000 : 3000, 10);
			pp.use_select = sel;
			assert_int_equal(conc_chan_create(&pp.ping, cs[ci]), 0);
			assert_int_equal(conc_chan_create(&pp.pong, cs[ci]), 0);
			conc_test_progress *w =
				conc_test_progress_watchdog_start("chan ping-pong", &pp.progress, 20);
			assert_non_null(w);
			pthread_t t;
			uint64_t t0 = now_ns();
			assert_int_equal(pthread_create(&t, NULL, pingpong_echo, &pp), 0);
			for (unsigned i = 0; i < pp.rounds; i++) {
				void *v;
				assert_int_equal(conc_chan_send(pp.ping, V(i)), 0);
				assert_int_equal(conc_chan_recv(pp.pong, &v), 0);
				assert_ptr_equal(v, V(i + 1));
				atomic_fetch_add_explicit(&pp.progress, 1, memory_order_relaxed);
			}
			pthread_join(t, NULL);
			conc_test_progress_watchdog_stop(w);
			print_message("ping-pong cap %zu%s: %u round trips, %.1f us each\n",
				      cs[ci] == CONC_CHAN_UNBOUNDED ? (size_t)0 - 1 : cs[ci],
				      sel ? " (select)" : "", pp.rounds,
				      (double)(now_ns() - t0) / 1e3 / pp.rounds);
			assert_int_equal(pp.bad, 0);
			conc_chan_destroy(pp.ping, NULL);
			conc_chan_destroy(pp.pong, NULL);
		}
	}
}


/* ---- select ------------------------------------------------------------------- */

static void test_chan_select_basic(void **state)
{
	(void)state;
	conc_chan *a, *b, *z;
	assert_int_equal(conc_chan_create(&a, 4), 0);
	assert_int_equal(conc_chan_create(&b, CONC_CHAN_UNBOUNDED), 0);
	assert_int_equal(conc_chan_create(&z, 0), 0);
	size_t done = 99;
	/* biased: the lowest ready index, every time */
	assert_int_equal(conc_chan_send(a, V(1)), 0);
	assert_int_equal(conc_chan_send(b, V(2)), 0);
	conc_select_op ops[3] = {{z, false, NULL}, {b, false, NULL}, {a, false, NULL}};
	assert_int_equal(conc_select(ops, 3, 0, CONC_SELECT_BIASED, &done), 0);
	assert_int_equal(done, 1);
	assert_ptr_equal(ops[1].item, V(2));
	assert_int_equal(conc_select(ops, 3, 0, CONC_SELECT_BIASED, &done), 0);
	assert_int_equal(done, 2);
	assert_ptr_equal(ops[2].item, V(1));
	assert_int_equal(conc_select(ops, 3, 0, 0, &done), ETIMEDOUT);
	/* mixed: a send to a channel with room is ready */
	conc_select_op mix[2] = {{a, false, NULL}, {a, true, V(9)}};
	assert_int_equal(conc_select(mix, 2, UINT64_MAX, 0, &done), 0);
	assert_int_equal(done, 1);
	assert_int_equal(conc_chan_len(a), 1);
	/* fair: both ready, each chosen about half the time */
	unsigned hits[2] = {0, 0};
	for (int i = 0; i < 2000; i++) {
		conc_select_op two[2] = {{a, true, V(1)}, {b, true, V(2)}};
		assert_int_equal(conc_select(two, 2, 0, 0, &done), 0);
		hits[done]++;
		void *it;
		assert_int_equal(conc_chan_recv(done ? b : a, &it), 0);
	}
	/* binomial(2000, 1/2): below 800 has probability < 1e-19 */
	assert_true(hits[0] > 800 && hits[1] > 800);
	/* closed counts as ready: EPIPE with its index */
	conc_chan_close(z);
	assert_int_equal(conc_select(ops, 3, UINT64_MAX, CONC_SELECT_BIASED, &done), EPIPE);
	assert_int_equal(done, 0);
	/* a closed receive is ready only once drained */
	void *it;
	assert_int_equal(conc_chan_recv(a, &it), 0); /* a: empty now */
	assert_int_equal(conc_chan_send(a, V(5)), 0);
	conc_chan_close(a);
	conc_select_op ra = {a, false, NULL};
	assert_int_equal(conc_select(&ra, 1, UINT64_MAX, 0, &done), 0);
	assert_ptr_equal(ra.item, V(5));
	assert_int_equal(conc_select(&ra, 1, UINT64_MAX, 0, &done), EPIPE);
	/* more ops than the stack holds */
	conc_select_op many[40];
	for (int i = 0; i < 40; i++)
		many[i] = (conc_select_op){b, false, NULL};
	assert_int_equal(conc_chan_send(b, V(11)), 0);
	assert_int_equal(conc_select(many, 40, UINT64_MAX, 0, &done), 0);
	assert_ptr_equal(many[done].item, V(11));
	assert_int_equal(conc_select(many, 40, 1000, 0, &done), ETIMEDOUT);
	conc_chan_destroy(a, NULL);
	conc_chan_destroy(b, NULL);
	conc_chan_destroy(z, NULL);
}


/*
 * Exactly once, under everything at once.  Channels: A bounded (4), B
 * unbounded, Z rendezvous, Y rendezvous.  Two producers select over sends
 * of one value on A, B, Z and Z again (the same channel twice); two
 * consumers select over receives from A, Z, B and Z again plus a send of a
 * token on Y (mixed send and receive; rendezvous selects on both sides of
 * Z, racing for the same partners); a plain receiver drains Y.  An
 * operation whose channel reports EPIPE is dropped from the caller's set
 * (the value stays unsent and is offered again).  A, B and Z are closed
 * after the producers finish, or (racing) by a closer while they run.
 * Every value a select reported sent is received exactly once, no other
 * value is received, every token likewise.
 */
#define SP 2
struct sel_stress {
	conc_chan *a, *b, *z, *y;
	unsigned n;
	bool racing;
	atomic_uchar *sent, *recvd; /* per value */
	atomic_uchar *tok_sent, *tok_recvd;
	unsigned tok_max;
	atomic_ulong progress, selects;
	atomic_uint bad, index, cons_index;
	atomic_uint producers_left;
};

static int drop_chan(conc_select_op *ops, int n, conc_chan *c)
{
	int k = 0;
	for (int i = 0; i < n; i++)
		if (ops[i].chan != c)
			ops[k++] = ops[i];
	return k;
}

static void *sel_producer(void *arg)
{
	struct sel_stress *s = arg;
	unsigned id = atomic_fetch_add(&s->index, 1);
	conc_select_op ops[4] = {{s->a, true, NULL}, {s->b, true, NULL},
				 {s->z, true, NULL}, {s->z, true, NULL}};
	int n = 4;
	unsigned long sels = 0;
	for (unsigned i = 0; i < s->n && n > 0; i++) {
		size_t v = (size_t)id * s->n + i;
		for (;;) {
			for (int k = 0; k < n; k++)
				ops[k].item = V(v + 1);
			size_t done = 99;
			int r = conc_select(ops, (size_t)n, UINT64_MAX, (i & 4) ? CONC_SELECT_BIASED : 0,
					    &done);
			sels++;
			if (r == 0) {
				if (ops[done].item != V(v + 1))
					atomic_fetch_add(&s->bad, 1);
				atomic_fetch_add(&s->sent[v], 1);
				break;
			}
			if (r != EPIPE || done >= (size_t)n) {
				atomic_fetch_add(&s->bad, 1);
				return NULL;
			}
			n = drop_chan(ops, n, ops[done].chan);
			if (n == 0)
				break;
		}
		atomic_fetch_add_explicit(&s->progress, 1, memory_order_relaxed);
	}
	atomic_fetch_add(&s->selects, sels);
	if (atomic_fetch_sub(&s->producers_left, 1) == 1 && !s->racing) {
		conc_chan_close(s->a);
		conc_chan_close(s->b);
		conc_chan_close(s->z);
	}
	return NULL;
}

static void *sel_consumer(void *arg)
{
	struct sel_stress *s = arg;
	unsigned id = atomic_fetch_add(&s->cons_index, 1);
	conc_select_op ops[5] = {{s->a, false, NULL}, {s->z, false, NULL}, {s->b, false, NULL},
				 {s->z, false, NULL}, {s->y, true, NULL}};
	int n = 5;
	unsigned tok = 0;
	unsigned long sels = 0;
	for (;;) {
		bool any_recv = false;
		for (int k = 0; k < n; k++)
			any_recv |= !ops[k].send;
		if (!any_recv)
			break;
		unsigned tv = id * (s->tok_max / 2) + tok;
		bool tok_ok = tok < s->tok_max / 2;
		int m = n;
		if (!tok_ok)
			m = drop_chan(ops, n, s->y); /* no tokens left to give */
		n = m;
		for (int k = 0; k < n; k++)
			if (ops[k].send)
				ops[k].item = V(tv + 1);
			else
				ops[k].item = V(0);
		size_t done = 99;
		int r = conc_select(ops, (size_t)n, UINT64_MAX, (sels & 8) ? CONC_SELECT_BIASED : 0, &done);
		sels++;
		if (r == EPIPE) {
			if (done >= (size_t)n || ops[done].send) {
				atomic_fetch_add(&s->bad, 1);
				break;
			}
			n = drop_chan(ops, n, ops[done].chan);
			continue;
		}
		if (r != 0 || done >= (size_t)n) {
			atomic_fetch_add(&s->bad, 1);
			break;
		}
		if (ops[done].send) {
			atomic_fetch_add(&s->tok_sent[tv], 1);
			tok++;
		} else {
			uintptr_t v = U(ops[done].item);
			if (v == 0 || v > (uintptr_t)SP * s->n)
				atomic_fetch_add(&s->bad, 1);
			else
				atomic_fetch_add(&s->recvd[v - 1], 1);
		}
		atomic_fetch_add_explicit(&s->progress, 1, memory_order_relaxed);
	}
	atomic_fetch_add(&s->selects, sels);
	return NULL;
}

static void *sel_y_drain(void *arg)
{
	struct sel_stress *s = arg;
	void *it;
	while (conc_chan_recv(s->y, &it) == 0) {
		uintptr_t v = U(it);
		if (v == 0 || v > s->tok_max)
			atomic_fetch_add(&s->bad, 1);
		else
			atomic_fetch_add(&s->tok_recvd[v - 1], 1);
	}
	return NULL;
}

static void *sel_closer(void *arg)
{
	struct sel_stress *s = arg;
	/* close once the producers are about a third through */
	while (atomic_load(&s->progress) < s->n / 2 * SP / 3 &&
	       atomic_load(&s->producers_left) > 0)
		sched_yield();
	conc_chan_close(s->z);
	sched_yield();
	conc_chan_close(s->a);
	conc_chan_close(s->b);
	return NULL;
}

static unsigned long sel_stress_run(unsigned n, bool racing)
{
	struct sel_stress *s = calloc(1, sizeof *s);
	assert_non_null(s);
	s->n = n;
	s->racing = racing;
	s->tok_max = 2 * n;
	s->sent = calloc(SP * (size_t)n, 1);
	s->recvd = calloc(SP * (size_t)n, 1);
	s->tok_sent = calloc(s->tok_max, 1);
	s->tok_recvd = calloc(s->tok_max, 1);
	assert_true(s->sent && s->recvd && s->tok_sent && s->tok_recvd);
	atomic_store(&s->producers_left, SP);
	assert_int_equal(conc_chan_create(&s->a, 4), 0);
	assert_int_equal(conc_chan_create(&s->b, CONC_CHAN_UNBOUNDED), 0);
	assert_int_equal(conc_chan_create(&s->z, 0), 0);
	assert_int_equal(conc_chan_create(&s->y, 0), 0);
	conc_test_progress *w = conc_test_progress_watchdog_start("chan select stress", &s->progress, 20);
	assert_non_null(w);
	pthread_t p[SP], c[2], y, cl;
	assert_int_equal(pthread_create(&y, NULL, sel_y_drain, s), 0);
	for (int i = 0; i < 2; i++)
		assert_int_equal(pthread_create(&c[i], NULL, sel_consumer, s), 0);
	for (int i = 0; i < SP; i++)
		assert_int_equal(pthread_create(&p[i], NULL, sel_producer, s), 0);
	if (racing)
		assert_int_equal(pthread_create(&cl, NULL, sel_closer, s), 0);
	for (int i = 0; i < SP; i++)
		pthread_join(p[i], NULL);
	if (racing)
		pthread_join(cl, NULL);
	for (int i = 0; i < 2; i++)
		pthread_join(c[i], NULL);
	conc_chan_close(s->y);
	pthread_join(y, NULL);
	conc_test_progress_watchdog_stop(w);
	assert_int_equal(atomic_load(&s->bad), 0);
	unsigned long nsent = 0;
	for (size_t v = 0; v < SP * (size_t)n; v++) {
		assert_true(atomic_load(&s->sent[v]) <= 1);
		assert_int_equal(atomic_load(&s->recvd[v]), atomic_load(&s->sent[v]));
		nsent += atomic_load(&s->sent[v]);
	}
	for (size_t v = 0; v < s->tok_max; v++)
		assert_int_equal(atomic_load(&s->tok_recvd[v]), atomic_load(&s->tok_sent[v]));
	if (!racing)
		assert_int_equal(nsent, SP * (unsigned long)n);
	unsigned long sels = atomic_load(&s->selects);
	conc_chan_destroy(s->a, NULL);
	conc_chan_destroy(s->b, NULL);
	conc_chan_destroy(s->z, NULL);
	conc_chan_destroy(s->y, NULL);
	free(s->sent);
	free(s->recvd);
	free(s->tok_sent);
	free(s->tok_recvd);
	free(s);
	return sels;
}

static void test_chan_select_exactly_once(void **state)
{
	(void)state;
	/* about 10^5 selects at scale 1, 10^6 at scale 10 */
	unsigned n = (unsigned)conc_test_iters(12500, 10);
	unsigned long sels = sel_stress_run(n, false);
	for (int rep = 0; rep < 4; rep++)
		sels += sel_stress_run(n / 4 + 1, true);
	print_message("%lu selects\n", sels);
}


/* A select over a send and a receive on the same rendezvous channel never
 * pairs with itself: alone it times out; beside a receiver it sends, beside
 * a sender it receives. */
struct selfpair {
	conc_chan *z;
	int ret;
	size_t done;
	void *got;
};

static void *selfpair_main(void *arg)
{
	struct selfpair *sp = arg;
	conc_select_op ops[2] = {{sp->z, true, V(31)}, {sp->z, false, V(0)}};
	sp->ret = conc_select(ops, 2, UINT64_MAX, 0, &sp->done);
	sp->got = ops[1].item;
	return NULL;
}

static void test_chan_select_same_rendezvous(void **state)
{
	(void)state;
	conc_test_watchdog("chan select same rendezvous", 60);
	conc_chan *z;
	assert_int_equal(conc_chan_create(&z, 0), 0);
	conc_select_op ops[2] = {{z, true, V(31)}, {z, false, V(0)}};
	size_t done;
	assert_int_equal(conc_select(ops, 2, 0, 0, &done), ETIMEDOUT);
	assert_int_equal(conc_select(ops, 2, 2000000, 0, &done), ETIMEDOUT);
	for (int side = 0; side < 2; side++) {
		for (int rep = 0; rep < 50; rep++) {
			struct selfpair sp = {z, -1, 99, NULL};
			pthread_t t;
			assert_int_equal(pthread_create(&t, NULL, selfpair_main, &sp), 0);
			/* the select is registered on both sides of z */
			wait_waiters(z, true, 1);
			wait_waiters(z, false, 1);
			void *it;
			if (side == 0) {
				assert_int_equal(conc_chan_recv(z, &it), 0);
				assert_ptr_equal(it, V(31));
			} else {
				assert_int_equal(conc_chan_send(z, V(77)), 0);
			}
			pthread_join(t, NULL);
			assert_int_equal(sp.ret, 0);
			assert_int_equal(sp.done, (size_t)side);
			if (side == 1)
				assert_ptr_equal(sp.got, V(77));
			/* nothing left behind on either side */
			assert_int_equal(conc__chan_waiters(z, true), 0);
			assert_int_equal(conc__chan_waiters(z, false), 0);
		}
	}
	conc_chan_destroy(z, NULL);
	conc_test_watchdog_off();
}


/* ---- lincheck: the bounded channel against a sequential bounded FIFO --------- */

static size_t lc_cap;
static int lcc_create(void **c)
{
	return conc_chan_create((conc_chan **)c, lc_cap);
}
static void lcc_destroy(void *c)
{
	conc_chan_destroy(c, NULL);
}
static int lcc_push(void *c, void *item)
{
	return conc_chan_send_timeout(c, item, 0); /* ETIMEDOUT when full */
}
static bool lcc_try_pop(void *c, void **item)
{
	return conc_chan_recv_timeout(c, item, 0) == 0;
}

/* The checker itself: a failed push must meet a full container. */
static void test_chan_lincheck_checker(void **state)
{
	(void)state;
	lc_op h[2] = {{1, 2, LC_PUSH, true, 5, 0}, {3, 4, LC_PUSH, false, 6, 0}};
	assert_true(lc_check_bounded(h, 2, 1));
	assert_false(lc_check_bounded(h, 2, 2)); /* room for 6: may not fail */
	lc_op g[3] = {{1, 2, LC_PUSH, true, 5, 0}, {3, 4, LC_PUSH, true, 6, 0},
		      {5, 6, LC_POP, true, 5, 0}};
	assert_true(lc_check_bounded(g, 3, 2));
	assert_false(lc_check_bounded(g, 3, 1)); /* full after 5: 6 cannot go in */
}

static void test_chan_lincheck_bounded(void **state)
{
	(void)state;
	static const lc_target target = {lcc_create, lcc_destroy, lcc_push, lcc_try_pop};
	unsigned long histories = conc_test_iters(6000, 10);
	conc_test_watchdog("chan lincheck", 120 + (unsigned)(histories / 100));
	unsigned long total = 0, overlapping = 0, full = 0;
	for (size_t cap = 1; cap <= 3; cap++) {
		lc_cap = cap;
		for (unsigned prefill = 0; prefill <= cap && prefill <= 2; prefill++) {
			lc_report rep;
			assert_int_equal(lc_run_bounded(&target, cap, 3, 6, prefill, 55,
							histories / 9 + 1, 77 + cap * 3 + prefill, &rep), 0);
			lc_print_violation(&rep);
			assert_int_equal(rep.violations, 0);
			total += rep.histories;
			overlapping += rep.overlapping;
		}
	}
	(void)full;
	print_message("%lu of %lu bounded-channel histories overlap\n", overlapping, total);
	if (overlapping == 0)
		skip();
	conc_test_watchdog_off();
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_chan_errors),
		cmocka_unit_test(test_chan_bounded_fifo),
		cmocka_unit_test(test_chan_unbounded_fifo),
		cmocka_unit_test(test_chan_batches),
		cmocka_unit_test(test_chan_force_send),
		cmocka_unit_test(test_chan_timeouts_never_early),
		cmocka_unit_test(test_chan_blocking_and_close),
		cmocka_unit_test(test_chan_mpmc),
		cmocka_unit_test(test_chan_racing_close),
		cmocka_unit_test(test_chan_force_send_concurrent),
		cmocka_unit_test(test_chan_force_send_no_receiver),
		cmocka_unit_test(test_chan_pingpong_liveness),
		cmocka_unit_test(test_chan_select_basic),
		cmocka_unit_test(test_chan_select_exactly_once),
		cmocka_unit_test(test_chan_select_same_rendezvous),
		cmocka_unit_test(test_chan_lincheck_checker),
		cmocka_unit_test(test_chan_lincheck_bounded),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
