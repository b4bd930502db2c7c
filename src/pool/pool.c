/*
 * pool.c - the thread pool: work-stealing workers, an injector, parking.
 *
 * Structure.  Each worker owns a Chase-Lev deque (pool/deque.h).  A task
 * executed from inside a task goes on the current worker's deque (LIFO for
 * its owner, stolen FIFO by the others).  A task executed from outside goes
 * through the injector, a lock-free segmented FIFO (pool/injector.h).  A
 * task is two words, a function and its argument, copied into a slot: no
 * task record is allocated, so execute never calls malloc in steady state
 * (injector blocks are recycled, deque buffers only grow).
 *
 * Injector (pool/injector.h: its invariants, linearization points,
 *   progress and memory orders).  The pool uses it through
 *   inj_push (claim, fill, wake: the claim's seq_cst CAS is the publishing
 *   write of the parking protocol below; when it wakes, the pusher holds
 *   a count in `callers` across the fill and the wake, see inj_push), inj_pop (then a
 *   notify of room_park for executors held by max_queued), the close
 *   (destroy) and the seq_cst state read of the room_park re-check.  A
 *   worker passes the tail it saw last (seen_tail), so it reads tail_idx
 *   only once its head has caught up with it.
 *
 * Counting for conc_pool_wait.  Tasks are counted in when they become
 *   visible and out when they finish, in counters that only grow:
 *   in  = injector pushes (the tail position) + each worker's `spawned`;
 *   out = each worker's `done` + `outside_done` (tasks run outside the
 *   workers: conc__pool_run_one from other threads, destroy's leftovers).
 *   Per-worker counters have one writer (a load and a store, no RMW).  The
 *   check reads every `out` first, then every `in` (over the records
 *   published by then, a superset of those it read `out` from).  A task seen finished
 *   was counted in before it could be taken (its count precedes its
 *   publication, and its finish is a release the check acquires), so every
 *   task in the `out` sum is also in the later `in` sum; equal sums mean
 *   every task counted in has finished.  A task executed before wait was
 *   called is in `in`; a child is counted in before its parent finishes, so
 *   it is in `in` too.  (Tasks other threads keep executing while we wait
 *   may keep the sums apart: wait is not starvation-free against an endless
 *   stream, as the contract allows.)
 *
 * Parking (state list).  A worker is RUNNING (it has work), SEARCHING
 *   (counted in `searching`: spinning, stealing and yielding for about
 *   SEARCH_NS) or PARKED (in work_park).
 *   RUNNING -> SEARCHING: it found no task; it first tells waiters of
 *     conc_pool_wait (seq_cst fence, then a notify if any).
 *   SEARCHING -> RUNNING: it found a task; if it was the last searcher and
 *     a queue (the injector or a deque) still holds work, it wakes one more
 *     worker.  A worker
 *     that moves a batch from the injector to its deque wakes a sleeper
 *     too (fence, then the waiter count): the batch's other tasks must not
 *     wait behind the one it runs.
 *   SEARCHING -> PARKED: park_prepare, then searching--, then re-check the
 *     injector, every deque and its stop flag; wait only if all are empty.
 *   PARKED -> SEARCHING: woken (or the re-check found work); it clears
 *     `wake_pending` and searches, so that leaving the search with work
 *     still queued wakes the next worker (a chain of wakes: one per
 *     sleeper that work is left for).
 *   An outside push (its CAS is the seq_cst publishing write) then reads
 *   work_park's waiter count: one load when nobody sleeps.  If somebody
 *   sleeps, nobody searches (seq_cst load) or every searcher is stale
 *   (below), and no wake is in flight (wake_pending 0 -> 1), it wakes one.  No wake is lost: a searcher that
 *   the pusher relied on decrements `searching` after the pusher's load and
 *   re-checks after that, so it sees the task (the store-buffering argument
 *   of park.h, once for `searching`, once for the waiter count); a pusher
 *   skipped because wake_pending was 1 read it before the clear that some
 *   exiting or parking thread does next, and that thread searches (or
 *   re-checks) after its clear, so it sees the task.
 *   Stale searchers.  Relying on a searcher is right only while it runs: a
 *   searcher yields between rounds once its spins are over, and on a
 *   loaded machine a yield can give its CPU away for milliseconds, with
 *   `searching` still counting it - a pusher that skipped its wake then
 *   left the task waiting that long (issue 20: W9b's p99 was 3.5 ms
 *   against the mutex+condvar pool's 69 us under load).  So a searcher
 *   stores the time in search_beat when it starts and before each round
 *   that spins (at most every SEARCH_BEAT_NS), never before a round that
 *   yields, and a pusher that sees searchers but a beat older than
 *   SEARCH_STALE_NS wakes a sleeper all the same: searchers are relied on
 *   while they spin (the first few microseconds of a search), not while
 *   they yield.  This only adds
 *   wakes to the protocol above - the wake is skipped in a subset of the
 *   cases it was skipped before - so the argument for no lost wake-up is
 *   unchanged, and every memory order on the beat is relaxed: a beat read
 *   too old costs one needless wake (the woken worker finds the task gone,
 *   searches and parks again), one read too young is the old behaviour.
 *   Still at most one wake per push (wake_pending), and an idle pool
 *   still parks every worker after SEARCH_NS.
 *   A task pushed from inside a task (push_local): the
 *   deque's bottom is published with a release store and the waiter count
 *   then read relaxed, with only a compiler barrier between - a fence per
 *   push is what the fan-out path cannot afford.  The store may still sit
 *   in the store buffer when the load reads (the store-buffering shape), so
 *   the parker does the heavy half: after park_prepare's increment and
 *   fence it calls membarrier(PRIVATE_EXPEDITED) (park_barrier), which runs
 *   a full barrier on every CPU running one of our threads - the pusher's
 *   compiler barrier becomes a fence for that moment.  Then either the
 *   pusher's load came after the barrier and sees the waiter, or its store
 *   was drained by it and the re-check sees the task (the asymmetric fence
 *   of liburcu-memb and of src/epoch/epoch.c; modelled under x86-TSO in
 *   tests/models/park_push.pml, whose planted bug 1 is the code before).
 *   A pusher that sees a waiter goes into wake_one, which starts with a
 *   seq_cst fence: from there its reads of `searching` and wake_pending are
 *   ordered after its store, as an outside push's seq_cst CAS is.  Without
 *   membarrier (old kernels, seccomp) the parker sleeps with a deadline
 *   instead (PARK_FALLBACK_NS, doubling): a missed wake costs latency, never
 *   a hang.
 *
 * Worker lifetime (state list, per worker record; records live until
 *   destroy, so thieves may read a stopped worker's deque).
 *   launch 0 -> 1 (admin: go) or 0 -> 2 (admin: abort, on a failed create or
 *     grow; the thread exits without running a hook);
 *   running -> stopping: admin sets `stop` (seq_cst) and wakes all; the
 *     worker finishes its current task, runs on_stop, and if work is left in
 *     its deque or the injector it wakes another worker; admin joins it.
 *   resize and destroy are serialized by the `admin` mutex; workers never
 *   take it.  A resize counts itself among the callers (below), so
 *   destroy takes the mutex only once every resize has left.
 *
 * Shutdown (state list).  OPEN -> CLOSED: destroy sets the CLOSED bit of
 *   tail_idx (seq_cst RMW, conc__inj_close); later outside pushes fail (EPIPE) at their CAS.
 *   Tasks keep running and tasks executed by tasks are still accepted.
 *   CLOSED -> DRAINED: the counting check above holds (the caller sleeps
 *   on wait_park until it does).
 *   DRAINED -> ALONE: every outside caller still inside the pool has left
 *   (callers_wait: waiters, held executors, outside joins and loops,
 *   resizes), and what they pushed past the close is drained
 *   too; only then does destroy take the admin lock.
 *   ALONE -> JOINED: every worker stopped and joined; tasks executed by
 *   on_stop hooks run on the destroying thread; then everything is freed.
 *
 * Fork and exit (state list, p->gen against the process's pool_gen).
 *   USABLE (equal) -> FOREIGN: a fork; the child's atfork handler bumps
 *     pool_gen, so every pool made before it differs.  In the child the
 *     pool has no workers: execute, wait and resize refuse (EPIPE), the
 *     internal push of conc_join fails (its caller runs the job itself),
 *     and destroy frees the memory without joining.  One load of p->gen
 *     (the line of max_queued, which execute reads anyway) and one of
 *     pool_gen on the outside execute path; none on a worker's.
 *   USABLE -> GONE: the global pool at exit (global_exit): GEN_GONE is
 *     stored, then the workers are stopped and joined with a deadline.
 *
 * Pins left by a task.  worker_loop runs each task through
 *   run_top_task, which afterwards scans the thread's epoch slots and
 *   unpins what is left (nothing of the user's is on the stack there).
 *   Tasks run nested (conc__pool_run / run_one, from conc_join and the
 *   loops) are left to the guard of that call (src/parallel/parallel.c).
 */
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/syscall.h>
#include <linux/membarrier.h>

#include "conc/epoch.h"
#include "conc/pool.h"
#include "base/arch.h"
#include "base/atfork.h"
#include "base/atomics.h"
#include "base/backoff.h"
#include "base/chaos.h"
#include "base/check.h"
#include "pool/deque.h"
#include "pool/injector.h"
#include "epoch/epoch_internal.h"
#include "base/fault.h"
#include "base/mutant.h"
#include "base/pad.h"
#include "base/park.h"
#include "base/prng.h"
#include "base/threads.h"
#include "pool/pool_internal.h"

#define DEQUE_LOG2 8u      /* 256 tasks before the first growth */
#define BATCH 32u          /* most tasks a worker takes from the injector */
/* An idle worker searches (pauses, then yields between passes) for this long
 * before it parks, so that short bursts of work - a parallel loop called in
 * a loop, the next task group - find it awake; bounded, so an idle pool
 * costs nothing.  It ends after SEARCH_MIN_ROUNDS rounds and SEARCH_NS, or
 * once SEARCH_NS is over and it has started to yield: on a loaded machine a
 * yield may give the CPU away for a whole time slice, and 16 rounds of that
 * would keep a worker "searching" for tens of milliseconds.  (Issue 20
 * tried 20 us: W9b under load could not tell the two apart once its
 * sampling order was fixed, so the value stays.) */
#define SEARCH_NS 100000u      /* 100 us */
#define SEARCH_MIN_ROUNDS 16u
/* A searcher shows it is on a CPU by storing the time in search_beat, at
 * most every SEARCH_BEAT_NS; a pusher relies on the searchers (and skips
 * its wake) only while the last beat is younger than SEARCH_STALE_NS (see
 * "Stale searchers"). */
#define SEARCH_BEAT_NS 4000u
#define SEARCH_STALE_NS 25000u
/* Without membarrier: the first and the longest sleep of a parked worker
 * before it looks again (see "A task pushed from inside a task"). */
