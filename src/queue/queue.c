/*
 * queue.c - unbounded MPMC FIFO queue: a Michael-Scott list of segments,
 * each an array of slots claimed with fetch-and-add (FAAArrayQueue,
 * Ramalhete & Correia 2016); segments reclaimed through an epoch domain.
 *
 * Why segments.  A one-node-per-item MS queue pays a CAS on a contended
 * tail plus an allocation per push and a CAS on head plus a retire per pop.
 * Here a push is one fetch-and-add on the tail segment's `enq` index and one
 * exchange on the claimed slot's word; a pop is one fetch-and-add on `deq`
 * and, when the item is already there, a plain load of the slot (an
 * exchange only to burn a slot whose pusher is late).  The MS algorithm (helping CAS on tail, CAS on head)
 * runs once per CONC__Q_SEG_SLOTS items, to link and unlink whole segments.
 *
 * Data.
 *   q->head, q->tail   segments; each on its own CONC_PAD line.
 *   s->cap, s->shift   slots in s: a power of two from 16 to CONC__Q_SEG_SLOTS
 *                      (= 16 << shift), fixed for the memory's life.
 *                      Single pushes link full-size segments, or (after a
 *                      smaller one) twice the size before; batches link
 *                      segments sized to the batch ("Batches" below).
 *   s->enq, s->deq     next slot index to claim for push / pop (each on its
 *                      own line).  enq also carries CONC__Q_CLOSED_BIT once
 *                      close reaches s, and CONC__Q_SEAL_BIT with an end
 *                      once a batch sealed s (alg_queue.h: the count is
 *                      bits 0..47, CONC__Q_COUNT).
 *   s->pending         the batch's first segment that sealed s, or is about
 *                      to: once s is sealed, the only segment that may be
 *                      linked after s.
 *   s->slot[SLOT(i)]   index i's slot, one word that is both state and
 *                      item: EMPTY (0) -> the item's word (push, a CAS) or
 *                      EMPTY -> TAKEN (1: a pop gave up on a slot whose
 *                      pusher had not arrived; that pusher's CAS fails
 *                      and it retries elsewhere, leaving TAKEN).  The pop
 *                      of index i reads the item and leaves the word as it
 *                      is (the index is its alone, I3).  Items popped are
 *                      never read again (destroy and is_empty start at
 *                      deq) and seg_reset clears them.
 *   escape bytes       items 0, 1 and 2 share their words with EMPTY, TAKEN
 *                      and the escape ESC (2): they are stored as ESC with
 *                      the item in a byte after the slots (alg_queue.h), so
 *                      every void * is an item, in PIE and non-PIE programs
 *                      alike.  SLOT(i) (CONC__Q_SLOT below) puts
 *                      consecutive indexes on different cache lines.
 *   s->next            NULL, the next segment, or CONC__Q_CLOSED_SEG (close sealed
 *                      the list: no segment can be linked after s).
 *
 * Invariants.
 *   I1 tail is head or a successor of head (head moves past h only after
 *      tail has left h; tail only moves to a successor).
 *   I2 a segment is linked only after its predecessor's enq reached its
 *      capacity, or after the predecessor was sealed (and then it is the
 *      predecessor's pending segment), so every index of every segment
 *      but the last below its end (capacity, or a seal's end) was claimed,
 *      and no index from a seal's end on holds an item.
 *   I3 a slot index is handed to one pusher and one popper at most
 *      (fetch-and-add); the pusher writes the slot word once, with a CAS
 *      from EMPTY, which decides between the two when the pop burns it.
 *      (A batch's slots are written before their segment is published,
 *      and its indexes handed to poppers only after.)
 *   I4 a segment is retired only after head and tail have both left it, so
 *      no new reader can reach it (epoch grace period => ABA-free reuse).
 *
 * Linearization points (grep LP: here and in queue/alg_queue.h, which
 * holds the push and pop loops).
 *   push       the CAS that turns the slot EMPTY -> item, or the CAS
 *              that links a new segment whose slot 0 already holds the item.
 *   pop        the acquire load of the slot that finds the item there (or,
 *              once the pop burns a late slot, its exchange that finds the
 *              item after all).
 *   pop-empty  the seq_cst load of enq that found deq >= enq, confirmed by a
 *              later load of next == NULL (a segment linked before the enq
 *              load would be seen: both are seq_cst); or the load of
 *              next == NULL after this popper claimed an index >= CONC__Q_SEG_SLOTS.
 *              At that point every completed push owns a slot already
 *              claimed by a popper; pending pops holding those slots will
 *              return those items and are ordered before the empty pop.
 *   push_n     the CAS that links the batch's first segment after the tail
 *              (the batch's or a helper's): all n items appear at once.
 *   Per-producer FIFO: a thread's pushes claim increasing indexes in one
 *   segment, later segments for later pushes (a batch's segments come
 *   after every segment the thread pushed into before).
 *
 * Batches (conc_queue_push_n; the burned-slot problem).  A batch cannot
 * claim k slots of the tail with one fetch-and-add: a pop may burn a slot
 * in the middle while the pusher is preempted, and then the batch is no
 * longer consecutive (nor all or nothing).  So a batch is written into
 * private segments (full-size ones, then one of the rest's size rounded up
 * to a power of two, >= 16; its spare room takes the pushes that follow),
 * and the first is linked after the tail segment t with one CAS.  When t
 * still has room it is sealed first, so that I2 holds and pops know where
 * t ends: unsealed, every unused slot of t would cost a pop SLOT_WAIT
 * rounds of waiting before it burned it.  (Pushes that land in t after the
 * link would not break linearizability: they read the tail before the
 * batch's pusher moved it past t, which it does before returning, so they
 * overlap the batch.)  The batch claims t->pending (CAS from NULL; a batch that finds another's there
 * helps that one instead and retries), then seals t with one CAS on enq
 * that sets CONC__Q_SEAL_BIT and copies the count into the end field.  In
 * the single order S the seal falls after the fetch-and-adds whose indexes
 * are below the end (those items precede the batch; a pusher still
 * between its claim and its CAS overlaps the batch, exactly as two single
 * pushes overlap) and before every later one, which sees the bit in its
 * own fetch-and-add (the word is far above any capacity: the fast path
 * pays nothing for it) and links t->pending itself before retrying, so
 * no pusher waits for a preempted batch.  Pops take t's end from the
 * word (conc__q_lim) and never wait on the slots past it; a pop that
 * claimed one (it read enq before the seal) finds it empty, reads enq
 * again and sees the seal.  A batch that meets close (CLOSED_BIT in t's
 * enq) on an unsealed t finishes close's CAS of t->next to
 * CONC__Q_CLOSED_SEG itself and looks again; on a sealed t (sealed for
 * some batch before close marked it) it settles t's next with link_after
 * - the sealed-for batch, or close's mark - and stays on t, because a
 * helper may have linked its batch there and moved the tail on already
 * (going round again from the new tail linked the batch after itself:
 * test_queue_push_n_helped_then_closed).  Its segments either got linked
 * before close marked the list's end or never will be: EPIPE, nothing
 * pushed, its segments back to the cache (a helper that still holds the
 * pointer can only fail its CAS on t->next).
 * ENOMEM: the segments are taken before anything is published.
 *
 * Memory a seal wastes.  A seal leaves t's slots from the end to its
 * capacity unused (8 bytes and one escape byte each) until t is drained
 * and recycled.  A single push links a segment at most twice the size of
 * the full one before it (back up to CONC__Q_SEG_SLOTS), a batch's own
 * segment has less than its size in spare room, and seg_get hands out a
 * segment of exactly the size asked for, never a larger cached one; so
 * when single pushes
 * and batches of n alternate, a seal wastes fewer than max(4n, 32)
 * slots (the seal of a full-size segment that singles grew back to can
 * waste up to 1023 slots, 8 KiB, but only after they filled the segment
 * before it), and batches alone of a power-of-two size >= 16 waste
 * nothing: each fills its segment, and the next links after it unsealed.
 * Everything stays bounded by the live items: a sealed segment's waste
 * is reclaimed with it.
 *
 * Close.  close sets CONC__Q_CLOSED_BIT in the last segment's enq (fetch_or) and
 * then CASes its next from NULL to CONC__Q_CLOSED_SEG; if a segment got linked
 * first, it repeats on that one.  A push sees the bit in the value its own
 * fetch-and-add returns (no extra load on the fast path) and fails with
 * EPIPE; a push that claimed a slot before the bit either publishes it
 * (and some pop takes it: pops reach every claimed slot) or finds it
 * burned by a pop and then meets the bit.  close does not wait for such
 * pushes: one may publish its item after close returned (it began before).
 * q->closed is set after the fetch_or, and every sleeper woken; a pop that
 * sees q->closed reads enq after the fetch_or (seq_cst), so it claims every
 * index up to it and either takes such an item or burns its slot (and that
 * push then fails with EPIPE): a pop that sees q->closed and then finds the
 * queue empty knows that no successful push can still add an item.
 *
 * Progress.  push, push_n, try_pop, try_pop_n, close, is_empty lock-free
 * (a batch is never waited for: whoever meets its seal links it): a push that loses its
 * slot lost it to a pop that claimed the index (system progress), a pop
 * that burns a slot spun CONC__Q_SLOT_WAIT rounds for its pusher first.
 * pop blocks only while the queue is empty (base/waitpop.h).
 *
 * Reclamation.  Every access to a segment is inside conc_epoch_pin.  A
 * drained segment is retired (intrusive conc_epoch_node, no allocation) and
 * comes back, after its grace period, to the queue's segment cache (a
 * push-only-CAS / take-all-exchange list, so no ABA) capped at SEG_CACHE_MAX;
 * so a queue in steady state calls neither malloc nor free (seg_get takes
 * the first cached segment large enough).  Retires also flush the domain
 * (one advance attempt per CONC__Q_SEG_SLOTS slots a thread retired),
 * so a segment is back within about GRACE retires.  Retired
 * segments hold a reference on the queue's memory (q->refs), so destroy
 * need not wait for grace periods: the last reference frees the cache.
 */
