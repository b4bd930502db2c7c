/*
 * conc/parallel.h - fork-join and parallel loops on a pool.
 *
 * conc_join runs two functions, possibly in parallel, and returns when both
 * are done.  conc_parallel_for and conc_parallel_reduce split an index range
 * into pieces and run a body on each piece, possibly in parallel; reduce
 * also folds the pieces' results together in a fixed order, so that the
 * answer does not depend on how many threads ran it, or when.
 *
 *   static int add(size_t lo, size_t hi, void *acc, void *ctx) {
 *           for (size_t i = lo; i < hi; i++) *(double *)acc += ((double *)ctx)[i];
 *           return 0;
 *   }
 *   double sum;  // identity: *acc = 0.0; combine: *acc += *other
 *   conc_parallel_reduce(NULL, 0, n, 0, &sum, sizeof sum, zero, add, plus, v);
 *
 * Where the work runs.  p is the pool (NULL: conc_pool_global(); if that
 * cannot be created, everything runs on the calling thread).  The calling
 * thread always takes part: it runs the first half itself and offers the
 * second half to the pool.  Called from one of p's tasks (a worker), the
 * offered half goes on the worker's own deque, where it is taken back and
 * run inline when no other worker has stolen it meanwhile.  Called from
 * any other thread, it goes through the pool's shared queue.
 * When the offer is made.  The outermost conc_join or loop of a thread
 * offers at once.  A conc_join nested in another call on the same thread
 * (inside a join function or a body) offers its second half lazily: it
 * notes it on the thread, runs the first half, and runs the second half
 * itself afterwards, a plain call, unless some thread wanted work in the
 * meantime - a worker of p searching or asleep, or a caller waiting for a
 * half - when this or a later nested conc_join on the thread came to look
 * (every few calls): then the oldest second half not yet offered (the
 * largest piece) is offered as above.  So a fine-grained recursion costs
 * a few nanoseconds per conc_join while every thread is busy, and pieces
 * are handed out only when a thread can take them.  A loop with grain 0
 * first runs its leftmost piece on the calling thread and times it; when
 * that time x the number of pieces is below about 20 microseconds, it runs
 * the rest there as well (same pieces, same order, same combine tree).  A
 * loop with an explicit grain is split as asked, untimed (a cheap first
 * piece says nothing of the others).  A caller
 * waiting for a half that somebody else is running helps meanwhile, but
 * only with its own call tree (isolation): it takes back what its own
 * first half left on its deque, and steals pieces of the same outermost
 * conc_join / loop from the other workers - never an unrelated task of the
 * pool (one executed with conc_pool_execute, another tree's pieces), which
 * could block on the very work it waits for (a task waiting for another
 * pool, a resize, a lock the body holds).  It sleeps once none is found for
 * a while.  So calls nest freely - inside pool tasks, inside bodies, at any
 * depth - and never deadlock, also on a pool of one thread.  The tasks a
 * body executes with conc_pool_execute are run by the pool's free workers
 * (or by the body's own worker after the call), not by its waits.
 *
 * Epoch pins.  Bodies, identity, combine and join functions must leave
 * their epoch pins balanced.  One that returns still pinned (a bug) does
 * not leave the pin behind: each call notes the calling thread's pins when
 * it starts and, if the thread is pinned anywhere when it ends, puts them
 * back to that note - only pins made during the call are undone, the
 * caller's own (taken before the call, at their depth) stay.  Until the
 * call returns the thread stays pinned (a later body on it runs pinned).
 * Pieces run on a pool worker as tasks of their own are covered by the
 * pool's check after each task (conc/pool.h).  Cost: two thread-local
 * loads at each end of a call when the caller is not pinned (the common
 * case); a scan of the thread's 64 epoch pin slots (8 records and 56
 * shared-path slots) and a copy when it is.  On a pool that
 * cannot run tasks in this process (made before a fork(), or the global
 * pool after exit began) everything runs on the calling thread.  Limit:
 * pins beyond the 64 slots (a thread pinned in more than 64 domains at
 * once) carry no domain; a body's are undone only when the caller held
 * none of them.
 *
 * The split tree.  A range [lo, hi) with hi - lo > grain is split at
 *     mid = lo + (hi - lo) / 2      (rounded down)
 * into the left child [lo, mid) and the right child [mid, hi), recursively;
 * a range with 0 < hi - lo <= grain is a leaf ("piece").  The pieces, in
 * index order, are the leaves of this tree from left to right; every piece
 * goes to exactly one body call, body(lo, hi, ...) with lo < hi.  The tree
 * depends on begin, end and grain only.  Examples, grain 2: [0, 5) ->
 * [0, 2) | [2, 5) -> [2, 3) [3, 5): pieces [0,2) [2,3) [3,5).  The depth of
 * the tree is at most 64.
 *
 * grain 0.  With n = end - begin:
 *     grain = max(CONC_PARALLEL_GRAIN_MIN, ceil(n / CONC_PARALLEL_LEAVES))
 * i.e. max(4096, ceil(n / 4096)): a range of at most 4096 indexes is one
 * piece run on the calling thread (a loop that short costs less than a
 * hand-off), and a long range has at most 4096 pieces.  A function of n
 * alone: never of the thread count or the machine.  Each piece costs about
 * 20 ns besides its body (the calls of identity, body and combine, a level
 * of the tree): 4096 indexes keep that near 2% of even the cheapest body
 * (one add per index; 1024 cost 7%).  Pass an explicit grain when single
 * indexes are expensive (e.g. 1 for 100 indexes of 1 ms each).
 *
 * Scheduling is adaptive and does not change the tree: a subtree runs on
 * one thread, its pieces in index order, unless a half of it is offered to
 * other threads - which is done only while that pays: the first few levels
 * of a call (as many as it takes to give each of the pool's threads a part)
 * and a few levels again below each half that another thread stole.  So a
 * loop whose pieces are cheap pays for a handful of tasks, not one per node.
 *
 * Cancellation.  A body that returns non-zero cancels the loop: pieces not
 * yet started when a thread sees the cancel are skipped, pieces already
 * running finish; the call returns the first non-zero value recorded.
 *
 * Reduction order.  Each piece folds into an accumulator of `size` bytes,
 * aligned for max_align_t and set up by identity() first.  At each inner
 * node the left child's accumulator is the node's own, the right child's is
 * a fresh one, and after both children finish
 *     combine(left, right)
 * folds the right into the left (left keeps the result).  The root's
 * accumulator is copied to *result.  So the expression evaluated is exactly
 * the split tree with combine at its inner nodes, e.g. for the pieces
 * P0..P2 of the example above: combine(P0, combine(P1, P2)) - the same on
 * any number of threads, run after run (floating-point sums are bitwise
 * reproducible).  Accumulators of up to CONC_PARALLEL_STACK_ACC bytes live
 * on the stacks of the threads (about that many bytes per tree level on
 * each); larger ones are allocated, one block per task.
 *
 * Thread safety: every function may be called by any number of threads at
 * once, on the same pool or on different ones, from inside pool tasks and
 * from inside bodies.  Bodies of one call run concurrently with each other
 * (on disjoint pieces); identity, body and combine must be safe to run so.
 * The pool must outlive every call on it: conc_pool_destroy must not run
 * while a conc_join or a loop on that pool is in progress.  In a
 * debug-checks build (conc/pool.h) a call on a pool already destroyed
 * returns EINVAL, nothing run.
 */
