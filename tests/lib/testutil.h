/*
 * testutil.h - what every libconc test shares: the stress scale, a watchdog
 * that turns a deadlock into a failure, and running N threads at once.
 *
 * Worker threads never call cmocka asserts (they longjmp on failure): they
 * record outcomes in per-thread slots, and the main thread asserts after the
 * join.
 */
#ifndef CONC_TESTUTIL_H
#define CONC_TESTUTIL_H

#include <stdarg.h>
#include <stdbool.h>
#include <stdatomic.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <sys/types.h>

#include <cmocka.h>

#include "base/prng.h"

/* Sanitizer builds run the same code 5-20x slower: tests divide their
 * iteration counts by this so every build finishes in CI's time. */
#if defined(__SANITIZE_THREAD__) || defined(__SANITIZE_ADDRESS__)
#define CONC_TEST_SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer) || __has_feature(address_sanitizer)
#define CONC_TEST_SANITIZED 1
#endif
#endif
#ifndef CONC_TEST_SANITIZED
#define CONC_TEST_SANITIZED 0
#endif

/* TSan alone (gcc defines __SANITIZE_THREAD__, clang has __has_feature):
 * for what TSan does not support, such as threads after a threaded fork. */
#if defined(__SANITIZE_THREAD__)
#define CONC_TEST_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define CONC_TEST_TSAN 1
#endif
#endif
#ifndef CONC_TEST_TSAN
#define CONC_TEST_TSAN 0
#endif

/* CONC_STRESS_SCALE (default 1; 0 = smoke): iteration counts multiply by it. */
unsigned long conc_test_scale(void);

/* n * scale, divided by `slow` in sanitizer builds; at least 1. */
unsigned long conc_test_iters(unsigned long n, unsigned long slow);

/* Arm a watchdog: if the test is still running after `seconds` (scaled up
 * in sanitizer builds), print which test hung and exit non-zero. */
void conc_test_watchdog(const char *what, unsigned seconds);
void conc_test_watchdog_off(void);

/*
 * A progress watchdog (issue 8's liveness rule: no progress for 5 s fails
 * the test).  A monitor thread samples *counter, which the test's threads
 * bump as they complete work (relaxed increments are enough: only the
 * value's movement matters); if it has not moved for `seconds` (3x in
 * sanitizer builds), the monitor prints what stalled and the counter's value
 * and exits the process non-zero.  Unlike conc_test_watchdog it does not cap
 * the test's length: a slow run that keeps moving passes, a hung one fails
 * within `seconds`.  start returns NULL when the monitor could not be
 * started (the caller asserts on that); stop joins it.  One at a time per
 * test is the intended use, but nothing forbids several.
 */
typedef struct conc_test_progress conc_test_progress;
conc_test_progress *conc_test_progress_watchdog_start(const char *what,
						      atomic_ulong *counter,
						      unsigned seconds);
void conc_test_progress_watchdog_stop(conc_test_progress *w);

/* Start n threads running fn(arg + i * stride) and join them all.  Returns
 * 0, or the pthread_create error (threads already started are joined). */
int conc_test_run_threads(unsigned n, void *(*fn)(void *), void *arg,
			  size_t stride);

/* Wait for the child pid for up to timeout_ms (scaled up in sanitizer
 * builds, as the watchdog is).  0: it ended, *status says how (waitpid's
 * status); ETIMEDOUT: it was still running, and has been killed (SIGKILL)
 * and reaped; else waitpid's errno.  The wait sleeps in poll() on a pidfd
 * (a child's exit wakes it), or, where pidfd_open is missing, polls waitpid
 * every 100 us: either way no verdict depends on how long anything took,
 * only on whether the child ended before a deadline far beyond its work.
 *
 * in_sanitizer (may be NULL): set when the child, past its first two
 * seconds, was found three times (sampled every 50 ms) with a thread in a
 * system call made by the sanitizer runtime itself - its program counter in
 * a mapping of libasan, libtsan, libubsan or liblsan (a futex wait on an
 * allocator lock, a sched_yield spinning on one).  The child is then
 * killed at once and ETIMEDOUT returned.  That is a sanitizer's hang, not
 * the program's: gcc 12's libasan (LLVM < 18) takes none of its allocator
 * locks around fork, so a child of a threaded fork can inherit one held
 * (fixed upstream by llvm/llvm-project#75290, "[asan] Install
 * pthread_atfork"); gcc 12's libtsan says as much in the child ("some
 * mutexes may be locked before fork").  A runtime linked into the executable (clang's
 * default) is not recognised: such hangs count as the program's. */
int conc_test_wait_child(pid_t pid, unsigned timeout_ms, int *status, bool *in_sanitizer);

/* A cheap per-thread PRNG: the library's own (base/prng.h, xorshift64*);
 * *s must not be 0. */
static inline uint64_t conc_test_rand(uint64_t *s)
{
	return conc__rand_next(s);
}

/*
 * Test points (src/base/fault.h, fault-hook builds only): emulated
 * preemption.  A thread tags itself (conc_test_tag, once it runs); a watch
 * counts the passes of one point by the threads with one tag (or by any
 * thread, tag CONC_TEST_ANY), and a pausing watch blocks the first such
 * thread there until conc_test_watch_release.  conc_test_points_wait blocks
 * the test until pred(arg) holds, re-evaluated after every watched pass and
 * every conc_test_points_signal - so a test waits for "the waiter is paused
 * and destroy has returned" without sleeping.  start installs the hook
 * (clearing every watch); stop releases every paused thread and removes it.
 */
#define CONC_TEST_ANY (-1)
#define CONC_TEST_WATCHES 16
void conc_test_points_start(void);
void conc_test_points_stop(void);
void conc_test_tag(int tag);
int conc_test_watch(const char *point, int tag, int pause); /* its id */
unsigned long conc_test_watch_hits(int id);
int conc_test_watch_paused(int id); /* a thread is blocked there now */
void conc_test_watch_release(int id);
void conc_test_points_signal(void);
/* 1 once pred holds; 0 if it did not within timeout_s seconds. */
int conc_test_points_wait(int (*pred)(void *arg), void *arg, unsigned timeout_s);

#endif
