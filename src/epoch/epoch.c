/*
 * epoch.c - epoch-based reclamation (conc/epoch.h).
 *
 * Algorithm: Fraser's EBR as crossbeam-epoch runs it (a global epoch E, one
 * record per thread holding "pinned at e", advance from e to e+1 only when
 * every pinned record shows e), with the reader-side full fence replaced by
 * an asymmetric pair: pin is a plain store plus a compiler barrier, and the
 * (rare) advance calls membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED), which
 * runs a full barrier on every CPU that runs one of our threads - the
 * liburcu-memb / folly asymmetric-fence technique.  Where membarrier is
 * missing (old kernels, valgrind, seccomp) or CONC_EPOCH_FENCES=1 is set, pin
 * issues a real seq_cst fence and advance a plain one: the same proof, with
 * the virtual fences below made real.
 *
 * State.
 *   d->epoch            E, only ever incremented, by one CAS per advance.
 *   rec->state          (e mod 2^32) << 32 | depth: pinned iff depth != 0,
 *                       having read E = e at the outermost pin.  Only the
 *                       low 32 bits of e are kept: a record published in
 *                       time is at most one epoch behind E, and one whose
 *                       store was delayed is only mistaken for current if
 *                       exactly a multiple of 2^32 advances (hours of them)
 *                       passed between its load of E and its store.
 *   rec->bags[e & 3]    the record's retired nodes tagged e; each node also
 *                       carries its tag in node->epoch, so a list taken by
 *                       another thread (barrier, destroy, thread exit) keeps
 *                       its tags.  Only the owner pushes, with plain stores
 *                       (see "Bags" below).
 *   rec->ops, steal     the bag handshake: 2 x retires (+1 inside a bag
 *                       op), written by the owner; thieves asking.
 *   d->orphans          nodes whose owner left (thread exit, a record evicted
 *                       for another domain, a barrier's steal, retire from the
 *                       shared path); anyone who collects runs the due ones.
 *
 * Grace period (why a node tagged t may run once E >= t + 3).
 *   Model membarrier as a full fence H in the advancing thread that also
 *   places a full fence V_T into every other thread T's instruction stream,
 *   at whatever point T has reached (a running CPU takes an IPI; a
 *   descheduled thread passed a context switch).  Let W unlink node X (store
 *   U), then read E = t as its tag (load R).  Let Adv_k be the advance that
 *   writes E = k; it loads E = k-1, runs H_k, scans, then writes k.
 *   (1) U is visible to every access after any V_W of H_{t+2}.  If V_W of
 *       H_{t+2} fell before U in W's program, R would come after it too; but
 *       Adv_{t+2} read E = t+1 before H_{t+2}, so the write of t+1 was
 *       visible before V_W and R would read at least t+1 - not t.  So U
 *       precedes V_W, and the barrier makes it visible to everything after
 *       H_{t+2}, and to every thread's accesses after its own V of H_{t+2}.
 *   (2) A reader R that loads a pointer to X (seeing the value before U)
 *       must do that load before its V_R of H_{t+2} (by (1)), hence its pin
 *       store P, earlier still, is visible to the scan of Adv_{t+2}: R is
 *       seen pinned, and since Adv_{t+2} succeeded, R is pinned at t+1.
 *   (3) Adv_{t+3} needs every pinned record at t+2, so it cannot happen
 *       while R stays in that critical section.  Hence when E >= t+3, no
 *       reader that could have reached X is still pinned.  The reader's
 *       accesses to X happen-before the free: its unpin is a release store
 *       that the scan of Adv_{t+3} (or a later one) reads with acquire, and
 *       the collector reads E >= t+3 with acquire from that advance.
 *   In fence mode pin and advance use seq_cst fences, and (1)-(3) hold
 *   with V_T replaced by the reader's own fence (crossbeam's proof; the
 *   third epoch is then one more than needed).  A reader that read a stale E
 *   only holds advances back longer: it cannot make one succeed early.
 *
 * Linearization: a pin takes effect at its store to rec->state (LP: pin);
 *   an advance at its store to d->epoch (LP: advance).
 * Progress: pin/unpin are wait-free after the thread's first use of the
 *   domain (registration takes d->lock once); retire is lock-free; advance
 *   uses trylock and never waits; barrier and destroy block.
 *
 * Registration.  Records live in thread-local storage (REC_SLOTS per
 * thread), so a pin never needs memory.  A record is linked into its
 * domain's list under d->lock (a rwlock, written); scanners hold it for
 * reading, so a record is never read after its thread exits (the exit
 * handler unlinks it under the write lock).  A thread already pinned in
 * REC_SLOTS other domains (or holding all its records in operations that
 * run callbacks) uses the shared path (see shared_pin): counters that hold
 * every advance back while non-zero (slower, needs no memory).
 * registry_lock orders thread exit against conc_epoch_destroy: whichever
 * comes first detaches the record, and the other sees it gone.  A record
 * dropped by another thread goes back to its owner through the slot
 * handover (rec_set_free).  An operation that runs callbacks holds its
 * record (rec_hold), so that a callback's registrations elsewhere cannot
 * evict it.
 *
 * Bags: an owner-private push, reachable through a handshake.  A retire
 * pushes onto its own record's bag without a locked instruction; the rare
 * thieves - barrier's steal_all and help_others, on other threads -
 * exclude that push by an asymmetric handshake (epoch/alg_epoch.h,
 * conc__ebr_own_* and conc__ebr_steal_*), the same store-load pair as pin
 * against the advance.  Every other taker of a record's bags is not
 * concurrent with a push: drop_record runs under d->lock written, which
 * excludes the thieves (they hold it read from ask to done), and its
 * caller is the owner (thread exit, eviction: not inside a bag op), or
 * runs when the owner may not use d any more (destroy), or no longer
 * exists (fork's child: a push cut off by fork is lost or complete, as a
 * CAS would have been); the owner's own takes (collect_own, open_bag) lie
 * outside its bag ops.
 *   States, per record: ops even (owner outside a bag op) or odd (inside);
 *   steal 0 or not.  Edges:
 *     owner  even -> odd: ops = w+1 (release); light barrier; load steal
 *              (acquire).  0: plain push (relaxed load of head, n->next,
 *              relaxed store of head).  Else: CAS push (release).
 *            odd -> even: ops = w+2 (release).  Never waits.
 *     thief  steal += 1 (relaxed, under d->lock read); heavy barrier H;
 *            w0 = ops (acquire); wait until ops is even or != w0 (barrier:
 *            the owner is a few instructions from its exit) or give the
 *            record up (help_others); take (exchange); steal -= 1 (release).
 *   Claim: no take falls between the plain load and store of one push P.
 *   Let V be the full barrier H places in the owner's stream (as in the
 *   grace-period proof), A the ask, L the look, S1/R/S3 P's enter store,
 *   steal load and exit store.
 *   (a) V before S1: R comes after V, and H ordered A before V, so R reads
 *       A or a later value of steal.  Nonzero: P uses the CAS, atomic
 *       against the exchange.  Zero: R read a done (release; the count's
 *       RMWs form one release sequence), so the take happens-before P's
 *       load of head, which reads the take's NULL or later.
 *   (b) V after S1: S1 is visible to L, so L reads w+1 or later; the thief
 *       takes only after reading a value after w+1: S3, or a later op's
 *       S1' or S3' - all release stores sequenced after P, read with
 *       acquire: P happens-before the take.  (A later op P' whose S1' the
 *       thief reads mid-op is in case (a): L read w+1 < S1', so S1' came
 *       after V, and P' pushes with the CAS.)
 *   So P and a take are ordered one way or the other, or P is a CAS; the
 *   plain pair is never split (no node lost, none taken twice).  Fields:
 *   a take that returns a plainly pushed node is in case (b) for its push,
 *   so everything the owner wrote before (the node's next, fn, epoch,
 *   earlier pushes) happens-before the take; a CAS-pushed head is read by
 *   the exchange (release/acquire).  barrier: a retire that returned
 *   before the call ended its op before H, so the look reads its S3 or
 *   later and the exchange sees the node (or a holder took it first -
 *   "Holders" below); an idle owner is outside a bag op and is taken from
 *   at once.  help_others skips an owner inside a bag op.  Fence mode
 *   (no membarrier): the owner's light barrier and the thief's H are
 *   seq_cst fences, and (a)/(b) are the two outcomes the fence rules allow
 *   of this store-buffering pair; the fast path is never armed there, so
 *   only retire_slow pushes, with the fence.  tests/models/relacy_retire.cc
 *   runs these functions (fence mode) with a blocking and a giving-up
 *   thief; mutant 12 (the owner ignores steal) is caught there.
 *   ThreadSanitizer: the heavy barrier (and a fence) only decides which
 *   values the handshake's atomics read; every edge that publishes plain
 *   data (a node's fields) is a release/acquire pair TSan sees (exit store
 *   and look, CAS and exchange, done and the owner's load), so the
 *   handshake needs no __tsan_acquire/__tsan_release annotation.
 *   Invariant: every node in a bag carries the bag's tag (the owner pushes
 *   a node tagged t only into a bag tagged t, and retags a bag only after
 *   taking its list), so the owner runs its due bags without a per-node
 *   test (run_owned); lists taken by others still go through run_due.
 *
 * Holders, for barrier.  A thread that takes nodes out of a shared list (to
 * run them, or to move them to the orphans) is a holder until it has run
 * them or put them back: it bumps d->holders before the take, and d->handoffs
 * then drops d->holders after.  barrier first advances until every node
 * retired before it is due, then steals every list and runs what it took,
 * and repeats until one steal ran with no holder active and none finishing
 * (holders = 0 before and after, handoffs unchanged): then no node retired
 * before the call can still sit in a list or in another thread's hands.
 * Optional collections step aside while a barrier runs (d->barriers), so a
 * busy domain cannot keep a barrier looping.
 */
