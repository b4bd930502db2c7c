/*
 * fuzz_pool.c - libFuzzer target: conc/pool.h driven by one thread through
 * execute / wait / resize / destroy / bad arguments, against a model that
 * counts tasks: after wait or destroy, every task executed (and every task
 * those executed) has run exactly once; the thread count is what resize
 * set; on_start and on_stop ran once per worker; calls that must fail
 * return the documented errno.  A mismatch prints and traps (a test, not
 * the library).
 *
 * One pool and one model live across inputs: creating threads, or even
 * waking the workers for a wait, in every input would take 10^6 runs far
 * past the time budget (a futex round trip each); the model is checked at
 * each wait and destroy, whichever input they are in.  Destroy-and-recreate
 * and resize are in the alphabet, rarer than the rest.  Each input byte is an operation (low 3
 * bits) and its argument (high 5 bits).
 */
#include <errno.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "conc/pool.h"

#define FZ_CHECK(cond, ...)                                                     \
	do {                                                                    \
		if (!(cond)) {                                                  \
			fprintf(stderr, "fuzz mismatch (pool, op %zu): ", fz_at); \
			fprintf(stderr, __VA_ARGS__);                           \
			fputc('\n', stderr);                                    \
			__builtin_trap();                                       \
		}                                                               \
	} while (0)

static size_t fz_at;
static conc_pool *fz_pool;             /* the pool the tasks execute into */
static atomic_ulong fz_ran;            /* tasks that ran */
static atomic_ulong fz_child_errors;   /* a nested execute that failed */
static atomic_ulong fz_inside_errors;  /* wait/resize/destroy from a task not EDEADLK */
static atomic_ulong fz_started, fz_stopped; /* on_start / on_stop calls */
static unsigned long fz_expected;      /* tasks the model says will run */

static void fz_on_start(unsigned index, void *ctx)
{
	(void)index;
	(void)ctx;
	atomic_fetch_add(&fz_started, 1);
}

static void fz_on_stop(unsigned index, void *ctx)
{
	(void)index;
	(void)ctx;
	atomic_fetch_add(&fz_stopped, 1);
}

/* A task of depth d executes two of depth d - 1 from inside the pool (the
 * worker's own deque): 2^(d+1) - 1 tasks in all. */
static void fz_task(void *arg)
{
	uintptr_t depth = (uintptr_t)arg;
	if (depth > 0)
		for (int i = 0; i < 2; i++)
			if (conc_pool_execute(fz_pool, fz_task, (void *)(depth - 1)) != 0)
				atomic_fetch_add(&fz_child_errors, 1);
	atomic_fetch_add(&fz_ran, 1);
}

/* A task that calls what a task may not call on its own pool. */
static void fz_bad_task(void *arg)
{
	(void)arg;
	if (conc_pool_wait(fz_pool) != EDEADLK)
		atomic_fetch_add(&fz_inside_errors, 1);
	if (conc_pool_resize(fz_pool, 2) != EDEADLK)
		atomic_fetch_add(&fz_inside_errors, 1);
	if (conc_pool_destroy(fz_pool) != EDEADLK)
		atomic_fetch_add(&fz_inside_errors, 1);
	atomic_fetch_add(&fz_ran, 1);
}

static unsigned fz_threads; /* the model's worker count */

static void fz_create(unsigned threads, size_t max_queued)
{
	conc_pool_config cfg = {
		.threads = threads,
		.name = "fuzz",
		.max_queued = max_queued,
		.on_start = fz_on_start,
		.on_stop = fz_on_stop,
	};
	atomic_store(&fz_started, 0);
	atomic_store(&fz_stopped, 0);
	int rc = conc_pool_create(&fz_pool, &cfg);
	FZ_CHECK(rc == 0, "create(%u threads): %d", threads, rc);
	fz_threads = threads;
	/* create returns after every on_start has returned */
	FZ_CHECK(atomic_load(&fz_started) == threads, "on_start ran %lu times for %u threads",
		 atomic_load(&fz_started), threads);
}

/* Everything executed has run, once; nothing failed inside. */
static void fz_check_done(const char *after)
{
	FZ_CHECK(atomic_load(&fz_ran) == fz_expected, "after %s: %lu tasks ran, %lu executed",
		 after, atomic_load(&fz_ran), fz_expected);
	FZ_CHECK(atomic_load(&fz_child_errors) == 0, "a nested execute failed");
	FZ_CHECK(atomic_load(&fz_inside_errors) == 0, "wait/resize/destroy from a task was not EDEADLK");
}

