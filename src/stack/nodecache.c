/*
 * nodecache.c - the stack's node allocator (slabs, magazines, depot) and
 * the batched retire of popped nodes.  The interface, the invariants
 * (N1-N4), progress, the memory orders and fork are in nodecache.h; the
 * argument for each part is here, beside it.
 *
 * Magazines.  Nodes are the same for every stack; each thread keeps a
 * magazine of free nodes (thread-local, no atomics).  A node popped by any
 * thread is retired in a batch (see "Retiring" below); after the grace
 * period the epoch callback puts the batch's nodes in the magazine of
 * whichever thread runs the callback.  A magazine holds up to MAG_BATCH
 * loose nodes and one spare batch of MAG_BATCH; when the loose nodes make a
 * second batch, the spare goes to the process-wide depot, and a thread
 * whose magazine is empty takes a batch from there - whole batches, never
 * a walk down a list (N4).  So producers and consumers on different
 * threads stop allocating once the batches circulate.  The depot is taken
 * with a try-lock only: a thread that finds it busy allocates (or frees)
 * instead of waiting, which keeps push lock-free.  When a thread exits its
 * spare batch and its loose nodes (a short batch) go to the depot; when
 * the last stack is destroyed the caller's retire batch is flushed, the
 * orphans taken along, and the depot, the caller's magazine and record
 * cache freed; nodes reclaimed later are freed rather than cached.
 *
 * Slabs.  Nodes are not malloc'd one by one: a thread carves them from a
 * slab of SLAB_SIZE bytes (SLAB_NODES nodes of NODE_SIZE bytes, after a
 * header line) that it allocated itself, with a bump pointer and no atomics.
 * A slab counts the nodes not yet released (refs, N3); a node that leaves
 * the caches for good (depot full, no stack left, thread exiting) is
 * released, and the release that takes refs to zero frees the slab.
 * Releases of consecutive nodes of one slab are summed into one atomic
 * subtraction.  So filling a stack costs no malloc per push and draining it
 * no free per pop.  Nodes are two words (16 bytes, not a padded cache
 * line): a stack that grows is paid for in fresh pages, and on the VMs we
 * measure on a page fault costs more than the cache line a node shares
 * with three neighbours (carved by the same thread, so mostly pushed from
 * its core).  Slabs are large (SLAB_SIZE) because a memalign'd block drags
 * its header and the alignment gap into extra pages; only the pages carved
 * so far are touched.  A thread that exits parks the rest of its slab in
 * spare_slabs, and the next thread to need one carves on from there, so
 * short-lived threads share slabs instead of carving one each.
 *
 * Memory bound.  The slabs held are those with a live item's node, a
 * cached node (magazines, the depot: at most DEPOT_MAX batches) or a
 * node waiting out its grace period, plus at most one being carved per
 * live thread and SPARE_SLABS parked ones.  Nodes are carved in order and
 * handed on whole batches at a time, so live and cached nodes fill their
 * slabs densely in the common patterns: 20,000 threads that each push one
 * item and exit hold about one slab per 16,000 items (+0.3 MiB resident),
 * not one slab each (10 GiB of address space before).  The worst case
 * remains: a node still cached keeps its whole slab, so a scattered cache
 * can hold up to SLAB_NODES times the nodes it caches (bounded by the
 * depot and magazine sizes).
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "base/arch.h"
#include "base/atfork.h"
#include "base/backoff.h"
#include "base/chain.h"
#include "base/chaos.h"
#include "base/check.h"
#include "base/fault.h"
#include "epoch/epoch_internal.h"
#include "stack/nodecache.h"

#define MAG_BATCH CONC__NC_MAG_BATCH
#define RETIRE_BATCH CONC__NC_RETIRE_BATCH
#define NODE_SIZE CONC__NC_NODE_SIZE
#define DEPOT_MAX 256 /* batches */
#define SLAB_SIZE (256u << 10) /* aligned to its size: a node finds its slab by masking */
#define SLAB_HDR 64 /* the header's own line: its refcount shares no node's line */
#define SLAB_NODES ((SLAB_SIZE - SLAB_HDR) / NODE_SIZE)
#define SPARE_SLABS 16 /* partly carved slabs of exited threads, for the next */
#define REC_CACHE 64