#include <errno.h>
#include <limits.h>
#include <linux/membarrier.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "conc/epoch.h"
#include "epoch/alg_epoch.h"
#include "base/arch.h"
#include "base/atfork.h"
#include "base/atomics.h"
#include "base/chain.h"
#include "base/chaos.h"
#include "base/check.h"
#include "base/clock.h"
#include "base/fault.h"
#include "epoch/epoch_internal.h"
#include "base/mutant.h"
#include "base/pad.h"

#define REC_SLOTS 8        /* records per thread (domains pinned at once) */
#define OVF_SLOTS 56       /* further domains pinned at once, through the shared path */
#define UNT_BUCKETS 64     /* the untracked pins' per-thread attribution (see shared_pin) */
/* a node tagged t runs once E >= t + GRACE */
#define GRACE CONC__MUTANT_VALUE(4, CONC__EPOCH_GRACE, 1)
/* The advance policy (epoch/epoch_internal.h says why). */
#define ADVANCE_EVERY CONC__EPOCH_ADVANCE_EVERY
#define ADVANCE_MAX CONC__EPOCH_ADVANCE_MAX
#define ADVANCE_GAP_NS CONC__EPOCH_ADVANCE_GAP_NS

/*
 * A bag: only its owner pushes (plain, inside the steal handshake: see
 * "Bags" above), anyone takes the whole list (exchange).  Every node in
 * the list carries the bag's tag (the owner pushes a node tagged t only
 * into a bag tagged t, and retags a bag only right after taking its list).
 * tag and start are written by the owner only and read by helpers as hints
 * (relaxed): which node is due is decided again by the node's own tag
 * wherever a list taken by another thread runs.
 */
typedef struct bag {
	CONC_ATOMIC(conc_epoch_node *) head;
	atomic_uint_fast64_t tag;   /* the epoch of the nodes in head */
	atomic_uint_fast64_t start; /* the owner's retire count when tagged */
	uint64_t unused;            /* 32 bytes: &bags[t & 3] is one shift */
} bag;

static inline uint64_t bag_tag(bag *b)
{
	/* relaxed: the owner's own word, or a hint for others */
	return atomic_load_explicit(&b->tag, memory_order_relaxed);
}

static inline void bag_set(bag *b, uint64_t tag, uint64_t start)
{
	/* relaxed (both): owner-written; hints for others, see struct bag */
	atomic_store_explicit(&b->tag, tag, memory_order_relaxed);
	atomic_store_explicit(&b->start, start, memory_order_relaxed);
}

static inline bool bag_empty(bag *b)
{
	/* relaxed: a peek; takes are exchanges */
	return atomic_load_explicit(&b->head, memory_order_relaxed) == NULL;
}

/*
 * A thread's record in one domain.  Its head, struct conc__epoch_hot
 * (conc/epoch.h), is what the header's inline pin/unpin touch: domain (NULL:
 * a free slot) and state (the epoch in the high half, the pin nesting depth
 * in the low half: one load and one store per pin or unpin).
 * domain and state are read by other threads; since the header must compile
 * as C++ they are plain fields, always accessed with the GNU __atomic
 * builtins (which is what <stdatomic.h> compiles to in gcc and clang).
 */
typedef struct rec {
	struct conc__epoch_hot hot;
	/* 2 x the nodes retired through this record, + 1 inside a bag op
	 * (see "Bags"): the owner stores, thieves and stats load */
	CONC_ATOMIC(uint64_t) ops;
	CONC_ATOMIC(int) steal;       /* thieves between their ask and done */
	unsigned every;               /* owner only: ADVANCE_EVERY, or 1 in chaos mode */
	bag bags[4];
	uint64_t checked;             /* owner only: ops >> 1 at the last check */
	unsigned extra;               /* owner only: weight beyond 1 per node since then */
	unsigned retires;             /* owner only: weight retired since the last advance attempt */
	unsigned busy;                /* owner only: operations using the record now
				       * (see rec_hold); never evicted while non-zero */
	struct rec *next, *prev; /* d's record list, under d->lock */
} rec;

static inline uint64_t rec_ops(rec *r)
{
	/* relaxed: the owner's own word, or a statistic */
	return atomic_load_explicit(&r->ops, memory_order_relaxed);
}

typedef struct ovf {
	conc_epoch *domain;
	unsigned depth;
} ovf;

typedef struct tls {
	rec recs[REC_SLOTS];
	ovf ovfs[OVF_SLOTS];
	unsigned ovf_active; /* ovfs with depth > 0 */
	unsigned untracked; /* pins counted in untracked_pins (beyond OVF_SLOTS) */
	unsigned unt[UNT_BUCKETS]; /* those pins by domain hash, for unpin and is_pinned */
	unsigned evict;     /* round-robin victim for eviction */
	int armed;          /* exit handler registered for this thread */
} tls_t;

struct conc_epoch {
	/* E.  The first member: the header's inline pin reads it through the
	 * domain pointer.  __atomic builtins only (see struct rec). */
	CONC_ALIGNED uint64_t epoch;
	CONC_ALIGNED atomic_long shared_pins;
	CONC_ALIGNED pthread_rwlock_t lock; /* the record list: read to scan, write to change */
	rec *records;
	unsigned registered;
	_Atomic(conc_epoch_node *) orphans;
	atomic_uint_fast64_t retired_gone; /* retired by records now gone */
	atomic_uint_fast64_t freed;
	atomic_long holders;    /* threads holding nodes taken from a list */
	atomic_ulong handoffs;  /* holds finished so far */
	atomic_long barriers;   /* barriers in progress */
	atomic_uint_fast64_t advanced_ns; /* CLOCK_MONOTONIC of the last advance attempt */
	int is_global;
	struct conc_epoch *next_domain, *prev_domain; /* all domains, under registry_lock */
	/* debug-checks builds: alive or dead (base/check.h) */
	CONC__LIFE_FIELD
#ifdef CONC_DEBUG_CHECKS
	/* queues and stacks created in the domain and not yet destroyed
	 * (conc__epoch_users_add): destroy refuses while there are any */
	atomic_long users;
#endif
};

static conc_epoch global_domain = {
	.lock = PTHREAD_RWLOCK_INITIALIZER,
	.is_global = 1,
#ifdef CONC_DEBUG_CHECKS
	.conc__life = CONC__LIFE_EPOCH,
#endif
};

static _Thread_local tls_t tls;

/* The header's fast path starts here.  It points at the record used last,
 * or at `unused`, whose domain (NO_DOMAIN) no caller can pass, so that a thread's first
 * pin - and every pin in fence mode, where the fast path is never armed -
 * takes the slow path. */
#define NO_DOMAIN ((conc_epoch *)(uintptr_t)1) /* never a domain, nor NULL */
static struct conc__epoch_hot unused = {NO_DOMAIN, 0};
/* This file reads it through last_ie (conc__epoch_last_ie), an initial-exec alias in libconc.a
 * (CONC__TLS_IE, base/arch.h; a plain hidden alias in libconc.so, whose
 * objects use the dynamic model so that it can be dlopen()ed): libconc.a
 * is built -fPIC all the same, and the variable lives in the static TLS
 * block of whatever links it; through the global name, gcc
 * -fPIC compiles each access as a __tls_get_addr call that only the linker
 * relaxes - too late for the compiler, which then keeps retire's fast path
 * from being a leaf (three registers saved around a call that is not
 * there).  The header's inline pin is compiled in the consumer, with the
 * consumer's model. */
__thread struct conc__epoch_hot *conc__epoch_last = &unused;
extern __thread struct conc__epoch_hot *conc__epoch_last_ie
	__attribute__((alias("conc__epoch_last"), visibility("hidden"))) CONC__TLS_IE;
#define last_ie conc__epoch_last_ie /* also read by epoch/epoch_internal.h */

/*
 * Whether the thread may be pinned anywhere but in *conc__epoch_last (in
 * another record, or on the shared path): epoch/epoch_internal.h's
 * conc__epoch_pinned_quick reads it with the state of *conc__epoch_last,
 * so that "pinned anywhere?" costs two loads, not a scan of every slot.
 * Owner-only (set and cleared by its own thread).  Invariant: zero only
 * when no record other than *conc__epoch_last and no shared-path slot is
 * pinned.  It holds because the header's fast path pins only the armed
 * record, and every other way to be pinned passes here: arm() switching
 * away from a pinned record, a slow-path pin of a record left unarmed
 * (fence and chaos modes), a shared-path pin - each sets it; only a full
 * scan that saw nothing else pinned clears it (conc__epoch_pinned_anywhere).
 * Another thread only ever unpins our records (drop_record clears the
 * state), which cannot break the invariant.
 */
