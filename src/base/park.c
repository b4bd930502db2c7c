/*
 * park.c - the sleeping half of base/park.h (see the protocol there).
 */
#include <errno.h>
#include <limits.h>
#include <linux/futex.h>
#include <sched.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "base/chaos.h"
#include "base/park.h"

bool conc__futex_wait(atomic_uint *addr, unsigned val, uint64_t deadline_ns)
{
	int saved_errno = errno; /* the library never changes errno */
	bool in_time = true;
	struct timespec ts, *tsp = NULL;

	if (deadline_ns != CONC__NO_DEADLINE) {
		if (conc__now_ns() >= deadline_ns) {
			errno = saved_errno;
			return false;
		}
		/* FUTEX_WAIT_BITSET takes an absolute CLOCK_MONOTONIC time, so
		 * an EINTR retry needs no recomputation. */
		ts.tv_sec = (time_t)(deadline_ns / 1000000000u);
		ts.tv_nsec = (long)(deadline_ns % 1000000000u);
		tsp = &ts;
	}
	/* The kernel re-reads *addr under its hash-bucket lock and sleeps only
	 * if it still equals val.  Any return - wake, EAGAIN, EINTR, spurious
	 * - sends the caller back to its own check. */
	if (syscall(SYS_futex, addr, FUTEX_WAIT_BITSET | FUTEX_PRIVATE_FLAG, val, tsp,
		    NULL, FUTEX_BITSET_MATCH_ANY) == -1 &&
	    errno == ETIMEDOUT)
		in_time = false;
	errno = saved_errno;
	return in_time;
}

void conc__futex_wake(atomic_uint *addr, int n)
{
	int saved_errno = errno;
	syscall(SYS_futex, addr, FUTEX_WAKE | FUTEX_PRIVATE_FLAG, n, NULL, NULL, 0);
	errno = saved_errno;
}

bool conc__park_wait(conc__park *p, unsigned key, uint64_t deadline_ns)
{
	bool in_time;
	if (conc__unlikely(conc__chaos_coin(2))) {
		/* Chaos mode: a spurious wake-up, one wait in four.  The caller
		 * re-checks its condition as after any return (park.h); a
		 * notify meant for us meanwhile finds no sleeper, which is
		 * the case of a notify that comes before the wait anyway. */
		conc__chaos_count_spurious();
		sched_yield();
		in_time = deadline_ns == CONC__NO_DEADLINE || conc__now_ns() < deadline_ns;
	} else {
		/* A notify that bumped seq after our prepare makes the wait
		 * return at once (the kernel's compare fails). */
		in_time = conc__futex_wait(&p->seq, key, deadline_ns);
	}
	/* release: our wait is over; the count only lets notifiers skip the
	 * syscall, so nothing pairs with it in particular. */
	atomic_fetch_sub_explicit(&p->waiters, 1, memory_order_release);
	return in_time;
}

void conc__park_wake(conc__park *p, int all)
{
	/* release: a waiter that reads this new value as its key (acquire in
	 * prepare) also sees what we published before notifying. */
	atomic_fetch_add_explicit(&p->seq, 1, memory_order_release);
	conc__futex_wake(&p->seq, all ? INT_MAX : 1);
}
