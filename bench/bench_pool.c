/*
 * bench_pool.c - the thread pool (conc/pool.h) against its peers.
 *
 *   W4 seed          a pool with one worker per CPU; the main thread
 *                    executes 10,000,000 tasks, task i adds i to one shared
 *                    atomic counter (relaxed); wait.  Verified: the counter
 *                    is 49,999,995,000,000.  tasks/s.
 *   fan-out          one task; each task executes two children down to
 *                    depth 20 (2,097,151 tasks); wait.  tasks/s.
 *   latency          (W9b) submit-to-start on an idle pool (workers asleep:
 *                    a 200 us pause before each sample, $BENCH_LAT_PAUSE_US),
 *                    the implementations' samples interleaved: p50, p99 and
 *                    p99.9 over the samples of a round (20,000 each by
 *                    default, 10,000 with --quick, 100,000 with --full, or
 *                    $BENCH_LAT_SAMPLES), one round per repetition; and
 *                    the CPU time an idle pool uses.  $BENCH_LAT_DUMP=FILE
 *                    appends every sample (round, index, implementation:
 *                    0 libconc 1 GThreadPool 2 mutex 3 pthread, ns).
 *   W9a groups       1,000 task groups in turn, 100 tasks of ~1 us each, wait
 *                    (see "W9a" below): libconc groups vs oneTBB task_group vs
 *                    rayon scope vs conc_pool_wait on a private pool.
 *                    groups/s.
 *   peak RSS         the seed workload in a fresh process (self re-exec),
 *                    VmHWM read by the child itself; libconc with and
 *                    without max_queued.
 *
 * Peers: GLib GThreadPool (exclusive threads; its "wait" is
 * g_thread_pool_free(wait = TRUE)); a textbook pool written here - one
 * mutex, one condition variable for work and one for "all done", a growable
 * ring of tasks; OpenMP tasks (#pragma omp task inside single, the
 * region's closing barrier waits); one pthread per task (latency row only).
 * Pools are created before the timed region and destroyed after it.
 */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"
#include "peers/cxx_peers.h"
#include "conc/pool.h"

#if __has_include(<glib.h>)
#include <glib.h>
#define HAVE_GLIB 1
#endif
#ifdef _OPENMP
#include <omp.h>
#endif

#define SEED_N 10000000ul
#define SEED_SUM 49999995000000ull
#define FAN_DEPTH 20u
#define FAN_TASKS ((2ul << FAN_DEPTH) - 1)
#define RSS_BOUND 65536u

static unsigned nthreads;
static unsigned lat_samples;
static atomic_ullong counter;

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void pause_ms(unsigned ms)
{
	struct timespec ts = {0, (long)ms * 1000000L};
	nanosleep(&ts, NULL);
}

static void seed_task(void *arg)
{
	atomic_fetch_add_explicit(&counter, (unsigned long long)(uintptr_t)arg,
				  memory_order_relaxed);
}

/* ---- a textbook mutex + condition variable pool ------------------------- */

struct mp_task {
	void (*fn)(void *);
	void *arg;
};

typedef struct mpool {
	pthread_mutex_t m;
	pthread_cond_t work, idle;
	struct mp_task *ring;
	size_t cap, head, count, pending;
	int shutdown;
	unsigned n;
	pthread_t *t;
} mpool;

static void *mp_worker(void *arg)
{
	mpool *p = arg;
	pthread_mutex_lock(&p->m);
	for (;;) {
		while (p->count == 0 && !p->shutdown)
			pthread_cond_wait(&p->work, &p->m);
		if (p->count == 0)
			break;
		struct mp_task t = p->ring[p->head];
		p->head = (p->head + 1) % p->cap;
		p->count--;
		pthread_mutex_unlock(&p->m);
		t.fn(t.arg);
		pthread_mutex_lock(&p->m);
		if (--p->pending == 0)
			pthread_cond_broadcast(&p->idle);
	}
	pthread_mutex_unlock(&p->m);
	return NULL;
}

static mpool *mp_create(unsigned n)
{
	mpool *p = calloc(1, sizeof *p);
	pthread_mutex_init(&p->m, NULL);
	pthread_cond_init(&p->work, NULL);
	pthread_cond_init(&p->idle, NULL);
	p->cap = 1024;
	p->ring = malloc(p->cap * sizeof *p->ring);
	p->n = n;
	p->t = calloc(n, sizeof *p->t);
	for (unsigned i = 0; i < n; i++)
		pthread_create(&p->t[i], NULL, mp_worker, p);
	return p;
}