#include <errno.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "conc/queue.h"
#include "base/arch.h"
#include "base/atomics.h"
#include "base/chain.h"
#include "base/chaos.h"
#include "base/clock.h"
#include "base/check.h"
#include "epoch/epoch_internal.h"
#include "queue/queue_internal.h"
#include "base/fault.h"
#include "base/mutant.h"
#include "base/pad.h"
#include "base/park.h"
#include "base/waitpop.h"

#define CONC__Q_SEG_SLOTS 1024
#define SEG_CACHE_MAX 8
#define CONC__Q_SLOT_WAIT 128 /* pop's wait for a late pusher */

/* Index i's slot position in a segment of capacity cap = 16 << shift:
 * (i mod 16) * (cap / 16) + i / 16.  The two cores push (and pop) at the
 * same time, at neighbouring indexes; slots in index order would put 8 of
 * them on one 64-byte line, so each push would pull the line the other
 * core's push just wrote (false sharing).  Remapped, 16 consecutive indexes
 * land on 16 different lines of a full-size segment (i and i + 16 share
 * one), as in the cache remap of the SCQ and LCRQ papers.  Every access to
 * index i goes through it, the walks in index order (destroy's FIFO drop,
 * is_empty) included.  A permutation of [0, cap) for every power of two
 * cap >= 16 (seg_get rounds up to one). */
