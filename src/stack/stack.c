/*
 * stack.c - Treiber stack (IBM 1986) with an elimination layer
 * (Hendler, Shavit & Yerushalmi, SPAA 2004), nodes reclaimed by epoch and
 * recycled through per-thread node caches.
 *
 * Data.
 *   s->top        the top node's address, with CLOSED_TAG (bit 0) once the
 *                 stack is closed (nodes are at least 8-byte aligned).
 *   node->next    written by the pusher before the CAS that publishes the
 *                 node, never again while the node is reachable.
 *   s->elim[k]    elimination slots, one word each: 0 (free); n, a
 *                 pusher's node offered for direct hand-over; n|ELIM_TAKEN,
 *                 a pop took it and the pusher has yet to free the slot;
 *                 ELIM_CLOSED or ELIM_CLOSED_TAKEN, sealed by close (the
 *                 latter over a taken offer).  The offer's whole state is in
 *                 the slot word, so a node carries no elimination field and
 *                 a pop never writes to a node it did not take.
 *
 * Invariants.
 *   I1 a node is reachable from top, or from one elimination slot, or from
 *      neither; never both (the pusher withdraws its offer before it tries
 *      top again, and a taken offer is never pushed).  n|ELIM_TAKEN is a
 *      mark, not a reference: n may be retired, reused, even on top again
 *      while its old pusher has yet to clear the slot; the word is never
 *      dereferenced, and only that pusher clears it.
 *   I2 a popped (or taken) node is retired and reused only after a grace
 *      period, so a thread pinned while it read top (or a slot) sees the
 *      same node and next throughout: the top CAS is ABA-free.  item is
 *      read only by the node's remover, which then reuses the word (rlink).
 *      One exception to the grace period: destroy hands the nodes still in
 *      s->pending back to the caches at once (no pop of s is left).
 *
 * Linearization points (grep LP: here and in stack/alg_stack.h, which
 * holds the push and pop attempts on top).
 *   push       the CAS on top that installs the node; or, eliminated, the
 *              pop's CAS of the slot n -> n|ELIM_TAKEN (push, then pop, at
 *              that instant).
 *   pop        the CAS on top that removes the node; or that TAKEN CAS.
 *   pop-empty  the load of top that found no node.
 *   close      the fetch_or of CLOSED_TAG into top.  Before it, close seals
 *              the elimination slots: an offer still waiting is replaced by
 *              ELIM_CLOSED in the same word a pop would CAS, so no offer
 *              can be taken after the seal; its pusher goes back to top.
 *
 * Progress.  push and try_pop are lock-free: a failed CAS means another
 * push or pop succeeded; the elimination wait is bounded (ELIM_WAIT).
 * After a failed CAS a thread tries elimination (when it has been paying,
 * see elim_worth_it), then backs off (base/backoff.h).  pop blocks only
 * while empty (base/waitpop.h).  A pop may call malloc for a retire
 * record when its thread's record cache is empty (once per batch at most;
 * a failure delays the retire, it never fails the pop).
 *
 * Node caches.  Nodes are the same for every stack; each thread keeps a
 * magazine of free nodes (thread-local, no atomics).  A node popped by any
 * thread is retired in a batch (see "Retiring" below); after the grace
 * period the epoch callback puts the batch's nodes in the magazine of
 * whichever thread runs the callback.  A magazine holds up
 * to MAG_BATCH loose nodes and one spare batch of MAG_BATCH; when the loose
 * nodes make a second batch, the spare goes to the process-wide depot, and a
 * thread whose magazine is empty takes a batch from there - whole batches,
 * never a walk down a list.  So producers
 * and consumers on different threads stop allocating once the batches
 * circulate.  The depot is taken with a try-lock only: a thread that finds
 * it busy allocates (or frees) instead of waiting, which keeps push
 * lock-free.  When a thread exits its spare batch and its loose nodes (a
 * short batch) go to the depot; when
 * the last stack is destroyed the caller's retire batch is flushed, the
 * orphans taken along, and the depot, the caller's magazine and record
 * cache freed; nodes reclaimed later are freed rather than cached.
 *
 * Slabs.  Nodes are not malloc'd one by one: a thread carves them from a
 * slab of SLAB_SIZE bytes (SLAB_NODES nodes of NODE_SIZE bytes, after a
 * header line) that it allocated itself, with a bump pointer and no atomics.
 * A slab counts the nodes not yet released (refs); a node that leaves the
 * caches for good (depot full, no stack left, thread exiting) is released,
 * and the release that takes refs to zero frees the slab.  Releases of
 * consecutive nodes of one slab are summed into one atomic subtraction.  So
 * filling a stack costs no malloc per push and draining it no free per pop.
 * Nodes are two words (16 bytes, not a padded cache line): a stack that
 * grows is paid for in fresh pages, and on the VMs we measure on a page
 * fault costs more than the cache line a node shares with three neighbours
 * (carved by the same thread, so mostly pushed from its core).  Slabs are
 * large (SLAB_SIZE) because a memalign'd block drags its header and the
 * alignment gap into extra pages; only the pages carved so far are touched.
 * A thread that exits parks the rest of its slab in spare_slabs, and the
 * next thread to need one carves on from there, so short-lived threads
 * share slabs instead of carving one each.
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
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "conc/cpu.h"
#include "conc/stack.h"
#include "base/arch.h"
#include "base/atfork.h"
#include "base/atomics.h"
#include "base/backoff.h"
#include "base/chaos.h"
#include "stack/stack_internal.h"
#include "epoch/epoch_internal.h"
#include "base/fault.h"
#include "base/mutant.h"
#include "base/pad.h"
#include "base/park.h"
#include "base/waitpop.h"

#define CLOSED_TAG ((uintptr_t)1)
#define ELIM_TAKEN ((uintptr_t)1)        /* n|ELIM_TAKEN: n's offer was taken */
#define ELIM_CLOSED ((uintptr_t)2)       /* sealed by close; no node is 2 */
#define ELIM_CLOSED_TAKEN ((uintptr_t)3) /* sealed over a taken offer */
#define ELIM_MARKS ((uintptr_t)3)        /* nodes are 8-byte aligned */
#define ELIM_MAX 8
#define ELIM_WAIT 16 /* pause rounds a push offer waits for a pop (a pause
                       * is ~40-140 cycles: longer waits cost more than a
                       * backed-off retry of the CAS) */
