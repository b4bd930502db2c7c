/*
 * test_debug.c - debug-checks builds (-Ddebug_checks=true, base/check.h):
 * each misuse of the public API that the state words can see, on the
 * queue, the stack, the epoch domain, the pool and the channel.
 *
 * Where the call returns int, the misuse is an error return, asserted
 * here along with "nothing changed".  Where it has none (void, bool, a
 * count), the call prints one line and aborts: each such case runs in a
 * child process, which must die of SIGABRT having written exactly that
 * line to stderr.  The objects are used after destroy on purpose: the
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

#include "conc/chan.h"
#include "conc/epoch.h"
#include "conc/parallel.h"
#include "conc/pool.h"
#include "conc/queue.h"
#include "conc/stack.h"
#include "base/check.h"
#include "chan/chan_internal.h"
#include "queue/queue_internal.h"
#include "stack/stack_internal.h"

#ifndef CONC_DEBUG_CHECKS
#error "test_debug.c is for debug-checks builds (tests/meson.build)"
#endif

/* ---- a misuse that aborts, in a child process ---------------------------- */

/*
 * The aborting misuses run in a child that execs this program again with
 * "--misuse NAME": a fresh process, not only a fork.  A forked child would
 * inherit the parent's sanitizer state, and TSan takes the epoch's fork
 * handlers (every domain lock taken in prepare, re-initialised in the
 * child) for locks still held: its first epoch call reports a double lock
 * there.  Each scenario makes its own object, destroys it and misuses it.
 * The test names say "fork" all the same: the AArch64 runs under
 * qemu-user skip such tests (CONC_TEST_SKIP=*fork*).
 */
typedef struct misuse {
	const char *name;
	void (*run)(void);
	const char *want; /* after "libconc: " */
} misuse;

static const misuse *find_misuse(const char *name);

/*
 * Run the scenario in a child: it must die of SIGABRT having written
 * exactly one line to stderr, "libconc: <want>...".
 */
static void expect_abort(const char *name)
{
	const misuse *m = find_misuse(name);
	assert_non_null(m);
	int pipefd[2];
	assert_int_equal(pipe(pipefd), 0);
	fflush(NULL);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		dup2(pipefd[1], 2);
		close(pipefd[0]);
		close(pipefd[1]);
		execl("/proc/self/exe", "test_debug", "--misuse", name, (char *)NULL);
		_exit(127);
	}
	close(pipefd[1]);
	int status = 0;
	bool in_san = false;
	int w = conc_test_wait_child(pid, 30000, &status, &in_san);
	char buf[2048] = {0};
	ssize_t n = 0, r;
	while (n < (ssize_t)sizeof buf - 1 &&
	       (r = read(pipefd[0], buf + n, sizeof buf - 1 - (size_t)n)) > 0)
		n += r;
	close(pipefd[0]);
	if (w != 0 || !WIFSIGNALED(status) || WTERMSIG(status) != SIGABRT ||
	    strncmp(buf, "libconc: ", 9) != 0 || !strstr(buf, m->want))
		fprintf(stderr, "%s: expected an abort with \"libconc: %s\"; wait %d, status %#x, "
				"stderr:\n%s\n",
			name, m->want, w, status, buf);
	assert_int_equal(w, 0);
	assert_true(WIFSIGNALED(status));
	assert_int_equal(WTERMSIG(status), SIGABRT);
	/* one line, libconc's, naming the call and the misuse */
	assert_true(strncmp(buf, "libconc: ", 9) == 0);
	assert_ptr_equal(strstr(buf, m->want), buf + 9);
	assert_ptr_equal(strchr(buf, '\n'), buf + n - 1);
}

#define U(x) ((void *)(uintptr_t)(x))

/* ---- the scenarios (run in the child) ------------------------------------- */

static conc_queue *dead_queue(void)
{
	conc_queue *q;
	if (conc_queue_create(&q) || conc_queue_push(q, U(1)))
		_exit(3);
	conc_queue_destroy(q, NULL);
	return q;
}

