/*
 * mutant.h - planted bugs for the mutant runs (scripts/mutants.sh).
 *
 * A build configured with -Dmutant=k (k > 0) compiles libconc with
 * CONC_MUTANT=k, which plants exactly one known bug at its real place in
 * src/; the test suites must then fail.  It proves that they can see that
 * kind of bug at all.  Every other build has CONC_MUTANT 0: each macro
 * below is then its normal argument, and the compiler sees the code as if
 * no mutant existed.  scripts/amalgamate.py writes the normal argument
 * into dist/conc_single.h and drops the #if CONC__MUTANT blocks, so the
 * single header carries none of this.
 *
 * The plants (scripts/mutants.sh names the tests that must catch each):
 *   1  queue: the slot CAS of a push is relaxed
 *   2  queue: a segment is freed at once instead of retired
 *   3  stack: a popped node goes back to the node cache with no grace period
 *   4  epoch: a grace period of 1 instead of CONC__EPOCH_GRACE
 *   5  epoch: the advance's scan stops before the last record
 *   6  queue: the wake-up goes out before the item is published
 *   7  scope: a failed spawn ends the scope without joining
 *   8  parallel: an odd range's offered right half starts one late
 *   9  queue: the head moves by a plain store instead of the CAS
 *  10  pool: the last task of a batch from the injector is dropped
 *  11  epoch: the record slot handover is relaxed (orders nothing)
 *  12  epoch: the owner's retire ignores a thief that is stealing its bag
 *  13  chan: a bounded receive on a closed channel fails even with items left
 *  14  chan: close wakes the waiting receivers, not the waiting senders
 */
#ifndef CONC_BASE_MUTANT_H
#define CONC_BASE_MUTANT_H

#ifndef CONC_MUTANT
#define CONC_MUTANT 0
#endif

/* True in the build that plants bug k (for #if blocks of a planted bug). */
#define CONC__MUTANT(k) (CONC_MUTANT == (k))

/* `normal`, or `planted` in mutant k's build; only the chosen one is
 * evaluated. */
#define CONC__MUTANT_VALUE(k, normal, planted) (CONC__MUTANT(k) ? (planted) : (normal))

/* The memory order mo, or relaxed in mutant k's build. */
#define CONC__MUTANT_MO(k, mo) CONC__MUTANT_VALUE(k, mo, CONC_MO_RELAXED)

#endif
