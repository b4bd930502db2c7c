/*
 * stress_epoch.c - EBR memory stays bounded (issue 8, "memory").
 *
 * Each test uses a private domain, so that nothing else's garbage shows in
 * its counters, and counts the callbacks it gets back itself besides
 * reading conc_epoch_get_stats.
 *
 * The bound.  issue 8 asks for pending <= 3 x bag size x threads while the
 * threads make progress.  "Bag size" here is CONC__EPOCH_ADVANCE_MAX
 * (1024), for this reason (src/epoch/epoch.c): a thread's retires go to the bag
 * of the epoch they were tagged with, and a node tagged t is due once the
 * epoch reaches t + CONC__EPOCH_GRACE (3), so a thread holds at most three
 * bags that are not yet due (tags E-2, E-1, E).  A retiring thread tries to
 * advance every ADVANCE_EVERY (64) retires when the domain's last attempt is
 * older than ADVANCE_GAP_NS, and after ADVANCE_MAX retires in any case;
 * while the epoch can advance, one epoch's bag of a thread therefore holds
 * at most about ADVANCE_MAX nodes (ADVANCE_EVERY is the size when it
 * retires slowly, which would be a bound only for slow retirers).  Due bags
 * are collected at the owner's next check (within 64 retires), which the
 * factor 3 (not 4) leaves to the slack of bags far below ADVANCE_MAX.
 *
 * "While threads make progress".  A thread descheduled while pinned is not
 * making progress, and it holds the epoch back however the library is
 * written: on 2 shared cores that happens all the time, and the other
 * threads would pile up garbage at full speed meanwhile.  So the workers
 * retire in rounds of ROUND retires ended by a barrier: none runs more than
 * one round ahead of the slowest.  That is the condition under which the
 * bound is claimed; a thread that stops for good is the stall test's case.
 * (Without the rounds - ROUND 250000 - peaks of 5-8 x 10^5 pending were
 * measured here, on a loaded 2-core machine, against the bound 12288.)
 */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

#include "conc/cpu.h"
#include "conc/epoch.h"
#include "epoch/epoch_internal.h"

#define WORKERS 4
#define ROUND 256 /* retires per worker between barriers */
#define SAMPLE_EVERY 32
#define BAG_SIZE CONC__EPOCH_ADVANCE_MAX /* see the comment at the top */

static unsigned long bound_for(unsigned threads)
{
	return 3UL * BAG_SIZE * threads;
}

/* ---- retired objects -------------------------------------------------- */

struct obj {
	conc_epoch_node node; /* first: the callback casts back */
	uint64_t magic;
};

#define OBJ_MAGIC 0x0b1ec7ULL

static atomic_ulong callbacks;   /* callbacks run, counted by the test */
static atomic_ulong bad_callbacks; /* a callback on something not ours */

static void obj_free(conc_epoch_node *n)
{
	struct obj *o = (struct obj *)n;
	if (o->magic != OBJ_MAGIC)
		atomic_fetch_add_explicit(&bad_callbacks, 1, memory_order_relaxed);
	o->magic = 0;
	free(o);
	/* relaxed: read after joins and destroy */
	atomic_fetch_add_explicit(&callbacks, 1, memory_order_relaxed);
}

/* Retire one fresh object in d (pinned, as a structure's unlink is);
 * returns false when malloc failed. */
static bool retire_one(conc_epoch *d)
{
	struct obj *o = malloc(sizeof *o);
	if (!o)
		return false;
	o->magic = OBJ_MAGIC;
	conc_epoch_pin(d);
	conc_epoch_retire(d, &o->node, obj_free);
	conc_epoch_unpin(d);
	return true;
}

/* ---- workers in rounds ------------------------------------------------ */

struct run;
typedef bool (*decide_fn)(struct run *r);

