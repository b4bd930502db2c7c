/*
 * faults_chan.c - the faults suite (issue 8, tests/lib/faults.h):
 * conc/chan.h.  Create (each flavour), an unbounded send that needs a new
 * queue segment, a select with more operations than it keeps on its stack,
 * swept; then producers and consumers on an unbounded channel while a
 * quarter of the allocations fail (every send that returned 0 received
 * once, every ENOMEM send left nothing behind).
 */
#include <pthread.h>
#include <stdlib.h>

#include "faults.h"

#include "chan/chan_internal.h"
#include "queue/queue_internal.h"

static void run_chan_create(struct sweep *sw, size_t cap)
{
	conc_chan *c = SENTINEL;
	arm(sw);
	int err = conc_chan_create(&c, cap);
	disarm(sw);
	CHECK(sw, err == want_err(sw));
	if (err) {
		CHECK(sw, c == SENTINEL);
		CHECK(sw, conc_chan_create(&c, cap) == 0);
	}
	CHECK(sw, conc_chan_capacity(c) == cap);
	void *x = NULL;
	if (cap != 0) {
		CHECK(sw, conc_chan_send(c, ITEM(7)) == 0);
		CHECK(sw, conc_chan_recv(c, &x) == 0 && x == ITEM(7));
	}
	CHECK(sw, conc_chan_recv_timeout(c, &x, 0) == ETIMEDOUT);
	conc_chan_destroy(c, NULL);
}

static void run_create_zero(struct sweep *sw) { run_chan_create(sw, 0); }
static void run_create_bounded(struct sweep *sw) { run_chan_create(sw, 64); }
static void run_create_unbounded(struct sweep *sw) { run_chan_create(sw, CONC_CHAN_UNBOUNDED); }

/* An unbounded send that needs a new segment: ENOMEM, nothing sent, the
 * channel usable and in order afterwards. */
static void run_unbounded_send(struct sweep *sw)
{
	conc_chan *c;
	CHECK(sw, conc_chan_create(&c, CONC_CHAN_UNBOUNDED) == 0);
	unsigned n = conc__queue_segment_slots();
	for (unsigned i = 1; i <= n; i++)
		CHECK(sw, conc_chan_send(c, ITEM(i)) == 0);
	arm(sw);
	int err = conc_chan_send(c, ITEM(n + 1));
	disarm(sw);
	CHECK(sw, err == want_err(sw));
	CHECK(sw, conc_chan_len(c) == n + (err == 0));
	if (err)
		CHECK(sw, conc_chan_send(c, ITEM(n + 1)) == 0);
	size_t sent = 0;
	void *more[2] = {ITEM(n + 2), ITEM(n + 3)};
	CHECK(sw, conc_chan_send_many(c, more, 2, 0, &sent) == 0 && sent == 2);
	void *x;
	for (unsigned i = 1; i <= n + 3; i++) {
		int r = conc_chan_recv_timeout(c, &x, 0);
		CHECK(sw, r == 0 && x == ITEM(i));
		if (r != 0 || x != ITEM(i))
			break;
	}
	CHECK(sw, conc_chan_recv_timeout(c, &x, 0) == ETIMEDOUT);
	atomic_store(&dropped, 0);
	conc_chan_destroy(c, drop_count);
	CHECK(sw, atomic_load(&dropped) == 0);
}

/* A select over more operations than it keeps on its stack allocates its
 * waiter records: ENOMEM with nothing done. */
static void run_select_big(struct sweep *sw)
{
	conc_chan *c;
	CHECK(sw, conc_chan_create(&c, 4) == 0);
	CHECK(sw, conc_chan_send(c, ITEM(5)) == 0);
	conc_select_op ops[20];
	for (int i = 0; i < 20; i++)
		ops[i] = (conc_select_op){c, false, ITEM(99)};
	size_t done = 1234;
	arm(sw);
	int err = conc_select(ops, 20, 0, 0, &done);
	disarm(sw);
	CHECK(sw, err == want_err(sw));
	if (err) {
		CHECK(sw, done == 1234);
		CHECK(sw, conc_chan_len(c) == 1);
		for (int i = 0; i < 20; i++)
			CHECK(sw, ops[i].item == ITEM(99));
		CHECK(sw, conc_select(ops, 20, 0, 0, &done) == 0);
	}
	CHECK(sw, done < 20 && ops[done].item == ITEM(5));
	CHECK(sw, conc_chan_len(c) == 0);
	conc_chan_destroy(c, NULL);
}

