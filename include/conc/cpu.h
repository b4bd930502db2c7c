/*
 * conc/cpu.h - how many CPUs this process may run on, and whether libconc
 * runs in chaos mode.
 *
 *   unsigned n = conc_cpu_count();   // e.g. to size a pool
 *   if (conc_chaos_enabled()) ...    // CONC_CHAOS=1 in the environment
 */
#ifndef CONC_CPU_H
#define CONC_CPU_H

#include <stdbool.h>

#ifdef __cplusplus
extern "C" {
#endif

/*
 * conc_cpu_count - the number of CPUs in this process's affinity mask.
 *
 * Reads the mask at each call (taskset and cgroup cpusets change it), so it
 * is not cached.  Falls back to the online CPU count if the mask cannot be
 * read.
 * Thread safety: any thread, any time.
 * Progress: one system call; never blocks.
 * Returns: at least 1.
 */
unsigned conc_cpu_count(void);

/*
 * conc_chaos_enabled - whether chaos mode is on.
 *
 * Chaos mode is for testing programs built on libconc: run their tests
 * (ideally under ASan or TSan) with CONC_CHAOS=1 in the environment.  libconc
 * then yields at random points inside its operations (CAS retries, epoch
 * advance and collection, the pool's search and steal, before sleeping),
 * advances the epoch and reclaims at every retire, fills the memory it owns
 * (queue segments, stack nodes, pool buffers) with 0xdb before freeing or
 * reusing it, and wakes blocked threads spuriously now and then.  A program
 * that reads a retired node after its grace period, or relies on an
 * ordering libconc does not promise, is then far more likely to fail.
 * Nothing is ever lost: every documented guarantee holds in chaos mode.
 * The variable is read once, at libconc's first use of it; setting it later
 * changes nothing.  Off, it costs nothing on the fast paths.
 * Thread safety: any thread, any time.
 * Progress: wait-free (the first call reads the environment).
 * Returns: true when CONC_CHAOS was "1" at the first read.
 */
bool conc_chaos_enabled(void);

#ifdef __cplusplus
}
#endif

#endif
