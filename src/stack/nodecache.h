/*
 * nodecache.h (internal) - the stack's node allocator and batched retire:
 * slabs, per-thread magazines, a process-wide depot, and the retire of
 * popped nodes in batches after an epoch grace period.  Used by
 * src/stack/stack.c only, through the functions below; implemented in
 * src/stack/nodecache.c (which has the longer argument for each part).
 *
 * Interface.
 *   conc__nc_init        once before the first attach (registers the depot's
 *                        fork handlers, slot STACK of base/atfork.h).
 *   conc__nc_attach      a stack was created; conc__nc_detach: destroyed.
 *                        While none is attached, nodes are freed instead of
 *                        cached, and the last detach trims the caller's
 *                        caches and the depot (conc__nc_trim).
 *   conc__nc_get         a free node (NULL: ENOMEM); fast path inline.
 *   conc__nc_put         a node nobody can reach back to the caches now.
 *   conc__nc_retire      a node removed from a stack on domain d whose item
 *                        the caller has read: back to the caches after a
 *                        grace period of d; fast path inline.
 *   conc__nc_take_run    the same for a run of nodes removed at once, their
 *                        items copied out on the way.
 *   conc__nc_pending_*   the per-stack list that private domains use (see
 *                        Retiring in nodecache.c).
 *
 * The node.  Two words (NODE_SIZE, 16 bytes).  next is the stack's link
 * and, for a free node (magazine, depot batch), the free list's link.  The
 * second word is the stack's item while the node is on a stack, rlink once
 * a pop removed it (retire lists; never next, which pinned readers may
 * still read), and batch_next on the first node of a depot batch.
 *
 * Invariants.
 *   N1 a node is in exactly one place: carved-not-yet (a slab's bump
 *      range), a magazine, the depot, a retire list (a thread's batch, a
 *      stack's pending list, the orphan list, a record waiting out its grace
 *      period), or the user's hands (on a stack, offered).  Only the owner
 *      of that place touches its link words.
 *   N2 a retired node reaches a cache only after a grace period of the
 *      domain it was retired to (one exception: a destroyed stack's pending
 *      list, which no pop can read any more).  This is the stack's I2.
 *   N3 a slab's refs counts its nodes not yet released (carved or not);
 *      a node is released once, when it leaves the caches for good, and
 *      the release that takes refs to 0 frees the slab.
 *   N4 a depot batch is whole: MAG_BATCH nodes linked through next, except
 *      the short batch an exiting thread hands over (counted by the taker).
 *
 * Progress.  get and put are wait-free apart from malloc and free:
 * thread-local work, loops bounded by MAG_BATCH or SPARE_SLABS, and the
 * depot's spin flag taken with a try-lock only (a thread that finds it busy
 * carves or frees instead of waiting).  retire is lock-free: a CAS push
 * onto a pending or orphan list (a failed CAS means another push
 * succeeded), then the epoch's retire.  Only the last detach
 * (conc__nc_trim) and the fork prepare handler wait for the flag, whose
 * holders hold it for a few pointer moves.  The magazines, the carve state
 * and the retire batch are thread-local: no atomics on the fast paths.
 *
 * Memory orders (each also beside its operation in nodecache.c).
 *   depot flag      acquire test_and_set / release clear: the batch list
 *                   and its nodes' links pass from holder to holder.
 *   depot hint      relaxed: it only decides whether the lock is worth a
 *                   try; the list read under the lock decides.
 *   slab refs       acq_rel fetch_sub: the release half orders a
 *                   releaser's writes to its nodes before the free; the
 *                   acquire half lets the freeing releaser see them done.
 *   spare slabs     release CAS from NULL (publishes the carve state in the
 *                   header) / acquire exchange to NULL (take-all: no ABA).
 *   retire lists    release CAS push / acquire exchange of the whole list
 *                   (orphans, pending): the rlinks pass to the taker; no
 *                   ABA, nothing is ever popped off one by one.
 *   attach count    relaxed: it only gates caching; a node cached or freed
 *                   on either side of a detach is never lost (see
 *                   nodecache.c, carve_park).
 *   the grace period itself is the epoch's (conc__epoch_retire_batch).
 *
 * fork.  A thread holding the depot flag at fork() does not exist in the
 * child; the prepare handler takes the flag, so the child's copy of the
 * list is whole and the flag held by the forking thread alone, which lets
 * it go in both processes.  Magazines, carve state and retire batches are
 * thread-local: the child keeps the forking thread's only.
 */
