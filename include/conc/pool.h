/*
 * conc/pool.h - a thread pool: work-stealing workers, an injector, parking.
 *
 * A pool runs small tasks - a function and its argument - on a fixed set of
 * worker threads.  Each worker has its own deque: a task executed from
 * inside a task goes on the current worker's deque, which that worker runs
 * newest first while idle workers steal the oldest.  Tasks executed from
 * other threads go through a shared lock-free queue (the injector).  Idle
 * workers search briefly, then sleep on a futex; an idle pool uses no CPU.
 * Executing a task allocates nothing in steady state.
 *
 *   conc_pool *p;  conc_pool_create(&p, NULL);
 *   conc_pool_execute(p, work, arg);  conc_pool_wait(p);  conc_pool_destroy(p);
 *
 * Concurrency.  execute, wait and the queries may be called by any number
 * of threads at once, also from inside tasks.  resize and destroy may be
 * called from any thread that is not running one of the pool's tasks;
 * concurrent resizes are serialized.  No other call on a pool may start
 * once its destroy has been called, except execute (EPIPE outside the pool;
 * accepted from the pool's own tasks) and the queries from the pool's own
 * tasks.  An outside execute that overlaps destroy returns 0 (its task
 * runs before destroy returns) or EPIPE; one held by max_queued is woken and
 * waited for (it returns EPIPE, or 0 if it had got room before the close).
 * Threads already blocked in conc_pool_wait are waited for too: they return
 * 0 once the pool is drained, before destroy frees it; and so are
 * conc_join and the parallel loops already running on outside threads
 * (their jobs are accepted and finished, then they return) and a resize
 * in progress (it completes; one that starts after destroy's close returns
 * EPIPE).  But destroy
 * cannot wait for a call it cannot see: an execute
 * still on its way in (before it reached the queue) when destroy frees the
 * pool touches freed memory - stop or join the producing threads, or order
 * their last execute before destroy, as with any object being destroyed.
 *
 * Tasks.  A task must not call conc_pool_wait, resize or destroy on its own
 * pool (EDEADLK).  Tasks run in no particular order, except that a worker
 * mostly runs the tasks its own tasks executed newest first.  A task that
 * blocks holds its worker for that long.
 *
 * Fairness.  A worker that keeps finding work in its own deque (a task that
 * re-executes itself, a long fan-out) still gives the others a turn: every
 * CONC_POOL_FAIR_EVERY tasks it starts, it first takes the oldest task of
 * the shared queue, or of its own deque, alternately.  So a task executed
 * from outside starts once the outside tasks queued before it have started
 * and, at most, 2 x CONC_POOL_FAIR_EVERY more tasks have started on each
 * busy worker; an execute held by max_queued gets room in the same bound.
 * Tasks executed from inside tasks are not ordered beyond this.  on_start/on_stop hooks run on the worker
 * and count as the pool's tasks for these rules.
 *
 * Epoch pins.  A task (or an on_start hook) must leave its epoch pins
 * balanced.  One that returns still pinned (a bug) does not pass the pin on:
 * after every task it runs, a worker checks whether it is pinned in any
 * domain (a scan of its 64 epoch pin slots) and, if so, unpins everything the
 * task left - with nothing else on the worker's stack, every pin is the
 * task's.  So the next task does not run pinned, the domain does not stall,
 * conc_epoch_barrier returns and conc_epoch_destroy does not stay EBUSY.
 * Tasks that a thread runs while it waits inside conc_join or a parallel
 * loop are covered by that call instead (conc/parallel.h), which keeps the
 * caller's own pins.  The check also undoes pins beyond the 64 slots (a
 * task pinned in more than 64 domains at once), which are counted per
 * thread without a domain: on a worker between tasks they are all the
 * task's.
 *
 * fork().  A pool created before fork() has no workers in the child, and
 * refuses at once there: execute, wait and resize return EPIPE (and
 * conc_join / the parallel loops on it run on the calling thread alone);
 * conc_pool_destroy frees it without joining threads that do not exist in
 * the child, without running the tasks that were queued in the parent,
 * and returns 0.  conc_pool_global() in the child creates a fresh pool.
 *
 * Debug-checks builds (libconc configured with -Ddebug_checks=true: a
 * debugging aid; in other builds these misuses are undefined): a pool used
 * after conc_pool_destroy - while its memory is among the last 64
 * destroyed objects, which such a build keeps allocated - makes execute,
 * wait, resize, a second destroy, conc_join and the parallel loops fail
 * with EINVAL, and the queries print one line naming the call and the
 * misuse to stderr and abort.
 *
 * exit().  The global pool's workers are stopped and joined by an atexit
 * handler, so a program that returns from main leaves no thread of
 * libconc's behind (valgrind, leak checkers).  It never hangs the exit:
 * called from one of the global pool's tasks it does nothing, and a worker
 * still inside a task (or a resize in progress) is waited for at most one
 * second, then left running until the process ends.  From then on the
 * global pool refuses like a pool in a fork child (EPIPE), and tasks still
 * queued do not run; a call racing with the handler may also be accepted
 * and never run.
 */
