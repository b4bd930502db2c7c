/*
 * fault.h - allocation and thread creation go through here, so that test
 * builds (-Dfault_hooks=true) can fail the k-th call and check that every
 * caller returns ENOMEM/EAGAIN with nothing lost or leaked.
 *
 * In normal builds these are plain calls to malloc/calloc/aligned_alloc/
 * pthread_create: the hooks cost nothing.
 */
#ifndef CONC_INTERNAL_FAULT_H
#define CONC_INTERNAL_FAULT_H

#include <errno.h>
#include <pthread.h>
#include <stddef.h>
#include <stdlib.h>

#if defined(CONC_FAULT_HOOKS) && CONC_FAULT_HOOKS
/* Return true when the call at this site should fail. */
_Bool conc__fault_alloc(void);
_Bool conc__fault_thread(void);
/* Test control: fail the k-th call from now (1-based; 0 = never), and
 * count the calls made since the last reset. */
void conc__fault_reset(void);
void conc__fault_fail_alloc_at(long k);
void conc__fault_fail_thread_at(long k);
long conc__fault_alloc_calls(void);
long conc__fault_thread_calls(void);
#else
#define conc__fault_alloc() 0
#define conc__fault_thread() 0
#endif

static inline void *conc__malloc(size_t n)
{
	return conc__fault_alloc() ? NULL : malloc(n);
}

static inline void *conc__calloc(size_t k, size_t n)
{
	return conc__fault_alloc() ? NULL : calloc(k, n);
}

/* Aligned to `align` (a power of two); size is rounded up as C11 requires. */
static inline void *conc__aligned_alloc(size_t align, size_t n)
{
	if (conc__fault_alloc())
		return NULL;
	return aligned_alloc(align, (n + align - 1) & ~(align - 1));
}

/* Returns 0 or pthread_create's error (EAGAIN when a hook fails it). */
static inline int conc__thread_create(pthread_t *t, const pthread_attr_t *attr,
				      void *(*fn)(void *), void *arg)
{
	if (conc__fault_thread())
		return EAGAIN;
	return pthread_create(t, attr, fn, arg);
}

#endif