static void mp_execute(mpool *p, void (*fn)(void *), void *arg)
{
	pthread_mutex_lock(&p->m);
	if (p->count == p->cap) {
		struct mp_task *r = malloc(2 * p->cap * sizeof *r);
		for (size_t i = 0; i < p->count; i++)
			r[i] = p->ring[(p->head + i) % p->cap];
		free(p->ring);
		p->ring = r;
		p->head = 0;
		p->cap *= 2;
	}
	p->ring[(p->head + p->count) % p->cap] = (struct mp_task){fn, arg};
	p->count++;
	p->pending++;
	pthread_cond_signal(&p->work);
	pthread_mutex_unlock(&p->m);
}

static void mp_wait(mpool *p)
{
	pthread_mutex_lock(&p->m);
	while (p->pending)
		pthread_cond_wait(&p->idle, &p->m);
	pthread_mutex_unlock(&p->m);
}

static void mp_destroy(mpool *p)
{
	pthread_mutex_lock(&p->m);
	p->shutdown = 1;
	pthread_cond_broadcast(&p->work);
	pthread_mutex_unlock(&p->m);
	for (unsigned i = 0; i < p->n; i++)
		pthread_join(p->t[i], NULL);
	free(p->t);
	free(p->ring);
	free(p);
}

/* ---- W4 seed --------------------------------------------------------------- */

static bench_result seed_libconc_cfg(size_t max_queued)
{
	conc_pool *p;
	conc_pool_config cfg = {.threads = nthreads, .max_queued = max_queued};
	if (conc_pool_create(&p, &cfg))
		return (bench_result){0, false};
	atomic_store(&counter, 0);
	bool ok = true;
	double t0 = bench_now();
	for (unsigned long i = 0; i < SEED_N; i++)
		ok &= conc_pool_execute(p, seed_task, (void *)(uintptr_t)i) == 0;
	conc_pool_wait(p);
	double t1 = bench_now();
	conc_pool_destroy(p);
	return (bench_result){t1 - t0, ok && atomic_load(&counter) == SEED_SUM};
}

static bench_result seed_libconc(void *arg, unsigned threads)
{
	(void)arg;
	(void)threads;
	return seed_libconc_cfg(0);
}

static bench_result seed_mutex(void *arg, unsigned threads)
{
	(void)arg;
	(void)threads;
	mpool *p = mp_create(nthreads);
	atomic_store(&counter, 0);
	double t0 = bench_now();
	for (unsigned long i = 0; i < SEED_N; i++)
		mp_execute(p, seed_task, (void *)(uintptr_t)i);
	mp_wait(p);
	double t1 = bench_now();
	mp_destroy(p);
	return (bench_result){t1 - t0, atomic_load(&counter) == SEED_SUM};
}

#ifdef HAVE_GLIB
/* GThreadPool items must not be NULL: pass i + 1. */
static void seed_glib_task(gpointer data, gpointer user)
{
	(void)user;
	atomic_fetch_add_explicit(&counter, (unsigned long long)(uintptr_t)data - 1,
				  memory_order_relaxed);
}

static bench_result seed_glib(void *arg, unsigned threads)
{
	(void)arg;
	(void)threads;
	GThreadPool *p = g_thread_pool_new(seed_glib_task, NULL, (gint)nthreads, TRUE, NULL);
	atomic_store(&counter, 0);
	double t0 = bench_now();
	for (unsigned long i = 0; i < SEED_N; i++)
		g_thread_pool_push(p, (gpointer)(uintptr_t)(i + 1), NULL);
	g_thread_pool_free(p, FALSE, TRUE);
	double t1 = bench_now();
	return (bench_result){t1 - t0, atomic_load(&counter) == SEED_SUM};
}
#endif

#ifdef _OPENMP
static bench_result seed_omp(void *arg, unsigned threads)
{
	(void)arg;
	(void)threads;
	atomic_store(&counter, 0);
	double t0 = bench_now();
#pragma omp parallel num_threads(nthreads)
#pragma omp single
	for (unsigned long i = 0; i < SEED_N; i++) {
#pragma omp task firstprivate(i)
		atomic_fetch_add_explicit(&counter, i, memory_order_relaxed);
	}
	double t1 = bench_now();
	return (bench_result){t1 - t0, atomic_load(&counter) == SEED_SUM};
}
#endif

/* ---- recursive fan-out --------------------------------------------------------- */

static atomic_ulong fan_count;
static conc_pool *fan_pool;
static mpool *fan_mpool;

static void fan_libconc_task(void *arg)
{
	uintptr_t d = (uintptr_t)arg;
	atomic_fetch_add_explicit(&fan_count, 1, memory_order_relaxed);
	if (d) {
		conc_pool_execute(fan_pool, fan_libconc_task, (void *)(d - 1));
		conc_pool_execute(fan_pool, fan_libconc_task, (void *)(d - 1));
	}
}