#define PARK_FALLBACK_NS 1000000u
#define PARK_FALLBACK_MAX_NS 128000000u
#define STEAL_TRIES 4

#define COLD __attribute__((noinline, cold))
#define NOINLINE __attribute__((noinline))

struct conc__worker {
	conc__deque dq;
	CONC_ALIGNED _Atomic uint64_t spawned; /* pushed on dq by tasks; one writer */
	_Atomic uint64_t done;                 /* tasks this worker finished; one writer */
	atomic_bool busy;
	uint64_t rng;       /* owner only */
	uint64_t seen_tail; /* owner only: the injector tail it saw last */
	unsigned ticks;     /* owner only: top-level tasks started (fairness) */
	CONC_ALIGNED atomic_int stop;
	atomic_int launch; /* 0 wait, 1 go, 2 abort */
	/* A broadcast for this worker to run (conc_pool_broadcast), or NULL:
	 * on stop's line, which the worker reads between tasks anyway. */
	_Atomic(struct bcast *) mail;
	conc_pool *pool;
	unsigned index;
	pthread_t thread; /* admin only */
};

struct conc_pool {
	/* the injector: poppers' line, pushers' line, spares */
	conc__injector inj;
	/* sleeping workers */
	CONC_ALIGNED conc__park work_park;
	atomic_uint searching;
	atomic_int wake_pending;
	_Atomic uint64_t search_beat; /* ns: a searcher was on a CPU then */
	/* conc_pool_wait / destroy waiters; outside executors held by max_queued */
	CONC_ALIGNED conc__park wait_park;
	/* Outside threads inside a call that may block on the pool (wait, an
	 * execute held by max_queued, conc_join and the loops from outside),
	 * plus CALLERS_DESTROY once destroy waits for them (futex word). */
	atomic_uint callers;
	conc__park room_park;
	_Atomic uint64_t outside_done;
	/* cold: configuration and administration */
	CONC_ALIGNED pthread_mutex_t admin;
	conc__park admin_park;
	atomic_uint started; /* workers past on_start, ever */
	atomic_uint nthreads;
	atomic_uint nrec; /* records 0..nrec-1 exist */
	conc_epoch *ebr;  /* retires grown deque buffers */
	size_t max_queued;
	/* The process generation the pool was made in (pool_gen), or
	 * GEN_GONE once the exit handler stopped the global pool's workers:
	 * when it differs from pool_gen the pool has no workers here.
	 * Relaxed: see pool_usable. */
	atomic_uint gen;
	size_t stack_size;
	void (*on_start)(unsigned, void *);
	void (*on_stop)(unsigned, void *);
	void *ctx;
	bool is_global;
	/* A group whose last reference went, kept for the next
	 * conc_group_create (see "Recycling" in the group section). */
	_Atomic(struct conc_group *) spare_group;
	CONC__LIFE_FIELD /* debug-checks builds: alive or dead (base/check.h) */
	char name[16];
	_Atomic(conc__worker *) rec[CONC_POOL_MAX_THREADS];
};

/* The calling thread's worker (of any pool), and the pools whose tasks it is
 * running outside their workers (a stack of frames on its own stack).
 * initial-exec in libconc.a: a plain %fs-relative access, no __tls_get_addr
 * call; the dynamic model in libconc.so (CONC__TLS_IE, base/arch.h). */
struct frame {
	conc_pool *p;
	struct frame *prev;
};
static _Thread_local conc__worker *tls_worker CONC__TLS_IE;

/* fork() and exit (the state list at the top): the process generation,
 * bumped in every fork child; a pool runs tasks only in the generation it
 * was made in.  GEN_GONE: the global pool after the exit handler. */
#define GEN_GONE UINT_MAX
static atomic_uint pool_gen;
static pthread_once_t global_once = PTHREAD_ONCE_INIT;
static void global_setup(void);

/* Whether p has workers in this process (false in a fork child, and for
 * the global pool once exit has begun).  relaxed (both): pool_gen changes
 * only in the child's atfork handler, while the child has one thread, so
 * every later reader in that process is ordered after it (thread creation);
 * p->gen changes only in the exit handler, and a call racing with exit may
 * be accepted or refused (documented in conc/pool.h). */
/* membarrier(PRIVATE_EXPEDITED) is registered for this process: set in
 * global_setup, before any pool has a worker (thread creation orders it),
 * and again in a fork child (one thread); read-only otherwise. */
static bool pool_membarrier;

static void membarrier_setup(void)
{
	int saved = errno;
	long q = syscall(__NR_membarrier, MEMBARRIER_CMD_QUERY, 0, 0);
	pool_membarrier = q > 0 && (q & MEMBARRIER_CMD_PRIVATE_EXPEDITED) &&
			  syscall(__NR_membarrier, MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED, 0, 0) == 0;
	errno = saved;
}

/* A full barrier on every CPU running one of our threads (see "A task
 * pushed from inside a task"); false when none could be had. */
static COLD bool park_barrier(void)
{
	if (!pool_membarrier)
		return false;
	int saved = errno;
	long r = syscall(__NR_membarrier, MEMBARRIER_CMD_PRIVATE_EXPEDITED, 0, 0);
	errno = saved;
	return r == 0;
}

static inline bool pool_usable(conc_pool *p)
{
	return atomic_load_explicit(&p->gen, memory_order_relaxed) ==
	       atomic_load_explicit(&pool_gen, memory_order_relaxed);
}
static _Thread_local struct frame *tls_frame CONC__TLS_IE;
_Thread_local void *conc__tls_root CONC__TLS_IE; /* pool/pool_internal.h */

bool conc__pool_usable(conc_pool *p)
{
	return pool_usable(p);
}

/* ---- small helpers ------------------------------------------------------ */

/* The PRNG state of a thread stealing outside any worker of ours (a
 * worker uses its record's). */
static _Thread_local uint64_t tls_rng CONC__TLS_IE;

static bool in_frames(conc_pool *p)
{
	for (struct frame *f = tls_frame; f; f = f->prev)
		if (f->p == p)
			return true;
	return false;
}

bool conc__pool_in_task(conc_pool *p)
{
	conc__worker *w = tls_worker;
	return (w && w->pool == p) || in_frames(p);
}

unsigned conc__pool_parked(conc_pool *p)
{
	/* seq_cst: a snapshot taken the way the notifiers read it */
	return atomic_load_explicit(&p->work_park.waiters, memory_order_seq_cst);
}

conc__worker *conc__pool_current(conc_pool *p)
{
	conc__worker *w = tls_worker;
	return w && w->pool == p ? w : NULL;
}

static unsigned nrec_of(conc_pool *p)
{
	/* acquire: pairs with the release store in get_record; records below
	 * it are published. */
	return atomic_load_explicit(&p->nrec, memory_order_acquire);
}

static conc__worker *rec_at(conc_pool *p, unsigned i)
{
	/* acquire: pairs with the release store in get_record. */
	return atomic_load_explicit(&p->rec[i], memory_order_acquire);
}

/* ---- the injector (pool/injector.h) ------------------------------------- */

static uint64_t inj_pushed(conc_pool *p)
{
	/* acquire (inside): see the counting argument at the top (a task's
	 * count is in the tail before the task can be taken and finished). */
	return conc__inj_pushed(&p->inj);
}

static uint64_t inj_popped(conc_pool *p)
{
	return conc__inj_popped(&p->inj); /* acquire: a snapshot */
}

static COLD void wake_one(conc_pool *p);
static void callers_enter(conc_pool *p);
static void callers_leave(conc_pool *p);

/* inj_push's slow path: fill, then wake (see there). */
static COLD NOINLINE void fill_then_wake(conc_pool *p, struct conc__inj_slot *s,
					 conc__task_fn fn, void *arg)
{
	callers_enter(p);
	conc__inj_fill(s, fn, arg);
	wake_one(p);
	callers_leave(p); /* our last access to p */
}

/*
 * Push fn(arg) at the injector's tail.  force: accepted after the close
 * (a task executing a task during destroy).  0, EPIPE, ENOMEM.
 *
 * Fill, then wake (issue 20).  The wake used to come first, because the
 * fill is what lets the task run and so a destroy drain the pool and free
 * p: after it, p may be gone.  But a worker woken before the fill can find
 * the slot claimed and empty, and waits for us (backing off into yields:
 * on a loaded machine, or when it was placed on our CPU, until we run
 * again).  So when somebody sleeps, the pusher counts itself in `callers`
 * before the fill and leaves after the wake: destroy waits for every
 * caller inside once the pool is drained (callers_wait), and our count is
 * seen there - the enter (seq_cst RMW) is sequenced before the fill, the
 * fill (release) is read by the popper that runs the task, whose finish
 * (release) destroy's drain check acquires before its RMW on `callers`,
 * so that RMW reads a value that includes ours.  When nobody sleeps the
 * fill is the last access to p, as before.  The parking argument is
 * unchanged: the claim's seq_cst CAS is still the publishing write (the
 * re-check of a parking worker counts a claimed slot as work and its pop
 * waits for the fill), and the waiter count is still read after it.
 */
static inline int inj_push(conc_pool *p, conc__task_fn fn, void *arg, bool force)
{
	struct conc__inj_slot *s;
	/* The claim's seq_cst CAS is the publishing write of the park
	 * protocol (a sleeper's re-check reads the tail after its fence). */
	int err = conc__inj_claim(&p->inj, force, &s);
	if (conc__unlikely(err))
		return err;
	if (conc__unlikely(conc__park_has_waiters(&p->work_park)))
		fill_then_wake(p, s, fn, arg);
	else
		conc__inj_fill(s, fn, arg);
	return 0;
}

/* Take up to max tasks from the injector (conc__inj_pop); then let an
 * executor held by max_queued look again (the pop's seq_cst CAS on the
 * head is room_park's publishing write). */
static unsigned inj_pop(conc_pool *p, conc__task *out, unsigned max, uint64_t *seen)
{
	unsigned n = conc__inj_pop(&p->inj, out, max, seen);
	if (n && p->max_queued && conc__park_has_waiters(&p->room_park))
		conc__park_notify_all(&p->room_park);
	return n;
}

/* ---- finding and running tasks ----------------------------------------- */

/* Steal from a random victim (any task, or only tasks tagged `tag`). */
static bool steal_from(conc_pool *p, conc__worker *self, conc__task *t, bool any,
		       void *tag)
{
	unsigned n = nrec_of(p);
	if (n == 0)
		return false;
	uint64_t *seed = self ? &self->rng : &tls_rng;
	if (conc__unlikely(*seed == 0))
		*seed = conc__rand_seed((uint64_t)(uintptr_t)seed);
	unsigned start = conc__rand_below(seed, n);
	for (unsigned i = 0; i < n; i++) {
		conc__worker *v = rec_at(p, (start + i) % n);
		if (!v || v == self)
			continue;
		conc__chaos_point(); /* the steal path */
		for (int k = 0; k < STEAL_TRIES; k++) {
			int r = conc__deque_steal_if(&v->dq, t, any, tag);
			if (r == CONC__STEAL_OK)
				return true;
			if (r == CONC__STEAL_EMPTY)
				break;
		}
	}
	return false;
}

