/*
 * lincheck.c - see lincheck.h.
 */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lincheck.h"

/* ---- the checker ---------------------------------------------------------- */

#define MEMO_BITS 12
#define MEMO_SIZE (1u << MEMO_BITS)

typedef struct memo_entry {
	uint32_t gen, mask;
	int len;
	uintptr_t v[LC_MAX_OPS];
} memo_entry;

typedef struct checker {
	const lc_op *ops;
	int n;
	lc_spec spec;
	int cap; /* bounded: a push fails (ok false) only when full; 0 unbounded */
	uintptr_t v[LC_MAX_OPS]; /* contents, oldest first */
	int len;
	memo_entry *memo;
	uint32_t gen;
} checker;

static memo_entry *memo_table;
static uint32_t memo_gen;

static uint64_t state_hash(const checker *c, uint32_t mask)
{
	uint64_t h = mask * 0x9E3779B97F4A7C15ull;
	for (int i = 0; i < c->len; i++)
		h = (h ^ c->v[i]) * 0x100000001B3ull;
	return h ^ (h >> 29);
}

/* The slot for (mask, contents); *seen when it was refuted before. */
static memo_entry *memo_find(checker *c, uint32_t mask, bool *seen)
{
	uint64_t h = state_hash(c, mask);
	for (unsigned probe = 0; probe < 8; probe++) {
		memo_entry *e = &c->memo[(h + probe) & (MEMO_SIZE - 1)];
		if (e->gen != c->gen) {
			*seen = false;
			return e;
		}
		if (e->mask == mask && e->len == c->len &&
		    !memcmp(e->v, c->v, (size_t)c->len * sizeof c->v[0])) {
			*seen = true;
			return e;
		}
	}
	*seen = false;
	return NULL; /* table crowded here: search without memo */
}

static bool search(checker *c, uint32_t done)
{
	if (done == (1u << c->n) - 1)
		return true;
	bool seen;
	memo_entry *slot = memo_find(c, done, &seen);
	if (seen)
		return false;
	/* An op may go next only if no pending op responded before it began. */
	uint64_t min_res = UINT64_MAX;
	for (int i = 0; i < c->n; i++)
		if (!(done & (1u << i)) && c->ops[i].res < min_res)
			min_res = c->ops[i].res;
	for (int i = 0; i < c->n; i++) {
		const lc_op *o = &c->ops[i];
		if ((done & (1u << i)) || o->inv > min_res)
			continue;
		if (o->kind == LC_PUSH && !o->ok) {
			/* a bounded push that failed: the container was full */
			if (c->cap && c->len == c->cap && search(c, done | (1u << i)))
				return true;
		} else if (o->kind == LC_PUSH) {
			if (c->cap && c->len == c->cap)
				continue;
			c->v[c->len++] = o->val;
			if (search(c, done | (1u << i)))
				return true;
			c->len--;
		} else if (!o->ok) {
			if (c->len == 0 && search(c, done | (1u << i)))
				return true;
		} else if (c->len > 0) {
			if (c->spec == LC_LIFO) {
				if (c->v[c->len - 1] != o->val)
					continue;
				c->len--;
				if (search(c, done | (1u << i)))
					return true;
				c->v[c->len++] = o->val;
			} else {
				if (c->v[0] != o->val)
					continue;
				memmove(c->v, c->v + 1, (size_t)(c->len - 1) * sizeof c->v[0]);
				c->len--;
				if (search(c, done | (1u << i)))
					return true;
				memmove(c->v + 1, c->v, (size_t)c->len * sizeof c->v[0]);
				c->v[0] = o->val;
				c->len++;
			}
		}
	}
	if (slot) {
		slot->gen = c->gen;
		slot->mask = done;
		slot->len = c->len;
		memcpy(slot->v, c->v, (size_t)c->len * sizeof c->v[0]);
	}
	return false;
}

static bool check_cap(const lc_op *ops, int n, lc_spec spec, int cap);

bool lc_check(const lc_op *ops, int n, lc_spec spec)
{
	return check_cap(ops, n, spec, 0);
}

bool lc_check_bounded(const lc_op *ops, int n, size_t cap)
{
	return cap > 0 && cap <= LC_MAX_OPS && check_cap(ops, n, LC_FIFO, (int)cap);
}

static bool check_cap(const lc_op *ops, int n, lc_spec spec, int cap)
{
	if (n < 0 || n > LC_MAX_OPS)
		return false;
	if (!memo_table) {
		memo_table = calloc(MEMO_SIZE, sizeof *memo_table);
		if (!memo_table)
			return false;
	}
	if (++memo_gen == 0) { /* wrapped: forget everything */
		memset(memo_table, 0, MEMO_SIZE * sizeof *memo_table);
		memo_gen = 1;
	}
	checker c = {.ops = ops, .n = n, .spec = spec, .cap = cap, .memo = memo_table,
		     .gen = memo_gen};
	return search(&c, 0);
}