_Thread_local unsigned conc__epoch_elsewhere CONC__TLS_IE;

/* The record's domain, or NULL for a free slot.  A freed slot holds
 * NO_DOMAIN rather than NULL, so that the header's fast path, which may
 * still point at it, never matches a caller's NULL. */
static inline conc_epoch *rec_domain(rec *r)
{
	conc_epoch *d = __atomic_load_n(&r->hot.domain, __ATOMIC_RELAXED);
	return d == NO_DOMAIN ? NULL : d;
}

static inline void rec_set_domain(rec *r, conc_epoch *d)
{
	/* relaxed: read by the owner, and by others only under registry_lock
	 * or d->lock, which order it.  (Freeing a slot is rec_set_free.) */
	__atomic_store_n(&r->hot.domain, d, __ATOMIC_RELAXED);
}

/*
 * The slot handover.  A record may be dropped by another thread than its
 * owner (conc_epoch_destroy of its domain; fork's child drops the records
 * of threads it does not have), and the owner reuses a free slot without a
 * lock: it must see every write of the drop before it writes the record
 * again (its links, its state), or the drop's late stores (the state word
 * set to 0, the links cleared) could land on a record already linked into
 * another domain and hide a pinned reader from that domain's advance.  So
 * freeing is the drop's last write, a release, and the owner's look for a
 * free slot is an acquire (rec_is_free): they pair, and the drop
 * happens-before the reuse.  (tests/models/relacy_record.cc checks it.)
 */
static inline void rec_set_free(rec *r)
{
	/* release (see epoch/alg_epoch.h) */
	conc__ebr_slot_free(&r->hot.domain, NO_DOMAIN);
}

static inline bool rec_is_free(rec *r)
{
	/* acquire (see epoch/alg_epoch.h); a slot never used holds NULL,
	 * written before the thread could run */
	conc_epoch *d = conc__ebr_slot_owner(&r->hot.domain);
	return d == NULL || d == NO_DOMAIN;
}

static inline uint64_t rec_state(rec *r, int mo)
{
	return __atomic_load_n(&r->hot.state, mo);
}

static inline bool state_pinned(uint64_t s)
{
	return (uint32_t)s != 0;
}

/* Whether a record in state s holds the advance from e back. */
static inline bool state_behind(uint64_t s, uint64_t e)
{
	return state_pinned(s) && (uint32_t)(s >> 32) != (uint32_t)e;
}

static inline uint64_t domain_epoch(conc_epoch *d, int mo)
{
	return __atomic_load_n(&d->epoch, mo);
}

static pthread_mutex_t registry_lock = PTHREAD_MUTEX_INITIALIZER;
/* Pins beyond every per-thread slot (see shared_pin): they hold back every
 * domain's advance, so they need no per-domain memory. */
static CONC_ALIGNED atomic_long untracked_pins;
static conc_epoch *domains = &global_domain; /* under registry_lock */
static pthread_once_t init_once = PTHREAD_ONCE_INIT;
static pthread_key_t exit_key;
static int exit_key_ok;
/* Written once under init_once, before any thread can pin (pinning starts
 * with registration, which runs the init); read-only afterwards. */
static int use_fences;

/* ---- barriers --------------------------------------------------------- */

static int sys_membarrier(int cmd)
{
	return (int)syscall(__NR_membarrier, cmd, 0, 0);
}

/* The reader's half: free with membarrier, a real fence without. */
static inline void light_barrier(void)
{
	conc__ebr_light_barrier(use_fences);
}

/* The advancer's half: a full barrier on every CPU running our threads. */
static void heavy_barrier(void)
{
	if (!use_fences) {
		int saved = errno;
		int r = sys_membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED);
		errno = saved;
		if (conc__likely(r == 0))
			return;
		/* Registration lost (a fork child before the atfork handler,
		 * say): the global command needs none; it is slow but safe. */
		saved = errno;
		r = sys_membarrier(MEMBARRIER_CMD_GLOBAL);
		errno = saved;
		if (r == 0)
			return;
	}
	conc_fence(memory_order_seq_cst);
}

static void thread_exit(void *arg);
static void shared_release_all(void);
static void drop_record(conc_epoch *d, rec *r);

/*
 * fork().  The child has one thread, copies of every record, and locks that
 * other threads may have held.  prepare takes every lock (registry first,
 * then each domain's, the order detach uses), so the child inherits them
 * consistent and held by its only thread; there the records of threads that
 * do not exist in the child are dropped (their garbage becomes orphans:
 * nobody in the child can hold a pointer to it), and the counters that
 * other threads contributed to are reset.
 */
static void fork_prepare(void)
{
	pthread_mutex_lock(&registry_lock);
	for (conc_epoch *d = domains; d; d = d->next_domain)
		pthread_rwlock_wrlock(&d->lock);
	/* test builds: the fork holds registry_lock here, which a thread
	 * creating a domain (the global pool's) will wait for */
	conc__test_point("epoch.fork_prepare");
}

static void fork_parent(void)
{
	for (conc_epoch *d = domains; d; d = d->next_domain)
		pthread_rwlock_unlock(&d->lock);
	pthread_mutex_unlock(&registry_lock);
}

static bool is_mine(rec *r)
{
	return r >= &tls.recs[0] && r < &tls.recs[REC_SLOTS];
}

static void fork_child(void)
{
	int saved = errno;
	for (conc_epoch *d = domains; d; d = d->next_domain) {
		for (rec *r = d->records, *next; r; r = next) {
			next = r->next;
			if (!is_mine(r))
				drop_record(d, r);
		}
		long mine = 0;
		for (unsigned i = 0; i < OVF_SLOTS; i++)
			if (tls.ovfs[i].domain == d && tls.ovfs[i].depth)
				mine++;
		/* relaxed (all three): the child has one thread, and holds
		 * every lock */
		atomic_store_explicit(&d->shared_pins, mine, memory_order_relaxed);
		atomic_store_explicit(&d->holders, 0, memory_order_relaxed);
		atomic_store_explicit(&d->barriers, 0, memory_order_relaxed);
		/* Not unlock: glibc tells a writer's unlock by the thread id,
		 * which fork changed.  Nobody else exists to hold it. */
		pthread_rwlock_init(&d->lock, NULL);
	}
	/* relaxed: as above */
	atomic_store_explicit(&untracked_pins, (long)tls.untracked, memory_order_relaxed);
	pthread_mutex_unlock(&registry_lock);
	/* The child is a new mm: register it for expedited barriers again.
	 * Should that fail, membarrier(GLOBAL) in heavy_barrier covers it. */
	if (!use_fences)
		sys_membarrier(MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED);
	errno = saved;
}

static void init(void)
{
	int saved = errno;
	const char *env = getenv("CONC_EPOCH_FENCES");
	use_fences = 1;
	if (!(env && env[0] == '1')) {
		int q = sys_membarrier(MEMBARRIER_CMD_QUERY);
		if (q > 0 && (q & MEMBARRIER_CMD_PRIVATE_EXPEDITED) &&
		    sys_membarrier(MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED) == 0)
			use_fences = 0;
	}
	exit_key_ok = pthread_key_create(&exit_key, thread_exit) == 0;
	conc__atfork_register(CONC__ATFORK_EPOCH, fork_prepare, fork_parent, fork_child);
	errno = saved;
}

/* ---- lists of nodes --------------------------------------------------- */

/* The push half of a push-only list (base/chain.h has the argument): the
 * taker is take() below, an acquire exchange. */
static void push_chain(_Atomic(conc_epoch_node *) *head, conc_epoch_node *first,
		       conc_epoch_node *last)
{
	CONC__CHAIN_PUSH(head, first, last, next);
}

static conc_epoch_node *take(_Atomic(conc_epoch_node *) *head)
{
	/* relaxed: a peek to skip the exchange on an empty list */
	if (!atomic_load_explicit(head, memory_order_relaxed))
		return NULL;
	/* acq_rel: acquire pairs with push_chain's release (and, on a bag,
	 * with the owner's bag-op release that the handshake read); seq_cst
	 * is not needed for the lists themselves, but barrier's argument (a
	 * steal ordered against a collector's announcement) wants these RMWs
	 * in S. */
	return conc__ebr_take(head);
}

static uint64_t load_epoch(conc_epoch *d)
{
	/* acquire: see conc__ebr_load_epoch */
	return conc__ebr_load_epoch(&d->epoch);
}

/*
 * Holding (see "Holders" above).  seq_cst on all three counters and on the
 * takes: barrier reasons about their single order S (a take before its
 * steal, a hold that began or ended between its two looks).
 */
static void hold_begin(conc_epoch *d)
{
	atomic_fetch_add_explicit(&d->holders, 1, memory_order_seq_cst);
}

