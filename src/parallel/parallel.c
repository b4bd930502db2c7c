/*
 * parallel.c - fork-join (conc_join) and the parallel loops, on the pool.
 *
 * Join.  The outermost conc_join of a call tree on a thread (no tree yet:
 *   conc__tls_root NULL) offers b at once; one nested in a tree defers the
 *   offer (see "Heartbeat" below) and offers b only when promoted.  An
 *   offered b is a job on the caller's stack; the caller offers it, runs
 *   a, then finishes the job:
 *   - on a worker w of p, the job goes on w's deque (conc__pool_push_local).
 *     After a, w pops its deque: finding the job means nobody stole it, and
 *     w runs it inline (no atomic RMW beyond the deque's).  Finding another
 *     task (one a left behind, or an older job of an outer join once ours
 *     was stolen) w runs it, as rayon does, and pops again.  An empty deque
 *     means the job was stolen: w waits for it (below).
 *   - on any other thread, the injector (conc__pool_push_shared) gets a
 *     ticket: a small allocated claim word holding the job.  After a, the
 *     caller claims the ticket (CAS); winning means nobody took the
 *     job and it runs it inline, as a worker's pop would; the entry left
 *     in the injector stays there, idle.  Losing means a thread that
 *     popped the entry runs the job: the caller waits.  Tickets are the
 *     calling thread's and reused (see "Tickets" below): the next offer
 *     rides on an idle entry still queued instead of pushing another, so
 *     what an outside thread leaves in the injector is bounded by the
 *     most offers it ever had outstanding at once, not by its number of
 *     calls.  Without the claim the caller could never take its
 *     own job back, every join of its would wait, and each wait would run
 *     the injector's oldest - largest - task nested on its stack: the
 *     stack grows without bound (seen: fib(30) from the main thread).
 *   Waiting for a job: run other jobs of the same call tree
 *   (conc__pool_help, see "Isolation") as long as there are some; when
 *   none is found, back off, yield for WAIT_SPIN_NS, then sleep on the
 *   job's state word in steps of at most WAIT_PARK_NS, looking for jobs
 *   again after each step.
 *   No deadlock: a waited-for job is being run by a thread, or lies on its
 *   owner's deque (which the owner pops down to it before it waits, and
 *   which idle workers steal from) or, offered from outside, in the
 *   injector (the owner claims it back, or a worker's pop runs it); its
 *   completion depends only on jobs created inside it, which are younger;
 *   the youngest unfinished job is never waiting, so it makes progress.
 *   A push that fails (ENOMEM) runs b inline after a.
 *
 * Heartbeat (lazy offers; the idea of heartbeat scheduling, Acar,
 *   Chargueraud and Rainey, and of the chili crate).  Offering every b
 *   costs a deque push and pop - fences, and an RMW when the deque is
 *   nearly empty - on every join, though almost none is ever stolen: a
 *   fine-grained recursion (fib without a cutoff) spent most of its time
 *   there.  So a nested join only links a frame {b, bctx, pool, tree} into
 *   its thread's list (hb.top, newest first) and runs a; every HB_POLL-th
 *   join of a thread looks at the demand - p's searching and sleeping
 *   workers and the joiners waiting anywhere (hb_hungry), relaxed loads
 *   through addresses cached per thread - and, if there is some, promotes
 *   the OLDEST unoffered frame of the current tree on p (the largest piece
 *   left) by offering its b as above (job_offer: the worker's deque, or a
 *   ticket from outside), unless the thread already has a task waiting to
 *   be taken (its deque; from outside, anything queued in p).  Only the
 *   owner touches its frames, so `promoted` is a plain field.  When a
 *   returns the frame is unlinked; if b was not promoted the caller runs
 *   it inline, a plain call (LP: join-b-inline); if it was, the job is
 *   finished as any offered job (job_join).  States per frame: LINKED ->
 *   PROMOTED (the owner, at a join on top of it) -> finished as a job; or
 *   LINKED -> run inline.
 *   Why frames of the current tree only: a tree started on top of another
 *   (a group task, run by its waiter inside a join) ends before the outer
 *   one resumes, so the current tree's frames are the newest ones, and the
 *   deque stays ordered by tree: a job of an outer tree pushed above an
 *   inner tree's jobs could be popped by an inner join (pop_above) and run
 *   on top of a wait of the inner tree - the nesting isolation forbids.
 *   Within the tree, frames linked before the thread offered a loop or
 *   root job it has not joined yet are not promoted (hb.depth): their b
 *   would lie above that job on the deque, the job's join would take it
 *   back and run it on top of its own a, which may hold a lock b takes
 *   (rayon allows this; conc_join's isolation promise does not).
 *   No deadlock: an unpromoted b runs on its owner after a, as a plain
 *   call; a promoted one is an offered job, covered by the argument above.
 *   Cost of a nested join nobody wants work from: the frame (five stores),
 *   a countdown, four thread-local loads for the pin guard (below), two
 *   indirect calls.  What is given up: a b is offered only at a join that
 *   comes after the demand appears, so a long a without nested joins keeps
 *   its b (the outermost join of a thread still offers at once).
 *
 * Tickets (state list of the word, per ticket; QUEUED = bit 0: the ticket
 *   has an entry in the injector, or in a deque it was moved to):
 *   0 (no entry) -> j|QUEUED: the owner offers j with a new entry (refs
 *     +1 for the entry, then the push);
 *   QUEUED (an idle entry) -> j|QUEUED: the owner offers j riding on it
 *     (CAS: fails when the entry was taken meanwhile; then as from 0);
 *   j|QUEUED -> QUEUED: the owner claims j back (CAS, LP: join-b-claim);
 *   any -> 0: the entry is run (exchange); it runs the job it found.
 *   refs: one for the owning thread while the ticket is on its free list
 *   or in use, one per entry not yet finished; the last put frees it.  A
 *   thread's free tickets go at its exit (a pthread key's destructor).
 *   An entry left idle is consumed by the workers when they get to it, as
 *   any task; conc_pool_wait and destroy wait for it like one.
 *
 * Isolation.  A thread that waits for a stolen job
 *   helps only with work that cannot block on what it waits for: the jobs
 *   of its own call tree.  The outermost conc_join / loop on a thread
 *   roots a tree (its frame's address is the tag); nested calls, and every
 *   job, run inside that tree (conc__tls_root).  A job on a deque carries the tag
 *   in its slot, so a waiter steals by tag without touching the job; it
 *   never takes the injector's tasks, untagged tasks (conc_pool_execute),
 *   nor another tree's jobs - a task that waits for another pool (or
 *   resizes, destroys, blocks) is never buried on top of the wait.  Its own
 *   deque it pops only down to its job's position: above it lies what its
 *   left half left behind (its own subtree), below it older work.  Within
 *   one tree no cycle exists (a job depends only on younger jobs of its own
 *   subtree), so the waits end: the job waited for is being run by its
 *   thief, or lies on a deque where its owner or an idle worker takes it.
 *   A job whose push fails is never sent to the injector: it runs inline.
 *
 * Job state (per job, on the joiner's stack; state list):
 *   PENDING -> DONE: the runner, when b has returned (exchange, release:
 *     publishes b's effects; LP: join-b-done).  It then touches only the
 *     word's address (futex wake, harmless after the joiner has returned).
 *   PENDING -> SLEEPER: the joiner, before it sleeps (CAS); SLEEPER -> DONE:
 *     the runner, who sees SLEEPER and wakes it.  The joiner reads DONE with
 *     acquire before it returns (or uses the job's results).
 *   A job taken back by its owner's pop never changes state: it runs
 *   through job_entry_popped, which skips the exchange.
 *
 * Loops.  for/reduce with grain 0 first run the leftmost piece on the calling thread,
 *   timed, and run the whole tree there when the loop looks too short to
 *   split (first_piece).  Else they walk the split tree of the header.  A node either
 *   offers its right half as a job (a join of left and right) or runs its
 *   whole subtree inline, left to right.  The choice is rayon's adaptive
 *   "splitter": a call starts with splits = the pool's thread count; a node
 *   that is not in a stolen job offers while splits > 0, halving splits; the
 *   first node of a stolen job resets splits to max(threads, splits / 2)
 *   and offers.  Only the choice of who runs a subtree depends on timing:
 *   the tree, the body calls and the combine order do not.
 *   Cancellation: `stop` holds the first non-zero body result (CAS from 0);
 *   every leaf reads it (relaxed: a hint, the return value is read after
 *   all joins, which order every store to it before the read).  A skipped
 *   leaf leaves its accumulator unset; combine is skipped once stop is seen
 *   non-zero after the children (a skip happened-before that read, so it
 *   sees the non-zero value).
 *   Reduce accumulators: the left child folds into its parent's
 *   accumulator, the right child into a temporary; small ones
 *   (<= CONC_PARALLEL_STACK_ACC) are a buffer in the node's stack frame,
 *   larger ones come from a block of depth x stride bytes per task, slot k
 *   for the right child at relative depth k (the left subtree, finished
 *   first, uses only slots below k).  A job run by its owner right after
 *   the left half (popped back) reuses its parent's slots; a job run
 *   anywhere else allocates its own block.
 */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdalign.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "conc/parallel.h"
