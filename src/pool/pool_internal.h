/*
 * pool_internal.h - what the layers above the pool (conc_join, the parallel
 * loops) need from inside it: which worker the calling thread is, its deque,
 * and "run one task from anywhere" so that a thread waiting for a stolen
 * task works instead of blocking.
 *
 * Task accounting (see src/pool/pool.c): every task is counted once when it
 * becomes visible (an injector push, or conc__pool_push_local) and once when
 * it finishes (conc__pool_run / conc__pool_run_one).  A task taken back with
 * conc__pool_pop_local is still counted as pending until it is passed to
 * conc__pool_run, so conc_pool_wait cannot return while it is held.
 *
 * conc_join and the loops use the isolated forms (conc__pool_push_job,
 * conc__pool_pop_above, conc__pool_help: src/parallel/parallel.c, "Isolation"); the
 * plain ones below remain for other uses.
 *
 * A join from a worker, sketched:
 *   w = conc__pool_current(p);
 *   if (conc__pool_push_local(w, b, bctx) != 0) { a(actx); b(bctx); return; }
 *   a(actx);
 *   if (conc__pool_pop_local(w, &t)) {
 *       if (t.fn == b && t.arg == bctx) conc__pool_run(p, w, t) -- inline
 *       else { conc__pool_run(p, w, t); ...keep looking for b... }
 *   }
 *   while (!b_done) if (!conc__pool_run_one(p, w)) spin/park briefly;
 * (b's wrapper sets b_done with a release store when it finishes.)
 */
#ifndef CONC_INTERNAL_POOL_INTERNAL_H
#define CONC_INTERNAL_POOL_INTERNAL_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "conc/pool.h"
#include "base/arch.h"
#include "pool/deque.h"

typedef struct conc__worker conc__worker;

/* The isolation tag of the conc_join / loop call tree the calling thread
 * works in, NULL outside any (src/parallel/parallel.c, "Isolation": set by
 * the outermost join / loop of a thread and by every job run).  Kept here
 * because the pool runs each task of a group (conc_group_*) with NULL, so
 * that a group task run by its waiter - which may be inside a join - starts
 * a tree of its own instead of joining, and helping with, the waiter's.
 * Thread-local; only the owning thread reads or writes it. */
extern _Thread_local void *conc__tls_root CONC__TLS_IE;

/* Debug-checks builds (base/check.h): whether p is a live pool, for
 * conc_join and the loops (EINVAL for a destroyed one).  Other builds:
 * always. */
#ifdef CONC_DEBUG_CHECKS
bool conc__pool_alive(const conc_pool *p);
#define CONC__POOL_ALIVE(p) conc__pool_alive(p)
#else
#define CONC__POOL_ALIVE(p) true
#endif

/* The worker of p that the calling thread is, or NULL (an outside thread,
 * or a worker of another pool). */
conc__worker *conc__pool_current(conc_pool *p);

/* True when the calling thread is inside one of p's tasks (on a worker of
 * p, or running p's tasks while it waits or helps). */
bool conc__pool_in_task(conc_pool *p);

/* How many of p's workers are registered in its sleep (between the park's
 * prepare and the end of their wait): a test hook, a snapshot. */
unsigned conc__pool_parked(conc_pool *p);

/* Owner only: push fn(arg) on w's deque; it counts as pending at once and
 * may be stolen.  Wakes a sleeping worker when it sees one (best effort: w
 * runs the task itself otherwise).  0, or ENOMEM (nothing pushed). */
int conc__pool_push_local(conc__worker *w, conc__task_fn fn, void *arg);

/* Owner only: take back the newest task of w's deque (LIFO).  The task
 * stays counted as pending: hand it to conc__pool_run. */
bool conc__pool_pop_local(conc__worker *w, conc__task *t);