struct run {
	conc_epoch *d;
	unsigned workers;
	pthread_barrier_t barrier;
	decide_fn decide;         /* by the barrier's serial thread: stop? */
	unsigned long rounds_min; /* test 1: rounds to run */
	atomic_ulong rounds;
	atomic_int stop;
	atomic_ulong progress;
	atomic_ulong retired;     /* retires done by the workers */
	atomic_ulong alloc_fail;
	/* samples */
	atomic_ulong peak_pending;
	atomic_ulong samples;
	/* stall test */
	atomic_int resumed;
	atomic_ullong resume_epoch;
	atomic_ullong recovered_epoch; /* first epoch seen under the bound; UINT64_MAX: none */
	atomic_ulong backlog_peak;
	unsigned long bound;
};

static void atomic_max_ul(atomic_ulong *m, unsigned long v)
{
	unsigned long cur = atomic_load_explicit(m, memory_order_relaxed);
	while (v > cur && !atomic_compare_exchange_weak_explicit(m, &cur, v, memory_order_relaxed,
								  memory_order_relaxed))
		;
}

static void sample(struct run *r)
{
	/* resumed before the snapshot: a sample that counts towards the
	 * recovery was taken after the stalled thread's unpin */
	int resumed = atomic_load_explicit(&r->resumed, memory_order_acquire);
	conc_epoch_stats st;
	conc_epoch_get_stats(r->d, &st);
	atomic_fetch_add_explicit(&r->samples, 1, memory_order_relaxed);
	if (!resumed) {
		atomic_max_ul(&r->peak_pending, (unsigned long)st.pending);
		return;
	}
	if (st.pending <= r->bound) {
		unsigned long long cur = atomic_load_explicit(&r->recovered_epoch, memory_order_relaxed);
		while (st.epoch < cur &&
		       !atomic_compare_exchange_weak_explicit(&r->recovered_epoch, &cur, st.epoch,
							      memory_order_relaxed,
							      memory_order_relaxed))
			;
	}
}

static void *worker(void *arg)
{
	struct run *r = arg;
	for (;;) {
		for (unsigned k = 0; k < ROUND; k++) {
			if (!retire_one(r->d))
				atomic_fetch_add_explicit(&r->alloc_fail, 1, memory_order_relaxed);
			if (k % SAMPLE_EVERY == SAMPLE_EVERY - 1)
				sample(r);
		}
		atomic_fetch_add_explicit(&r->retired, ROUND, memory_order_relaxed);
		atomic_fetch_add_explicit(&r->progress, ROUND, memory_order_relaxed);
		/* The serial thread decides for everyone between two barriers,
		 * so that all workers leave at the same round. */
		if (pthread_barrier_wait(&r->barrier) == PTHREAD_BARRIER_SERIAL_THREAD) {
			atomic_fetch_add_explicit(&r->rounds, 1, memory_order_relaxed);
			atomic_store_explicit(&r->stop, r->decide(r), memory_order_relaxed);
		}
		pthread_barrier_wait(&r->barrier);
		if (atomic_load_explicit(&r->stop, memory_order_relaxed))
			break;
	}
	return NULL;
}

static void run_init(struct run *r, conc_epoch *d, unsigned workers, decide_fn decide)
{
	memset(r, 0, sizeof *r);
	r->d = d;
	r->workers = workers;
	r->decide = decide;
	r->bound = bound_for(workers);
	atomic_init(&r->recovered_epoch, UINT64_MAX);
	assert_int_equal(pthread_barrier_init(&r->barrier, NULL, workers), 0);
}

/*
 * Destroy d and check that nothing stays outstanding.  With barrier,
 * conc_epoch_barrier first runs everything retired so far and the domain's
 * own counters must agree (freed == retired, pending 0); without, destroy
 * itself runs what is pending (what the caller reports).  Either way every
 * object retired must have had its callback - ours, once - when destroy
 * returns: the test's own count, since d's counters die with it.  Returns
 * how many callbacks destroy itself ran.
 */