/* The injector (a batch moves to w's deque), then the other deques. */
static NOINLINE bool find_shared_task(conc_pool *p, conc__worker *w,
							conc__task *t)
{
	if (w) {
		conc__task batch[BATCH];
		int64_t room = conc__deque_room(&w->dq) + 1;
		unsigned max = room < (int64_t)BATCH ? (unsigned)room : BATCH;
		unsigned n = inj_pop(p, batch, max, &w->seen_tail);
		if (n) {
			*t = batch[0];
			if (n > 1) {
				conc__deque_push_n(&w->dq, batch + 1,
						   n - 1 - CONC__MUTANT_VALUE(10, 0, 1));
				/* The rest of the batch waits in our deque while
				 * we run t, which may take long or even wait for
				 * one of them: a sleeper must be woken to steal
				 * them.  seq_cst fence + load: the pusher half of
				 * the parking argument (a parking worker re-checks
				 * every deque after its prepare); once per batch,
				 * not per task. */
				conc_fence(memory_order_seq_cst);
				if (conc__park_has_waiters(&p->work_park))
					wake_one(p);
			}
			return true;
		}
	} else if (inj_pop(p, t, 1, NULL)) {
		return true;
	}
	return steal_from(p, w, t, true, NULL);
}

/*
 * Fairness.  A worker pops its own deque first, so a
 * task that re-executes itself would hold its worker for ever while the
 * injector - and the old end of its own deque, where a batch taken from
 * the injector waits - never get a turn.  So every CONC_POOL_FAIR_EVERY
 * top-level tasks a worker takes its next one from elsewhere first: the
 * injector's oldest (one task, no batch) on one turn, the oldest of its own
 * deque (a steal from itself) on the next, each falling back on the other
 * and then on the usual order.  A task in the injector thus starts after
 * at most 2 x CONC_POOL_FAIR_EVERY tasks on every busy worker, plus the
 * injector tasks ahead of it (rayon and Go's scheduler do the same, with 61
 * and 1/61).  Cost: a counter and a predicted branch per top-level task.
 */
static COLD bool fair_turn(conc_pool *p, conc__worker *w, conc__task *t)
{
	bool own_first = w->ticks & CONC_POOL_FAIR_EVERY;
	for (int k = 0; k < 2; k++, own_first = !own_first) {
		if (own_first) {
			if (conc__deque_steal(&w->dq, t) == CONC__STEAL_OK)
				return true;
		} else if (inj_pop(p, t, 1, &w->seen_tail)) {
			return true;
		}
	}
	return false;
}

/* One pass: w's deque, the injector, the other deques.  w is p's worker or
 * NULL. */
static inline bool find_task(conc_pool *p, conc__worker *w, conc__task *t)
{
	if (w && conc__deque_pop(&w->dq, t))
		return true;
	return find_shared_task(p, w, t);
}

static void run_worker_task(conc__worker *w, conc__task t)
{
	t.fn(t.arg);
	uint64_t d = atomic_load_explicit(&w->done, memory_order_relaxed); /* own */
	/* release: the task's effects happen-before a waiter's acquire read
	 * of this count (all_done). */
	atomic_store_explicit(&w->done, d + 1, memory_order_release);
}

/* The pins a task left behind: with nothing of the user's on
 * the worker's stack, every pin is one it left; undo them all, so that the
 * next task does not run pinned and the domains do not stall. */
static COLD void unpin_left(void)
{
	conc__epoch_pins_restore(NULL);
}

/*
 * A task run by worker_loop itself (not nested in another task).  busy is
 * true exactly while it runs and drops before the task is counted done, so
 * that after conc_pool_wait has returned (it acquires the count) active
 * reads 0.  The pin check reads the state words of the thread's 8 epoch
 * records and two counts of its shared-path pins.
 */
static void run_top_task(conc__worker *w, conc__task t)
{
	atomic_store_explicit(&w->busy, true, memory_order_relaxed); /* a statistic */
	t.fn(t.arg);
	if (conc__unlikely(conc__epoch_pinned_anywhere()))
		unpin_left();
	/* relaxed: a statistic; ordered before the release of done below,
	 * which a waiter acquires. */
	atomic_store_explicit(&w->busy, false, memory_order_relaxed);
	uint64_t d = atomic_load_explicit(&w->done, memory_order_relaxed); /* own */
	/* release: as in run_worker_task */
	atomic_store_explicit(&w->done, d + 1, memory_order_release);
}

static void run_outside_task(conc_pool *p, conc__task t)
{
	struct frame f = {p, tls_frame};
	tls_frame = &f;
	t.fn(t.arg);
	tls_frame = f.prev;
	/* seq_cst: releases the task's effects (as in run_worker_task) and is
	 * the publishing write for wait_park: this may have been the last. */
	atomic_fetch_add_explicit(&p->outside_done, 1, memory_order_seq_cst);
	conc__park_notify_all(&p->wait_park);
}

static void group_token(void *arg);
static void group_token_defer(void *arg);

void conc__pool_run(conc_pool *p, conc__worker *w, conc__task t)
{
	CONC__CHECK(!w || w->pool == p, "pool: a worker runs only its own pool's tasks");
	/* Every run through here is nested in a wait (conc_join's pops, a
	 * waiter's help): a group token is passed on, not run (see "Tokens
	 * run at top level" in the group section). */
	if (conc__unlikely(t.fn == group_token))
		t.fn = group_token_defer;
	if (w)
		run_worker_task(w, t);
	else
		run_outside_task(p, t);
}

bool conc__pool_run_one(conc_pool *p, conc__worker *w)
{
	conc__task t;
	if (!find_task(p, w, &t))
		return false;
	conc__pool_run(p, w, t);
	return true;
}

bool conc__pool_pop_local(conc__worker *w, conc__task *t)
{
	return conc__deque_pop(&w->dq, t);
}

bool conc__pool_pop_above(conc__worker *w, int64_t pos, conc__task *t)
{
	/* relaxed: our own bottom */
	if (atomic_load_explicit(&w->dq.bottom, memory_order_relaxed) <= pos)
		return false;
	return conc__deque_pop(&w->dq, t);
}

bool conc__pool_help(conc_pool *p, conc__worker *w, void *tag)
{
	conc__task t;
	if (!steal_from(p, w, &t, false, tag))
		return false;
	conc__pool_run(p, w, t);
	return true;
}

/* conc_join's lazy offers (pool/pool_internal.h). */
void conc__pool_idle_words(conc_pool *p, const atomic_uint **searching,
			   const atomic_uint **parked)
{
	*searching = &p->searching;
	*parked = &p->work_park.waiters;
}

bool conc__pool_deque_empty(conc__worker *w)
{
	return conc__deque_size(&w->dq) == 0;
}

/* True when every task counted in has finished (see the top). */
static bool all_done(conc_pool *p)
{
	unsigned n = nrec_of(p);
	/* acquire (all loads here): pairs with the release counts in
	 * run_*_task and push_local. */
	uint64_t out = atomic_load_explicit(&p->outside_done, memory_order_acquire);
	for (unsigned i = 0; i < n; i++)
		out += atomic_load_explicit(&rec_at(p, i)->done, memory_order_acquire);
	/* Records are read again: a task counted out above may have been
	 * spawned by a worker whose record was published after the first
	 * read of nrec (a concurrent grow); that publication happens-before
	 * the count we read, so this second read covers it. */
	n = nrec_of(p);
	uint64_t in = 0;
	for (unsigned i = 0; i < n; i++)
		in += atomic_load_explicit(&rec_at(p, i)->spawned, memory_order_acquire);
	in += inj_pushed(p);
	CONC__CHECK(out <= in, "pool: every finished task was counted in first");
	return out == in; /* LP: wait (when true) */
}

/* Some task is queued (injector or any deque). */
static bool work_available(conc_pool *p)
{
	if (inj_pushed(p) != inj_popped(p))
		return true;
	unsigned n = nrec_of(p);
	for (unsigned i = 0; i < n; i++) {
		conc__worker *w = rec_at(p, i);
		if (w && conc__deque_size(&w->dq))
			return true;
	}
	return false;
}

/* A thread ran out of work: a conc_pool_wait may be able to return. */
static void idle_notify(conc_pool *p)
{
	/* seq_cst fence: our `done` stores are release only; the fence makes
	 * them the publishing write of the park protocol. */
	conc_fence(memory_order_seq_cst);
	conc__park_notify_all(&p->wait_park);
}

/* ---- waking workers ------------------------------------------------------ */

/* Whether the searchers' last beat is older than SEARCH_STALE_NS: nobody
 * searching has been on a CPU lately (see "Stale searchers").  relaxed: a
 * hint; whatever it reads, the wake decision stays safe. */
static bool searchers_stale(conc_pool *p)
{
	uint64_t beat = atomic_load_explicit(&p->search_beat, memory_order_relaxed);
	return conc__now_ns() - beat > SEARCH_STALE_NS;
}

bool conc__pool_searchers_stale(conc_pool *p)
{
	return searchers_stale(p);
}

/* Somebody sleeps (the caller saw work_park's waiters > 0). */
static COLD void wake_one(conc_pool *p)
{
	/* seq_cst fence: orders the caller's publishing store (push_local's
	 * release store of bottom) before the loads below, as an outside
	 * push's seq_cst CAS is; only paid when somebody sleeps. */
	conc_fence(memory_order_seq_cst);
	/* seq_cst loads/RMW: the searcher and wake_pending halves of the
	 * argument at the top.  A stale searcher is not relied on (see "Stale
	 * searchers"): that only adds wakes. */
	if (atomic_load_explicit(&p->searching, memory_order_seq_cst) != 0 &&
	    !searchers_stale(p))
		return;
	if (atomic_load_explicit(&p->wake_pending, memory_order_seq_cst) ||
	    atomic_exchange_explicit(&p->wake_pending, 1, memory_order_seq_cst))
		return;
	conc__park_wake(&p->work_park, 0);
}

/* Push on w's deque (tag: see conc__pool_push_job); ENOMEM when the deque
 * cannot grow (nothing pushed). */
static inline int push_deque(conc__worker *w, conc__task_fn fn, void *arg, void *tag)
{
	conc_pool *p = w->pool;
	/* spawned is counted in before the task is published (the release
	 * store of bottom); see the counting argument. */
	if (conc__unlikely(conc__deque_push(&w->dq, fn, arg, tag, &w->spawned) != 0))
		return ENOMEM;
	/* Compiler barrier: the load stays after the store in the code; the
	 * CPU may still let it pass the store, which the parker's membarrier
	 * makes up for (see "A task pushed from inside a task").  relaxed:
	 * the same argument. */
	atomic_signal_fence(memory_order_seq_cst);
	if (conc__unlikely(atomic_load_explicit(&p->work_park.waiters, memory_order_relaxed) != 0))
		wake_one(p);
	return 0;
}

