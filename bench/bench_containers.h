/*
 * bench_containers.h - the workloads bench_queue and bench_stack share
 * (WORKLOADS.md W1/W1b for a queue, W2/W2b for a stack) and the peers that
 * fit both shapes, written once against a table of calls.
 *
 *   seed (W1/W2)   5 threads each push the value 10 one million times into
 *                  one container (thread creation inside the timed region);
 *                  after joining them, one thread pops everything and sums.
 *                  Verified: count 5,000,000 and sum 50,000,000.  Two rows:
 *                  the fill, and the fill plus the drain.
 *   prod/cons      P producers push `per` distinct values each
 *   (W1b/W2b)      (p*per + i + 1), P consumers pop at the same time; a
 *                  consumer that finds the container empty yields, and stops
 *                  once every producer is done and one more pop finds
 *                  nothing.  Verified: count P*per and sum n(n+1)/2.
 *
 * Peers here: a pthread mutex around a growable array (a ring for FIFO, a
 * vector for LIFO), plain and PTHREAD_MUTEX_ADAPTIVE_NP; the urcu-memb
 * thread registration the liburcu peers need; and the ck_epoch record
 * handling that ck_fifo_mpmc and ck_stack need.
 */
#ifndef CONC_BENCH_CONTAINERS_H
#define CONC_BENCH_CONTAINERS_H

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef _LGPL_SOURCE
#define _LGPL_SOURCE /* liburcu's inline fast paths, as its users get them */
#endif
#include <urcu/urcu-memb.h>

#include <ck_epoch.h>

#include "harness.h"

typedef struct bc_ops {
	const char *name;
	void *(*create)(void);
	void (*destroy)(void *c);
	void *(*thread_enter)(void *c);         /* per-thread context (may be NULL) */
	void (*thread_exit)(void *c, void *tc);
	bool (*push)(void *c, void *tc, uintptr_t v);
	bool (*pop)(void *c, void *tc, uintptr_t *v);
	const char *missing; /* a peer that could not be built: why (the rest NULL) */
} bc_ops;

/* A peer listed as missing, with the reason (see BENCH_MISSING). */
#define BC_MISSING(var, label, why) static const bc_ops var = {.name = (label), .missing = (why)}

static void *bc_no_enter(void *c)
{
	(void)c;
	return NULL;
}

static void bc_no_exit(void *c, void *tc)
{
	(void)c;
	(void)tc;
}

/* ---- seed workload ---------------------------------------------------------- */

#define BC_SEED_THREADS 5
#define BC_SEED_PER 1000000ul
#define BC_SEED_VALUE 10

typedef struct bc_seed {
	const bc_ops *ops;
	void *c;
	atomic_ulong failed;
} bc_seed;

static void *bc_seed_filler(void *arg)
{
	bc_seed *s = arg;
	void *tc = s->ops->thread_enter(s->c);
	for (unsigned long i = 0; i < BC_SEED_PER; i++)
		if (!s->ops->push(s->c, tc, BC_SEED_VALUE))
			atomic_fetch_add(&s->failed, 1);
	s->ops->thread_exit(s->c, tc);
	return NULL;
}

/* with_drain: time the fill and the drain; else the fill only */
static bench_result bc_seed_run(const bc_ops *ops, bool with_drain)
{
	bc_seed s = {.ops = ops, .c = ops->create()};
	atomic_init(&s.failed, 0);
	pthread_t t[BC_SEED_THREADS];
	double t0 = bench_now();
	for (int i = 0; i < BC_SEED_THREADS; i++)
		if (pthread_create(&t[i], NULL, bc_seed_filler, &s))
			abort();
	for (int i = 0; i < BC_SEED_THREADS; i++)
		pthread_join(t[i], NULL);
	double t1 = bench_now();
	void *tc = ops->thread_enter(s.c);
	unsigned long n = 0, sum = 0;
	uintptr_t v;
	while (ops->pop(s.c, tc, &v)) {
		n++;
		sum += v;
	}
	ops->thread_exit(s.c, tc);
	double t2 = bench_now();
	ops->destroy(s.c);
	bool ok = atomic_load(&s.failed) == 0 && n == BC_SEED_THREADS * BC_SEED_PER &&
		  sum == BC_SEED_THREADS * BC_SEED_PER * BC_SEED_VALUE;
	return (bench_result){with_drain ? t2 - t0 : t1 - t0, ok};
}

static bench_result bc_seed_fill(void *arg, unsigned threads)
{
	(void)threads;
	return bc_seed_run(arg, false);
}

static bench_result bc_seed_fill_drain(void *arg, unsigned threads)
{
	(void)threads;
	return bc_seed_run(arg, true);
}

/* ---- producers and consumers ------------------------------------------------- */

