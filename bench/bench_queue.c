/*
 * bench_queue.c - conc_queue against its peers (WORKLOADS.md W1, W1b):
 * a pthread mutex + ring (plain and adaptive), liburcu cds_wfcq and
 * cds_lfq (+ call_rcu, urcu-memb flavour), Concurrency Kit ck_fifo_mpmc
 * (+ ck_epoch), moodycamel::ConcurrentQueue (plain calls, with producer and
 * consumer tokens, and its bulk calls), Boost.Lockfree's queue and
 * crossbeam's SegQueue (the last three optional: a peer that could not be
 * built shows as missing, with the reason).  Every peer but moodycamel and
 * SegQueue allocates one node per item, as its API asks; those two store
 * the items in blocks.  libconc's batch calls (push_n, try_pop_n) run in
 * the same rows, with the same per-thread buffering of 64 as moodycamel's
 * bulk calls.
 *
 * moodycamel's queue is not a linearizable FIFO: it keeps one sub-queue per
 * producer and promises FIFO order only among one producer's items, so its
 * labels say "FIFO/prod".  Every other queue here is linearizable FIFO.
 */
#include "bench_containers.h" /* first: it sets _LGPL_SOURCE for liburcu */
#include <urcu/rculfqueue.h>
#include <urcu/wfcqueue.h>

#include <ck_fifo.h>

#include "conc/queue.h"
#include "queue/queue_internal.h"

#include "peers/cxx_peers.h"

/* ---- libconc ----------------------------------------------------------------- */

static void *lc_create(void)
{
	conc_queue *q;
	conc__queue_set_pacing(true);
	if (conc_queue_create(&q))
		abort();
	return q;
}

/* The same queue with contention pacing off (queue.c): what the pacing
 * buys, and what it costs where it should cost nothing (W1c), in one run. */
static void *lc_np_create(void)
{
	conc_queue *q;
	conc__queue_set_pacing(false);
	if (conc_queue_create(&q))
		abort();
	return q;
}

static void lc_destroy(void *c) { conc_queue_destroy(c, NULL); }

static bool lc_push(void *c, void *tc, uintptr_t v)
{
	(void)tc;
	return conc_queue_push(c, (void *)v) == 0;
}

static bool lc_pop(void *c, void *tc, uintptr_t *v)
{
	(void)tc;
	void *it;
	if (!conc_queue_try_pop(c, &it))
		return false;
	*v = (uintptr_t)it;
	return true;
}

static const bc_ops libconc = {"libconc queue", lc_create, lc_destroy, bc_no_enter,
			       bc_no_exit, lc_push, lc_pop, NULL};
static const bc_ops libconc_np = {"libconc, pacing off", lc_np_create, lc_destroy, bc_no_enter,
				  bc_no_exit, lc_push, lc_pop, NULL};

/*
 * Batches, as the moodycamel bulk peer below does them: each thread keeps
 * up to LC_BULK items of its own; a producer hands them over with one
 * conc_queue_push_n when it has LC_BULK (and the rest at its exit, before
 * it counts as done), a consumer takes up to LC_BULK with one
 * conc_queue_try_pop_n and returns them one by one.
 */
#define LC_BULK 64

typedef struct lc_bulk_tc {
	size_t npush, npop, next;
	void *push[LC_BULK], *pop[LC_BULK];
} lc_bulk_tc;

static atomic_bool lc_bulk_failed; /* a failed final flush (no item is lost silently) */

static void *lc_bulk_enter(void *c)
{
	(void)c;
	lc_bulk_tc *t = calloc(1, sizeof *t);
	if (!t)
		abort();
	return t;
}

static bool lc_bulk_flush(void *c, lc_bulk_tc *t)
{
	bool ok = t->npush == 0 || conc_queue_push_n(c, t->push, t->npush) == 0;
	t->npush = 0;
	return ok;
}

static void lc_bulk_exit(void *c, void *tc)
{
	lc_bulk_tc *t = tc;
	if (!lc_bulk_flush(c, t))
		atomic_store(&lc_bulk_failed, true);
	if (t->next != t->npop) /* a consumer never leaves items behind */
		atomic_store(&lc_bulk_failed, true);
	free(t);
}