static NOINLINE int push_local(conc__worker *w, conc__task_fn fn, void *arg)
{
	if (conc__unlikely(push_deque(w, fn, arg, NULL) != 0))
		return inj_push(w->pool, fn, arg, true);
	return 0;
}

int conc__pool_push_local(conc__worker *w, conc__task_fn fn, void *arg)
{
	return push_local(w, fn, arg);
}

int conc__pool_push_job(conc__worker *w, conc__task_fn fn, void *arg, void *tag,
			int64_t *pos)
{
	/* relaxed: our own bottom; the task lands there */
	*pos = atomic_load_explicit(&w->dq.bottom, memory_order_relaxed);
	return push_deque(w, fn, arg, tag);
}

int conc__pool_push_shared(conc_pool *p, conc__task_fn fn, void *arg)
{
	if (conc__unlikely(!pool_usable(p)))
		return EPIPE; /* the caller runs it itself */
	return inj_push(p, fn, arg, true);
}

/* ---- workers --------------------------------------------------------------- */

static bool stop_requested(conc__worker *w)
{
	/* acquire: pairs with the admin's seq_cst store of stop, so that what
	 * the resizing/destroying thread did before is visible to on_stop. */
	return atomic_load_explicit(&w->stop, memory_order_acquire) != 0;
}

static void clear_wake_pending(conc_pool *p)
{
	/* seq_cst: the clearing half of the wake_pending argument. */
	atomic_store_explicit(&p->wake_pending, 0, memory_order_seq_cst);
}

/* ---- broadcast ---------------------------------------------------------------- */

/*
 * conc_pool_broadcast hands each worker a pointer to one `struct bcast` in
 * its record's mail word (seq_cst store, then a notify of every sleeper);
 * a worker looks at its mail between top-level tasks, on each round of its
 * search and in the re-check before it parks (so a sleeping worker is woken
 * for it: the store-buffering argument of base/park.h, with the mail word
 * as the condition).  It takes the pointer (exchange), runs fn, checks its
 * pins as after a task, and counts itself in `done` (seq_cst, the
 * publishing write of admin_park, where the broadcaster sleeps).  After
 * that increment the record is on the broadcaster's stack and may be gone:
 * only the pool is touched.  Broadcasts hold the admin lock, so the set of
 * workers does not change under one and one mail word suffices.
 */
struct bcast {
	void (*fn)(unsigned index, void *ctx);
	void *ctx;
	atomic_uint done;
};

static inline bool has_mail(conc__worker *w)
{
	/* relaxed: a peek on the worker's own stop line; run_mail's exchange
	 * acquires. */
	return atomic_load_explicit(&w->mail, memory_order_relaxed) != NULL;
}

static COLD void run_mail(conc__worker *w)
{
	/* acquire: pairs with the broadcaster's seq_cst store (fn, ctx and
	 * everything it did before). */
	struct bcast *b = atomic_exchange_explicit(&w->mail, NULL, memory_order_acquire);
	if (!b)
		return;
	conc_pool *p = w->pool;
	b->fn(w->index, b->ctx);
	if (conc__unlikely(conc__epoch_pinned_anywhere()))
		unpin_left(); /* a broadcast counts as a task for pins */
	/* seq_cst: releases fn's effects to the broadcaster's acquire, and is
	 * the publishing write of admin_park. */
	atomic_fetch_add_explicit(&b->done, 1, memory_order_seq_cst);
	conc__park_notify_all(&p->admin_park);
}

/* A top-level task for w: find_task, with the fairness turn. */
static inline bool find_top_task(conc_pool *p, conc__worker *w, conc__task *t)
{
	if (conc__unlikely(has_mail(w)))
		run_mail(w);
	if (conc__unlikely((++w->ticks & (CONC_POOL_FAIR_EVERY - 1)) == 0) &&
	    fair_turn(p, w, t))
		return true;
	return find_task(p, w, t);
}

static void worker_loop(conc__worker *w)
{
	conc_pool *p = w->pool;
	conc__task t;
	uint64_t park_ns = PARK_FALLBACK_NS; /* without membarrier only */
	for (;;) {
		/* RUNNING */
		while (!stop_requested(w) && find_top_task(p, w, &t))
			run_top_task(w, t);
		if (stop_requested(w))
			return;
		idle_notify(p);

	search:
		/* SEARCHING.  The beat before the count: a pusher that sees
		 * the count (seq_cst RMW, release) sees this beat or a later
		 * one (relaxed store, ordered before the RMW). */
		;
		uint64_t now = conc__now_ns(), beat = now;
		atomic_store_explicit(&p->search_beat, now, memory_order_relaxed);
		atomic_fetch_add_explicit(&p->searching, 1, memory_order_seq_cst);
		conc__backoff bo = CONC__BACKOFF_INIT;
		bool found = false;
		uint64_t until = now + SEARCH_NS;
		for (unsigned r = 0; !stop_requested(w); r++) {
			/* Beat only before a round that spins: a beat promises
			 * a look within a few microseconds, and a yield may
			 * give the CPU away for milliseconds.  relaxed: a hint
			 * (see "Stale searchers"). */
			if (r > 0)
				now = conc__now_ns();
			if (!conc__backoff_is_yielding(&bo) && now - beat >= SEARCH_BEAT_NS) {
				beat = now;
				atomic_store_explicit(&p->search_beat, now, memory_order_relaxed);
			}
			conc__backoff_spin(&bo);
			conc__test_point("pool.search.round");
			conc__chaos_point(); /* searching: the idle path */
			if (conc__unlikely(has_mail(w)))
				run_mail(w);
			if (find_task(p, w, &t)) {
				found = true;
				break;
			}
			if (now >= until &&
			    (r >= SEARCH_MIN_ROUNDS || conc__backoff_is_yielding(&bo)))
				break;
		}
		if (found) {
			/* seq_cst RMW, then a seq_cst fence before the loads of
			 * work_available: the searcher half of the wake
			 * argument (a pusher that saw us searching skipped its
			 * wake; the last searcher to leave looks at every
			 * queue - the injector and the deques, where a batch
			 * may wait behind a task that blocks - and hands the
			 * wake on). */
			if (atomic_fetch_sub_explicit(&p->searching, 1, memory_order_seq_cst) == 1) {
				conc_fence(memory_order_seq_cst);
				if (conc__park_has_waiters(&p->work_park) && work_available(p))
					wake_one(p);
			}
			run_top_task(w, t);
			continue;
		}

		/* PARKED.  searching drops before prepare, so that prepare's
		 * fence orders the re-check below after it: a pusher that saw
		 * us searching (and so skipped its wake) published its task
		 * before that load, and the fence makes our re-check see it. */
		clear_wake_pending(p);
		atomic_fetch_sub_explicit(&p->searching, 1, memory_order_seq_cst);
		unsigned key = conc__park_prepare(&p->work_park);
		/* After the announce, before the re-check: the pusher's half
		 * of push_local's wake (see the top). */
		bool barrier = park_barrier();
		/* acquire (mail): the waiter's re-check, after prepare's
		 * fence, of the broadcaster's seq_cst store. */
		if (stop_requested(w) || atomic_load_explicit(&w->mail, memory_order_acquire) ||
		    work_available(p)) {
			conc__park_cancel(&p->work_park);
		} else if (barrier) {
			park_ns = PARK_FALLBACK_NS;
			conc__park_wait(&p->work_park, key, CONC__NO_DEADLINE);
		} else {
			conc__park_wait(&p->work_park, key, conc__deadline_after(park_ns));
			if (park_ns < PARK_FALLBACK_MAX_NS)
				park_ns *= 2;
		}
		clear_wake_pending(p);
		/* Woken (or the re-check found work): search, counted in
		 * `searching`, rather than run straight away.  A pusher that
		 * skipped its wake because ours was pending relies on us, and
		 * the task we find first may not be the one it left (another
		 * worker's deque may hold it, behind a task that blocks): as a
		 * searcher we hand the wake on when we leave with work still
		 * queued. */
		if (stop_requested(w))
			return;
		goto search;
	}
}

static bool launched(void *w)
{
	/* acquire: pairs with the admin's seq_cst store of launch (the
	 * record's fields, the pool). */
	return atomic_load_explicit(&((conc__worker *)w)->launch, memory_order_acquire) != 0;
}

static void wait_launch(conc__worker *w, conc_pool *p)
{
	conc__park_wait_until(&p->admin_park, launched, w, CONC__NO_DEADLINE, NULL, NULL);
}

static void *worker_main(void *arg)
{
	conc__worker *w = arg;
	conc_pool *p = w->pool;
	char name[32]; /* prefix (<= 15) + '-' + index (<= 10) fits */
	snprintf(name, sizeof name, "%s-%u", p->name, w->index);
	name[15] = '\0'; /* the 15 characters Linux keeps */
	pthread_setname_np(pthread_self(), name);

	wait_launch(w, p);
	if (atomic_load_explicit(&w->launch, memory_order_relaxed) == 2) /* read acquire above */
		return NULL; /* create/grow failed: leave without a hook */
	tls_worker = w;
	if (p->on_start) {
		p->on_start(w->index, p->ctx);
		if (conc__epoch_pinned_anywhere())
			unpin_left(); /* the hook is a task for these rules */
	}
	/* seq_cst: the publishing write for the admin's park. */
	atomic_fetch_add_explicit(&p->started, 1, memory_order_seq_cst);
	conc__park_notify_all(&p->admin_park);

	worker_loop(w);
	/* A worker stopped by a shrink may have finished the last task a
	 * conc_pool_wait is waiting for; it leaves without going idle, so tell
	 * the waiters here (fence + notify, as idle_notify does). */
	idle_notify(p);

	if (p->on_stop)
		p->on_stop(w->index, p->ctx);
	tls_worker = NULL;
	/* Work left in our deque (or a wake we absorbed): hand it on.  The
	 * records outlive us, so the others can still steal from ours. */
	clear_wake_pending(p);
	conc_fence(memory_order_seq_cst); /* publishing write: the deque's */
	if (work_available(p))
		conc__park_notify_one(&p->work_park);
	return NULL;
}

/* ---- administration -------------------------------------------------------- */

