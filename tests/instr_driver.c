/*
 * instr_driver.c - single-threaded loops for the instruction-count guard.
 *
 *   instr_driver OP N     run OP's loop N times inside instr_measured()
 *   instr_driver --list   the ops compiled in, one a line
 *
 * tests/instr_check.py runs each op under valgrind --tool=callgrind
 * --toggle-collect=instr_measured, at two N, and divides the difference of
 * the instruction counts by the difference of the N: what is left is the
 * cost of one operation (amortised: collection inside retire, node
 * allocation inside push), with start-up and one-time costs cancelled out.
 * Set-up and the check of the result run outside instr_measured, so they
 * cost nothing; a wrong result exits 1, so a guard never passes on a loop
 * that stopped doing the work.
 *
 * An op is compiled in when its primitive is (meson defines
 * CONC_INSTR_<PRIM> when src/<prim>.c exists).  Adding one: a prepare /
 * loop / check triple and a line in `ops` below, a line in
 * tests/meson.build's instr_ops, and its budget line in
 * tests/instr_budget.txt.
 */
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conc/epoch.h"
#if CONC_INSTR_QUEUE
#include "conc/queue.h"
#endif
#if CONC_INSTR_STACK
#include "conc/stack.h"
#endif
#if CONC_INSTR_POOL
#include "conc/pool.h"
#endif

typedef struct instr_op {
	const char *name;
	int (*prepare)(unsigned long n); /* 0 or an errno value */
	void (*loop)(unsigned long n);   /* the measured part */
	int (*check)(unsigned long n);   /* 0 if the loop did its work */
} instr_op;

static int fail(const char *what)
{
	fprintf(stderr, "instr_driver: %s\n", what);
	return 1;
}

/* ---- epoch --------------------------------------------------------------- */

static conc_epoch *dom;

static int epoch_prepare(unsigned long n)
{
	(void)n;
	dom = conc_epoch_global();
	if (conc_epoch_register(dom))
		return 1;
	for (int i = 0; i < 1000; i++) { /* the fast path is warm */
		conc_epoch_pin(dom);
		conc_epoch_unpin(dom);
	}
	return 0;
}

static void pin_unpin_loop(unsigned long n)
{
	for (unsigned long i = 0; i < n; i++) {
		conc_epoch_pin(dom);
		conc_epoch_unpin(dom);
	}
}

static int pin_unpin_check(unsigned long n)
{
	(void)n;
	return conc_epoch_is_pinned(dom) ? fail("still pinned") : 0;
}

static conc_epoch_node *nodes;
static unsigned long reclaimed;

static void count_node(conc_epoch_node *node)
{
	(void)node;
	reclaimed++; /* one thread: callbacks run on it */
}

static int retire_prepare(unsigned long n)
{
	if (epoch_prepare(n))
		return 1;
	nodes = calloc(n, sizeof *nodes);
	return nodes ? 0 : fail("out of memory");
}

static void retire_loop(unsigned long n)
{
	for (unsigned long i = 0; i < n; i++)
		conc_epoch_retire(dom, &nodes[i], count_node);
}

static int retire_check(unsigned long n)
{
	if (conc_epoch_barrier(dom))
		return fail("conc_epoch_barrier failed");
	free(nodes);
	return reclaimed == n ? 0 : fail("not every retired node was reclaimed");
}

/* ---- queue and stack: push n, then pop n ----------------------------------- */

#if CONC_INSTR_QUEUE || CONC_INSTR_STACK
static uintptr_t popped_sum;

static uintptr_t expected_sum(unsigned long n)
{
	return (uintptr_t)n * (n + 1) / 2;
}
#endif