#include "conc/pool.h"
#include "base/arch.h"
#include "base/backoff.h"
#include "base/check.h"
#include "epoch/epoch_internal.h"
#include "base/fault.h"
#include "base/mutant.h"
#include "base/pad.h"
#include "base/park.h"
#include "pool/pool_internal.h"

#define COLD_FN __attribute__((noinline, cold))
#define NOINLINE_FN __attribute__((noinline))

/* A joiner that finds no task yields for this long before it sleeps. */
#define WAIT_SPIN_NS 50000u
/* Longest sleep of a joiner before it looks for tasks again. */
#define WAIT_PARK_NS 1000000u

enum { JOB_PENDING, JOB_DONE, JOB_SLEEPER };

/* How a job came to run: taken back by its owner right after the left half;
 * run by its owner in some other way; run by another thread (stolen). */
enum run_mode { RUN_POPPED, RUN_LOCAL, RUN_STOLEN };

struct ticket;

struct job {
	void (*run)(struct job *j, conc__worker *w, enum run_mode mode);
	conc_pool *p;
	conc__worker *owner;   /* NULL: offered from outside the pool */
	struct ticket *ticket; /* offered from outside: its claim */
	void *root;            /* the isolation tag: the call tree's root */
	int64_t pos;           /* offered on the owner's deque: its position */
	atomic_uint state;
};

/* The root of the call tree the calling thread is working in (NULL: none)
 * is conc__tls_root: set by the outermost conc_join / loop of a thread and
 * by every job run.  It lives in the pool (pool/pool_internal.h), which
 * runs every task of a group with none: a group task is not part of the
 * tree of whoever runs it (its waiter may be inside a join). */

/* An entry point: join the caller's tree, or start one rooted at `self`
 * (an address on the entry's frame, unique while it runs).  Returns the
 * value to restore. */
static inline void *root_enter(void *self)
{
	void *saved = conc__tls_root;
	if (!saved)
		conc__tls_root = self;
	return saved;
}

static inline void root_leave(void *saved)
{
	conc__tls_root = saved;
}

/* What an outside offer puts in the injector: the job, until somebody
 * claims it (the owner taking it back, or the thread that pops the entry).
 * See "Tickets" at the top. */