static bench_result fan_libconc(void *arg, unsigned threads)
{
	(void)arg;
	(void)threads;
	conc_pool_config cfg = {.threads = nthreads};
	if (conc_pool_create(&fan_pool, &cfg))
		return (bench_result){0, false};
	atomic_store(&fan_count, 0);
	double t0 = bench_now();
	conc_pool_execute(fan_pool, fan_libconc_task, (void *)(uintptr_t)FAN_DEPTH);
	conc_pool_wait(fan_pool);
	double t1 = bench_now();
	conc_pool_destroy(fan_pool);
	return (bench_result){t1 - t0, atomic_load(&fan_count) == FAN_TASKS};
}

static void fan_mutex_task(void *arg)
{
	uintptr_t d = (uintptr_t)arg;
	atomic_fetch_add_explicit(&fan_count, 1, memory_order_relaxed);
	if (d) {
		mp_execute(fan_mpool, fan_mutex_task, (void *)(d - 1));
		mp_execute(fan_mpool, fan_mutex_task, (void *)(d - 1));
	}
}

static bench_result fan_mutex(void *arg, unsigned threads)
{
	(void)arg;
	(void)threads;
	fan_mpool = mp_create(nthreads);
	atomic_store(&fan_count, 0);
	double t0 = bench_now();
	mp_execute(fan_mpool, fan_mutex_task, (void *)(uintptr_t)FAN_DEPTH);
	mp_wait(fan_mpool);
	double t1 = bench_now();
	mp_destroy(fan_mpool);
	return (bench_result){t1 - t0, atomic_load(&fan_count) == FAN_TASKS};
}

#ifdef HAVE_GLIB
static GThreadPool *fan_gpool;

static void fan_glib_task(gpointer data, gpointer user)
{
	(void)user;
	uintptr_t d = (uintptr_t)data - 1;
	atomic_fetch_add_explicit(&fan_count, 1, memory_order_relaxed);
	if (d) {
		g_thread_pool_push(fan_gpool, (gpointer)d, NULL); /* depth d-1, +1 */
		g_thread_pool_push(fan_gpool, (gpointer)d, NULL);
	}
}

static bench_result fan_glib(void *arg, unsigned threads)
{
	(void)arg;
	(void)threads;
	fan_gpool = g_thread_pool_new(fan_glib_task, NULL, (gint)nthreads, TRUE, NULL);
	atomic_store(&fan_count, 0);
	double t0 = bench_now();
	g_thread_pool_push(fan_gpool, (gpointer)(uintptr_t)(FAN_DEPTH + 1), NULL);
	/* GThreadPool has no wait: poll the count, then free (joins). */
	while (atomic_load(&fan_count) < FAN_TASKS)
		pause_ms(1);
	g_thread_pool_free(fan_gpool, FALSE, TRUE);
	double t1 = bench_now();
	return (bench_result){t1 - t0, atomic_load(&fan_count) == FAN_TASKS};
}
#endif

#ifdef _OPENMP
static void fan_omp_task(unsigned d)
{
	atomic_fetch_add_explicit(&fan_count, 1, memory_order_relaxed);
	if (d) {
#pragma omp task
		fan_omp_task(d - 1);
#pragma omp task
		fan_omp_task(d - 1);
	}
}

static bench_result fan_omp(void *arg, unsigned threads)
{
	(void)arg;
	(void)threads;
	atomic_store(&fan_count, 0);
	double t0 = bench_now();
#pragma omp parallel num_threads(nthreads)
#pragma omp single
	fan_omp_task(FAN_DEPTH);
	double t1 = bench_now();
	return (bench_result){t1 - t0, atomic_load(&fan_count) == FAN_TASKS};
}
#endif

/* ---- W9a: task groups ------------------------------------------------------------- */

/*
 * 1,000 groups in turn, each runs 100 tasks of ~1 us and waits for them;
 * the main thread drives.  libconc: a conc_group made and destroyed per
 * group (as a TBB task_group or a rayon scope is), the waiter running its
 * group's tasks; and the same with conc_pool_execute + conc_pool_wait on a
 * private pool (the waiter sleeps).  oneTBB: task_group in a task_arena;
 * rayon: ThreadPool::scope.  Each pool/arena has nthreads threads and is
 * made before timing.  Verified: 100,000 tasks ran.
 */
#define W9_GROUPS 1000u
#define W9_TASKS 100u
static unsigned w9_iters; /* work loop rounds of ~1 us (calibrated) */
static atomic_ulong w9_count;