static void hold_end(conc_epoch *d)
{
	atomic_fetch_add_explicit(&d->handoffs, 1, memory_order_seq_cst);
	atomic_fetch_sub_explicit(&d->holders, 1, memory_order_seq_cst);
}

/* An optional collection (one that may be skipped) steps aside for a
 * barrier; relaxed would do for a hint, seq_cst keeps it in S with the
 * barrier's increment so that late collectors reliably see it. */
static bool barrier_running(conc_epoch *d)
{
	return atomic_load_explicit(&d->barriers, memory_order_seq_cst) != 0;
}

/* Run every node of the chain; returns how many ran. */
static uint64_t run_chain(conc_epoch_node *n)
{
	uint64_t k = 0;
	while (n) {
		conc_epoch_node *next = n->next;
		n->fn(n);
		n = next;
		k++;
	}
	return k;
}

/*
 * Run the nodes of the chain that are due at epoch e and push the rest back
 * to the orphans, in one pass (the nodes are cold by now: each is touched
 * once).  Returns how many ran.
 */
static uint64_t run_due(conc_epoch *d, conc_epoch_node *n, uint64_t e)
{
	conc_epoch_node *keep = NULL, *keep_last = NULL;
	uint64_t k = 0;
	if (n)
		conc__chaos_point(); /* between the take and the callbacks */
	while (n) {
		conc_epoch_node *next = n->next;
		if (conc__ebr_due(n->epoch, e)) {
			n->fn(n);
			k++;
		} else {
			n->next = keep;
			keep = n;
			if (!keep_last)
				keep_last = n;
		}
		n = next;
	}
	if (keep)
		push_chain(&d->orphans, keep, keep_last);
	if (k)
		/* relaxed: a statistic */
		atomic_fetch_add_explicit(&d->freed, k, memory_order_relaxed);
	return k;
}

/* Run a list taken from one of our own bags, all due (see struct bag). */
static void run_owned(conc_epoch *d, conc_epoch_node *n)
{
	if (n)
		conc__chaos_point(); /* between the take and the callbacks */
	uint64_t k = run_chain(n);
	if (k)
		/* relaxed: a statistic */
		atomic_fetch_add_explicit(&d->freed, k, memory_order_relaxed);
}

static void collect_orphans(conc_epoch *d)
{
	/* relaxed: a peek; take() below is the synchronising exchange */
	if (!atomic_load_explicit(&d->orphans, memory_order_relaxed) || barrier_running(d))
		return;
	hold_begin(d);
	conc_epoch_node *n = take(&d->orphans);
	run_due(d, n, load_epoch(d));
	hold_end(d);
}

/* The owner runs its own bags that are due. */
static void collect_own(conc_epoch *d, rec *r)
{
	if (barrier_running(d))
		return;
	uint64_t e = load_epoch(d);
	for (int i = 0; i < 4; i++) {
		bag *b = &r->bags[i];
		if (bag_empty(b) || bag_tag(b) + GRACE > e)
			continue;
		hold_begin(d);
		conc_epoch_node *n = take(&b->head);
		/* Every node of a bag carries its tag (struct bag), read
		 * before the take by its only writer, us: all due. */
		CONC__CHECK(bag_tag(b) + GRACE <= load_epoch(d),
			    "epoch: a bag runs only once E >= its tag + GRACE (E never goes back)");
		run_owned(d, n);
		hold_end(d);
	}
}

/*
 * The thief's side of the bag handshake (see "Bags" above), for the
 * records asked[0..n): after their asks, one heavy barrier, then per
 * record wait until the owner is outside a bag op (block), or give that
 * record up (!block: skipped[i] set).  The caller takes, then calls
 * steal_end.  Under d->lock (read).
 */
static void steal_begin(rec **asked, unsigned n, bool block, bool *skipped)
{
	heavy_barrier();
	for (unsigned i = 0; i < n; i++) {
		uint64_t w0 = conc__ebr_steal_look(&asked[i]->ops);
		unsigned spins = 0;
		skipped[i] = false;
		while (!conc__ebr_steal_settled(w0, conc__ebr_steal_look(&asked[i]->ops))) {
			if (!block) {
				skipped[i] = true;
				break;
			}
			/* the owner is inside a few instructions, or lost
			 * the CPU there */
			if (spins++ < 64)
				conc__cpu_relax();
			else
				sched_yield();
		}
	}
}

/* Take the bags of r with the given tags at most (all: UINT64_MAX) into
 * *all, and give r back to its owner. */
static void steal_bags(rec *r, uint64_t max_tag, conc_epoch_node **all)
{
	for (int i = 0; i < 4; i++) {
		bag *b = &r->bags[i];
		if (bag_tag(b) > max_tag)
			continue;
		for (conc_epoch_node *n = take(&b->head); n;) {
			conc_epoch_node *next = n->next;
			n->next = *all;
			*all = n;
			n = next;
		}
	}
	conc__ebr_steal_done(&r->steal);
}

/*
 * After an advance, take the long-due bags of other threads that are not
 * pinned right now: a thread that retired a lot and then went idle, or lost
 * the CPU, would otherwise hold its garbage until it returns.  Bags below
 * HELP_MIN nodes are left to their owners.  The lists are taken under the
 * read lock (records stay put), through the handshake (an owner inside a
 * bag op is skipped), and run after it.
 */
#define HELP_MIN 128
#define HELP_MAX 16 /* records helped per advance */

/* A bag's size, a hint: the owner's retires since it tagged the bag, less
 * those that went into its later bags. */
static uint64_t bag_size_hint(rec *r, bag *b)
{
	uint64_t end = rec_ops(r) >> 1, t = bag_tag(b);
	for (int i = 0; i < 4; i++) {
		bag *c = &r->bags[i];
		/* relaxed: hints, see struct bag */
		uint64_t s = atomic_load_explicit(&c->start, memory_order_relaxed);
		if (bag_tag(c) > t && s < end)
			end = s;
	}
	/* relaxed: a hint */
	uint64_t s = atomic_load_explicit(&b->start, memory_order_relaxed);
	return end > s ? end - s : 0;
}

static void help_others(conc_epoch *d, rec *mine)
{
	if (barrier_running(d) || pthread_rwlock_tryrdlock(&d->lock) != 0)
		return;
	uint64_t e = load_epoch(d);
	rec *asked[HELP_MAX];
	bool skipped[HELP_MAX];
	unsigned n = 0;
	for (rec *r = d->records; r && n < HELP_MAX; r = r->next) {
		/* relaxed: a hint; a stale read only skips a bag or takes one
		 * early, and the per-node tags decide what runs */
		if (r == mine || state_pinned(rec_state(r, __ATOMIC_RELAXED)))
			continue;
		for (int i = 0; i < 4; i++) {
			bag *b = &r->bags[i];
			/* Due for a whole epoch already: its owner is not
			 * collecting (an active owner collects what is due
			 * every ADVANCE_EVERY retires, on its own thread, where
			 * the memory is warm and its allocator's).  A bag of
			 * ADVANCE_MAX or more is a backlog (a stalled reader
			 * held the epoch back while it grew): it is taken as
			 * soon as it is due, so that the garbage is back under
			 * its bound within GRACE advances of the stall's end.
			 * Either way the per-node tags decide what runs. */
			if (bag_empty(b))
				continue;
			uint64_t size = bag_size_hint(r, b);
			uint64_t slack = size >= CONC__EPOCH_ADVANCE_MAX ? 0 : 1;
			if (size < HELP_MIN || bag_tag(b) + GRACE + slack > e)
				continue;
			conc__ebr_steal_ask(&r->steal);
			asked[n++] = r;
			break;
		}
	}
	if (!n) {
		pthread_rwlock_unlock(&d->lock);
		return;
	}
	hold_begin(d);
	steal_begin(asked, n, false, skipped);
	conc_epoch_node *all = NULL;
	for (unsigned i = 0; i < n; i++) {
		if (skipped[i])
			conc__ebr_steal_done(&asked[i]->steal);
		else
			/* the due bags (the tags are hints: run_due decides) */
			steal_bags(asked[i], e - GRACE, &all);
	}
	pthread_rwlock_unlock(&d->lock);
	run_due(d, all, e);
	hold_end(d);
}

/* ---- advancing -------------------------------------------------------- */

/* Whether every pinned record (and the shared path) is at epoch e.  Under
 * d->lock (read), which keeps the record list still. */
static bool all_at(conc_epoch *d, uint64_t e, int mo)
{
	/* With mo = acquire (the decisive scan): pairs with unpin's release
	 * store, so a reader's critical section happens-before this advance
	 * and so before any callback that waits for it; likewise with the
	 * shared path's release decrement. */
	memory_order o = mo == __ATOMIC_ACQUIRE ? memory_order_acquire : memory_order_relaxed;
	if (atomic_load_explicit(&d->shared_pins, o) != 0 ||
	    atomic_load_explicit(&untracked_pins, o) != 0)
		return false;
	for (rec *r = d->records; r && CONC__MUTANT_VALUE(5, true, r->next != NULL); r = r->next)
		if (conc__ebr_holds_back(&r->hot.state, e, mo))
			return false;
	return true;
}