#define TICKET_QUEUED ((uintptr_t)1)
struct ticket {
	atomic_uintptr_t word; /* the job offered (or 0) | TICKET_QUEUED */
	atomic_int refs;       /* the owning thread + the entry, if any */
	conc_pool *p;          /* owner only: the pool of its last entry */
	struct ticket *next;   /* owner only: its free list */
};

/* The calling thread's free tickets (LIFO). */
static _Thread_local struct ticket *tls_tickets;
static pthread_once_t ticket_once = PTHREAD_ONCE_INIT;
static pthread_key_t ticket_key;
static bool ticket_key_ok; /* written once, under ticket_once */

/* Joiners of any pool waiting for a job somebody else runs (job_wait): a
 * demand for work that only promotions can meet. */
static CONC_ALIGNED atomic_uint hb_hungry;

/* ---- pins left by user code ------------------------------------------------- */

/*
 * A body (or a join function) that returns still pinned must not
 * leave the calling thread pinned after the call, nor undo what the caller
 * held before it.  Each entry point takes a note of the caller's pins and,
 * if the thread is pinned anywhere when the call ends, puts them back to
 * that note: only the pins made during the call go.  Pieces run by other
 * threads: a worker's top-level task is checked by the pool (src/pool/pool.c);
 * a piece nested in another call's wait is covered by that call's guard.
 * Not pinned at the entry (the common case): conc__epoch_pinned_quick at
 * each end - two thread-local loads (epoch/epoch_internal.h) - no scan,
 * no copy.  The full guard (a snapshot on the stack) is in join_slow and
 * the loops' entry points, off conc_join's fast path.
 */
struct pin_guard {
	bool pinned;
	conc__epoch_pins snap;
};

static inline void pin_guard_enter(struct pin_guard *g)
{
	g->pinned = conc__epoch_pinned_quick() && conc__epoch_pinned_anywhere();
	if (conc__unlikely(g->pinned))
		conc__epoch_pins_save(&g->snap);
}

static inline void pin_guard_leave(struct pin_guard *g)
{
	if (conc__unlikely(conc__epoch_pinned_quick()) && conc__epoch_pinned_anywhere())
		conc__epoch_pins_restore(g->pinned ? &g->snap : NULL);
}

/* ---- join ------------------------------------------------------------------ */

static void job_entry(void *arg)
{
	struct job *j = arg;
	conc__worker *w = conc__pool_current(j->p);
	void *saved = conc__tls_root;
	conc__tls_root = j->root; /* its tree, wherever it runs */
	j->run(j, w, w == j->owner ? RUN_LOCAL : RUN_STOLEN);
	conc__tls_root = saved;
	/* release: publishes everything the job did; pairs with the joiner's
	 * acquire loads in job_join/job_wait. */
	if (atomic_exchange_explicit(&j->state, JOB_DONE, memory_order_release) == JOB_SLEEPER) /* LP: join-b-done */
		conc__futex_wake(&j->state, 1); /* j may be gone: only the address is used */
}

/* The owner took the job back from its deque: nobody else knows of it. */
static void job_entry_popped(void *arg)
{
	struct job *j = arg;
	void *saved = conc__tls_root;
	conc__tls_root = j->root;
	j->run(j, j->owner, RUN_POPPED);
	conc__tls_root = saved;
}

static void ticket_put(struct ticket *t)
{
	/* acq_rel: the other holder's accesses happen-before the free. */
	if (atomic_fetch_sub_explicit(&t->refs, 1, memory_order_acq_rel) == 1)
		free(t);
}

/* Thread exit: let go of the thread's free tickets (an entry still queued
 * keeps its own until it runs). */
static void tickets_exit(void *arg)
{
	(void)arg;
	struct ticket *t = tls_tickets;
	tls_tickets = NULL;
	while (t) {
		struct ticket *next = t->next;
		ticket_put(t);
		t = next;
	}
}

void conc__parallel_drop_tickets(void)
{
	tickets_exit(NULL);
}

static void ticket_key_init(void)
{
	ticket_key_ok = pthread_key_create(&ticket_key, tickets_exit) == 0;
}

/* A free ticket of this thread for an offer to p: one whose idle entry is
 * in p (the offer rides on it), else one with no entry, else a new one.
 * NULL: no memory. */
static struct ticket *ticket_take(conc_pool *p)
{
	struct ticket **best = NULL;
	for (struct ticket **pt = &tls_tickets; *pt; pt = &(*pt)->next) {
		/* relaxed: a hint; the CAS in job_offer decides. */
		uintptr_t v = atomic_load_explicit(&(*pt)->word, memory_order_relaxed);
		if (v == TICKET_QUEUED && (*pt)->p == p) {
			best = pt;
			break;
		}
		if (v == 0 && !best)
			best = pt;
	}
	if (best) {
		struct ticket *t = *best;
		*best = t->next;
		return t;
	}
	pthread_once(&ticket_once, ticket_key_init);
	struct ticket *t = conc__malloc("parallel.ticket", sizeof *t);
	if (!t)
		return NULL;
	atomic_init(&t->word, 0);
	atomic_init(&t->refs, 1); /* the owner's */
	t->p = NULL;
	t->next = NULL;
	/* Without a key the thread cannot give its tickets back at exit:
	 * it keeps none (ticket_give frees them instead). */
	if (ticket_key_ok && pthread_getspecific(ticket_key) == NULL)
		pthread_setspecific(ticket_key, (void *)1);
	return t;
}

/* The owner is done with t (claimed back, or its job ran): keep it. */
static void ticket_give(struct ticket *t)
{
	if (!ticket_key_ok) {
		ticket_put(t);
		return;
	}
	t->next = tls_tickets;
	tls_tickets = t;
}