/* ---- the recorder --------------------------------------------------------- */

#define LC_MAX_THREADS 4

typedef struct runner {
	const lc_target *t;
	unsigned threads, ops, push_pct;
	int cap; /* lc_run_bounded: record failed pushes (ok false) */
	void *c;
	bool stop;
	atomic_int gate; /* 0 wait, 1 run, -1 abort */
	atomic_uint_fast64_t arrived; /* rendezvous count, all rounds */
	unsigned long round;
	atomic_uint_fast64_t clock;
	pthread_barrier_t start, end;
	lc_op rec[LC_MAX_THREADS][LC_MAX_OPS];
	int nrec[LC_MAX_THREADS];
	uint64_t seed[LC_MAX_THREADS];
} runner;

typedef struct worker_arg {
	runner *r;
	int me;
} worker_arg;

static uint64_t xorshift(uint64_t *s)
{
	uint64_t x = *s;
	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	*s = x;
	return x * 0x2545F4914F6CDD1Dull;
}

static uint64_t stamp(runner *r)
{
	/* seq_cst: the stamps define real-time order across threads */
	return atomic_fetch_add_explicit(&r->clock, 1, memory_order_seq_cst);
}

/* Spin until every worker of this round has arrived, so that the ops of
 * different threads really overlap (a barrier wakes them one by one). */
static void rendezvous(runner *r)
{
	uint64_t target = (uint64_t)r->threads * (r->round + 1);
	atomic_fetch_add_explicit(&r->arrived, 1, memory_order_acq_rel);
	for (unsigned spins = 0;
	     atomic_load_explicit(&r->arrived, memory_order_acquire) < target; spins++)
		if (spins % 4096 == 4095)
			sched_yield(); /* more threads than cores */
}

static void jitter(uint64_t *seed)
{
	for (unsigned n = (unsigned)(xorshift(seed) % 64); n; n--)
		atomic_signal_fence(memory_order_seq_cst); /* a delay the compiler keeps */
}

static void run_ops(runner *r, int me)
{
	int k = 0;
	rendezvous(r);
	for (unsigned i = 0; i < r->ops; i++) {
		jitter(&r->seed[me]);
		lc_op *o = &r->rec[me][k];
		o->thread = me;
		if (xorshift(&r->seed[me]) % 100 < r->push_pct) {
			/* unique in the round; thread 0's first op pushes NULL */
			o->val = (me == 0 && i == 0) ? 0 : (uintptr_t)(1000 + me * 100 + (int)i);
			o->kind = LC_PUSH;
			o->ok = true;
			o->inv = stamp(r);
			int err = r->t->push(r->c, (void *)o->val);
			o->res = stamp(r);
			if (err && !r->cap)
				continue; /* not recorded: the test checks push errors elsewhere */
			o->ok = !err; /* bounded: a failed push says "full" */
		} else {
			void *item = (void *)(uintptr_t)0xdeadbeef;
			o->kind = LC_POP;
			o->inv = stamp(r);
			o->ok = r->t->try_pop(r->c, &item);
			o->res = stamp(r);
			o->val = o->ok ? (uintptr_t)item : 0;
		}
		k++;
	}
	r->nrec[me] = k;
}

static void *worker(void *arg)
{
	worker_arg *a = arg;
	runner *r = a->r;
	int g;
	/* acquire: pairs with the release store of the gate in lc_run */
	while ((g = atomic_load_explicit(&r->gate, memory_order_acquire)) == 0)
		sched_yield();
	if (g < 0)
		return NULL;
	for (;;) {
		pthread_barrier_wait(&r->start);
		if (r->stop)
			return NULL;
		run_ops(r, a->me);
		pthread_barrier_wait(&r->end);
	}
}

static bool overlapping(const lc_op *ops, int n)
{
	for (int i = 0; i < n; i++)
		for (int j = 0; j < n; j++)
			if (ops[i].thread != ops[j].thread && ops[i].inv < ops[j].inv &&
			    ops[j].inv < ops[i].res)
				return true;
	return false;
}

static int run_cap(const lc_target *t, lc_spec spec, int cap, unsigned threads, unsigned ops,
		   unsigned prefill, unsigned push_pct, unsigned long rounds, uint64_t seed,
		   lc_report *out);

int lc_run(const lc_target *t, lc_spec spec, unsigned threads, unsigned ops,
	   unsigned prefill, unsigned push_pct, unsigned long rounds, uint64_t seed,
	   lc_report *out)
{
	return run_cap(t, spec, 0, threads, ops, prefill, push_pct, rounds, seed, out);
}