_Static_assert(NODE_SIZE % 8 == 0 && SLAB_HDR % 8 == 0,
	       "nodes are 8-byte aligned (the stack's ELIM_MARKS and CLOSED_TAG)");

/* A slab's header; its nodes follow at NODE_SIZE strides.  Slabs are
 * SLAB_SIZE-aligned, so a node finds its slab by masking its address. */
struct slab {
	atomic_uint refs; /* nodes carved or to be carved, not yet released */
	/* the carve state of a slab parked in spare_slabs (owned by whoever
	 * holds the slab: published by the parking CAS, taken with it) */
	unsigned spare_left;
	char *spare_cur;
};
_Static_assert(sizeof(struct slab) <= SLAB_HDR, "the slab header fits its line");

/* ---- per-thread state and the depot ---------------------------------------- */

/* The magazine: up to MAG_BATCH loose nodes (head, n of them), plus at most
 * one full batch of exactly MAG_BATCH (full), so that batches move to and
 * from the depot whole, without walking a list. */
_Thread_local struct conc__nc_mag conc__nc_mag CONC__TLS_IE;
_Thread_local struct conc__nc_carve conc__nc_carve CONC__TLS_IE;
_Thread_local struct conc__nc_rbatch conc__nc_rbatch CONC__TLS_IE;

static struct {
	atomic_flag busy;
	struct snode *batches; /* guarded by busy */
	unsigned n;            /* guarded by busy */
} depot = {ATOMIC_FLAG_INIT, NULL, 0};
atomic_uint conc__nc_depot_hint; /* depot.n, readable without the lock */

static atomic_uint live_stacks; /* attached stacks */
static pthread_once_t exit_once = PTHREAD_ONCE_INIT;
static pthread_key_t exit_key;
static bool exit_key_ok;

static bool depot_try_lock(void)
{
	/* acquire: pairs with depot_unlock's release (the batch list) */
	if (atomic_flag_test_and_set_explicit(&depot.busy, memory_order_acquire))
		return false;
	conc__test_point("stack.depot_locked"); /* test builds: stop a holder here */
	return true;
}

static void depot_lock(void)
{
	conc__backoff b = CONC__BACKOFF_INIT;
	while (!depot_try_lock())
		conc__backoff_spin(&b);
}

static void depot_unlock(void)
{
	/* release: publishes the batch list to the next holder */
	atomic_flag_clear_explicit(&depot.busy, memory_order_release);
}

/*
 * fork().  A thread holding the depot lock at the fork does not
 * exist in the child, and the child's last conc_stack_destroy takes the
 * lock to drain the depot: it would spin forever.  prepare takes the lock
 * (the depot is a leaf: base/atfork.h has the order), so the child's
 * copy of the list is whole and the flag held by the forking thread alone,
 * which lets it go in both processes.  The magazines and retire batches
 * are thread-local: the child keeps the forking thread's and never sees the
 * others'; the depot's batches are the child's copy (slabs included).
 */
static void depot_fork_prepare(void)
{
	/* test builds: a holder stopped inside the lock (a pause point in
	 * depot_try_lock) is let go from here */
	conc__test_point("stack.fork_prepare");
	depot_lock();
}

static pthread_once_t fork_once = PTHREAD_ONCE_INIT;

static void fork_register(void)
{
	conc__atfork_register(CONC__ATFORK_STACK, depot_fork_prepare, depot_unlock, depot_unlock);
}

/* Before the depot can be used: it is used only while a stack lives. */
void conc__nc_init(void)
{
	pthread_once(&fork_once, fork_register);
}

