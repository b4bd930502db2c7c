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

#include "conc/parallel.h"
#include "conc/pool.h"

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

int main(int argc, char **argv)
{
	const char *mode = argc > 1 ? argv[1] : "plain";
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
