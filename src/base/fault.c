/*
 * fault.c - failure injection for test builds (see base/fault.h).
 *
 * Counters are process-wide atomics: a test arms "fail the k-th allocation",
 * runs one public call, and checks the documented error and that nothing
 * leaked.  Relaxed is enough: the test thread arms and reads the counters
 * before and after the calls it makes itself, and calls on other threads are
 * ordered by the joins and waits the test does anyway.
 *
 * Each call also records its site (the name the caller passes) in a small
 * open-addressed table keyed by the name's address, so that the faults
 * suite can compare the sites it reached with the names in the source.  A
 * slot is claimed with a CAS and never released; the same name may sit in
 * two slots when two translation units hold two copies of the literal
 * (an inline function in a header), and conc__fault_sites merges them.
 */
#include "base/fault.h"

#if defined(CONC_FAULT_HOOKS) && CONC_FAULT_HOOKS
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>

_Atomic(conc__test_hook_fn) conc__test_hook;

void conc__test_set_hook(conc__test_hook_fn fn)
{
	/* release: pairs with the acquire in conc__test_point. */
	atomic_store_explicit(&conc__test_hook, fn, memory_order_release);
}

static atomic_long alloc_calls, thread_calls;
static atomic_long alloc_fail_at, thread_fail_at; /* 0 = never */
/* Random failures: parts per million of the calls, chosen by a hash of the
 * call's number and the seed (so a run can be repeated). */
static atomic_long alloc_ppm, thread_ppm;
static atomic_ulong fail_seed;
static atomic_long alloc_failed, thread_failed;

/* Far more slots than there are sites in src/ (a few dozen at most). */
#define SITE_SLOTS 256u

/* The names of the sites reached; NULL: free.  A name is only looked up
 * and, the first time, stored: a few instructions per call, as the
 * instruction-count guard runs in hook builds. */
static _Atomic(const char *) sites[SITE_SLOTS];
static atomic_long site_failed[SITE_SLOTS]; /* failures per slot of sites[] */
static _Atomic(const char *) last_failed;

/* The slot of site in sites[] (SITE_SLOTS if the table is full). */
static inline __attribute__((always_inline)) unsigned record(const char *site)
{
	unsigned j = (unsigned)((uintptr_t)site >> 3) % SITE_SLOTS;
	for (unsigned i = 0; i < SITE_SLOTS; i++, j = (j + 1) % SITE_SLOTS) {
		/* relaxed: the table is read by the test thread after the
		 * joins that order the calls it cares about. */
		const char *cur = atomic_load_explicit(&sites[j], memory_order_relaxed);
		if (cur == site)
			return j;
		if (!cur && (atomic_compare_exchange_strong_explicit(&sites[j], &cur, site,
								       memory_order_relaxed,
								       memory_order_relaxed) ||
			     cur == site))
			return j;
	}
	/* Table full: cannot happen with the sites src/ has; the suite
	 * would then report the site as not reached. */
	return SITE_SLOTS;
}

static __attribute__((noinline)) _Bool random_fail(long n, long ppm)
{
	uint64_t x = (uint64_t)n * 0x9e3779b97f4a7c15u ^
		     atomic_load_explicit(&fail_seed, memory_order_relaxed);
	x ^= x >> 31;
	x *= 0xbf58476d1ce4e5b9u;
	x ^= x >> 29;
	return x % 1000000u < (uint64_t)ppm;
}

/* Inlined into both hooks: a call costs a handful of instructions while
 * nothing is armed (the instruction-count guard runs in hook builds). */
static inline __attribute__((always_inline)) _Bool
hit(const char *site, atomic_long *calls, atomic_long *fail_at, atomic_long *ppm,
    atomic_long *failed)
{
	unsigned slot = record(site);
	long n = atomic_fetch_add_explicit(calls, 1, memory_order_relaxed) + 1;
	long k = atomic_load_explicit(fail_at, memory_order_relaxed);
	long r = atomic_load_explicit(ppm, memory_order_relaxed);
	if ((k != 0 && n == k) || (r != 0 && random_fail(n, r))) {
		atomic_store_explicit(&last_failed, site, memory_order_relaxed);
		atomic_fetch_add_explicit(failed, 1, memory_order_relaxed);
		if (slot < SITE_SLOTS)
			atomic_fetch_add_explicit(&site_failed[slot], 1, memory_order_relaxed);
		return 1;
	}
	return 0;
}

_Bool conc__fault_alloc(const char *site)
{
	return hit(site, &alloc_calls, &alloc_fail_at, &alloc_ppm, &alloc_failed);
}

_Bool conc__fault_thread(const char *site)
{
	return hit(site, &thread_calls, &thread_fail_at, &thread_ppm, &thread_failed);
}

void conc__fault_fail_rate(long alloc, long thread, unsigned long seed)
{
	atomic_store_explicit(&fail_seed, seed, memory_order_relaxed);
	atomic_store_explicit(&alloc_ppm, alloc, memory_order_relaxed);
	atomic_store_explicit(&thread_ppm, thread, memory_order_relaxed);
}

long conc__fault_alloc_failures(void)
{
	return atomic_load_explicit(&alloc_failed, memory_order_relaxed);
}

long conc__fault_thread_failures(void)
{
	return atomic_load_explicit(&thread_failed, memory_order_relaxed);
}

size_t conc__fault_sites(const char **names, size_t max)
{
	size_t n = 0;
	for (unsigned j = 0; j < SITE_SLOTS; j++) {
		const char *name = atomic_load_explicit(&sites[j], memory_order_relaxed);
		if (!name)
			continue;
		size_t i = 0;
		while (i < n && i < max && strcmp(names[i], name) != 0)
			i++;
		if (i < n && i < max)
			continue; /* a second copy of the literal */
		if (n < max)
			names[n] = name;
		n++;
	}
	return n;
}

long conc__fault_site_failures(const char *name)
{
	long n = 0;
	for (unsigned j = 0; j < SITE_SLOTS; j++) {
		const char *cur = atomic_load_explicit(&sites[j], memory_order_relaxed);
		if (cur && strcmp(cur, name) == 0)
			n += atomic_load_explicit(&site_failed[j], memory_order_relaxed);
	}
	return n;
}

const char *conc__fault_last_failed(void)
{
	return atomic_load_explicit(&last_failed, memory_order_relaxed);
}

void conc__fault_reset(void)
{
	atomic_store_explicit(&alloc_fail_at, 0, memory_order_relaxed);
	atomic_store_explicit(&thread_fail_at, 0, memory_order_relaxed);
	atomic_store_explicit(&alloc_calls, 0, memory_order_relaxed);
	atomic_store_explicit(&thread_calls, 0, memory_order_relaxed);
	atomic_store_explicit(&last_failed, NULL, memory_order_relaxed);
	atomic_store_explicit(&alloc_ppm, 0, memory_order_relaxed);
	atomic_store_explicit(&thread_ppm, 0, memory_order_relaxed);
	atomic_store_explicit(&alloc_failed, 0, memory_order_relaxed);
	atomic_store_explicit(&thread_failed, 0, memory_order_relaxed);
	for (unsigned j = 0; j < SITE_SLOTS; j++)
		atomic_store_explicit(&site_failed[j], 0, memory_order_relaxed);
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