static int get_record(conc_pool *p, unsigned i, conc__worker **out)
{
	conc__worker *w = rec_at(p, i);
	if (!w) {
		w = conc__aligned_alloc("pool.worker", CONC_PAD, sizeof *w);
		if (!w)
			return ENOMEM;
		memset(w, 0, sizeof *w);
		if (conc__deque_init(&w->dq, DEQUE_LOG2, p->ebr)) {
			free(w);
			return ENOMEM;
		}
		atomic_init(&w->spawned, 0);
		atomic_init(&w->done, 0);
		atomic_init(&w->busy, false);
		w->pool = p;
		w->index = i;
		w->rng = conc__rand_seed(i + 1);
		/* release (both): publish the record to thieves and counters. */
		atomic_store_explicit(&p->rec[i], w, memory_order_release);
		if (i >= atomic_load_explicit(&p->nrec, memory_order_relaxed)) /* admin only */
			atomic_store_explicit(&p->nrec, i + 1, memory_order_release);
	}
	atomic_store_explicit(&w->stop, 0, memory_order_relaxed); /* thread not started yet */
	atomic_store_explicit(&w->launch, 0, memory_order_relaxed); /* as stop */
	atomic_store_explicit(&w->mail, NULL, memory_order_relaxed); /* as stop */
	*out = w;
	return 0;
}

/* Admin: tell workers [from, to) to launch (1) or abort (2). */
static void launch_all(conc_pool *p, unsigned from, unsigned to, int how)
{
	for (unsigned i = from; i < to; i++)
		/* seq_cst: the publishing write for the launch park. */
		atomic_store_explicit(&rec_at(p, i)->launch, how, memory_order_seq_cst);
	conc__park_notify_all(&p->admin_park);
}

/* The admin's condition: `target` workers are past on_start. */
struct started_wait {
	conc_pool *p;
	unsigned target;
};

static bool all_started(void *arg)
{
	struct started_wait *sw = arg;
	/* acquire: pairs with the workers' seq_cst increments (what their
	 * on_start did). */
	return atomic_load_explicit(&sw->p->started, memory_order_acquire) >= sw->target;
}

/* Admin: start workers [from, to); on failure nothing is left running. */
static int start_workers(conc_pool *p, unsigned from, unsigned to)
{
	pthread_attr_t attr;
	if (pthread_attr_init(&attr))
		return ENOMEM;
	if (p->stack_size && pthread_attr_setstacksize(&attr, p->stack_size)) {
		pthread_attr_destroy(&attr);
		return EINVAL;
	}
	int err = 0;
	unsigned i = from;
	bool retried = false;
	for (; i < to; i++) {
		conc__worker *w;
		err = get_record(p, i, &w);
		if (err)
			break;
		/* Idle threads of the scope cache (up to 64, for a second)
		 * count against RLIMIT_NPROC: on EAGAIN ask the modules that
		 * keep idle threads to let them go (base/threads.h), and retry
		 * once if any had some. */
		for (;;) {
			err = conc__thread_create("pool.thread", &w->thread, &attr, worker_main, w);
			if (err != EAGAIN || retried)
				break;
			retried = true;
			if (!conc__threads_release_idle())
				break;
		}
		if (err) {
			err = err == EAGAIN || err == ENOMEM ? EAGAIN : err;
			break;
		}
	}
	pthread_attr_destroy(&attr);
	if (err) {
		launch_all(p, from, i, 2);
		for (unsigned k = from; k < i; k++)
			pthread_join(rec_at(p, k)->thread, NULL);
		return err;
	}
	/* relaxed: no worker of ours is past on_start yet (none launched). */
	unsigned target = atomic_load_explicit(&p->started, memory_order_relaxed) + (to - from);
	launch_all(p, from, to, 1);
	/* Wait until every new worker's on_start has returned. */
	struct started_wait sw = {p, target};
	conc__park_wait_until(&p->admin_park, all_started, &sw, CONC__NO_DEADLINE, NULL, NULL);
	atomic_store_explicit(&p->nthreads, to, memory_order_relaxed); /* a statistic */
	return 0;
}

/* Admin: stop and join workers [from, to). */
static void stop_workers(conc_pool *p, unsigned from, unsigned to)
{
	for (unsigned i = from; i < to; i++)
		/* seq_cst: the publishing write for work_park. */
		atomic_store_explicit(&rec_at(p, i)->stop, 1, memory_order_seq_cst);
	conc__park_notify_all(&p->work_park);
	for (unsigned i = from; i < to; i++)
		pthread_join(rec_at(p, i)->thread, NULL);
}

static void group_free(conc_group *g);

static void free_pool(conc_pool *p)
{
	/* relaxed (here and below): every worker has been joined. */
	unsigned n = atomic_load_explicit(&p->nrec, memory_order_relaxed);
	for (unsigned i = 0; i < n; i++) {
		conc__worker *w = rec_at(p, i);
		if (w) {
			conc__deque_fini(&w->dq);
			free(w);
		}
	}
	conc__inj_fini(&p->inj); /* workers joined: nobody else touches it */
	/* relaxed: as above (the last recycler ran on a joined worker or on a
	 * thread whose destroy call happens-before ours) */
	conc_group *spare = atomic_load_explicit(&p->spare_group, memory_order_relaxed);
	if (spare)
		group_free(spare);
	if (p->ebr)
		conc_epoch_destroy(p->ebr); /* runs the pending buffer frees */
	pthread_mutex_destroy(&p->admin);
	CONC__LIFE_FREE(p); /* debug-checks builds: dead and quarantined */
}

int conc_pool_create(conc_pool **out, const conc_pool_config *cfg)
{
	static const conc_pool_config defaults;
	if (!out)
		return EINVAL;
	if (!cfg)
		cfg = &defaults;
	unsigned n = cfg->threads ? cfg->threads : conc_cpu_count();
	if (n > CONC_POOL_MAX_THREADS)
		return EINVAL;
	if (cfg->stack_size && cfg->stack_size < (size_t)PTHREAD_STACK_MIN)
		return EINVAL;

	conc_pool *p = conc__aligned_alloc("pool.create", CONC_PAD, sizeof *p);
	if (!p)
		return ENOMEM;
	memset(p, 0, sizeof *p);
	CONC__LIFE_SET(p, CONC__LIFE_POOL);
	if (conc__inj_init(&p->inj)) {
		free(p);
		return ENOMEM;
	}
	conc__park_init(&p->work_park);
	conc__park_init(&p->wait_park);
	conc__park_init(&p->room_park);
	conc__park_init(&p->admin_park);
	atomic_init(&p->searching, 0);
	atomic_init(&p->callers, 0);
	atomic_init(&p->wake_pending, 0);
	atomic_init(&p->search_beat, 0);
	atomic_init(&p->spare_group, NULL);
	atomic_init(&p->outside_done, 0);
	atomic_init(&p->started, 0);
	atomic_init(&p->nthreads, 0);
	atomic_init(&p->nrec, 0);
	for (unsigned i = 0; i < CONC_POOL_MAX_THREADS; i++)
		atomic_init(&p->rec[i], NULL);
	p->max_queued = cfg->max_queued;
	p->stack_size = cfg->stack_size ? conc__round_up(cfg->stack_size, (size_t)sysconf(_SC_PAGESIZE)) : 0;
	p->on_start = cfg->on_start;
	p->on_stop = cfg->on_stop;
	p->ctx = cfg->ctx;
	snprintf(p->name, sizeof p->name, "%s", cfg->name ? cfg->name : "conc-pool");
	pthread_mutex_init(&p->admin, NULL);
	/* The atfork and exit handlers, for every pool. */
	pthread_once(&global_once, global_setup);
	atomic_init(&p->gen, atomic_load_explicit(&pool_gen, memory_order_relaxed)); /* see pool_usable */
	int err = conc_epoch_create(&p->ebr);
	if (err) {
		p->ebr = NULL;
		free_pool(p);
		return err;
	}
	err = start_workers(p, 0, n);
	if (err) {
		free_pool(p);
		return err;
	}
	*out = p;
	return 0;
}

/*
 * Callers inside the pool.  An outside thread
 * whose call may block on p - conc_pool_wait, an execute held by
 * max_queued, conc_join and the loops from outside - counts itself in
 * `callers` from its first access to p to its last.  Destroy, once the
 * pool is drained, sets CALLERS_DESTROY and sleeps on the word until the
 * count is zero; the caller that brings it there wakes it, using only the
 * word's address after its decrement (a futex wake on freed memory is
 * harmless: the kernel only hashes the address).  States of the word:
 *   n (n callers inside) -> n+1 (enter) / n-1 (leave), any thread;
 *   n -> n | CALLERS_DESTROY (destroy, once, after the drain);
 *   CALLERS_DESTROY | 1 -> CALLERS_DESTROY (the last leave: it wakes
 *   destroy, which then frees).
 * A call still on its way in (before its enter) when destroy frees the pool
 * is the window conc/pool.h documents for every call.
 */
#define CALLERS_DESTROY 0x80000000u

static void callers_enter(conc_pool *p)
{
	/* seq_cst: in the single order with destroy's RMW and loads, so a
	 * caller counted before destroy looks is seen. */
	atomic_fetch_add_explicit(&p->callers, 1, memory_order_seq_cst);
}

static void callers_leave(conc_pool *p)
{
	/* release: everything this caller did to p happens-before destroy's
	 * acquire load of the count, and so before the free.  After this
	 * RMW p may be freed: only the word's address is used. */
	unsigned v = atomic_fetch_sub_explicit(&p->callers, 1, memory_order_release) - 1;
	if (conc__unlikely(v == CALLERS_DESTROY))
		conc__futex_wake(&p->callers, 1);
}

void conc__pool_enter(conc_pool *p)
{
	callers_enter(p);
}

void conc__pool_leave(conc_pool *p)
{
	callers_leave(p);
}

/* Destroy: wait until every caller inside has left (see above). */
static void callers_wait(conc_pool *p)
{
	/* seq_cst: see callers_enter. */
	atomic_fetch_or_explicit(&p->callers, CALLERS_DESTROY, memory_order_seq_cst);
	for (;;) {
		/* acquire: pairs with the release decrement in callers_leave
		 * (the caller's last access to p). */
		unsigned v = atomic_load_explicit(&p->callers, memory_order_acquire);
		if (v == CALLERS_DESTROY)
			return;
		/* Executors held by max_queued see CLOSED on their re-check;
		 * waiters see the drained pool (or the tasks outside joins
		 * still add, whose ends notify them). */
		conc__park_notify_all(&p->room_park);
		conc__park_notify_all(&p->wait_park);
		conc__test_point("pool.destroy.callers");
		/* Sleeps only while the word is still v: a leave in between
		 * changed it. */
		conc__futex_wait(&p->callers, v, CONC__NO_DEADLINE);
	}
}

static COLD int wait_for_room_locked(conc_pool *p);

/*
 * An outside execute on a pool with max_queued: hold the caller until there
 * is room below the bound, then push.  0, EPIPE or ENOMEM.  A held caller
 * stays counted in `callers` until after its push (it once left before,
 * and a destroy that saw the count at zero freed the pool under the
 * push).
 */
