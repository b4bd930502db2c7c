/*
 * fault.h - allocation and thread creation go through here, so that test
 * builds (-Dfault_hooks=true) can fail the k-th call and check that every
 * caller returns ENOMEM/EAGAIN with nothing lost or leaked.
 *
 * Every call names its site with a string literal, the first argument:
 *     conc__malloc("queue.create", sizeof *q)
 * The names are unique in src/; the faults suite (tests/faults/)
 * reads them from the source and checks that its sweep reached each one.
 *
 * In normal builds these are macros that drop the name and call plain
 * malloc/calloc/aligned_alloc/pthread_create: the hooks cost nothing.
 */
#ifndef CONC_INTERNAL_FAULT_H
#define CONC_INTERNAL_FAULT_H

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdlib.h>

#if defined(CONC_FAULT_HOOKS) && CONC_FAULT_HOOKS
/* Return true when the call at this site should fail; records the site as
 * reached either way. */
_Bool conc__fault_alloc(const char *site);
_Bool conc__fault_thread(const char *site);
/* Test control: fail the k-th call from now (1-based; 0 = never), and
 * count the calls made since the last reset. */
void conc__fault_reset(void);
void conc__fault_fail_alloc_at(long k);
void conc__fault_fail_thread_at(long k);
long conc__fault_alloc_calls(void);
long conc__fault_thread_calls(void);
/* Also fail calls at random: alloc and thread are parts per million (0:
 * none), seed picks which calls; the failures made since the last reset. */
void conc__fault_fail_rate(long alloc, long thread, unsigned long seed);
long conc__fault_alloc_failures(void);
/* Failures so far at the sites named name (since the last reset). */
long conc__fault_site_failures(const char *name);
long conc__fault_thread_failures(void);
/* The sites reached since the process started (never reset): up to max
 * distinct names into names[]; returns how many there are.  The site of
 * the call that was failed last, or NULL. */
size_t conc__fault_sites(const char **names, size_t max);
const char *conc__fault_last_failed(void);

/*
 * Test points (emulated preemption).  conc__test_point("pool.wait.woken")
 * marks a place in src/ where a window is a few instructions wide; a test
 * installs a hook that sees every point a thread passes and may block that
 * thread there (until another thread has done its part), so that the
 * interleaving that matters happens every run instead of once in 10^5.
 * Points sit on slow paths only (after a sleep, inside a destroy, a lock
 * held - the stack's depot lock, which a fork test stops a thread inside):
 * the instruction guard's fast paths pass none.  NULL: no hook.
 */
typedef void (*conc__test_hook_fn)(const char *point);
extern _Atomic(conc__test_hook_fn) conc__test_hook;
void conc__test_set_hook(conc__test_hook_fn fn);
static inline void conc__test_point(const char *point)
{
	/* acquire: pairs with the release in conc__test_set_hook (whatever
	 * the test set up before installing the hook). */
	conc__test_hook_fn h = atomic_load_explicit(&conc__test_hook, memory_order_acquire);
	if (h)
		h(point);
}

#define conc__malloc(site, n) conc__malloc_(conc__fault_alloc(site), (n))
#define conc__calloc(site, k, n) conc__calloc_(conc__fault_alloc(site), (k), (n))
#define conc__aligned_alloc(site, align, n) \
	conc__aligned_alloc_(conc__fault_alloc(site), (align), (n))
#define conc__thread_create(site, t, attr, fn, arg) \
	conc__thread_create_(conc__fault_thread(site), (t), (attr), (fn), (arg))
#else
/* Normal builds: the name is dropped unevaluated, and `fail` is the
 * constant 0, which the compiler folds away. */
#define conc__test_point(point) ((void)0)
#define conc__malloc(site, n) conc__malloc_(0, (n))
#define conc__calloc(site, k, n) conc__calloc_(0, (k), (n))
#define conc__aligned_alloc(site, align, n) conc__aligned_alloc_(0, (align), (n))
#define conc__thread_create(site, t, attr, fn, arg) \
	conc__thread_create_(0, (t), (attr), (fn), (arg))
#endif

/*
 * The allocation wrappers keep errno: the library never changes it (a
 * failed call says why in its return value), and malloc sets ENOMEM on
 * failure.  Keeping it here, once, means no call site has to remember.
 * Out of line: the callers' fast paths (a node cache's refill sits inside
 * the stack's push) keep their layout; an allocation costs a call anyway.
 */
enum { CONC__ALLOC_MALLOC, CONC__ALLOC_CALLOC, CONC__ALLOC_ALIGNED };

static __attribute__((noinline, unused)) void *conc__alloc_(int kind, size_t a, size_t b)
{
	int saved = errno;
	void *p = kind == CONC__ALLOC_MALLOC ? malloc(a)
		: kind == CONC__ALLOC_CALLOC ? calloc(a, b)
		: aligned_alloc(a, (b + a - 1) & ~(a - 1)); /* C11: size a multiple of align */
	errno = saved;
	return p;
}

static inline void *conc__malloc_(_Bool fail, size_t n)
{
	return fail ? NULL : conc__alloc_(CONC__ALLOC_MALLOC, n, 0);
}

static inline void *conc__calloc_(_Bool fail, size_t k, size_t n)
{
	return fail ? NULL : conc__alloc_(CONC__ALLOC_CALLOC, k, n);
}

/* Aligned to `align` (a power of two); size is rounded up as C11 requires. */
static inline void *conc__aligned_alloc_(_Bool fail, size_t align, size_t n)
{
	return fail ? NULL : conc__alloc_(CONC__ALLOC_ALIGNED, align, n);
}

/* Returns 0 or pthread_create's error (EAGAIN when a hook fails it). */
static inline int conc__thread_create_(_Bool fail, pthread_t *t,
				       const pthread_attr_t *attr,
				       void *(*fn)(void *), void *arg)
{
	if (fail)
		return EAGAIN;
	return pthread_create(t, attr, fn, arg);
}

#endif
