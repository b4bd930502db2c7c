/*
 * park.h - sleeping until a condition holds, on a Linux futex.
 *
 * A conc__park is an event count: a waiter count plus a 32-bit sequence word
 * that the kernel sleeps on.  It never holds the condition itself; callers
 * keep their own (an item in a queue, a task count at zero) and use the park
 * only to sleep until it may have changed.
 *
 * Waiter:                                 Notifier:
 *   key = conc__park_prepare(p);            make the condition true with a
 *   if (condition) { cancel; done; }          seq_cst atomic store or RMW
 *   conc__park_wait(p, key, deadline);      conc__park_notify_one/all(p);
 *   loop: re-check the condition
 * (conc__park_wait_until below is this waiter's loop, written once.)
 *
 * Why no wake-up is lost.  prepare increments `waiters` (seq_cst RMW) then
 * issues a seq_cst fence before the caller checks the condition; the
 * notifier's publishing write is seq_cst and notify loads `waiters` seq_cst.
 * That is the store-buffering shape: in the single order S of seq_cst
 * operations either the notifier's load of `waiters` comes after the
 * increment (so it sees a waiter and bumps `seq`), or the waiter's check of
 * the condition comes after the publishing write (so it sees the condition
 * and never sleeps).  When the notifier bumps `seq` after the waiter read its
 * key, FUTEX_WAIT compares `seq` with the key inside the kernel and returns
 * at once; when it bumps before, the waiter's key already holds the new value
 * and the release/acquire on `seq` makes the condition visible to the
 * re-check.  A waiter that wakes spuriously, or on a wake meant for another,
 * re-checks and waits again.
 *
 * Cost.  A notifier when nobody sleeps: one load of `waiters` (a plain mov on
 * x86, ldar on AArch64), no RMW, no syscall.  Waiters pay the RMWs.
 *
 * Waking one among several.  notify_one wakes one sleeper; a waiter that
 * leaves without consuming (timeout, cancel) must re-check the condition and
 * take what is there, so that a wake it absorbed is never needed by another.
 * The queue and stack do so.
 */
#ifndef CONC_INTERNAL_PARK_H
#define CONC_INTERNAL_PARK_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "base/arch.h"
#include "base/atomics.h"
#include "base/chaos.h"
#include "base/clock.h"
#include "base/fault.h"

typedef struct conc__park {
	atomic_uint seq;     /* futex word; bumped by each notify that finds waiters */
	atomic_uint waiters; /* threads between prepare and the end of wait/cancel */
} conc__park;

#define CONC__PARK_INIT {0, 0}

static inline void conc__park_init(conc__park *p)
{
	atomic_init(&p->seq, 0);
	atomic_init(&p->waiters, 0);
}

/* Announce a waiter; returns the key to pass to conc__park_wait. */
static inline unsigned conc__park_prepare(conc__park *p)
{
	/* seq_cst RMW + fence: the waiter half of the store-buffering argument
	 * above; the fence orders the caller's following condition check (of
	 * any memory order) after the increment in S. */
	atomic_fetch_add_explicit(&p->waiters, 1, memory_order_seq_cst);
	conc_fence(memory_order_seq_cst);
	/* Chaos mode: widen the window between announcing the waiter and the
	 * caller's check of its condition (a sleeping path: no fast-path cost). */
	conc__chaos_point();
	/* acquire: pairs with the release bump in notify, so that a key taken
	 * after a notify also sees what that notifier published. */
	return atomic_load_explicit(&p->seq, memory_order_acquire);
}

/* Leave without sleeping (the condition held after prepare). */
static inline void conc__park_cancel(conc__park *p)
{
	/* relaxed: the count only gates notifiers' syscalls; a notifier that
	 * still sees us pays one needless wake, nothing more. */
	atomic_fetch_sub_explicit(&p->waiters, 1, memory_order_relaxed);
}

/*
 * Sleep until a notify, a spurious wake-up, or the absolute CLOCK_MONOTONIC
 * deadline in ns (CONC__NO_DEADLINE: none).  Always undoes prepare's waiter
 * count.  Returns false when the deadline has passed, true otherwise; either
 * way the caller re-checks its condition.
 */
bool conc__park_wait(conc__park *p, unsigned key, uint64_t deadline_ns);

void conc__park_wake(conc__park *p, int all); /* the slow half of notify */

/* Wake one sleeper, if any.  The caller's publishing write was seq_cst. */
static inline void conc__park_notify_one(conc__park *p)
{
	/* seq_cst: the notifier half of the store-buffering argument. */
	if (conc__unlikely(atomic_load_explicit(&p->waiters, memory_order_seq_cst) != 0))
		conc__park_wake(p, 0);
}

/* Wake every sleeper (close, shutdown, a count reaching zero). */
static inline void conc__park_notify_all(conc__park *p)
{
	if (atomic_load_explicit(&p->waiters, memory_order_seq_cst) != 0)
		conc__park_wake(p, 1);
}

/* True when somebody is between prepare and the end of its wait. */
static inline bool conc__park_has_waiters(conc__park *p)
{
	return atomic_load_explicit(&p->waiters, memory_order_seq_cst) != 0;
}

/*
 * The waiter's loop of the protocol above, once: return when pred(ctx)
 * holds, checked before the prepare (no RMW when it already holds), after
 * it (the re-check that the store-buffering argument needs) and after each
 * wake.  pred must read the condition the notifiers publish with seq_cst
 * writes (any order of its own loads: prepare's fence orders them).
 * Returns true when pred held, false when the absolute CLOCK_MONOTONIC
 * deadline passed first (CONC__NO_DEADLINE: never).  park_point /
 * woken_point: test points (base/fault.h) passed just before the sleep and
 * just after it, or NULL.  Static inline so that a static pred is inlined.
 * A loop with steps of its own between the prepare and the re-check (the
 * pool worker's membarrier) keeps its own copy.
 */
static inline bool conc__park_wait_until(conc__park *p, bool (*pred)(void *), void *ctx,
					 uint64_t deadline_ns, const char *park_point,
					 const char *woken_point)
{
	for (;;) {
		if (pred(ctx))
			return true;
		unsigned key = conc__park_prepare(p);
		if (pred(ctx)) {
			conc__park_cancel(p);
			return true;
		}
		if (park_point)
			conc__test_point(park_point);
		bool in_time = conc__park_wait(p, key, deadline_ns);
		if (woken_point)
			conc__test_point(woken_point);
		if (!in_time)
			return pred(ctx); /* the last look: it may hold now */
	}
}

/*
 * The raw futex calls under the park, for protocols of their own (scope's
 * per-handle words): sleep while *addr == val until the absolute
 * CLOCK_MONOTONIC deadline (false once it has passed); wake up to n
 * sleepers (addr may already be freed: the kernel only hashes it).  Both
 * keep errno.
 */
bool conc__futex_wait(atomic_uint *addr, unsigned val, uint64_t deadline_ns);
void conc__futex_wake(atomic_uint *addr, int n);


#endif