#define CONC__Q_SLOT(s, i) ((((i) & 15) << (s)->shift) | ((i) >> 4))
#define CONC__Q_CAP(s) ((uint_fast64_t)(s)->cap)
/* A single push that links a segment after a smaller one (a batch's)
 * doubles the capacity, back up to CONC__Q_SEG_SLOTS: see "Batches". */
#define CONC__Q_NEXT_CAP(t) ((t)->cap >= CONC__Q_SEG_SLOTS ? CONC__Q_SEG_SLOTS : 2 * (t)->cap)
/* The escape bytes follow the slots (the segment is allocated for its
 * capacity). */
#define CONC__Q_ESC_AT(s, p) (((unsigned char *)&(s)->slot[(s)->cap])[p])
#define SEG_MIN_SLOTS 16
_Static_assert((CONC__Q_SEG_SLOTS & (CONC__Q_SEG_SLOTS - 1)) == 0 && CONC__Q_SEG_SLOTS >= 16,
	       "CONC__Q_SLOT needs power-of-two capacities of at least 16");

struct seg {
	CONC_ALIGNED atomic_uint_fast64_t enq;
	/* Contention pacing (below): the producer that streams into this
	 * segment while others back off, and the last index it took.  On
	 * enq's line, which the push's fetch-and-add has just made this
	 * core's own: reading and writing them costs no further miss. */
	_Atomic(uintptr_t) owner;
	atomic_uint_fast64_t owner_at;
	/* A batch that sealed this segment (or is about to): the segment that
	 * must follow it.  Reset with the segment. */
	_Atomic(struct seg *) pending;
	/* Slots (a power of two) and log2(cap / 16): fixed for the memory's
	 * life, set before the segment is first published. */
	uint32_t cap, shift;
	CONC_ALIGNED atomic_uint_fast64_t deq;
	CONC_ALIGNED _Atomic(struct seg *) next;
	struct seg *cache_next; /* link in q->cache; owned by whoever holds s */
	conc_queue *q;
	conc_epoch_node enode;
	/* cap slot words, then cap escape bytes (the items 0..2 of slots whose
	 * word is CONC__Q_ESC; read only there, never reset: written before
	 * that word is) */
	CONC_ALIGNED _Atomic(uintptr_t) slot[];
};

struct conc_queue {
	CONC_ALIGNED _Atomic(struct seg *) head;
	CONC_ALIGNED _Atomic(struct seg *) tail;
	/* read-mostly: the domain, the closed flag, the sleepers' count */
	CONC_ALIGNED conc_epoch *d;
	CONC__LIFE_FIELD /* debug-checks builds: alive or dead (base/check.h) */
	atomic_bool closed;
	conc__park park;
	/* segment cache and the references that keep it alive */
	CONC_ALIGNED _Atomic(struct seg *) cache;
	atomic_uint ncached;
	atomic_size_t refs;
};

