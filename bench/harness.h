/*
 * harness.h - what every libconc bench binary shares.
 *
 * A row is one workload at one thread count; it lists libconc first and then
 * its peers.  The harness runs one warm-up of each, then `reps` rounds in
 * which every implementation runs once, in turn (A B C A B C ...), so drift
 * in the machine's speed hits all alike.  It reports the median and min-max
 * of each, and each peer's median time divided by libconc's: > 1 means
 * libconc is faster.  Each run verifies its own result; a wrong result marks
 * the row and makes the binary exit non-zero.
 *
 * Options every binary takes:
 *   --quick          3 repetitions, no warm-up run, smaller sizes and sweeps
 *                    (the default command; each binary says what it shrinks)
 *   --full           more repetitions, threads 1,2,4,8,16
 *   --reps N         repetitions per implementation
 *   --threads LIST   thread counts to sweep, e.g. 1,2,4,8
 *   --filter TEXT    only workloads whose name contains TEXT
 *   --json FILE      also write every sample as JSON
 */
#ifndef CONC_BENCH_HARNESS_H
#define CONC_BENCH_HARNESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define BENCH_MAX_THREADS 16
#define BENCH_MAX_IMPLS 12
#define BENCH_MAX_REPS 64

typedef struct bench_cfg {
	bool quick, full;
	int reps;
	unsigned threads[BENCH_MAX_THREADS];
	int nthreads;
	const char *filter;
	const char *json_path;
	const char *binary;
} bench_cfg;

/* One timed run: fill in seconds (of the timed region) and whether the
 * result checked out. */
typedef struct bench_result {
	double seconds;
	bool verified;
} bench_result;

/* A peer that could not be built is listed all the same, never dropped:
 * run NULL and arg its reason (a string), e.g. BENCH_MISSING("crossbeam-epoch",
 * "no cargo").  The table shows "missing" with the reason, the JSON a null
 * value with "missing": reason; it does not fail the run. */
typedef struct bench_impl {
	const char *name;
	bench_result (*run)(void *arg, unsigned threads);
	void *arg;
} bench_impl;
#define BENCH_MISSING(name, why) {(name), NULL, (void *)(why)}

/* How a row's figure is shown: the median time, the rate ops/time, or the
 * time per op.  The ratio is always peer time / libconc time. */
typedef enum { BENCH_MS, BENCH_MOPS, BENCH_NS_PER_OP } bench_unit;

/* Parse the options; the default sweep is `def_threads` (0-terminated). */
void bench_init(bench_cfg *cfg, int argc, char **argv, const unsigned *def_threads);

/* Whether the workload passes --filter. */
bool bench_wanted(const bench_cfg *cfg, const char *workload);

/* Run one row and print it; ops is the work one run does (for the rate). */
void bench_row(bench_cfg *cfg, const char *workload, unsigned threads,
	       double ops, bench_unit unit, const bench_impl *impls, int n);

/* Print the closing summary, write JSON; returns the exit status (non-zero
 * if any run failed verification). */
int bench_finish(bench_cfg *cfg);

/* Seconds on CLOCK_MONOTONIC. */
double bench_now(void);

/* Keep the compiler from deleting a computation. */
#define bench_keep(x) __asm__ __volatile__("" : "+r"(x))

#endif
