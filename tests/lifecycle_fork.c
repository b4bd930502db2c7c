/*
 * lifecycle_fork.c - fork() while each primitive is busy in another thread
 * (issue 15, the test class of fault 3).
 *
 * For each primitive a thread keeps it busy - epoch advance (retire, flush,
 * barrier, in a private domain and the global one), queue push/pop, stack
 * push/pop with depot traffic (runs longer than a magazine, threads that
 * exit), pool steals (tasks that execute children), scope spawns, parallel
 * loops and joins on the global pool (outside tickets, helping waiters),
 * channels (bounded sends and receives, unbounded ones, rendezvous hand-overs
 * to a partner that sleeps in its receive) - while the main thread forks
 * again and again.  Each child uses EVERY primitive
 * from scratch (a private epoch domain: pin, retire, barrier, destroy; a
 * queue and a stack: push, pop, destroy, and the last stack's destroy drains
 * the node depot; conc_scope_run with a spawn; a fresh pool created, used
 * and destroyed; a parallel loop on the global pool, which the child gets
 * anew; a channel of each flavour, and in the channel row a rendezvous
 * hand-over between two threads of the child) and exits with 0, or with the
 * number of the step that went wrong.  In the channel row the child also
 * receives the items of a channel that no thread was using at the fork,
 * then destroys the channels the busy threads were inside (conc/chan.h,
 * "fork()": destroy is all a child may do with those).  The parent waits for each child with a deadline far beyond its
 * work (conc_test_wait_child) and counts hangs (killed at the deadline) and
 * bad exits; both must be 0.  A lock that a fork can catch held, without a
 * handler (base/atfork.h), shows up here as hangs.
 *
 * Forks per primitive: 600 x CONC_STRESS_SCALE (channels: 500; 6 at
 * scale 0), a
 * twentieth in sanitizer builds (a fork there costs ~40 ms, its shadow
 * mappings).  The forks that matter most do not depend on the count: for
 * the stack every WINDOW_EVERY-th fork is placed inside the depot lock on
 * purpose (the window below).  There a child may also hang inside the sanitizer's own
 * allocator (gcc 12's libasan takes no locks around fork): such a child is
 * recognised (conc_test_wait_child), killed, counted apart as
 * sanitizer_hangs and printed, and excused up to a quarter of the forks.
 * Under TSan the children skip scope and pool, and the suite says so: TSan
 * does not support starting threads in the child of a threaded fork.  The test names hold "fork", so the AArch64 runs
 * under qemu-user skip them too (CONC_TEST_SKIP=*fork*).
 */
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "testutil.h"

#include "conc/chan.h"
#include "conc/epoch.h"
#include "conc/parallel.h"
#include "conc/pool.h"
#include "conc/queue.h"
#include "conc/scope.h"
#include "conc/stack.h"

/* ---- what the child does ------------------------------------------------- */

struct obj {
	conc_epoch_node node;
	atomic_int *ran;
};

static void obj_free(conc_epoch_node *n)
{
	struct obj *o = (struct obj *)(void *)n; /* node is the first member */
	if (o->ran)
		atomic_fetch_add_explicit(o->ran, 1, memory_order_relaxed);
	free(o);
}

static void *child_spawned(conc_scope *s, void *arg)
{
	(void)s;
	return (void *)((uintptr_t)arg * 2);
}

static void child_scope_body(conc_scope *s, void *ctx)
{
	conc_thread *h;
	uintptr_t *out = ctx;
	void *r = NULL;
	if (conc_scope_spawn(s, child_spawned, (void *)(uintptr_t)21, &h) == 0 &&
	    conc_thread_join(h, &r) == 0)
		*out = (uintptr_t)r;
}

static void child_task(void *arg)
{
	atomic_fetch_add_explicit((atomic_int *)arg, 1, memory_order_relaxed);
}

/* Every primitive, from scratch; `inherited`, when not NULL, is a stack
 * the parent's busy thread was using: destroyed last, so that its destroy
 * is the last one and drains the depot.  0, or the failed step. */
