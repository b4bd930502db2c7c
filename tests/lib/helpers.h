/*
 * helpers.h - small helpers several test files share: the process's thread
 * count, a 1 ms nap, a gate threads wait at, and pool hooks and a task
 * that count.  No cmocka: faults_nproc.c (a plain program) uses them too.
 */
#ifndef CONC_TEST_HELPERS_H
#define CONC_TEST_HELPERS_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

/* Threads of this process now (entries of /proc/self/task; 0 without it). */
unsigned conc_test_threads_now(void);

/* Sleep 1 ms: polling, not synchronising. */
void conc_test_nap(void);

/*
 * At most n threads in the process, allowing for threads that were joined
 * but are still leaving the kernel: pthread_join returns when the exiting
 * thread's tid is cleared, a moment before the task disappears from
 * /proc (longer under qemu-user).  Gives up after 10 s.
 */
bool conc_test_threads_at_most(unsigned n);

/* A gate: threads wait in conc_test_gate_wait until it opens. */
typedef struct conc_test_gate {
	pthread_mutex_t m;
	pthread_cond_t c;
	int open, waiting;
} conc_test_gate;

void conc_test_gate_init(conc_test_gate *g);
void conc_test_gate_wait(conc_test_gate *g);
/* Wait until n threads are inside conc_test_gate_wait. */
void conc_test_gate_await_waiters(conc_test_gate *g, int n);
void conc_test_gate_open(conc_test_gate *g);
void conc_test_gate_destroy(conc_test_gate *g);

/* What the three callbacks below count (ctx and arg are ignored). */
typedef struct conc_test_counts {
	atomic_int starts, stops; /* pool on_start / on_stop calls */
	atomic_long ran;          /* tasks run */
} conc_test_counts;

extern conc_test_counts conc_test_counted;

void conc_test_count_start(unsigned index, void *ctx); /* a pool's on_start */
void conc_test_count_stop(unsigned index, void *ctx);  /* a pool's on_stop */
void conc_test_count_task(void *arg);                  /* a task */

#endif