static unsigned long check_destroy(conc_epoch *d, unsigned long expected_callbacks, bool barrier)
{
	if (barrier) {
		assert_int_equal(conc_epoch_barrier(d), 0);
	}
	conc_epoch_stats st;
	conc_epoch_get_stats(d, &st);
	assert_int_equal(st.retired, expected_callbacks);
	if (barrier) {
		assert_int_equal(st.freed, st.retired);
		assert_int_equal(st.pending, 0);
	}
	unsigned long before = atomic_load(&callbacks);
	assert_int_equal(before, st.freed);
	assert_int_equal(conc_epoch_destroy(d), 0);
	unsigned long after = atomic_load(&callbacks);
	assert_int_equal(after, expected_callbacks);
	assert_int_equal(atomic_load(&bad_callbacks), 0);
	return after - before;
}

/* ---- 1. bounded while everyone progresses ----------------------------- */

static bool decide_rounds(struct run *r)
{
	return atomic_load_explicit(&r->rounds, memory_order_relaxed) >= r->rounds_min;
}

static void memory_bounded(void **state)
{
	(void)state;
	conc_test_watchdog("memory_bounded", 300);
	atomic_store(&callbacks, 0);
	atomic_store(&bad_callbacks, 0);
	conc_epoch *d;
	assert_int_equal(conc_epoch_create(&d), 0);
	struct run r;
	run_init(&r, d, WORKERS, decide_rounds);
	/* 10^6 retires per worker (10^5 under the sanitizers) */
	r.rounds_min = conc_test_iters(1000000 / ROUND, 10);
	conc_test_progress *pw = conc_test_progress_watchdog_start("memory_bounded", &r.progress, 5);
	assert_non_null(pw);
	assert_int_equal(conc_test_run_threads(WORKERS, worker, &r, 0), 0);
	conc_test_progress_watchdog_stop(pw);
	pthread_barrier_destroy(&r.barrier);
	unsigned long peak = atomic_load(&r.peak_pending);
	unsigned long retired = atomic_load(&r.retired);
	printf("reliability: memory bounded | peak_pending=%lu bound=%lu threads=%u retired=%lu"
	       " samples=%lu\n", peak, r.bound, WORKERS, retired, atomic_load(&r.samples));
	fflush(stdout);
	assert_int_equal(atomic_load(&r.alloc_fail), 0);
	assert_true(atomic_load(&r.samples) >= retired / SAMPLE_EVERY);
	assert_true(peak <= r.bound);
	/* no barrier: destroy runs what is still pending itself */
	unsigned long by_destroy = check_destroy(d, retired, false);
	unsigned long cb = atomic_load(&callbacks);
	printf("reliability: memory destroy | outstanding=%lu retired=%lu callbacks=%lu"
	       " run_by_destroy=%lu\n", retired > cb ? retired - cb : 0, retired, cb, by_destroy);
	fflush(stdout);
	conc_test_watchdog_off();
}

/* ---- 2. a stalled pinned thread, then recovery ------------------------ */

/*
 * How many epoch advances after the resume the backlog may take to fall
 * under the bound.  issue 8 asks for 3 (= CONC__EPOCH_GRACE: the backlog,
 * tagged with the epoch the stall held, is due after 3 advances).  The
 * workers that are not running when their backlog falls due (waiting at the
 * round barrier, descheduled) do not collect it themselves; help_others in
 * src/epoch/epoch.c takes a bag of CONC__EPOCH_ADVANCE_MAX or more nodes as soon
 * as it is due (smaller bags only once they are overdue by a whole epoch),
 * which is what makes it 3.  (With the whole-epoch rule for every bag this
 * measured 4 in nearly every run.)
 */
#define STALL_ADVANCES_MAX CONC__EPOCH_GRACE
/* In chaos mode (the stress-epoch-chaos rerun, CONC_CHAOS=1) every retire
 * advances the epoch, and a worker yields inside its pin/unpin, where
 * help_others must skip its bags: advances stop being a measure of how
 * long the others had to collect (10-13 measured).  There the backlog must
 * still fall under the bound, within the run's 64-epoch window. */
#define STALL_ADVANCES_MAX_CHAOS 64

struct staller {
	conc_epoch *d;
	struct run *r;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	int release;       /* under lock: the test lets the staller go */
	atomic_int pinned; /* the staller is pinned */
};

