/*
 * mutant.h - planted bugs for the mutant runs (scripts/mutants.sh).
 *
 * A build configured with -Dmutant=k (k > 0) compiles libconc with
 * CONC_MUTANT=k, which plants exactly one known bug at its real place in
 * src/ (grep CONC__MUTANT); the test suites must then fail.  It proves that
 * they can see that kind of bug at all.  Every other build has CONC_MUTANT
 * 0 and the planted code compiled out: nothing changes.
 */
#ifndef CONC_INTERNAL_MUTANT_H
#define CONC_INTERNAL_MUTANT_H

#ifndef CONC_MUTANT
#define CONC_MUTANT 0
#endif

/* True in the build that plants bug k. */
#define CONC__MUTANT(k) (CONC_MUTANT == (k))

#endif