static void w9_work(void *arg)
{
	(void)arg;
	uint64_t x = 88172645463325252ull;
	for (unsigned i = 0; i < w9_iters; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		bench_keep(x);
	}
	atomic_fetch_add_explicit(&w9_count, 1, memory_order_relaxed);
}

static int w9_work_int(void *arg)
{
	w9_work(arg);
	return 0;
}

static void w9_calibrate(void)
{
	w9_iters = 1000;
	double best = 1e9;
	for (int k = 0; k < 5; k++) {
		double t0 = bench_now();
		for (int i = 0; i < 1000; i++)
			w9_work(NULL);
		double t = (bench_now() - t0) / 1000;
		if (t < best)
			best = t;
	}
	w9_iters = (unsigned)(1000 * 1e-6 / best);
	if (w9_iters < 1)
		w9_iters = 1;
}

static bool w9_ok(void)
{
	return atomic_load(&w9_count) == (unsigned long)W9_GROUPS * W9_TASKS;
}

static bench_result w9_group(void *arg, unsigned threads)
{
	(void)arg;
	(void)threads;
	conc_pool *p;
	conc_pool_config cfg = {.threads = nthreads};
	if (conc_pool_create(&p, &cfg))
		return (bench_result){0, false};
	atomic_store(&w9_count, 0);
	bool ok = true;
	double t0 = bench_now();
	for (unsigned g = 0; g < W9_GROUPS; g++) {
		conc_group *grp;
		if (conc_group_create(&grp, p) != 0) {
			ok = false;
			break;
		}
		for (unsigned t = 0; t < W9_TASKS; t++)
			ok = conc_group_run(grp, w9_work_int, NULL) == 0 && ok;
		ok = conc_group_wait(grp) == 0 && ok;
		ok = conc_group_destroy(grp) == 0 && ok;
	}
	double t1 = bench_now();
	conc_pool_destroy(p);
	return (bench_result){t1 - t0, ok && w9_ok()};
}

static bench_result w9_pool_wait(void *arg, unsigned threads)
{
	(void)arg;
	(void)threads;
	conc_pool *p;
	conc_pool_config cfg = {.threads = nthreads};
	if (conc_pool_create(&p, &cfg))
		return (bench_result){0, false};
	atomic_store(&w9_count, 0);
	bool ok = true;
	double t0 = bench_now();
	for (unsigned g = 0; g < W9_GROUPS; g++) {
		for (unsigned t = 0; t < W9_TASKS; t++)
			ok = conc_pool_execute(p, w9_work, NULL) == 0 && ok;
		ok = conc_pool_wait(p) == 0 && ok;
	}
	double t1 = bench_now();
	conc_pool_destroy(p);
	return (bench_result){t1 - t0, ok && w9_ok()};
}

#ifdef BENCH_HAVE_TBB
static bench_result w9_tbb(void *arg, unsigned threads)
{
	(void)arg;
	(void)threads;
	void *a = tbb_arena_new(nthreads);
	atomic_store(&w9_count, 0);
	double t0 = bench_now();
	tbb_groups(a, W9_GROUPS, W9_TASKS, w9_work, NULL);
	double t1 = bench_now();
	tbb_arena_free(a);
	return (bench_result){t1 - t0, w9_ok()};
}
#endif

#ifdef BENCH_HAVE_RAYON
static bench_result w9_rayon(void *arg, unsigned threads)
{
	(void)arg;
	(void)threads;
	void *rp = rayon_pool_new(nthreads);
	if (!rp)
		return (bench_result){0, false};
	atomic_store(&w9_count, 0);
	double t0 = bench_now();
	rayon_scope_groups(rp, W9_GROUPS, W9_TASKS, w9_work, NULL);
	double t1 = bench_now();
	rayon_pool_free(rp);
	return (bench_result){t1 - t0, w9_ok()};
}
#endif

/* ---- submit-to-start latency on an idle pool ------------------------------------ */

/*
 * W9b.  One sampling round makes a pool of each implementation (nthreads
 * workers; none for pthread per task) and then takes lat_samples samples of
 * each, interleaved: sample i of every implementation in turn, in a random
 * order (a rotation keeps each behind the same one; see lat_round), so
 * that the machine's noise (other processes, the host) falls on all of
 * them alike.  Each sample: a pause of LAT_PAUSE_US (timer
 * slack 1 ns), long enough for every worker of every pool to be asleep
 * again - libconc's searchers give up after 100 us - then submit one task
 * that reads CLOCK_MONOTONIC; the latency is that time minus the time read
 * just before the submit.  A round yields p50, p99 and p99.9 per
 * implementation; the harness's repetitions are rounds (the first
 * implementation the harness calls in a repetition of the p50 row starts
 * the round, the others take their figures from it; the p99 and p99.9 rows
 * report the same rounds' figures), so each row shows the median over the
 * rounds with min-max.
 *
 * Idle CPU: before the first round, each pool is made alone, runs 100
 * tasks, is left idle for 20 ms, and the process's CPU time over the next
 * LAT_IDLE_MS (the main thread asleep) is printed per second: an idle pool
 * should use none.
 */
