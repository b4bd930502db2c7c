/*
 * clock.c - base/clock.h.
 */
#include <time.h>

#include "base/clock.h"

uint64_t conc__now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

uint64_t conc__deadline_after(uint64_t rel_ns)
{
	uint64_t now = conc__now_ns();
	if (rel_ns >= CONC__NO_DEADLINE - now)
		return CONC__NO_DEADLINE;
	return now + rel_ns;
}