/* The injector entry of an outside offer. */
static void ticket_entry(void *arg)
{
	struct ticket *t = arg;
	/* acq_rel: with the owner's claim CAS, exactly one gets the job;
	 * acquire pairs with the owner's release (the CAS that rode on this
	 * entry, or the push), which published the job's fields. */
	uintptr_t v = atomic_exchange_explicit(&t->word, 0, memory_order_acq_rel); /* LP: join-b-claim (outside) */
	struct job *j = (struct job *)(v & ~TICKET_QUEUED);
	if (j)
		job_entry(j);
	ticket_put(t);
}

/* Offer j to p from the calling thread (w: its worker of p, or NULL).
 * False when it could not be pushed (ENOMEM): run it yourself. */
static bool job_offer(conc_pool *p, conc__worker *w, struct job *j)
{
	j->p = p;
	j->owner = w;
	j->ticket = NULL;
	j->root = conc__tls_root;
	CONC__CHECK(j->root != NULL, "parallel: a job is offered inside a root call");
	atomic_init(&j->state, JOB_PENDING);
	/* The deque's / injector's release publishes *j (and the ticket) to
	 * whoever takes it. */
	if (w)
		return conc__pool_push_job(w, job_entry, j, j->root, &j->pos) == 0;
	if (!conc__pool_usable(p))
		return false; /* no worker would take it: run it yourself */
	struct ticket *t = ticket_take(p);
	if (!t)
		return false;
	j->ticket = t;
	uintptr_t idle = TICKET_QUEUED;
	/* release: publishes *j to the entry's acquire exchange; fails when
	 * the idle entry was taken meanwhile (the word is then 0). */
	if (t->p == p && atomic_compare_exchange_strong_explicit(&t->word, &idle,
								 (uintptr_t)j | TICKET_QUEUED,
								 memory_order_release,
								 memory_order_relaxed))
		return true; /* rides on the idle entry: nothing pushed */
	/* No entry of ours: a new one.  relaxed (both): the push's release
	 * publishes them; the old entry, if still finishing, only puts. */
	atomic_fetch_add_explicit(&t->refs, 1, memory_order_relaxed);
	atomic_store_explicit(&t->word, (uintptr_t)j | TICKET_QUEUED, memory_order_relaxed);
	t->p = p;
	if (conc__pool_push_shared(p, ticket_entry, t) != 0) {
		atomic_store_explicit(&t->word, 0, memory_order_relaxed); /* never published */
		atomic_fetch_sub_explicit(&t->refs, 1, memory_order_relaxed); /* ours remains */
		ticket_give(t);
		return false;
	}
	return true;
}

static bool job_done(struct job *j)
{
	/* acquire: pairs with the release exchange in job_entry (the job's
	 * effects, e.g. a reduce accumulator, are visible after this). */
	return atomic_load_explicit(&j->state, memory_order_acquire) == JOB_DONE;
}

static void job_wait_for(conc_pool *p, conc__worker *w, struct job *j);

/* The job was taken by another thread: run other tasks until it is done. */
static void job_wait(conc_pool *p, conc__worker *w, struct job *j)
{
	conc__test_point("parallel.join.wait");
	/* relaxed (both): a hint for hb_demand. */
	atomic_fetch_add_explicit(&hb_hungry, 1, memory_order_relaxed);
	job_wait_for(p, w, j);
	atomic_fetch_sub_explicit(&hb_hungry, 1, memory_order_relaxed);
	conc__test_point("parallel.join.waited");
}

static void job_wait_for(conc_pool *p, conc__worker *w, struct job *j)
{
	conc__backoff bo = CONC__BACKOFF_INIT;
	uint64_t until = 0;
	for (;;) {
		if (job_done(j))
			return;
		if (conc__pool_help(p, w, j->root)) { /* isolated: see the top */
			conc__backoff_reset(&bo);
			until = 0;
			continue;
		}
		conc__test_point("parallel.join.idle"); /* found nothing to help */
		if (!conc__backoff_is_yielding(&bo)) {
			conc__backoff_spin(&bo);
			continue;
		}
		uint64_t now = conc__now_ns();
		if (until == 0)
			until = now + WAIT_SPIN_NS;
		if (now < until) {
			sched_yield();
			continue;
		}
		unsigned s = JOB_PENDING;
		/* acquire (both; C11 wants success >= failure): DONE read
		 * on failure is the job's release. */
		if (!atomic_compare_exchange_strong_explicit(&j->state, &s, JOB_SLEEPER,
							     memory_order_acquire,
							     memory_order_acquire) &&
		    s == JOB_DONE)
			return;
		/* Sleeps only while the word still says SLEEPER; a bounded
		 * step, so tasks that appear meanwhile are not left waiting
		 * for us forever. */
		conc__futex_wait(&j->state, JOB_SLEEPER, now + WAIT_PARK_NS);
	}
}

/* After the left half: run j here if it is still ours, else wait for it. */
static void job_join(conc_pool *p, conc__worker *w, struct job *j)
{
	if (!w) {
		struct ticket *t = j->ticket;
		uintptr_t v = (uintptr_t)j | TICKET_QUEUED;
		/* acq_rel: see ticket_entry.  Winning leaves the entry idle
		 * (QUEUED) for the next offer to ride on. */
		bool mine = atomic_compare_exchange_strong_explicit(&t->word, &v, TICKET_QUEUED,
								    memory_order_acq_rel,
								    memory_order_acquire); /* LP: join-b-claim (outside) */
		ticket_give(t);
		if (mine) {
			j->run(j, NULL, RUN_POPPED);
			return;
		}
	} else {
		conc__task t;
		while (!job_done(j) && conc__pool_pop_above(w, j->pos, &t)) {
			if (t.fn == job_entry && t.arg == j) {
				t.fn = job_entry_popped; /* LP: join-b-inline */
				conc__pool_run(p, w, t);
				return;
			}
			conc__pool_run(p, w, t); /* left behind by a, or an outer job */
		}
	}
	job_wait(p, w, j);
}