static COLD int execute_bounded(conc_pool *p, conc__task_fn fn, void *arg)
{
	/* The common case, room at once: no count (this is the same window
	 * as any execute's, see conc/pool.h on destroy). */
	bool closed;
	if (conc__inj_state(&p->inj, &closed) < p->max_queued && !closed)
		return inj_push(p, fn, arg, false);
	callers_enter(p);
	int err = wait_for_room_locked(p);
	if (!err) {
		conc__test_point("pool.room.got"); /* room; not yet pushed */
		err = inj_push(p, fn, arg, false);
	}
	callers_leave(p); /* after the push: our last access to p */
	return err;
}

/* The condition of room_park's waiters: the pool closed (r->err EPIPE) or
 * room below max_queued (r->err 0). */
struct room_wait {
	conc_pool *p;
	int err;
};

static bool room_or_closed(void *arg)
{
	struct room_wait *r = arg;
	bool closed;
	/* seq_cst (both loads, inside conc__inj_state): the waiter's re-check
	 * of the room_park protocol; pairs with the poppers' seq_cst CAS and
	 * destroy's close. */
	uint64_t q = conc__inj_state(&r->p->inj, &closed);
	r->err = closed ? EPIPE : 0;
	return closed || q < r->p->max_queued;
}

static COLD int wait_for_room_locked(conc_pool *p)
{
	struct room_wait r = {p, 0};
	conc__park_wait_until(&p->room_park, room_or_closed, &r, CONC__NO_DEADLINE,
			      "pool.room.park", NULL);
	return r.err;
}

static NOINLINE int execute_outside(conc_pool *p, conc__task_fn fn,
						      void *arg)
{
	if (conc__unlikely(!pool_usable(p)))
		return EPIPE; /* no worker would ever run it */
	bool inside = tls_frame && in_frames(p);
	if (p->max_queued && !inside)
		return execute_bounded(p, fn, arg);
	return inj_push(p, fn, arg, inside);
}

int conc_pool_execute(conc_pool *p, void (*fn)(void *), void *arg)
{
	if (conc__unlikely(!p || !fn))
		return EINVAL;
	CONC__LIFE_RETURN(p, CONC__LIFE_POOL);
	conc__worker *w = tls_worker;
	if (w && w->pool == p)
		return push_local(w, fn, arg);
	return execute_outside(p, fn, arg);
}

/* ---- task groups ------------------------------------------------------------- */

/*
 * A group (conc/pool.h, "Task groups") keeps the tasks run in it that have
 * not started in a queue of its own, `q` (an injector, pool/injector.h:
 * two words per task, blocks recycled, so a run allocates nothing in
 * steady state).  Each run also puts one token - group_token(g), an
 * ordinary pool task - on the pool.  A token takes one task from q, if any
 * is left, and runs it; a waiter takes tasks from q itself.  Every task is
 * taken from q exactly once (the injector's pop), so it runs once, and a
 * waiter only ever runs what it took from its own group's q: that is the
 * isolation.  There is never a task in q without a token still to come for
 * it (the token is published after the task and counted per run), so the
 * tasks run without anybody waiting; a waiter that took tasks leaves
 * tokens that find q empty and do nothing.
 *
 * Publication order of a run: the token's place is reserved first (room on
 * the worker's deque, or a claimed injector slot), then the task goes into
 * q, then the token is published.  Each step that can fail (ENOMEM, EPIPE)
 * comes before anything is visible, except the injector slot, which is
 * then filled with a task that does nothing: a failed run changes nothing.
 *
 * Counting (state list of one run).  pending: +1 just before the task
 *   enters q, once the token's place is had (relaxed: the queue's release
 *   publishes it before anyone can take the task); never earlier - a run
 *   held by max_queued, counted, would keep a waiter that is the pool's
 *   only free worker asleep for a task that can be queued only once a
 *   worker pops (a deadlock); a failed push undoes it.  -1 when it has
 *   finished or was skipped (seq_cst: releases the task's effects to the
 *   waiter's acquire load, and is the publishing write of wait_park).
 *   refs: 1 for the owner + 1 per token not yet finished, counted with
 *   pending; whoever drops it to 0 frees g (acq_rel: every user's accesses
 *   happen-before the free).  So tokens may outlive conc_group_destroy,
 *   which only drops the owner's reference once pending is 0.
 *   status: 0 -> the first error or ECANCELED (a CAS from 0: whichever is
 *   recorded first) -> 0 (the exchange at the end of wait).  A task starts
 *   only while status is 0.
 *
 * Waiting.  The waiter loops: pending 0 -> return; a task in q -> run it
 * here; else sleep on wait_park until pending is 0 or q holds a task (a
 * running task may add one: the waiter must take it, a worker may be stuck
 * behind a lock the waiter holds).  Runs wake sleepers after the task
 * entered q (its claim is a seq_cst CAS), finishes after their decrement.
 * Before it sleeps it spins briefly: tasks of ~1 us finishing on other
 * workers should not cost a futex round trip each.
 *
 * Tokens run at top level.  A token runs whichever task of g is oldest,
 * so it must not run nested in somebody's wait: a join's pops
 * (src/parallel/parallel.c, job_join) take what lies above its job on the
 * worker's deque, a token pushed there by a group run inside the join's
 * left half among it, and the task that token took could be another
 * thread's - one that takes a lock the thread holds around the wait.  So
 * conc__pool_run, the one way the layers above run a task nested, passes a
 * token on to the injector (group_token_defer); a worker runs it from its
 * loop (run_top_task), with nothing of the user's on its stack, or destroy
 * from its own.
 *
 * EDEADLK: each thread keeps a chain of the groups whose task it is
 * running (frames on its stack); a wait for a group on the chain would wait
 * for itself.
 *
 * Isolation from the loops.  A task of g runs with no conc_join / loop
 * call tree (conc__tls_root NULL, restored after it): a waiter inside a
 * join of tree T that ran a task of g in T would let the task's own joins
 * wait in T, and a join's wait helps with T's jobs (src/parallel/parallel.c,
 * "Isolation") - an outer job that takes a lock held around the group
 * wait would then run on the thread holding it.  With no tree the task's
 * first join roots a tree of its own, whose waits help only with its jobs.
 */
typedef int (*group_fn)(void *arg);

/* Lines: a run changes pending and refs, a token that ran a task changes
 * both too and reads wait_park's waiter count: one line for all three, so
 * that the second RMW of each finds the line at hand (issue 20, W9a).  What
 * every run and every task reads and almost never changes - status, p - is
 * on a line of its own, out of the way of those RMWs. */
struct conc_group {
	conc__injector q; /* tasks not started: (fn as conc__task_fn, arg) */
	CONC_ALIGNED _Atomic uint64_t pending;
	atomic_uint refs;
	conc__park wait_park;
	CONC_ALIGNED atomic_int status;
	conc_pool *p;
};

struct gframe {
	conc_group *g;
	struct gframe *prev;
};
static _Thread_local struct gframe *tls_gframe CONC__TLS_IE;

#define GROUP_SPIN 64u /* backoff rounds of a waiter before it sleeps */

static void group_free(conc_group *g)
{
	conc__inj_fini(&g->q);
	free(g);
}

/*
 * Recycling (issue 20, W9a: a group made and destroyed per use cost a
 * record and a 4 KB queue block from malloc, and clearing the block, each
 * time).  The group whose last reference goes is kept in its pool's
 * spare_group (one slot; a group found there is freed instead), and
 * conc_group_create takes it back: its queue is drained (every task was
 * taken before its count went, and nobody touches g once refs is 0), its
 * counts are 0 and nobody waits on its park, so only status and refs are
 * set again.  The pool is alive while the last reference goes: the last
 * unref is a token (a task of p) or conc_group_destroy (on a live pool,
 * conc/pool.h).  acq_rel (the exchange): release publishes everything done
 * to g (acquired from every user by the acq_rel of the last unref) to the
 * create that takes it (acquire), and acquire takes over a displaced
 * group from the thread that put it there before we free it.  free_pool
 * frees the one left.
 */
static void group_recycle(conc_group *g)
{
	conc_group *old = atomic_exchange_explicit(&g->p->spare_group, g, memory_order_acq_rel);
	if (old)
		group_free(old);
}

static void group_unref(conc_group *g)
{
	/* acq_rel: see "Counting" above. */
	if (atomic_fetch_sub_explicit(&g->refs, 1, memory_order_acq_rel) == 1)
		group_recycle(g);
}

/* One task of g has finished (or was skipped).  g stays allocated: the
 * caller is a token (it holds a reference) or the waiter. */
static void group_finish(conc_group *g)
{
	/* seq_cst: see "Counting" above. */
	atomic_fetch_sub_explicit(&g->pending, 1, memory_order_seq_cst);
	conc__park_notify_all(&g->wait_park);
}

/* Run (or, g cancelled, skip) a task taken from g's queue. */
static void group_exec(conc_group *g, conc__task t)
{
	/* acquire: a cancel that this load sees happened before (the skip). */
	if (atomic_load_explicit(&g->status, memory_order_acquire) == 0) {
		struct gframe f = {g, tls_gframe};
		tls_gframe = &f;
		/* No call tree (see "Isolation from the loops" above). */
		void *root = conc__tls_root;
		conc__tls_root = NULL;
		int r = ((group_fn)(void (*)(void))t.fn)(t.arg);
		conc__tls_root = root;
		tls_gframe = f.prev;
		if (r) {
			int zero = 0;
			/* relaxed: published by group_finish's seq_cst RMW,
			 * which the waiter acquires before it reads status. */
			atomic_compare_exchange_strong_explicit(&g->status, &zero, r,
								memory_order_relaxed,
								memory_order_relaxed);
		}
	}
	group_finish(g);
}

/* The token: a pool task that runs one task of g, if one is left. */
static void group_token(void *arg)
{
	conc_group *g = arg;
	conc__task t;
	if (conc__inj_pop(&g->q, &t, 1, NULL))
		group_exec(g, t);
	group_unref(g);
}

/* A token met nested in a wait (conc__pool_run): it goes on as a new task
 * through the injector, past max_queued and the close as a task's own
 * execute does (its reference to g goes with it); this run of it counts
 * as finished.  Without memory for that push it runs here after all: the
 * isolation of the wait around it is then lost, never a task. */
static COLD void group_token_defer(void *arg)
{
	conc_group *g = arg;
	if (conc__unlikely(inj_push(g->p, group_token, g, true) != 0))
		group_token(g);
}

/* Fills an injector slot whose run failed after the claim. */
static void nop_task(void *arg)
{
	(void)arg;
}

/* The task is counted (pending, and refs for the token that will follow
 * it) and goes into g's queue; waiters are woken (they take it).  Called
 * once the token's place is had - after any hold for room - and undone
 * here if the push fails. */