void conc__nc_attach(void)
{
	/* relaxed: only gates whether reclaimed nodes are cached */
	atomic_fetch_add_explicit(&live_stacks, 1, memory_order_relaxed);
}

void conc__nc_detach(void)
{
	/* relaxed: as in attach; the last one trims (nothing is left to use
	 * the caches, so what they hold would only be held) */
	if (atomic_fetch_sub_explicit(&live_stacks, 1, memory_order_relaxed) == 1)
		conc__nc_trim();
}

/* ---- slabs --------------------------------------------------------------- */

static struct slab *slab_of(void *p)
{
	return (struct slab *)((uintptr_t)p & ~(uintptr_t)(SLAB_SIZE - 1));
}

/* Release k nodes of slab sl; the last release frees it (N3). */
static void slab_put(struct slab *sl, unsigned k)
{
	/* acq_rel: the release half orders our last writes to the slab's
	 * nodes before the free another releaser may do; the acquire half,
	 * for the releaser that frees, sees everyone's writes as done */
	unsigned had = atomic_fetch_sub_explicit(&sl->refs, k, memory_order_acq_rel);
	CONC__CHECK(had >= k, "nodecache N3: a node is released once (refs never goes below 0)");
	if (had == k)
		free(sl);
}

/* A fresh slab (sl, just allocated, or NULL) counting `refs` nodes. */
static struct slab *slab_init(struct slab *sl, unsigned refs)
{
	if (sl)
		atomic_init(&sl->refs, refs);
	return sl;
}

/*
 * Spare slabs.  A thread that exits with part of its slab not yet carved
 * parks that slab here (its carve state in the header) instead of giving
 * the rest back, and a thread whose slab is used up takes a parked one
 * before it allocates.  Without this, every short-lived thread that pushed
 * carved a slab of its own, and its one live node kept the whole slab (512
 * KiB of address space with the alignment) for as long as the item stayed:
 * 20,000 such threads held 10 GiB.  Each entry is
 * parked by a CAS from NULL and taken by an exchange to NULL (take-all, so
 * no ABA); a full array or no live stack: the rest is given back as before.
 */
static _Atomic(struct slab *) spare_slabs[SPARE_SLABS];

/* Give back the nodes this thread has not carved yet. */
static void carve_release(void)
{
	if (conc__nc_carve.left) {
		slab_put(slab_of(conc__nc_carve.cur), conc__nc_carve.left);
		conc__nc_carve.left = 0;
		conc__nc_carve.cur = NULL;
	}
}

/* Thread exit: park the slab being carved for the next thread. */
static void carve_park(void)
{
	/* relaxed: only gates caching (see node_put); a park that races with
	 * the last destroy's drain stays parked until a later stack uses or
	 * drains it - held, bounded by SPARE_SLABS, never lost */
	if (conc__nc_carve.left && atomic_load_explicit(&live_stacks, memory_order_relaxed)) {
		struct slab *sl = slab_of(conc__nc_carve.cur);
		sl->spare_left = conc__nc_carve.left;
		sl->spare_cur = conc__nc_carve.cur;
		for (unsigned k = 0; k < SPARE_SLABS; k++) {
			struct slab *none = NULL;
			/* release: publishes the header's carve state (and our
			 * carving) to the acquire exchange that takes sl */
			if (atomic_compare_exchange_strong_explicit(&spare_slabs[k], &none, sl,
								    memory_order_release,
								    memory_order_relaxed)) {
				conc__nc_carve.left = 0;
				conc__nc_carve.cur = NULL;
				return;
			}
		}
	}
	carve_release();
}

/* A parked slab to carve from, or NULL. */
static struct slab *spare_take(void)
{
	for (unsigned k = 0; k < SPARE_SLABS; k++) {
		/* relaxed: a filter; the exchange decides */
		if (!atomic_load_explicit(&spare_slabs[k], memory_order_relaxed))
			continue;
		/* acquire: pairs with carve_park's release CAS */
		struct slab *sl = atomic_exchange_explicit(&spare_slabs[k], NULL,
							   memory_order_acquire);
		if (sl)
			return sl;
	}
	return NULL;
}

