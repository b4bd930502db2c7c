/*
 * threads.h - what thread-creating modules share: a way for a module that
 * keeps idle threads (scope's cache) to give them back when another
 * module's pthread_create fails for want of threads.
 *
 * Why a registry.  Idle cached threads count against RLIMIT_NPROC; a pool
 * whose create or resize meets EAGAIN may succeed once they are gone.  The
 * pool is below scope in the layers (DESIGN.md), so it cannot call scope;
 * scope registers its releaser here instead, from the one-time set-up that
 * precedes its first thread, and the pool asks base.
 */
#ifndef CONC_BASE_THREADS_H
#define CONC_BASE_THREADS_H

/* A releaser makes the idle threads it keeps now exit, waits until they
 * have been joined, and returns how many there were (0: nothing done).
 * Any thread; blocking. */
typedef unsigned (*conc__idle_releaser)(void);

/* Register r (at most CONC__IDLE_RELEASERS of them, each once; a call past
 * that, or again for the same r, does nothing).  Never fails. */
#define CONC__IDLE_RELEASERS 4
void conc__threads_add_releaser(conc__idle_releaser r);

/* Run every registered releaser; the threads they let go, in total.  A
 * caller whose pthread_create returned EAGAIN retries once if this is not
 * zero. */
unsigned conc__threads_release_idle(void);

#endif