/* all_at for conc__ebr_try_advance: the scans take the record list's read
 * lock with trylock, so a busy list fails the attempt. */
static bool try_all_at(void *ctx, uint64_t e, int mo)
{
	conc_epoch *d = ctx;
	if (pthread_rwlock_tryrdlock(&d->lock) != 0)
		return false;
	bool ok = all_at(d, e, mo);
	pthread_rwlock_unlock(&d->lock);
	return ok;
}

/*
 * Try to move E from e to e+1.  Never waits: the scans take the record
 * list's read lock with trylock (scanners never block one another, so a
 * scanner preempted mid-scan holds back only registrations and exits), and
 * the heavy barrier runs outside it (the proof needs only "read e, then H,
 * then scan").  Concurrent advancers race on one CAS.  Returns true when E
 * moved (by us).
 */
static bool try_advance(conc_epoch *d)
{
	/* read E, cheap look, heavy barrier, decisive scan, CAS: the steps and
	 * their orders are in epoch/alg_epoch.h */
	return conc__ebr_try_advance(&d->epoch, try_all_at, d, heavy_barrier);
}

/* ---- registration ----------------------------------------------------- */

/* Point the header's fast path at r (never in fence mode: there every pin
 * must come here for its fence; nor in chaos mode: there every pin and
 * unpin comes here for its chaos point). */
static void arm(rec *r)
{
	if (!use_fences && !conc__chaos()) {
		struct conc__epoch_hot *old = last_ie;
		/* relaxed: our own record's word (another thread only clears it) */
		if (old != &r->hot && state_pinned(__atomic_load_n(&old->state, __ATOMIC_RELAXED)))
			conc__epoch_elsewhere = 1; /* see its invariant */
		conc__epoch_last = &r->hot;
	}
}

static rec *find_rec(conc_epoch *d)
{
	for (unsigned i = 0; i < REC_SLOTS; i++)
		if (rec_domain(&tls.recs[i]) == d) {
			arm(&tls.recs[i]);
			return &tls.recs[i];
		}
	return NULL;
}

/*
 * An operation that runs callbacks while it still needs its record (retire
 * and flush) holds the record: a callback may pin other domains, and
 * registering there evicts an unpinned record of this thread - without the
 * hold, the very record the outer operation is filling, which would then
 * belong to another domain and judge the outer domain's nodes by that
 * domain's epoch.  Owner-only counts (callbacks nest).  A thread that holds
 * every record uses the shared path for a further domain.
 */
static inline void rec_hold(rec *r)
{
	r->busy++;
}

static inline void rec_release(rec *r)
{
	r->busy--;
}

/* Hand r's bags to its domain and unlink it.  Caller holds d->lock for
 * writing. */
static void drop_record(conc_epoch *d, rec *r)
{
	hold_begin(d);
	for (int i = 0; i < 4; i++) {
		conc_epoch_node *n = take(&r->bags[i].head);
		if (n) {
			conc_epoch_node *last = n;
			while (last->next)
				last = last->next;
			push_chain(&d->orphans, n, last);
		}
		bag_set(&r->bags[i], 0, 0);
	}
	hold_end(d);
	/* relaxed (all three): statistics, handed over under the write lock
	 * (no thief can be in the handshake: thieves hold the read lock) */
	atomic_fetch_add_explicit(&d->retired_gone, rec_ops(r) >> 1, memory_order_relaxed);
	atomic_store_explicit(&r->ops, 0, memory_order_relaxed);
	if (r->prev)
		r->prev->next = r->next;
	else
		d->records = r->next;
	if (r->next)
		r->next->prev = r->prev;
	r->next = r->prev = NULL;
	d->registered--;
	/* A thread that exits pinned (a bug in the caller) is unpinned here,
	 * or it would hold the domain back forever.  relaxed: the record is
	 * unlinked, no scan reads it any more; rec_set_free publishes it. */
	__atomic_store_n(&r->hot.state, 0, __ATOMIC_RELAXED);
	rec_set_free(r); /* the last write (see rec_set_free) */
}

/* drop_record under d->lock.  Caller holds registry_lock, or is the owner
 * thread, not pinned in d. */
static void detach(conc_epoch *d, rec *r)
{
	pthread_rwlock_wrlock(&d->lock);
	drop_record(d, r);
	pthread_rwlock_unlock(&d->lock);
}

static void thread_exit(void *arg)
{
	(void)arg;
	pthread_mutex_lock(&registry_lock);
	for (unsigned i = 0; i < REC_SLOTS; i++) {
		rec *r = &tls.recs[i];
		conc_epoch *d = rec_domain(r);
		if (d)
			detach(d, r);
	}
	shared_release_all();
	tls.armed = 0;
	pthread_mutex_unlock(&registry_lock);
}

/* Make sure thread_exit runs for this thread (best effort: without it, a
 * thread that exits pinned through the shared path holds its domains back
 * for ever - the one case libconc cannot clean up after). */
static void arm_exit(void)
{
	pthread_once(&init_once, init);
	if (!tls.armed && exit_key_ok && pthread_setspecific(exit_key, &tls) == 0)
		tls.armed = 1;
}

/* Get a record for d, registering; NULL means: use the shared path. */
static rec *get_rec(conc_epoch *d)
{
	rec *r = find_rec(d);
	if (r)
		return r;
	/* A record must be dropped when the thread exits: no exit handler,
	 * no record (the shared path needs none). */
	arm_exit();
	if (!tls.armed)
		return NULL;
	unsigned slot = REC_SLOTS;
	for (unsigned i = 0; i < REC_SLOTS && slot == REC_SLOTS; i++)
		if (rec_is_free(&tls.recs[i]))
			slot = i;
	if (slot == REC_SLOTS) {
		/* Evict a record this thread is not pinned in; its garbage goes
		 * to that domain's orphans, where others collect it. */
		for (unsigned k = 0; k < REC_SLOTS && slot == REC_SLOTS; k++) {
			unsigned i = (tls.evict + k) % REC_SLOTS;
			/* relaxed: our own state word */
			if (!state_pinned(rec_state(&tls.recs[i], __ATOMIC_RELAXED)) &&
			    !tls.recs[i].busy)
				slot = i;
		}
		if (slot == REC_SLOTS)
			return NULL;
		tls.evict = slot + 1;
		pthread_mutex_lock(&registry_lock);
		conc_epoch *old = rec_domain(&tls.recs[slot]);
		if (old)
			detach(old, &tls.recs[slot]);
		pthread_mutex_unlock(&registry_lock);
	}
	r = &tls.recs[slot];
	pthread_rwlock_wrlock(&d->lock);
	r->retires = r->extra = 0;
	r->checked = 0;
	/* relaxed (both): not linked yet, and no thief is asking (a drop
	 * ran under the write lock); the insert below publishes them */
	atomic_store_explicit(&r->ops, 0, memory_order_relaxed);
	atomic_store_explicit(&r->steal, 0, memory_order_relaxed);
	/* Chaos mode: an advance attempt and a collection at every retire. */
	r->every = conc__chaos() ? 1 : ADVANCE_EVERY;
	/* relaxed: not linked yet; the insert below, under the write lock,
	 * publishes it */
	__atomic_store_n(&r->hot.state, 0, __ATOMIC_RELAXED);
	r->prev = NULL;
	r->next = d->records;
	if (d->records)
		d->records->prev = r;
	d->records = r;
	d->registered++;
	rec_set_domain(r, d);
	pthread_rwlock_unlock(&d->lock);
	arm(r);
	return r;
}

/* ---- the shared path -------------------------------------------------- */

/*
 * A thread pinned in more domains at once than it has records pins the
 * further ones here, in two tiers, neither of which needs memory:
 *   - OVF_SLOTS per-thread slots, each (domain, depth): the outermost pin
 *     adds one to d->shared_pins, which holds back d's advance while it is
 *     not zero; exact per domain;
 *   - beyond those, the process-wide untracked_pins, which holds back the
 *     advance of every domain (so it needs no attribution to be safe); the
 *     thread keeps a count per domain hash (tls.unt) to match unpins and to
 *     answer is_pinned - a collision can only make is_pinned answer true
 *     for an unpinned domain, and match an unbalanced unpin (a caller bug).
 * thread_exit gives back both tiers, so a thread that exits pinned holds
 * nothing back afterwards (the exit handler is armed here too, for a thread
 * that never had a record).
 */
static ovf *find_ovf(conc_epoch *d, int create)
{
	for (unsigned i = 0; i < OVF_SLOTS; i++)
		if (tls.ovfs[i].domain == d && tls.ovfs[i].depth)
			return &tls.ovfs[i];
	if (create)
		for (unsigned i = 0; i < OVF_SLOTS; i++)
			if (!tls.ovfs[i].depth) {
				tls.ovfs[i].domain = d;
				return &tls.ovfs[i];
			}
	return NULL;
}

static unsigned unt_bucket(conc_epoch *d)
{
	uintptr_t h = (uintptr_t)d / CONC_PAD; /* domains are CONC_PAD-aligned */
	return (unsigned)((h ^ h >> 7 ^ h >> 17) % UNT_BUCKETS);
}