/* Owner only: push a job of conc_join or a loop on w's deque, with its
 * isolation tag (the root of its call tree, src/parallel/parallel.c), and say at
 * which position it went (for conc__pool_pop_above).  It counts as pending
 * at once and may be stolen; wakes a sleeper as push_local does.  0, or
 * ENOMEM (nothing pushed: no injector fallback, the caller runs it). */
int conc__pool_push_job(conc__worker *w, conc__task_fn fn, void *arg, void *tag,
			int64_t *pos);

/* Owner only: take back the newest task of w's deque (LIFO) if it lies at
 * `pos` or above (pushed since the job pushed at pos, or that job).  The
 * task stays counted as pending: hand it to conc__pool_run. */
bool conc__pool_pop_above(conc__worker *w, int64_t pos, conc__task *t);

/* A waiter's help (isolation): steal one task tagged
 * `tag` from another worker of p and run it (w: the caller's worker of p, or
 * NULL).  Untagged tasks, the injector and other trees are never taken.
 * False when none was found (after one pass). */
bool conc__pool_help(conc_pool *p, conc__worker *w, void *tag);

/* Run a task obtained from conc__pool_pop_local (w is the caller's worker
 * of p, or NULL outside) and count it finished.  The run is nested in the
 * caller's wait: a group's token is not run but passed on to the injector
 * (src/pool/pool.c, "Tokens run at top level"). */
void conc__pool_run(conc_pool *p, conc__worker *w, conc__task t);

/* Find one task of p - w's deque first, then the injector, then another
 * worker's deque (random victim) - and run it as conc__pool_run does (a
 * group token is passed on).  w is the caller's worker of p or NULL.  False
 * when none was found (after one pass). */
bool conc__pool_run_one(conc_pool *p, conc__worker *w);

/* Push fn(arg) for p from a thread that is not one of its workers, past
 * max_queued and past the close of destroy (for callers that are inside the
 * pool's work, e.g. an outside conc_join that will itself help).  0 or
 * ENOMEM. */
int conc__pool_push_shared(conc_pool *p, conc__task_fn fn, void *arg);

/* Whether p's searching workers (if any) have all been off a CPU for a
 * while, so that a pusher would wake a sleeper rather than rely on them
 * (src/pool/pool.c, "Stale searchers"): a test hook, a snapshot. */
bool conc__pool_searchers_stale(conc_pool *p);

/* Whether p has workers in this process (false in a fork child, and for
 * the global pool once exit began): a cheap check, relaxed loads. */
bool conc__pool_usable(conc_pool *p);

/* An outside thread (not one of p's workers) enters / leaves a call that
 * may block on p - conc_join or a loop: conc_pool_destroy waits until every
 * such caller has left before it frees p.  After leave, p may be gone. */
void conc__pool_enter(conc_pool *p);
void conc__pool_leave(conc_pool *p);

/* For conc_join's lazy offers (src/parallel/parallel.c, "Heartbeat"): the
 * addresses of p's count of searching workers and of its sleepers' count,
 * to be read relaxed as hints while p lives (their offsets are fixed, so a
 * cached address stays right for any pool at that address). */
void conc__pool_idle_words(conc_pool *p, const atomic_uint **searching,
			   const atomic_uint **parked);

/* Owner only: whether w's deque holds no task (a snapshot). */
bool conc__pool_deque_empty(conc__worker *w);

/* src/parallel/parallel.c: let go of the calling thread's cached tickets (those of
 * outside offers, see "Tickets" there), as its exit does; a test hook, so
 * that a failure sweep reaches the ticket's allocation again. */
void conc__parallel_drop_tickets(void);

#if defined(CONC_FAULT_HOOKS) && CONC_FAULT_HOOKS
/* src/parallel/parallel.c, test builds: non-zero makes every nested
 * conc_join offer its b at once (promote its own frame, "Heartbeat"), as
 * the outermost one does, so that tests reach the offered-job paths of
 * nested joins (stolen, popped back, waited for) on every call. */
extern atomic_int conc__parallel_eager;
#endif

#endif