#define MAG_BATCH 64
#define DEPOT_MAX 256 /* batches */
#define NODE_SIZE 16 /* sizeof(struct snode), asserted below */
#define SLAB_SIZE (256u << 10) /* aligned to its size: a node finds its slab by masking */
#define SLAB_HDR 64 /* the header's own line: its refcount shares no node's line */
#define SLAB_NODES ((SLAB_SIZE - SLAB_HDR) / NODE_SIZE)
#define SPARE_SLABS 16 /* partly carved slabs of exited threads, for the next */

/*
 * A node: two words.  Who may touch which when:
 *   next   written by the pusher before publishing; read by pinned pops
 *          until the grace period ends (I2), so never reused before it.
 *          Free nodes (magazine, depot batch) are linked through it.
 *   item   the pusher writes it before publishing the node; read by the
 *          one pop that removes (or takes) the node.  After that read the
 *          node is that pop's alone to retire, and the word becomes rlink:
 *          no other thread reads item of a node it did not remove.  The
 *          first node of a depot batch links the depot's batches there.
 * The epoch node a grace period needs is not in the node but in a retire
 * record (struct rrec), one per batch of popped nodes.
 */
struct snode {
	struct snode *next;
	union {
		void *item;
		struct snode *rlink;      /* retire list link (see retire_node) */
		struct snode *batch_next; /* the depot's list of batches */
	};
};
_Static_assert(sizeof(struct snode) == NODE_SIZE, "NODE_SIZE is the node's size");
_Static_assert(NODE_SIZE % 8 == 0 && SLAB_HDR % 8 == 0, "nodes are 8-byte aligned (ELIM_MARKS)");

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

/* One push or pop attempt on top: stack/alg_stack.h (shared with the
 * Relacy model). */
#include "stack/alg_stack.h"

struct elim_slot {
	CONC_ALIGNED _Atomic(uintptr_t) offer; /* see Data above */
	atomic_uint_fast64_t hits; /* pairs matched here */
};

struct conc_stack {
	CONC_ALIGNED _Atomic(uintptr_t) top;
	/* read-mostly */
	CONC_ALIGNED conc_epoch *d;
	unsigned nelim;
	atomic_bool elim_on;
	conc__park park;
	struct elim_slot elim[ELIM_MAX];
	/* popped nodes waiting for a batch retire (private domains; see
	 * retire_node), linked through rlink */
	CONC_ALIGNED _Atomic(struct snode *) pending;
	atomic_uint npending; /* retires into pending; each RETIRE_BATCH-th flushes */
};

/* ---- node caches --------------------------------------------------------- */

/* A magazine: up to MAG_BATCH loose nodes (head, n of them), plus at most
 * one full batch of exactly MAG_BATCH (full), so that batches move to and
 * from the depot whole, without walking a list. */
static _Thread_local struct magazine {
	struct snode *head;
	unsigned n;
	struct snode *full;
	bool hooked, exiting;
} mag __attribute__((tls_model("initial-exec"))); /* libconc.a is PIC: avoid __tls_get_addr */

static struct {
	atomic_flag busy;
	struct snode *batches; /* guarded by busy */
	unsigned n;            /* guarded by busy */
	atomic_uint hint;      /* n, readable without the lock */
} depot = {ATOMIC_FLAG_INIT, NULL, 0, 0};

static atomic_uint live_stacks;
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
 * fork() (issue 15).  A thread holding the depot lock at the fork does not
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

/* ---- slabs --------------------------------------------------------------- */

static _Thread_local struct carve {
	char *cur;     /* the next node to hand out, inside the slab */
	unsigned left; /* nodes left to carve from it */
} carve __attribute__((tls_model("initial-exec")));

