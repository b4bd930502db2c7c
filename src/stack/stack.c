/*
 * stack.c - Treiber stack (IBM 1986) with an elimination layer
 * (Hendler, Shavit & Yerushalmi, SPAA 2004).  Nodes come from, and are
 * retired to, the node cache (stack/nodecache.h): slabs, magazines, a
 * depot, and the batched retire that waits out their grace period.
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
 * Nodes.  struct snode (stack/nodecache.h) is two words.  Who may touch
 * which when:
 *   next   written by the pusher before publishing; read by pinned pops
 *          until the grace period ends (I2), so never reused before it.
 *   item   the pusher writes it before publishing the node; read by the
 *          one pop that removes (or takes) the node.  After that read the
 *          node is that pop's alone to retire (conc__nc_retire), and the
 *          node cache reuses the word: no other thread reads item of a
 *          node it did not remove.
 * The epoch node a grace period needs is not in the node but in the node
 * cache's retire record, one per batch of popped nodes.
 */
#include <errno.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "conc/cpu.h"
#include "conc/stack.h"
#include "base/arch.h"
#include "base/atomics.h"
#include "base/backoff.h"
#include "base/chaos.h"
#include "base/check.h"
#include "epoch/epoch_internal.h"
#include "stack/nodecache.h"
#include "stack/stack_internal.h"
#include "base/fault.h"
#include "base/mutant.h"
#include "base/pad.h"
#include "base/park.h"
#include "base/prng.h"
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

/* CLOSED_TAG and ELIM_MARKS use a node address's low bits: the node
 * cache hands out nodes 8-byte aligned (16-byte strides after a 64-byte
 * header, nodecache.c). */
_Static_assert(CONC__NC_NODE_SIZE % 8 == 0, "nodes are 8-byte aligned (ELIM_MARKS)");

/* One push or pop attempt on top: stack/alg_stack.h (shared with the
 * Relacy model). */
#include "stack/alg_stack.h"

/* The matched-pairs counter behind conc__stack_eliminated is for tests:
 * it sits on the slot's line, which every offer and take writes, so
 * release builds (no fault hooks) go without it. */
#if defined(CONC_FAULT_HOOKS) && CONC_FAULT_HOOKS
#define ELIM_COUNT 1
#else
#define ELIM_COUNT 0
#endif

struct elim_slot {
	CONC_ALIGNED _Atomic(uintptr_t) offer; /* see Data above */
#if ELIM_COUNT
	atomic_uint_fast64_t hits; /* pairs matched here (test builds) */
#endif
};

struct conc_stack {
	CONC_ALIGNED _Atomic(uintptr_t) top;
	/* read-mostly */
	CONC_ALIGNED conc_epoch *d;
	CONC__LIFE_FIELD /* debug-checks builds: alive or dead (base/check.h) */
	unsigned nelim;
	atomic_bool elim_on;
	conc__park park;
	struct elim_slot elim[ELIM_MAX];
	/* popped nodes waiting for a batch retire (private domains; see
	 * Retiring in stack/nodecache.c) */
	CONC_ALIGNED conc__nc_pending pending;
};

/* conc_stack_trim_caches: the node cache's trim (tests). */
void conc__stack_trim_caches(void)
{
	conc__nc_trim();
}

/* ---- create / destroy ---------------------------------------------------- */

int conc_stack_create_in(conc_stack **out, conc_epoch *d)
{
	if (!out || !d || !CONC__EPOCH_ALIVE(d))
		return EINVAL;
	/* before the node cache's depot can be used (its fork handlers) */
	conc__nc_init();
	conc_stack *s = conc__aligned_alloc("stack.create", CONC_PAD, sizeof *s);
	if (!s)
		return ENOMEM;
	memset(s, 0, sizeof *s);
	atomic_init(&s->top, 0);
	conc__nc_pending_init(&s->pending);
	s->d = d;
	unsigned cpus = conc_cpu_count();
	s->nelim = cpus / 2 < 1 ? 1 : cpus / 2 > ELIM_MAX ? ELIM_MAX : cpus / 2;
	atomic_init(&s->elim_on, true);
	conc__park_init(&s->park);
	for (unsigned k = 0; k < ELIM_MAX; k++) {
		atomic_init(&s->elim[k].offer, 0);
#if ELIM_COUNT
		atomic_init(&s->elim[k].hits, 0);
#endif
	}
	conc__nc_attach(); /* nodes are cached while a stack lives */
	CONC__LIFE_SET(s, CONC__LIFE_STACK);
	CONC__EPOCH_USERS_ADD(d, 1);
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
	CONC__LIFE_ABORT(s, CONC__LIFE_STACK, "conc_stack_destroy");
	/* relaxed: a thread blocked in a pop registered itself before it
	 * slept; one that has returned is ordered before this call */
	CONC__MISUSE_IF(atomic_load_explicit(&s->park.waiters, memory_order_relaxed) != 0,
			"conc_stack_destroy",
			"a thread is blocked in a pop of this stack (destroy while in use)");
	/* dead before the drops run: a drop that calls back into s gets
	 * EINVAL (or the misuse report), as for the queue */
	CONC__LIFE_SET(s, CONC__LIFE_DEAD);
	CONC__EPOCH_USERS_ADD(s->d, -1);
	/* Not concurrent with anything: the nodes are ours. */
	struct snode *n = (struct snode *)(atomic_load_explicit(&s->top, memory_order_acquire) &
					   ~CLOSED_TAG);
	while (n) {
		struct snode *next = n->next;
		if (drop)
			drop(n->item);
		conc__nc_put(n);
		n = next;
	}
	/* No pop of s is running, so no reader is left for the nodes still
	 * pending: back to the caches without a grace period. */
	conc__nc_pending_drain(&s->pending);
	CONC__LIFE_FREE(s); /* debug-checks builds: dead and quarantined */
	conc__nc_detach(); /* the last one trims the caches */
}