enum { LAT_LIBCONC, LAT_GLIB, LAT_MUTEX, LAT_THREAD, LAT_IMPLS };
enum { LAT_KEEP = BENCH_MAX_REPS + 2 };
#define LAT_PAUSE_US_DEFAULT 200u
#define LAT_IDLE_MS 300u
static unsigned lat_pause_us = LAT_PAUSE_US_DEFAULT;
static _Atomic uint64_t lat_start;
static atomic_int lat_flag;
static int lat_row; /* 0: p50; 1: p99; 2: p99.9 */
static double lat_kept[LAT_IMPLS][3][LAT_KEEP];
static int lat_nkept, lat_next[LAT_IMPLS][3];

static void lat_task(void *arg)
{
	(void)arg;
	atomic_store_explicit(&lat_start, now_ns(), memory_order_relaxed);
	atomic_store_explicit(&lat_flag, 1, memory_order_release);
}

static void *lat_thread(void *arg)
{
	lat_task(arg);
	return NULL;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

static double lat_pick(const uint64_t *sorted, unsigned permille)
{
	unsigned k = (unsigned)((uint64_t)lat_samples * permille / 1000);
	if (k >= lat_samples)
		k = lat_samples - 1;
	return (double)sorted[k] * 1e-9;
}

static void lat_submit_libconc(void *ctx)
{
	conc_pool_execute(ctx, lat_task, NULL);
}

static void lat_submit_mutex(void *ctx)
{
	mp_execute(ctx, lat_task, NULL);
}

/* One thread per task: create it and join it (the sample is taken from the
 * start time the thread recorded, so the join is not counted). */
static void lat_submit_thread(void *ctx)
{
	(void)ctx;
	pthread_t t;
	if (pthread_create(&t, NULL, lat_thread, NULL) == 0)
		pthread_join(t, NULL);
}

#ifdef HAVE_GLIB
static void lat_glib_task(gpointer data, gpointer user)
{
	(void)data;
	(void)user;
	lat_task(NULL);
}

static void lat_submit_glib(void *ctx)
{
	g_thread_pool_push(ctx, (gpointer)1, NULL);
}
#endif

typedef void (*lat_submit_fn)(void *ctx);

struct lat_impl {
	lat_submit_fn submit;
	void *ctx;
	bool present;
};

/* Make implementation k's pool (present false when it could not be made). */
static struct lat_impl lat_make(int k)
{
	switch (k) {
	case LAT_LIBCONC: {
		conc_pool_config cfg = {.threads = nthreads};
		conc_pool *p;
		if (conc_pool_create(&p, &cfg) == 0)
			return (struct lat_impl){lat_submit_libconc, p, true};
		break;
	}
#ifdef HAVE_GLIB
	case LAT_GLIB:
		return (struct lat_impl){
			lat_submit_glib,
			g_thread_pool_new(lat_glib_task, NULL, (gint)nthreads, TRUE, NULL), true};
#endif
	case LAT_MUTEX:
		return (struct lat_impl){lat_submit_mutex, mp_create(nthreads), true};
	case LAT_THREAD:
		return (struct lat_impl){lat_submit_thread, NULL, true};
	default:
		break;
	}
	return (struct lat_impl){NULL, NULL, false};
}

static void lat_free(int k, struct lat_impl *im)
{
	if (!im->present)
		return;
	if (k == LAT_LIBCONC)
		conc_pool_destroy(im->ctx);
#ifdef HAVE_GLIB
	if (k == LAT_GLIB)
		g_thread_pool_free(im->ctx, FALSE, TRUE);
#endif
	if (k == LAT_MUTEX)
		mp_destroy(im->ctx);
}

static uint64_t lat_one(const struct lat_impl *im)
{
	struct timespec ts = {0, (long)lat_pause_us * 1000L};
	nanosleep(&ts, NULL); /* every worker of every pool asleep again */
	atomic_store(&lat_flag, 0);
	uint64_t t0 = now_ns();
	im->submit(im->ctx);
	while (!atomic_load_explicit(&lat_flag, memory_order_acquire))
		sched_yield();
	return atomic_load_explicit(&lat_start, memory_order_relaxed) - t0;
}

/* One round (see above): fills lat_kept[*][*][lat_nkept]. */
static bool lat_round(void)
{
	struct lat_impl im[LAT_IMPLS];
	for (int k = 0; k < LAT_IMPLS; k++)
		im[k] = lat_make(k);
	uint64_t *s[LAT_IMPLS];
	bool ok = true;
	for (int k = 0; k < LAT_IMPLS; k++) {
		s[k] = malloc(lat_samples * sizeof *s[k]);
		ok = ok && s[k];
	}
	/* The order of each index's samples: a fresh random permutation,
	 * kept for the dump.  Not a rotation: a rotation keeps every
	 * implementation behind the same one, and the sample after "pthread
	 * per task" (a thread created, exiting, joined) was measured slow
	 * about twice as often as the others - whoever came next paid. */
	unsigned char (*order)[LAT_IMPLS] = malloc(lat_samples * sizeof *order);
	ok = ok && order;
	uint64_t rng = 0x9e3779b97f4a7c15ull + (uint64_t)lat_nkept;
	for (unsigned i = 0; ok && i < lat_samples; i++) {
		for (int j = 0; j < LAT_IMPLS; j++)
			order[i][j] = (unsigned char)j;
		for (int j = LAT_IMPLS - 1; j > 0; j--) {
			rng ^= rng << 13;
			rng ^= rng >> 7;
			rng ^= rng << 17;
			int r = (int)(rng % (uint64_t)(j + 1));
			unsigned char x = order[i][j];
			order[i][j] = order[i][r];
			order[i][r] = x;
		}
		for (int j = 0; j < LAT_IMPLS; j++) {
			int k = order[i][j];
			if (im[k].present)
				s[k][i] = lat_one(&im[k]);
		}
	}
	for (int k = 0; k < LAT_IMPLS; k++)
		lat_free(k, &im[k]);
	/* $BENCH_LAT_DUMP: every sample, in the order taken (appended) */
	const char *dump = getenv("BENCH_LAT_DUMP");
	FILE *df = ok && dump ? fopen(dump, "a") : NULL;
	for (unsigned i = 0; df && i < lat_samples; i++)
		for (int j = 0; j < LAT_IMPLS; j++) {
			int k = order[i][j];
			if (im[k].present)
				fprintf(df, "%d %u %d %llu\n", lat_nkept, i, k,
					(unsigned long long)s[k][i]);
		}
	if (df)
		fclose(df);
	free(order);
	for (int k = 0; k < LAT_IMPLS; k++) {
		if (ok && im[k].present && lat_nkept < LAT_KEEP) {
			qsort(s[k], lat_samples, sizeof *s[k], cmp_u64);
			lat_kept[k][0][lat_nkept] = lat_pick(s[k], 500);
			lat_kept[k][1][lat_nkept] = lat_pick(s[k], 990);
			lat_kept[k][2][lat_nkept] = lat_pick(s[k], 999);
		}
		free(s[k]);
	}
	if (ok && lat_nkept < LAT_KEEP)
		lat_nkept++;
	return ok;
}

/* The figure of implementation `impl` for the current row (see above). */
static bench_result lat_run(int impl)
{
	if (lat_next[impl][lat_row] == lat_nkept && (lat_row > 0 || !lat_round()))
		return (bench_result){0, false};
	return (bench_result){lat_kept[impl][lat_row][lat_next[impl][lat_row]++], true};
}

static bench_result lat_libconc(void *arg, unsigned threads)
{
	(void)arg;
	(void)threads;
	return lat_run(LAT_LIBCONC);
}

static bench_result lat_mutex(void *arg, unsigned threads)
{
	(void)arg;
	(void)threads;
	return lat_run(LAT_MUTEX);
}

static bench_result lat_pthread(void *arg, unsigned threads)
{
	(void)arg;
	(void)threads;
	return lat_run(LAT_THREAD);
}

#ifdef HAVE_GLIB
static bench_result lat_glib(void *arg, unsigned threads)
{
	(void)arg;
	(void)threads;
	return lat_run(LAT_GLIB);
}
#endif

static double process_cpu_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* The idle CPU of each pool (see above), printed. */
static void lat_idle_cpu(void)
{
	printf("\nW9b idle pool CPU (%u workers; process CPU time over %u ms idle, after 100 tasks):\n",
	       nthreads, LAT_IDLE_MS);
	for (int k = -1; k < LAT_THREAD; k++) {
		if (k < 0) { /* the floor: the main thread's own sleep */
			double c0 = process_cpu_s();
			pause_ms(LAT_IDLE_MS);
			printf("  %-20s %8.1f us CPU per s idle\n", "no pool (baseline)",
			       (process_cpu_s() - c0) * 1e6 * 1000.0 / LAT_IDLE_MS);
			continue;
		}
		struct lat_impl im = lat_make(k);
		if (im.present) {
			for (int i = 0; i < 100; i++) {
				atomic_store(&lat_flag, 0);
				im.submit(im.ctx);
				while (!atomic_load_explicit(&lat_flag, memory_order_acquire))
					sched_yield();
			}
			pause_ms(20);
			double c0 = process_cpu_s();
			pause_ms(LAT_IDLE_MS);
			double used = process_cpu_s() - c0;
			static const char *names[] = {"libconc", "GThreadPool", "mutex+condvar pool"};
			printf("  %-20s %8.1f us CPU per s idle\n", names[k],
			       used * 1e6 * 1000.0 / LAT_IDLE_MS);
		}
		lat_free(k, &im);
	}
}

/* ---- peak RSS: the seed workload in a fresh process ------------------------------- */

/* VmHWM of this process (peak RSS of its address space since exec), kB. */
static long vm_hwm_kb(void)
{
	FILE *f = fopen("/proc/self/status", "r");
	char line[256];
	long kb = -1;
	while (f && fgets(line, sizeof line, f))
		if (!strncmp(line, "VmHWM:", 6))
			kb = atol(line + 6);
	if (f)
		fclose(f);
	return kb;
}

static int rss_child(const char *impl)
{
	bench_result r = {0, false};
	if (!strcmp(impl, "libconc"))
		r = seed_libconc_cfg(0);
	else if (!strcmp(impl, "libconc-bounded"))
		r = seed_libconc_cfg(RSS_BOUND);
	else if (!strcmp(impl, "mutex"))
		r = seed_mutex(NULL, 0);
#ifdef HAVE_GLIB
	else if (!strcmp(impl, "glib"))
		r = seed_glib(NULL, 0);
#endif
#ifdef _OPENMP
	else if (!strcmp(impl, "omp"))
		r = seed_omp(NULL, 0);
#endif
	else if (!strcmp(impl, "none"))
		r = (bench_result){0, true};
	printf("%ld %d\n", vm_hwm_kb(), r.verified);
	return r.verified ? 0 : 1;
}

/*
 * Run the seed workload in a fresh process (exec of this binary, so the
 * parent's memory does not count) and return its peak RSS in MB; the child
 * reads its own VmHWM (ru_maxrss would carry the pre-exec peak).
 */
static double rss_of(const char *impl, bool *ok)
{
	char exe[4096], cmd[4200];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
	*ok = false;
	if (n <= 0)
		return -1;
	exe[n] = '\0';
	snprintf(cmd, sizeof cmd, "'%s' --rss-child %s %u", exe, impl, nthreads);
	FILE *f = popen(cmd, "r");
	if (!f)
		return -1;
	long kb = -1;
	int verified = 0;
	if (fscanf(f, "%ld %d", &kb, &verified) != 2)
		kb = -1;
	int st = pclose(f);
	*ok = kb > 0 && verified && st == 0;
	return (double)kb / 1024.0;
}

static void rss_row(const char *label, const char *impl, double base_mb)
{
	bool ok;
	double mb = rss_of(impl, &ok);
	printf("  %-34s %8.1f MB  (+%.1f over an empty process)%s\n", label, mb,
	       mb - base_mb, ok ? "" : "  FAILED");
}

int main(int argc, char **argv)
{
	if (argc == 4 && !strcmp(argv[1], "--rss-child")) {
		nthreads = (unsigned)atoi(argv[3]);
		return rss_child(argv[2]);
	}
	static const unsigned def_threads[] = {0};
	bench_cfg cfg;
	bench_init(&cfg, argc, argv, def_threads);
	nthreads = conc_cpu_count();
	lat_samples = cfg.quick ? 10000 : cfg.full ? 100000 : 20000;
	if (getenv("BENCH_LAT_SAMPLES") && atoi(getenv("BENCH_LAT_SAMPLES")) > 0)
		lat_samples = (unsigned)atoi(getenv("BENCH_LAT_SAMPLES"));
	if (getenv("BENCH_LAT_PAUSE_US") && atoi(getenv("BENCH_LAT_PAUSE_US")) > 0)
		lat_pause_us = (unsigned)atoi(getenv("BENCH_LAT_PAUSE_US"));

	if (bench_wanted(&cfg, "W4 seed")) {
		bench_impl impls[4];
		int n = 0;
		impls[n++] = (bench_impl){"libconc", seed_libconc, NULL};
#ifdef HAVE_GLIB
		impls[n++] = (bench_impl){"GThreadPool", seed_glib, NULL};
#endif
		impls[n++] = (bench_impl){"mutex+condvar pool", seed_mutex, NULL};
#ifdef _OPENMP
		impls[n++] = (bench_impl){"OpenMP tasks", seed_omp, NULL};
#endif
		bench_row(&cfg, "W4 seed: 10M tasks, one outside executor", nthreads,
			  (double)SEED_N, BENCH_MOPS, impls, n);
	}
	if (bench_wanted(&cfg, "fan-out")) {
		bench_impl impls[4];
		int n = 0;
		impls[n++] = (bench_impl){"libconc", fan_libconc, NULL};
#ifdef _OPENMP
		impls[n++] = (bench_impl){"OpenMP tasks", fan_omp, NULL};
#endif
#ifdef HAVE_GLIB
		impls[n++] = (bench_impl){"GThreadPool", fan_glib, NULL};
#endif
		impls[n++] = (bench_impl){"mutex+condvar pool", fan_mutex, NULL};
		bench_row(&cfg, "fan-out: binary tree of tasks, depth 20", nthreads,
			  (double)FAN_TASKS, BENCH_MOPS, impls, n);
	}
	if (bench_wanted(&cfg, "W9a")) {
		w9_calibrate();
		bench_impl impls[5];
		int n = 0;
		impls[n++] = (bench_impl){"libconc group", w9_group, NULL};
#ifdef BENCH_HAVE_TBB
		impls[n++] = (bench_impl){"oneTBB task_group", w9_tbb, NULL};
#else
		impls[n++] = (bench_impl)BENCH_MISSING("oneTBB task_group", BENCH_TBB_MISSING);
#endif
#ifdef BENCH_HAVE_RAYON
		impls[n++] = (bench_impl){"rayon scope", w9_rayon, NULL};
#else
		impls[n++] = (bench_impl)BENCH_MISSING("rayon scope", BENCH_RAYON_MISSING);
#endif
		impls[n++] = (bench_impl){"libconc pool_wait", w9_pool_wait, NULL};
		bench_row(&cfg, "W9a groups: 1000 x (100 tasks of ~1 us, wait)", nthreads,
			  (double)W9_GROUPS, BENCH_MS, impls, n);
	}
	if (bench_wanted(&cfg, "latency")) {
		bench_impl impls[4];
		int n = 0;
		impls[n++] = (bench_impl){"libconc", lat_libconc, NULL};
#ifdef HAVE_GLIB
		impls[n++] = (bench_impl){"GThreadPool", lat_glib, NULL};
#endif
		impls[n++] = (bench_impl){"mutex+condvar pool", lat_mutex, NULL};
		impls[n++] = (bench_impl){"pthread per task", lat_pthread, NULL};
		/* precise pauses: the default slack of 50 us would be a
		 * quarter of each */
		prctl(PR_SET_TIMERSLACK, 1UL, 0UL, 0UL, 0UL);
		lat_idle_cpu();
		char name[96];
		lat_row = 0;
		snprintf(name, sizeof name, "W9b latency p50: submit-to-start, idle pool (%u samples)",
			 lat_samples);
		bench_row(&cfg, name, nthreads, 1, BENCH_NS_PER_OP, impls, n);
		lat_row = 1;
		snprintf(name, sizeof name, "W9b latency p99: submit-to-start, idle pool (%u samples)",
			 lat_samples);
		bench_row(&cfg, name, nthreads, 1, BENCH_NS_PER_OP, impls, n);
		lat_row = 2;
		snprintf(name, sizeof name,
			 "W9b latency p99.9: submit-to-start, idle pool (%u samples)", lat_samples);
		bench_row(&cfg, name, nthreads, 1, BENCH_NS_PER_OP, impls, n);
	}
	if (bench_wanted(&cfg, "rss")) {
		printf("\npeak RSS, W4 seed (10M tasks, %u workers), each in a fresh process:\n",
		       nthreads);
		bool ok;
		double base = rss_of("none", &ok);
		printf("  %-34s %8.1f MB\n", "empty process (baseline)", base);
		rss_row("libconc", "libconc", base);
		char label[64];
		snprintf(label, sizeof label, "libconc, max_queued = %u", RSS_BOUND);
		rss_row(label, "libconc-bounded", base);
#ifdef HAVE_GLIB
		rss_row("GThreadPool", "glib", base);
#endif
		rss_row("mutex+condvar pool", "mutex", base);
#ifdef _OPENMP
		rss_row("OpenMP tasks", "omp", base);
#endif
	}
	return bench_finish(&cfg);
}