static struct slab *slab_of(void *p)
{
	return (struct slab *)((uintptr_t)p & ~(uintptr_t)(SLAB_SIZE - 1));
}

/* Release k nodes of slab sl; the last release frees it. */
static void slab_put(struct slab *sl, unsigned k)
{
	/* acq_rel: the release half orders our last writes to the slab's
	 * nodes before the free another releaser may do; the acquire half,
	 * for the releaser that frees, sees everyone's writes as done */
	if (atomic_fetch_sub_explicit(&sl->refs, k, memory_order_acq_rel) == k)
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
 * 20,000 such threads held 10 GiB (issue 22, fault 11).  Each entry is
 * parked by a CAS from NULL and taken by an exchange to NULL (take-all, so
 * no ABA); a full array or no live stack: the rest is given back as before.
 */
static _Atomic(struct slab *) spare_slabs[SPARE_SLABS];

/* Give back the nodes this thread has not carved yet. */
static void carve_release(void)
{
	if (carve.left) {
		slab_put(slab_of(carve.cur), carve.left);
		carve.left = 0;
		carve.cur = NULL;
	}
}

/* Thread exit: park the slab being carved for the next thread. */
static void carve_park(void)
{
	/* relaxed: only gates caching (see node_put); a park that races with
	 * the last destroy's drain stays parked until a later stack uses or
	 * drains it - held, bounded by SPARE_SLABS, never lost */
	if (carve.left && atomic_load_explicit(&live_stacks, memory_order_relaxed)) {
		struct slab *sl = slab_of(carve.cur);
		sl->spare_left = carve.left;
		sl->spare_cur = carve.cur;
		for (unsigned k = 0; k < SPARE_SLABS; k++) {
			struct slab *none = NULL;
			/* release: publishes the header's carve state (and our
			 * carving) to the acquire exchange that takes sl */
			if (atomic_compare_exchange_strong_explicit(&spare_slabs[k], &none, sl,
								    memory_order_release,
								    memory_order_relaxed)) {
				carve.left = 0;
				carve.cur = NULL;
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
	if (conc__unlikely(carve.left == 0)) {
		struct slab *sl = spare_take();
		if (sl) {
			carve.cur = sl->spare_cur;
			carve.left = sl->spare_left;
		} else {
			sl = slab_init(conc__aligned_alloc("stack.node", SLAB_SIZE, SLAB_SIZE),
				       SLAB_NODES);
			if (!sl)
				return NULL;
			carve.cur = (char *)sl + SLAB_HDR;
			carve.left = SLAB_NODES;
		}
	}
	struct snode *n = (struct snode *)(void *)carve.cur;
	carve.cur += NODE_SIZE;
	carve.left--;
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

static void depot_drain(void)
{
	depot_lock();
	struct snode *b = depot.batches;
	depot.batches = NULL;
	depot.n = 0;
	atomic_store_explicit(&depot.hint, 0, memory_order_relaxed);
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
			first->batch_next = depot.batches;
			depot.batches = first;
			depot.n++;
			/* relaxed: a hint that saves empty-handed lock trips */
			atomic_store_explicit(&depot.hint, depot.n, memory_order_relaxed);
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
	mag.exiting = true; /* later callbacks on this thread free directly */
	rec_cache_free();
	depot_give(mag.full);
	/* The loose nodes too, as a short batch: freed, they would only
	 * lower their slabs' counts, while their slabs stay pinned by the
	 * nodes still in use, and the next thread would carve afresh (a
	 * thread that takes a batch, pushes once and exits; issue 22,
	 * fault 11).  node_get counts a batch it takes. */
	depot_give(mag.head);
	mag.head = mag.full = NULL;
	mag.n = 0;
	carve_park();
}

static void make_exit_key(void)
{
	exit_key_ok = pthread_key_create(&exit_key, mag_exit) == 0;
}

static void mag_hook(void)
{
	mag.hooked = true;
	pthread_once(&exit_once, make_exit_key);
	/* Without a key (the process ran out of pthread keys) what this
	 * thread holds is not handed back at exit: its magazine (up to 2 x
	 * MAG_BATCH nodes), its retire batch (fewer than RETIRE_BATCH) and its
	 * record cache - a leak bounded per thread, in that case only. */
	if (exit_key_ok)
		pthread_setspecific(exit_key, &mag);
}

static struct snode *node_get(void)
{
	struct snode *n = mag.head;
	if (conc__likely(n != NULL)) {
		mag.head = n->next;
		mag.n--;
		return n;
	}
	if (mag.full) { /* the spare batch becomes the loose nodes */
		n = mag.full;
		mag.full = NULL;
		mag.head = n->next;
		mag.n = MAG_BATCH - 1;
		return n;
	}
	if (conc__unlikely(mag.exiting)) {
		/* The exit hook has given our slab back: a slab of one node
		 * (rare: a push from another library's thread-exit hook). */
		struct slab *sl = slab_init(conc__aligned_alloc("stack.node_exiting", SLAB_SIZE,
								 SLAB_SIZE), 1);
		return sl ? (struct snode *)(void *)((char *)sl + SLAB_HDR) : NULL;
	}
	if (!mag.hooked)
		mag_hook();
	/* relaxed: only decides whether the lock is worth a try */
	if (atomic_load_explicit(&depot.hint, memory_order_relaxed) && depot_try_lock()) {
		struct snode *b = depot.batches;
		if (b) {
			depot.batches = b->batch_next;
			depot.n--;
			atomic_store_explicit(&depot.hint, depot.n, memory_order_relaxed);
		}
		depot_unlock();
		if (b) {
			/* a batch is MAG_BATCH nodes, or fewer when an exiting
			 * thread gave its loose ones (mag_exit): count them, on
			 * the nodes we are about to use anyway */
			unsigned k = 0;
			for (struct snode *m = b->next; m; m = m->next)
				k++;
			mag.head = b->next;
			mag.n = k;
			return b;
		}
	}
	return node_carve();
}

/* Cache a node nobody can reach any more. */
static void node_put(struct snode *n)
{
	if (conc__unlikely(mag.exiting ||
			   !atomic_load_explicit(&live_stacks, memory_order_relaxed))) {
		node_free(n);
		return;
	}
	if (conc__unlikely(!mag.hooked))
		mag_hook();
	n->next = mag.head;
	mag.head = n;
	if (conc__unlikely(++mag.n == MAG_BATCH)) {
		/* a whole batch: keep it as the spare, handing the older
		 * spare to the depot */
		depot_give(mag.full);
		mag.full = mag.head;
		mag.head = NULL;
		mag.n = 0;
	}
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
 * Stacks on private domains gather in the stack instead (s->pending, a
 * push-only CAS list taken whole by exchange, so no ABA): a private domain
 * may be destroyed, and a batch held by some other thread must never
 * outlive it.  Every RETIRE_BATCH-th retire into a stack's list (counted
 * per stack) takes the list and retires it; what is still pending at
 * destroy goes back to the caches directly (no pop of the stack is left
 * to read it).  A thread that pops while it exits uses the same path.
 *
 * Without a record (malloc failed) nothing is lost: a batch stays where it
 * is until the next retire finds one; at thread exit (or in the last
 * destroy) a thread's own batch goes to the process-wide orphan list, which
 * the next global-domain batch takes along (so it still waits out a grace
 * period), as does the last stack's destroy when it finds a record.  If
 * that too finds none, the orphans (and their slabs) wait for a later
 * stack's first batch: held, not lost.
 */
#define RETIRE_BATCH 64
#define REC_CACHE 64

struct rrec {
	conc_epoch_node enode;
	union {
		struct snode *head;    /* the nodes it retires, through rlink */
		struct rrec *free_next; /* in a thread's record cache */
	};
};

static _Thread_local struct rbatch {
	struct snode *head, *tail;
	unsigned n;
	struct rrec *recs; /* the record cache */
	unsigned nrecs;
} rbatch __attribute__((tls_model("initial-exec")));

static _Atomic(struct snode *) orphans; /* batches whose thread exited without a record */

static struct rrec *rec_get(void)
{
	struct rrec *r = rbatch.recs;
	if (conc__likely(r != NULL)) {
		rbatch.recs = r->free_next;
		rbatch.nrecs--;
		return r;
	}
	return conc__malloc("stack.retire", sizeof *r);
}

static void rec_put(struct rrec *r)
{
	/* relaxed: live_stacks only gates caching, as in node_put */
	if (conc__unlikely(mag.exiting || rbatch.nrecs >= REC_CACHE ||
			   !atomic_load_explicit(&live_stacks, memory_order_relaxed))) {
		free(r);
		return;
	}
	if (conc__unlikely(!mag.hooked))
		mag_hook(); /* the exit hook frees the record cache */
	r->free_next = rbatch.recs;
	rbatch.recs = r;
	rbatch.nrecs++;
}

static void rec_cache_free(void)
{
	while (rbatch.recs) {
		struct rrec *r = rbatch.recs;
		rbatch.recs = r->free_next;
		free(r);
	}
	rbatch.nrecs = 0;
}

static void batch_reclaim(conc_epoch_node *e)
{
	struct rrec *r = (struct rrec *)(void *)((char *)e - offsetof(struct rrec, enode));
	struct snode *n = r->head;
	rec_put(r);
	bool poison = conc__chaos(); /* chaos mode: a late reader sees garbage */
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
	struct snode *h = rbatch.head;
	if (!h)
		return true;
	struct rrec *r = rec_get();
	if (conc__unlikely(!r))
		return false;
	unsigned n = rbatch.n;
	/* relaxed: a hint; the exchange below decides (its acquire pairs with
	 * the release CAS of orphan_batch, through the RMW chain) */
	if (conc__unlikely(atomic_load_explicit(&orphans, memory_order_relaxed) != NULL)) {
		/* acquire: pairs with orphan_batch's release CAS */
		rbatch.tail->rlink = atomic_exchange_explicit(&orphans, NULL, memory_order_acquire);
		n += RETIRE_BATCH; /* a weight for the advance policy, no count */
	}
	r->head = h;
	rbatch.head = rbatch.tail = NULL;
	rbatch.n = 0;
	conc__epoch_retire_weighted(conc_epoch_global(), &r->enode, batch_reclaim, n);
	return true;
}

/* Push the chain first..last (linked through rlink) onto a push-only list
 * that is taken whole by an acquire exchange (orphans, s->pending): no
 * ABA, since nothing is ever popped off one by one. */
static void chain_push(_Atomic(struct snode *) *list, struct snode *first, struct snode *last)
{
	/* relaxed: the CAS below validates what we read */
	struct snode *old = atomic_load_explicit(list, memory_order_relaxed);
	do
		last->rlink = old;
	/* release: publishes the links to the taker's acquire exchange */
	while (!atomic_compare_exchange_weak_explicit(list, &old, first, memory_order_release,
						      memory_order_relaxed));
}

/* Thread exit without a record: the batch joins the orphan list. */
static void orphan_batch(void)
{
	if (!rbatch.head)
		return;
	chain_push(&orphans, rbatch.head, rbatch.tail);
	rbatch.head = rbatch.tail = NULL;
	rbatch.n = 0;
}

/* Retire s's pending list under one record (private domains). */
static void pending_flush(conc_stack *s)
{
	struct rrec *r = rec_get();
	if (conc__unlikely(!r))
		return; /* the nodes stay pending */
	/* acquire: pairs with retire_node's release CAS (the rlinks) */
	r->head = atomic_exchange_explicit(&s->pending, NULL, memory_order_acquire);
	if (!r->head) {
		rec_put(r);
		return;
	}
	/* the epoch's advance policy counts nodes, not records: count them
	 * (a walk over nodes just popped, once per batch) */
	unsigned k = 0;
	for (struct snode *n = r->head; n; n = n->rlink)
		k++;
	conc__epoch_retire_weighted(s->d, &r->enode, batch_reclaim, k);
}

/* n is unreachable (popped or taken) and its item has been read by the
 * caller, the thread that removed it; recycle it after a grace period. */
static void retire_node(conc_stack *s, struct snode *n)
{
	if (s->d != conc_epoch_global() || conc__unlikely(mag.exiting)) {
		chain_push(&s->pending, n, n);
		/* relaxed: a count; the exchange in pending_flush decides.
		 * Per stack, not per thread: with a per-thread count, a
		 * thread alternating between two stacks, or threads that pop
		 * fewer than RETIRE_BATCH each, would never flush a stack. */
		if ((atomic_fetch_add_explicit(&s->npending, 1, memory_order_relaxed) + 1) %
			    RETIRE_BATCH == 0)
			pending_flush(s);
		return;
	}
	if (conc__unlikely(!mag.hooked))
		mag_hook(); /* so that the batch is handed over at exit */
	n->rlink = rbatch.head;
	if (!rbatch.head)
		rbatch.tail = n;
	rbatch.head = n;
	if (conc__unlikely(++rbatch.n >= RETIRE_BATCH))
		retire_flush(); /* without a record, tried again next time */
}

void conc__stack_trim_caches(void)
{
	if (!retire_flush()) /* reclaimed later, and freed then (no stack left) */
		orphan_batch();
	/* relaxed: a hint; the exchange below decides */
	if (atomic_load_explicit(&orphans, memory_order_relaxed)) {
		/* orphans ride on a record of their own (without one they wait
		 * for the next batch retired by any thread) */
		struct rrec *r = rec_get();
		if (r) {
			/* acquire: pairs with orphan_batch's release CAS */
			r->head = atomic_exchange_explicit(&orphans, NULL, memory_order_acquire);
			if (r->head)
				conc__epoch_retire_weighted(conc_epoch_global(), &r->enode,
							    batch_reclaim, RETIRE_BATCH);
			else
				rec_put(r); /* another thread took them first */
		}
	}
	rec_cache_free();
	free_chain(mag.head);
	free_chain(mag.full);
	mag.head = mag.full = NULL;
	mag.n = 0;
	carve_release();
	spare_drain();
	depot_drain();
}

/* ---- create / destroy ---------------------------------------------------- */

int conc_stack_create_in(conc_stack **out, conc_epoch *d)
{
	if (!out || !d)
		return EINVAL;
	/* before the depot can be used: it is used only while a stack lives */
	pthread_once(&fork_once, fork_register);
	conc_stack *s = conc__aligned_alloc("stack.create", CONC_PAD, sizeof *s);
	if (!s)
		return ENOMEM;
	memset(s, 0, sizeof *s);
	atomic_init(&s->top, 0);
	atomic_init(&s->pending, NULL);
	atomic_init(&s->npending, 0);
	s->d = d;
	unsigned cpus = conc_cpu_count();
	s->nelim = cpus / 2 < 1 ? 1 : cpus / 2 > ELIM_MAX ? ELIM_MAX : cpus / 2;
	atomic_init(&s->elim_on, true);
	conc__park_init(&s->park);
	for (unsigned k = 0; k < ELIM_MAX; k++) {
		atomic_init(&s->elim[k].offer, 0);
		atomic_init(&s->elim[k].hits, 0);
	}
	/* relaxed: only gates whether reclaimed nodes are cached */
	atomic_fetch_add_explicit(&live_stacks, 1, memory_order_relaxed);
	*out = s;
	return 0;
}

int conc_stack_create(conc_stack **out)
{
	return conc_stack_create_in(out, conc_epoch_global());
}

void conc_stack_destroy(conc_stack *s, void (*drop)(void *item))
{
	if (!s)
		return;
	/* Not concurrent with anything: the nodes are ours. */
	struct snode *n = (struct snode *)(atomic_load_explicit(&s->top, memory_order_acquire) &
					   ~CLOSED_TAG);
	while (n) {
		struct snode *next = n->next;
		if (drop)
			drop(n->item);
		node_put(n);
		n = next;
	}
	/* No pop of s is running, so no reader is left for the nodes still
	 * pending: back to the caches without a grace period.  acquire: pairs
	 * with retire_node's release CAS. */
	n = atomic_load_explicit(&s->pending, memory_order_acquire);
	while (n) {
		struct snode *next = n->rlink;
		conc__chaos_poison(n, sizeof *n); /* chaos mode, as a reclaim would */
		node_put(n);
		n = next;
	}
	free(s);
	if (atomic_fetch_sub_explicit(&live_stacks, 1, memory_order_relaxed) == 1)
		conc__stack_trim_caches();
}

/* ---- elimination --------------------------------------------------------- */

static _Thread_local uint32_t elim_seed __attribute__((tls_model("initial-exec")));

static unsigned elim_pick(const conc_stack *s)
{
	uint32_t x = elim_seed;
	if (!x)
		x = (uint32_t)(uintptr_t)&elim_seed | 1u;
	x ^= x << 13;
	x ^= x >> 17;
	x ^= x << 5;
	elim_seed = x;
	return x % s->nelim;
}

enum { ELIM_NOT_POSTED = -1, ELIM_MISSED = 0, ELIM_MATCHED = 1 };

/*
 * Offer n to a pop: ELIM_MATCHED when a pop took it (that pop retires n:
 * the pusher never touches n again, only the slot word), ELIM_MISSED when
 * it waited in vain, ELIM_NOT_POSTED when the slot was busy or sealed.  A pop that read n
 * from the slot in an earlier round may take it in any round in which n
 * is offered again - a genuine match (same push, same item) - so every
 * round ends with the withdrawing CAS.
 */
static int elim_push(conc_stack *s, struct snode *n, unsigned wait)
{
	struct elim_slot *slot = &s->elim[elim_pick(s)];
	uintptr_t cur = 0;
	/* relaxed: a hint; the CAS below decides */
	if (atomic_load_explicit(&slot->offer, memory_order_relaxed) != 0)
		return ELIM_NOT_POSTED; /* busy or sealed */
	/* release: publishes n->item; pairs with the acquire load of the slot
	 * in elim_pop */
	if (!atomic_compare_exchange_strong_explicit(&slot->offer, &cur, (uintptr_t)n,
						     memory_order_release, memory_order_relaxed))
		return ELIM_NOT_POSTED;
	for (unsigned i = 0; i < wait; i++) {
		/* relaxed: we read nothing through the result */
		if (atomic_load_explicit(&slot->offer, memory_order_relaxed) != (uintptr_t)n)
			break;
		conc__cpu_relax();
	}
	cur = (uintptr_t)n;
	/* relaxed: the outcome is all we need (n was never out of our hands
	 * if this succeeds; nothing is read through a failure) */
	if (atomic_compare_exchange_strong_explicit(&slot->offer, &cur, 0, memory_order_relaxed,
						    memory_order_relaxed))
		return ELIM_MISSED; /* withdrawn: n is ours again (I1) */
	if (cur == ELIM_CLOSED)
		return ELIM_MISSED; /* close cancelled the offer: n is ours again */
	/* Taken: cur is n|ELIM_TAKEN, or ELIM_CLOSED_TAKEN if close sealed
	 * the slot since.  Free the slot for the next offer; relaxed: the
	 * slot carries no data now, and a failure means close sealed it. */
	if (cur == ((uintptr_t)n | ELIM_TAKEN))
		atomic_compare_exchange_strong_explicit(&slot->offer, &cur, 0,
							memory_order_relaxed, memory_order_relaxed);
	return ELIM_MATCHED;
}

/*
 * Adaptive elimination.  An offer only pays when a pop comes by during its
 * wait; with few cores (2 here) the pop whose CAS beat ours is back on top
 * before it would look in a slot, offers go unmatched, and each one costs
 * a wait and two CASes on the slot line that plain backoff would not.  So
 * a thread whose last ELIM_MISS_MAX offers all went unmatched offers only
 * on one failed CAS in ELIM_PROBE (it still learns when pairs start to
 * meet), and backs off on the others.  Per thread, no shared state.
 */
#define ELIM_MISS_MAX 4
#define ELIM_PROBE 256 /* on 2 cores offers matched 0-3 pairs per bench run */

static _Thread_local struct {
	unsigned misses; /* consecutive unmatched offers */
	unsigned tick;
} elim_adapt __attribute__((tls_model("initial-exec")));

static inline bool elim_worth_it(void)
{
	return elim_adapt.misses < ELIM_MISS_MAX || (++elim_adapt.tick % ELIM_PROBE) == 0;
}

static inline void elim_learn(int r)
{
	if (r == ELIM_MATCHED)
		elim_adapt.misses = 0;
	else if (r == ELIM_MISSED && elim_adapt.misses < ELIM_MISS_MAX)
		elim_adapt.misses++;
}

/* Take a waiting push offer, if one is there. */
static bool elim_pop(conc_stack *s, void **item)
{
	unsigned k0 = elim_pick(s);
	for (unsigned j = 0; j < s->nelim; j++) {
		struct elim_slot *slot = &s->elim[(k0 + j) % s->nelim];
		/* relaxed: a filter; the CAS below is what reads the offer */
		uintptr_t v = atomic_load_explicit(&slot->offer, memory_order_relaxed);
		if (v == 0 || (v & ELIM_MARKS))
			continue; /* free, taken or sealed */
		/* acquire on success: pairs with the release CAS of the offer
		 * round it takes.  The same node may have been offered before,
		 * withdrawn, and had next written by its pusher's CAS attempt
		 * on top in between; synchronising with the round we take
		 * (not an earlier one that a load saw) orders those writes
		 * before our reading item and before the node's reuse after
		 * we retire it.  A success means n is still offered by the
		 * same push (a node is reused only after a grace period, and
		 * we are pinned: I2). */
		if (atomic_compare_exchange_strong_explicit(&slot->offer, &v, v | ELIM_TAKEN, /* LP: pop */
							    memory_order_acquire,
							    memory_order_relaxed)) {
			struct snode *n = (struct snode *)v;
			*item = n->item;
			/* relaxed: a statistic */
			atomic_fetch_add_explicit(&slot->hits, 1, memory_order_relaxed);
			retire_node(s, n); /* in no slot and never on top (I1) */
			return true;
		}
	}
	return false;
}

/* ---- push / pop ---------------------------------------------------------- */

/* The rest of a push whose first CAS failed (or that found the stack
 * closed), out of line so that the common case stays short: the retries,
 * elimination, backoff.  0 (pushed or eliminated) or EPIPE. */
static __attribute__((noinline)) int push_slow(conc_stack *s, struct snode *n, uintptr_t top)
{
	bool offered = false;
	conc__backoff b = CONC__BACKOFF_INIT;
	while (!(top & CLOSED_TAG)) {
		if (atomic_load_explicit(&s->elim_on, memory_order_relaxed) && elim_worth_it()) {
			int r = elim_push(s, n, ELIM_WAIT);
			offered |= r != ELIM_NOT_POSTED;
			elim_learn(r);
			if (r == ELIM_MATCHED)
				return 0; /* taken by a pop: nobody to wake */
		}
		conc__backoff_spin(&b);
		top = conc__treiber_top_for_push(&s->top);
		conc__chaos_point(); /* a retry: between the load and the CAS */
		if (!(top & CLOSED_TAG) &&
		    conc__treiber_push_try(&s->top, &top, n)) { /* LP: push */
			conc__park_notify_one(&s->park);
			return 0;
		}
	}
	/* Never on the stack.  Once offered, a pinned pop may still hold n's
	 * address, read from the slot; n waits out a grace period like a
	 * popped node (I2), so that no argument about which slot words such a
	 * pop could still CAS is needed (a rare path). */
	if (offered)
		retire_node(s, n);
	else
		node_put(n);
	return EPIPE;
}

int conc_stack_push(conc_stack *s, void *item)
{
	struct snode *n = node_get();
	if (!n)
		return ENOMEM;
	n->item = item;
	/* No pin: push dereferences no node but its own (an ABA on top is
	 * harmless to a push: n->next is whatever top is when the CAS
	 * succeeds), and elimination hands n to a pop that is pinned. */
	uintptr_t top = conc__treiber_top_for_push(&s->top);
	if (conc__likely(!(top & CLOSED_TAG)) &&
	    conc__treiber_push_try(&s->top, &top, n)) { /* LP: push */
		conc__park_notify_one(&s->park);
		return 0;
	}
	return push_slow(s, n, top);
}

bool conc_stack_try_pop(conc_stack *s, void **item)
{
	bool got = false;
	conc__backoff b = CONC__BACKOFF_INIT;
	conc_epoch_pin(s->d);
	uintptr_t top = conc__treiber_top_for_pop(&s->top);
	for (;;) {
		struct snode *t = conc__treiber_top_node(top, CLOSED_TAG);
		if (!t) {
			/* Empty, but a push may be waiting in a slot after losing
			 * its CAS on top: take it rather than report empty. */
			if (atomic_load_explicit(&s->elim_on, memory_order_relaxed) &&
			    elim_pop(s, item))
				got = true;
			break; /* else LP: pop-empty (the load of top that found no node) */
		}
		if (conc__treiber_pop_try(&s->top, &top, t, CLOSED_TAG)) { /* LP: pop */
			*item = t->item;
#if CONC__MUTANT(3) /* mutant 3: straight back to the node cache, no grace period (ABA) */
			node_put(t);
#else
			retire_node(s, t);
#endif
			got = true;
			break;
		}
		if (atomic_load_explicit(&s->elim_on, memory_order_relaxed) && elim_pop(s, item)) {
			got = true;
			break;
		}
		conc__backoff_spin(&b);
		top = conc__treiber_top_for_pop(&s->top);
		/* a retry: between the load of top and the read of its next */
		conc__chaos_point();
	}
	conc_epoch_unpin(s->d);
	return got;
}

static bool waitpop_try(void *c, void **item)
{
	return conc_stack_try_pop(c, item);
}

static bool waitpop_closed(void *c)
{
	/* seq_cst: read after the sleeper's prepare fence; pairs with the
	 * seq_cst fetch_or in close (park.h protocol) */
	return atomic_load_explicit(&((conc_stack *)c)->top, memory_order_seq_cst) & CLOSED_TAG;
}

static const conc__waitpop_ops stack_waitpop = {waitpop_try, waitpop_closed};

int conc_stack_pop(conc_stack *s, void **item)
{
	return conc__waitpop(s, &stack_waitpop, &s->park, item, false, 0);
}

int conc_stack_pop_timeout(conc_stack *s, void **item, uint64_t timeout_ns)
{
	return conc__waitpop(s, &stack_waitpop, &s->park, item, true, timeout_ns);
}

/* ---- close, is_empty ------------------------------------------------------- */

void conc_stack_close(conc_stack *s)
{
	/* Seal the elimination slots first (see close's LP above).  No pin:
	 * close reads only slot words, never a node. */
	for (unsigned k = 0; k < ELIM_MAX; k++) {
		struct elim_slot *slot = &s->elim[k];
		/* relaxed (load and CASes): the slot word is the whole state;
		 * a pusher that finds ELIM_CLOSED reads nothing through it and
		 * goes back to top, where the fetch_or below decides */
		uintptr_t cur = atomic_load_explicit(&slot->offer, memory_order_relaxed);
		while (cur != ELIM_CLOSED && cur != ELIM_CLOSED_TAKEN) {
			/* a taken offer stays taken: its pusher must still learn
			 * that its item went to a pop */
			uintptr_t seal = (cur & ELIM_TAKEN) ? ELIM_CLOSED_TAKEN : ELIM_CLOSED;
			if (atomic_compare_exchange_strong_explicit(&slot->offer, &cur, seal,
								    memory_order_relaxed,
								    memory_order_relaxed))
				break;
		}
	}
	/* seq_cst: the publishing write of park.h's protocol */
	atomic_fetch_or_explicit(&s->top, CLOSED_TAG, memory_order_seq_cst); /* LP: close */
	conc__park_notify_all(&s->park);
}

bool conc_stack_is_empty(conc_stack *s)
{
	/* acquire: a snapshot; pairs with the push CAS */
	return (atomic_load_explicit(&s->top, memory_order_acquire) & ~CLOSED_TAG) == 0;
}

/* ---- internal hooks ------------------------------------------------------ */

unsigned conc__stack_sleepers(conc_stack *s)
{
	return atomic_load_explicit(&s->park.waiters, memory_order_seq_cst);
}

void conc__stack_set_elimination(conc_stack *s, bool on)
{
	atomic_store_explicit(&s->elim_on, on, memory_order_relaxed);
}

uint64_t conc__stack_eliminated(conc_stack *s)
{
	uint64_t sum = 0;
	for (unsigned k = 0; k < ELIM_MAX; k++)
		sum += atomic_load_explicit(&s->elim[k].hits, memory_order_relaxed);
	return sum;
}

int conc__stack_offer(conc_stack *s, void *item, unsigned wait)
{
	struct snode *n = node_get();
	if (!n)
		return ENOMEM;
	n->item = item;
	if (elim_push(s, n, wait) == ELIM_MATCHED)
		return 1;
	retire_node(s, n); /* offered: a pop may still hold its address */
	return 0;
}

bool conc__stack_take(conc_stack *s, void **item)
{
	conc_epoch_pin(s->d);
	bool got = elim_pop(s, item);
	conc_epoch_unpin(s->d);
	return got;
}

unsigned conc__stack_offers_waiting(conc_stack *s)
{
	unsigned k = 0;
	for (unsigned j = 0; j < ELIM_MAX; j++) {
		/* relaxed: a snapshot for tests */
		uintptr_t v = atomic_load_explicit(&s->elim[j].offer, memory_order_relaxed);
		k += v != 0 && !(v & ELIM_MARKS);
	}
	return k;
}

unsigned conc__stack_pending(conc_stack *s)
{
	unsigned k = 0;
	/* acquire: pairs with retire_node's release CAS (the links we walk);
	 * the caller runs no pop on s meanwhile */
	for (struct snode *n = atomic_load_explicit(&s->pending, memory_order_acquire); n;
	     n = n->rlink)
		k++;
	return k;
}
