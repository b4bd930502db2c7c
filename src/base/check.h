/*
 * check.h - debug-checks builds: the invariants the proofs state, and the
 * misuse of the public API that a state word can see.
 *
 * Everything here is behind CONC_DEBUG_CHECKS (-Ddebug_checks=true); in
 * every other build it compiles to nothing, so that the code users get -
 * the code the instruction guard measures - is the same with or without
 * the checks written in.  The test builds of scripts/test.sh turn them on,
 * except the gcc build, whose instruction guard measures the code users get.
 *
 * CONC__CHECK(cond, what): a false cond prints "libconc: invariant broken:
 * what (file:line)" to stderr and aborts - a broken invariant has no
 * return path: the structure is already corrupt, and going on would turn
 * it into a lost item or a use after free somewhere else.  In other builds
 * cond is not evaluated, only type-checked, so the checks may sit where the
 * proofs need them, hot paths included.  `what` names the invariant as the
 * source's proof does ("queue I4: ...").
 *
 * Object lifecycles.  The queue, the stack, the pool, the epoch domain and
 * the channel carry a state word in debug-checks builds (CONC__LIFE_FIELD):
 * the alive value of their kind from create on, CONC__LIFE_DEAD once
 * destroy has run.  Destroy does not free the object's own memory but
 * hands it to the quarantine (conc__life_bury): a bounded FIFO whose
 * oldest entry is freed when a newer one comes in, so a call on a
 * destroyed object - as long as the last CONC__QUARANTINE destroys include
 * it - reads the dead word in memory that is still allocated (no use
 * after free for ASan or valgrind to report) and fails:
 *   - a function that returns int returns EINVAL (CONC__LIFE_RETURN);
 *   - one that has no error to return (void, bool, a count) prints one
 *     line, "libconc: <function>: <what>", to stderr and aborts
 *     (CONC__LIFE_ABORT, conc__misuse) - the debug build's only other
 *     print and abort, for a program that is already wrong.
 * Misuse a state word cannot show - an unbalanced unpin, a destroy while a
 * thread is blocked in the object - is reported the same way
 * (CONC__MISUSE_IF).
 * The entries left at exit stay reachable from the quarantine (no leak
 * report).  Past the quarantine's reach a destroyed object's memory is
 * freed and a late call is a plain use after free, as in release builds.
 */
#ifndef CONC_BASE_CHECK_H
#define CONC_BASE_CHECK_H

#ifdef CONC_DEBUG_CHECKS
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "base/arch.h"

#define CONC__CHECK(cond, what)                                                          \
	((cond) ? (void)0                                                                \
		: (fprintf(stderr, "libconc: invariant broken: %s (%s:%d)\n", (what),     \
			   __FILE__, __LINE__),                                           \
		   abort()))

/* The state words: one alive value per kind (a word from another kind's
 * object, or from memory that never was one, is not alive either). */
#define CONC__LIFE_QUEUE 0x51554555u /* "QUEU" */
#define CONC__LIFE_STACK 0x5354434bu /* "STCK" */
#define CONC__LIFE_POOL 0x504f4f4cu  /* "POOL" */
#define CONC__LIFE_EPOCH 0x45504f43u /* "EPOC" */
#define CONC__LIFE_CHAN 0x4348414eu  /* "CHAN" */
#define CONC__LIFE_DEAD 0xdeadc0ccu

/* Destroyed objects kept allocated (see above): enough for a test's
 * misuse of a few objects, small enough to bound what a program that
 * creates and destroys objects in a loop keeps. */
#define CONC__QUARANTINE 64

/* The member, in the object's struct. */
#define CONC__LIFE_FIELD uint32_t conc__life;
#define CONC__LIFE_SET(obj, v) ((obj)->conc__life = (v))
#define CONC__LIFE_IS(obj, v) ((obj)->conc__life == (v))

/* In a function that returns int: EINVAL for an object that is not alive. */
#define CONC__LIFE_RETURN(obj, alive)                                                    \
	do {                                                                             \
		if (conc__unlikely(!CONC__LIFE_IS(obj, alive)))                           \
			return EINVAL;                                                   \
	} while (0)

/* In one that has no error to return: the message and abort. */
#define CONC__LIFE_ABORT(obj, alive, fn)                                                 \
	do {                                                                             \
		if (conc__unlikely(!CONC__LIFE_IS(obj, alive)))                           \
			conc__misuse_life(fn, (obj)->conc__life, alive);                 \
	} while (0)

/* Misuse that a state word cannot show (an unbalanced unpin, a destroy
 * while a thread is blocked in the object): cond true is a misuse. */
#define CONC__MISUSE_IF(cond, fn, what)                                                  \
	do {                                                                             \
		if (conc__unlikely(cond))                                                \
			conc__misuse(fn, what);                                          \
	} while (0)

/* Destroy's last step: mark obj dead and bury it (instead of free). */
#define CONC__LIFE_FREE(obj) conc__life_bury((obj), &(obj)->conc__life)

/* Print "libconc: fn: what" to stderr (one write) and abort. */
__attribute__((noreturn, cold)) void conc__misuse(const char *fn, const char *what);

/* conc__misuse for an object whose state word is life, not alive: "already
 * destroyed" (a double destroy when fn is a destroy, else a use after
 * destroy), or "not a live <kind>" for a word that is neither. */
__attribute__((noreturn, cold)) void conc__misuse_life(const char *fn, uint32_t life,
							 uint32_t alive);

/* Mark the object at obj dead (its state word at *life) and keep its
 * memory: freed CONC__QUARANTINE burials later instead of now.  obj came
 * from malloc or conc__aligned_alloc (free() releases either).  Lock-free,
 * so that a fork cannot catch a lock of it held. */
void conc__life_bury(void *obj, uint32_t *life);

#else /* !CONC_DEBUG_CHECKS: nothing at all */

#define CONC__CHECK(cond, what) ((void)sizeof((cond) ? 1 : 0))
#define CONC__LIFE_FIELD
#define CONC__LIFE_SET(obj, v) ((void)0)
#define CONC__LIFE_RETURN(obj, alive) ((void)0)
#define CONC__LIFE_ABORT(obj, alive, fn) ((void)0)
#define CONC__MISUSE_IF(cond, fn, what) ((void)0)
#define CONC__LIFE_FREE(obj) free(obj)

#endif

#endif