#ifndef CONC_POOL_H
#define CONC_POOL_H

#include <stdbool.h>
#include <stddef.h>

#include "conc/attr.h"
#include "conc/cpu.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct conc_pool conc_pool;

/* Fairness: see "Tasks" above.  A power of two. */
#define CONC_POOL_FAIR_EVERY 64u

/* The most worker threads a pool may have. */
#define CONC_POOL_MAX_THREADS 1024u

/*
 * Pool configuration.  A zeroed config (or NULL) gives the defaults.
 */
typedef struct conc_pool_config {
	/* Worker threads; 0: conc_cpu_count().  At most CONC_POOL_MAX_THREADS. */
	unsigned threads;
	/* Thread name prefix; NULL: "conc-pool".  Worker i is named
	 * "<name>-<i>", cut to the 15 characters Linux keeps. */
	const char *name;
	/* Worker stack size in bytes (rounded up to a page); 0: the system
	 * default.  Below PTHREAD_STACK_MIN: EINVAL. */
	size_t stack_size;
	/* Bound on tasks waiting in the shared queue; 0: no bound.  An outside
	 * thread's execute sleeps while that many wait (each worker may also
	 * hold up to 32 it has taken; concurrent outside executors may overshoot
	 * by one each).  Tasks executed by tasks never wait. */
	size_t max_queued;
	/* Called on each worker thread before it runs its first task, and
	 * after its last one (shrink or destroy), with its index. */
	void (*on_start)(unsigned index, void *ctx);
	void (*on_stop)(unsigned index, void *ctx);
	void *ctx;
} conc_pool_config;

/*
 * conc_pool_create - start a pool.
 *
 * Returns after every worker's on_start has returned.  cfg is copied (the
 * name too); it may be NULL.
 * Thread safety: any thread.
 * Progress: blocking (creates threads).
 * Idle threads kept by conc/scope.h's cache count against RLIMIT_NPROC: when
 * a worker thread cannot be created (EAGAIN), create (and a growing
 * resize) asks that cache to let its idle threads exit, waits for them,
 * and tries once more.
 * Returns: 0 and *out set; EINVAL (out NULL, threads above
 *   CONC_POOL_MAX_THREADS, stack_size too small); ENOMEM; EAGAIN (a worker
 *   thread could not be created: every thread already started has been
 *   joined without running a hook, and nothing is left allocated).
 */
CONC_NODISCARD int conc_pool_create(conc_pool **out, const conc_pool_config *cfg);

/*
 * conc_pool_global - the process-wide pool, created on first use.
 *
 * Sized by the environment variable CONC_NUM_THREADS when it is a plain
 * decimal number from 1 to 1024 (digits only), else by conc_cpu_count().
 * It lives until the process exits (conc_pool_destroy refuses it).  In the
 * child of a fork() the first call creates a new global pool.
 * Thread safety: any thread; concurrent first calls create one pool.
 * Progress: wait-free once created; the first call blocks.
 * Returns: the pool; NULL if it could not be created (a later call tries
 *   again).
 */
