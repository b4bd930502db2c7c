/*
 * conc/cpu.h - how many CPUs this process may run on.
 *
 *   unsigned n = conc_cpu_count();   // e.g. to size a pool
 */
#ifndef CONC_CPU_H
#define CONC_CPU_H

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

#ifdef __cplusplus
}
#endif

#endif