#ifndef CONC_PARALLEL_H
#define CONC_PARALLEL_H

#include <stddef.h>

#include "conc/pool.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The grain-0 formula: max(CONC_PARALLEL_GRAIN_MIN, ceil(n / CONC_PARALLEL_LEAVES)). */
#define CONC_PARALLEL_GRAIN_MIN 4096u
#define CONC_PARALLEL_LEAVES 4096u
/* Reduce accumulators up to this size live on the stack. */
#define CONC_PARALLEL_STACK_ACC 256u

/*
 * conc_join - run a(actx) and b(bctx), possibly in parallel; return when
 * both have returned.
 *
 * a runs on the calling thread; b runs on the calling thread or on a thread
 * of p (NULL: the global pool).  The outermost call of a thread offers b to
 * p at once; a call nested in another one offers it only if some thread
 * wants work while a runs (see "When the offer is made"), else b runs on
 * the caller after a.  While b runs elsewhere, the caller runs other
 * pieces of its own call tree instead of waiting idle (see "Where the work
 * runs").
 * Thread safety: any thread, also inside p's tasks and inside a or b.
 * Ordering: what the caller did before the call happens-before a and b;
 *   both happen-before the return.
 * Progress: blocking (until a and b have returned).  It never waits for a
 *   task that nobody will run: on a pool whose threads are all busy the
 *   caller runs b itself.
 * Returns: 0; EINVAL (a or b NULL, or p destroyed in a debug-checks
 *   build; nothing ran).
 */
int conc_join(conc_pool *p, void (*a)(void *), void *actx,
	      void (*b)(void *), void *bctx);

/*
 * conc_parallel_for - call body(lo, hi, ctx) once for each piece of the
 * split tree of [begin, end) with `grain` (0: the formula above).
 *
 * Thread safety: as above; bodies run concurrently with each other.
 * Ordering: what the caller did before the call happens-before every body;
 *   every body happens-before the return.  Within one thread's subtree the
 *   pieces run in index order; across threads, in no particular order.
 * Progress: blocking (until every piece is done or skipped).
 * Returns: 0 when every piece ran; the first non-zero body result recorded
 *   (the loop was cancelled; some pieces may not have run); EINVAL (body
 *   NULL or begin > end, or p destroyed in a debug-checks build; checked
 *   before anything runs).  A valid empty range returns 0 at once.
 */
int conc_parallel_for(conc_pool *p, size_t begin, size_t end, size_t grain,
		      int (*body)(size_t lo, size_t hi, void *ctx), void *ctx);

/*
 * conc_parallel_reduce - fold [begin, end) into *result: for each piece,
 * identity(acc, ctx) then body(lo, hi, acc, ctx); then combine(left, right,
 * ctx) along the split tree, as described above.
 *
 * *result (size bytes, any alignment) is only written, at the end; for a
 * valid empty range it receives identity(), run on the calling thread.
 * Thread safety, Ordering: as conc_parallel_for; each combine runs after
 *   the two subtrees it folds, and happens-before the return.
 * Progress: blocking.
 * Returns: 0 (*result holds the reduction); the first non-zero body result
 *   recorded, or ENOMEM when an accumulator larger than
 *   CONC_PARALLEL_STACK_ACC could not be allocated (both cancel the loop;
 *   *result is then unspecified, nothing leaks); EINVAL (result, identity,
 *   body or combine NULL, size 0, begin > end, or p destroyed in a
 *   debug-checks build; nothing ran, *result untouched).
 */
int conc_parallel_reduce(conc_pool *p, size_t begin, size_t end, size_t grain,
			 void *result, size_t size,
			 void (*identity)(void *acc, void *ctx),
			 int (*body)(size_t lo, size_t hi, void *acc, void *ctx),
			 void (*combine)(void *acc, const void *other, void *ctx),
			 void *ctx);

#ifdef __cplusplus
}
#endif

#endif