static void shared_pin(conc_epoch *d)
{
	arm_exit();
	conc__epoch_elsewhere = 1; /* see its invariant */
	ovf *o = find_ovf(d, 1);
	if (o) {
		if (o->depth++)
			return; /* nested */
		tls.ovf_active++;
		/* relaxed + light barrier: the same role as the record's pin
		 * store (the count is what the advance scans after its heavy
		 * barrier). */
		atomic_fetch_add_explicit(&d->shared_pins, 1, memory_order_relaxed); /* LP: pin */
	} else {
		tls.untracked++;
		tls.unt[unt_bucket(d)]++;
		/* relaxed + light barrier: as above, for every domain */
		atomic_fetch_add_explicit(&untracked_pins, 1, memory_order_relaxed); /* LP: pin */
	}
	light_barrier();
}

static void shared_unpin(conc_epoch *d)
{
	ovf *o = find_ovf(d, 0);
	if (o) {
		if (--o->depth)
			return;
		o->domain = NULL;
		tls.ovf_active--;
		/* release: the critical section happens-before an advance
		 * that reads the count (acquire) at zero. */
		atomic_fetch_sub_explicit(&d->shared_pins, 1, memory_order_release);
		return;
	}
	unsigned *u = &tls.unt[unt_bucket(d)];
	/* Debug-checks builds report the caller's bug; others ignore it
	 * rather than corrupt a count. */
	CONC__MISUSE_IF(!*u, "conc_epoch_unpin",
			"the calling thread is not pinned in this domain (unbalanced unpin)");
	if (!*u)
		return;
	(*u)--;
	tls.untracked--;
	/* release: as above */
	atomic_fetch_sub_explicit(&untracked_pins, 1, memory_order_release);
}

/* Give back every shared-path pin of this thread (thread exit).  A domain
 * with one of them cannot be destroyed meanwhile (destroy sees it pinned). */
static void shared_release_all(void)
{
	for (unsigned i = 0; i < OVF_SLOTS; i++) {
		ovf *o = &tls.ovfs[i];
		if (!o->depth)
			continue;
		/* release: the (abandoned) section happens-before the advance
		 * that reads the count at zero */
		atomic_fetch_sub_explicit(&o->domain->shared_pins, 1, memory_order_release);
		o->depth = 0;
		o->domain = NULL;
	}
	tls.ovf_active = 0;
	if (tls.untracked) {
		/* release: as above */
		atomic_fetch_sub_explicit(&untracked_pins, (long)tls.untracked,
					  memory_order_release);
		tls.untracked = 0;
		memset(tls.unt, 0, sizeof tls.unt);
	}
}

/* ---- public API ------------------------------------------------------- */

conc_epoch *conc_epoch_global(void)
{
	return &global_domain;
}

int conc_epoch_create(conc_epoch **out)
{
	if (!out)
		return EINVAL;
	pthread_once(&init_once, init); /* fork handlers before registry_lock's first use */
	conc_epoch *d = conc__aligned_alloc("epoch.create", CONC_PAD, sizeof *d);
	if (!d)
		return ENOMEM;
	memset(d, 0, sizeof *d);
	CONC__LIFE_SET(d, CONC__LIFE_EPOCH);
	d->epoch = 0;
	atomic_init(&d->shared_pins, 0);
	if (pthread_rwlock_init(&d->lock, NULL) != 0) {
		free(d);
		return ENOMEM;
	}
	atomic_init(&d->orphans, NULL);
	atomic_init(&d->retired_gone, 0);
	atomic_init(&d->freed, 0);
	atomic_init(&d->holders, 0);
	atomic_init(&d->handoffs, 0);
	atomic_init(&d->barriers, 0);
#ifdef CONC_DEBUG_CHECKS
	atomic_init(&d->users, 0);
#endif
	pthread_mutex_lock(&registry_lock);
	d->prev_domain = NULL;
	d->next_domain = domains;
	domains->prev_domain = d;
	domains = d;
	pthread_mutex_unlock(&registry_lock);
	*out = d;
	return 0;
}

int conc_epoch_register(conc_epoch *d)
{
	if (!d)
		return EINVAL;
	CONC__LIFE_RETURN(d, CONC__LIFE_EPOCH);
	return get_rec(d) ? 0 : ENOMEM;
}

/* The out-of-line definitions of the header's inline pin and unpin. */
extern inline void conc_epoch_pin(conc_epoch *d);
extern inline void conc_epoch_unpin(conc_epoch *d);

/*
 * The slow paths: the first pin in a domain, a pin in another domain than
 * the last one, fence mode, and the shared path.  The fast path in the
 * header does the same on the record it already has.
 */
void conc__epoch_pin_slow(conc_epoch *d)
{
	if (!d)
		return; /* documented: pinning NULL does nothing */
	/* (a destroyed domain has no record left: its pins come here) */
	CONC__LIFE_ABORT(d, CONC__LIFE_EPOCH, "conc_epoch_pin");
	rec *r = find_rec(d);
	if (!r)
		r = get_rec(d);
	if (!r) {
		shared_pin(d);
		return;
	}
	/* relaxed: our own state word (only we write it) */
	uint64_t s = rec_state(r, __ATOMIC_RELAXED);
	if (state_pinned(s)) {
		/* nested: only the depth changes (relaxed: our own word) */
		if ((uint32_t)s != UINT32_MAX)
			__atomic_store_n(&r->hot.state, s + 1, __ATOMIC_RELAXED);
		return;
	}
	/* the announcement is ordered before the section's loads by the light
	 * barrier (together with the advancer's heavy barrier) */
	conc__ebr_pin(&r->hot.state, &d->epoch, use_fences); /* LP: pin */
	if (&r->hot != last_ie)
		conc__epoch_elsewhere = 1; /* not armed (fence, chaos mode) */
}

void conc__epoch_unpin_slow(conc_epoch *d)
{
	if (!d)
		return;
	CONC__LIFE_ABORT(d, CONC__LIFE_EPOCH, "conc_epoch_unpin");
	rec *r = find_rec(d);
	/* relaxed: our own state word (only we write it) */
	uint64_t s = r ? rec_state(r, __ATOMIC_RELAXED) : 0;
	if (!state_pinned(s)) {
		shared_unpin(d);
		return;
	}
	if ((uint32_t)s > 1) {
		/* relaxed: nested unpin, our own word; the outermost one releases */
		__atomic_store_n(&r->hot.state, s - 1, __ATOMIC_RELAXED);
		return;
	}
	conc__chaos_point(); /* chaos mode: the section lasts a little longer */
	conc__ebr_unpin(&r->hot.state); /* release: see there */
}

bool conc_epoch_is_pinned(conc_epoch *d)
{
	if (!d)
		return false;
	CONC__LIFE_ABORT(d, CONC__LIFE_EPOCH, "conc_epoch_is_pinned");
	for (unsigned i = 0; i < REC_SLOTS; i++)
		if (rec_domain(&tls.recs[i]) == d &&
		    /* relaxed: our own records; only their domain field is written elsewhere */
		    state_pinned(rec_state(&tls.recs[i], __ATOMIC_RELAXED)))
			return true;
	return find_ovf(d, 0) != NULL || tls.unt[unt_bucket(d)] > 0;
}

bool conc__epoch_pinned_anywhere(void)
{
	if (!conc__epoch_pinned_quick())
		return false;
	/* A free slot's state word is 0 (drop_record clears it), so the state
	 * alone tells.  relaxed: our own records; only their domain field is
	 * written elsewhere (and their state cleared, by a drop). */
	bool any = false, elsewhere = tls.ovf_active || tls.untracked;
	for (unsigned i = 0; i < REC_SLOTS; i++)
		if (state_pinned(rec_state(&tls.recs[i], __ATOMIC_RELAXED))) {
			any = true;
			if (&tls.recs[i].hot != last_ie)
				elsewhere = true;
		}
	conc__epoch_elsewhere = elsewhere; /* what this scan saw */
	return any || elsewhere;
}

/*
 * Every ADVANCE_EVERY retires (weighted): collect, and maybe advance the
 * epoch.  Runs callbacks; the caller holds r.
 */
static void retire_check(conc_epoch *d, rec *r)
{
	uint64_t count = rec_ops(r) >> 1;
	r->retires += (unsigned)(count - r->checked) + r->extra;
	r->checked = count;
	r->extra = 0;
	/* The rate limit: one attempt per ADVANCE_GAP_NS per domain, claimed
	 * by a CAS on the time of the last one, so that two threads do not
	 * both pay for membarrier() (which also serialises on a kernel
	 * mutex).  relaxed: a rate limit, not an ordering. */
	uint64_t now = conc__now_ns();
	uint64_t last = atomic_load_explicit(&d->advanced_ns, memory_order_relaxed);
	/* Chaos mode (every == 1) has no rate limit. */
	bool mine = r->every == 1 ||
		    (now - last >= ADVANCE_GAP_NS &&
		     atomic_compare_exchange_strong_explicit(&d->advanced_ns, &last, now,
							     memory_order_relaxed,
							     memory_order_relaxed));
	/* Our own due bags first: a thread that comes back from a stall
	 * (descheduled while pinned, so help_others skipped it) frees its
	 * backlog before its advance can start the next epoch; collecting
	 * only after would let the epoch run one ahead of the memory
	 * (stress-epoch's 3-advance recovery). */
	collect_own(d, r);
	if (mine || r->retires >= ADVANCE_MAX) {
		r->retires = 0;
		if (try_advance(d)) {
			help_others(d, r);
			collect_own(d, r); /* what the advance made due */
		}
	}
	collect_orphans(d);
}

