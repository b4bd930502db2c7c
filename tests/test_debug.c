/*
 * test_debug.c - debug-checks builds (-Ddebug_checks=true, base/check.h):
 * each misuse of the public API that the state words can see, on the
 * queue, the stack, the epoch domain and the pool.
 *
 * Where the call returns int, the misuse is an error return, asserted
 * here along with "nothing changed".  Where it has none (void, bool, a
 * count), the call prints one line and aborts: each such case runs in a
 * forked child, which must die of SIGABRT having written exactly that line
 * to stderr.  The objects are used after destroy on purpose: the
 * quarantine keeps their memory allocated, so ASan builds stay clean.
 *
 * Built only in debug-checks builds (tests/meson.build); release builds
 * have none of this.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "testutil.h"

#include "conc/epoch.h"
#include "conc/parallel.h"
#include "conc/pool.h"
#include "conc/queue.h"
#include "conc/stack.h"
#include "base/check.h"
#include "queue/queue_internal.h"
#include "stack/stack_internal.h"

#ifndef CONC_DEBUG_CHECKS
#error "test_debug.c is for debug-checks builds (tests/meson.build)"
#endif

/* ---- a misuse that aborts, in a child ------------------------------------ */

typedef void (*misuse_fn)(void *arg);

/*
 * Run fn(arg) in a forked child whose stderr is a pipe: it must die of
 * SIGABRT after writing one line, "libconc: <want>" (want is the
 * function's name and the start of the reason).
 */
static void expect_abort(misuse_fn fn, void *arg, const char *want)
{
	int pipefd[2];
	assert_int_equal(pipe(pipefd), 0);
	fflush(NULL);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		dup2(pipefd[1], 2);
		close(pipefd[0]);
		close(pipefd[1]);
		fn(arg);
		_exit(0); /* not reported: the parent fails the test */
	}
	close(pipefd[1]);
	int status = 0;
	bool in_san = false;
	int w = conc_test_wait_child(pid, 30000, &status, &in_san);
	char buf[1024] = {0};
	ssize_t n = 0, r;
	while (n < (ssize_t)sizeof buf - 1 &&
	       (r = read(pipefd[0], buf + n, sizeof buf - 1 - (size_t)n)) > 0)
		n += r;
	close(pipefd[0]);
	if (w != 0 || !WIFSIGNALED(status) || WTERMSIG(status) != SIGABRT ||
	    !strstr(buf, want))
		fprintf(stderr, "expected an abort with \"%s\"; wait %d, status %#x, stderr:\n%s\n",
			want, w, status, buf);
	assert_int_equal(w, 0);
	assert_true(WIFSIGNALED(status));
	assert_int_equal(WTERMSIG(status), SIGABRT);
	/* one line, libconc's, naming the call and the misuse */
	assert_true(strncmp(buf, "libconc: ", 9) == 0);
	assert_non_null(strstr(buf, want));
	assert_ptr_equal(strchr(buf, '\n'), buf + n - 1);
}

#define U(x) ((void *)(uintptr_t)(x))

/* ---- queue and stack ----------------------------------------------------- */

static void *q_dead; /* destroyed by the test, read by the children */
static void *s_dead;

/* The results below are never seen: these calls abort. */
static void q_try_pop(void *a)
{
	void *it;
	if (conc_queue_try_pop(a, &it))
		_exit(4);
}
static void q_close(void *a) { conc_queue_close(a); }
static void q_is_empty(void *a) { (void)conc_queue_is_empty(a); }
static void q_destroy(void *a) { conc_queue_destroy(a, NULL); }
static void s_try_pop(void *a)
{
	void *it;
	if (conc_stack_try_pop(a, &it))
		_exit(4);
}
static void s_close(void *a) { conc_stack_close(a); }
static void s_is_empty(void *a) { (void)conc_stack_is_empty(a); }
static void s_destroy(void *a) { conc_stack_destroy(a, NULL); }

static void test_debug_queue_use_after_destroy(void **state)
{
	(void)state;
	conc_queue *q;
	assert_int_equal(conc_queue_create(&q), 0);
	assert_int_equal(conc_queue_push(q, U(1)), 0);
	conc_queue_destroy(q, NULL);
	void *it = U(77);
	assert_int_equal(conc_queue_push(q, U(2)), EINVAL);
	assert_int_equal(conc_queue_pop(q, &it), EINVAL);
	assert_int_equal(conc_queue_pop_timeout(q, &it, 0), EINVAL);
	assert_int_equal(conc_queue_pop_timeout(q, &it, 1000000), EINVAL);
	assert_ptr_equal(it, U(77));
	q_dead = q;
}

