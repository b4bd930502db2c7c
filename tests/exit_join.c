/*
 * exit_join.c - the global pool at process exit (issue 15).
 *
 *   exit_join plain     conc_parallel_for on the global pool, then return
 *                       from main: run under valgrind --error-exitcode, the
 *                       workers must be joined (no thread left, no leak).
 *   exit_join worker    exit() from inside a task on a worker.
 *   exit_join busy      main returns while another thread sits inside a
 *                       pool task that never returns.
 *   exit_join fork      a fork child uses the global pool and exits.
 *   exit_join broadcast a conc_pool_broadcast that reaches the pool's admin
 *                       lock while the exit handler holds it returns EPIPE
 *                       (the workers are gone) instead of waiting for them
 *                       for ever; an atexit handler registered before the
 *                       pool's (so run after it) joins the broadcaster,
 *                       with a deadline as a watchdog (fault-hooks builds:
 *                       the pool.broadcast.lock test point holds it there).
 *   exit_join resize    as broadcast, for conc_pool_resize (growing): it
 *                       must return EPIPE, not start workers for a pool
 *                       the exit handler has stopped (the
 *                       pool.resize.lock test point holds it there).
 *   exit_join group     main returns while a task of a group on the global
 *                       pool never returns; after the exit handler (an
 *                       atexit handler registered before the pool's),
 *                       conc_group_destroy of that group says EBUSY: it
 *                       must not free the group under its running task.
 * Every mode must exit with status 0,
 * promptly: never deadlock, never abort.  meson's timeout catches a hang.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <errno.h>
#include <sched.h>
#include <time.h>

#include "conc/parallel.h"
#include "conc/pool.h"
#include "base/fault.h"
#include "pool/pool_internal.h"

static atomic_ulong total;

static int body(size_t lo, size_t hi, void *ctx)
{
	(void)ctx;
	unsigned long s = 0;
	for (size_t i = lo; i < hi; i++)
		s += i;
	atomic_fetch_add(&total, s);
	return 0;
}

static int sum_check(void)
{
	atomic_store(&total, 0);
	if (conc_parallel_for(NULL, 0, 10000, 10, body, NULL) != 0)
		return 1;
	return atomic_load(&total) == 10000ul * 9999 / 2 ? 0 : 1;
}

static void exit_task(void *arg)
{
	(void)arg;
	exit(0); /* main only pauses: only this ends the process */
}

static pthread_mutex_t never = PTHREAD_MUTEX_INITIALIZER;
static atomic_int inside;

/* Blocks for ever: main holds `never` until the process ends. */
static void stuck_task(void *arg)
{
	(void)arg;
	atomic_store(&inside, 1);
	pthread_mutex_lock(&never);
}

#if defined(CONC_FAULT_HOOKS) && CONC_FAULT_HOOKS
static pthread_t bc_thread;
static atomic_int bc_at_lock, bc_result = -1;
static conc_pool *bc_pool;
static const char *bc_point = "pool.broadcast.lock";
static int bc_resize; /* resize mode: the broadcaster resizes instead */

/* Holds the broadcaster just before it takes the admin lock until the exit
 * handler has marked the pool gone (which it does holding that lock). */
static void bc_hook(const char *point)
{
	if (strcmp(point, bc_point) != 0)
		return;
	atomic_store(&bc_at_lock, 1);
	while (conc__pool_usable(bc_pool))
		sched_yield();
}

static void bc_noop(unsigned index, void *ctx)
{
	(void)index;
	(void)ctx;
}

static void *bc_main(void *arg)
{
	(void)arg;
	if (bc_resize)
		atomic_store(&bc_result, conc_pool_resize(bc_pool, conc_pool_threads(bc_pool) + 1));
	else
		atomic_store(&bc_result, conc_pool_broadcast(bc_pool, bc_noop, NULL));
	return NULL;
}