static conc_stack *dead_stack(void)
{
	conc_stack *s;
	if (conc_stack_create(&s) || conc_stack_push(s, U(1)))
		_exit(3);
	conc_stack_destroy(s, NULL);
	return s;
}

static conc_epoch *dead_domain(void)
{
	conc_epoch *d;
	if (conc_epoch_create(&d))
		_exit(3);
	conc_epoch_pin(d);
	conc_epoch_unpin(d);
	if (conc_epoch_destroy(d))
		_exit(3);
	return d;
}

static conc_pool *dead_pool(void)
{
	conc_pool *p;
	conc_pool_config cfg = {.threads = 1};
	if (conc_pool_create(&p, &cfg) || conc_pool_destroy(p))
		_exit(3);
	return p;
}

/* The results below are never seen: each call aborts. */
static void q_try_pop(void)
{
	void *it;
	if (conc_queue_try_pop(dead_queue(), &it))
		_exit(4);
}
static void q_close(void) { conc_queue_close(dead_queue()); }
static void q_is_empty(void) { _exit(conc_queue_is_empty(dead_queue()) ? 4 : 5); }
static void q_destroy(void) { conc_queue_destroy(dead_queue(), NULL); }
static void s_try_pop(void)
{
	void *it;
	if (conc_stack_try_pop(dead_stack(), &it))
		_exit(4);
}
static void s_close(void) { conc_stack_close(dead_stack()); }
static void s_is_empty(void) { _exit(conc_stack_is_empty(dead_stack()) ? 4 : 5); }
static void s_destroy(void) { conc_stack_destroy(dead_stack(), NULL); }

/* A thread asleep in a pop when the container is destroyed. */
static void *blocked_pop(void *arg)
{
	bool queue = *(void **)arg != NULL;
	void *c = ((void **)arg)[queue ? 0 : 1];
	void *it;
	int err = queue ? conc_queue_pop(c, &it) : conc_stack_pop(c, &it);
	return (void *)(intptr_t)err; /* never: the process aborts first */
}

static void destroy_while_blocked(bool queue)
{
	void *c[2] = {NULL, NULL}; /* the queue, or the stack */
	int err = queue ? conc_queue_create((conc_queue **)&c[0])
			: conc_stack_create((conc_stack **)&c[1]);
	if (err)
		_exit(3);
	pthread_t t;
	if (pthread_create(&t, NULL, blocked_pop, c) != 0)
		_exit(3);
	/* until the popper sleeps (the parent's wait ends a hang) */
	while ((queue ? conc__queue_sleepers(c[0]) : conc__stack_sleepers(c[1])) == 0)
		usleep(1000);
	if (queue)
		conc_queue_destroy(c[0], NULL);
	else
		conc_stack_destroy(c[1], NULL);
}
static void q_destroy_blocked(void) { destroy_while_blocked(true); }
static void s_destroy_blocked(void) { destroy_while_blocked(false); }

static conc_chan *dead_chan(void)
{
	conc_chan *c;
	if (conc_chan_create(&c, 4) || conc_chan_send(c, U(1)))
		_exit(3);
	conc_chan_destroy(c, NULL);
	return c;
}
static void c_close(void) { conc_chan_close(dead_chan()); }
static void c_len(void) { _exit((int)conc_chan_len(dead_chan())); }
static void c_capacity(void) { _exit((int)conc_chan_capacity(dead_chan())); }
static void c_is_closed(void) { _exit(conc_chan_is_closed(dead_chan()) ? 4 : 5); }
static void c_destroy(void) { conc_chan_destroy(dead_chan(), NULL); }

/* A thread asleep in a channel call when the channel is destroyed: a
 * receive (bounded, empty), a send (rendezvous, no receiver), a select
 * (a receive on an unbounded channel and a send on a full bounded one). */