static int sum_body(size_t lo, size_t hi, void *ctx)
{
	size_t s = 0;
	for (size_t i = lo; i < hi; i++)
		s += i;
	atomic_fetch_add_explicit((atomic_size_t *)ctx, s, memory_order_relaxed);
	return 0;
}

/* The channel row's inherited channels: [0..2] the busy ones (bounded,
 * unbounded, rendezvous), [3] an idle bounded one holding 1, 2, 3. */
static conc_chan *fork_chans[4];
static unsigned long fork_chan_drops;

static void count_drop(void *item)
{
	(void)item;
	fork_chan_drops++;
}

static void *child_chan_receiver(void *arg)
{
	conc_chan *c = arg;
	void *it;
	uintptr_t want = 1;
	while (conc_chan_recv(c, &it) == 0)
		if (it != (void *)want++)
			return (void *)1;
	return want == 11 ? NULL : (void *)1;
}

/* Channels in the child: fresh ones of each flavour; in the channel row,
 * the inherited ones.  0, or the failed step. */
static int child_chans(bool threads)
{
	void *it;
	conc_chan *c;
	if (conc_chan_create(&c, 2) != 0)
		return 70;
	if (conc_chan_send(c, (void *)1) || conc_chan_send(c, (void *)2) ||
	    conc_chan_send_timeout(c, (void *)3, 0) != ETIMEDOUT)
		return 71;
	if (conc_chan_recv(c, &it) || it != (void *)1 || conc_chan_recv(c, &it) || it != (void *)2)
		return 72;
	conc_chan_destroy(c, NULL);
	if (conc_chan_create(&c, CONC_CHAN_UNBOUNDED) != 0)
		return 73;
	for (uintptr_t i = 1; i <= 100; i++)
		if (conc_chan_send(c, (void *)i) != 0)
			return 74;
	conc_chan_close(c);
	for (uintptr_t i = 1; i <= 100; i++)
		if (conc_chan_recv(c, &it) || it != (void *)i)
			return 75;
	if (conc_chan_recv(c, &it) != EPIPE)
		return 76;
	conc_chan_destroy(c, NULL);
	if (conc_chan_create(&c, 0) != 0)
		return 77;
	if (conc_chan_send_timeout(c, (void *)1, 0) != ETIMEDOUT)
		return 78;
	if (threads && fork_chans[0]) {
		/* a hand-over to a receiver that may be asleep in the futex */
		pthread_t t;
		void *bad = (void *)1;
		if (pthread_create(&t, NULL, child_chan_receiver, c) != 0)
			return 79;
		for (uintptr_t i = 1; i <= 10; i++)
			if (conc_chan_send(c, (void *)i) != 0)
				return 80;
		conc_chan_close(c);
		if (pthread_join(t, &bad) != 0 || bad)
			return 81;
	}
	conc_chan_destroy(c, NULL);
	if (!fork_chans[0])
		return 0;
	/* the idle inherited channel works as before, with its items */
	c = fork_chans[3];
	for (uintptr_t i = 1; i <= 3; i++)
		if (conc_chan_recv(c, &it) || it != (void *)i)
			return 82;
	if (conc_chan_recv_timeout(c, &it, 0) != ETIMEDOUT || conc_chan_send(c, (void *)4) ||
	    conc_chan_recv(c, &it) || it != (void *)4)
		return 83;
	conc_chan_destroy(c, NULL);
	/* the busy ones: destroy only (their drops run on what they hold) */
	for (int k = 0; k < 3; k++)
		conc_chan_destroy(fork_chans[k], count_drop);
	return 0;
}

