/* helpers.c - small helpers several test files share (helpers.h). */
#include "helpers.h"

#include <dirent.h>
#include <stddef.h>
#include <time.h>

unsigned conc_test_threads_now(void)
{
	DIR *d = opendir("/proc/self/task");
	if (!d)
		return 0;
	unsigned n = 0;
	struct dirent *e;
	while ((e = readdir(d)))
		n += e->d_name[0] != '.';
	closedir(d);
	return n;
}

void conc_test_nap(void)
{
	struct timespec ts = {0, 1000000};
	nanosleep(&ts, NULL);
}

bool conc_test_threads_at_most(unsigned n)
{
	for (int i = 0; i < 10000; i++) {
		if (conc_test_threads_now() <= n)
			return true;
		conc_test_nap();
	}
	return false;
}

void conc_test_gate_init(conc_test_gate *g)
{
	pthread_mutex_init(&g->m, NULL);
	pthread_cond_init(&g->c, NULL);
	g->open = g->waiting = 0;
}

void conc_test_gate_wait(conc_test_gate *g)
{
	pthread_mutex_lock(&g->m);
	g->waiting++;
	pthread_cond_broadcast(&g->c);
	while (!g->open)
		pthread_cond_wait(&g->c, &g->m);
	pthread_mutex_unlock(&g->m);
}

void conc_test_gate_await_waiters(conc_test_gate *g, int n)
{
	pthread_mutex_lock(&g->m);
	while (g->waiting < n)
		pthread_cond_wait(&g->c, &g->m);
	pthread_mutex_unlock(&g->m);
}

void conc_test_gate_open(conc_test_gate *g)
{
	pthread_mutex_lock(&g->m);
	g->open = 1;
	pthread_cond_broadcast(&g->c);
	pthread_mutex_unlock(&g->m);
}

void conc_test_gate_destroy(conc_test_gate *g)
{
	pthread_mutex_destroy(&g->m);
	pthread_cond_destroy(&g->c);
}

conc_test_counts conc_test_counted;

void conc_test_count_start(unsigned index, void *ctx)
{
	(void)index;
	(void)ctx;
	atomic_fetch_add(&conc_test_counted.starts, 1);
}

void conc_test_count_stop(unsigned index, void *ctx)
{
	(void)index;
	(void)ctx;
	atomic_fetch_add(&conc_test_counted.stops, 1);
}

void conc_test_count_task(void *arg)
{
	(void)arg;
	atomic_fetch_add(&conc_test_counted.ran, 1);
}