#ifndef CONC_INTERNAL_NODECACHE_H
#define CONC_INTERNAL_NODECACHE_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "conc/epoch.h"
#include "base/arch.h"

#define CONC__NC_NODE_SIZE 16    /* sizeof(struct snode), asserted below */
#define CONC__NC_MAG_BATCH 64    /* nodes per magazine batch (and depot batch) */
#define CONC__NC_RETIRE_BATCH 64 /* popped nodes retired under one record */

struct snode {
	struct snode *next;
	union {
		void *item;
		struct snode *rlink;      /* retire list link (conc__nc_retire) */
		struct snode *batch_next; /* the depot's list of batches */
	};
};
_Static_assert(sizeof(struct snode) == CONC__NC_NODE_SIZE, "NODE_SIZE is the node's size");

/* The per-thread state the inline fast paths read (thread-local, no
 * atomics; defined in nodecache.c).  initial-exec in libconc.a: it is PIC,
 * and this avoids __tls_get_addr on every access.  libconc.so's objects use
 * the dynamic model (CONC__TLS_IE, base/arch.h) so that it can be
 * dlopen()ed; libconc.a inside a dlopen()ed shared object still needs
 * static TLS: use libconc.so for plugins. */
struct conc__nc_mag {
	struct snode *head; /* loose nodes, n of them (< MAG_BATCH) */
	unsigned n;
	struct snode *full; /* one spare batch of exactly MAG_BATCH, or NULL */
	bool hooked;        /* the thread-exit hook is set */
	bool exiting;       /* the exit hook ran: free, do not cache */
};
struct conc__nc_carve {
	char *cur;     /* the next node to hand out, inside the slab */
	unsigned left; /* nodes left to carve from it */
};
struct conc__nc_rrec;
struct conc__nc_rbatch {
	struct snode *head, *tail; /* popped nodes linked through rlink */
	unsigned n;
	struct conc__nc_rrec *recs; /* the record cache */
	unsigned nrecs;
};
extern _Thread_local struct conc__nc_mag conc__nc_mag CONC__TLS_IE;
extern _Thread_local struct conc__nc_carve conc__nc_carve
	CONC__TLS_IE;
extern _Thread_local struct conc__nc_rbatch conc__nc_rbatch
	CONC__TLS_IE;
/* The depot's batch count, readable without its lock (a hint). */
extern atomic_uint conc__nc_depot_hint;

/* A stack's list of popped nodes waiting for a batch retire (private
 * domains): a push-only CAS list taken whole by exchange. */
typedef struct conc__nc_pending {
	_Atomic(struct snode *) head; /* linked through rlink */
	atomic_uint n; /* retires into it; each RETIRE_BATCH-th flushes */
} conc__nc_pending;

void conc__nc_init(void);
void conc__nc_attach(void);
void conc__nc_detach(void);
void conc__nc_trim(void);
void conc__nc_put(struct snode *n);
void conc__nc_pending_init(conc__nc_pending *p);
void conc__nc_pending_drain(conc__nc_pending *p);
unsigned conc__nc_pending_count(conc__nc_pending *p);

/* The out-of-line parts of the fast paths below. */
struct snode *conc__nc_get_slow(void);
void conc__nc_hook(void);
void conc__nc_flush(void);
void conc__nc_retire_pending(conc_epoch *d, conc__nc_pending *p, struct snode *n);
void conc__nc_take_run(conc_epoch *d, conc__nc_pending *p, struct snode *first,
		       struct snode *last, unsigned k, void **items);