static int child_main(conc_stack *inherited, bool threads)
{
	enum { N = 100 };
	/* epoch: a private domain, and the global one */
	conc_epoch *d;
	atomic_int ran = 0;
	if (conc_epoch_create(&d) != 0)
		return 10;
	conc_epoch_pin(d);
	for (int i = 0; i < N; i++) {
		struct obj *o = malloc(sizeof *o);
		if (!o)
			return 11;
		o->ran = &ran;
		conc_epoch_retire(d, &o->node, obj_free);
	}
	conc_epoch_unpin(d);
	if (conc_epoch_barrier(d) != 0 || atomic_load(&ran) != N)
		return 12;
	if (conc_epoch_destroy(d) != 0)
		return 13;
	if (conc_epoch_barrier(conc_epoch_global()) != 0)
		return 14;
	/* queue */
	conc_queue *q;
	if (conc_queue_create(&q) != 0)
		return 20;
	void *it;
	for (uintptr_t i = 1; i <= N; i++)
		if (conc_queue_push(q, (void *)i) != 0)
			return 21;
	for (uintptr_t i = 1; i <= N; i++)
		if (!conc_queue_try_pop(q, &it) || it != (void *)i)
			return 22;
	/* the batch calls: one push_n, one try_pop_n */
	void *batch[N];
	for (uintptr_t i = 0; i < N; i++)
		batch[i] = (void *)(i + 1);
	if (conc_queue_push_n(q, batch, N) != 0)
		return 23;
	if (conc_queue_try_pop_n(q, batch, N) != N)
		return 24;
	for (uintptr_t i = 0; i < N; i++)
		if (batch[i] != (void *)(i + 1))
			return 24;
	conc_queue_destroy(q, NULL);
	/* stack */
	conc_stack *s;
	if (conc_stack_create(&s) != 0)
		return 30;
	for (uintptr_t i = 1; i <= N; i++)
		if (conc_stack_push(s, (void *)i) != 0)
			return 31;
	for (uintptr_t i = N; i >= 1; i--)
		if (!conc_stack_try_pop(s, &it) || it != (void *)i)
			return 32;
	conc_stack_destroy(s, NULL);
	if (inherited)
		conc_stack_destroy(inherited, NULL); /* the last stack: drains the depot */
	int r = child_chans(threads);
	if (r)
		return r;
	if (!threads)
		return 0; /* TSan: no thread may start in this child */
	/* scope */
	uintptr_t got = 0;
	if (conc_scope_run(child_scope_body, &got) != 0 || got != 42)
		return 40;
	/* a fresh pool (not the parent's) */
	conc_pool *p;
	conc_pool_config cfg = {.threads = 2, .name = "fork-child"};
	atomic_int done = 0;
	if (conc_pool_create(&p, &cfg) != 0)
		return 50;
	for (int i = 0; i < 16; i++)
		if (conc_pool_execute(p, child_task, &done) != 0)
			return 51;
	if (conc_pool_wait(p) != 0 || atomic_load(&done) != 16)
		return 52;
	if (conc_pool_destroy(p) != 0)
		return 53;
	/* parallel: a loop on the global pool (the parent's may have been busy
	 * inside a loop of its own when the fork came) */
	atomic_size_t sum = 0;
	if (conc_parallel_for(NULL, 0, 10000, 64, sum_body, &sum) != 0 ||
	    atomic_load(&sum) != (size_t)10000 * 9999 / 2)
		return 60;
	return 0;
}

/* ---- the busy threads ------------------------------------------------------ */

typedef struct busy {
	atomic_int stop;
	atomic_ulong rounds; /* bumped per round: the forks wait for it to move */
	atomic_ulong errors; /* read by the main thread after the join */
	conc_epoch *d;
	conc_queue *q;
	conc_stack *s;
	conc_pool *p;
} busy;

static void bump(busy *b)
{
	atomic_fetch_add_explicit(&b->rounds, 1, memory_order_relaxed);
}

static void busy_fail(busy *b)
{
	atomic_fetch_add_explicit(&b->errors, 1, memory_order_relaxed);
}

