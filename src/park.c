/*
 * park.c - the sleeping half of internal/park.h (see the protocol there).
 */
#include <errno.h>
#include <limits.h>
#include <linux/futex.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "internal/park.h"

uint64_t conc__now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

uint64_t conc__deadline_after(uint64_t rel_ns)
{
	uint64_t now = conc__now_ns();
	if (rel_ns >= CONC__NO_DEADLINE - now)
		return CONC__NO_DEADLINE;
	return now + rel_ns;
}

bool conc__park_wait(conc__park *p, unsigned key, uint64_t deadline_ns)
{
	bool in_time = true;
	int saved_errno = errno; /* the library never changes errno */
	struct timespec ts, *tsp = NULL;

	if (deadline_ns != CONC__NO_DEADLINE) {
		if (conc__now_ns() >= deadline_ns) {
			in_time = false;
			goto out;
		}
		/* FUTEX_WAIT_BITSET takes an absolute CLOCK_MONOTONIC time, so
		 * an EINTR retry needs no recomputation. */
		ts.tv_sec = (time_t)(deadline_ns / 1000000000u);
		ts.tv_nsec = (long)(deadline_ns % 1000000000u);
		tsp = &ts;
	}
	/* The kernel re-reads seq under its hash-bucket lock and sleeps only if
	 * it still equals key: a notify that bumped seq after our prepare
	 * makes this return at once (EAGAIN).  Any return - wake, EAGAIN,
	 * EINTR, spurious - sends the caller back to its condition check. */
	if (syscall(SYS_futex, &p->seq, FUTEX_WAIT_BITSET | FUTEX_PRIVATE_FLAG,
		    key, tsp, NULL, FUTEX_BITSET_MATCH_ANY) == -1 &&
	    errno == ETIMEDOUT)
		in_time = false;
out:
	/* release: our wait is over; pairs with nothing in particular - the
	 * count only lets notifiers skip the syscall. */
	atomic_fetch_sub_explicit(&p->waiters, 1, memory_order_release);
	errno = saved_errno;
	return in_time;
}

void conc__park_wake(conc__park *p, int all)
{
	/* release: a waiter that reads this new value as its key (acquire in
	 * prepare) also sees what we published before notifying. */
	int saved_errno = errno;
	atomic_fetch_add_explicit(&p->seq, 1, memory_order_release);
	syscall(SYS_futex, &p->seq, FUTEX_WAKE | FUTEX_PRIVATE_FLAG,
		all ? INT_MAX : 1, NULL, NULL, 0);
	errno = saved_errno;
}