conc_pool *conc_pool_global(void);

/*
 * conc_pool_execute - run fn(arg) on the pool, some time later.
 *
 * From one of p's workers the task goes on that worker's deque; from any
 * other thread, through the shared queue, waking a sleeping worker only if
 * one sleeps and none is already searching.  With max_queued set, a
 * caller that is not running one of p's tasks (an outside thread, or a task
 * of another pool) sleeps, without spinning, until the queue is below the
 * bound; one of p's own tasks never waits (that could deadlock).
 * Thread safety: any thread, also from inside tasks.
 * Ordering: everything the caller did before execute happens-before fn
 *   starts.
 * Progress: lock-free (see src/pool/pool.c for the injector's block boundary);
 *   blocking only while held by max_queued.
 * Returns: 0; EINVAL (p or fn NULL, or p destroyed in a debug-checks
 *   build); ENOMEM (nothing queued); EPIPE
 *   (destroy has begun and the caller is not one of p's tasks; or p cannot
 *   run tasks in this process: made before a fork(), or the global pool
 *   after exit began - nothing queued).
 */
int conc_pool_execute(conc_pool *p, void (*fn)(void *), void *arg);

/*
 * conc_pool_wait - block until every task executed before the call, and
 * every task those executed (transitively), has finished.
 *
 * Tasks other threads execute meanwhile may or may not be waited for; a
 * stream of them that never stops may keep wait from returning.  The
 * caller sleeps; it does not run tasks itself (on a pool with a worker per
 * CPU that only adds contention).  The pool stays usable.
 * Thread safety: any number of threads at once.
 * Ordering: everything the waited-for tasks did happens-before wait
 *   returns.
 * Progress: blocking.
 * Destroy: a wait already blocked when conc_pool_destroy is called returns
 *   0 when the pool is drained, and destroy frees the pool only after it
 *   has returned (see "Concurrency").
 * Returns: 0; EINVAL (p NULL, or destroyed in a debug-checks build);
 *   EDEADLK (called from one of p's tasks);
 *   EPIPE at once (p cannot run tasks in this process, see execute).
 */
int conc_pool_wait(conc_pool *p);

/*
 * Queries: snapshots, exact only when nothing runs: once conc_pool_wait has
 * returned and no task runs or is executed, queued and active read 0.
 * conc_pool_threads - worker threads now.
 * conc_pool_queued  - tasks executed and not yet started.
 * conc_pool_active  - workers that are running tasks (not searching or
 *                     sleeping); a worker counts from the start of a task
 *                     until before the task is counted finished.
 * Thread safety: any thread.  Progress: wait-free.  Returns: 0 for NULL.
 */
unsigned conc_pool_threads(conc_pool *p);
size_t conc_pool_queued(conc_pool *p);
unsigned conc_pool_active(conc_pool *p);

/*
 * conc_pool_resize - grow or shrink the pool to `threads` workers.
 *
 * Growing takes the lowest free indexes and returns after the new workers'
 * on_start has returned.  Shrinking stops the highest indexes: each
 * finishes the task it is running, runs on_stop and exits; resize returns
 * after they have all exited, so from then on at most `threads` tasks run
 * at once on the pool's workers.  The bound counts workers only: threads
 * outside the pool that are inside conc_join or a parallel loop on p take
 * part in the work (they run p's tasks while they wait), so with k such
 * callers up to threads + k of p's tasks may run at once.  Tasks queued on
 * a removed worker are run by the others.
 * Thread safety: any thread that is not running one of p's tasks;
 *   serialized with other resizes.
 * Progress: blocking.
 * Returns: 0; EINVAL (p NULL, threads 0 or above CONC_POOL_MAX_THREADS, or
 *   p destroyed in a debug-checks build);
 *   EDEADLK (called from one of p's tasks); EPIPE (p cannot run tasks in
 *   this process, see execute, or its destroy has begun; unchanged); EAGAIN (a thread could not be
 *   created) or ENOMEM: the pool is unchanged (threads started by this call
 *   have exited without running a hook).
 */
int conc_pool_resize(conc_pool *p, unsigned threads);