static void *staller_main(void *arg)
{
	struct staller *s = arg;
	conc_epoch_pin(s->d);
	atomic_store_explicit(&s->pinned, 1, memory_order_release);
	pthread_mutex_lock(&s->lock);
	while (!s->release)
		pthread_cond_wait(&s->cond, &s->lock);
	pthread_mutex_unlock(&s->lock);
	/* The epoch before the unpin: while pinned at e the domain is at e
	 * or e + 1, so counting from here counts at least the advances that
	 * really followed the resume. */
	conc_epoch_stats st;
	conc_epoch_get_stats(s->d, &st);
	atomic_store_explicit(&s->r->resume_epoch, st.epoch, memory_order_relaxed);
	conc_epoch_unpin(s->d);
	atomic_store_explicit(&s->r->resumed, 1, memory_order_release);
	return NULL;
}

/* Stop once the backlog was seen under the bound, or 64 epochs after the
 * resume without that (then the test fails on the figure). */
static bool decide_recovered(struct run *r)
{
	if (!atomic_load_explicit(&r->resumed, memory_order_acquire))
		return false;
	if (atomic_load_explicit(&r->recovered_epoch, memory_order_relaxed) != UINT64_MAX)
		return true;
	conc_epoch_stats st;
	conc_epoch_get_stats(r->d, &st);
	return st.epoch > atomic_load_explicit(&r->resume_epoch, memory_order_relaxed) + 64;
}

static void memory_stall_recovery(void **state)
{
	(void)state;
	conc_test_watchdog("memory_stall_recovery", 300);
	atomic_store(&callbacks, 0);
	atomic_store(&bad_callbacks, 0);
	conc_epoch *d;
	assert_int_equal(conc_epoch_create(&d), 0);
	struct run r;
	run_init(&r, d, WORKERS, decide_recovered);
	struct staller s = {.d = d, .r = &r};
	pthread_mutex_init(&s.lock, NULL);
	pthread_cond_init(&s.cond, NULL);
	atomic_init(&s.pinned, 0);
	pthread_t st_thread;
	assert_int_equal(pthread_create(&st_thread, NULL, staller_main, &s), 0);
	while (!atomic_load_explicit(&s.pinned, memory_order_acquire))
		sched_yield();

	conc_test_progress *pw =
		conc_test_progress_watchdog_start("memory_stall_recovery", &r.progress, 5);
	assert_non_null(pw);
	pthread_t w[WORKERS];
	for (unsigned i = 0; i < WORKERS; i++)
		assert_int_equal(pthread_create(&w[i], NULL, worker, &r), 0);
	/* Let the backlog grow to twice the bound: the stall is real (the
	 * staller holds every callback back), then release it. */
	unsigned long backlog = 0;
	unsigned stalling = 0;
	while (backlog <= 2 * r.bound) {
		conc_epoch_stats st;
		conc_epoch_get_stats(d, &st);
		backlog = (unsigned long)st.pending;
		stalling = st.stalling;
		sched_yield();
	}
	pthread_mutex_lock(&s.lock);
	s.release = 1;
	pthread_cond_signal(&s.cond);
	pthread_mutex_unlock(&s.lock);
	pthread_join(st_thread, NULL);
	for (unsigned i = 0; i < WORKERS; i++)
		pthread_join(w[i], NULL);
	conc_test_progress_watchdog_stop(pw);
	pthread_barrier_destroy(&r.barrier);
	pthread_cond_destroy(&s.cond);
	pthread_mutex_destroy(&s.lock);

	unsigned long long e0 = atomic_load(&r.resume_epoch);
	unsigned long long e1 = atomic_load(&r.recovered_epoch);
	bool recovered = e1 != UINT64_MAX;
	if (recovered)
		printf("reliability: memory stall recovery | advances=%llu backlog=%lu bound=%lu"
		       " threads=%u\n", e1 - e0, backlog, r.bound, WORKERS);
	else
		printf("memory stall recovery: backlog %lu still above the bound %lu 64 epochs"
		       " after the resume\n", backlog, r.bound);
	fflush(stdout);
	assert_true(stalling >= 1);
	assert_true(backlog > 2 * r.bound);
	assert_true(recovered);
	assert_true(e1 - e0 <= (conc_chaos_enabled() ? STALL_ADVANCES_MAX_CHAOS
						     : STALL_ADVANCES_MAX));
	assert_int_equal(atomic_load(&r.alloc_fail), 0);
	check_destroy(d, atomic_load(&r.retired), true);
	conc_test_watchdog_off();
}