/* n is unreachable (popped or taken) and its item has been read by the
 * caller, the thread that removed it: recycle it after a grace period (I2). */
static inline void retire_node(conc_stack *s, struct snode *n)
{
	conc__nc_retire(s->d, &s->pending, n);
}

/* ---- elimination --------------------------------------------------------- */

static _Thread_local uint64_t elim_seed CONC__TLS_IE;

/* The slot an elimination offer or take starts at: random per thread, so
 * that pushers and poppers spread over the slots. */
static unsigned elim_pick(const conc_stack *s)
{
	if (conc__unlikely(elim_seed == 0)) /* the TLS address differs per thread */
		elim_seed = conc__rand_seed((uint64_t)(uintptr_t)&elim_seed);
	return conc__rand_below(&elim_seed, s->nelim);
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
} elim_adapt CONC__TLS_IE;

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
#if ELIM_COUNT
			/* relaxed: a statistic */
			atomic_fetch_add_explicit(&slot->hits, 1, memory_order_relaxed);
#endif
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
		conc__nc_put(n);
	return EPIPE;
}

int conc_stack_push(conc_stack *s, void *item)
{
	/* A NULL s is the caller's bug, reported as EINVAL (the headers'
	 * uniform rule): one test and a branch predicted not taken, before a
	 * node is taken from the cache. */
	if (conc__unlikely(!s))
		return EINVAL;
	CONC__LIFE_RETURN(s, CONC__LIFE_STACK);
	struct snode *n = conc__nc_get();
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

/* Nodes of a chain that was never published, back to the cache. */
static void put_chain(struct snode *n)
{
	while (n) {
		struct snode *next = n->next;
		conc__nc_put(n);
		n = next;
	}
}

/*
 * push_n: the batch is built as a private chain, items[n-1] on top and
 * items[0] at the bottom, and goes on with one CAS of top, as one push
 * does (LP: push_n, for all n items at once; the same memory orders as
 * conc__treiber_push_try: the seq_cst CAS publishes every node of the
 * chain, written before it).  No elimination: a batch is not one offer.
 */
int conc_stack_push_n(conc_stack *s, void *const *items, size_t n)
{
	if (!s)
		return EINVAL;
	if (n == 0)
		return 0;
	if (!items)
		return EINVAL;
	CONC__LIFE_RETURN(s, CONC__LIFE_STACK);
	/* The top of the batch from the thread's cached nodes, which come
	 * linked: items[n-1] into the first, down the chain. */
	struct snode *first = NULL, *bottom = NULL;
	size_t k = n - conc__nc_take_filled(items, n, &first, &bottom);
	/* items[0..k-1], if any are left, below it, a node at a time */
	struct snode *sub = NULL, *sub_bottom = NULL;
	for (size_t i = 0; i < k; i++) {
		struct snode *nd = conc__nc_get();
		if (!nd) {
			put_chain(sub); /* nothing was published */
			put_chain(first);
			return ENOMEM;
		}
		nd->item = items[i];
		nd->next = sub;
		if (!sub_bottom)
			sub_bottom = nd;
		sub = nd;
	}
	if (!first) {
		first = sub;
		bottom = sub_bottom;
	} else if (sub) {
		bottom->next = sub;
		bottom = sub_bottom;
	}
	conc__backoff b = CONC__BACKOFF_INIT;
	uintptr_t top = conc__treiber_top_for_push(&s->top);
	for (;;) {
		if (top & CLOSED_TAG) {
			put_chain(first);
			return EPIPE;
		}
		bottom->next = (struct snode *)top;
		/* seq_cst: as in conc__treiber_push_try; relaxed on failure:
		 * push never reads through top */
		if (atomic_compare_exchange_weak_explicit(&s->top, &top, (uintptr_t)first, /* LP: push_n */
							  memory_order_seq_cst,
							  memory_order_relaxed))
			break;
		conc__backoff_spin(&b);
		conc__chaos_point(); /* a retry */
	}
	if (n == 1)
		conc__park_notify_one(&s->park);
	else
		conc__park_notify_all(&s->park);
	return 0;
}

/*
 * try_pop_n: pinned, walk from the top node t down to the k-th (k = max,
 * or fewer when the stack holds fewer), then one CAS of top from t to the
 * node after the k-th (LP: k pops at once).  The walk is safe for the
 * reason a single pop's read of t->next is (I2: pinned, no node read is
 * reused, and a node's next never changes while it is reachable), and the
 * acquire load of top synchronizes with every push CAS of the nodes
 * walked (each later CAS of top continues their release sequence).  The
 * CAS succeeds only if top is still t: t was not popped (it cannot have
 * come back while we are pinned), so neither was any node below it, and
 * the run t..k-th is still the stack's top run.
 */
size_t conc_stack_try_pop_n(conc_stack *s, void **items, size_t max)
{
	if (!s || !items || max == 0)
		return 0;
	CONC__LIFE_ABORT(s, CONC__LIFE_STACK, "conc_stack_try_pop_n");
	size_t got = 0;
	conc__backoff b = CONC__BACKOFF_INIT;
	conc_epoch_pin(s->d);
	uintptr_t top = conc__treiber_top_for_pop(&s->top);
	for (;;) {
		struct snode *t = conc__treiber_top_node(top, CLOSED_TAG);
		if (!t) {
			/* as try_pop: a push waiting in a slot is taken rather
			 * than reporting empty */
			if (atomic_load_explicit(&s->elim_on, memory_order_relaxed) &&
			    elim_pop(s, &items[0]))
				got = 1;
			break; /* else LP: pop-empty */
		}
		struct snode *last = t;
		size_t k = 1;
		for (; k < max && last->next; k++)
			last = last->next;
		uintptr_t after = (uintptr_t)last->next | (top & CLOSED_TAG);
		/* acquire (both): as in conc__treiber_pop_try */
		if (atomic_compare_exchange_strong_explicit(&s->top, &top, after, /* LP: pop_n */
							    memory_order_acquire,
							    memory_order_acquire)) {
			conc__nc_take_run(s->d, &s->pending, t, last, (unsigned)k, items);
			got = k;
			break;
		}
		conc__backoff_spin(&b);
		/* a retry: top was reloaded by the failed CAS */
		conc__chaos_point();
	}
	conc_epoch_unpin(s->d);
	return got;
}

/* try_pop's answer to a NULL item, out of line (see there why). */
static __attribute__((noinline, cold)) bool refuse_null_item(void)
{
	return false;
}

/* try_pop without the argument checks: the blocking pops call it in their
 * loops, having checked once.  Inlined into conc_stack_try_pop too, where a
 * call would cost a jump on top of the checks. */
static inline __attribute__((always_inline)) bool stack_try_pop(conc_stack *s, void **item)
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
			conc__nc_put(t);
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

bool conc_stack_try_pop(conc_stack *s, void **item)
{
	/* Nothing taken (see push for the cost).  Two tests with different
	 * targets: gcc 12 joins two that both return false into a sete/or
	 * sequence and a longer prologue (5 more instructions a pop). */
	if (conc__unlikely(!s))
		return false;
	if (conc__unlikely(!item))
		return refuse_null_item();
	CONC__LIFE_ABORT(s, CONC__LIFE_STACK, "conc_stack_try_pop");
	return stack_try_pop(s, item);
}

static bool waitpop_try(void *c, void **item)
{
	return stack_try_pop(c, item);
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
	if (!s || !item)
		return EINVAL;
	CONC__LIFE_RETURN(s, CONC__LIFE_STACK);
	return conc__waitpop(s, &stack_waitpop, &s->park, item, false, 0);
}

int conc_stack_pop_timeout(conc_stack *s, void **item, uint64_t timeout_ns)
{
	if (!s || !item)
		return EINVAL;
	CONC__LIFE_RETURN(s, CONC__LIFE_STACK);
	return conc__waitpop(s, &stack_waitpop, &s->park, item, true, timeout_ns);
}

/* ---- close, is_empty ------------------------------------------------------- */

void conc_stack_close(conc_stack *s)
{
	if (!s)
		return;
	CONC__LIFE_ABORT(s, CONC__LIFE_STACK, "conc_stack_close");
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
	if (!s)
		return true; /* holds no item */
	CONC__LIFE_ABORT(s, CONC__LIFE_STACK, "conc_stack_is_empty");
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
#if ELIM_COUNT
	for (unsigned k = 0; k < ELIM_MAX; k++)
		sum += atomic_load_explicit(&s->elim[k].hits, memory_order_relaxed);
#else
	(void)s; /* not counted without the fault hooks (stack_internal.h) */
#endif
	return sum;
}

int conc__stack_offer(conc_stack *s, void *item, unsigned wait)
{
	struct snode *n = conc__nc_get();
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
	return conc__nc_pending_count(&s->pending);
}