struct user_job {
	struct job j; /* first */
	void (*fn)(void *);
	void *ctx;
};

static void user_job_run(struct job *j, conc__worker *w, enum run_mode mode)
{
	(void)w;
	(void)mode;
	struct user_job *u = (struct user_job *)j;
	u->fn(u->ctx);
}

/* ---- heartbeat: lazy offers of nested joins ------------------------------------ */

/* A nested conc_join's b, not offered yet (see "Heartbeat" at the top). */
struct hb_frame {
	struct user_job u;    /* first: the job, once promoted */
	struct hb_frame *prev; /* the thread's next older frame */
	conc_pool *p;
	void *root;           /* the call tree the frame belongs to */
	unsigned depth;       /* hb.depth when it was linked */
	bool promoted;        /* owner only: b was offered (u.j is live) */
};

/* The calling thread's frames, newest first, and the addresses of the
 * idle counts of the pool it joined on last (see hb_demand). */
struct hb_tls {
	struct hb_frame *top;
	/* Jobs of loops and root joins this thread offered and has not joined
	 * yet (see hb_promote). */
	unsigned depth;
	unsigned tick; /* joins until the next look at the demand */
	conc_pool *pool;
	const atomic_uint *searching, *parked;
};
static _Thread_local struct hb_tls hb CONC__TLS_IE;
/* How often a nested join looks at the demand (see hb_demand). */
#define HB_POLL 8u

static COLD_FN void hb_cache(conc_pool *p)
{
	conc__pool_idle_words(p, &hb.searching, &hb.parked);
	hb.pool = p;
}

/* Whether some thread could take work now: a worker of p searching or
 * parked, or a joiner waiting.  relaxed (all three): a hint; a promotion
 * that comes late or for nothing costs time, never correctness. */
static inline bool hb_demand(conc_pool *p)
{
	if (conc__unlikely(hb.pool != p))
		hb_cache(p);
	return (atomic_load_explicit(hb.searching, memory_order_relaxed) |
		atomic_load_explicit(hb.parked, memory_order_relaxed) |
		atomic_load_explicit(&hb_hungry, memory_order_relaxed)) != 0;
}

/* Offer the oldest frame of the current tree on p whose b is not offered
 * yet - the largest piece there is to give - unless work is already queued
 * where idle threads look (they take that first).  The current tree's
 * frames are the newest ones (a tree started inside another one ends
 * before it); frames are promoted oldest first, so the walk stops at the
 * first promoted one. */
#if defined(CONC_FAULT_HOOKS) && CONC_FAULT_HOOKS
atomic_int conc__parallel_eager; /* pool/pool_internal.h */
/* relaxed: a test switch, set before the calls it is for */
#define HB_EAGER() conc__unlikely(atomic_load_explicit(&conc__parallel_eager, memory_order_relaxed) != 0)
#else
#define HB_EAGER() false
#endif

static COLD_FN void hb_promote(conc_pool *p, void *root, bool eager)
{
	/* Only frames linked since the thread's last offer of a loop or root
	 * job still outstanding (same depth): an older frame's b would go on
	 * the deque above that job, and the job's join, which takes back what
	 * lies above it, would run b on top of a - its own a, which may hold
	 * a lock b takes (review F1; test_parallel_join_b_not_inside_own_a).
	 * Frames are linked at non-decreasing depths, so the walk stops at
	 * the first older one. */
	struct hb_frame *f = NULL;
	for (struct hb_frame *g = hb.top;
	     g && g->root == root && !g->promoted && g->depth == hb.depth; g = g->prev)
		if (g->p == p)
			f = g;
	if (!f)
		return;
	conc__worker *w = conc__pool_current(p);
	if (!eager && (w ? !conc__pool_deque_empty(w) : conc_pool_queued(p) != 0))
		return;
	if (!w)
		conc__pool_enter(p); /* destroy waits for us (left in join_nested) */
	conc__test_point("parallel.join.promote");
	f->u.j.run = user_job_run;
	if (job_offer(p, w, &f->u.j))
		f->promoted = true; /* LP: join-b-promote */
	else if (!w)
		conc__pool_leave(p);
}

/* The job of a promoted frame: run it here if still ours, else wait. */
static NOINLINE_FN void hb_finish(conc_pool *p, struct hb_frame *f)
{
	conc__worker *w = f->u.j.owner;
	job_join(p, w, &f->u.j);
	if (!w)
		conc__pool_leave(p); /* entered by hb_promote */
}

/* A join inside a call tree: b waits in a frame on this stack, offered
 * only if a thread goes idle meanwhile (hb_promote, at this or a later
 * join); otherwise it runs here after a, as a plain call. */
static inline void join_nested(conc_pool *p, void *root, void (*a)(void *), void *actx,
			       void (*b)(void *), void *bctx)
{
	struct hb_frame f;
	f.u.fn = b;
	f.u.ctx = bctx;
	f.p = p;
	f.root = root;
	f.depth = hb.depth;
	f.promoted = false;
	f.prev = hb.top;
	hb.top = &f;
	/* Every HB_POLL-th join looks whether anybody is idle. */
	if (conc__unlikely(hb.tick-- == 0)) {
		hb.tick = HB_POLL - 1;
		if (hb_demand(p))
			hb_promote(p, root, false);
	}
	if (HB_EAGER()) /* test builds: offer every b, as the root does */
		hb_promote(p, root, true);
	a(actx);
	/* From here on the frame's copies (a may have changed nothing in
	 * them, but reading them back frees the registers that would keep
	 * b, bctx and p alive across a). */
	hb.top = f.prev;
	if (conc__likely(!f.promoted))
		f.u.fn(f.u.ctx); /* LP: join-b-inline (never offered) */
	else
		hb_finish(f.p, &f);
}

