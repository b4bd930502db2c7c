/*
 * lincheck.h - a Wing & Gong style linearizability checker for small
 * concurrent histories of a queue or a stack, and a runner that records
 * thousands of such histories from real threads.
 *
 * A history is a list of completed operations, each with an invocation and
 * a response stamp taken from one shared atomic counter (so "a responded
 * before b was invoked" is exact).  The checker searches for a sequential
 * order that respects those real-time constraints and the sequential
 * specification (FIFO or LIFO; try_pop returns the oldest/newest item or
 * reports empty), memoising the (done-set, contents) states it has refuted.
 */
#ifndef CONC_LINCHECK_H
#define CONC_LINCHECK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define LC_MAX_OPS 24

typedef enum { LC_FIFO, LC_LIFO } lc_spec;
typedef enum { LC_PUSH, LC_POP } lc_kind;

typedef struct lc_op {
	uint64_t inv, res; /* stamps: inv < res */
	lc_kind kind;
	bool ok;           /* pop: an item was returned; push: true (lc_run_bounded: false when full) */
	uintptr_t val;     /* pushed value, or the value popped */
	int thread;
} lc_op;

/* True when the history (n <= LC_MAX_OPS ops) is linearizable. */
bool lc_check(const lc_op *ops, int n, lc_spec spec);

/* The container under test, behind four calls. */
typedef struct lc_target {
	int (*create)(void **c);
	void (*destroy)(void *c);
	int (*push)(void *c, void *item);
	bool (*try_pop)(void *c, void **item);
} lc_target;

typedef struct lc_report {
	unsigned long histories, violations, ops, overlapping;
	unsigned long pops, empty_pops; /* try_pops recorded; those that found it empty */
	lc_op first_bad[LC_MAX_OPS]; /* the first violating history */
	int first_bad_n;
} lc_report;

/*
 * Record `rounds` histories: each round a fresh container, `prefill` items
 * pushed first, then `threads` threads (<= 4) doing `ops` random ops each,
 * a push with probability push_pct % else a try_pop (one push per round
 * carries the item NULL).  Checks each.  Returns 0, or an errno from
 * thread creation.
 */
int lc_run(const lc_target *t, lc_spec spec, unsigned threads, unsigned ops,
	   unsigned prefill, unsigned push_pct, unsigned long rounds, uint64_t seed,
	   lc_report *out);

/*
 * A bounded FIFO of capacity cap (1..LC_MAX_OPS): push is a try that may
 * fail (any non-zero return), and a failed push is recorded (ok false) and
 * must linearize at a moment the container held cap items; a successful
 * one at a moment it held fewer.  prefill <= cap.  Otherwise as lc_run.
 */
bool lc_check_bounded(const lc_op *ops, int n, size_t cap);
int lc_run_bounded(const lc_target *t, size_t cap, unsigned threads, unsigned ops,
		   unsigned prefill, unsigned push_pct, unsigned long rounds, uint64_t seed,
		   lc_report *out);

/* Print r's first violating history to stderr (nothing if it has none). */
void lc_print_violation(const lc_report *r);

#endif