/* The last destroy: give every parked slab's rest back. */
static void spare_drain(void)
{
	for (unsigned k = 0; k < SPARE_SLABS; k++) {
		/* acquire: pairs with carve_park's release CAS */
		struct slab *sl = atomic_exchange_explicit(&spare_slabs[k], NULL,
							   memory_order_acquire);
		if (sl)
			slab_put(sl, sl->spare_left);
	}
}

static struct snode *node_carve(void)
{
	if (conc__unlikely(conc__nc_carve.left == 0)) {
		struct slab *sl = spare_take();
		if (sl) {
			conc__nc_carve.cur = sl->spare_cur;
			conc__nc_carve.left = sl->spare_left;
		} else {
			sl = slab_init(conc__aligned_alloc("stack.node", SLAB_SIZE, SLAB_SIZE),
				       SLAB_NODES);
			if (!sl)
				return NULL;
			conc__nc_carve.cur = (char *)sl + SLAB_HDR;
			conc__nc_carve.left = SLAB_NODES;
		}
	}
	struct snode *n = (struct snode *)(void *)conc__nc_carve.cur;
	conc__nc_carve.cur += NODE_SIZE;
	conc__nc_carve.left--;
	return n;
}

/* Release a chain linked through next: one subtraction per run of nodes
 * from the same slab (a drained stack gives long runs). */
static void free_chain(struct snode *n)
{
	while (n) {
		struct slab *sl = slab_of(n);
		unsigned k = 0;
		do {
			k++;
			n = n->next;
		} while (n && slab_of(n) == sl);
		slab_put(sl, k);
	}
}

static void node_free(struct snode *n)
{
	slab_put(slab_of(n), 1);
}

/* ---- the depot and the magazines ----------------------------------------- */

static void depot_drain(void)
{
	depot_lock();
	struct snode *b = depot.batches;
	depot.batches = NULL;
	depot.n = 0;
	atomic_store_explicit(&conc__nc_depot_hint, 0, memory_order_relaxed);
	depot_unlock();
	while (b) {
		struct snode *nb = b->batch_next;
		free_chain(b);
		b = nb;
	}
}

/* Hand a batch (up to MAG_BATCH nodes linked through next) to the depot,
 * or free it.  The depot links batches through their first node's item
 * word (free nodes: no item there). */
static void depot_give(struct snode *first)
{
	if (!first)
		return;
	if (atomic_load_explicit(&live_stacks, memory_order_relaxed) && depot_try_lock()) {
		if (depot.n < DEPOT_MAX) {
			CONC__CHECK(depot.batches || depot.n == 0,
				    "nodecache: the depot's count matches its list");
			first->batch_next = depot.batches;
			depot.batches = first;
			depot.n++;
			/* relaxed: a hint that saves empty-handed lock trips */
			atomic_store_explicit(&conc__nc_depot_hint, depot.n, memory_order_relaxed);
			first = NULL;
		}
		depot_unlock();
	}
	free_chain(first);
}

static bool retire_flush(void);
static void orphan_batch(void);
static void rec_cache_free(void);

static void mag_exit(void *arg)
{
	(void)arg;
	if (!retire_flush())
		orphan_batch();
	conc__nc_mag.exiting = true; /* later callbacks on this thread free directly */
	rec_cache_free();
	depot_give(conc__nc_mag.full);
	/* The loose nodes too, as a short batch: freed, they would only
	 * lower their slabs' counts, while their slabs stay pinned by the
	 * nodes still in use, and the next thread would carve afresh (a
	 * thread that takes a batch, pushes once and exits).  The slow get
	 * counts a batch it takes. */
	depot_give(conc__nc_mag.head);
	conc__nc_mag.head = conc__nc_mag.full = NULL;
	conc__nc_mag.n = 0;
	carve_park();
}