/* The first join of a call tree on this thread (b is offered at once), a
 * join whose caller is pinned (the full pin guard), and a join without a
 * pool. */
static NOINLINE_FN int join_slow(conc_pool *p, void (*a)(void *), void *actx,
				 void (*b)(void *), void *bctx)
{
	struct pin_guard g;
	pin_guard_enter(&g);
	void *root = conc__tls_root;
	if (p && root) {
		join_nested(p, root, a, actx, b, bctx);
		pin_guard_leave(&g);
		return 0;
	}
	struct user_job u = {.fn = b, .ctx = bctx};
	void *saved_root = root_enter(&u);
	u.j.run = user_job_run;
	conc__worker *w = p ? conc__pool_current(p) : NULL;
	bool outside = p && !w;
	if (outside)
		conc__pool_enter(p); /* destroy waits for us */
	if (!p || !job_offer(p, w, &u.j)) {
		a(actx);
		b(bctx);
	} else {
		hb.depth++; /* u's job is outstanding: see hb_promote */
		a(actx);
		job_join(p, w, &u.j);
		hb.depth--;
	}
	if (outside)
		conc__pool_leave(p); /* p may be gone from here on */
	root_leave(saved_root);
	pin_guard_leave(&g);
	return 0;
}

/* A and b left the thread pinned; it was not pinned before the call. */
static COLD_FN void join_unpin(void)
{
	if (conc__epoch_pinned_anywhere())
		conc__epoch_pins_restore(NULL);
}

int conc_join(conc_pool *p, void (*a)(void *), void *actx,
	      void (*b)(void *), void *bctx)
{
	if (!a || !b || (p && !CONC__POOL_ALIVE(p)))
		return EINVAL;
	if (!p)
		p = conc_pool_global();
	void *root = conc__tls_root;
	/* The pin guard's common case: not pinned at the entry (so every pin
	 * found at the exit was made during the call). */
	if (conc__unlikely(!root || !p || conc__epoch_pinned_quick()))
		return join_slow(p, a, actx, b, bctx);
	join_nested(p, root, a, actx, b, bctx);
	if (conc__unlikely(conc__epoch_pinned_quick()))
		join_unpin();
	return 0;
}

/* ---- loops ------------------------------------------------------------------ */

struct loop {
	conc_pool *p;
	size_t grain;
	unsigned threads;
	int (*body)(size_t, size_t, void *);
	int (*rbody)(size_t, size_t, void *, void *);
	void (*identity)(void *, void *);
	void (*combine)(void *, const void *, void *);
	void *ctx;
	size_t size;   /* accumulator bytes */
	size_t stride; /* size rounded up to max_align_t */
	atomic_int stop; /* 0, or the first non-zero result */
	size_t done_hi; /* the first piece [begin, done_hi) ran already (timed) */
};

struct loop_job {
	struct job j; /* first */
	struct loop *l;
	size_t lo, hi;
	unsigned splits;
	void *acc;            /* reduce: where this subtree's result goes */
	unsigned char *slots; /* reduce, large: the parent's slots below it */
};

typedef struct {
	alignas(max_align_t) unsigned char b[CONC_PARALLEL_STACK_ACC];
} small_acc;

static size_t grain_for(size_t n, size_t grain)
{
	if (grain)
		return grain;
	size_t g = n / CONC_PARALLEL_LEAVES + (n % CONC_PARALLEL_LEAVES != 0);
	return g < CONC_PARALLEL_GRAIN_MIN ? CONC_PARALLEL_GRAIN_MIN : g;
}

/* Levels below a node of n indexes (the rightmost path is the longest). */
static unsigned depth_of(size_t n, size_t grain)
{
	unsigned d = 0;
	while (n > grain) {
		n -= n / 2;
		d++;
	}
	return d;
}

static bool stopped(struct loop *l)
{
	/* relaxed: a hint (see "Cancellation" at the top). */
	return atomic_load_explicit(&l->stop, memory_order_relaxed) != 0;
}

static void record(struct loop *l, int r)
{
	int zero = 0;
	/* relaxed: read after every join (see the top). */
	atomic_compare_exchange_strong_explicit(&l->stop, &zero, r,
						memory_order_relaxed,
						memory_order_relaxed);
}

/* The rayon splitter: whether a node offers its right half. */
static bool should_split(struct loop *l, unsigned *splits, bool stolen)
{
	if (stolen) {
		unsigned half = *splits / 2;
		*splits = half > l->threads ? half : l->threads;
		return true;
	}
	if (*splits == 0)
		return false;
	*splits /= 2;
	return true;
}

/* -- parallel_for -- */

static void for_leaf(struct loop *l, size_t lo, size_t hi)
{
	if (lo < l->done_hi || stopped(l))
		return; /* the first piece ran already (see first_piece) */
	int r = l->body(lo, hi, l->ctx);
	if (conc__unlikely(r != 0))
		record(l, r);
}

/* The whole subtree on this thread, pieces left to right. */
static void for_inline(struct loop *l, size_t lo, size_t hi)
{
	while (hi - lo > l->grain) {
		size_t mid = lo + (hi - lo) / 2;
		for_inline(l, lo, mid);
		lo = mid;
	}
	for_leaf(l, lo, hi);
}

static void for_job_run(struct job *j, conc__worker *w, enum run_mode mode);