_Static_assert(REC_SLOTS + OVF_SLOTS == CONC__EPOCH_PIN_SLOTS,
	       "conc__epoch_pins has one entry per record and shared-path slot");

void conc__epoch_pins_save(conc__epoch_pins *s)
{
	for (unsigned i = 0; i < REC_SLOTS; i++) {
		s->domain[i] = rec_domain(&tls.recs[i]);
		/* relaxed: our own word */
		s->depth[i] = (uint32_t)rec_state(&tls.recs[i], __ATOMIC_RELAXED);
	}
	for (unsigned i = 0; i < OVF_SLOTS; i++) {
		s->domain[REC_SLOTS + i] = tls.ovfs[i].depth ? tls.ovfs[i].domain : NULL;
		s->depth[REC_SLOTS + i] = tls.ovfs[i].depth;
	}
	s->untracked = tls.untracked;
}

void conc__epoch_pins_restore(const conc__epoch_pins *s)
{
	for (unsigned i = 0; i < REC_SLOTS; i++) {
		rec *r = &tls.recs[i];
		/* relaxed: our own word */
		uint64_t st = rec_state(r, __ATOMIC_RELAXED);
		uint32_t depth = (uint32_t)st;
		/* A slot that now holds another domain was reused after the
		 * snapshot: its pins are all new. */
		uint32_t keep = s && s->domain[i] == rec_domain(r) ? s->depth[i] : 0;
		if (depth <= keep)
			continue;
		if (keep)
			/* relaxed: nested, as a nested unpin */
			__atomic_store_n(&r->hot.state, st - (depth - keep), __ATOMIC_RELAXED);
		else
			conc__ebr_unpin(&r->hot.state); /* release: as the outermost unpin */
	}
	for (unsigned i = 0; i < OVF_SLOTS; i++) {
		ovf *o = &tls.ovfs[i];
		unsigned keep = s && s->domain[REC_SLOTS + i] == o->domain ? s->depth[REC_SLOTS + i] : 0;
		if (o->depth <= keep)
			continue;
		o->depth = keep;
		if (!keep) {
			conc_epoch *d = o->domain;
			o->domain = NULL;
			tls.ovf_active--;
			/* release: as in shared_unpin */
			atomic_fetch_sub_explicit(&d->shared_pins, 1, memory_order_release);
		}
	}
	if (tls.untracked && !(s && s->untracked)) {
		/* release: as in shared_unpin */
		atomic_fetch_sub_explicit(&untracked_pins, (long)tls.untracked,
					  memory_order_release);
		tls.untracked = 0;
		memset(tls.unt, 0, sizeof tls.unt);
	}
}

static uint64_t retire_tag(conc_epoch *d)
{
	/* The tag is read after the caller's unlink; in fence mode a seq_cst
	 * fence orders the two, with membarrier the proof needs only program
	 * order (the compiler barrier keeps the compiler to it). */
	return conc__ebr_retire_tag(&d->epoch, use_fences);
}

/*
 * The bag of r for tag t, retagged first if it still holds an older tag
 * t - 4k (k >= 1): those nodes are all due, since t - 4 + GRACE <= t <= E,
 * and run here.  Their callbacks may pin other domains (hold r: see
 * rec_hold) and retire into d again, so the tag is checked once more.
 */
static bag *open_bag(conc_epoch *d, rec *r, uint64_t t)
{
	bag *b = &r->bags[t & 3];
	while (bag_tag(b) != t) {
		if (bag_empty(b)) {
			bag_set(b, t, rec_ops(r) >> 1);
			break;
		}
		rec_hold(r);
		hold_begin(d);
		conc_epoch_node *old = take(&b->head);
		bag_set(b, t, rec_ops(r) >> 1); /* before the callbacks retire into it */
		run_owned(d, old);
		hold_end(d);
		rec_release(r);
	}
	return b;
}

/* Collect and maybe advance (retire_check), holding r; out of line, so
 * that the fast path stays a leaf. */
static __attribute__((noinline)) void retire_checked(conc_epoch *d, rec *r)
{
	rec_hold(r); /* the callbacks may pin other domains */
	retire_check(d, r);
	rec_release(r);
}

/* Whether a retire (weight) that found ops = w is due for retire_check:
 * every ADVANCE_EVERY retires, ((w >> 1) + 1) % ADVANCE_EVERY == 0, and
 * once the weight since the last check reaches r->every.  Owner only.
 * fast: called from the fast path (so every is ADVANCE_EVERY). */
static inline bool retire_due(rec *r, uint64_t w, unsigned weight, bool fast)
{
	if (((w + 2) & (2 * ADVANCE_EVERY - 2)) == 0)
		return true;
	/* (the fast path is never taken in chaos mode, where every is 1) */
	if (weight == 1 && (fast || r->every != 1))
		return false;
	r->extra += weight - 1;
	return ((w + 2) >> 1) - r->checked + r->extra >= r->every;
}

/* The fast path found a thief asking, inside its bag op: finish it with
 * the CAS push, then go on as the fast path would. */
static __attribute__((noinline)) void retire_asked(conc_epoch *d, rec *r, bag *b,
						   conc_epoch_node *n, uint64_t w,
						   unsigned weight)
{
	conc__ebr_own_push_cas(&b->head, n, &n->next);
	conc__ebr_own_exit(&r->ops, w);
	if (retire_due(r, w, weight, true))
		retire_checked(d, r);
}

/* Everything but the fast path: the first retire into a bag of an epoch,
 * another domain than the last pinned, fence and chaos modes, the shared
 * path, and weights. */
static __attribute__((noinline)) void retire_slow(conc_epoch *d, conc_epoch_node *n,
						  void (*fn)(conc_epoch_node *),
						  unsigned weight)
{
	if (!d || !n || !fn)
		return; /* documented: does nothing */
	/* (a destroyed domain has no record left: its retires come here) */
	CONC__LIFE_ABORT(d, CONC__LIFE_EPOCH, "conc_epoch_retire");
	n->fn = fn;
	rec *r = find_rec(d);
	if (!r)
		r = get_rec(d);
	if (!r) {
		n->epoch = retire_tag(d);
		/* relaxed: a statistic */
		atomic_fetch_add_explicit(&d->retired_gone, 1, memory_order_relaxed);
		push_chain(&d->orphans, n, n);
		return;
	}
	uint64_t t = retire_tag(d);
	n->epoch = t;
	bag *b = open_bag(d, r, t);
	uint64_t w = rec_ops(r);
	/* the handshake with a real fence in fence mode (no membarrier for
	 * the thief to pair with) */
	conc__ebr_own_push(&r->ops, w, &r->steal, &b->head, n, &n->next, use_fences, true);
	/* weight: a node standing for many objects (the stack retires popped
	 * nodes 64 to an epoch node) counts as that many towards the
	 * advance policy, so the objects held back stay within its bound. */
	if (retire_due(r, w, weight, false))
		retire_checked(d, r);
}

/*
 * The fast path: the record pinned last is d's (so membarrier mode, and
 * not chaos mode: see arm), and its bag for the current epoch is open.
 * A leaf: the tag, the owner's bag op (no locked instruction), and every
 * ADVANCE_EVERY retires (or weight) a call to retire_checked.
 */
static inline __attribute__((always_inline)) void
retire_fast(conc_epoch *d, conc_epoch_node *n, void (*fn)(conc_epoch_node *), unsigned weight)
{
	if (conc__unlikely(!n || !fn))
		goto slow;
	rec *r = (rec *)last_ie; /* hot is rec's first member */
	if (conc__unlikely(__atomic_load_n(&r->hot.domain, __ATOMIC_RELAXED) != d))
		goto slow; /* (so d is not NULL here: no record's domain is) */
	uint64_t t = conc__ebr_retire_tag(&d->epoch, false);
	bag *b = &r->bags[t & 3];
	if (conc__unlikely(bag_tag(b) != t))
		goto slow;
	n->fn = fn;
	n->epoch = t;
	uint64_t w = rec_ops(r);
	if (conc__unlikely(!conc__ebr_own_enter(&r->ops, w, &r->steal, false))) {
		retire_asked(d, r, b, n, w, weight);
		return;
	}
	conc__ebr_own_push_plain(&b->head, n, &n->next);
	conc__ebr_own_exit(&r->ops, w);
	if (conc__unlikely(retire_due(r, w, weight, true)))
		retire_checked(d, r);
	return;
slow:
	retire_slow(d, n, fn, weight);
}

void conc_epoch_retire(conc_epoch *d, conc_epoch_node *n,
		       void (*fn)(conc_epoch_node *))
{
	retire_fast(d, n, fn, 1);
}