enum { CB_RECV, CB_SEND, CB_SELECT };
static conc_chan *cb_chan[2];
static void *blocked_chan_call(void *arg)
{
	void *it = NULL;
	int err;
	switch ((int)(intptr_t)arg) {
	case CB_RECV:
		err = conc_chan_recv(cb_chan[0], &it);
		break;
	case CB_SEND:
		err = conc_chan_send(cb_chan[0], U(5));
		break;
	default: {
		conc_select_op ops[2] = {{cb_chan[0], false, NULL}, {cb_chan[1], true, U(6)}};
		size_t done;
		err = conc_select(ops, 2, UINT64_MAX, 0, &done);
	}
	}
	return (void *)(intptr_t)err; /* never: the process aborts first */
}

static void chan_destroy_while_blocked(int how)
{
	size_t cap0 = how == CB_RECV ? 8 : how == CB_SEND ? 0 : CONC_CHAN_UNBOUNDED;
	if (conc_chan_create(&cb_chan[0], cap0) || conc_chan_create(&cb_chan[1], 1) ||
	    conc_chan_send(cb_chan[1], U(1)))
		_exit(3);
	pthread_t t;
	if (pthread_create(&t, NULL, blocked_chan_call, (void *)(intptr_t)how) != 0)
		_exit(3);
	/* until its entry is registered (the parent's wait ends a hang) */
	while (conc__chan_waiters(cb_chan[0], how == CB_SEND) == 0)
		usleep(1000);
	conc_chan_destroy(cb_chan[0], NULL);
}
static void c_destroy_blocked_recv(void) { chan_destroy_while_blocked(CB_RECV); }
static void c_destroy_blocked_send(void) { chan_destroy_while_blocked(CB_SEND); }
static void c_destroy_blocked_select(void) { chan_destroy_while_blocked(CB_SELECT); }

static void e_pin(void) { conc_epoch_pin(dead_domain()); }
static void e_unpin(void) { conc_epoch_unpin(dead_domain()); }
static void e_is_pinned(void) { _exit(conc_epoch_is_pinned(dead_domain()) ? 4 : 5); }
static void e_flush(void) { conc_epoch_flush(dead_domain()); }
static void e_stats(void)
{
	conc_epoch_stats st;
	conc_epoch_get_stats(dead_domain(), &st);
}
static void free_node(conc_epoch_node *n) { free(n); }
static void e_retire(void)
{
	conc_epoch_node *n = calloc(1, sizeof *n);
	conc_epoch_retire(dead_domain(), n, free_node);
}

/* An unpin with no pin to match: in a private domain (through the
 * thread's record, or with none), and in the global one. */
static void unbalanced_private(void)
{
	conc_epoch *d;
	if (conc_epoch_create(&d))
		_exit(3);
	conc_epoch_pin(d);
	conc_epoch_unpin(d);
	conc_epoch_unpin(d); /* one too many: the record is there, unpinned */
}

static void unbalanced_fresh(void)
{
	conc_epoch *d;
	if (conc_epoch_create(&d))
		_exit(3);
	conc_epoch_unpin(d); /* never pinned, never registered */
}

static void unbalanced_global(void)
{
	conc_epoch *g = conc_epoch_global();
	conc_epoch_pin(g);
	conc_epoch_pin(g);
	conc_epoch_unpin(g);
	conc_epoch_unpin(g);
	conc_epoch_unpin(g);
}

static void p_threads(void) { _exit((int)conc_pool_threads(dead_pool())); }
static void p_queued(void) { _exit((int)conc_pool_queued(dead_pool())); }
static void p_active(void) { _exit((int)conc_pool_active(dead_pool())); }

#define USE_AFTER(kind) "the " kind " was already destroyed (use after destroy)"
#define CHAN_BLOCKED                                                                 \
	"conc_chan_destroy: a thread is blocked in a send, receive or select on this "     \
	"channel (destroy while in use)"