static void test_debug_queue_misuse_aborts_fork(void **state)
{
	(void)state;
	assert_non_null(q_dead);
	expect_abort(q_try_pop, q_dead,
		     "conc_queue_try_pop: the queue was already destroyed (use after destroy)");
	expect_abort(q_close, q_dead,
		     "conc_queue_close: the queue was already destroyed (use after destroy)");
	expect_abort(q_is_empty, q_dead,
		     "conc_queue_is_empty: the queue was already destroyed (use after destroy)");
	expect_abort(q_destroy, q_dead,
		     "conc_queue_destroy: the queue was already destroyed (double destroy)");
}

static void test_debug_stack_use_after_destroy(void **state)
{
	(void)state;
	conc_stack *s;
	assert_int_equal(conc_stack_create(&s), 0);
	assert_int_equal(conc_stack_push(s, U(1)), 0);
	conc_stack_destroy(s, NULL);
	void *it = U(77);
	assert_int_equal(conc_stack_push(s, U(2)), EINVAL);
	assert_int_equal(conc_stack_pop(s, &it), EINVAL);
	assert_int_equal(conc_stack_pop_timeout(s, &it, 0), EINVAL);
	assert_int_equal(conc_stack_pop_timeout(s, &it, 1000000), EINVAL);
	assert_ptr_equal(it, U(77));
	s_dead = s;
}

static void test_debug_stack_misuse_aborts_fork(void **state)
{
	(void)state;
	assert_non_null(s_dead);
	expect_abort(s_try_pop, s_dead,
		     "conc_stack_try_pop: the stack was already destroyed (use after destroy)");
	expect_abort(s_close, s_dead,
		     "conc_stack_close: the stack was already destroyed (use after destroy)");
	expect_abort(s_is_empty, s_dead,
		     "conc_stack_is_empty: the stack was already destroyed (use after destroy)");
	expect_abort(s_destroy, s_dead,
		     "conc_stack_destroy: the stack was already destroyed (double destroy)");
}

/* A thread asleep in a pop when the container is destroyed: the child
 * starts the popper, waits until it sleeps, then destroys. */
struct blocked {
	void *c;
	bool queue;
};

static void *blocked_pop(void *arg)
{
	struct blocked *b = arg;
	void *it;
	int err = b->queue ? conc_queue_pop(b->c, &it) : conc_stack_pop(b->c, &it);
	return (void *)(intptr_t)err; /* never: the process aborts first */
}

static void destroy_while_blocked(void *arg)
{
	struct blocked *b = arg;
	int err = b->queue ? conc_queue_create((conc_queue **)&b->c)
			   : conc_stack_create((conc_stack **)&b->c);
	if (err)
		_exit(3);
	pthread_t t;
	if (pthread_create(&t, NULL, blocked_pop, b) != 0)
		_exit(3);
	/* until the popper sleeps (the watchdog of the parent's wait ends a
	 * hang) */
	while ((b->queue ? conc__queue_sleepers(b->c) : conc__stack_sleepers(b->c)) == 0)
		usleep(1000);
	if (b->queue)
		conc_queue_destroy(b->c, NULL);
	else
		conc_stack_destroy(b->c, NULL);
}

static void test_debug_destroy_while_blocked_fork(void **state)
{
	(void)state;
	struct blocked q = {NULL, true}, s = {NULL, false};
	expect_abort(destroy_while_blocked, &q,
		     "conc_queue_destroy: a thread is blocked in a pop of this queue "
		     "(destroy while in use)");
	expect_abort(destroy_while_blocked, &s,
		     "conc_stack_destroy: a thread is blocked in a pop of this stack "
		     "(destroy while in use)");
}

/* ---- epoch --------------------------------------------------------------- */

static conc_epoch *d_dead;
static int deferred_runs;

static void count_deferred(void *arg)
{
	(void)arg;
	deferred_runs++;
}

static void test_debug_epoch_use_after_destroy(void **state)
{
	(void)state;
	conc_epoch *d;
	assert_int_equal(conc_epoch_create(&d), 0);
	conc_epoch_pin(d);
	conc_epoch_unpin(d);
	assert_int_equal(conc_epoch_destroy(d), 0);
	assert_int_equal(conc_epoch_destroy(d), EINVAL); /* double destroy */
	assert_int_equal(conc_epoch_register(d), EINVAL);
	assert_int_equal(conc_epoch_defer(d, count_deferred, NULL), EINVAL);
	assert_int_equal(conc_epoch_barrier(d), EINVAL);
	void *c = U(0x1234);
	assert_int_equal(conc_queue_create_in((conc_queue **)&c, d), EINVAL);
	assert_int_equal(conc_stack_create_in((conc_stack **)&c, d), EINVAL);
	assert_ptr_equal(c, U(0x1234));
	assert_int_equal(deferred_runs, 0); /* nothing was deferred */
	d_dead = d;
}