typedef struct bc_pc {
	const bc_ops *ops;
	void *c;
	unsigned long per;
	atomic_uint producers_left;
	atomic_ulong failed;
	struct bc_pc_slot {
		unsigned long n, sum;
		char pad[128 - 2 * sizeof(unsigned long)];
	} got[2 * BENCH_MAX_THREADS];
} bc_pc;

typedef struct bc_pc_arg {
	bc_pc *pc;
	unsigned id;
} bc_pc_arg;

static void *bc_producer(void *arg)
{
	bc_pc_arg *a = arg;
	bc_pc *pc = a->pc;
	void *tc = pc->ops->thread_enter(pc->c);
	uintptr_t base = (uintptr_t)a->id * pc->per + 1;
	for (unsigned long i = 0; i < pc->per; i++)
		if (!pc->ops->push(pc->c, tc, base + i))
			atomic_fetch_add(&pc->failed, 1);
	pc->ops->thread_exit(pc->c, tc);
	atomic_fetch_sub(&pc->producers_left, 1);
	return NULL;
}

static void *bc_consumer(void *arg)
{
	bc_pc_arg *a = arg;
	bc_pc *pc = a->pc;
	void *tc = pc->ops->thread_enter(pc->c);
	unsigned long n = 0, sum = 0;
	uintptr_t v;
	for (;;) {
		if (pc->ops->pop(pc->c, tc, &v)) {
			n++;
			sum += v;
			continue;
		}
		if (atomic_load(&pc->producers_left) == 0) {
			if (!pc->ops->pop(pc->c, tc, &v))
				break;
			n++;
			sum += v;
			continue;
		}
		sched_yield();
	}
	pc->ops->thread_exit(pc->c, tc);
	pc->got[a->id].n = n;
	pc->got[a->id].sum = sum;
	return NULL;
}

static unsigned long bc_pc_per = 2000000ul;

/* ---- W1c: producers and consumers with work between operations ---------------- */

/* ~200 ns of computation (WORKLOADS.md W5's map: 150 rounds of xor-shift,
 * multiply, add the round); the empty asm keeps every round. */
#define BC_WORK_ROUNDS 150
static inline uint64_t bc_work(uint64_t x)
{
	for (unsigned r = 0; r < BC_WORK_ROUNDS; r++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		x = x * 0x9E3779B97F4A7C15ull + r;
		__asm__("" : "+r"(x));
	}
	return x;
}

static unsigned long bc_work_per = 200000ul;

static void *bc_work_producer(void *arg)
{
	bc_pc_arg *a = arg;
	bc_pc *pc = a->pc;
	void *tc = pc->ops->thread_enter(pc->c);
	uintptr_t base = (uintptr_t)a->id * pc->per + 1;
	uint64_t x = base;
	for (unsigned long i = 0; i < pc->per; i++) {
		x = bc_work(x);
		if (!pc->ops->push(pc->c, tc, base + i))
			atomic_fetch_add(&pc->failed, 1);
	}
	pc->ops->thread_exit(pc->c, tc);
	pc->got[a->id].sum = (unsigned long)x; /* keeps the work */
	atomic_fetch_sub(&pc->producers_left, 1);
	return NULL;
}

static void *bc_work_consumer(void *arg)
{
	bc_pc_arg *a = arg;
	bc_pc *pc = a->pc;
	void *tc = pc->ops->thread_enter(pc->c);
	unsigned long n = 0, sum = 0;
	uint64_t x = 1;
	uintptr_t v;
	for (;;) {
		if (pc->ops->pop(pc->c, tc, &v)) {
			n++;
			sum += v;
			x = bc_work(x ^ v);
			continue;
		}
		if (atomic_load(&pc->producers_left) == 0) {
			if (!pc->ops->pop(pc->c, tc, &v))
				break;
			n++;
			sum += v;
			continue;
		}
		sched_yield();
	}
	pc->ops->thread_exit(pc->c, tc);
	pc->got[a->id].n = n;
	pc->got[a->id].sum = sum;
	pc->got[a->id].pad[0] = (char)x; /* keeps the work */
	return NULL;
}

static bench_result bc_pc_run_with(const bc_ops *ops, unsigned p, unsigned long per,
				   void *(*producer)(void *), void *(*consumer)(void *))
{
	bc_pc *pc = calloc(1, sizeof *pc);
	if (!pc || p > BENCH_MAX_THREADS)
		abort();
	pc->ops = ops;
	pc->c = ops->create();
	pc->per = per;
	atomic_init(&pc->producers_left, p);
	atomic_init(&pc->failed, 0);
	pthread_t t[2 * BENCH_MAX_THREADS];
	bc_pc_arg args[2 * BENCH_MAX_THREADS];
	double t0 = bench_now();
	for (unsigned i = 0; i < 2 * p; i++) {
		args[i] = (bc_pc_arg){pc, i}; /* consumers record in got[p..2p) */
		if (pthread_create(&t[i], NULL, i < p ? producer : consumer, &args[i]))
			abort();
	}
	for (unsigned i = 0; i < 2 * p; i++)
		pthread_join(t[i], NULL);
	double t1 = bench_now();
	unsigned long n = 0, sum = 0, total = (unsigned long)p * pc->per;
	for (unsigned i = p; i < 2 * p; i++) {
		n += pc->got[i].n;
		sum += pc->got[i].sum;
	}
	bool ok = atomic_load(&pc->failed) == 0 && n == total && sum == total * (total + 1) / 2;
	ops->destroy(pc->c);
	free(pc);
	return (bench_result){t1 - t0, ok};
}