#define UNBALANCED                                                                   \
	"conc_epoch_unpin: the calling thread is not pinned in this domain (unbalanced unpin)"

static const misuse misuses[] = {
	{"queue-try-pop", q_try_pop, "conc_queue_try_pop: " USE_AFTER("queue")},
	{"queue-close", q_close, "conc_queue_close: " USE_AFTER("queue")},
	{"queue-is-empty", q_is_empty, "conc_queue_is_empty: " USE_AFTER("queue")},
	{"queue-destroy", q_destroy,
	 "conc_queue_destroy: the queue was already destroyed (double destroy)"},
	{"queue-destroy-blocked", q_destroy_blocked,
	 "conc_queue_destroy: a thread is blocked in a pop of this queue (destroy while in use)"},
	{"stack-try-pop", s_try_pop, "conc_stack_try_pop: " USE_AFTER("stack")},
	{"stack-close", s_close, "conc_stack_close: " USE_AFTER("stack")},
	{"stack-is-empty", s_is_empty, "conc_stack_is_empty: " USE_AFTER("stack")},
	{"stack-destroy", s_destroy,
	 "conc_stack_destroy: the stack was already destroyed (double destroy)"},
	{"stack-destroy-blocked", s_destroy_blocked,
	 "conc_stack_destroy: a thread is blocked in a pop of this stack (destroy while in use)"},
	{"chan-close", c_close, "conc_chan_close: " USE_AFTER("channel")},
	{"chan-len", c_len, "conc_chan_len: " USE_AFTER("channel")},
	{"chan-capacity", c_capacity, "conc_chan_capacity: " USE_AFTER("channel")},
	{"chan-is-closed", c_is_closed, "conc_chan_is_closed: " USE_AFTER("channel")},
	{"chan-destroy", c_destroy,
	 "conc_chan_destroy: the channel was already destroyed (double destroy)"},
	{"chan-destroy-blocked-recv", c_destroy_blocked_recv, CHAN_BLOCKED},
	{"chan-destroy-blocked-send", c_destroy_blocked_send, CHAN_BLOCKED},
	{"chan-destroy-blocked-select", c_destroy_blocked_select, CHAN_BLOCKED},
	{"epoch-pin", e_pin, "conc_epoch_pin: " USE_AFTER("epoch domain")},
	{"epoch-unpin", e_unpin, "conc_epoch_unpin: " USE_AFTER("epoch domain")},
	{"epoch-is-pinned", e_is_pinned, "conc_epoch_is_pinned: " USE_AFTER("epoch domain")},
	{"epoch-flush", e_flush, "conc_epoch_flush: " USE_AFTER("epoch domain")},
	{"epoch-get-stats", e_stats, "conc_epoch_get_stats: " USE_AFTER("epoch domain")},
	{"epoch-retire", e_retire, "conc_epoch_retire: " USE_AFTER("epoch domain")},
	{"unbalanced-private", unbalanced_private, UNBALANCED},
	{"unbalanced-fresh", unbalanced_fresh, UNBALANCED},
	{"unbalanced-global", unbalanced_global, UNBALANCED},
	{"pool-threads", p_threads, "conc_pool_threads: " USE_AFTER("pool")},
	{"pool-queued", p_queued, "conc_pool_queued: " USE_AFTER("pool")},
	{"pool-active", p_active, "conc_pool_active: " USE_AFTER("pool")},
};

static const misuse *find_misuse(const char *name)
{
	for (size_t i = 0; i < sizeof misuses / sizeof misuses[0]; i++)
		if (strcmp(misuses[i].name, name) == 0)
			return &misuses[i];
	return NULL;
}

/* ---- the tests ------------------------------------------------------------ */

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
}

/* A drop callback that calls back into the container being destroyed: the
 * container is already dead for it (EINVAL), never a push into memory that
 * destroy is freeing. */