static void *busy_epoch(void *arg)
{
	busy *b = arg;
	for (unsigned long r = 0; !atomic_load(&b->stop); r++) {
		conc_epoch *ds[2] = {b->d, conc_epoch_global()};
		for (int k = 0; k < 2; k++) {
			conc_epoch_pin(ds[k]);
			for (int i = 0; i < 16; i++) {
				struct obj *o = malloc(sizeof *o);
				if (!o) {
					busy_fail(b);
					break;
				}
				o->ran = NULL;
				conc_epoch_retire(ds[k], &o->node, obj_free);
			}
			conc_epoch_unpin(ds[k]);
			conc_epoch_flush(ds[k]);
			if (r % 16 == 0 && conc_epoch_barrier(ds[k]) != 0)
				busy_fail(b);
		}
		bump(b);
	}
	return NULL;
}

static void *busy_queue(void *arg)
{
	busy *b = arg;
	for (unsigned round = 0; !atomic_load(&b->stop); round++) {
		enum { N = 256 };
		void *it, *batch[N];
		if (round % 2) { /* the batch calls, every other round */
			for (uintptr_t i = 0; i < N; i++)
				batch[i] = (void *)(i + 1);
			if (conc_queue_push_n(b->q, batch, N) != 0 ||
			    conc_queue_try_pop_n(b->q, batch, N) != N)
				busy_fail(b);
			for (uintptr_t i = 0; i < N; i++)
				if (batch[i] != (void *)(i + 1))
					busy_fail(b);
			bump(b);
			continue;
		}
		for (uintptr_t i = 1; i <= N; i++)
			if (conc_queue_push(b->q, (void *)i) != 0)
				busy_fail(b);
		for (uintptr_t i = 1; i <= N; i++)
			if (!conc_queue_try_pop(b->q, &it) || it != (void *)i)
				busy_fail(b);
		bump(b);
	}
	return NULL;
}

/* The rendezvous partner: receives 1, 2, 3... until the close; it is
 * asleep in its receive at many of the forks. */
static void *chan_partner(void *arg)
{
	busy *b = arg;
	void *it;
	uintptr_t want = 1;
	int r;
	while ((r = conc_chan_recv(fork_chans[2], &it)) == 0)
		if (it != (void *)want++)
			busy_fail(b);
	if (r != EPIPE)
		busy_fail(b);
	return NULL;
}

static void *busy_chan(void *arg)
{
	busy *b = arg;
	pthread_t t;
	if (pthread_create(&t, NULL, chan_partner, b) != 0) {
		busy_fail(b);
		return NULL;
	}
	uintptr_t token = 1;
	while (!atomic_load(&b->stop)) {
		enum { N = 64 };
		void *it;
		for (uintptr_t i = 1; i <= N; i++) {
			if (conc_chan_send(fork_chans[0], (void *)i) != 0 ||
			    conc_chan_recv(fork_chans[0], &it) != 0 || it != (void *)i)
				busy_fail(b);
			if (conc_chan_send(fork_chans[1], (void *)i) != 0)
				busy_fail(b);
		}
		for (uintptr_t i = 1; i <= N; i++)
			if (conc_chan_recv(fork_chans[1], &it) != 0 || it != (void *)i)
				busy_fail(b);
		for (int i = 0; i < 4; i++)
			if (conc_chan_send(fork_chans[2], (void *)token++) != 0)
				busy_fail(b);
		bump(b);
	}
	conc_chan_close(fork_chans[2]);
	pthread_join(t, NULL);
	return NULL;
}

/* A short-lived thread: its exit hands its magazine's spare batch to the
 * depot. */
static void *stack_leaver(void *arg)
{
	busy *b = arg;
	void *it;
	for (uintptr_t i = 1; i <= 200; i++)
		if (conc_stack_push(b->s, (void *)i) != 0)
			busy_fail(b);
	for (int i = 0; i < 200; i++)
		if (!conc_stack_try_pop(b->s, &it))
			busy_fail(b);
	return NULL;
}

