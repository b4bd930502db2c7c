/*
 * bench_stack.c - conc_stack against its peers (WORKLOADS.md W2, W2b): a
 * pthread mutex + vector (plain and adaptive), liburcu cds_lfs (+ call_rcu,
 * urcu-memb flavour), Concurrency Kit ck_stack (+ ck_epoch), and, optional
 * (a peer that could not be built shows as missing, with the reason),
 * Boost.Lockfree's stack and a Treiber stack on crossbeam-epoch.  libconc
 * runs twice: as shipped, and with its elimination layer switched off (an
 * internal switch), so the table shows what elimination buys; the pairs it
 * matched are printed after the table when the library counts them (a
 * build with -Dfault_hooks=true: release builds keep no such counter).
 */
#include "bench_containers.h" /* first: it sets _LGPL_SOURCE for liburcu */
#include <urcu/lfstack.h>

#include <ck_stack.h>

#include "conc/stack.h"
#include "stack/stack_internal.h"

#include "peers/cxx_peers.h"

/* ---- libconc ----------------------------------------------------------------- */

static atomic_ulong lc_matched;

static void *lc_create_with(bool elim)
{
	conc_stack *s;
	if (conc_stack_create(&s))
		abort();
	conc__stack_set_elimination(s, elim);
	return s;
}

static void *lc_create(void) { return lc_create_with(true); }
static void *lc_create_noelim(void) { return lc_create_with(false); }

static void lc_destroy(void *c)
{
	atomic_fetch_add(&lc_matched, conc__stack_eliminated(c));
	conc_stack_destroy(c, NULL);
}

static bool lc_push(void *c, void *tc, uintptr_t v)
{
	(void)tc;
	return conc_stack_push(c, (void *)v) == 0;
}

static bool lc_pop(void *c, void *tc, uintptr_t *v)
{
	(void)tc;
	void *it;
	if (!conc_stack_try_pop(c, &it))
		return false;
	*v = (uintptr_t)it;
	return true;
}

static const bc_ops libconc = {"libconc stack", lc_create, lc_destroy, bc_no_enter,
			       bc_no_exit, lc_push, lc_pop, NULL};
static const bc_ops libconc_noelim = {"libconc, no elim.", lc_create_noelim, lc_destroy,
				      bc_no_enter, bc_no_exit, lc_push, lc_pop, NULL};

/* ---- liburcu cds_lfs + call_rcu ---------------------------------------------- */

typedef struct lfs_node {
	struct cds_lfs_node n;
	struct rcu_head rcu;
	uintptr_t v;
} lfs_node;

static void *lfs_create(void)
{
	struct __cds_lfs_stack *s = malloc(sizeof *s);
	__cds_lfs_init(s);
	return s;
}

static void lfs_free(struct rcu_head *h)
{
	free(caa_container_of(h, lfs_node, rcu));
}

static bool lfs_push(void *c, void *tc, uintptr_t v)
{
	(void)tc;
	lfs_node *n = malloc(sizeof *n);
	if (!n)
		return false;
	cds_lfs_node_init(&n->n);
	n->v = v;
	cds_lfs_push((struct __cds_lfs_stack *)c, &n->n);
	return true;
}

static bool lfs_pop(void *c, void *tc, uintptr_t *v)
{
	(void)tc;
	urcu_memb_read_lock(); /* __cds_lfs_pop needs RCU against ABA / use-after-free */
	struct cds_lfs_node *n = __cds_lfs_pop((struct __cds_lfs_stack *)c);
	urcu_memb_read_unlock();
	if (!n)
		return false;
	lfs_node *l = caa_container_of(n, lfs_node, n);
	*v = l->v;
	urcu_memb_call_rcu(&l->rcu, lfs_free);
	return true;
}

static void lfs_destroy(void *c)
{
	uintptr_t v;
	urcu_memb_register_thread();
	while (lfs_pop(c, NULL, &v))
		;
	urcu_memb_unregister_thread();
	urcu_memb_barrier();
	free(c);
}

static const bc_ops urcu_lfs = {"urcu cds_lfs+call_rcu", lfs_create, lfs_destroy, bc_urcu_enter,
				bc_urcu_exit, lfs_push, lfs_pop, NULL};

/* ---- Concurrency Kit ck_stack (upmc) + ck_epoch -------------------------------- */

typedef struct cks_node {
	ck_stack_entry_t se;
	ck_epoch_entry_t ee;
	uintptr_t v;
} cks_node;

static void *cks_create(void)
{
	ck_stack_t *s = aligned_alloc(64, 64);
	ck_stack_init(s);
	return s;
}

static void cks_free(ck_epoch_entry_t *e)
{
	free(caa_container_of(e, cks_node, ee));
}

static bool cks_push(void *c, void *tc, uintptr_t v)
{
	(void)tc;
	cks_node *n = malloc(sizeof *n);
	if (!n)
		return false;
	n->v = v;
	ck_stack_push_upmc(c, &n->se);
	return true;
}

static bool cks_pop(void *c, void *tc, uintptr_t *v)
{
	ck_epoch_begin(tc, NULL);
	ck_stack_entry_t *e = ck_stack_pop_upmc(c);
	ck_epoch_end(tc, NULL);
	if (!e)
		return false;
	cks_node *n = caa_container_of(e, cks_node, se);
	*v = n->v;
	ck_epoch_call(tc, &n->ee, cks_free);
	bc_ck_maybe_poll(tc);
	return true;
}