static void e_pin(void *a) { conc_epoch_pin(a); }
static void e_unpin(void *a) { conc_epoch_unpin(a); }
static void e_is_pinned(void *a) { (void)conc_epoch_is_pinned(a); }
static void e_flush(void *a) { conc_epoch_flush(a); }
static void e_stats(void *a)
{
	conc_epoch_stats st;
	conc_epoch_get_stats(a, &st);
}
static void free_node(conc_epoch_node *n) { free(n); }
static void e_retire(void *a)
{
	conc_epoch_node *n = calloc(1, sizeof *n);
	conc_epoch_retire(a, n, free_node);
}

static void test_debug_epoch_misuse_aborts_fork(void **state)
{
	(void)state;
	assert_non_null(d_dead);
	expect_abort(e_pin, d_dead,
		     "conc_epoch_pin: the epoch domain was already destroyed (use after destroy)");
	expect_abort(e_unpin, d_dead,
		     "conc_epoch_unpin: the epoch domain was already destroyed (use after destroy)");
	expect_abort(e_is_pinned, d_dead,
		     "conc_epoch_is_pinned: the epoch domain was already destroyed");
	expect_abort(e_flush, d_dead,
		     "conc_epoch_flush: the epoch domain was already destroyed");
	expect_abort(e_stats, d_dead,
		     "conc_epoch_get_stats: the epoch domain was already destroyed");
	expect_abort(e_retire, d_dead,
		     "conc_epoch_retire: the epoch domain was already destroyed");
}

/* An unpin with no pin to match: in a private domain (through the
 * thread's record, or with none), and in the global one. */
static void unbalanced_private(void *arg)
{
	(void)arg;
	conc_epoch *d;
	if (conc_epoch_create(&d))
		_exit(3);
	conc_epoch_pin(d);
	conc_epoch_unpin(d);
	conc_epoch_unpin(d); /* one too many: the record is there, unpinned */
}

static void unbalanced_fresh(void *arg)
{
	(void)arg;
	conc_epoch *d;
	if (conc_epoch_create(&d))
		_exit(3);
	conc_epoch_unpin(d); /* never pinned, never registered */
}

static void unbalanced_global(void *arg)
{
	(void)arg;
	conc_epoch_pin(conc_epoch_global());
	conc_epoch_pin(conc_epoch_global());
	conc_epoch_unpin(conc_epoch_global());
	conc_epoch_unpin(conc_epoch_global());
	conc_epoch_unpin(conc_epoch_global());
}

static void test_debug_epoch_unbalanced_unpin_fork(void **state)
{
	(void)state;
	const char *want = "conc_epoch_unpin: the calling thread is not pinned in this domain "
			   "(unbalanced unpin)";
	expect_abort(unbalanced_private, NULL, want);
	expect_abort(unbalanced_fresh, NULL, want);
	expect_abort(unbalanced_global, NULL, want);
}

/* A domain a queue or stack still reclaims through: EBUSY, and usable. */
static void test_debug_epoch_destroy_in_use(void **state)
{
	(void)state;
	conc_epoch *d;
	conc_queue *q;
	conc_stack *s;
	assert_int_equal(conc_epoch_create(&d), 0);
	assert_int_equal(conc_queue_create_in(&q, d), 0);
	assert_int_equal(conc_stack_create_in(&s, d), 0);
	assert_int_equal(conc_epoch_destroy(d), EBUSY);
	for (uintptr_t i = 1; i <= 3000; i++) { /* d still works: segments retire */
		void *it;
		assert_int_equal(conc_queue_push(q, U(i)), 0);
		assert_true(conc_queue_try_pop(q, &it));
		assert_ptr_equal(it, U(i));
	}
	conc_queue_destroy(q, NULL);
	assert_int_equal(conc_epoch_destroy(d), EBUSY); /* the stack still */
	assert_int_equal(conc_stack_push(s, U(5)), 0);
	conc_stack_destroy(s, NULL);
	/* pinned: refused as in every build */
	conc_epoch_pin(d);
	assert_int_equal(conc_epoch_destroy(d), EBUSY);
	conc_epoch_unpin(d);
	assert_int_equal(conc_epoch_destroy(d), 0);
}

/* ---- pool (last: its workers must be gone before the next fork) ---------- */