static bool lc_bulk_push(void *c, void *tc, uintptr_t v)
{
	lc_bulk_tc *t = tc;
	t->push[t->npush++] = (void *)v;
	return t->npush < LC_BULK || lc_bulk_flush(c, t);
}

static bool lc_bulk_pop(void *c, void *tc, uintptr_t *v)
{
	lc_bulk_tc *t = tc;
	if (t->next == t->npop) {
		t->npop = conc_queue_try_pop_n(c, t->pop, LC_BULK);
		t->next = 0;
		if (t->npop == 0)
			return false;
	}
	*v = (uintptr_t)t->pop[t->next++];
	return true;
}

static void lc_bulk_destroy(void *c)
{
	if (atomic_load(&lc_bulk_failed))
		abort();
	conc_queue_destroy(c, NULL);
}

static const bc_ops libconc_bulk = {"libconc push_n/try_pop_n 64", lc_create, lc_bulk_destroy,
				    lc_bulk_enter, lc_bulk_exit, lc_bulk_push, lc_bulk_pop, NULL};

/* ---- liburcu cds_wfcq (wait-free enqueue, blocking dequeue) ------------------- */

typedef struct wfcq {
	struct cds_wfcq_head head;
	struct cds_wfcq_tail tail;
} wfcq;

typedef struct wfcq_node {
	struct cds_wfcq_node n;
	uintptr_t v;
} wfcq_node;

static void *wfcq_create(void)
{
	wfcq *q = malloc(sizeof *q);
	cds_wfcq_init(&q->head, &q->tail);
	return q;
}

static bool wfcq_pop(void *c, void *tc, uintptr_t *v);

static void wfcq_destroy(void *c)
{
	uintptr_t v;
	while (wfcq_pop(c, NULL, &v))
		;
	wfcq *q = c;
	cds_wfcq_destroy(&q->head, &q->tail);
	free(q);
}

static bool wfcq_push(void *c, void *tc, uintptr_t v)
{
	(void)tc;
	wfcq *q = c;
	wfcq_node *n = malloc(sizeof *n);
	if (!n)
		return false;
	cds_wfcq_node_init(&n->n);
	n->v = v;
	cds_wfcq_enqueue(&q->head, &q->tail, &n->n);
	return true;
}

static bool wfcq_pop(void *c, void *tc, uintptr_t *v)
{
	(void)tc;
	wfcq *q = c;
	struct cds_wfcq_node *n = cds_wfcq_dequeue_blocking(&q->head, &q->tail);
	if (!n)
		return false;
	wfcq_node *w = caa_container_of(n, wfcq_node, n);
	*v = w->v;
	free(w); /* a dequeued wfcq node is the caller's at once */
	return true;
}

static const bc_ops urcu_wfcq = {"urcu cds_wfcq", wfcq_create, wfcq_destroy, bc_no_enter,
				 bc_no_exit, wfcq_push, wfcq_pop, NULL};

/* ---- liburcu cds_lfq (Michael-Scott with RCU) + call_rcu ----------------------- */

typedef struct lfq_node {
	struct cds_lfq_node_rcu n;
	struct rcu_head rcu;
	uintptr_t v;
} lfq_node;

static void *lfq_create(void)
{
	struct cds_lfq_queue_rcu *q = malloc(sizeof *q);
	cds_lfq_init_rcu(q, urcu_memb_call_rcu);
	return q;
}

static void lfq_free(struct rcu_head *h)
{
	free(caa_container_of(h, lfq_node, rcu));
}

static bool lfq_push(void *c, void *tc, uintptr_t v)
{
	(void)tc;
	lfq_node *n = malloc(sizeof *n);
	if (!n)
		return false;
	cds_lfq_node_init_rcu(&n->n);
	n->v = v;
	urcu_memb_read_lock();
	cds_lfq_enqueue_rcu(c, &n->n);
	urcu_memb_read_unlock();
	return true;
}

static bool lfq_pop(void *c, void *tc, uintptr_t *v)
{
	(void)tc;
	urcu_memb_read_lock();
	struct cds_lfq_node_rcu *n = cds_lfq_dequeue_rcu(c);
	urcu_memb_read_unlock();
	if (!n)
		return false;
	lfq_node *l = caa_container_of(n, lfq_node, n);
	*v = l->v;
	urcu_memb_call_rcu(&l->rcu, lfq_free);
	return true;
}