/*
 * conc_pool_destroy - finish every queued task, stop the workers, free p.
 *
 * From its start, executes from outside the pool fail with EPIPE; tasks
 * executed by the pool's tasks are still accepted and run.  Tasks that
 * on_stop hooks execute run on the caller, after the workers have exited.
 * Before it frees p it waits until every outside thread blocked in the pool
 * (conc_pool_wait, an execute held by max_queued, conc_join or a loop) has
 * left it.
 * Thread safety: one call per pool; see "Concurrency" above.
 * Ordering: everything every task did happens-before destroy returns.
 * Progress: blocking.
 * Returns: 0 (also in a fork child, where p is freed without running its
 *   queued tasks or joining - see "fork()"); EINVAL (p NULL or the global
 *   pool, or in a debug-checks build p already destroyed); EDEADLK (called
 *   from one of p's tasks; nothing changed).
 */
int conc_pool_destroy(conc_pool *p);

/*
 * Task groups.  A group collects tasks run on one pool so that a caller can
 * wait for just those - not for the whole pool - and can cancel them.
 *
 *   conc_group *g;  conc_group_create(&g, NULL);
 *   conc_group_run(g, work, arg);  ...  int err = conc_group_wait(g);
 *   conc_group_destroy(g);
 *
 * Isolation.  While it waits, the caller runs only tasks of its own group
 * (the tasks of g that nobody has started yet), never an unrelated task:
 * a lock held around conc_group_wait cannot deadlock through a task that
 * happens to be queued on the pool and takes the same lock.  When none of
 * g's tasks is left to start and some still run elsewhere, it sleeps.
 * Each task runs exactly once: on a worker (every run also queues a small
 * pool task that starts one of g's tasks, if any is left when a worker
 * takes it) or on a waiting thread.
 *
 * Results and cancellation.  A task returns 0 or an error; the first
 * non-zero result cancels the group (as conc_group_cancel does) and is what
 * conc_group_wait returns.  A cancelled group skips its tasks that have not
 * started; those that have started finish (they may poll
 * conc_group_is_cancelled to stop early); conc_group_run then refuses
 * (ECANCELED) until a wait has returned, which makes the group usable
 * again.
 *
 * Memory.  A run allocates nothing in steady state: tasks are two words in
 * a recycling queue of the group (blocks of 255 tasks, up to 16 kept) and
 * on the pool's own queues.  A group is destroyed before its pool.
 *
 * Fork.  In the child of a fork() a group of a pool made before it refuses
 * like its pool: run and wait return EPIPE; destroy frees it without
 * running its tasks and returns 0.  Once the global pool's exit handler
 * has run, run and wait on its groups return EPIPE too, but destroy still
 * says EBUSY while a task of g is queued or running (a worker left inside
 * a task that does not return may be running it).
 */
typedef struct conc_group conc_group;

/*
 * conc_group_create - make an empty task group on pool p.
 *
 * p NULL: the global pool (conc_pool_global).  The group lives until
 * conc_group_destroy, which must come before p's destroy.
 * Thread safety: any thread.
 * Progress: blocking (allocates).
 * Returns: 0 and *out set; EINVAL (out NULL); ENOMEM (also when p is NULL
 *   and the global pool could not be created).
 */
CONC_NODISCARD int conc_group_create(conc_group **out, conc_pool *p);

/*
 * conc_group_run - run fn(arg) on g's pool, some time later, as a task of g.
 *
 * From one of the pool's workers the pool task that starts it goes on that
 * worker's deque, from any other thread through the shared queue (held by
 * max_queued as conc_pool_execute is).  Also from inside g's tasks (a task
 * may add tasks to its own group) and from any pool's tasks.
 * Thread safety: any number of threads at once, also from inside tasks.
 * Ordering: everything the caller did before the call happens-before fn
 *   starts.
 * Progress: lock-free (as conc_pool_execute); blocking only while held by
 *   max_queued.  Allocates only when the group's queue or the pool's
 *   queues grow.
 * Returns: 0; EINVAL (g or fn NULL); ENOMEM (nothing queued); ECANCELED
 *   (g is cancelled: fn will not run); EPIPE (the pool is being destroyed
 *   and the caller is not one of its tasks, or p cannot run tasks in this
 *   process - nothing queued).
 */