/*
 * Contention pacing.  On two cores, producers that push back to back into
 * one queue pull enq's line from each other on every push: five threads
 * that fill 5M items in ~40 ms on one core take ~120 ms on two.  The cure
 * is to let one core stream while the other waits, but a producer that
 * does work between pushes must not wait for anything.  So each thread
 * looks at its own pushes in windows of PACE_WINDOW (a counter in its
 * thread-local state; nothing shared): at the end of a window it reads the
 * clock once and calls itself hot when the window was tight (under
 * PACE_TIGHT_NS a push on average, its own waiting left out) and others
 * pushed in between (enq moved by more than half again the window).  Only
 * a hot thread looks at the segment's owner after its push: the owner (or
 * a thread that finds no owner, or one silent for PACE_STALE indexes)
 * stamps its index and goes on; any other waits PACE_WAIT_NS, so the owner
 * streams with enq's line to itself.  A producer that pushes now and then,
 * or alone, never turns hot and pays a counter a push and one clock read
 * every PACE_WINDOW pushes.  None of it is a synchronisation: every access
 * is relaxed, a stale or torn view only misjudges a wait, and the wait is
 * bounded, so every guarantee of the queue (and lock-freedom) is untouched.
 */
#define PACE_WINDOW 64
#ifndef PACE_TIGHT_NS /* -D overrides: for tuning runs */
#define PACE_TIGHT_NS 100
#endif
#ifndef PACE_STALE
#define PACE_STALE 32
#endif
#ifndef PACE_WAIT_NS
#define PACE_WAIT_NS 300
#endif

struct q_pace {
	int left;	   /* pushes until pace_slow runs: 1 while hot (0 at first) */
	unsigned n;	   /* pushes in this window */
	bool hot;
	struct seg *s;	   /* the segment of the window's first push */
	uint_fast64_t i0;  /* its index */
	uint64_t t0;	   /* the clock then */
	uint64_t waited;   /* ns spent waiting in this window */
};
static _Thread_local struct q_pace q_pace CONC__TLS_IE;
/* Off: no thread turns hot (bench and tests compare both ways in one run;
 * conc__queue_set_pacing).  Read once a window. */
static atomic_bool pace_off;

/* The end of a window: hot or not from now on. */
static void pace_window(struct q_pace *pc, struct seg *t, uint_fast64_t i)
{
	uint64_t now = conc__now_ns();
	if (pc->s == t && i > pc->i0) {
		uint64_t dt = now - pc->t0 - pc->waited;
		bool tight = dt < (uint64_t)PACE_WINDOW * PACE_TIGHT_NS;
		bool shared = i - pc->i0 > PACE_WINDOW + PACE_WINDOW / 2;
		/* the owner streams alone, so its windows look unshared:
		 * it stays hot while it owns the segment */
		bool owner = atomic_load_explicit(&t->owner, memory_order_relaxed) ==
			     (uintptr_t)pc;
		pc->hot = tight && (shared || owner) &&
			  !atomic_load_explicit(&pace_off, memory_order_relaxed);
	}
	pc->s = t;
	pc->i0 = i;
	pc->t0 = now;
	pc->waited = 0;
	pc->n = 0;
}

/* A hot thread after its push: stamp as the owner, or wait for it. */
static void pace_contended(struct q_pace *pc, struct seg *t, uint_fast64_t i)
{
	/* relaxed, all: a heuristic (see above) */
	uintptr_t o = atomic_load_explicit(&t->owner, memory_order_relaxed);
	uint_fast64_t at = atomic_load_explicit(&t->owner_at, memory_order_relaxed);
	if (o == (uintptr_t)pc || o == 0 || i - at > PACE_STALE) {
		if (o != (uintptr_t)pc)
			atomic_store_explicit(&t->owner, (uintptr_t)pc, memory_order_relaxed);
		atomic_store_explicit(&t->owner_at, i, memory_order_relaxed);
		return;
	}
	uint64_t start = conc__now_ns(), now;
	do {
		for (int k = 0; k < 16; k++)
			conc__cpu_relax();
		now = conc__now_ns();
	} while (now - start < PACE_WAIT_NS);
	pc->waited += now - start;
}

/* Every PACE_WINDOW-th push of a cool thread, every push of a hot one. */
static __attribute__((noinline)) void pace_slow(struct seg *t, uint_fast64_t i)
{
	struct q_pace *pc = &q_pace;
	pc->n += pc->hot ? 1 : PACE_WINDOW;
	if (pc->n >= PACE_WINDOW)
		pace_window(pc, t, i);
	if (pc->hot)
		pace_contended(pc, t, i);
	pc->left = pc->hot ? 1 : PACE_WINDOW;
}

