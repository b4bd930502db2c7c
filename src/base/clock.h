/*
 * clock.h - the library's one clock: CLOCK_MONOTONIC in nanoseconds, and
 * deadlines on it (the parking waits, the epoch's advance gap, the pool's
 * search window, the scope cache's idle timeout all use it).
 */
#ifndef CONC_BASE_CLOCK_H
#define CONC_BASE_CLOCK_H

#include <stdint.h>

/* A deadline that never comes. */
#define CONC__NO_DEADLINE UINT64_MAX

/* CLOCK_MONOTONIC now, in ns; now + rel, CONC__NO_DEADLINE on overflow. */
uint64_t conc__now_ns(void);
uint64_t conc__deadline_after(uint64_t rel_ns);

#endif