/* A free node, or NULL (out of memory).  Inline: the loose nodes, the
 * spare batch, the bump pointer; everything else (the exit hook, the
 * depot, a new slab) is conc__nc_get_slow, which tries the same sources
 * in the same order. */
static inline struct snode *conc__nc_get(void)
{
	/* conc__nc_mag.x, not through a pointer to it: through a pointer, the
	 * gcc -fsanitize=undefined build reported a null member access here
	 * (a false report: the address is the thread pointer plus an offset) */
	struct snode *n = conc__nc_mag.head;
	if (conc__likely(n != NULL)) {
		conc__nc_mag.head = n->next;
		conc__nc_mag.n--;
		return n;
	}
	if (conc__nc_mag.full) { /* the spare batch becomes the loose nodes */
		n = conc__nc_mag.full;
		conc__nc_mag.full = NULL;
		conc__nc_mag.head = n->next;
		conc__nc_mag.n = CONC__NC_MAG_BATCH - 1;
		return n;
	}
	/* relaxed: the depot hint only decides whether the lock is worth a
	 * try (the slow path takes a batch before it carves) */
	if (conc__unlikely(conc__nc_mag.exiting || !conc__nc_mag.hooked ||
			   conc__nc_carve.left == 0 ||
			   atomic_load_explicit(&conc__nc_depot_hint, memory_order_relaxed)))
		return conc__nc_get_slow();
	n = (struct snode *)(void *)conc__nc_carve.cur;
	conc__nc_carve.cur += CONC__NC_NODE_SIZE;
	conc__nc_carve.left--;
	return n;
}

/* A batch push's nodes from this thread's loose nodes (or its spare batch
 * when none are loose), already linked: the first gets items[n-1], the
 * next items[n-2], and so on down, as many as are cached here, up to n.
 * *first..*last, linked through next, *last's next NULL; returns how
 * many (0: none cached here: conc__nc_get makes the rest). */
static inline size_t conc__nc_take_filled(void *const *items, size_t n, struct snode **first,
					  struct snode **last)
{
	struct snode *h = conc__nc_mag.head;
	unsigned have = conc__nc_mag.n;
	if (n == 0)
		return 0;
	if (!h) {
		if (!conc__nc_mag.full)
			return 0;
		h = conc__nc_mag.full; /* the spare batch becomes the loose nodes */
		conc__nc_mag.full = NULL;
		have = CONC__NC_MAG_BATCH;
	}
	size_t k = n < have ? n : have;
	struct snode *l = h;
	l->item = items[n - 1];
	for (size_t i = 1; i < k; i++) {
		l = l->next;
		l->item = items[n - 1 - i];
	}
	conc__nc_mag.head = k < have ? l->next : NULL;
	conc__nc_mag.n = have - (unsigned)k;
	l->next = NULL;
	*first = h;
	*last = l;
	return k;
}

/* n was removed from a stack on domain d (p: that stack's pending list)
 * and its item read by the caller, the thread that removed it: recycle it
 * after a grace period of d (N2).  Global domain: into this thread's batch,
 * retired every RETIRE_BATCH nodes.  A private domain (or an exiting
 * thread): into p, see nodecache.c. */
static inline void conc__nc_retire(conc_epoch *d, conc__nc_pending *p, struct snode *n)
{
	if (d != conc_epoch_global() || conc__unlikely(conc__nc_mag.exiting)) {
		conc__nc_retire_pending(d, p, n);
		return;
	}
	if (conc__unlikely(!conc__nc_mag.hooked))
		conc__nc_hook(); /* so that the batch is handed over at exit */
	n->rlink = conc__nc_rbatch.head;
	if (!conc__nc_rbatch.head)
		conc__nc_rbatch.tail = n;
	conc__nc_rbatch.head = n;
	if (conc__unlikely(++conc__nc_rbatch.n >= CONC__NC_RETIRE_BATCH))
		conc__nc_flush(); /* without a record, tried again next time */
}

#endif