/* The fast path: one decrement of a thread-local counter. */
static inline __attribute__((always_inline)) void pace_pushed(struct seg *t, uint_fast64_t i)
{
	if (conc__unlikely(--q_pace.left <= 0))
		pace_slow(t, i);
}
#define CONC__Q_PUSHED(t, i) pace_pushed((t), (i))

/* The push and pop loops live in queue/alg_queue.h (shared with the
 * Relacy model); it needs these three from this file. */
static struct seg *seg_get(conc_queue *q, uint_fast64_t cap);
static void seg_put(conc_queue *q, struct seg *s);
static void seg_retire(conc_queue *q, struct seg *s);
#define CONC__Q_TEST_POINT(name) conc__test_point(name)
#include "queue/alg_queue.h"

/* ---- segments ---------------------------------------------------------- */

static void seg_reset(struct seg *s)
{
	/* Plain initialisation: s is private to this thread (fresh, or past its
	 * grace period); the release/seq_cst CAS that links it publishes it. */
	atomic_store_explicit(&s->enq, 0, memory_order_relaxed);
	atomic_store_explicit(&s->deq, 0, memory_order_relaxed);
	atomic_store_explicit(&s->owner, 0, memory_order_relaxed);
	atomic_store_explicit(&s->owner_at, 0, memory_order_relaxed);
	atomic_store_explicit(&s->pending, NULL, memory_order_relaxed);
	atomic_store_explicit(&s->next, NULL, memory_order_relaxed);
	/* Every slot back to CONC__Q_EMPTY (0): a reused segment's words are
	 * the items its pops read and left, or TAKEN.  8 bytes per slot,
	 * once per use of the segment; the pushes write these lines anyway. */
	if (s->cap == CONC__Q_SEG_SLOTS) /* a constant size: gcc inlines it */
		memset((void *)s->slot, 0, CONC__Q_SEG_SLOTS * sizeof s->slot[0]);
	else
		memset((void *)s->slot, 0, (size_t)s->cap * sizeof s->slot[0]);
}

/* The segment cache is a push-only list taken whole by seg_get's acquire
 * exchange (base/chain.h has the argument): the release CAS publishes the
 * chain's cache_next links and the segments' reset. */
static void cache_push(conc_queue *q, struct seg *first, struct seg *last)
{
	CONC__CHAIN_PUSH(&q->cache, first, last, cache_next);
}

/* A segment for q with at least cap slots (rounded up to a power of two,
 * SEG_MIN_SLOTS..CONC__Q_SEG_SLOTS): from the cache, else fresh; NULL on
 * ENOMEM. */
static struct seg *seg_get(conc_queue *q, uint_fast64_t cap)
{
	uint32_t shift = 0;
	while (((uint_fast64_t)SEG_MIN_SLOTS << shift) < cap)
		shift++;
	cap = (uint_fast64_t)SEG_MIN_SLOTS << shift;
	/* acquire: pairs with cache_push's release; take-all, so no ABA. */
	struct seg *s = atomic_exchange_explicit(&q->cache, NULL, memory_order_acquire);
	if (s) {
		/* the first one of exactly that size, which the waste bound
		 * ("Memory a seal wastes" above) counts on: a batch of 2
		 * handed a full-size segment had the next batch seal it with
		 * 1,000 slots unused (review F2); the rest go back */
		struct seg **at = &s;
		while (*at && (*at)->cap != cap)
			at = &(*at)->cache_next;
		struct seg *got = *at;
		if (got)
			*at = got->cache_next;
		if (s) {
			struct seg *last = s;
			while (last->cache_next)
				last = last->cache_next;
			cache_push(q, s, last);
		}
		s = got;
		if (s) /* relaxed: the count only bounds the cache's size */
			atomic_fetch_sub_explicit(&q->ncached, 1, memory_order_relaxed);
	}
	if (!s) {
		s = conc__aligned_alloc("queue.segment", CONC_PAD,
					sizeof *s + (size_t)cap * (sizeof s->slot[0] + 1));
		if (!s)
			return NULL;
		s->q = q;
		s->cap = (uint32_t)cap;
		s->shift = shift;
	}
	seg_reset(s);
	return s;
}

/* Give back a segment that is not reachable by anyone. */
static void seg_put(conc_queue *q, struct seg *s)
{
	/* Chaos mode: a reader still in s (a grace-period bug) reads garbage. */
	if (conc__unlikely(conc__chaos())) {
		/* q and the capacity are what a cached segment keeps */
		uint32_t cap = s->cap, shift = s->shift;
		conc__chaos_poison(s, sizeof *s + (size_t)cap * (sizeof s->slot[0] + 1));
		s->q = q;
		s->cap = cap;
		s->shift = shift;
	}
	/* Small (batch) segments take at most half the cache, so that a phase
	 * of batches cannot leave it full of segments that single pushes never
	 * take (each of theirs would then be a malloc and a free: review F3).
	 * relaxed: a bound, not a synchronisation */
	unsigned lim = s->cap == CONC__Q_SEG_SLOTS ? SEG_CACHE_MAX : SEG_CACHE_MAX / 2;
	if (atomic_fetch_add_explicit(&q->ncached, 1, memory_order_relaxed) < lim) {
		cache_push(q, s, s);
	} else {
		atomic_fetch_sub_explicit(&q->ncached, 1, memory_order_relaxed);
		free(s);
	}
}

