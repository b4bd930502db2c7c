/*
 * conc/scope.h - scoped threads: every thread spawned in a scope is joined
 * before the scope returns, so scoped threads may use the caller's stack.
 *
 *   static void body(conc_scope *s, void *ctx) {
 *           conc_scope_spawn(s, work, &local_array[0], NULL);  // may use
 *           conc_scope_spawn(s, work, &local_array[8], NULL);  // the stack
 *   }
 *   int err = conc_scope_run(body, NULL);  // both threads are done here
 *
 * Real threads.  Each spawned function runs on a thread of its own for as
 * long as it runs: it may block, sleep, or wait for a sibling spawned after
 * it, and nobody starves.  Threads come from a process-wide cache shared by
 * all scopes: a finished function's thread parks there, and a later spawn
 * (in any scope) hands its function to a parked thread with one futex wake
 * instead of creating an OS thread.  When no parked thread is free, a new
 * one is created.  A parked thread that stays unused for the idle timeout
 * (1 second) exits, so once the last scope has ended and the timeout has
 * passed, no thread of libconc is left.  At exit() (or the return from
 * main) parked threads are woken and joined, so leak checkers see nothing
 * of them; threads still running a spawned function end with the process.
 *
 * What a reused thread carries over.  A cached thread keeps the
 * thread-local variables (_Thread_local, pthread keys) a previous spawned
 * function left, its signal mask and its name, exactly as one long-lived
 * thread would: do not rely on thread-local storage starting out zeroed.
 * Cached threads start with every signal blocked (signals aimed at the
 * process go to the program's own threads).  What libconc itself keeps per
 * thread is reset between functions: the handle that conc_thread_join
 * recognises as the caller's own.  A thread's epoch registrations stay valid
 * (they are a cache, not state).  A function that returns while still pinned
 * in any epoch domain (a bug: pins must be balanced) does not pass the pin
 * on - its thread leaves the cache and exits, and the epoch's thread-exit
 * path unregisters it (and releases the pin).
 *
 * Concurrency.  Inside a scope, the body and every scoped thread may spawn
 * into the scope and join its handles concurrently.  A scope and its handles
 * must not be used after conc_scope_run returns, nor by threads outside the
 * scope (threads neither the body's nor spawned in the scope, directly or
 * from other scoped threads).  Scopes nest: a scoped thread may run a scope
 * of its own.
 *
 * fork(): a child process starts with an empty cache (scopes it runs work);
 * scopes that were running in the parent are not usable in the child.
 */
#ifndef CONC_SCOPE_H
#define CONC_SCOPE_H

#ifdef __cplusplus
extern "C" {
#endif

typedef struct conc_scope conc_scope;
/*
 * conc_thread - the handle of a scoped thread: set by conc_scope_spawn,
 * taken by conc_thread_join; valid until its scope ends.
 */
typedef struct conc_thread conc_thread;

/*
 * conc_scope_run - run body(s, ctx) on the calling thread with a new scope
 * s, then wait for every thread spawned in s - by body, and by scoped
 * threads, recursively - to finish, joined or not; then free the scope and
 * all its handles.
 *
 * The scope lives on the caller's stack (a few KB); its handles beyond the
 * first few dozen come from the heap.
 * Thread safety: any thread, any number at once; scopes are independent.
 * Ordering: everything every scoped thread did happens-before the return.
 * Progress: blocking (waits for the scoped threads).
 * Returns: 0; EINVAL (body NULL; nothing ran); otherwise the first error a
 *   conc_scope_spawn in s returned, of any kind (EINVAL for a NULL fn,
 *   EAGAIN, ENOMEM), after everything that did start has been joined.
 */
int conc_scope_run(void (*body)(conc_scope *s, void *ctx), void *ctx);

/*
 * conc_scope_spawn - run fn(s, arg) on a thread of its own; it runs
 * concurrently with the caller and with the other scoped threads.
 *
 * When handle is not NULL, *handle is set before fn starts (so fn may read
 * it, e.g. through arg); on failure *handle is left as it was.  A handle
 * stays valid until the scope ends, joined or not.  Spawning never waits
 * for another scoped thread.
 * Thread safety: the scope's body and its scoped threads, concurrently.
 * Ordering: what the caller did before the spawn happens-before fn starts.
 * Progress: blocking only in the system (thread creation, a futex wake) and
 *   on a short per-scope lock; never waits for a scoped thread.
 * Returns: 0; EINVAL (s or fn NULL; with fn NULL it counts as the scope's
 *   error like the others); EAGAIN (no thread could be had - none
 *   was parked and creating one failed); ENOMEM (no memory for the
 *   handle).  On failure fn does not run, nothing else changes, and the
 *   scope goes on; conc_scope_run will return the first such error.
 */
int conc_scope_spawn(conc_scope *s, void *(*fn)(conc_scope *s, void *arg),
		     void *arg, conc_thread **handle);

/*
 * conc_thread_join - wait until the scoped thread t has finished and take
 * its function's return value (into *result, unless result is NULL).
 *
 * Each handle can be joined once, by any thread of the scope (the body or
 * a scoped thread).  Threads never joined are joined when the scope ends;
 * after that their handles are gone, so a result needed past the scope
 * must be written through arg.  Joining in a cycle (a joins b, b joins a)
 * deadlocks; only the direct case is detected.
 * Thread safety: any thread of the scope; a handle joined twice at once
 *   gets EINVAL in one of the two.
 * Ordering: everything t's function did happens-before the return.
 * Progress: blocking (futex wait, no spinning).
 * Returns: 0; EINVAL (t NULL, or t already joined); EDEADLK (t is the
 *   caller's own handle - the call would never return).
 */
int conc_thread_join(conc_thread *t, void **result);

#ifdef __cplusplus
}
#endif

#endif