static void *busy_stack(void *arg)
{
	busy *b = arg;
	for (unsigned long r = 0; !atomic_load(&b->stop); r++) {
		/* runs much longer than a magazine (64 nodes): batches move to
		 * and from the depot */
		enum { N = 512 };
		for (uintptr_t i = 1; i <= N; i++)
			if (conc_stack_push(b->s, (void *)i) != 0)
				busy_fail(b);
		void *it;
		for (unsigned i = 0; i < N; i++)
			if (!conc_stack_try_pop(b->s, &it))
				busy_fail(b);
		conc_epoch_flush(conc_epoch_global());
		/* fewer thread exits under sanitizers: each takes their
		 * runtime's allocator and registry locks, which a child of a
		 * fork may inherit held (see conc_test_wait_child) */
		if (r % (CONC_TEST_SANITIZED ? 64 : 8) == 0) {
			pthread_t t;
			if (pthread_create(&t, NULL, stack_leaver, b) != 0)
				busy_fail(b);
			else
				pthread_join(t, NULL);
		}
		bump(b);
	}
	return NULL;
}

struct pool_root {
	conc_pool *p;
	atomic_int *count;
};

static void pool_leaf(void *arg)
{
	atomic_fetch_add_explicit((atomic_int *)arg, 1, memory_order_relaxed);
}

/* Executes its children from inside the pool: they land on this worker's
 * deque, where the other worker steals them. */
static void pool_root_task(void *arg)
{
	struct pool_root *r = arg;
	for (int i = 0; i < 8; i++)
		conc_pool_execute(r->p, pool_leaf, r->count);
}

static void *busy_pool(void *arg)
{
	busy *b = arg;
	while (!atomic_load(&b->stop)) {
		atomic_int count = 0;
		struct pool_root roots[4];
		for (int i = 0; i < 4; i++) {
			roots[i] = (struct pool_root){b->p, &count};
			if (conc_pool_execute(b->p, pool_root_task, &roots[i]) != 0)
				busy_fail(b);
		}
		if (conc_pool_wait(b->p) != 0 || atomic_load(&count) != 32)
			busy_fail(b);
		bump(b);
	}
	return NULL;
}

/* Loops and joins from an outside thread on the global pool: its workers
 * run pieces, the caller helps with its own call tree and reuses its
 * tickets in the injector. */
static void join_half(void *arg)
{
	sum_body(0, 1000, arg);
}

static void *busy_parallel(void *arg)
{
	busy *b = arg;
	while (!atomic_load(&b->stop)) {
		atomic_size_t sum = 0;
		if (conc_parallel_for(NULL, 0, 4096, 16, sum_body, &sum) != 0 ||
		    atomic_load(&sum) != (size_t)4096 * 4095 / 2)
			busy_fail(b);
		atomic_size_t j = 0;
		if (conc_join(NULL, join_half, &j, join_half, &j) != 0 ||
		    atomic_load(&j) != (size_t)2 * 1000 * 999 / 2)
			busy_fail(b);
		bump(b);
	}
	return NULL;
}

static void *scope_fn(conc_scope *s, void *arg)
{
	(void)s;
	return (void *)((uintptr_t)arg + 1);
}

static void busy_scope_body(conc_scope *s, void *ctx)
{
	busy *b = ctx;
	conc_thread *h[4];
	for (uintptr_t i = 0; i < 4; i++)
		if (conc_scope_spawn(s, scope_fn, (void *)i, &h[i]) != 0)
			h[i] = NULL;
	for (uintptr_t i = 0; i < 4; i++) {
		void *r = NULL;
		if (!h[i] || conc_thread_join(h[i], &r) != 0 || r != (void *)(i + 1))
			busy_fail(b);
	}
}

static void *busy_scope(void *arg)
{
	busy *b = arg;
	while (!atomic_load(&b->stop)) {
		if (conc_scope_run(busy_scope_body, b) != 0)
			busy_fail(b);
		bump(b);
	}
	return NULL;
}

/* ---- the depot window (test builds) ------------------------------------------ */

/*
 * Forks at random instants land inside the depot lock (held for a few
 * pointer moves once per 64 nodes) almost never, so in builds with the
 * hooks every WINDOW_EVERY-th fork of the stack case is made to land there:
 * the pause point in the depot lock stops the busy stack thread holding it,
 * the main thread forks, and the stopped thread is let go from the stack's
 * fork prepare handler (which must then wait for it) or, with no handler,
 * after fork has returned - so that child inherits the lock held and hangs
 * in its last stack destroy (tests/test_stack.c has the same test alone).
 */