static void queue_free_memory(conc_queue *q)
{
	struct seg *s = atomic_load_explicit(&q->cache, memory_order_acquire);
	while (s) {
		struct seg *n = s->cache_next;
		free(s);
		s = n;
	}
	CONC__LIFE_FREE(q); /* debug-checks builds: quarantined, already dead */
}

static void queue_unref(conc_queue *q)
{
	/* acq_rel: the last owner sees every cache_push of the others */
	if (atomic_fetch_sub_explicit(&q->refs, 1, memory_order_acq_rel) == 1)
		queue_free_memory(q);
}

/* Epoch callback: the grace period of a retired segment is over. */
static void seg_reclaim(conc_epoch_node *n)
{
	struct seg *s = (struct seg *)(void *)((char *)n - offsetof(struct seg, enode));
	conc_queue *q = s->q;
	seg_put(q, s);
	queue_unref(q);
}

/* ---- create / destroy -------------------------------------------------- */

int conc_queue_create_in(conc_queue **out, conc_epoch *d)
{
	if (!out || !d || !CONC__EPOCH_ALIVE(d))
		return EINVAL;
	conc_queue *q = conc__aligned_alloc("queue.create", CONC_PAD, sizeof *q);
	if (!q)
		return ENOMEM;
	memset(q, 0, sizeof *q);
	atomic_init(&q->cache, NULL);
	atomic_init(&q->ncached, 0);
	atomic_init(&q->refs, 1);
	struct seg *s = seg_get(q, CONC__Q_SEG_SLOTS);
	if (!s) {
		free(q);
		return ENOMEM;
	}
	atomic_init(&q->head, s);
	atomic_init(&q->tail, s);
	q->d = d;
	atomic_init(&q->closed, false);
	conc__park_init(&q->park);
	CONC__LIFE_SET(q, CONC__LIFE_QUEUE);
	CONC__EPOCH_USERS_ADD(d, 1);
	*out = q;
	return 0;
}

int conc_queue_create(conc_queue **out)
{
	return conc_queue_create_in(out, conc_epoch_global());
}

static struct seg *next_of(struct seg *s)
{
	struct seg *n = atomic_load_explicit(&s->next, memory_order_acquire);
	return n == CONC__Q_CLOSED_SEG ? NULL : n;
}

void conc_queue_destroy(conc_queue *q, void (*drop)(void *item))
{
	if (!q)
		return;
	CONC__LIFE_ABORT(q, CONC__LIFE_QUEUE, "conc_queue_destroy");
	/* relaxed: a thread blocked in a pop registered itself before it
	 * slept; one that has returned is ordered before this call */
	CONC__MISUSE_IF(atomic_load_explicit(&q->park.waiters, memory_order_relaxed) != 0,
			"conc_queue_destroy",
			"a thread is blocked in a pop of this queue (destroy while in use)");
	CONC__LIFE_SET(q, CONC__LIFE_DEAD); /* its memory may outlive this call */
	CONC__EPOCH_USERS_ADD(q->d, -1);
	/* Not concurrent with anything: relaxed loads see the final values. */
	struct seg *s = atomic_load_explicit(&q->head, memory_order_acquire);
	while (s) {
		struct seg *n = next_of(s);
		uint_fast64_t d = atomic_load_explicit(&s->deq, memory_order_relaxed);
		uint_fast64_t ew = atomic_load_explicit(&s->enq, memory_order_relaxed);
		uint_fast64_t e = CONC__Q_COUNT(ew);
		if (e > conc__q_lim(s, ew))
			e = conc__q_lim(s, ew);
		/* In index order (FIFO).  No pop claimed [d, e): a slot there
		 * holds an item (ESC: in esc), or is EMPTY (a push refused by
		 * close claimed it); TAKEN is skipped all the same. */
		for (uint_fast64_t i = d; drop && i < e; i++) {
			uintptr_t w = atomic_load_explicit(&s->slot[CONC__Q_SLOT(s, i)],
							   memory_order_relaxed);
			if (w != CONC__Q_EMPTY && w != CONC__Q_TAKEN)
				drop(conc__q_item(s, CONC__Q_SLOT(s, i), w));
		}
		conc__chaos_poison(s, sizeof *s);
		free(s);
		s = n;
	}
	queue_unref(q);
}