static void for_node(struct loop *l, conc__worker *w, size_t lo, size_t hi,
		     unsigned splits, bool stolen)
{
	while (hi - lo > l->grain) {
		if (!should_split(l, &splits, stolen)) {
			for_inline(l, lo, hi);
			return;
		}
		stolen = false;
		if (stopped(l))
			return;
		size_t mid = lo + (hi - lo) / 2;
		struct loop_job rj = {.l = l, .lo = mid + CONC__MUTANT_VALUE(8, 0, (hi - lo) % 2),
				      .hi = hi, .splits = splits};
		rj.j.run = for_job_run;
		if (job_offer(l->p, w, &rj.j)) {
			hb.depth++; /* rj is outstanding: see hb_promote */
			for_node(l, w, lo, mid, splits, false);
			job_join(l->p, w, &rj.j);
			hb.depth--;
			return;
		}
		for_node(l, w, lo, mid, splits, false); /* no memory: in order */
		lo = mid;
	}
	for_leaf(l, lo, hi);
}

static void for_job_run(struct job *j, conc__worker *w, enum run_mode mode)
{
	struct loop_job *rj = (struct loop_job *)j;
	for_node(rj->l, w, rj->lo, rj->hi, rj->splits, mode == RUN_STOLEN);
}

/* -- parallel_reduce -- */

static bool small(const struct loop *l)
{
	return l->size <= CONC_PARALLEL_STACK_ACC;
}

static void red_leaf(struct loop *l, size_t lo, size_t hi, void *acc)
{
	if (lo < l->done_hi || stopped(l))
		return; /* the first piece ran already, into acc (the root's) */
	l->identity(acc, l->ctx);
	int r = l->rbody(lo, hi, acc, l->ctx);
	if (conc__unlikely(r != 0))
		record(l, r);
}

static void red_combine(struct loop *l, void *acc, const void *other)
{
	if (!stopped(l))
		l->combine(acc, other, l->ctx);
}

/* The whole subtree on this thread; its result in acc.  slots: depth x
 * stride bytes for large accumulators, else unused. */
static void red_inline(struct loop *l, size_t lo, size_t hi, void *acc,
		       unsigned char *slots)
{
	if (hi - lo <= l->grain) {
		red_leaf(l, lo, hi, acc);
		return;
	}
	size_t mid = lo + (hi - lo) / 2;
	small_acc buf;
	void *tmp = small(l) ? (void *)buf.b : (void *)slots;
	unsigned char *below = small(l) ? NULL : slots + l->stride;
	red_inline(l, lo, mid, acc, below);
	red_inline(l, mid, hi, tmp, below);
	red_combine(l, acc, tmp);
}

static void red_job_run(struct job *j, conc__worker *w, enum run_mode mode);

static void red_node(struct loop *l, conc__worker *w, size_t lo, size_t hi,
		     unsigned splits, bool stolen, void *acc, unsigned char *slots)
{
	if (hi - lo <= l->grain) {
		red_leaf(l, lo, hi, acc);
		return;
	}
	if (!should_split(l, &splits, stolen)) {
		red_inline(l, lo, hi, acc, slots);
		return;
	}
	if (stopped(l))
		return;
	size_t mid = lo + (hi - lo) / 2;
	small_acc buf;
	void *tmp = small(l) ? (void *)buf.b : (void *)slots;
	unsigned char *below = small(l) ? NULL : slots + l->stride;
	struct loop_job rj = {.l = l, .lo = mid, .hi = hi, .splits = splits,
			      .acc = tmp, .slots = below};
	rj.j.run = red_job_run;
	if (job_offer(l->p, w, &rj.j)) {
		hb.depth++; /* rj is outstanding: see hb_promote */
		red_node(l, w, lo, mid, splits, false, acc, below);
		job_join(l->p, w, &rj.j);
		hb.depth--;
	} else { /* no memory: in order */
		red_node(l, w, lo, mid, splits, false, acc, below);
		red_node(l, w, mid, hi, splits, false, tmp, below);
	}
	red_combine(l, acc, tmp);
}

static void red_job_run(struct job *j, conc__worker *w, enum run_mode mode)
{
	struct loop_job *rj = (struct loop_job *)j;
	struct loop *l = rj->l;
	unsigned char *slots = rj->slots, *own = NULL;
	if (!small(l) && mode != RUN_POPPED) {
		/* The parent's slots may be in use by its left half. */
		unsigned d = depth_of(rj->hi - rj->lo, l->grain);
		if (d) {
			own = conc__malloc("parallel.reduce_slots", (size_t)d * l->stride);
			if (!own) {
				record(l, ENOMEM);
				return;
			}
		}
		slots = own;
	}
	red_node(l, w, rj->lo, rj->hi, rj->splits, mode == RUN_STOLEN, rj->acc, slots);
	free(own);
}

/* ---- entry points -------------------------------------------------------------- */

static void loop_init(struct loop *l, conc_pool *p, size_t n, size_t grain,
		      void *ctx)
{
	memset(l, 0, sizeof *l);
	l->p = p;
	l->grain = grain_for(n, grain);
	l->ctx = ctx;
	atomic_init(&l->stop, 0);
}

/* The length of the leftmost piece of a range of n > grain indexes. */
static size_t first_len(size_t n, size_t grain)
{
	while (n > grain)
		n /= 2; /* the left child [lo, lo + n / 2) */
	return n;
}

/*
 * Serial or split?  The first piece of the tree runs on the calling thread
 * before anything is offered, timed; the whole loop is estimated as that
 * time x the number of pieces of that length.  Below LOOP_SERIAL_NS the
 * rest runs on the calling thread too (a hand-off - a wake, a steal, the
 * join - would cost about as much as it could save); above, it is split as
 * usual.  Either way the tree, the pieces and the combine order are those
 * of the header: only who runs them differs.  The piece is marked done
 * (done_hi) and skipped by the walk; it is the leftmost leaf, whose
 * accumulator is the root's on every path (a left child shares its
 * parent's), so a reduce finds its result in place.  Cost: two clock reads
 * per call of more than one piece.
 */
