/*
 * check.c - the debug-checks builds' misuse report and quarantine
 * (base/check.h says what they are for).  Nothing here exists in other
 * builds.
 */
#ifdef CONC_DEBUG_CHECKS
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/check.h"

void conc__misuse(const char *fn, const char *what)
{
	/* One write, so that the line is not interleaved with another
	 * thread's output; stdio might hold a lock the program broke. */
	char line[256];
	int n = snprintf(line, sizeof line, "libconc: %s: %s\n", fn, what);
	if (n > 0) {
		size_t len = (size_t)n < sizeof line ? (size_t)n : sizeof line - 1;
		ssize_t w = write(2, line, len);
		(void)w; /* aborting either way */
	}
	abort();
}

static const char *kind_of(uint32_t alive)
{
	switch (alive) {
	case CONC__LIFE_QUEUE:
		return "queue";
	case CONC__LIFE_STACK:
		return "stack";
	case CONC__LIFE_POOL:
		return "pool";
	case CONC__LIFE_EPOCH:
		return "epoch domain";
	case CONC__LIFE_CHAN:
		return "channel";
	default:
		return "object";
	}
}

void conc__misuse_life(const char *fn, uint32_t life, uint32_t alive)
{
	char what[160];
	if (life == CONC__LIFE_DEAD)
		snprintf(what, sizeof what, "the %s was already destroyed (%s)", kind_of(alive),
			 strstr(fn, "_destroy") ? "double destroy" : "use after destroy");
	else
		snprintf(what, sizeof what,
			 "not a live %s (never created, or destroyed and its memory reused)",
			 kind_of(alive));
	conc__misuse(fn, what);
}

/*
 * The quarantine: a ring of the last CONC__QUARANTINE buried objects.  A
 * burial takes the next index (fetch-and-add) and exchanges its object in,
 * freeing the one it pushes out.  Two burials that wrap onto one index
 * each free what they took out: nothing is freed twice or lost.
 */
static _Atomic(void *) quarantine[CONC__QUARANTINE];
static atomic_uint quarantine_next;

void conc__life_bury(void *obj, uint32_t *life)
{
	*life = CONC__LIFE_DEAD;
	/* relaxed: only picks a slot; the exchange hands the memory over */
	unsigned i = atomic_fetch_add_explicit(&quarantine_next, 1, memory_order_relaxed) %
		     CONC__QUARANTINE;
	/* acq_rel: release publishes the dead word and the burier's last
	 * writes to the thread that later pushes obj out and frees it;
	 * acquire takes the same from the burier of old. */
	void *old = atomic_exchange_explicit(&quarantine[i], obj, memory_order_acq_rel);
	free(old);
}

#else
/* ISO C wants a translation unit to declare something. */
typedef int conc__check_unused;
#endif
