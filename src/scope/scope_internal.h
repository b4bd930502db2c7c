/*
 * scope/scope_internal.h - test and bench hooks into the scoped-thread cache
 * (src/scope/scope.c).  Not installed; not part of the API.
 */
#ifndef CONC_INTERNAL_SCOPE_H
#define CONC_INTERNAL_SCOPE_H

#include <stdint.h>

/* The default idle timeout of a parked thread: 1 s. */
#define CONC__SCOPE_IDLE_TIMEOUT_NS 1000000000ull

/* Set how long a parked thread waits for work before it exits (0: back to
 * the default).  Threads parked now re-check their deadline at once. */
void conc__scope_set_idle_timeout_ns(uint64_t ns);

/* Make the threads parked in the cache now leave, and return once they
 * have exited and been joined (so a thread creation refused for
 * RLIMIT_NPROC may succeed on a retry); how many were parked (0: none,
 * nothing done).  Any thread; blocking. */
unsigned conc__scope_release_idle(void);

/* Threads of the cache: parked now; alive now (parked or running a spawned
 * function, or about to exit); created since the process started. */
unsigned conc__scope_idle_threads(void);
unsigned conc__scope_live_threads(void);
unsigned long conc__scope_threads_created(void);

#endif