int conc_group_run(conc_group *g, int (*fn)(void *arg), void *arg);

/*
 * conc_group_wait - wait until every task run in g before the call, and
 * every task those ran in g (transitively), has finished.
 *
 * While it waits the caller runs g's tasks that have not started yet, and
 * only those (isolation, see above); otherwise it sleeps.  Tasks other
 * threads run in g meanwhile may or may not be waited for; a stream of them
 * that never stops may keep wait from returning.  When it returns, g is no
 * longer cancelled and may be used again.  It may be called from a pool
 * task (of this pool or another), also from a task of another group (groups
 * nest), but not from one of g's own tasks.  A task that the caller runs
 * and that returns still pinned in an epoch domain is unpinned when it
 * returns (the caller's own pins stay).
 * Thread safety: any thread; one wait per group at a time.
 * Ordering: everything the waited-for tasks did happens-before wait
 *   returns.
 * Progress: blocking.
 * Returns: 0 (every task returned 0); the first non-zero result of a task
 *   (which cancelled g); ECANCELED (conc_group_cancel was called first);
 *   EINVAL (g NULL); EDEADLK (called from one of g's own tasks: nothing
 *   waited for); EPIPE (p cannot run tasks in this process, see
 *   conc_pool_execute).  When both a task's failure and a cancel happen,
 *   whichever was recorded first is returned.
 */
int conc_group_wait(conc_group *g);

/*
 * conc_group_cancel - cancel g: its tasks that have not started are
 * skipped, and further runs return ECANCELED until a wait returns.
 *
 * Tasks already running finish; they may stop early by polling
 * conc_group_is_cancelled.  Idempotent; a no-op for NULL, and when a
 * task's error already cancelled g (wait then returns that error).
 * Thread safety: any thread, also g's own tasks.
 * Ordering: a task that starts after cancel returned is skipped.
 * Progress: wait-free.
 */
void conc_group_cancel(conc_group *g);

/*
 * conc_group_is_cancelled - whether g is cancelled (by conc_group_cancel or
 * by a task's error) and no wait has returned since.
 *
 * Thread safety: any thread.
 * Ordering: acquire (sees the cancel that it reports).
 * Progress: wait-free.
 * Returns: true or false; false for NULL.
 */
bool conc_group_is_cancelled(conc_group *g);

/*
 * conc_group_destroy - free g.
 *
 * Pool tasks that g queued and that found nothing left to start may still
 * be queued on the pool; the last of them frees g's memory.
 * Thread safety: one call per group, when no other call on g runs.
 * Progress: wait-free.
 * Returns: 0 (also for NULL); EBUSY (a task of g is queued or running:
 *   nothing changed).
 */
int conc_group_destroy(conc_group *g);

/*
 * conc_pool_broadcast - run fn(index, ctx) once on each of p's worker
 * threads, and return when every one has.
 *
 * p NULL: the global pool.  Each worker runs it between two tasks (a worker
 * that is inside a long task runs it once that task returns), so it suits
 * per-thread setup and flushing thread-local state.  Serialized with
 * conc_pool_resize and with other broadcasts: the workers that exist when
 * it starts are the ones that run it, each exactly once.
 * Thread safety: any thread that is not running one of p's tasks.
 * Ordering: everything the caller did before the call happens-before each
 *   fn starts; everything each fn did happens-before the call returns.
 * Progress: blocking.
 * Returns: 0; EINVAL (fn NULL, or p destroyed in a debug-checks build);
 *   ENOMEM (p NULL and the global pool could not be created); EDEADLK
 *   (called from one of p's tasks); EPIPE (p cannot run tasks in this
 *   process, see execute, or its destroy has begun).
 */
int conc_pool_broadcast(conc_pool *p, void (*fn)(unsigned index, void *ctx), void *ctx);

#ifdef __cplusplus
}
#endif

#endif
