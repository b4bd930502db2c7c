/*
 * fault.c - failure injection for test builds (see internal/fault.h).
 *
 * Counters are process-wide atomics: a test arms "fail the k-th allocation",
 * runs one public call, and checks the documented error and that nothing
 * leaked.  Relaxed is enough: the test thread arms and reads the counters
 * before and after the calls it makes itself, and calls on other threads are
 * ordered by the joins and waits the test does anyway.
 */
#include "internal/fault.h"

#if defined(CONC_FAULT_HOOKS) && CONC_FAULT_HOOKS
#include <stdatomic.h>

static atomic_long alloc_calls, thread_calls;
static atomic_long alloc_fail_at, thread_fail_at; /* 0 = never */

static _Bool hit(atomic_long *calls, atomic_long *fail_at)
{
	long n = atomic_fetch_add_explicit(calls, 1, memory_order_relaxed) + 1;
	long k = atomic_load_explicit(fail_at, memory_order_relaxed);
	return k != 0 && n == k;
}

_Bool conc__fault_alloc(void)
{
	return hit(&alloc_calls, &alloc_fail_at);
}

_Bool conc__fault_thread(void)
{
	return hit(&thread_calls, &thread_fail_at);
}

void conc__fault_reset(void)
{
	atomic_store_explicit(&alloc_fail_at, 0, memory_order_relaxed);
	atomic_store_explicit(&thread_fail_at, 0, memory_order_relaxed);
	atomic_store_explicit(&alloc_calls, 0, memory_order_relaxed);
	atomic_store_explicit(&thread_calls, 0, memory_order_relaxed);
}

void conc__fault_fail_alloc_at(long k)
{
	atomic_store_explicit(&alloc_calls, 0, memory_order_relaxed);
	atomic_store_explicit(&alloc_fail_at, k, memory_order_relaxed);
}

void conc__fault_fail_thread_at(long k)
{
	atomic_store_explicit(&thread_calls, 0, memory_order_relaxed);
	atomic_store_explicit(&thread_fail_at, k, memory_order_relaxed);
}

long conc__fault_alloc_calls(void)
{
	return atomic_load_explicit(&alloc_calls, memory_order_relaxed);
}

long conc__fault_thread_calls(void)
{
	return atomic_load_explicit(&thread_calls, memory_order_relaxed);
}
#else
/* ISO C forbids an empty translation unit. */
typedef int conc__fault_unused;
#endif