static void *reentered;
static int reentry_err[2];
static int reentries;
static void drop_pushing_queue(void *item)
{
	(void)item;
	reentry_err[0] = conc_queue_push(reentered, U(9));
	reentries++;
}
static void drop_pushing_stack(void *item)
{
	(void)item;
	reentry_err[1] = conc_stack_push(reentered, U(9));
	reentries++;
}

static void test_debug_drop_reenters_destroy(void **state)
{
	(void)state;
	conc_queue *q;
	conc_stack *s;
	reentries = 0;
	reentry_err[0] = reentry_err[1] = -1;
	assert_int_equal(conc_queue_create(&q), 0);
	assert_int_equal(conc_queue_push(q, U(1)), 0);
	reentered = q;
	conc_queue_destroy(q, drop_pushing_queue);
	assert_int_equal(conc_stack_create(&s), 0);
	assert_int_equal(conc_stack_push(s, U(1)), 0);
	reentered = s;
	conc_stack_destroy(s, drop_pushing_stack);
	assert_int_equal(reentries, 2);
	assert_int_equal(reentry_err[0], EINVAL);
	assert_int_equal(reentry_err[1], EINVAL);
}

static void test_debug_queue_misuse_aborts_fork(void **state)
{
	(void)state;
	expect_abort("queue-try-pop");
	expect_abort("queue-close");
	expect_abort("queue-is-empty");
	expect_abort("queue-destroy");
	expect_abort("queue-destroy-blocked");
}

/* Every int call on a destroyed channel: EINVAL, nothing changed.  Each
 * flavour, since each has its own path past the check. */
static void test_debug_chan_use_after_destroy(void **state)
{
	(void)state;
	static const size_t caps[3] = {0, 4, CONC_CHAN_UNBOUNDED};
	for (int k = 0; k < 3; k++) {
		conc_chan *c, *live;
		assert_int_equal(conc_chan_create(&c, caps[k]), 0);
		assert_int_equal(conc_chan_create(&live, 4), 0);
		if (caps[k])
			assert_int_equal(conc_chan_send(c, U(1)), 0);
		conc_chan_destroy(c, NULL);
		void *it = U(77), *items[2] = {U(77), U(77)};
		size_t n = 9;
		bool ev = false;
		assert_int_equal(conc_chan_send(c, U(2)), EINVAL);
		assert_int_equal(conc_chan_send_timeout(c, U(2), 0), EINVAL);
		assert_int_equal(conc_chan_send_timeout(c, U(2), 1000000), EINVAL);
		assert_int_equal(conc_chan_recv(c, &it), EINVAL);
		assert_int_equal(conc_chan_recv_timeout(c, &it, 0), EINVAL);
		assert_int_equal(conc_chan_recv_timeout(c, &it, 1000000), EINVAL);
		assert_int_equal(conc_chan_send_many(c, items, 2, 0, &n), EINVAL);
		assert_int_equal(n, 0);
		n = 9;
		assert_int_equal(conc_chan_recv_many(c, items, 2, 0, &n), EINVAL);
		assert_int_equal(n, 0);
		assert_int_equal(conc_chan_force_send(c, U(2), &ev, &it), EINVAL);
		/* a select with one live channel ready and one dead: refused
		 * before anything is done on the live one */
		assert_int_equal(conc_chan_send(live, U(3)), 0);
		conc_select_op ops[2] = {{live, false, NULL}, {c, false, NULL}};
		size_t done = 99;
		assert_int_equal(conc_select(ops, 2, 0, 0, &done), EINVAL);
		assert_int_equal(done, 99);
		assert_int_equal(conc_chan_len(live), 1);
		assert_ptr_equal(it, U(77));
		assert_ptr_equal(items[0], U(77));
		assert_false(ev);
		conc_chan_destroy(live, NULL);
	}
}