/* Runs after the global pool's exit handler (registered before it). */
static void bc_at_exit(void)
{
	struct timespec dl;
	clock_gettime(CLOCK_REALTIME, &dl);
	dl.tv_sec += 10; /* a watchdog: the broadcast returns at once or never */
	if (pthread_timedjoin_np(bc_thread, NULL, &dl) != 0) {
		fprintf(stderr, "exit_join %s: the call still waits 10 s after the exit handler\n",
			bc_resize ? "resize" : "broadcast");
		_exit(1);
	}
	int r = atomic_load(&bc_result);
	if (r != EPIPE) {
		fprintf(stderr, "exit_join %s: returned %d, want EPIPE\n",
			bc_resize ? "resize" : "broadcast", r);
		_exit(2);
	}
}

static int broadcast_mode(void)
{
	if (atexit(bc_at_exit) != 0)
		return 1;
	if (sum_check()) /* makes the global pool: its handler runs first */
		return 1;
	bc_pool = conc_pool_global();
	conc__test_set_hook(bc_hook);
	if (pthread_create(&bc_thread, NULL, bc_main, NULL) != 0)
		return 1;
	while (!atomic_load(&bc_at_lock))
		sched_yield();
	return 0; /* the exit handler runs with the broadcaster at the lock */
}

static int resize_mode(void)
{
	bc_point = "pool.resize.lock";
	bc_resize = 1;
	return broadcast_mode();
}
#else
static int resize_mode(void)
{
	return 0; /* needs the test point: nothing to check */
}

static int broadcast_mode(void)
{
	return 0; /* needs the test point: nothing to check */
}
#endif

static conc_group *gd_group;

static int gd_stuck(void *arg)
{
	(void)arg;
	atomic_store(&inside, 1);
	pthread_mutex_lock(&never);
	return 0;
}

/* Runs after the global pool's exit handler (registered before it), which
 * left the worker inside gd_stuck running. */
static void gd_at_exit(void)
{
	int r = conc_group_destroy(gd_group);
	if (r != EBUSY) {
		fprintf(stderr, "exit_join group: destroy with a task running returned %d, want EBUSY\n", r);
		_exit(1);
	}
}

static int group_mode(void)
{
	if (atexit(gd_at_exit) != 0)
		return 1;
	pthread_mutex_lock(&never);
	if (sum_check()) /* makes the global pool: its handler runs first */
		return 1;
	if (conc_group_create(&gd_group, NULL) || conc_group_run(gd_group, gd_stuck, NULL))
		return 1;
	while (!atomic_load(&inside))
		sched_yield();
	return 0; /* with a worker inside gd_stuck, a task of gd_group */
}

int main(int argc, char **argv)
{
	const char *mode = argc > 1 ? argv[1] : "plain";
	if (!strcmp(mode, "broadcast"))
		return broadcast_mode();
	if (!strcmp(mode, "group"))
		return group_mode();
	if (!strcmp(mode, "resize"))
		return resize_mode();
	if (sum_check())
		return 1;
	if (!strcmp(mode, "plain"))
		return 0;
	if (!strcmp(mode, "worker")) {
		if (conc_pool_execute(conc_pool_global(), exit_task, NULL))
			return 1;
		for (;;)
			pause(); /* the task's exit(42) ends the process */
	}
	if (!strcmp(mode, "busy")) {
		pthread_mutex_lock(&never);
		if (conc_pool_execute(conc_pool_global(), stuck_task, NULL))
			return 1;
		while (!atomic_load(&inside))
			sched_yield();
		return 0; /* with a worker inside stuck_task */
	}
	if (!strcmp(mode, "fork")) {
		pid_t pid = fork();
		if (pid < 0)
			return 1;
		if (pid == 0)
			exit(sum_check() ? 3 : 0); /* a new global pool, joined at exit */
		int status;
		if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status))
			return 1;
		return WEXITSTATUS(status);
	}
	fprintf(stderr, "exit_join: unknown mode %s\n", mode);
	return 2;
}