/* ---- push -------------------------------------------------------------- */

int conc_queue_push(conc_queue *q, void *item)
{
	/* A NULL q is the caller's bug, reported as EINVAL (the headers'
	 * uniform rule): one test and a branch predicted not taken, before
	 * anything is touched. */
	if (conc__unlikely(!q))
		return EINVAL;
	CONC__LIFE_RETURN(q, CONC__LIFE_QUEUE);
#if CONC__MUTANT(6) /* mutant 6: the wake-up goes out before the item is published */
	conc__park_notify_one(&q->park);
#endif
	conc_epoch_pin(q->d);
	int err = conc__q_push(q, item);
	conc_epoch_unpin(q->d);
	if (CONC__MUTANT_VALUE(6, !err, false))
		conc__park_notify_one(&q->park);
	return err;
}

/* Give back a chain of never-published segments (first .. NULL). */
static void put_chain(conc_queue *q, struct seg *s)
{
	while (s) {
		struct seg *n = atomic_load_explicit(&s->next, memory_order_relaxed);
		seg_put(q, s);
		s = n;
	}
}

int conc_queue_push_n(conc_queue *q, void *const *items, size_t n)
{
	if (conc__unlikely(!q))
		return EINVAL;
	if (n == 0)
		return 0;
	if (!items)
		return EINVAL;
	CONC__LIFE_RETURN(q, CONC__LIFE_QUEUE);
	/* The batch's segments, filled while private: full-size ones, then
	 * one of the rest's size rounded up to a power of two (its room takes
	 * the pushes that follow).  relaxed (all): the link CAS (or the
	 * release CAS of pending) publishes them. */
	struct seg *first = NULL, *last = NULL;
	for (size_t k = 0; k < n;) {
		size_t m = n - k < CONC__Q_SEG_SLOTS ? n - k : CONC__Q_SEG_SLOTS;
		struct seg *s = seg_get(q, m);
		if (!s) {
			put_chain(q, first); /* nothing was published */
			return ENOMEM;
		}
		for (size_t j = 0; j < m; j++) {
			uint_fast64_t pos = CONC__Q_SLOT(s, j);
			atomic_store_explicit(&s->slot[pos],
					      conc__q_word(s, pos, (uintptr_t)items[k + j]),
					      memory_order_relaxed);
		}
		atomic_store_explicit(&s->enq, m, memory_order_relaxed);
		if (last)
			atomic_store_explicit(&last->next, s, memory_order_relaxed);
		else
			first = s;
		last = s;
		k += m;
	}
	conc_epoch_pin(q->d);
	int err = conc__q_link_batch(q, first, last);
	conc_epoch_unpin(q->d);
	if (err) {
		put_chain(q, first); /* never linked: EPIPE */
		return err;
	}
	if (n == 1)
		conc__park_notify_one(&q->park);
	else
		conc__park_notify_all(&q->park);
	return 0;
}

/* ---- pop --------------------------------------------------------------- */

/* Slots of the segments this thread retired since its last flush. */
static _Thread_local uint32_t q_retired_slots CONC__TLS_IE;

/* h left the list (conc__q_advance_head): back to the cache after its
 * grace period. */
static void seg_retire(conc_queue *q, struct seg *h)
{
	/* relaxed: only read for the check; head and tail move forward only,
	 * so once both have left h neither is ever h again. */
	CONC__CHECK(atomic_load_explicit(&q->head, memory_order_relaxed) != h &&
			    atomic_load_explicit(&q->tail, memory_order_relaxed) != h,
		    "queue I4: a segment is retired only after head and tail have left it");
#if CONC__MUTANT(2) /* mutant 2: freed at once instead of retired */
	free(h);
	return;
#endif
	/* relaxed: the retire below is what orders the callback */
	atomic_fetch_add_explicit(&q->refs, 1, memory_order_relaxed);
	conc_epoch_retire(q->d, &h->enode, seg_reclaim);
	/* A full-size segment retires once per CONC__Q_SEG_SLOTS pops, far
	 * below the epoch's own advance cadence: ask for an advance now, so
	 * segments come back to the cache within a few retires.  Smaller
	 * (batch) segments retire more often: this thread asks once its
	 * retires add up to CONC__Q_SEG_SLOTS slots, the same cadence. */
	q_retired_slots += h->cap;
	if (q_retired_slots >= CONC__Q_SEG_SLOTS) {
		q_retired_slots = 0;
		conc_epoch_flush(q->d);
	}
}

/* try_pop's answer to a NULL item, out of line (see there why). */
static __attribute__((noinline, cold)) bool refuse_null_item(void)
{
	return false;
}

/* try_pop without the argument checks: the blocking pops call it in their
 * loops, having checked once.  Inlined into conc_queue_try_pop too, where a
 * call would cost a jump on top of the checks. */