static void lfq_destroy(void *c)
{
	uintptr_t v;
	urcu_memb_register_thread();
	while (lfq_pop(c, NULL, &v))
		;
	urcu_memb_unregister_thread();
	urcu_memb_barrier(); /* every call_rcu has run: no garbage between runs */
	cds_lfq_destroy_rcu(c);
	free(c);
}

static const bc_ops urcu_lfq = {"urcu cds_lfq+call_rcu", lfq_create, lfq_destroy, bc_urcu_enter,
				bc_urcu_exit, lfq_push, lfq_pop, NULL};

/* ---- Concurrency Kit ck_fifo_mpmc + ck_epoch ---------------------------------- */

typedef struct ckq_node {
	ck_fifo_mpmc_entry_t e;
	ck_epoch_entry_t ee;
} ckq_node;

static void *ckq_create(void)
{
	ck_fifo_mpmc_t *f = aligned_alloc(64, sizeof *f);
	ckq_node *stub = aligned_alloc(16, sizeof *stub);
	ck_fifo_mpmc_init(f, &stub->e);
	return f;
}

static void ckq_free(ck_epoch_entry_t *e)
{
	free(caa_container_of(e, ckq_node, ee));
}

static bool ckq_push(void *c, void *tc, uintptr_t v)
{
	ckq_node *n = aligned_alloc(16, sizeof *n);
	if (!n)
		return false;
	ck_epoch_begin(tc, NULL);
	ck_fifo_mpmc_enqueue(c, &n->e, (void *)v);
	ck_epoch_end(tc, NULL);
	return true;
}

static bool ckq_pop(void *c, void *tc, uintptr_t *v)
{
	ck_fifo_mpmc_entry_t *garbage;
	void *val;
	ck_epoch_begin(tc, NULL);
	bool ok = ck_fifo_mpmc_dequeue(c, &val, &garbage);
	ck_epoch_end(tc, NULL);
	if (!ok)
		return false;
	*v = (uintptr_t)val;
	ck_epoch_call(tc, &caa_container_of(garbage, ckq_node, e)->ee, ckq_free);
	bc_ck_maybe_poll(tc);
	return true;
}

static void ckq_destroy(void *c)
{
	void *tc = bc_ck_enter(c);
	uintptr_t v;
	while (ckq_pop(c, tc, &v))
		;
	bc_ck_exit(c, tc);
	ck_fifo_mpmc_entry_t *stub;
	ck_fifo_mpmc_deinit(c, &stub);
	free(caa_container_of(stub, ckq_node, e));
	free(c);
}

static const bc_ops ck_fifo = {"ck_fifo_mpmc+ck_epoch", ckq_create, ckq_destroy, bc_ck_enter,
			       bc_ck_exit, ckq_push, ckq_pop, NULL};

/* ---- moodycamel::ConcurrentQueue (C++, peers/moodycamel.cpp) ---------------- */

#define MC_LABEL "moodycamel (FIFO/prod)"
#define MC_TOK_LABEL "moodycamel+tok (FIFO/prod)"
#define MC_BULK_LABEL "moodycamel bulk (FIFO/prod)"

#ifdef BENCH_HAVE_MOODYCAMEL
static void *mc_create_(void) { return mc_create(); }
static void mc_destroy_(void *c) { mc_destroy(c); }

static bool mc_push_(void *c, void *tc, uintptr_t v)
{
	(void)tc;
	return mc_push(c, v);
}

static bool mc_pop_(void *c, void *tc, uintptr_t *v)
{
	(void)tc;
	return mc_pop(c, v);
}

static const bc_ops mc_plain = {MC_LABEL, mc_create_, mc_destroy_, bc_no_enter, bc_no_exit,
				mc_push_, mc_pop_, NULL};

/* With tokens: each thread makes a producer and a consumer token (it does
 * not know its role), as moodycamel's README advises for speed. */
static void *mc_tok_enter(void *c) { return mc_tokens_new(c); }

static void mc_tok_exit(void *c, void *tc)
{
	(void)c;
	mc_tokens_free(tc);
}

static const bc_ops mc_tok = {MC_TOK_LABEL, mc_create_, mc_destroy_, mc_tok_enter, mc_tok_exit,
			      mc_push_tok, mc_pop_tok, NULL};