/* One set of push/pop ops for a container whose API is conc_<kind>_*. */
#define INSTR_CONTAINER(kind)                                                        \
	static conc_##kind *kind##_c;                                                \
	static int kind##_create(unsigned long n)                                    \
	{                                                                            \
		(void)n;                                                             \
		if (conc_##kind##_create(&kind##_c))                                 \
			return fail("conc_" #kind "_create failed");                 \
		for (uintptr_t i = 1; i <= 1000; i++) { /* warm the node cache */    \
			void *x;                                                     \
			if (conc_##kind##_push(kind##_c, (void *)i))                 \
				return fail("conc_" #kind "_push failed");           \
			if (!conc_##kind##_try_pop(kind##_c, &x))                    \
				return fail("conc_" #kind "_try_pop found nothing"); \
		}                                                                    \
		return 0;                                                            \
	}                                                                            \
	static void kind##_push_loop(unsigned long n)                                \
	{                                                                            \
		for (uintptr_t i = 1; i <= n; i++)                                   \
			if (conc_##kind##_push(kind##_c, (void *)i))                 \
				return;                                              \
	}                                                                            \
	static void kind##_pop_loop(unsigned long n)                                 \
	{                                                                            \
		for (unsigned long i = 0; i < n; i++) {                              \
			void *x;                                                     \
			if (!conc_##kind##_try_pop(kind##_c, &x))                    \
				return;                                              \
			popped_sum += (uintptr_t)x;                                  \
		}                                                                    \
	}                                                                            \
	static int kind##_check_empty(void)                                          \
	{                                                                            \
		void *x;                                                             \
		bool more = conc_##kind##_try_pop(kind##_c, &x);                     \
		conc_##kind##_destroy(kind##_c, NULL);                               \
		return more ? fail("conc_" #kind " has items left over") : 0;        \
	}                                                                            \
	static int kind##_push_check(unsigned long n)                                \
	{                                                                            \
		kind##_pop_loop(n);                                                  \
		if (popped_sum != expected_sum(n))                                   \
			return fail("conc_" #kind ": pushed items went missing");    \
		return kind##_check_empty();                                         \
	}                                                                            \
	static int kind##_pop_prepare(unsigned long n)                               \
	{                                                                            \
		if (kind##_create(n))                                                \
			return 1;                                                    \
		for (uintptr_t i = 1; i <= n; i++)                                   \
			if (conc_##kind##_push(kind##_c, (void *)i))                 \
				return fail("conc_" #kind "_push failed");           \
		return 0;                                                            \
	}                                                                            \
	static int kind##_pop_check(unsigned long n)                                 \
	{                                                                            \
		if (popped_sum != expected_sum(n))                                   \
			return fail("conc_" #kind ": popped the wrong items");       \
		return kind##_check_empty();                                         \
	}

#if CONC_INSTR_QUEUE
INSTR_CONTAINER(queue)
#endif
#if CONC_INSTR_STACK
INSTR_CONTAINER(stack)
#endif

/* ---- pool: execute n tasks from outside the pool --------------------------- */

#if CONC_INSTR_POOL
/* The one worker sits in a gate task while the main thread executes, so
 * every execute takes the same path (queue a task, nobody to wake) instead
 * of one that depends on where the worker happens to be. */
static conc_pool *pool;
static unsigned long tasks_run; /* __atomic: tasks run on the worker */
static int gate_state;          /* __atomic: 0 closed, 1 worker inside, 2 open */

static void task(void *arg)
{
	(void)arg;
	__atomic_fetch_add(&tasks_run, 1, __ATOMIC_RELAXED); /* read after wait */
}

static void gate(void *arg)
{
	(void)arg;
	__atomic_store_n(&gate_state, 1, __ATOMIC_RELEASE); /* pairs with prepare */
	while (__atomic_load_n(&gate_state, __ATOMIC_ACQUIRE) != 2)
		sched_yield();
}

static int pool_prepare(unsigned long n)
{
	(void)n;
	conc_pool_config cfg = {.threads = 1, .name = "instr"};
	if (conc_pool_create(&pool, &cfg))
		return fail("conc_pool_create failed");
	for (int i = 0; i < 1000; i++) /* the worker is up, the queues warm */
		if (conc_pool_execute(pool, task, NULL))
			return fail("conc_pool_execute failed");
	if (conc_pool_wait(pool))
		return fail("conc_pool_wait failed");
	__atomic_store_n(&tasks_run, 0, __ATOMIC_RELAXED);
	if (conc_pool_execute(pool, gate, NULL))
		return fail("conc_pool_execute failed");
	while (__atomic_load_n(&gate_state, __ATOMIC_ACQUIRE) != 1)
		sched_yield();
	return 0;
}

static void pool_execute_loop(unsigned long n)
{
	for (unsigned long i = 0; i < n; i++)
		if (conc_pool_execute(pool, task, NULL))
			return;
}

static int pool_check(unsigned long n)
{
	__atomic_store_n(&gate_state, 2, __ATOMIC_RELEASE);
	if (conc_pool_wait(pool))
		return fail("conc_pool_wait failed");
	unsigned long ran = __atomic_load_n(&tasks_run, __ATOMIC_RELAXED);
	if (conc_pool_destroy(pool))
		return fail("conc_pool_destroy failed");
	return ran == n ? 0 : fail("not every task ran");
}
#endif

static const instr_op ops[] = {
	{"epoch_pin_unpin", epoch_prepare, pin_unpin_loop, pin_unpin_check},
	{"epoch_retire", retire_prepare, retire_loop, retire_check},
#if CONC_INSTR_QUEUE
	{"queue_push", queue_create, queue_push_loop, queue_push_check},
	{"queue_pop", queue_pop_prepare, queue_pop_loop, queue_pop_check},
#endif
#if CONC_INSTR_STACK
	{"stack_push", stack_create, stack_push_loop, stack_push_check},
	{"stack_pop", stack_pop_prepare, stack_pop_loop, stack_pop_check},
#endif
#if CONC_INSTR_POOL
	{"pool_execute", pool_prepare, pool_execute_loop, pool_check},
#endif
};

/* The only function callgrind counts (--toggle-collect=instr_measured). */
__attribute__((noinline)) void instr_measured(const instr_op *op, unsigned long n);
__attribute__((noinline)) void instr_measured(const instr_op *op, unsigned long n)
{
	op->loop(n);
	__asm__ __volatile__("" ::: "memory");
}

int main(int argc, char **argv)
{
	size_t nops = sizeof ops / sizeof ops[0];
	if (argc == 2 && !strcmp(argv[1], "--list")) {
		for (size_t i = 0; i < nops; i++)
			printf("%s\n", ops[i].name);
		return 0;
	}
	if (argc != 3 || atol(argv[2]) <= 0) {
		fprintf(stderr, "usage: %s OP N | --list\n", argv[0]);
		return 2;
	}
	unsigned long n = (unsigned long)atol(argv[2]);
	for (size_t i = 0; i < nops; i++) {
		if (strcmp(argv[1], ops[i].name))
			continue;
		if (ops[i].prepare(n))
			return 1;
		instr_measured(&ops[i], n);
		return ops[i].check(n);
	}
	fprintf(stderr, "%s: no op %s in this build (see --list)\n", argv[0], argv[1]);
	return 2;
}