#define WINDOW_EVERY 100
#if defined(CONC_FAULT_HOOKS) && CONC_FAULT_HOOKS
#include "base/fault.h"
#define HAVE_WINDOW 1

static struct {
	atomic_int armed;   /* 1: the next depot holder stops */
	atomic_int holding; /* it is stopped, holding the lock */
	atomic_int release; /* it may go */
} window;

static void window_pause(const char *point)
{
	if (strcmp(point, "stack.fork_prepare") == 0) {
		atomic_store(&window.release, 1);
		return;
	}
	int one = 1;
	if (strcmp(point, "stack.depot_locked") != 0 ||
	    !atomic_compare_exchange_strong(&window.armed, &one, 0))
		return;
	atomic_store(&window.holding, 1);
	while (!atomic_load(&window.release))
		sched_yield();
	atomic_store(&window.holding, 0);
}
#else
#define HAVE_WINDOW 0
#endif

/* ---- the parent ------------------------------------------------------------- */

/* Fork n times while fn keeps b's primitive busy; each fork waits until
 * the busy thread has finished another round since the last one, so that
 * every fork lands while it works. */
static void fork_while_busy(const char *prim, void *(*fn)(void *), busy *b, bool pass_stack)
{
	conc_test_watchdog(prim, 240);
	if (CONC_TEST_TSAN)
		print_message("lifecycle-fork: %s: under TSan the children skip scope and pool "
			      "(no thread may start in the child of a threaded fork there)\n",
			      prim);
	unsigned long n = conc_test_iters(fn == busy_chan ? 500 : 600, 20); /* see the top */
	pthread_t t;
	assert_int_equal(pthread_create(&t, NULL, fn, b), 0);
	unsigned long hangs = 0, bad_exits = 0, windows = 0, sanitizer_hangs = 0;
	int first_bad = 0;
#if HAVE_WINDOW
	if (pass_stack)
		conc__test_set_hook(window_pause);
#endif
	for (unsigned long i = 0; i < n; i++) {
		unsigned long r0 = atomic_load_explicit(&b->rounds, memory_order_relaxed);
		while (atomic_load_explicit(&b->rounds, memory_order_relaxed) == r0)
			sched_yield();
#if HAVE_WINDOW
		bool in_window = pass_stack && i % WINDOW_EVERY == 0;
		if (in_window) {
			windows++;
			atomic_store(&window.release, 0);
			atomic_store(&window.armed, 1);
			while (!atomic_load(&window.holding))
				sched_yield();
		}
#endif
		fflush(NULL); /* nothing buffered is written twice */
		pid_t pid = fork();
		assert_true(pid >= 0);
		if (pid == 0)
			_exit(child_main(pass_stack ? b->s : NULL, !CONC_TEST_TSAN));
#if HAVE_WINDOW
		if (in_window) {
			atomic_store(&window.release, 1); /* no handler let it go: we do */
			while (atomic_load(&window.holding))
				sched_yield();
		}
#endif
		int status = 0;
		bool in_san = false;
		int rc = conc_test_wait_child(pid, 10000, &status, &in_san);
		if (rc == ETIMEDOUT && in_san) {
			sanitizer_hangs++; /* see conc_test_wait_child */
		} else if (rc == ETIMEDOUT) {
			hangs++;
		} else if (rc != 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
			bad_exits++;
			if (!first_bad)
				first_bad = rc ? -rc : WIFEXITED(status) ? WEXITSTATUS(status)
									 : 1000 + WTERMSIG(status);
		}
	}
	atomic_store(&b->stop, 1);
	pthread_join(t, NULL);
#if HAVE_WINDOW
	conc__test_set_hook(NULL);
#endif
	print_message("lifecycle-fork: %s forks=%lu hangs=%lu bad_exits=%lu", prim, n, hangs,
		      bad_exits);
	if (pass_stack)
		print_message(" (%lu of them inside the depot lock)", windows);
	if (sanitizer_hangs)
		print_message(" sanitizer_hangs=%lu (a child stuck inside the sanitizer "
			      "runtime's own locks: not counted)", sanitizer_hangs);
	if (first_bad)
		print_message(" (first bad exit: %d)", first_bad);
	print_message(" busy_rounds=%lu busy_errors=%lu\n", atomic_load(&b->rounds),
		      atomic_load(&b->errors));
	conc_test_watchdog_off();
	assert_int_equal(atomic_load(&b->errors), 0);
	assert_int_equal(hangs, 0);
	assert_int_equal(bad_exits, 0);
	/* only a sanitizer's runtime is excused, and only now and then: most
	 * children must have done all their work */
	assert_true(sanitizer_hangs == 0 || (CONC_TEST_SANITIZED && sanitizer_hangs <= n / 4));
}