/*
 * Bulk: the workloads push and pop one item at a time, so each thread keeps
 * up to MC_BULK items of its own: a producer hands them over with one
 * enqueue_bulk when it has MC_BULK (and the rest at its exit, before it
 * counts as done), a consumer takes up to MC_BULK with one try_dequeue_bulk
 * and returns them one by one.  Tokens as above.
 */
#define MC_BULK 64

typedef struct mc_bulk_tc {
	void *tokens;
	size_t npush, npop, next;
	uintptr_t push[MC_BULK], pop[MC_BULK];
} mc_bulk_tc;

static void *mc_bulk_enter(void *c)
{
	mc_bulk_tc *t = calloc(1, sizeof *t);
	if (!t)
		abort();
	t->tokens = mc_tokens_new(c);
	return t;
}

static bool mc_bulk_flush(void *c, mc_bulk_tc *t)
{
	bool ok = t->npush == 0 || mc_push_bulk(c, t->tokens, t->push, t->npush);
	t->npush = 0;
	return ok;
}

static atomic_bool mc_bulk_failed; /* a failed final flush (no item is lost silently) */

static void mc_bulk_exit(void *c, void *tc)
{
	mc_bulk_tc *t = tc;
	if (!mc_bulk_flush(c, t))
		atomic_store(&mc_bulk_failed, true);
	if (t->next != t->npop) /* a consumer never leaves items behind */
		atomic_store(&mc_bulk_failed, true);
	mc_tokens_free(t->tokens);
	free(t);
}

static bool mc_bulk_push(void *c, void *tc, uintptr_t v)
{
	mc_bulk_tc *t = tc;
	t->push[t->npush++] = v;
	return t->npush < MC_BULK || mc_bulk_flush(c, t);
}

static bool mc_bulk_pop(void *c, void *tc, uintptr_t *v)
{
	mc_bulk_tc *t = tc;
	if (t->next == t->npop) {
		t->npop = mc_pop_bulk(c, t->tokens, t->pop, MC_BULK);
		t->next = 0;
		if (t->npop == 0)
			return false;
	}
	*v = t->pop[t->next++];
	return true;
}

static void mc_bulk_destroy(void *c)
{
	if (atomic_load(&mc_bulk_failed))
		abort();
	mc_destroy(c);
}

static const bc_ops mc_bulk = {MC_BULK_LABEL, mc_create_, mc_bulk_destroy, mc_bulk_enter,
			       mc_bulk_exit, mc_bulk_push, mc_bulk_pop, NULL};
#else
BC_MISSING(mc_plain, MC_LABEL, BENCH_MOODYCAMEL_MISSING);
BC_MISSING(mc_tok, MC_TOK_LABEL, BENCH_MOODYCAMEL_MISSING);
BC_MISSING(mc_bulk, MC_BULK_LABEL, BENCH_MOODYCAMEL_MISSING);
#endif

/* ---- boost::lockfree::queue<void *> (C++, peers/boost_lockfree.cpp) ---------- */

#ifdef BENCH_HAVE_BOOST_LOCKFREE
static void *bq_create_(void) { return bq_create(); }
static void bq_destroy_(void *c) { bq_destroy(c); }

static bool bq_push_(void *c, void *tc, uintptr_t v)
{
	(void)tc;
	return bq_push(c, v);
}

static bool bq_pop_(void *c, void *tc, uintptr_t *v)
{
	(void)tc;
	return bq_pop(c, v);
}

static const bc_ops boost_q = {"boost::lockfree::queue", bq_create_, bq_destroy_, bc_no_enter,
			       bc_no_exit, bq_push_, bq_pop_, NULL};
#else
BC_MISSING(boost_q, "boost::lockfree::queue", BENCH_BOOST_LOCKFREE_MISSING);
#endif

/* ---- crossbeam SegQueue (Rust, peers/crossbeam_queue) ------------------------- */

#ifdef BENCH_HAVE_CROSSBEAM_QUEUE
void *cb_segq_new(void);
void cb_segq_free(void *q);
void cb_segq_push(void *q, uintptr_t v);
bool cb_segq_pop(void *q, uintptr_t *v);

static void *segq_create(void) { return cb_segq_new(); }
static void segq_destroy(void *c) { cb_segq_free(c); }

static bool segq_push(void *c, void *tc, uintptr_t v)
{
	(void)tc;
	cb_segq_push(c, v);
	return true;
}