static int group_enqueue(conc_group *g, conc__task_fn fn, void *arg)
{
	/* relaxed (both): see "Counting" above. */
	atomic_fetch_add_explicit(&g->pending, 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&g->refs, 1, memory_order_relaxed);
	/* seq_cst (the claim inside): the publishing write of wait_park. */
	int err = conc__inj_push(&g->q, fn, arg, false);
	if (conc__likely(!err)) {
		conc__park_notify_all(&g->wait_park);
		return 0;
	}
	/* relaxed: the owner's reference keeps refs above 0 */
	atomic_fetch_sub_explicit(&g->refs, 1, memory_order_relaxed);
	group_finish(g); /* a waiter may have seen our count */
	return err;
}

/* From one of p's workers: the token goes on w's deque. */
static int group_push_local(conc__worker *w, conc_group *g, conc__task_fn fn, void *arg)
{
	if (conc__unlikely(conc__deque_reserve(&w->dq) != 0))
		return ENOMEM;
	int err = group_enqueue(g, fn, arg);
	if (conc__unlikely(err))
		return err;
	err = push_deque(w, group_token, g, NULL);
	CONC__CHECK(err == 0, "pool: a push into reserved room cannot fail");
	(void)err;
	return 0;
}

/* From any other thread: the token goes through the injector, held by
 * max_queued as an outside execute is (execute_bounded). */
static NOINLINE int group_push_outside(conc_pool *p, conc_group *g, conc__task_fn fn, void *arg)
{
	if (conc__unlikely(!pool_usable(p)))
		return EPIPE;
	bool inside = tls_frame && in_frames(p);
	bool counted = false;
	int err = 0;
	if (p->max_queued && !inside) {
		bool closed;
		if (conc__inj_state(&p->inj, &closed) >= p->max_queued || closed) {
			callers_enter(p);
			counted = true;
			err = wait_for_room_locked(p);
		}
	}
	if (!err) {
		struct conc__inj_slot *s;
		/* seq_cst claim: the publishing write of work_park (inj_push) */
		err = conc__inj_claim(&p->inj, inside, &s);
		if (!err) {
			err = group_enqueue(g, fn, arg);
			/* The waiter count read after the claim, the wake
			 * after the fill, p held meanwhile: as in inj_push. */
			if (conc__unlikely(conc__park_has_waiters(&p->work_park)))
				fill_then_wake(p, s, err ? nop_task : group_token, g);
			else
				conc__inj_fill(s, err ? nop_task : group_token, g);
		}
	}
	if (counted)
		callers_leave(p); /* after the fill: our last access to p */
	return err;
}

int conc_group_create(conc_group **out, conc_pool *p)
{
	if (!out)
		return EINVAL;
	if (!p) {
		p = conc_pool_global();
		if (!p)
			return ENOMEM;
	}
	CONC__LIFE_RETURN(p, CONC__LIFE_POOL);
	/* acquire: see "Recycling" above */
	conc_group *g = atomic_exchange_explicit(&p->spare_group, NULL, memory_order_acquire);
	if (g) {
		/* relaxed: g is ours alone until *out is handed over */
		atomic_store_explicit(&g->status, 0, memory_order_relaxed);
		atomic_store_explicit(&g->refs, 1, memory_order_relaxed);
		*out = g;
		return 0;
	}
	g = conc__aligned_alloc("pool.group", CONC_PAD, sizeof *g);
	if (!g)
		return ENOMEM;
	memset(g, 0, sizeof *g);
	if (conc__inj_init(&g->q) != 0) {
		free(g);
		return ENOMEM;
	}
	atomic_init(&g->pending, 0);
	atomic_init(&g->status, 0);
	atomic_init(&g->refs, 1);
	conc__park_init(&g->wait_park);
	g->p = p;
	*out = g;
	return 0;
}

int conc_group_run(conc_group *g, int (*fn)(void *arg), void *arg)
{
	if (conc__unlikely(!g || !fn))
		return EINVAL;
	/* acquire: as in group_exec. */
	if (atomic_load_explicit(&g->status, memory_order_acquire) != 0)
		return ECANCELED;
	conc_pool *p = g->p;
	conc__task_fn tf = (conc__task_fn)(void (*)(void))fn;
	/* Counted in group_enqueue, not here: see "Counting" above. */
	conc__worker *w = tls_worker;
	return w && w->pool == p ? group_push_local(w, g, tf, arg)
				 : group_push_outside(p, g, tf, arg);
}

/* wait_park's condition: nothing pending, or a task to take. */
static bool group_wait_pred(void *arg)
{
	conc_group *g = arg;
	/* seq_cst / acquire: the waiter's re-check (prepare's fence orders
	 * the loads); pairs with group_finish and group_enqueue. */
	return atomic_load_explicit(&g->pending, memory_order_seq_cst) == 0 ||
	       conc__inj_pushed(&g->q) != conc__inj_popped(&g->q);
}

/* Run a task of g on the waiting thread: as one of p's tasks (a frame when
 * the thread is not p's worker, so that calls it makes on p know). */
static void group_exec_here(conc_pool *p, conc__worker *w, conc_group *g, conc__task t)
{
	if (w) {
		group_exec(g, t);
		return;
	}
	struct frame f = {p, tls_frame};
	tls_frame = &f;
	group_exec(g, t);
	tls_frame = f.prev;
}

int conc_group_wait(conc_group *g)
{
	if (!g)
		return EINVAL;
	for (struct gframe *f = tls_gframe; f; f = f->prev)
		if (f->g == g)
			return EDEADLK;
	conc_pool *p = g->p;
	if (conc__unlikely(!pool_usable(p)))
		return EPIPE;
	conc__worker *w = conc__pool_current(p);
	conc__epoch_pins snap;
	bool pinned = conc__epoch_pinned_anywhere();
	if (conc__unlikely(pinned))
		conc__epoch_pins_save(&snap);
	conc__backoff bo = CONC__BACKOFF_INIT;
	unsigned spins = 0;
	for (;;) {
		/* acquire: pairs with group_finish (the tasks' effects). */
		if (atomic_load_explicit(&g->pending, memory_order_acquire) == 0)
			break; /* LP: group-wait */
		conc__task t;
		if (conc__inj_pop(&g->q, &t, 1, NULL)) {
			group_exec_here(p, w, g, t);
			if (conc__unlikely(conc__epoch_pinned_anywhere()))
				conc__epoch_pins_restore(pinned ? &snap : NULL);
			conc__backoff_reset(&bo);
			spins = 0;
			continue;
		}
		if (spins++ < GROUP_SPIN) {
			conc__backoff_spin(&bo);
			continue;
		}
		conc__park_wait_until(&g->wait_park, group_wait_pred, g, CONC__NO_DEADLINE,
				      "pool.group.park", NULL);
		spins = 0;
	}
	/* relaxed: read after the acquire of pending (group_exec's CAS comes
	 * before its finish); the cancel's own store is what it reports. */
	return atomic_exchange_explicit(&g->status, 0, memory_order_relaxed);
}

void conc_group_cancel(conc_group *g)
{
	if (!g)
		return;
	int zero = 0;
	/* release: a task that sees it was started after it (group_exec) */
	atomic_compare_exchange_strong_explicit(&g->status, &zero, ECANCELED,
						memory_order_release, memory_order_relaxed);
}

bool conc_group_is_cancelled(conc_group *g)
{
	/* acquire: pairs with the cancel's release */
	return g && atomic_load_explicit(&g->status, memory_order_acquire) != 0;
}

int conc_group_destroy(conc_group *g)
{
	if (!g)
		return 0;
	/* relaxed: as in pool_usable */
	if (!pool_usable(g->p) &&
	    atomic_load_explicit(&g->p->gen, memory_order_relaxed) != GEN_GONE) {
		/* a fork child: no token of ours will ever run here, nor is
		 * a task of g running.  Not after exit (GEN_GONE): a worker
		 * left running may still be inside one of g's tasks. */
		group_free(g);
		return 0;
	}
	/* acquire: the last task's effects before the free */
	if (atomic_load_explicit(&g->pending, memory_order_acquire) != 0)
		return EBUSY;
	group_unref(g);
	return 0;
}

/*
 * Sleep until every task counted in has finished.  The caller does not run
 * tasks: on a pool with a worker per CPU an extra thread only adds
 * contention, and the tasks it ran would execute their children through the
 * injector instead of a deque (measured: fan-out ran at half speed).
 */
static bool all_done_pred(void *p)
{
	return all_done(p);
}

static void wait_idle(conc_pool *p)
{
	conc__park_wait_until(&p->wait_park, all_done_pred, p, CONC__NO_DEADLINE,
			      "pool.wait.park", "pool.wait.woken");
}

int conc_pool_wait(conc_pool *p)
{
	if (!p)
		return EINVAL;
	CONC__LIFE_RETURN(p, CONC__LIFE_POOL);
	if (conc__pool_in_task(p))
		return EDEADLK;
	if (!pool_usable(p))
		return EPIPE;
	callers_enter(p); /* destroy waits for us */
	wait_idle(p);
	callers_leave(p);
	return 0;
}

unsigned conc_pool_threads(conc_pool *p)
{
	if (!p)
		return 0;
	CONC__LIFE_ABORT(p, CONC__LIFE_POOL, "conc_pool_threads");
	return atomic_load_explicit(&p->nthreads, memory_order_relaxed); /* a statistic */
}

size_t conc_pool_queued(conc_pool *p)
{
	if (!p)
		return 0;
	CONC__LIFE_ABORT(p, CONC__LIFE_POOL, "conc_pool_queued");
	uint64_t h = inj_popped(p), t = inj_pushed(p);
	size_t q = t > h ? (size_t)(t - h) : 0;
	unsigned n = nrec_of(p);
	for (unsigned i = 0; i < n; i++) {
		conc__worker *w = rec_at(p, i);
		if (w)
			q += conc__deque_size(&w->dq);
	}
	return q;
}

unsigned conc_pool_active(conc_pool *p)
{
	if (!p)
		return 0;
	CONC__LIFE_ABORT(p, CONC__LIFE_POOL, "conc_pool_active");
	unsigned a = 0, n = nrec_of(p);
	for (unsigned i = 0; i < n; i++) {
		conc__worker *w = rec_at(p, i);
		if (w && atomic_load_explicit(&w->busy, memory_order_relaxed)) /* a statistic */
			a++;
	}
	return a;
}

