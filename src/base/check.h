/*
 * check.h - the invariants the proofs state, checked in debug-checks builds.
 *
 * CONC__CHECK(cond, what): in a build configured with -Ddebug_checks=true
 * (CONC_DEBUG_CHECKS), a false cond prints "libconc: invariant broken:
 * what (file:line)" to stderr and aborts - the one place the library prints
 * or aborts, because a broken invariant has no return path: the structure
 * is already corrupt, and going on would turn it into a lost item or a use
 * after free somewhere else.  In every other build it compiles to nothing
 * (cond is not evaluated, only type-checked), so the checks may sit where
 * the proofs need them, hot paths included.  `what` names the invariant as
 * the source's proof does ("queue I4: ...").
 *
 * The test builds of scripts/test.sh turn the checks on, except the gcc
 * build, whose instruction guard measures the code users get.
 */
#ifndef CONC_BASE_CHECK_H
#define CONC_BASE_CHECK_H

#ifdef CONC_DEBUG_CHECKS
#include <stdio.h>
#include <stdlib.h>

#define CONC__CHECK(cond, what)                                                          \
	((cond) ? (void)0                                                                \
		: (fprintf(stderr, "libconc: invariant broken: %s (%s:%d)\n", (what),     \
			   __FILE__, __LINE__),                                           \
		   abort()))
#else
#define CONC__CHECK(cond, what) ((void)sizeof((cond) ? 1 : 0))
#endif

#endif
