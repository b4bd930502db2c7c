/*
 * faults.h - the machinery of the faults suite (issue 8), shared by its
 * executables tests/faults/faults_<primitive>.c: the sweep (one call
 * failed at each of its allocations and thread creations in turn), the
 * hammer's container run (random failures under concurrency), and the
 * books every part keeps for tests/faults/faults_sites.c, which prints the
 * suite's `faults sites` and `faults total` rows.
 *
 * For each operation: one run without failures counts the hook calls it
 * makes (n allocations, m thread creations); then for every k in 1..n the
 * k-th allocation fails (and for every k in 1..m the k-th thread creation),
 * and the run checks that
 *   - the call returned the documented error (ENOMEM / EAGAIN), or 0 where
 *     the header documents a fallback (a parallel loop runs a half itself
 *     when it cannot hand it off; a worker's full deque spills to the
 *     injector), with the result the call promises;
 *   - nothing changed: the pointer out-parameter is untouched, the item of
 *     a failed push is not in the container and every other item is there
 *     in order, no pool hook ran, no thread is left, no task is lost;
 *   - the object still works afterwards (push, pop, execute, resize...);
 *   - nothing leaked: the epoch domains' counters return to pending = 0
 *     and destroy succeeds; the ASan build (detect_leaks=1) checks the heap.
 * A run where the k-th call was not reached (a count that depends on
 * timing, e.g. the halves a parallel loop hands off) is counted as
 * "unreached", not as a pass.
 *
 * Then the same under concurrency ("hammer"): threads push and pop, execute,
 * resize, spawn, defer and run nested loops while a share of all calls
 * (2%, 25%, 90% for the containers) fails at random; conservation is
 * checked over the whole run.  (A real thread limit, without hooks, is
 * tests/faults_nproc.c.)
 *
 * Checks are counted, not asserted at once, so that one run reports every
 * bad case (with the site that failed); each test asserts bad == 0 at its
 * end.  Only the main thread asserts.
 *
 * The parts' books: each part's main calls faults_begin() first and
 * returns faults_end(its cmocka result); faults_end writes the part's
 * totals and the sites it reached to $CONC_FAULTS_PARTS/<part>.txt, which
 * faults_sites (run last in the suite) adds up.
 */
#ifndef CONC_TEST_FAULTS_H
#define CONC_TEST_FAULTS_H

#include <errno.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "adapters.h"
#include "helpers.h"
#include "testutil.h"

#include "conc/conc.h"
#include "base/fault.h"

#if !defined(CONC_FAULT_HOOKS) || !CONC_FAULT_HOOKS
#error "the faults suite needs -Dfault_hooks=true"
#endif

extern char faults_sentinel_byte;
#define SENTINEL ((void *)&faults_sentinel_byte)

#define ITEM(i) ((void *)(uintptr_t)(i))

/* ---- the sweep --------------------------------------------------------- */

enum kind { CALIBRATE, FAIL_ALLOC, FAIL_THREAD };

struct sweep {
	const char *api;
	long n_alloc, n_thread;   /* calls counted in the calibration run */
	long ok_alloc, ok_thread; /* runs whose failure fired and checked out */
	long unreached;           /* runs where the k-th call did not happen */
	long bad;                 /* failed checks */
	enum kind kind;
	long k;
	const char *site; /* the site failed in this run, or NULL */
	long bad_before;
};

/* This process's books (faults_end writes them for faults_sites). */
extern long total_failed, total_bad, total_unreached;
extern long hammer_failed; /* calls failed by conc__fault_fail_rate */

#define CHECK(sw, cond)                                                          \
	do {                                                                     \
		if (!(cond)) {                                                   \
			(sw)->bad++;                                             \
			printf("faults %s: %s k=%ld at %s: check failed: %s (%s:%d)\n", \
			       (sw)->api,                                        \
			       (sw)->kind == FAIL_ALLOC    ? "alloc"             \
			       : (sw)->kind == FAIL_THREAD ? "thread"            \
							   : "calibration",      \
			       (sw)->k, (sw)->site ? (sw)->site : "-", #cond,    \
			       __FILE__, __LINE__);                              \
			fflush(stdout);                                          \
		}                                                                \
	} while (0)

/* Arm the hooks for this run: count from zero, fail the k-th call. */
void arm(struct sweep *sw);
/* Disarm after the operation (and everything it started) is over; sets
 * sw->site to the site that was failed, NULL if the k-th call never came. */
void disarm(struct sweep *sw);
bool site_is(const struct sweep *sw, const char *prefix);
/* The error an injected failure must produce (0: none injected). */
int want_err(const struct sweep *sw);

typedef void (*run_fn)(struct sweep *sw);

void sweep_report(struct sweep *sw);
/* Run `run` once to count, then once per k for allocations and threads. */
void sweep(const char *api, run_fn run);

/* Whether this process's hooks have reached the site `name`. */
bool site_reached(const char *name);

/* The domain's books balance: everything retired has run. */
void check_domain_clean(struct sweep *sw, conc_epoch *d);
void check_destroy_domain(struct sweep *sw, conc_epoch *d);

/* Counts the items a container's destroy drops. */
extern atomic_long dropped;
void drop_count(void *item);

/* The pops and close of the queue or the stack, swept: no allocation. */
void run_container_pops(struct sweep *sw, const tl_container *k);

/* ---- under concurrency: random failures --------------------------------- */

#define HAM_PPM 250000 /* a quarter of all allocations fail */

/* Whether `calls` calls at `ppm` make at least 10 failures likely: only
 * then must there be one (a smoke run at CONC_STRESS_SCALE=0, or a low
 * rate on the queue's few segment allocations, may see none). */
bool expect_failures(long calls, long ppm);

/* n threads fn((void *)i), i = 0..n-1 (n <= 16), joined. */
void run_threads_indexed(unsigned n, void *(*fn)(void *));

/* Producers and consumers on the queue or the stack while `ppm` of the
 * allocations fail; prints the `faults hammer <name>` row. */
void hammer_container(const tl_container *k, long ppm, unsigned long seed);

/* ---- the parts --------------------------------------------------------- */

/* The global pool's size, set before anything can create it. */
#define GLOBAL_T 2
#define GLOBAL_T_STR "2"

/* First in a part's main: sets CONC_NUM_THREADS, starts and joins one
 * thread (see faults.c), forgets an old report. */
void faults_begin(const char *part);
/* Last: writes the part's report; returns rc. */
int faults_end(int rc);

/* The report's file for `part` (NULL without CONC_FAULTS_PARTS). */
const char *faults_part_path(const char *part, char *buf, size_t size);

#define FAULTS_MAX_SITES 128

#endif
