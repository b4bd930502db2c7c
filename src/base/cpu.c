/*
 * cpu.c - conc_cpu_count: CPUs in this process's affinity mask.
 */
#include <errno.h>
#include <sched.h>
#include <stdlib.h>
#include <unistd.h>

#include "conc/cpu.h"

unsigned conc_cpu_count(void)
{
	int saved_errno = errno; /* the library never changes errno */
	unsigned result = 0;

	/* Grow the set until the kernel accepts its size: machines with more
	 * than CPU_SETSIZE (1024) CPUs need a bigger mask.  Allocation here is
	 * plain malloc, not a fault-hook site: failure falls back below. */
	for (size_t ncpu = 1024; ncpu <= (1u << 20); ncpu *= 2) {
		cpu_set_t *set = CPU_ALLOC(ncpu);
		if (!set)
			break;
		size_t sz = CPU_ALLOC_SIZE(ncpu);
		CPU_ZERO_S(sz, set);
		if (sched_getaffinity(0, sz, set) == 0) {
			int n = CPU_COUNT_S(sz, set);
			CPU_FREE(set);
			result = n > 0 ? (unsigned)n : 1u;
			break;
		}
		CPU_FREE(set);
	}
	if (result == 0) {
		long n = sysconf(_SC_NPROCESSORS_ONLN);
		result = n > 0 ? (unsigned)n : 1u;
	}
	errno = saved_errno;
	return result;
}