int lc_run_bounded(const lc_target *t, size_t cap, unsigned threads, unsigned ops,
		   unsigned prefill, unsigned push_pct, unsigned long rounds, uint64_t seed,
		   lc_report *out)
{
	if (cap == 0 || cap > LC_MAX_OPS || prefill > cap) {
		memset(out, 0, sizeof *out);
		return EINVAL;
	}
	return run_cap(t, LC_FIFO, (int)cap, threads, ops, prefill, push_pct, rounds, seed, out);
}

static int run_cap(const lc_target *t, lc_spec spec, int cap, unsigned threads, unsigned ops,
		   unsigned prefill, unsigned push_pct, unsigned long rounds, uint64_t seed,
		   lc_report *out)
{
	memset(out, 0, sizeof *out);
	if (threads < 1 || threads > LC_MAX_THREADS || prefill + threads * ops > LC_MAX_OPS)
		return EINVAL;
	runner *r = calloc(1, sizeof *r);
	if (!r)
		return ENOMEM;
	r->t = t;
	r->threads = threads;
	r->ops = ops;
	r->push_pct = push_pct;
	r->cap = cap;
	atomic_init(&r->clock, 1);
	for (unsigned i = 0; i < threads; i++)
		r->seed[i] = (seed + 1) * 0x9E3779B97F4A7C15ull + i * 0xBF58476D1CE4E5B9ull;
	pthread_barrier_init(&r->start, NULL, threads + 1);
	pthread_barrier_init(&r->end, NULL, threads + 1);
	pthread_t tid[LC_MAX_THREADS];
	worker_arg args[LC_MAX_THREADS];
	unsigned started = 0;
	int err = 0;
	for (; started < threads; started++) {
		args[started] = (worker_arg){r, (int)started};
		err = pthread_create(&tid[started], NULL, worker, &args[started]);
		if (err)
			break;
	}
	/* Workers wait at the gate until every one of them exists, so a
	 * failed pthread_create can still release the others. */
	atomic_store_explicit(&r->gate, err ? -1 : 1, memory_order_release);
	if (err) {
		for (unsigned i = 0; i < started; i++)
			pthread_join(tid[i], NULL);
		goto out;
	}
	for (unsigned long round = 0; round < rounds && !err; round++) {
		err = t->create(&r->c);
		if (err)
			break;
		lc_op all[LC_MAX_OPS];
		int n = 0;
		for (unsigned i = 0; i < prefill; i++) {
			lc_op *o = &all[n];
			o->thread = -1;
			o->kind = LC_PUSH;
			o->ok = true;
			o->val = (uintptr_t)(10 + i);
			o->inv = stamp(r);
			if (t->push(r->c, (void *)o->val) == 0) {
				o->res = stamp(r);
				n++;
			}
		}
		pthread_barrier_wait(&r->start);
		pthread_barrier_wait(&r->end);
		for (unsigned i = 0; i < threads; i++)
			for (int k = 0; k < r->nrec[i]; k++) {
				const lc_op *o = &r->rec[i][k];
				if (o->kind == LC_POP) {
					out->pops++;
					out->empty_pops += !o->ok;
				}
				all[n++] = *o;
			}
		t->destroy(r->c);
		r->round++;
		out->histories++;
		out->ops += (unsigned long)n;
		if (overlapping(all, n))
			out->overlapping++;
		if (!check_cap(all, n, spec, cap)) {
			if (out->violations++ == 0) {
				memcpy(out->first_bad, all, (size_t)n * sizeof all[0]);
				out->first_bad_n = n;
			}
		}
	}
	r->stop = true;
	pthread_barrier_wait(&r->start);
	for (unsigned i = 0; i < threads; i++)
		pthread_join(tid[i], NULL);
out:
	pthread_barrier_destroy(&r->start);
	pthread_barrier_destroy(&r->end);
	free(r);
	return err;
}

void lc_print_violation(const lc_report *r)
{
	if (!r->violations)
		return;
	fprintf(stderr, "non-linearizable history (%d ops):\n", r->first_bad_n);
	for (int i = 0; i < r->first_bad_n; i++) {
		const lc_op *o = &r->first_bad[i];
		fprintf(stderr, "  t%d [%llu,%llu] %s %s %lu\n", o->thread,
			(unsigned long long)o->inv, (unsigned long long)o->res,
			o->kind == LC_PUSH ? "push" : "pop",
			o->ok ? "" : o->kind == LC_PUSH ? "(full)" : "(empty)",
			(unsigned long)o->val);
	}
}