/* ---- 3. 1,000 short-lived threads ------------------------------------- */

#define SHORT_THREADS 1000
#define SHORT_BATCH 8     /* alive at once */
#define SHORT_RETIRES 20  /* fewer than ADVANCE_EVERY: they stay in the bag */

struct shorty {
	conc_epoch *d;
	int failed;
};

static void *short_main(void *arg)
{
	struct shorty *s = arg;
	/* registers on the first pin; exits without any cleanup call */
	for (unsigned i = 0; i < SHORT_RETIRES; i++)
		if (!retire_one(s->d))
			s->failed = 1;
	return NULL;
}

static void memory_short_threads(void **state)
{
	(void)state;
	conc_test_watchdog("memory_short_threads", 300);
	atomic_store(&callbacks, 0);
	atomic_store(&bad_callbacks, 0);
	conc_epoch *d;
	assert_int_equal(conc_epoch_create(&d), 0);
	atomic_ulong progress;
	atomic_init(&progress, 0);
	conc_test_progress *pw = conc_test_progress_watchdog_start("memory_short_threads",
								   &progress, 5);
	assert_non_null(pw);
	struct shorty sh[SHORT_BATCH];
	unsigned failed = 0;
	for (unsigned done = 0; done < SHORT_THREADS; done += SHORT_BATCH) {
		for (unsigned i = 0; i < SHORT_BATCH; i++)
			sh[i] = (struct shorty){.d = d};
		assert_int_equal(conc_test_run_threads(SHORT_BATCH, short_main, sh, sizeof sh[0]), 0);
		for (unsigned i = 0; i < SHORT_BATCH; i++)
			failed += (unsigned)sh[i].failed;
		atomic_fetch_add_explicit(&progress, SHORT_BATCH, memory_order_relaxed);
	}
	conc_test_progress_watchdog_stop(pw);
	unsigned long expected = (unsigned long)SHORT_THREADS * SHORT_RETIRES;

	/* Every thread is gone: no record left, their garbage is the
	 * domain's.  Ordinary collection (flush: advance, then run the due
	 * orphans) must get all of it back within GRACE advances - no
	 * barrier, no destroy needed. */
	conc_epoch_stats st;
	conc_epoch_get_stats(d, &st);
	unsigned registered = st.registered;
	unsigned long retired = (unsigned long)st.retired;
	unsigned flushes = 0;
	while (atomic_load(&callbacks) < expected && flushes < 64) {
		conc_epoch_flush(d);
		flushes++;
	}
	conc_epoch_get_stats(d, &st);
	unsigned long cb = atomic_load(&callbacks);
	unsigned long leaked = expected > cb ? expected - cb : 0;
	printf("reliability: memory 1000 threads | leaked=%lu callbacks=%lu threads=%u"
	       " flushes=%u\n", leaked, cb, SHORT_THREADS, flushes);
	fflush(stdout);
	assert_int_equal(failed, 0);
	assert_int_equal(registered, 0);
	assert_int_equal(retired, expected);
	assert_int_equal(leaked, 0);
	assert_int_equal(cb, expected);
	assert_true(flushes <= CONC__EPOCH_GRACE);
	assert_int_equal(st.pending, 0);
	check_destroy(d, expected, true);
	conc_test_watchdog_off();
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(memory_bounded),
		cmocka_unit_test(memory_stall_recovery),
		cmocka_unit_test(memory_short_threads),
	};
	return cmocka_run_group_tests_name("epoch-stress", tests, NULL, NULL);
}
