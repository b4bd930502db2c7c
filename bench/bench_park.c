/*
 * bench_park.c - the parking primitive (src/base/park.h) against a
 * pthread mutex + condition variable, the way a C programmer would write
 * the same wait/notify.
 *
 *   notify, nobody waiting   1 thread calls notify 10M times (a producer's
 *                            cost when consumers are busy): park is one load,
 *                            the condvar needs lock + signal + unlock.
 *   ping-pong                two threads hand a turn back and forth, each
 *                            sleeping until it is its turn.
 *   ring (oversubscribed)    8 threads on the cores pass a token round a ring.
 */
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>

#include "harness.h"
#include "base/park.h"

static unsigned long notify_ops, handoffs;

/* ---- notify with nobody waiting --------------------------------------- */

static bench_result notify_park(void *arg, unsigned threads)
{
	(void)arg;
	(void)threads;
	conc__park p = CONC__PARK_INIT;
	atomic_ulong cond = 0;
	double t0 = bench_now();
	for (unsigned long i = 0; i < notify_ops; i++) {
		atomic_fetch_add_explicit(&cond, 1, memory_order_seq_cst);
		conc__park_notify_one(&p);
	}
	double t1 = bench_now();
	return (bench_result){t1 - t0, atomic_load(&cond) == notify_ops};
}

static bench_result notify_condvar(void *arg, unsigned threads)
{
	(void)arg;
	(void)threads;
	pthread_mutex_t m = PTHREAD_MUTEX_INITIALIZER;
	pthread_cond_t c = PTHREAD_COND_INITIALIZER;
	unsigned long cond = 0;
	double t0 = bench_now();
	for (unsigned long i = 0; i < notify_ops; i++) {
		pthread_mutex_lock(&m);
		cond++;
		pthread_cond_signal(&c);
		pthread_mutex_unlock(&m);
	}
	double t1 = bench_now();
	return (bench_result){t1 - t0, cond == notify_ops};
}

/* ---- a turn passed round a ring of n threads --------------------------- */

struct ring {
	unsigned n;
	unsigned long rounds;
	/* park flavour */
	atomic_ulong turn;
	conc__park park;
	/* condvar flavour */
	pthread_mutex_t m;
	pthread_cond_t c;
	unsigned long cturn;
	unsigned long passes[BENCH_MAX_THREADS * 2];
};

struct ring_arg {
	struct ring *r;
	unsigned me;
};

static void *ring_park_worker(void *arg)
{
	struct ring_arg *a = arg;
	struct ring *r = a->r;
	unsigned long mine = 0;
	for (;;) {
		unsigned long t = atomic_load_explicit(&r->turn, memory_order_acquire);
		if (t >= r->rounds)
			break;
		if (t % r->n != a->me) {
			unsigned key = conc__park_prepare(&r->park);
			t = atomic_load_explicit(&r->turn, memory_order_acquire);
			if (t % r->n == a->me || t >= r->rounds) {
				conc__park_cancel(&r->park);
				continue;
			}
			conc__park_wait(&r->park, key, CONC__NO_DEADLINE);
			continue;
		}
		mine++;
		atomic_store_explicit(&r->turn, t + 1, memory_order_seq_cst);
		conc__park_notify_all(&r->park);
	}
	r->passes[a->me] = mine;
	return NULL;
}

static void *ring_cv_worker(void *arg)
{
	struct ring_arg *a = arg;
	struct ring *r = a->r;
	unsigned long mine = 0;
	pthread_mutex_lock(&r->m);
	for (;;) {
		if (r->cturn >= r->rounds)
			break;
		if (r->cturn % r->n != a->me) {
			pthread_cond_wait(&r->c, &r->m);
			continue;
		}
		mine++;
		r->cturn++;
		pthread_cond_broadcast(&r->c);
	}
	pthread_mutex_unlock(&r->m);
	r->passes[a->me] = mine;
	return NULL;
}

static bench_result run_ring(void *(*worker)(void *), unsigned n)
{
	struct ring r = {.n = n, .rounds = handoffs};
	struct ring_arg args[BENCH_MAX_THREADS * 2];
	pthread_t t[BENCH_MAX_THREADS * 2];
	atomic_init(&r.turn, 0);
	conc__park_init(&r.park);
	pthread_mutex_init(&r.m, NULL);
	pthread_cond_init(&r.c, NULL);
	double t0 = bench_now();
	for (unsigned i = 0; i < n; i++) {
		args[i] = (struct ring_arg){&r, i};
		pthread_create(&t[i], NULL, worker, &args[i]);
	}
	for (unsigned i = 0; i < n; i++)
		pthread_join(t[i], NULL);
	double t1 = bench_now();
	unsigned long total = 0;
	for (unsigned i = 0; i < n; i++)
		total += r.passes[i];
	pthread_mutex_destroy(&r.m);
	pthread_cond_destroy(&r.c);
	return (bench_result){t1 - t0, total == handoffs};
}

static bench_result ring_park(void *arg, unsigned n)
{
	(void)arg;
	return run_ring(ring_park_worker, n);
}

static bench_result ring_condvar(void *arg, unsigned n)
{
	(void)arg;
	return run_ring(ring_cv_worker, n);
}

int main(int argc, char **argv)
{
	static const unsigned def_threads[] = {2, 8, 0};
	bench_cfg cfg;
	bench_init(&cfg, argc, argv, def_threads);
	notify_ops = cfg.quick ? 10000000ul : 50000000ul;
	handoffs = cfg.quick ? 20000ul : 100000ul;

	const bench_impl notify[] = {
		{"libconc park", notify_park, NULL},
		{"mutex+condvar", notify_condvar, NULL},
	};
	bench_row(&cfg, "park: notify, nobody waiting", 1, (double)notify_ops,
		  BENCH_NS_PER_OP, notify, 2);

	const bench_impl ring[] = {
		{"libconc park", ring_park, NULL},
		{"mutex+condvar", ring_condvar, NULL},
	};
	for (int i = 0; i < cfg.nthreads; i++) {
		unsigned n = cfg.threads[i] < 2 ? 2 : cfg.threads[i];
		bench_row(&cfg, "park: token ring hand-off", n, (double)handoffs,
			  BENCH_NS_PER_OP, ring, 2);
	}
	return bench_finish(&cfg);
}
