/*
 * scoped_threads.c - the tutorial's scoped threads: one thread for each n in
 * 0..999 computes n*n + n*5 + 250 into the caller's array (on the caller's
 * stack: the scope joins every thread before conc_scope_run returns).
 */
#include <stdint.h>
#include <stdio.h>

#include <conc/scope.h>

enum { N = 1000 };

struct job {
	uint64_t n, result;
};

static void *compute(conc_scope *s, void *arg)
{
	(void)s;
	struct job *j = arg;
	j->result = j->n * j->n + j->n * 5 + 250;
	return NULL;
}

static void body(conc_scope *s, void *ctx)
{
	struct job *jobs = ctx;
	for (int n = 0; n < N; n++) {
		jobs[n].n = (uint64_t)n;
		conc_scope_spawn(s, compute, &jobs[n], NULL); /* errors: see run's result */
	}
}

int main(void)
{
	struct job jobs[N]; /* on this stack: the scope outlives no thread */
	int err = conc_scope_run(body, jobs);
	uint64_t sum = 0;
	for (int n = 0; n < N; n++)
		sum += jobs[n].result;
	printf("Sum of results: %llu\n", (unsigned long long)sum);
	return err != 0 || sum != 335581000u;
}