#define LOOP_SERIAL_NS 20000u
static bool first_piece(struct loop *l, size_t begin, size_t n, void *acc)
{
	size_t len = first_len(n, l->grain);
	uint64_t t0 = conc__now_ns();
	if (acc)
		red_leaf(l, begin, begin + len, acc);
	else
		for_leaf(l, begin, begin + len);
	uint64_t dt = conc__now_ns() - t0;
	l->done_hi = begin + len;
	size_t pieces = n / len;
	conc__test_point(dt < LOOP_SERIAL_NS / pieces ? "parallel.loop.serial" : "parallel.loop.split");
	return dt < LOOP_SERIAL_NS / pieces; /* est = dt x pieces, without overflow */
}

/* Serial or split, for a loop of n > grain indexes from begin: an explicit
 * grain is the caller's word that its pieces are worth handing out (the
 * header's example: grain 1 for 100 indexes of 1 ms each), and a cheap
 * first piece says nothing of the others (review: index 0 empty and 31
 * of 2 ms ran serially, 4-8x slower): split as asked, untimed.  grain 0
 * (pieces of the library's choosing): first_piece decides. */
static bool loop_serial(struct loop *l, size_t grain, size_t begin, size_t n, void *acc)
{
	if (grain) {
		conc__test_point("parallel.loop.split");
		return false;
	}
	return first_piece(l, begin, n, acc);
}

/* The pool to split on, or NULL: run the tree on this thread. */
static conc_pool *loop_pool(struct loop *l, conc_pool *p)
{
	if (!p)
		p = conc_pool_global();
	l->p = p;
	l->threads = p ? conc_pool_threads(p) : 0;
	return p;
}

int conc_parallel_for(conc_pool *p, size_t begin, size_t end, size_t grain,
		      int (*body)(size_t lo, size_t hi, void *ctx), void *ctx)
{
	if (!body || begin > end || (p && !CONC__POOL_ALIVE(p)))
		return EINVAL;
	if (begin == end)
		return 0;
	size_t n = end - begin;
	struct pin_guard g;
	pin_guard_enter(&g);
	int r;
	if (n <= grain_for(n, grain)) {
		r = body(begin, end, ctx); /* one piece: no pool needed */
	} else {
		struct loop l;
		loop_init(&l, p, n, grain, ctx);
		l.body = body;
		if (loop_pool(&l, p)) {
			conc__worker *w = conc__pool_current(l.p);
			/* before any body runs: a destroy that sees a body
			 * running must also see us inside */
			if (!w)
				conc__pool_enter(l.p); /* destroy waits for us */
			void *saved_root = root_enter(&l);
			if (loop_serial(&l, grain, begin, n, NULL))
				for_inline(&l, begin, end);
			else
				for_node(&l, w, begin, end, l.threads, false);
			root_leave(saved_root);
			if (!w)
				conc__pool_leave(l.p);
		} else
			for_inline(&l, begin, end);
		/* relaxed: every store to stop happened-before (the joins). */
		r = atomic_load_explicit(&l.stop, memory_order_relaxed);
	}
	pin_guard_leave(&g);
	return r;
}

int conc_parallel_reduce(conc_pool *p, size_t begin, size_t end, size_t grain,
			 void *result, size_t size,
			 void (*identity)(void *acc, void *ctx),
			 int (*body)(size_t lo, size_t hi, void *acc, void *ctx),
			 void (*combine)(void *acc, const void *other, void *ctx),
			 void *ctx)
{
	if (!result || !size || !identity || !body || !combine || begin > end ||
	    (p && !CONC__POOL_ALIVE(p)))
		return EINVAL;
	struct loop l;
	size_t n = end - begin;
	loop_init(&l, p, n, grain, ctx);
	l.rbody = body;
	l.identity = identity;
	l.combine = combine;
	l.size = size;
	l.stride = (size + alignof(max_align_t) - 1) / alignof(max_align_t) * alignof(max_align_t);
	if (l.stride < size)
		return ENOMEM; /* size near SIZE_MAX */

	/* The root accumulator (result may be misaligned) and, for large
	 * accumulators, the slots of the tree below it. */
	small_acc root;
	unsigned char *block = NULL, *acc = root.b, *slots = NULL;
	if (!small(&l)) {
		unsigned d = n ? depth_of(n, l.grain) : 0;
		if (l.stride > SIZE_MAX / (d + 1u))
			return ENOMEM;
		block = conc__malloc("parallel.reduce_root", (size_t)(d + 1u) * l.stride);
		if (!block)
			return ENOMEM;
		acc = block;
		slots = d ? block + l.stride : NULL;
	}
	struct pin_guard g;
	pin_guard_enter(&g);
	if (n == 0) {
		identity(acc, ctx);
	} else if (n <= l.grain) {
		red_leaf(&l, begin, end, acc); /* one piece: no pool needed */
	} else if (loop_pool(&l, p)) {
		conc__worker *w = conc__pool_current(l.p);
		/* before any body runs (see conc_parallel_for) */
		if (!w)
			conc__pool_enter(l.p); /* destroy waits for us */
		void *saved_root = root_enter(&l);
		if (loop_serial(&l, grain, begin, n, acc))
			red_inline(&l, begin, end, acc, slots);
		else
			red_node(&l, w, begin, end, l.threads, false, acc, slots);
		root_leave(saved_root);
		if (!w)
			conc__pool_leave(l.p);
	} else {
		red_inline(&l, begin, end, acc, slots);
	}
	pin_guard_leave(&g);
	/* relaxed: every store to stop happened-before (the joins). */
	int r = atomic_load_explicit(&l.stop, memory_order_relaxed);
	if (r == 0)
		memcpy(result, acc, size);
	free(block);
	return r;
}