static inline __attribute__((always_inline)) bool queue_try_pop(conc_queue *q, void **item)
{
	conc_epoch_pin(q->d);
	bool got = conc__q_try_pop(q, item);
	conc_epoch_unpin(q->d);
	return got;
}

bool conc_queue_try_pop(conc_queue *q, void **item)
{
	/* Nothing taken (see push for the cost).  Two tests with different
	 * targets: gcc 12 joins two that both return false into a sete/or
	 * sequence and a longer prologue (5 more instructions a pop). */
	if (conc__unlikely(!q))
		return false;
	if (conc__unlikely(!item))
		return refuse_null_item();
	CONC__LIFE_ABORT(q, CONC__LIFE_QUEUE, "conc_queue_try_pop");
	return queue_try_pop(q, item);
}

size_t conc_queue_try_pop_n(conc_queue *q, void **items, size_t max)
{
	if (!q || !items || max == 0)
		return 0;
	CONC__LIFE_ABORT(q, CONC__LIFE_QUEUE, "conc_queue_try_pop_n");
	conc_epoch_pin(q->d);
	size_t got = conc__q_try_pop_n(q, items, max);
	conc_epoch_unpin(q->d);
	return got;
}

static bool waitpop_try(void *c, void **item)
{
	return queue_try_pop(c, item);
}

static bool waitpop_closed(void *c)
{
	/* seq_cst: read after the sleeper's prepare fence; pairs with
	 * close's seq_cst store (park.h protocol) */
	return atomic_load_explicit(&((conc_queue *)c)->closed, memory_order_seq_cst);
}

static const conc__waitpop_ops queue_waitpop = {waitpop_try, waitpop_closed};

int conc_queue_pop(conc_queue *q, void **item)
{
	if (!q || !item)
		return EINVAL;
	CONC__LIFE_RETURN(q, CONC__LIFE_QUEUE);
	return conc__waitpop(q, &queue_waitpop, &q->park, item, false, 0);
}

int conc_queue_pop_timeout(conc_queue *q, void **item, uint64_t timeout_ns)
{
	if (!q || !item)
		return EINVAL;
	CONC__LIFE_RETURN(q, CONC__LIFE_QUEUE);
	return conc__waitpop(q, &queue_waitpop, &q->park, item, true, timeout_ns);
}

/* ---- close, is_empty ----------------------------------------------------- */

void conc_queue_close(conc_queue *q)
{
	if (!q)
		return;
	CONC__LIFE_ABORT(q, CONC__LIFE_QUEUE, "conc_queue_close");
	conc_epoch_pin(q->d);
	conc__q_mark_end(q); /* the marks: see there */
	conc_epoch_unpin(q->d);
	/* seq_cst: the publishing write of park.h's protocol */
	atomic_store_explicit(&q->closed, true, memory_order_seq_cst);
	conc__park_notify_all(&q->park);
}

bool conc_queue_is_empty(conc_queue *q)
{
	bool empty = true;
	if (!q)
		return empty; /* holds no item */
	CONC__LIFE_ABORT(q, CONC__LIFE_QUEUE, "conc_queue_is_empty");
	conc_epoch_pin(q->d);
	struct seg *s = atomic_load_explicit(&q->head, memory_order_acquire);
	while (s && empty) {
		uint_fast64_t d = atomic_load_explicit(&s->deq, memory_order_seq_cst);
		uint_fast64_t ew = atomic_load_explicit(&s->enq, memory_order_seq_cst);
		uint_fast64_t e = CONC__Q_COUNT(ew);
		if (e > conc__q_lim(s, ew))
			e = conc__q_lim(s, ew);
		for (uint_fast64_t i = d; i < e; i++) {
			/* relaxed: a snapshot; nothing is read through it */
			uintptr_t w = atomic_load_explicit(&s->slot[CONC__Q_SLOT(s, i)],
							   memory_order_relaxed);
			if (w != CONC__Q_EMPTY && w != CONC__Q_TAKEN) {
				empty = false;
				break;
			}
		}
		s = next_of(s);
	}
	conc_epoch_unpin(q->d);
	return empty;
}

/* ---- internal hooks (tests, bench) -------------------------------------- */

unsigned conc__queue_sleepers(conc_queue *q)
{
	return atomic_load_explicit(&q->park.waiters, memory_order_seq_cst);
}

void conc__queue_set_pacing(bool on)
{
	atomic_store_explicit(&pace_off, !on, memory_order_relaxed);
}

unsigned conc__queue_segment_slots(void)
{
	return CONC__Q_SEG_SLOTS;
}

void conc__queue_reserved_words(uintptr_t out[2])
{
	out[0] = CONC__Q_TAKEN;
	out[1] = CONC__Q_ESC;
}