static bool segq_pop(void *c, void *tc, uintptr_t *v)
{
	(void)tc;
	return cb_segq_pop(c, v);
}

static const bc_ops segq = {"crossbeam SegQueue", segq_create, segq_destroy, bc_no_enter,
			    bc_no_exit, segq_push, segq_pop, NULL};
#else
BC_MISSING(segq, "crossbeam SegQueue", BENCH_CROSSBEAM_QUEUE_MISSING);
#endif

BC_LOCKED_OPS(mutex_plain, "mutex+ring", bc_fifo_plain_create);
BC_LOCKED_OPS(mutex_adaptive, "mutex(adaptive)+ring", bc_fifo_adaptive_create);

/* ---- batches: 64 items at a time against 64 single calls (one thread) ------- */

#define BATCH 64
#define BATCH_ROUNDS 20000ul

static bench_result batch_run(void *arg, unsigned threads)
{
	(void)threads;
	uintptr_t mode = (uintptr_t)arg; /* 0 single calls, 1 pop batched, 2 both */
	bool ok = true;
	conc_queue *s;
	if (conc_queue_create(&s))
		abort();
	void *items[BATCH];
	unsigned long sum = 0;
	double t0 = bench_now();
	for (unsigned long r = 0; r < BATCH_ROUNDS; r++) {
		for (unsigned k = 0; k < BATCH; k++)
			items[k] = (void *)(uintptr_t)(r * BATCH + k + 1);
		if (mode == 2) {
			ok &= conc_queue_push_n(s, items, BATCH) == 0;
			ok &= conc_queue_try_pop_n(s, items, BATCH) == BATCH;
		} else if (mode == 1) {
			for (unsigned k = 0; k < BATCH; k++)
				ok &= conc_queue_push(s, items[k]) == 0;
			ok &= conc_queue_try_pop_n(s, items, BATCH) == BATCH;
		} else {
			for (unsigned k = 0; k < BATCH; k++)
				ok &= conc_queue_push(s, items[k]) == 0;
			for (unsigned k = 0; k < BATCH; k++)
				ok &= conc_queue_try_pop(s, &items[k]);
		}
		for (unsigned k = 0; k < BATCH; k++)
			sum += (uintptr_t)items[k];
	}
	double t1 = bench_now();
	conc_queue_destroy(s, NULL);
	unsigned long n = BATCH_ROUNDS * BATCH;
	return (bench_result){t1 - t0, ok && sum == n * (n + 1) / 2};
}

static void batch_rows(bench_cfg *cfg)
{
	const bench_impl impls[] = {{"libconc push_n + try_pop_n", batch_run, (void *)2},
				    {"libconc 64 push + try_pop_n", batch_run, (void *)1},
				    {"libconc 64 single calls", batch_run, NULL}};
	bench_row(cfg, "W1 queue batches of 64, 1 thread", 1, 2.0 * BATCH * BATCH_ROUNDS, BENCH_MOPS,
		  impls, 3);
}

int main(int argc, char **argv)
{
	bench_cfg cfg;
	bc_setup(&cfg, argc, argv);
	const bc_ops *const impls[] = {&libconc,  &libconc_np, &mutex_plain, &mutex_adaptive,
				       &urcu_wfcq, &urcu_lfq,   &ck_fifo,     &mc_tok,
				       &mc_plain,  &mc_bulk,    &boost_q,     &segq};
	int n = (int)(sizeof impls / sizeof impls[0]);
	bc_rows(&cfg, "W1 queue", "W1b queue", impls, n);
	/* Batches of 64 (issue 19): libconc's push_n/try_pop_n first, so each
	 * ratio is against it; moodycamel's bulk calls, and both single-call
	 * forms for reference.  (A table holds at most BENCH_MAX_IMPLS.) */
	const bc_ops *const bulk[] = {&libconc_bulk, &mc_bulk, &libconc, &mc_tok};
	bc_rows(&cfg, "W1 queue, batches", "W1b queue, batches", bulk, 4);
	bc_work_rows(&cfg, "W1c queue", impls, n);
	batch_rows(&cfg);
	int rc = bench_finish(&cfg);
	printf("moodycamel (FIFO/prod): FIFO per producer only, not linearizable across "
	       "producers (the other queues are)\n");
	return rc;
}