static void make_exit_key(void)
{
	exit_key_ok = pthread_key_create(&exit_key, mag_exit) == 0;
}

void conc__nc_hook(void)
{
	conc__nc_mag.hooked = true;
	pthread_once(&exit_once, make_exit_key);
	/* Without a key (the process ran out of pthread keys) what this
	 * thread holds is not handed back at exit: its magazine (up to 2 x
	 * MAG_BATCH nodes), its retire batch (fewer than RETIRE_BATCH) and its
	 * record cache - a leak bounded per thread, in that case only. */
	if (exit_key_ok)
		pthread_setspecific(exit_key, &conc__nc_mag);
}

/* conc__nc_get found the loose nodes and the spare batch empty, and the
 * bump pointer not usable alone (exiting, no exit hook yet, slab used up, or
 * the depot hinting at a batch): the rest of the sources, in order. */
struct snode *conc__nc_get_slow(void)
{
	if (conc__unlikely(conc__nc_mag.exiting)) {
		/* The exit hook has given our slab back: a slab of one node
		 * (rare: a push from another library's thread-exit hook). */
		struct slab *sl = slab_init(conc__aligned_alloc("stack.node_exiting", SLAB_SIZE,
								 SLAB_SIZE), 1);
		return sl ? (struct snode *)(void *)((char *)sl + SLAB_HDR) : NULL;
	}
	if (!conc__nc_mag.hooked)
		conc__nc_hook();
	/* relaxed: only decides whether the lock is worth a try */
	if (atomic_load_explicit(&conc__nc_depot_hint, memory_order_relaxed) && depot_try_lock()) {
		struct snode *b = depot.batches;
		if (b) {
			depot.batches = b->batch_next;
			depot.n--;
			atomic_store_explicit(&conc__nc_depot_hint, depot.n, memory_order_relaxed);
		}
		depot_unlock();
		if (b) {
			/* a batch is MAG_BATCH nodes, or fewer when an exiting
			 * thread gave its loose ones (mag_exit): count them, on
			 * the nodes we are about to use anyway */
			unsigned k = 0;
			for (struct snode *m = b->next; m; m = m->next)
				k++;
			conc__nc_mag.head = b->next;
			conc__nc_mag.n = k;
			return b;
		}
	}
	return node_carve();
}

/* Cache a node nobody can reach any more. */
static inline void node_put(struct snode *n)
{
	if (conc__unlikely(conc__nc_mag.exiting ||
			   !atomic_load_explicit(&live_stacks, memory_order_relaxed))) {
		node_free(n);
		return;
	}
	if (conc__unlikely(!conc__nc_mag.hooked))
		conc__nc_hook();
	n->next = conc__nc_mag.head;
	conc__nc_mag.head = n;
	if (conc__unlikely(++conc__nc_mag.n == MAG_BATCH)) {
		/* a whole batch: keep it as the spare, handing the older
		 * spare to the depot */
		depot_give(conc__nc_mag.full);
		conc__nc_mag.full = conc__nc_mag.head;
		conc__nc_mag.head = NULL;
		conc__nc_mag.n = 0;
	}
}

void conc__nc_put(struct snode *n)
{
	node_put(n);
}