static void noop(void *arg) { (void)arg; }
static int for_body(size_t lo, size_t hi, void *ctx)
{
	(void)lo, (void)hi, (void)ctx;
	return 0;
}
static void r_zero(void *acc, void *ctx)
{
	(void)ctx;
	*(int *)acc = 0;
}
static int r_body(size_t lo, size_t hi, void *acc, void *ctx)
{
	(void)ctx;
	*(int *)acc += (int)(hi - lo);
	return 0;
}
static void r_add(void *acc, const void *other, void *ctx)
{
	(void)ctx;
	*(int *)acc += *(const int *)other;
}

static conc_pool *p_dead;

static void test_debug_pool_use_after_destroy(void **state)
{
	(void)state;
	conc_pool *p;
	conc_pool_config cfg = {.threads = 1};
	assert_int_equal(conc_pool_create(&p, &cfg), 0);
	assert_int_equal(conc_pool_execute(p, noop, NULL), 0);
	assert_int_equal(conc_pool_destroy(p), 0);
	assert_int_equal(conc_pool_destroy(p), EINVAL); /* double destroy */
	assert_int_equal(conc_pool_execute(p, noop, NULL), EINVAL);
	assert_int_equal(conc_pool_wait(p), EINVAL);
	assert_int_equal(conc_pool_resize(p, 2), EINVAL);
	assert_int_equal(conc_join(p, noop, NULL, noop, NULL), EINVAL);
	assert_int_equal(conc_parallel_for(p, 0, 100, 1, for_body, NULL), EINVAL);
	int sum = 7;
	assert_int_equal(conc_parallel_reduce(p, 0, 100, 1, &sum, sizeof sum, r_zero, r_body,
					      r_add, NULL),
			 EINVAL);
	assert_int_equal(sum, 7);
	p_dead = p;
}

static void p_threads(void *a) { (void)conc_pool_threads(a); }
static void p_queued(void *a) { (void)conc_pool_queued(a); }
static void p_active(void *a) { (void)conc_pool_active(a); }

static void test_debug_pool_misuse_aborts_fork(void **state)
{
	(void)state;
	assert_non_null(p_dead);
	expect_abort(p_threads, p_dead,
		     "conc_pool_threads: the pool was already destroyed (use after destroy)");
	expect_abort(p_queued, p_dead,
		     "conc_pool_queued: the pool was already destroyed (use after destroy)");
	expect_abort(p_active, p_dead,
		     "conc_pool_active: the pool was already destroyed (use after destroy)");
}

/* ---- the quarantine ------------------------------------------------------ */

/*
 * Destroyed objects are kept for CONC__QUARANTINE destroys, then freed: a
 * loop of create/destroy (each queue buries itself and nothing else) holds
 * no more than that, and a dead queue is still dead to a call made well
 * within the bound (half of it: other destroys may bury meanwhile).
 */
static void test_debug_quarantine_is_bounded(void **state)
{
	(void)state;
	conc_queue *first;
	assert_int_equal(conc_queue_create(&first), 0);
	conc_queue_destroy(first, NULL);
	for (int i = 0; i < CONC__QUARANTINE / 2; i++) {
		conc_queue *q;
		assert_int_equal(conc_queue_create(&q), 0);
		assert_int_equal(conc_queue_push(first, U(1)), EINVAL); /* still kept */
		conc_queue_destroy(q, NULL);
	}
	/* The next burials free first and its successors (ASan and valgrind
	 * see the frees; first is not touched again). */
	for (int i = 0; i < 2 * CONC__QUARANTINE; i++) {
		conc_queue *q;
		assert_int_equal(conc_queue_create(&q), 0);
		conc_queue_destroy(q, NULL);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_debug_queue_use_after_destroy),
		cmocka_unit_test(test_debug_queue_misuse_aborts_fork),
		cmocka_unit_test(test_debug_stack_use_after_destroy),
		cmocka_unit_test(test_debug_stack_misuse_aborts_fork),
		cmocka_unit_test(test_debug_destroy_while_blocked_fork),
		cmocka_unit_test(test_debug_epoch_use_after_destroy),
		cmocka_unit_test(test_debug_epoch_misuse_aborts_fork),
		cmocka_unit_test(test_debug_epoch_unbalanced_unpin_fork),
		cmocka_unit_test(test_debug_epoch_destroy_in_use),
		cmocka_unit_test(test_debug_pool_use_after_destroy),
		cmocka_unit_test(test_debug_pool_misuse_aborts_fork),
		cmocka_unit_test(test_debug_quarantine_is_bounded),
	};
	return cmocka_run_group_tests_name("debug", tests, NULL, NULL);
}