static void fz_destroy(void)
{
	int rc = conc_pool_destroy(fz_pool);
	FZ_CHECK(rc == 0, "destroy: %d", rc);
	fz_check_done("destroy");
	/* every worker ever started (create and grows) stopped */
	FZ_CHECK(atomic_load(&fz_stopped) == atomic_load(&fz_started),
		 "on_stop ran %lu times, on_start %lu", atomic_load(&fz_stopped),
		 atomic_load(&fz_started));
	fz_pool = NULL;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	fz_at = 0;
	if (!fz_pool)
		fz_create(2, 0);
	for (fz_at = 0; fz_at < size; fz_at++) {
		unsigned op = data[fz_at] & 7, arg = data[fz_at] >> 3;
		int rc;
		switch (op) {
		case 0: /* execute a tree of depth 0..3 */
		case 1: {
			uintptr_t depth = arg % 4;
			rc = conc_pool_execute(fz_pool, fz_task, (void *)depth);
			FZ_CHECK(rc == 0, "execute: %d", rc);
			fz_expected += (2ul << depth) - 1;
			break;
		}
		case 2: /* execute a batch */
			for (unsigned i = 0; i <= arg; i++) {
				rc = conc_pool_execute(fz_pool, fz_task, NULL);
				FZ_CHECK(rc == 0, "execute: %d", rc);
				fz_expected++;
			}
			break;
		case 3: /* wait */
			rc = conc_pool_wait(fz_pool);
			FZ_CHECK(rc == 0, "wait: %d", rc);
			fz_check_done("wait");
			/* exact: nothing runs */
			FZ_CHECK(conc_pool_queued(fz_pool) == 0, "queued %zu after wait",
				 conc_pool_queued(fz_pool));
			FZ_CHECK(conc_pool_active(fz_pool) <= fz_threads, "active %u of %u",
				 conc_pool_active(fz_pool), fz_threads);
			break;
		case 4: /* resize to 1..4 (args 28..31), else the queries */
			if (arg < 28) {
				FZ_CHECK(conc_pool_threads(fz_pool) == fz_threads, "threads %u, model %u",
					 conc_pool_threads(fz_pool), fz_threads);
				FZ_CHECK(conc_pool_active(fz_pool) <= fz_threads, "active %u of %u",
					 conc_pool_active(fz_pool), fz_threads);
				break;
			}
			rc = conc_pool_resize(fz_pool, 1 + arg % 4);
			FZ_CHECK(rc == 0, "resize(%u): %d", 1 + arg % 4, rc);
			fz_threads = 1 + arg % 4;
			FZ_CHECK(conc_pool_threads(fz_pool) == fz_threads, "threads %u after resize(%u)",
				 conc_pool_threads(fz_pool), fz_threads);
			/* a shrink returns after the removed workers ran on_stop */
			FZ_CHECK(atomic_load(&fz_started) - atomic_load(&fz_stopped) == fz_threads,
				 "%lu on_start, %lu on_stop, %u threads", atomic_load(&fz_started),
				 atomic_load(&fz_stopped), fz_threads);
			break;
		case 5: /* bad arguments: the documented errno, nothing changes */
			FZ_CHECK(conc_pool_execute(fz_pool, NULL, NULL) == EINVAL, "execute(fn NULL)");
			FZ_CHECK(conc_pool_execute(NULL, fz_task, NULL) == EINVAL, "execute(NULL)");
			FZ_CHECK(conc_pool_resize(fz_pool, 0) == EINVAL, "resize(0)");
			FZ_CHECK(conc_pool_resize(fz_pool, CONC_POOL_MAX_THREADS + 1) == EINVAL,
				 "resize(MAX + 1)");
			FZ_CHECK(conc_pool_resize(NULL, 1) == EINVAL, "resize(NULL)");
			FZ_CHECK(conc_pool_wait(NULL) == EINVAL, "wait(NULL)");
			FZ_CHECK(conc_pool_destroy(NULL) == EINVAL, "destroy(NULL)");
			FZ_CHECK(conc_pool_threads(fz_pool) == fz_threads, "threads %u, model %u",
				 conc_pool_threads(fz_pool), fz_threads);
			break;
		case 6: /* a task calling wait/resize/destroy on its own pool */
			rc = conc_pool_execute(fz_pool, fz_bad_task, NULL);
			FZ_CHECK(rc == 0, "execute: %d", rc);
			fz_expected++;
			break;
		case 7: /* args 30, 31: destroy (it finishes what is queued), then
			 * a new pool (with max_queued 2 or not); else a task */
			if (arg < 30) {
				rc = conc_pool_execute(fz_pool, fz_task, NULL);
				FZ_CHECK(rc == 0, "execute: %d", rc);
				fz_expected++;
				break;
			}
			fz_destroy();
			fz_create(1 + arg % 3, arg & 1 ? 2 : 0);
			break;
		}
	}
	return 0;
}