/*
 * Retiring.  A node has no room for an epoch node, so popped nodes are
 * retired under a retire record: an epoch node and the head of a list of
 * nodes linked through rlink (the item's word, which only the remover read,
 * and it has; never through next, which pinned readers may still read).
 * Records come from a small per-thread cache (malloc only when it is
 * empty) and go back to the cache of the thread that runs the callback.
 *
 * For stacks on the global domain a thread gathers its popped nodes and
 * retires RETIRE_BATCH of them under one record, so a retire (the priciest
 * step of a pop: a bag push and now and then an advance attempt) is paid
 * once per batch.  Holding a node a little before retiring it only starts
 * its grace period later.  A thread hands its batch over when it exits,
 * and the last stack's destroy flushes the caller's.
 *
 * Stacks on private domains gather in the stack instead (its
 * conc__nc_pending, a push-only CAS list taken whole by exchange, so no
 * ABA): a private domain may be destroyed, and a batch held by some other
 * thread must never outlive it.  Every RETIRE_BATCH-th retire into a
 * stack's list (counted per stack) takes the list and retires it; what is
 * still pending at destroy goes back to the caches directly (no pop of the
 * stack is left to read it).  A thread that pops while it exits uses the
 * same path.
 *
 * Without a record (malloc failed) nothing is lost: a batch stays where it
 * is until the next retire finds one; at thread exit (or in the last
 * destroy) a thread's own batch goes to the process-wide orphan list, which
 * the next global-domain batch takes along (so it still waits out a grace
 * period), as does the last stack's destroy when it finds a record.  If
 * that too finds none, the orphans (and their slabs) wait for a later
 * stack's first batch: held, not lost.
 *
 * The epoch sees one retire per record; conc__epoch_retire_batch weighs it
 * by the nodes it stands for, so the advance policy (and with it the
 * memory bound of epoch_internal.h) counts nodes, as if each were retired
 * alone.
 */
struct conc__nc_rrec {
	conc_epoch_node enode;
	union {
		struct snode *head;             /* the nodes it retires, through rlink */
		struct conc__nc_rrec *free_next; /* in a thread's record cache */
	};
};
typedef struct conc__nc_rrec rrec;

static _Atomic(struct snode *) orphans; /* batches whose thread exited without a record */

static rrec *rec_get(void)
{
	rrec *r = conc__nc_rbatch.recs;
	if (conc__likely(r != NULL)) {
		conc__nc_rbatch.recs = r->free_next;
		conc__nc_rbatch.nrecs--;
		return r;
	}
	return conc__malloc("stack.retire", sizeof *r);
}

static void rec_put(rrec *r)
{
	/* relaxed: live_stacks only gates caching, as in node_put */
	if (conc__unlikely(conc__nc_mag.exiting || conc__nc_rbatch.nrecs >= REC_CACHE ||
			   !atomic_load_explicit(&live_stacks, memory_order_relaxed))) {
		free(r);
		return;
	}
	if (conc__unlikely(!conc__nc_mag.hooked))
		conc__nc_hook(); /* the exit hook frees the record cache */
	r->free_next = conc__nc_rbatch.recs;
	conc__nc_rbatch.recs = r;
	conc__nc_rbatch.nrecs++;
}

static void rec_cache_free(void)
{
	while (conc__nc_rbatch.recs) {
		rrec *r = conc__nc_rbatch.recs;
		conc__nc_rbatch.recs = r->free_next;
		free(r);
	}
	conc__nc_rbatch.nrecs = 0;
}

static void batch_reclaim(conc_epoch_node *e)
{
	rrec *r = (rrec *)(void *)((char *)e - offsetof(rrec, enode));
	struct snode *n = r->head;
	rec_put(r);
	bool poison = conc__chaos(); /* chaos mode: a late reader sees garbage */
	/* relaxed: live_stacks only gates caching (as in node_put).  Read once
	 * for the whole batch: the nodes are put as if all at the instant of
	 * this load, which a detach racing with node_put allows for each of
	 * them anyway (see carve_park). */
	if (conc__likely(!poison && !conc__nc_mag.exiting && conc__nc_mag.hooked &&
			 atomic_load_explicit(&live_stacks, memory_order_relaxed))) {
		/* node_put's caching branch, its checks hoisted out of the loop
		 * (a batch is RETIRE_BATCH nodes: they were most of its cost),
		 * the magazine in locals (depot_give does not touch it) */
		struct snode *head = conc__nc_mag.head;
		unsigned cnt = conc__nc_mag.n;
		while (n) {
			struct snode *next = n->rlink;
			n->next = head;
			head = n;
			if (conc__unlikely(++cnt == MAG_BATCH)) {
				depot_give(conc__nc_mag.full);
				conc__nc_mag.full = head;
				head = NULL;
				cnt = 0;
			}
			n = next;
		}
		conc__nc_mag.head = head;
		conc__nc_mag.n = cnt;
		return;
	}
	while (n) {
		struct snode *next = n->rlink;
		if (conc__unlikely(poison))
			conc__chaos_poison_now(n, sizeof *n);
		node_put(n);
		n = next;
	}
}