int conc_pool_resize(conc_pool *p, unsigned threads)
{
	if (!p || threads == 0 || threads > CONC_POOL_MAX_THREADS)
		return EINVAL;
	CONC__LIFE_RETURN(p, CONC__LIFE_POOL);
	if (conc__pool_in_task(p))
		return EDEADLK;
	if (!pool_usable(p))
		return EPIPE;
	/* Counted: a destroy that began meanwhile waits for us, and does not
	 * hold `admin` while it waits (a resize blocked on the
	 * lock would otherwise take it in freed memory). */
	callers_enter(p);
	/* seq_cst (inside): with destroy's close, in the order of
	 * callers_enter. */
	if (conc__inj_closed(&p->inj)) {
		callers_leave(p);
		return EPIPE; /* destroy has begun */
	}
	conc__test_point("pool.resize.lock");
	pthread_mutex_lock(&p->admin);
	/* As in broadcast: the exit handler may have held the lock before
	 * us and stopped and joined the workers (a shrink would join them
	 * again, a grow start new ones at exit).  relaxed: its store
	 * happens-before our lock. */
	if (conc__unlikely(!pool_usable(p))) {
		pthread_mutex_unlock(&p->admin);
		callers_leave(p);
		return EPIPE;
	}
	conc__test_point("pool.resize.locked");
	unsigned cur = atomic_load_explicit(&p->nthreads, memory_order_relaxed); /* admin only */
	int err = 0;
	if (threads > cur) {
		err = start_workers(p, cur, threads);
	} else if (threads < cur) {
		stop_workers(p, threads, cur);
		atomic_store_explicit(&p->nthreads, threads, memory_order_relaxed); /* a statistic */
	}
	pthread_mutex_unlock(&p->admin);
	callers_leave(p);
	return err;
}

/* The broadcaster's condition: every worker has counted itself in. */
struct bcast_wait {
	struct bcast *b;
	unsigned n;
};

static bool bcast_all_done(void *arg)
{
	struct bcast_wait *bw = arg;
	/* acquire: pairs with run_mail's seq_cst increments (fn's effects). */
	return atomic_load_explicit(&bw->b->done, memory_order_acquire) >= bw->n;
}

int conc_pool_broadcast(conc_pool *p, void (*fn)(unsigned index, void *ctx), void *ctx)
{
	if (!fn)
		return EINVAL;
	if (!p) {
		p = conc_pool_global();
		if (!p)
			return ENOMEM;
	}
	CONC__LIFE_RETURN(p, CONC__LIFE_POOL);
	if (conc__pool_in_task(p))
		return EDEADLK;
	if (!pool_usable(p))
		return EPIPE;
	/* Counted and checked as a resize is (see there). */
	callers_enter(p);
	if (conc__inj_closed(&p->inj)) {
		callers_leave(p);
		return EPIPE;
	}
	conc__test_point("pool.broadcast.lock");
	pthread_mutex_lock(&p->admin); /* no resize meanwhile: a fixed set of workers */
	/* The exit handler may have held the lock before us: it marks the
	 * global pool gone and stops its workers under it, so nobody would
	 * read our mail.  relaxed: its store happens-before our lock. */
	if (conc__unlikely(!pool_usable(p))) {
		pthread_mutex_unlock(&p->admin);
		callers_leave(p);
		return EPIPE;
	}
	unsigned n = atomic_load_explicit(&p->nthreads, memory_order_relaxed); /* admin only */
	struct bcast b = {fn, ctx, 0};
	for (unsigned i = 0; i < n; i++)
		/* seq_cst: the publishing write of work_park (see "broadcast") */
		atomic_store_explicit(&rec_at(p, i)->mail, &b, memory_order_seq_cst);
	conc__park_notify_all(&p->work_park);
	struct bcast_wait bw = {&b, n};
	conc__park_wait_until(&p->admin_park, bcast_all_done, &bw, CONC__NO_DEADLINE,
			      "pool.broadcast.park", NULL);
	pthread_mutex_unlock(&p->admin);
	callers_leave(p);
	return 0;
}

int conc_pool_destroy(conc_pool *p)
{
	if (!p)
		return EINVAL;
	CONC__LIFE_RETURN(p, CONC__LIFE_POOL); /* a double destroy among them */
	if (p->is_global)
		return EINVAL;
	if (conc__pool_in_task(p))
		return EDEADLK;
	if (!pool_usable(p)) {
		/* A fork child: the workers do not exist here, nor does anybody
		 * who could hold the admin lock or run a task; tasks queued
		 * in the parent are not run (they are the parent's). */
		free_pool(p);
		return 0;
	}
	/* seq_cst (inside): CLOSED is the publishing write for room_park's
	 * waiters. */
	conc__inj_close(&p->inj);
	wait_idle(p);
	/* Outside callers still inside (waiters, held executors, outside joins
	 * and loops): they leave once they see the drained or closed pool;
	 * then what outside joins pushed past the close before leaving (a
	 * stale entry of a job they took back) drains too. */
	callers_wait(p);
	wait_idle(p);
	/* No resize is left (they were callers): the lock is ours at once,
	 * unless the exit handler holds it (the global pool only). */
	pthread_mutex_lock(&p->admin);
	stop_workers(p, 0, atomic_load_explicit(&p->nthreads, memory_order_relaxed));
	/* Tasks executed by on_stop hooks: run them here, at top level (a
	 * group token too: not conc__pool_run, which would pass it on). */
	conc__task t;
	do {
		while (find_task(p, NULL, &t))
			run_outside_task(p, t);
	} while (!all_done(p));
	pthread_mutex_unlock(&p->admin);
	free_pool(p);
	return 0;
}

/* ---- the global pool ---------------------------------------------------------- */

static _Atomic(conc_pool *) global_pool;
static pthread_mutex_t global_lock = PTHREAD_MUTEX_INITIALIZER;

/* How long the exit handler waits for the global pool's workers (and for
 * a resize in progress) before it leaves the rest running: a worker inside
 * a task that does not return must not hold the process's exit. */
#define EXIT_JOIN_NS 1000000000ull

/* The child has one thread: the pool made before the fork has no workers
 * here; forget it (it is unusable, and leaked) so conc_pool_global() makes
 * a fresh one.  No prepare handler takes global_lock: conc_pool_global
 * holds it while it creates the pool (which takes the epoch's
 * registry_lock), and the epoch's prepare takes registry_lock - which of
 * the two prepare handlers ran first would depend on which was registered
 * first, so one order could deadlock (TSan saw the inversion once
 * conc_pool_create registered the handlers).  Instead the child
 * re-initialises the lock: a thread that held it does not exist there, and
 * the pool it was making is forgotten with the rest. */
static void atfork_child(void)
{
	pthread_mutex_init(&global_lock, NULL); /* not unlock: see above */
	atomic_store_explicit(&global_pool, NULL, memory_order_relaxed); /* one thread */
	/* Every pool made before the fork is now of another generation:
	 * its calls refuse (pool_usable).  relaxed: one thread. */
	unsigned g = atomic_load_explicit(&pool_gen, memory_order_relaxed) + 1;
	atomic_store_explicit(&pool_gen, g == GEN_GONE ? 0 : g, memory_order_relaxed);
	tls_worker = NULL;
	tls_frame = NULL;
	/* The child is a new mm: register it again (or sleep with deadlines) */
	if (pool_membarrier)
		membarrier_setup();
}

/*
 * At exit: stop the global pool's workers and join them, so that a program
 * ends with no thread of ours left (valgrind's leak check, sanitizers).  It
 * must never hang nor abort:
 *   - exit() from one of its tasks (on a worker, or an outside thread
 *     running one while it helps): nothing is done - a worker cannot join
 *     itself, and the others may be waiting for this very task;
 *   - a worker inside a task that does not return, or a resize that does
 *     not end: waited for at most EXIT_JOIN_NS, then left running (the
 *     process ends it, as before this handler existed);
 *   - a fork child: the parent's pool was forgotten (atfork_child); a pool
 *     the child made is its own and is joined.
 * From the store of GEN_GONE on, the pool's calls refuse (EPIPE) and a
 * conc_join / parallel loop on it runs on its caller alone; the pool is
 * never freed (other threads may still hold it).
 */
static void global_exit(void)
{
	/* acquire: pairs with the release store in conc_pool_global. */
	conc_pool *p = atomic_load_explicit(&global_pool, memory_order_acquire);
	if (!p || !pool_usable(p) || conc__pool_in_task(p))
		return;
	struct timespec dl;
	clock_gettime(CLOCK_REALTIME, &dl); /* the clock of the timed calls below */
	uint64_t ns = (uint64_t)dl.tv_nsec + EXIT_JOIN_NS;
	dl.tv_sec += (time_t)(ns / 1000000000u);
	dl.tv_nsec = (long)(ns % 1000000000u);
	if (pthread_mutex_timedlock(&p->admin, &dl) != 0)
		return;
	atomic_store_explicit(&p->gen, GEN_GONE, memory_order_relaxed); /* see pool_usable */
	unsigned n = atomic_load_explicit(&p->nthreads, memory_order_relaxed); /* admin only */
	for (unsigned i = 0; i < n; i++)
		/* seq_cst: the publishing write for work_park (stop_workers) */
		atomic_store_explicit(&rec_at(p, i)->stop, 1, memory_order_seq_cst);
	conc__park_notify_all(&p->work_park);
	for (unsigned i = 0; i < n; i++)
		pthread_timedjoin_np(rec_at(p, i)->thread, NULL, &dl); /* late: left running */
	pthread_mutex_unlock(&p->admin);
}

static void global_setup(void)
{
	membarrier_setup();
	/* No prepare or parent handler: atfork_child says why. */
	conc__atfork_register(CONC__ATFORK_POOL, NULL, NULL, atfork_child);
	atexit(global_exit);
}

/* CONC_NUM_THREADS when it is a plain decimal from 1 to 1024, else 0. */
static unsigned env_threads(void)
{
	const char *s = getenv("CONC_NUM_THREADS");
	if (!s || !*s)
		return 0;
	unsigned v = 0;
	for (; *s; s++) {
		if (*s < '0' || *s > '9')
			return 0;
		v = v * 10 + (unsigned)(*s - '0');
		if (v > 1024)
			return 0;
	}
	return v;
}

conc_pool *conc_pool_global(void)
{
	/* acquire: pairs with the release store below (the pool's fields). */
	conc_pool *p = atomic_load_explicit(&global_pool, memory_order_acquire);
	if (conc__likely(p != NULL))
		return p;
	pthread_once(&global_once, global_setup);
	pthread_mutex_lock(&global_lock);
	p = atomic_load_explicit(&global_pool, memory_order_relaxed); /* under the lock */
	if (!p) {
		/* test builds: a creator stopped here holds global_lock and
		 * has not yet made the pool's epoch domain (registry_lock),
		 * while another thread forks */
		conc__test_point("pool.global.creating");
		conc_pool_config cfg = {.threads = env_threads()};
		if (conc_pool_create(&p, &cfg) == 0) {
			p->is_global = true;
			atomic_store_explicit(&global_pool, p, memory_order_release);
		} else {
			p = NULL;
		}
	}
	pthread_mutex_unlock(&global_lock);
	return p;
}

#ifdef CONC_DEBUG_CHECKS
bool conc__pool_alive(const conc_pool *p)
{
	return CONC__LIFE_IS(p, CONC__LIFE_POOL);
}
#endif