void conc__epoch_retire_batch(conc_epoch *d, conc_epoch_node *n,
			      void (*fn)(conc_epoch_node *), unsigned weight)
{
	retire_fast(d, n, fn, weight);
}

typedef struct deferred {
	conc_epoch_node node;
	void (*fn)(void *);
	void *arg;
} deferred;

static void run_deferred(conc_epoch_node *n)
{
	deferred *x = (deferred *)n;
	void (*fn)(void *) = x->fn;
	void *arg = x->arg;
	conc__chaos_poison(x, sizeof *x); /* our record, not the user's */
	free(x);
	fn(arg);
}

int conc_epoch_defer(conc_epoch *d, void (*fn)(void *), void *arg)
{
	if (!d || !fn)
		return EINVAL;
	CONC__LIFE_RETURN(d, CONC__LIFE_EPOCH);
	deferred *x = conc__malloc("epoch.defer", sizeof *x);
	if (!x)
		return ENOMEM;
	x->fn = fn;
	x->arg = arg;
	conc_epoch_retire(d, &x->node, run_deferred);
	return 0;
}

void conc_epoch_flush(conc_epoch *d)
{
	if (!d)
		return;
	CONC__LIFE_ABORT(d, CONC__LIFE_EPOCH, "conc_epoch_flush");
	try_advance(d);
	rec *r = find_rec(d);
	if (r) {
		rec_hold(r); /* the callbacks may pin other domains */
		collect_own(d, r);
		rec_release(r);
	}
	collect_orphans(d);
}

/* Take every list of d into one chain (under d->lock: records stay put),
 * through the bag handshake (see "Bags"), HELP_MAX records at a time. */
static conc_epoch_node *steal_all(conc_epoch *d)
{
	conc_epoch_node *all = NULL, *n;
	rec *asked[HELP_MAX];
	bool skipped[HELP_MAX];
	pthread_rwlock_rdlock(&d->lock);
	for (rec *r = d->records; r;) {
		unsigned k = 0;
		for (; r && k < HELP_MAX; r = r->next) {
			conc__ebr_steal_ask(&r->steal);
			asked[k++] = r;
		}
		steal_begin(asked, k, true, skipped);
		for (unsigned i = 0; i < k; i++)
			steal_bags(asked[i], UINT64_MAX, &all);
	}
	pthread_rwlock_unlock(&d->lock);
	for (n = take(&d->orphans); n;) {
		conc_epoch_node *next = n->next;
		n->next = all;
		all = n;
		n = next;
	}
	return all;
}

/* Waiting on other threads (readers to unpin, holders to finish): yield a
 * while, then sleep in short steps.  Nothing to be woken by: both are
 * rare, and readers never pay for a wake-up. */
static void pause_briefly(unsigned *spins)
{
	if ((*spins)++ < 64)
		sched_yield();
	else
		nanosleep(&(struct timespec){0, 50000}, NULL);
}

int conc_epoch_barrier(conc_epoch *d)
{
	if (!d)
		return EINVAL;
	CONC__LIFE_RETURN(d, CONC__LIFE_EPOCH);
	/* Pinned in d, or holding untracked pins, which hold d back too:
	 * waiting would wait for ourselves. */
	if (conc_epoch_is_pinned(d) || tls.untracked)
		return EDEADLK;
	pthread_once(&init_once, init);
	int saved = errno;
	unsigned spins = 0;
	atomic_fetch_add_explicit(&d->barriers, 1, memory_order_seq_cst);
	/* Everything retired before this call has a tag <= e0; once
	 * E >= e0 + GRACE all of it is due, wherever it sits. */
	uint64_t e0 = domain_epoch(d, __ATOMIC_SEQ_CST);
	while (load_epoch(d) < e0 + GRACE)
		if (!try_advance(d))
			pause_briefly(&spins);
	for (;;) {
		while (atomic_load_explicit(&d->holders, memory_order_seq_cst) != 0)
			pause_briefly(&spins);
		unsigned long h = atomic_load_explicit(&d->handoffs, memory_order_seq_cst);
		if (atomic_load_explicit(&d->holders, memory_order_seq_cst) != 0)
			continue;
		run_due(d, steal_all(d), load_epoch(d));
		if (atomic_load_explicit(&d->holders, memory_order_seq_cst) == 0 &&
		    atomic_load_explicit(&d->handoffs, memory_order_seq_cst) == h)
			break;
	}
	atomic_fetch_sub_explicit(&d->barriers, 1, memory_order_seq_cst);
	errno = saved;
	return 0;
}

int conc_epoch_destroy(conc_epoch *d)
{
	if (!d)
		return EINVAL;
	CONC__LIFE_RETURN(d, CONC__LIFE_EPOCH); /* a double destroy among them */
	if (d->is_global)
		return EINVAL;
#ifdef CONC_DEBUG_CHECKS
	/* A queue or stack still reclaiming through d (the caller must
	 * destroy it first): refused like a pinned thread. */
	if (atomic_load_explicit(&d->users, memory_order_relaxed) != 0)
		return EBUSY;
#endif
	pthread_rwlock_rdlock(&d->lock);
	/* acquire (both): as in all_at; a pin seen here makes destroy refuse */
	bool busy = atomic_load_explicit(&d->shared_pins, memory_order_acquire) != 0 ||
		    atomic_load_explicit(&untracked_pins, memory_order_acquire) != 0;
	for (rec *r = d->records; r && !busy; r = r->next)
		busy = state_pinned(rec_state(r, __ATOMIC_ACQUIRE));
	pthread_rwlock_unlock(&d->lock);
	if (busy)
		return EBUSY;
	/*
	 * No thread is pinned and none may call on d any more, so every node
	 * is unreachable: run them all.  Detaching every record under
	 * registry_lock moves their bags to the orphans and makes threads
	 * that used d see a free slot (their exit handlers skip it); repeat
	 * until a round finds nothing, since callbacks may retire more into d
	 * (registering this thread again).
	 */
	for (;;) {
		pthread_mutex_lock(&registry_lock);
		while (d->records)
			detach(d, d->records);
		conc_epoch_node *all = take(&d->orphans);
		if (!all) {
			/* Done: unlink d from the list of domains, still
			 * under registry_lock (fork's prepare walks it). */
			if (d->prev_domain)
				d->prev_domain->next_domain = d->next_domain;
			else
				domains = d->next_domain;
			if (d->next_domain)
				d->next_domain->prev_domain = d->prev_domain;
			pthread_mutex_unlock(&registry_lock);
			break;
		}
		pthread_mutex_unlock(&registry_lock);
		/* relaxed: a statistic */
		atomic_fetch_add_explicit(&d->freed, run_chain(all), memory_order_relaxed);
	}
	for (unsigned i = 0; i < OVF_SLOTS; i++)
		if (tls.ovfs[i].domain == d)
			tls.ovfs[i].domain = NULL;
	pthread_rwlock_destroy(&d->lock);
	CONC__LIFE_FREE(d); /* debug-checks builds: dead and quarantined */
	return 0;
}

void conc_epoch_get_stats(conc_epoch *d, conc_epoch_stats *out)
{
	if (!d || !out)
		return;
	CONC__LIFE_ABORT(d, CONC__LIFE_EPOCH, "conc_epoch_get_stats");
	pthread_once(&init_once, init); /* fork handlers before d->lock's first use */
	/* relaxed: statistics (get_stats promises no single instant) */
	uint64_t retired = atomic_load_explicit(&d->retired_gone, memory_order_relaxed);
	unsigned registered, stalling = 0;
	pthread_rwlock_rdlock(&d->lock);
	uint64_t e = domain_epoch(d, __ATOMIC_RELAXED);
	registered = d->registered;
	for (rec *r = d->records; r; r = r->next) {
		retired += rec_ops(r) >> 1;
		uint64_t s = rec_state(r, __ATOMIC_RELAXED);
		if (state_behind(s, e))
			stalling++;
	}
	pthread_rwlock_unlock(&d->lock);
	/* relaxed (this and the counts above): statistics, no ordering */
	long shared = atomic_load_explicit(&d->shared_pins, memory_order_relaxed) +
		      atomic_load_explicit(&untracked_pins, memory_order_relaxed);
	uint64_t freed = atomic_load_explicit(&d->freed, memory_order_relaxed);
	out->epoch = e;
	out->retired = retired;
	out->freed = freed;
	out->pending = retired > freed ? retired - freed : 0;
	out->registered = registered;
	out->stalling = stalling + (shared > 0 ? (unsigned)shared : 0);
}

#ifdef CONC_DEBUG_CHECKS
bool conc__epoch_alive(const conc_epoch *d)
{
	return CONC__LIFE_IS(d, CONC__LIFE_EPOCH);
}

void conc__epoch_users_add(conc_epoch *d, long delta)
{
	/* relaxed: create and destroy of the container happen-before the
	 * domain's destroy in a correct program (the order the header
	 * demands); a program that races them gets either answer */
	atomic_fetch_add_explicit(&d->users, delta, memory_order_relaxed);
}
#endif