/* Items per producer: the workload's count up to P = 8 (WORKLOADS.md);
 * beyond, P = 8's total split over the P producers, so that an
 * oversubscribed row takes no longer than P = 8's. */
static unsigned long bc_per(unsigned long per, unsigned p)
{
	return p > 8 ? per * 8 / p : per;
}

static bench_result bc_pc_run(void *arg, unsigned p)
{
	return bc_pc_run_with(arg, p, bc_per(bc_pc_per, p), bc_producer, bc_consumer);
}

static bench_result bc_work_run(void *arg, unsigned p)
{
	return bc_pc_run_with(arg, p, bc_per(bc_work_per, p), bc_work_producer, bc_work_consumer);
}

/* ---- rows ----------------------------------------------------------------------- */

/* The seed rows and the P sweep for the given implementations. */
static void bc_rows(bench_cfg *cfg, const char *wname, const char *pcname,
		    const bc_ops *const *ops, int n)
{
	bench_impl seed_fill[BENCH_MAX_IMPLS], seed_all[BENCH_MAX_IMPLS], pc[BENCH_MAX_IMPLS];
	for (int i = 0; i < n; i++) {
		if (ops[i]->missing) {
			seed_fill[i] = seed_all[i] =
				pc[i] = (bench_impl)BENCH_MISSING(ops[i]->name, ops[i]->missing);
			continue;
		}
		seed_fill[i] = (bench_impl){ops[i]->name, bc_seed_fill, (void *)ops[i]};
		seed_all[i] = (bench_impl){ops[i]->name, bc_seed_fill_drain, (void *)ops[i]};
		pc[i] = (bench_impl){ops[i]->name, bc_pc_run, (void *)ops[i]};
	}
	char name[96];
	snprintf(name, sizeof name, "%s seed: 5x1M push (fill)", wname);
	bench_row(cfg, name, BC_SEED_THREADS, BC_SEED_THREADS * (double)BC_SEED_PER, BENCH_MS,
		  seed_fill, n);
	snprintf(name, sizeof name, "%s seed: fill + drain", wname);
	bench_row(cfg, name, BC_SEED_THREADS, 2 * BC_SEED_THREADS * (double)BC_SEED_PER, BENCH_MS,
		  seed_all, n);
	for (int i = 0; i < cfg->nthreads; i++) {
		unsigned p = cfg->threads[i];
		snprintf(name, sizeof name, "%s P prod + P cons, push+pop", pcname);
		bench_row(cfg, name, p, 2.0 * p * (double)bc_per(bc_pc_per, p), BENCH_MOPS, pc, n);
	}
}

/* W1c: the P sweep with ~200 ns of work after each operation. */
static __attribute__((unused)) void bc_work_rows(bench_cfg *cfg, const char *wname, const bc_ops *const *ops, int n)
{
	bench_impl w[BENCH_MAX_IMPLS];
	for (int i = 0; i < n; i++)
		w[i] = ops[i]->missing ? (bench_impl)BENCH_MISSING(ops[i]->name, ops[i]->missing)
				       : (bench_impl){ops[i]->name, bc_work_run, (void *)ops[i]};
	char name[96];
	for (int i = 0; i < cfg->nthreads; i++) {
		unsigned p = cfg->threads[i];
		snprintf(name, sizeof name, "%s P prod + P cons, 200 ns work", wname);
		bench_row(cfg, name, p, 2.0 * p * (double)bc_per(bc_work_per, p), BENCH_MOPS, w, n);
	}
}

static void bc_ck_init(void);

/*
 * The start of bench_queue's and bench_stack's main.  P = 1, 2, 4, 8, 16
 * (8 and 16 oversubscribe a 2-core machine, where lock-free code should
 * shine); W1b/W2b push 2,000,000 items per producer, W1c 200,000 (--quick:
 * 500,000 and 100,000), and P = 16 splits P = 8's total (bc_per).
 * Seven repetitions, also in --quick mode.
 */
