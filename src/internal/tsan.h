/*
 * tsan.h - telling ThreadSanitizer about happens-before edges it cannot see.
 *
 * TSan models atomic operations but not standalone fences (nor the
 * membarrier() system call).  Where such a fence is what publishes plain
 * data from one thread to another, the releasing side calls
 * conc__tsan_release(addr) and the acquiring side conc__tsan_acquire(addr)
 * on the same address; outside TSan builds both compile to nothing.
 */
#ifndef CONC_INTERNAL_TSAN_H
#define CONC_INTERNAL_TSAN_H

#if defined(__SANITIZE_THREAD__)
#define CONC_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define CONC_TSAN 1
#endif
#endif

#ifdef CONC_TSAN
void __tsan_acquire(void *addr);
void __tsan_release(void *addr);
#define conc__tsan_acquire(addr) __tsan_acquire((void *)(addr))
#define conc__tsan_release(addr) __tsan_release((void *)(addr))
#else
#define CONC_TSAN 0
#define conc__tsan_acquire(addr) ((void)(addr))
#define conc__tsan_release(addr) ((void)(addr))
#endif

#endif