/* Retire this thread's batch under a record.  False: no record (the batch
 * stays). */
static bool retire_flush(void)
{
	struct snode *h = conc__nc_rbatch.head;
	if (!h)
		return true;
	rrec *r = rec_get();
	if (conc__unlikely(!r))
		return false;
	unsigned n = conc__nc_rbatch.n;
	/* relaxed: a hint; the exchange below decides (its acquire pairs with
	 * the release CAS of orphan_batch, through the RMW chain) */
	if (conc__unlikely(atomic_load_explicit(&orphans, memory_order_relaxed) != NULL)) {
		/* acquire: pairs with orphan_batch's release CAS */
		conc__nc_rbatch.tail->rlink = atomic_exchange_explicit(&orphans, NULL, memory_order_acquire);
		n += RETIRE_BATCH; /* a weight for the advance policy, no count */
	}
	r->head = h;
	conc__nc_rbatch.head = conc__nc_rbatch.tail = NULL;
	conc__nc_rbatch.n = 0;
	conc__epoch_retire_batch(conc_epoch_global(), &r->enode, batch_reclaim, n);
	return true;
}

void conc__nc_flush(void)
{
	(void)retire_flush(); /* without a record the batch stays, for the next */
}

/* Push the chain first..last (linked through rlink) onto a push-only list
 * taken whole by an acquire exchange (orphans, a pending list): base/chain.h
 * has the argument (no ABA, release publishes the links). */
static void chain_push(_Atomic(struct snode *) *list, struct snode *first, struct snode *last)
{
	CONC__CHAIN_PUSH(list, first, last, rlink);
}

/* Thread exit without a record: the batch joins the orphan list. */
static void orphan_batch(void)
{
	if (!conc__nc_rbatch.head)
		return;
	chain_push(&orphans, conc__nc_rbatch.head, conc__nc_rbatch.tail);
	conc__nc_rbatch.head = conc__nc_rbatch.tail = NULL;
	conc__nc_rbatch.n = 0;
}

/* Retire p's list under one record, to domain d (private domains). */
static void pending_flush(conc_epoch *d, conc__nc_pending *p)
{
	rrec *r = rec_get();
	if (conc__unlikely(!r))
		return; /* the nodes stay pending */
	/* acquire: pairs with conc__nc_retire_pending's release CAS (the rlinks) */
	r->head = atomic_exchange_explicit(&p->head, NULL, memory_order_acquire);
	if (!r->head) {
		rec_put(r);
		return;
	}
	/* the epoch's advance policy counts nodes, not records: count them
	 * (a walk over nodes just popped, once per batch) */
	unsigned k = 0;
	for (struct snode *n = r->head; n; n = n->rlink)
		k++;
	conc__epoch_retire_batch(d, &r->enode, batch_reclaim, k);
}

/* A run of k >= 1 nodes, first..last linked through next, removed from a
 * stack on domain d at once by the caller (try_pop_n): their items into
 * items[0..k-1], then as conc__nc_retire on each; for the global domain
 * the run joins this thread's batch whole: each rlink copies its next
 * link (next itself stays: pinned readers may still follow it; the item
 * is read before its word becomes rlink), one splice, one count. */