static void test_lifecycle_fork_epoch(void **state)
{
	(void)state;
	static busy b;
	assert_int_equal(conc_epoch_create(&b.d), 0);
	fork_while_busy("epoch", busy_epoch, &b, false);
	assert_int_equal(conc_epoch_barrier(b.d), 0);
	assert_int_equal(conc_epoch_destroy(b.d), 0);
}

static void test_lifecycle_fork_queue(void **state)
{
	(void)state;
	static busy b;
	assert_int_equal(conc_queue_create(&b.q), 0);
	fork_while_busy("queue", busy_queue, &b, false);
	conc_queue_destroy(b.q, NULL);
}

static void test_lifecycle_fork_stack(void **state)
{
	(void)state;
	static busy b;
	assert_int_equal(conc_stack_create(&b.s), 0);
	fork_while_busy("stack", busy_stack, &b, true);
	conc_stack_destroy(b.s, NULL);
}

static void test_lifecycle_fork_pool(void **state)
{
	(void)state;
	static busy b;
	conc_pool_config cfg = {.threads = 2, .name = "fork-busy"};
	assert_int_equal(conc_pool_create(&b.p, &cfg), 0);
	fork_while_busy("pool", busy_pool, &b, false);
	assert_int_equal(conc_pool_destroy(b.p), 0);
}

static void test_lifecycle_fork_scope(void **state)
{
	(void)state;
	static busy b;
	fork_while_busy("scope", busy_scope, &b, false);
}

static void test_lifecycle_fork_chan(void **state)
{
	(void)state;
	static busy b;
	static const size_t caps[3] = {4, CONC_CHAN_UNBOUNDED, 0};
	for (int k = 0; k < 3; k++)
		assert_int_equal(conc_chan_create(&fork_chans[k], caps[k]), 0);
	assert_int_equal(conc_chan_create(&fork_chans[3], 4), 0);
	for (uintptr_t i = 1; i <= 3; i++)
		assert_int_equal(conc_chan_send(fork_chans[3], (void *)i), 0);
	fork_while_busy("chan", busy_chan, &b, false);
	for (int k = 0; k < 4; k++) {
		conc_chan_destroy(fork_chans[k], count_drop);
		fork_chans[k] = NULL;
	}
	assert_int_equal(fork_chan_drops, 3); /* the idle one's items */
}

static void test_lifecycle_fork_parallel(void **state)
{
	(void)state;
	static busy b;
	fork_while_busy("parallel", busy_parallel, &b, false);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_lifecycle_fork_epoch),
		cmocka_unit_test(test_lifecycle_fork_queue),
		cmocka_unit_test(test_lifecycle_fork_stack),
		cmocka_unit_test(test_lifecycle_fork_pool),
		cmocka_unit_test(test_lifecycle_fork_scope),
		cmocka_unit_test(test_lifecycle_fork_parallel),
		cmocka_unit_test(test_lifecycle_fork_chan),
	};
	return cmocka_run_group_tests_name("lifecycle-fork", tests, NULL, NULL);
}
