/*
 * waitpop.h - the blocking pop shared by the queue and the stack: a short
 * bounded spin of try_pop, then sleep on the container's conc__park.
 *
 * The condition a sleeper waits for is "try_pop succeeds, or the container
 * is closed".  The container keeps the protocol of park.h: its publishing
 * write (the RMW that makes an item visible; the store of the closed flag)
 * is seq_cst and is followed by notify_one (push) or notify_all (close).
 *
 * States of one waiter:
 *   SPIN     up to CONC__WAITPOP_SPIN tries of try_pop, no sleep
 *   PREPARED conc__park_prepare done; re-checks try_pop and closed
 *   ASLEEP   in conc__park_wait (never pinned: try_pop unpins before it
 *            returns), left on notify, spurious wake or deadline
 *   DONE     0 (item taken), EPIPE (closed and empty), ETIMEDOUT
 * A waiter that leaves on its deadline re-checks once more and takes an
 * item if one is there: a notify_one it absorbed is then not lost, because
 * the item it announced is taken by the waiter it woke.
 *
 * The EPIPE rule, on every path: EPIPE only from a try_pop that failed
 * after the closed flag was seen.  A try that failed before the flag was
 * read proves nothing: a push can complete and a close follow between the
 * two, and that item would be left behind by a consumer that stops at
 * EPIPE.  The flag is set only after close has fenced off every later push
 * (see the container's close), so a try after seeing it that finds nothing
 * means closed and empty for good.
 */
#ifndef CONC_INTERNAL_WAITPOP_H
#define CONC_INTERNAL_WAITPOP_H

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>

#include "base/arch.h"
#include "base/fault.h"
#include "base/park.h"

#define CONC__WAITPOP_SPIN 64

typedef struct conc__waitpop_ops {
	bool (*try_pop)(void *c, void **item);
	bool (*is_closed)(void *c);
} conc__waitpop_ops;

static inline int conc__waitpop(void *c, const conc__waitpop_ops *ops,
				conc__park *park, void **item, bool timed,
				uint64_t timeout_ns)
{
	if (ops->try_pop(c, item))
		return 0;
	if (timed && timeout_ns == 0) {
		if (!ops->is_closed(c))
			return ETIMEDOUT;
		/* closed: one more try for an item pushed before the close */
		return ops->try_pop(c, item) ? 0 : EPIPE;
	}
	for (int i = 0; i < CONC__WAITPOP_SPIN; i++) {
		if (ops->is_closed(c))
			break;
		conc__cpu_relax();
		if (ops->try_pop(c, item))
			return 0;
	}
	uint64_t deadline = timed ? conc__deadline_after(timeout_ns) : CONC__NO_DEADLINE;
	for (;;) {
		unsigned key = conc__park_prepare(park);
		/* Checked after prepare's seq_cst fence: either we see the
		 * item / the closed flag, or its publisher sees us waiting. */
		if (ops->try_pop(c, item)) {
			conc__park_cancel(park);
			return 0;
		}
		if (ops->is_closed(c)) {
			conc__park_cancel(park);
			/* The flag is set only after close has fenced off every
			 * later push; what is left is what we may still take. */
			return ops->try_pop(c, item) ? 0 : EPIPE;
		}
		if (!conc__park_wait(park, key, deadline)) {
			if (ops->try_pop(c, item))
				return 0;
			/* tests: a push and a close can land here */
			conc__test_point("waitpop.deadline");
			if (!ops->is_closed(c))
				return ETIMEDOUT;
			/* Closed, but a push may have completed between the
			 * try above and the close we just saw: only a try
			 * after seeing the flag can tell "closed and empty". */
			return ops->try_pop(c, item) ? 0 : EPIPE;
		}
	}
}

#endif
