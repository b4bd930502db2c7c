/*
 * chain.h - pushing a chain of nodes onto a push-only list: the one CAS
 * loop behind the epoch's orphan and bag lists, the queue's segment cache
 * and the stack's retire lists.
 *
 * The list is a single atomic head; pushers link first..last in front of
 * it, and the only way nodes leave is a taker's exchange of the whole list
 * with NULL (acquire).  So there is no ABA: a pusher's CAS can only fail
 * because another pusher or a taker moved the head, and then it retries
 * with the head it read.  Lock-free: a failed CAS means another thread's
 * push or take succeeded.
 *
 * Memory orders.  The first load is relaxed: the CAS validates it.  The
 * CAS is release on success: it publishes the chain's links (and whatever
 * the pusher wrote into the nodes before) to the taker, whose acquire
 * exchange reads the head this CAS wrote.  Relaxed on failure: nothing was
 * published, and the retry's CAS is the one that counts.
 *
 * CONC__CHAIN_PUSH(head, first, last, link): head an _Atomic(T *), first
 * and last T * (last reached from first through ->link), link the field.
 */
#ifndef CONC_BASE_CHAIN_H
#define CONC_BASE_CHAIN_H

#include <stdatomic.h>

#include "base/chaos.h"

#define CONC__CHAIN_PUSH(head, first, last, link)                                        \
	do {                                                                             \
		__typeof__(first) conc__old_ =                                           \
			atomic_load_explicit((head), memory_order_relaxed);              \
		for (;;) {                                                               \
			(last)->link = conc__old_;                                       \
			if (atomic_compare_exchange_weak_explicit((head), &conc__old_,   \
								  (first),               \
								  memory_order_release,  \
								  memory_order_relaxed)) \
				break;                                                   \
			conc__chaos_point(); /* a retry: the slow path */                \
		}                                                                        \
	} while (0)

#endif