static void bc_setup(bench_cfg *cfg, int argc, char **argv)
{
	static const unsigned def_threads[] = {1, 2, 4, 8, 16, 0};
	bench_init(cfg, argc, argv, def_threads);
	if (cfg->quick && !cfg->full) {
		bc_pc_per = 500000ul;
		bc_work_per = 100000ul;
		/* issue 18's targets are medians of at least 7 alternating
		 * rounds: quick keeps 7 unless --reps says otherwise */
		bool reps_given = false;
		for (int i = 1; i < argc; i++)
			reps_given |= strcmp(argv[i], "--reps") == 0;
		if (!reps_given)
			cfg->reps = 7;
	}
	bc_ck_init();
}

/* ---- peer: pthread mutex + growable array --------------------------------------- */

typedef struct bc_locked {
	pthread_mutex_t m;
	uintptr_t *buf;
	size_t cap, head, count; /* ring for FIFO; vector (head 0) for LIFO */
	bool fifo;
} bc_locked;

static void *bc_locked_create(bool fifo, bool adaptive)
{
	bc_locked *l = calloc(1, sizeof *l);
	pthread_mutexattr_t a;
	pthread_mutexattr_init(&a);
	if (adaptive)
		pthread_mutexattr_settype(&a, PTHREAD_MUTEX_ADAPTIVE_NP);
	pthread_mutex_init(&l->m, &a);
	pthread_mutexattr_destroy(&a);
	l->cap = 1024;
	l->buf = malloc(l->cap * sizeof *l->buf);
	l->fifo = fifo;
	if (!l->buf)
		abort();
	return l;
}

static inline void *bc_fifo_plain_create(void) { return bc_locked_create(true, false); }
static inline void *bc_fifo_adaptive_create(void) { return bc_locked_create(true, true); }
static inline void *bc_lifo_plain_create(void) { return bc_locked_create(false, false); }
static inline void *bc_lifo_adaptive_create(void) { return bc_locked_create(false, true); }

static void bc_locked_destroy(void *c)
{
	bc_locked *l = c;
	pthread_mutex_destroy(&l->m);
	free(l->buf);
	free(l);
}

static bool bc_locked_push(void *c, void *tc, uintptr_t v)
{
	(void)tc;
	bc_locked *l = c;
	pthread_mutex_lock(&l->m);
	if (l->count == l->cap) {
		uintptr_t *nb = malloc(2 * l->cap * sizeof *nb);
		if (!nb) {
			pthread_mutex_unlock(&l->m);
			return false;
		}
		for (size_t i = 0; i < l->count; i++)
			nb[i] = l->buf[(l->head + i) & (l->cap - 1)];
		free(l->buf);
		l->buf = nb;
		l->head = 0;
		l->cap *= 2;
	}
	l->buf[(l->head + l->count) & (l->cap - 1)] = v;
	l->count++;
	pthread_mutex_unlock(&l->m);
	return true;
}

static bool bc_locked_pop(void *c, void *tc, uintptr_t *v)
{
	(void)tc;
	bc_locked *l = c;
	pthread_mutex_lock(&l->m);
	bool got = l->count > 0;
	if (got) {
		if (l->fifo) {
			*v = l->buf[l->head];
			l->head = (l->head + 1) & (l->cap - 1);
		} else {
			*v = l->buf[(l->head + l->count - 1) & (l->cap - 1)];
		}
		l->count--;
	}
	pthread_mutex_unlock(&l->m);
	return got;
}

#define BC_LOCKED_OPS(var, label, createfn)                                          \
	static const bc_ops var = {label, createfn, bc_locked_destroy, bc_no_enter, \
				   bc_no_exit, bc_locked_push, bc_locked_pop, NULL}

/* ---- urcu-memb registration for the liburcu peers ------------------------------- */

static void *bc_urcu_enter(void *c)
{
	(void)c;
	urcu_memb_register_thread();
	return NULL;
}

static void bc_urcu_exit(void *c, void *tc)
{
	(void)c;
	(void)tc;
	urcu_memb_unregister_thread();
}

/* ---- ck_epoch records for the ck peers ------------------------------------------- */

static ck_epoch_t bc_ck_epoch;

static void bc_ck_init(void)
{
	ck_epoch_init(&bc_ck_epoch);
}

static void *bc_ck_enter(void *c)
{
	(void)c;
	ck_epoch_record_t *r = ck_epoch_recycle(&bc_ck_epoch, NULL);
	if (!r) {
		r = malloc(sizeof *r);
		if (!r)
			abort();
		ck_epoch_register(&bc_ck_epoch, r, NULL);
	}
	return r;
}

static void bc_ck_exit(void *c, void *tc)
{
	(void)c;
	ck_epoch_barrier(tc); /* run this thread's deferred frees */
	ck_epoch_unregister(tc);
}

/* Call every so many retires, so garbage does not pile up. */
static inline void bc_ck_maybe_poll(ck_epoch_record_t *r)
{
	if ((r->n_pending & 255) == 0)
		ck_epoch_poll(r);
}

#endif