/* A drop that sends into the channel being destroyed: EINVAL. */
static conc_chan *chan_reentered;
static int chan_reentry_err, chan_reentries;
static void drop_sending_chan(void *item)
{
	(void)item;
	chan_reentry_err = conc_chan_send_timeout(chan_reentered, U(9), 0);
	chan_reentries++;
}

static void test_debug_chan_drop_reenters_destroy(void **state)
{
	(void)state;
	static const size_t caps[2] = {4, CONC_CHAN_UNBOUNDED};
	for (int k = 0; k < 2; k++) {
		conc_chan *c;
		chan_reentries = 0;
		chan_reentry_err = -1;
		assert_int_equal(conc_chan_create(&c, caps[k]), 0);
		assert_int_equal(conc_chan_send(c, U(1)), 0);
		chan_reentered = c;
		conc_chan_destroy(c, drop_sending_chan);
		assert_int_equal(chan_reentries, 1);
		assert_int_equal(chan_reentry_err, EINVAL);
	}
}

static void test_debug_chan_misuse_aborts_fork(void **state)
{
	(void)state;
	expect_abort("chan-close");
	expect_abort("chan-len");
	expect_abort("chan-capacity");
	expect_abort("chan-is-closed");
	expect_abort("chan-destroy");
	expect_abort("chan-destroy-blocked-recv");
	expect_abort("chan-destroy-blocked-send");
	expect_abort("chan-destroy-blocked-select");
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
}

static void test_debug_stack_misuse_aborts_fork(void **state)
{
	(void)state;
	expect_abort("stack-try-pop");
	expect_abort("stack-close");
	expect_abort("stack-is-empty");
	expect_abort("stack-destroy");
	expect_abort("stack-destroy-blocked");
}

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
}

static void test_debug_epoch_misuse_aborts_fork(void **state)
{
	(void)state;
	expect_abort("epoch-pin");
	expect_abort("epoch-unpin");
	expect_abort("epoch-is-pinned");
	expect_abort("epoch-flush");
	expect_abort("epoch-get-stats");
	expect_abort("epoch-retire");
}

static void test_debug_epoch_unbalanced_unpin_fork(void **state)
{
	(void)state;
	expect_abort("unbalanced-private");
	expect_abort("unbalanced-fresh");
	expect_abort("unbalanced-global");
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
}

static void test_debug_pool_misuse_aborts_fork(void **state)
{
	(void)state;
	expect_abort("pool-threads");
	expect_abort("pool-queued");
	expect_abort("pool-active");
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

int main(int argc, char **argv)
{
	if (argc == 3 && strcmp(argv[1], "--misuse") == 0) {
		const misuse *m = find_misuse(argv[2]);
		if (!m)
			return 2;
		m->run();
		return 0; /* no abort: the parent fails the test */
	}
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_debug_queue_use_after_destroy),
		cmocka_unit_test(test_debug_queue_misuse_aborts_fork),
		cmocka_unit_test(test_debug_chan_use_after_destroy),
		cmocka_unit_test(test_debug_chan_drop_reenters_destroy),
		cmocka_unit_test(test_debug_chan_misuse_aborts_fork),
		cmocka_unit_test(test_debug_stack_use_after_destroy),
		cmocka_unit_test(test_debug_stack_misuse_aborts_fork),
		cmocka_unit_test(test_debug_epoch_use_after_destroy),
		cmocka_unit_test(test_debug_epoch_misuse_aborts_fork),
		cmocka_unit_test(test_debug_epoch_unbalanced_unpin_fork),
		cmocka_unit_test(test_debug_epoch_destroy_in_use),
		cmocka_unit_test(test_debug_pool_use_after_destroy),
		cmocka_unit_test(test_debug_pool_misuse_aborts_fork),
		cmocka_unit_test(test_debug_quarantine_is_bounded),
		cmocka_unit_test(test_debug_drop_reenters_destroy),
	};
	return cmocka_run_group_tests_name("debug", tests, NULL, NULL);
}