void conc__nc_take_run(conc_epoch *d, conc__nc_pending *p, struct snode *first,
		       struct snode *last, unsigned k, void **items)
{
	if (d != conc_epoch_global() || conc__unlikely(conc__nc_mag.exiting)) {
		for (struct snode *x = first;;) {
			struct snode *next = x->next; /* before the retire reuses x */
			*items++ = x->item;
			conc__nc_retire_pending(d, p, x);
			if (x == last)
				return;
			x = next;
		}
	}
	if (conc__unlikely(!conc__nc_mag.hooked))
		conc__nc_hook(); /* so that the batch is handed over at exit */
	struct snode *x = first;
	for (; x != last; x = x->next) {
		*items++ = x->item;
		x->rlink = x->next;
	}
	*items = last->item;
	last->rlink = conc__nc_rbatch.head;
	if (!conc__nc_rbatch.head)
		conc__nc_rbatch.tail = last;
	conc__nc_rbatch.head = first;
	conc__nc_rbatch.n += k;
	if (conc__nc_rbatch.n >= RETIRE_BATCH)
		conc__nc_flush(); /* without a record, tried again next time */
}

void conc__nc_retire_pending(conc_epoch *d, conc__nc_pending *p, struct snode *n)
{
	chain_push(&p->head, n, n);
	/* relaxed: a count; the exchange in pending_flush decides.  Per
	 * stack, not per thread: with a per-thread count, a thread
	 * alternating between two stacks, or threads that pop fewer than
	 * RETIRE_BATCH each, would never flush a stack. */
	if ((atomic_fetch_add_explicit(&p->n, 1, memory_order_relaxed) + 1) % RETIRE_BATCH == 0)
		pending_flush(d, p);
}

void conc__nc_pending_init(conc__nc_pending *p)
{
	atomic_init(&p->head, NULL);
	atomic_init(&p->n, 0);
}

/* The stack is being destroyed: no pop of it is running, so no reader is
 * left for the nodes still pending: back to the caches without a grace
 * period (N2's exception). */
void conc__nc_pending_drain(conc__nc_pending *p)
{
	/* acquire: pairs with conc__nc_retire_pending's release CAS */
	struct snode *n = atomic_load_explicit(&p->head, memory_order_acquire);
	while (n) {
		struct snode *next = n->rlink;
		conc__chaos_poison(n, sizeof *n); /* chaos mode, as a reclaim would */
		node_put(n);
		n = next;
	}
}

unsigned conc__nc_pending_count(conc__nc_pending *p)
{
	unsigned k = 0;
	/* acquire: pairs with conc__nc_retire_pending's release CAS (the
	 * links we walk); the caller runs no pop meanwhile */
	for (struct snode *n = atomic_load_explicit(&p->head, memory_order_acquire); n;
	     n = n->rlink)
		k++;
	return k;
}

void conc__nc_trim(void)
{
	if (!retire_flush()) /* reclaimed later, and freed then (no stack left) */
		orphan_batch();
	/* relaxed: a hint; the exchange below decides */
	if (atomic_load_explicit(&orphans, memory_order_relaxed)) {
		/* orphans ride on a record of their own (without one they wait
		 * for the next batch retired by any thread) */
		rrec *r = rec_get();
		if (r) {
			/* acquire: pairs with orphan_batch's release CAS */
			r->head = atomic_exchange_explicit(&orphans, NULL, memory_order_acquire);
			if (r->head)
				conc__epoch_retire_batch(conc_epoch_global(), &r->enode,
							 batch_reclaim, RETIRE_BATCH);
			else
				rec_put(r); /* another thread took them first */
		}
	}
	rec_cache_free();
	free_chain(conc__nc_mag.head);
	free_chain(conc__nc_mag.full);
	conc__nc_mag.head = conc__nc_mag.full = NULL;
	conc__nc_mag.n = 0;
	carve_release();
	spare_drain();
	depot_drain();
}