static void cks_destroy(void *c)
{
	void *tc = bc_ck_enter(c);
	uintptr_t v;
	while (cks_pop(c, tc, &v))
		;
	bc_ck_exit(c, tc);
	free(c);
}

static const bc_ops ck_stk = {"ck_stack+ck_epoch", cks_create, cks_destroy, bc_ck_enter,
			      bc_ck_exit, cks_push, cks_pop, NULL};

/* ---- boost::lockfree::stack<void *> (C++, peers/boost_lockfree.cpp) ---------- */

#ifdef BENCH_HAVE_BOOST_LOCKFREE
static void *bs_create_(void) { return bs_create(); }
static void bs_destroy_(void *c) { bs_destroy(c); }

static bool bs_push_(void *c, void *tc, uintptr_t v)
{
	(void)tc;
	return bs_push(c, v);
}

static bool bs_pop_(void *c, void *tc, uintptr_t *v)
{
	(void)tc;
	return bs_pop(c, v);
}

static const bc_ops boost_s = {"boost::lockfree::stack", bs_create_, bs_destroy_, bc_no_enter,
			       bc_no_exit, bs_push_, bs_pop_, NULL};
#else
BC_MISSING(boost_s, "boost::lockfree::stack", BENCH_BOOST_LOCKFREE_MISSING);
#endif

/* ---- Treiber stack on crossbeam-epoch (Rust, peers/crossbeam_queue) ----------- */

#ifdef BENCH_HAVE_CROSSBEAM_QUEUE
void *cb_stack_new(void);
void cb_stack_free(void *s);
void cb_stack_push(void *s, uintptr_t v);
bool cb_stack_pop(void *s, uintptr_t *v);

static void *cbs_create(void) { return cb_stack_new(); }

static void cbs_destroy(void *c)
{
	uintptr_t v;
	while (cb_stack_pop(c, &v))
		;
	cb_stack_free(c);
}

static bool cbs_push(void *c, void *tc, uintptr_t v)
{
	(void)tc;
	cb_stack_push(c, v);
	return true;
}

static bool cbs_pop(void *c, void *tc, uintptr_t *v)
{
	(void)tc;
	return cb_stack_pop(c, v);
}

static const bc_ops cb_treiber = {"crossbeam-epoch Treiber", cbs_create, cbs_destroy, bc_no_enter,
				  bc_no_exit, cbs_push, cbs_pop, NULL};
#else
BC_MISSING(cb_treiber, "crossbeam-epoch Treiber", BENCH_CROSSBEAM_QUEUE_MISSING);
#endif

BC_LOCKED_OPS(mutex_plain, "mutex+vector", bc_lifo_plain_create);
BC_LOCKED_OPS(mutex_adaptive, "mutex(adaptive)+vector", bc_lifo_adaptive_create);

/* ---- batches: 64 items at a time against 64 single calls (one thread) ------- */

#define BATCH 64
#define BATCH_ROUNDS 20000ul

static bench_result batch_run(void *arg, unsigned threads)
{
	(void)threads;
	bool batched = arg != NULL, ok = true;
	conc_stack *s;
	if (conc_stack_create(&s))
		abort();
	void *items[BATCH];
	unsigned long sum = 0;
	double t0 = bench_now();
	for (unsigned long r = 0; r < BATCH_ROUNDS; r++) {
		for (unsigned k = 0; k < BATCH; k++)
			items[k] = (void *)(uintptr_t)(r * BATCH + k + 1);
		if (batched) {
			ok &= conc_stack_push_n(s, items, BATCH) == 0;
			ok &= conc_stack_try_pop_n(s, items, BATCH) == BATCH;
		} else {
			for (unsigned k = 0; k < BATCH; k++)
				ok &= conc_stack_push(s, items[k]) == 0;
			for (unsigned k = 0; k < BATCH; k++)
				ok &= conc_stack_try_pop(s, &items[k]);
		}
		for (unsigned k = 0; k < BATCH; k++)
			sum += (uintptr_t)items[k];
	}
	double t1 = bench_now();
	conc_stack_destroy(s, NULL);
	unsigned long n = BATCH_ROUNDS * BATCH;
	return (bench_result){t1 - t0, ok && sum == n * (n + 1) / 2};
}

static void batch_rows(bench_cfg *cfg)
{
	const bench_impl impls[] = {{"libconc push_n + try_pop_n", batch_run, (void *)1},
				    {"libconc 64 single calls", batch_run, NULL}};
	bench_row(cfg, "W2 stack batches of 64, 1 thread", 1, 2.0 * BATCH * BATCH_ROUNDS, BENCH_MOPS,
		  impls, 2);
}

int main(int argc, char **argv)
{
	bench_cfg cfg;
	bc_setup(&cfg, argc, argv);
	const bc_ops *const impls[] = {&libconc, &mutex_plain,    &mutex_adaptive, &urcu_lfs,
				       &ck_stk,  &libconc_noelim, &boost_s,        &cb_treiber};
	bc_rows(&cfg, "W2 stack", "W2b stack", impls, (int)(sizeof impls / sizeof impls[0]));
	batch_rows(&cfg);
	int rc = bench_finish(&cfg);
#ifdef CONC_FAULT_HOOKS
	printf("libconc stack: %lu push/pop pairs matched by elimination over all runs\n",
	       (unsigned long)atomic_load(&lc_matched));
#else
	printf("libconc stack: pairs matched by elimination not counted (a release build "
	       "keeps no counter; -Dfault_hooks=true counts them)\n");
#endif
	return rc;
}