static void test_faults_chan(void **state)
{
	(void)state;
	conc_test_watchdog("faults_chan", 180);
	sweep("chan_create(0)", run_create_zero);
	sweep("chan_create(64)", run_create_bounded);
	sweep("chan_create(unbounded)", run_create_unbounded);
	sweep("chan_send(unbounded)", run_unbounded_send);
	sweep("select(20 ops)", run_select_big);
	conc_test_watchdog_off();
}

/* ---- hammer: random failures under concurrency ---------------------------- */

static conc_chan *ham_c;
static atomic_ulong ham_sent_sum, ham_sent_n, ham_recv_sum, ham_recv_n, ham_enomem;
static atomic_int ham_left;
static unsigned ham_n;

static void *ham_producer(void *arg)
{
	uintptr_t base = ((uintptr_t)arg + 1) << 32;
	uint64_t s = 0, k = 0, e = 0;
	for (unsigned i = 1; i <= ham_n; i++) {
		int r = conc_chan_send(ham_c, ITEM(base | i));
		if (r == 0) {
			s += base | i;
			k++;
		} else if (r == ENOMEM) {
			e++;
		} else {
			abort();
		}
	}
	atomic_fetch_add(&ham_sent_sum, s);
	atomic_fetch_add(&ham_sent_n, k);
	atomic_fetch_add(&ham_enomem, e);
	if (atomic_fetch_sub(&ham_left, 1) == 1)
		conc_chan_close(ham_c);
	return NULL;
}

static void *ham_consumer(void *arg)
{
	(void)arg;
	uint64_t s = 0, k = 0;
	void *x;
	while (conc_chan_recv(ham_c, &x) == 0) {
		s += (uintptr_t)x;
		k++;
	}
	atomic_fetch_add(&ham_recv_sum, s);
	atomic_fetch_add(&ham_recv_n, k);
	return NULL;
}

static void *ham_thread(void *arg)
{
	return (uintptr_t)arg < 2 ? ham_producer(arg) : ham_consumer(arg);
}

static void test_faults_hammer_chan(void **state)
{
	(void)state;
	conc_test_watchdog("faults_hammer_chan", 180);
	ham_n = (unsigned)conc_test_iters(200000, 10);
	assert_int_equal(conc_chan_create(&ham_c, CONC_CHAN_UNBOUNDED), 0);
	atomic_store(&ham_left, 2);
	conc__fault_reset();
	conc__fault_fail_rate(HAM_PPM, 0, 7);
	run_threads_indexed(4, ham_thread);
	long failed = conc__fault_alloc_failures();
	conc__fault_fail_rate(0, 0, 0);
	conc__fault_reset();
	hammer_failed += failed;
	assert_int_equal(atomic_load(&ham_recv_n), atomic_load(&ham_sent_n));
	assert_int_equal(atomic_load(&ham_recv_sum), atomic_load(&ham_sent_sum));
	assert_int_equal(atomic_load(&ham_sent_n) + atomic_load(&ham_enomem), 2ul * ham_n);
	assert_int_equal((long)atomic_load(&ham_enomem), failed);
	printf("faults hammer chan | sends=%lu enomem=%lu received=%lu\n",
	       2ul * ham_n, atomic_load(&ham_enomem), atomic_load(&ham_recv_n));
	conc_chan_destroy(ham_c, NULL);
	conc_test_watchdog_off();
}

int main(void)
{
	faults_begin("chan");
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_faults_chan),
		cmocka_unit_test(test_faults_hammer_chan),
	};
	return faults_end(cmocka_run_group_tests(tests, NULL, NULL));
}
