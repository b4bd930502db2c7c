/*
 * bench_chan.c - W7a-W7d (shared/WORKLOADS.md): conc/chan.h against
 * crossbeam-channel (Rust, peers/crossbeam_channel), Go channels and select
 * (peers/go_chan, run as a child process that times its own region), GLib's
 * GAsyncQueue, a mutex + two condition variables ring, oneTBB's
 * concurrent_bounded_queue and moodycamel's BlockingConcurrentQueue
 * (peers/chan_cxx.cpp).  Every run creates its threads inside the timed
 * region (as the Rust and Go peers must) and checks count and sum.
 *
 *   W7a  capacity 1024: P senders x N distinct values, P receivers until
 *        closed (the last sender closes); P = 1, 2, 4, 8 (8: oversubscribed)
 *   W7b  rendezvous: two threads ping-pong one token, R round trips
 *   W7c  select: 4 senders on their own channels of capacity 128, N each;
 *        one receiver selects over the 4 until all are closed and drained
 *   W7d  unbounded: 1 sender, N values, 1 receiver
 * Peers without a flavour are listed as missing with the reason: GAsyncQueue
 * and moodycamel have no bound (they run W7a unbounded, labelled so), none
 * but crossbeam and Go have select or rendezvous.  Poison values stand in
 * for close where a peer has none.
 *
 * After the rows: an idle blocked receiver's CPU time over 300 ms, and each
 * implementation's peak RSS over one W7a (P = 4) run in a child process.
 *
 * --quick (the default of `meson test --benchmark`) shrinks N and R by 10.
 */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "conc/chan.h"
#include "harness.h"

#if defined(BENCH_HAVE_GLIB)
#include <glib.h>
#endif
#include "peers/chan_cxx.h"

#if defined(BENCH_HAVE_CROSSBEAM_CHANNEL)
double cbc_w7a(uint32_t p, uint64_t n, uint64_t cap);
double cbc_w7b(uint64_t rounds);
double cbc_w7c(uint64_t n);
#endif

static uint64_t N_A = 1000000, R_B = 1000000, N_C = 250000, N_D = 10000000;
#define CAP_A 1024
#define CAP_C 128

static bench_result verdict(double secs, bool ok)
{
	bench_result r = {secs, ok};
	return r;
}

static double now(void)
{
	return bench_now();
}

static uint64_t tri(uint64_t total)
{
	return total * (total + 1) / 2;
}

/* ---- libconc ---------------------------------------------------------------- */

struct lc_a {
	conc_chan *c;
	uint64_t n;
	unsigned id;
	atomic_uint *left;
	uint64_t count, sum;
};

static void *lc_a_sender(void *arg)
{
	struct lc_a *a = arg;
	uint64_t base = (uint64_t)a->id * a->n;
	for (uint64_t k = 0; k < a->n; k++)
		if (conc_chan_send(a->c, (void *)(uintptr_t)(base + k + 1)) != 0)
			abort();
	if (atomic_fetch_sub(a->left, 1) == 1)
		conc_chan_close(a->c);
	return NULL;
}

static void *lc_a_receiver(void *arg)
{
	struct lc_a *a = arg;
	void *v;
	uint64_t c = 0, s = 0;
	while (conc_chan_recv(a->c, &v) == 0) {
		c++;
		s += (uintptr_t)v;
	}
	a->count = c;
	a->sum = s;
	return NULL;
}

static bench_result lc_w7x(unsigned p, uint64_t n, size_t cap)
{
	conc_chan *c;
	if (conc_chan_create(&c, cap))
		return verdict(0, false);
	atomic_uint left = p;
	struct lc_a a[2 * BENCH_MAX_THREADS];
	pthread_t t[2 * BENCH_MAX_THREADS];
	double t0 = now();
	for (unsigned i = 0; i < 2 * p; i++) {
		a[i] = (struct lc_a){c, n, i < p ? i : i - p, &left, 0, 0};
		pthread_create(&t[i], NULL, i < p ? lc_a_receiver : lc_a_sender, &a[i]);
	}
	for (unsigned i = 0; i < 2 * p; i++)
		pthread_join(t[i], NULL);
	double secs = now() - t0;
	uint64_t cnt = 0, sum = 0;
	for (unsigned i = 0; i < p; i++) {
		cnt += a[i].count;
		sum += a[i].sum;
	}
	conc_chan_destroy(c, NULL);
	return verdict(secs, cnt == p * n && sum == tri(p * n));
}

static bench_result lc_w7a(void *arg, unsigned p)
{
	(void)arg;
	return lc_w7x(p, N_A, CAP_A);
}

static bench_result lc_w7d(void *arg, unsigned p)
{
	(void)arg;
	(void)p;
	return lc_w7x(1, N_D, CONC_CHAN_UNBOUNDED);
}

struct lc_b {
	conc_chan *ping, *pong;
	uint64_t count;
};

static void *lc_b_echo(void *arg)
{
	struct lc_b *b = arg;
	void *v;
	uint64_t c = 0;
	while (conc_chan_recv(b->ping, &v) == 0) {
		if (conc_chan_send(b->pong, (void *)((uintptr_t)v + 1)) != 0)
			abort();
		c++;
	}
	b->count = c;
	return NULL;
}

static bench_result lc_w7b(void *arg, unsigned p)
{
	(void)arg;
	(void)p;
	struct lc_b b = {0};
	if (conc_chan_create(&b.ping, 0) || conc_chan_create(&b.pong, 0))
		return verdict(0, false);
	pthread_t t;
	double t0 = now();
	pthread_create(&t, NULL, lc_b_echo, &b);
	uintptr_t v = 0;
	for (uint64_t i = 0; i < R_B; i++) {
		void *r;
		if (conc_chan_send(b.ping, (void *)v) || conc_chan_recv(b.pong, &r))
			abort();
		v = (uintptr_t)r;
	}
	conc_chan_close(b.ping);
	pthread_join(t, NULL);
	double secs = now() - t0;
	conc_chan_destroy(b.ping, NULL);
	conc_chan_destroy(b.pong, NULL);
	return verdict(secs, b.count == R_B && v == R_B);
}

static bench_result lc_w7c(void *arg, unsigned p)
{
	(void)arg;
	(void)p;
	conc_chan *c[4];
	for (int i = 0; i < 4; i++)
		if (conc_chan_create(&c[i], CAP_C))
			return verdict(0, false);
	atomic_uint left[4];
	struct lc_a a[4];
	pthread_t t[4];
	double t0 = now();
	for (unsigned i = 0; i < 4; i++) {
		atomic_init(&left[i], 1);
		a[i] = (struct lc_a){c[i], N_C, i, &left[i], 0, 0};
		pthread_create(&t[i], NULL, lc_a_sender, &a[i]);
	}
	conc_select_op ops[4];
	size_t n = 4;
	for (int i = 0; i < 4; i++)
		ops[i] = (conc_select_op){c[i], false, NULL};
	uint64_t cnt = 0, sum = 0;
	while (n > 0) {
		size_t done;
		int r = conc_select(ops, n, UINT64_MAX, 0, &done);
		if (r == 0) {
			cnt++;
			sum += (uintptr_t)ops[done].item;
		} else if (r == EPIPE) {
			ops[done] = ops[--n];
		} else {
			abort();
		}
	}
	for (int i = 0; i < 4; i++)
		pthread_join(t[i], NULL);
	double secs = now() - t0;
	for (int i = 0; i < 4; i++)
		conc_chan_destroy(c[i], NULL);
	return verdict(secs, cnt == 4 * N_C && sum == tri(4 * N_C));
}

/* ---- mutex + two condition variables ring ---------------------------------- */

struct ring {
	pthread_mutex_t m;
	pthread_cond_t not_empty, not_full;
	uint64_t *buf;
	size_t cap, head, len;
	bool closed;
};

static void ring_init(struct ring *r, size_t cap)
{
	pthread_mutex_init(&r->m, NULL);
	pthread_cond_init(&r->not_empty, NULL);
	pthread_cond_init(&r->not_full, NULL);
	r->buf = malloc(cap * sizeof *r->buf);
	r->cap = cap;
	r->head = r->len = 0;
	r->closed = false;
}

static void ring_fini(struct ring *r)
{
	free(r->buf);
	pthread_mutex_destroy(&r->m);
	pthread_cond_destroy(&r->not_empty);
	pthread_cond_destroy(&r->not_full);
}

static void ring_send(struct ring *r, uint64_t v)
{
	pthread_mutex_lock(&r->m);
	while (r->len == r->cap)
		pthread_cond_wait(&r->not_full, &r->m);
	r->buf[(r->head + r->len++) % r->cap] = v;
	pthread_mutex_unlock(&r->m);
	pthread_cond_signal(&r->not_empty);
}

static bool ring_recv(struct ring *r, uint64_t *v)
{
	pthread_mutex_lock(&r->m);
	while (r->len == 0 && !r->closed)
		pthread_cond_wait(&r->not_empty, &r->m);
	if (r->len == 0) {
		pthread_mutex_unlock(&r->m);
		return false;
	}
	*v = r->buf[r->head];
	r->head = (r->head + 1) % r->cap;
	r->len--;
	pthread_mutex_unlock(&r->m);
	pthread_cond_signal(&r->not_full);
	return true;
}

static void ring_close(struct ring *r)
{
	pthread_mutex_lock(&r->m);
	r->closed = true;
	pthread_mutex_unlock(&r->m);
	pthread_cond_broadcast(&r->not_empty);
}

struct ring_a {
	struct ring *r;
	uint64_t n;
	unsigned id;
	atomic_uint *left;
	uint64_t count, sum;
};

static void *ring_sender(void *arg)
{
	struct ring_a *a = arg;
	for (uint64_t k = 0; k < a->n; k++)
		ring_send(a->r, (uint64_t)a->id * a->n + k + 1);
	if (atomic_fetch_sub(a->left, 1) == 1)
		ring_close(a->r);
	return NULL;
}

static void *ring_receiver(void *arg)
{
	struct ring_a *a = arg;
	uint64_t v, c = 0, s = 0;
	while (ring_recv(a->r, &v)) {
		c++;
		s += v;
	}
	a->count = c;
	a->sum = s;
	return NULL;
}

static bench_result ring_w7a(void *arg, unsigned p)
{
	(void)arg;
	struct ring r;
	ring_init(&r, CAP_A);
	atomic_uint left = p;
	struct ring_a a[2 * BENCH_MAX_THREADS];
	pthread_t t[2 * BENCH_MAX_THREADS];
	double t0 = now();
	for (unsigned i = 0; i < 2 * p; i++) {
		a[i] = (struct ring_a){&r, N_A, i < p ? i : i - p, &left, 0, 0};
		pthread_create(&t[i], NULL, i < p ? ring_receiver : ring_sender, &a[i]);
	}
	for (unsigned i = 0; i < 2 * p; i++)
		pthread_join(t[i], NULL);
	double secs = now() - t0;
	uint64_t cnt = 0, sum = 0;
	for (unsigned i = 0; i < p; i++) {
		cnt += a[i].count;
		sum += a[i].sum;
	}
	ring_fini(&r);
	return verdict(secs, cnt == p * N_A && sum == tri(p * N_A));
}

/* ---- GLib GAsyncQueue (unbounded; poison 0 per receiver) --------------------- */

#if defined(BENCH_HAVE_GLIB)
struct gq_a {
	GAsyncQueue *q;
	uint64_t n;
	unsigned id, p;
	atomic_uint *left;
	uint64_t count, sum;
};

static void *gq_sender(void *arg)
{
	struct gq_a *a = arg;
	/* GAsyncQueue refuses NULL: values are 1.. and the poison is ~0 */
	for (uint64_t k = 0; k < a->n; k++)
		g_async_queue_push(a->q, (gpointer)(uintptr_t)((uint64_t)a->id * a->n + k + 1));
	if (atomic_fetch_sub(a->left, 1) == 1)
		for (unsigned r = 0; r < a->p; r++)
			g_async_queue_push(a->q, (gpointer)~(uintptr_t)0);
	return NULL;
}

static void *gq_receiver(void *arg)
{
	struct gq_a *a = arg;
	uint64_t c = 0, s = 0;
	for (;;) {
		uintptr_t v = (uintptr_t)g_async_queue_pop(a->q);
		if (v == ~(uintptr_t)0)
			break;
		c++;
		s += v;
	}
	a->count = c;
	a->sum = s;
	return NULL;
}

static bench_result gq_w7x(unsigned p, uint64_t n)
{
	GAsyncQueue *q = g_async_queue_new();
	atomic_uint left = p;
	struct gq_a a[2 * BENCH_MAX_THREADS];
	pthread_t t[2 * BENCH_MAX_THREADS];
	double t0 = now();
	for (unsigned i = 0; i < 2 * p; i++) {
		a[i] = (struct gq_a){q, n, i < p ? i : i - p, p, &left, 0, 0};
		pthread_create(&t[i], NULL, i < p ? gq_receiver : gq_sender, &a[i]);
	}
	for (unsigned i = 0; i < 2 * p; i++)
		pthread_join(t[i], NULL);
	double secs = now() - t0;
	uint64_t cnt = 0, sum = 0;
	for (unsigned i = 0; i < p; i++) {
		cnt += a[i].count;
		sum += a[i].sum;
	}
	g_async_queue_unref(q);
	return verdict(secs, cnt == p * n && sum == tri(p * n));
}

static bench_result gq_w7a(void *arg, unsigned p)
{
	(void)arg;
	return gq_w7x(p, N_A);
}

static bench_result gq_w7d(void *arg, unsigned p)
{
	(void)arg;
	(void)p;
	return gq_w7x(1, N_D);
}
#endif

/* ---- the C++ peers ---------------------------------------------------------- */

static bench_result from_secs(double s)
{
	return verdict(s < 0 ? 0 : s, s >= 0);
}

#if defined(BENCH_HAVE_TBB)
static bench_result tbb_a(void *arg, unsigned p)
{
	(void)arg;
	return from_secs(tbb_w7a(p, N_A, CAP_A));
}
static bench_result tbb_d(void *arg, unsigned p)
{
	(void)arg;
	(void)p;
	return from_secs(tbb_w7a(1, N_D, UINT64_MAX));
}
#endif
#if defined(BENCH_HAVE_MOODYCAMEL)
static bench_result mcb_a(void *arg, unsigned p)
{
	(void)arg;
	return from_secs(mcb_w7a(p, N_A));
}
static bench_result mcb_d(void *arg, unsigned p)
{
	(void)arg;
	(void)p;
	return from_secs(mcb_w7a(1, N_D));
}
#endif

/* ---- crossbeam-channel -------------------------------------------------------- */

#if defined(BENCH_HAVE_CROSSBEAM_CHANNEL)
static bench_result cbc_a(void *arg, unsigned p)
{
	(void)arg;
	return from_secs(cbc_w7a(p, N_A, CAP_A));
}
static bench_result cbc_b(void *arg, unsigned p)
{
	(void)arg;
	(void)p;
	return from_secs(cbc_w7b(R_B));
}
static bench_result cbc_c(void *arg, unsigned p)
{
	(void)arg;
	(void)p;
	return from_secs(cbc_w7c(N_C));
}
static bench_result cbc_d(void *arg, unsigned p)
{
	(void)arg;
	(void)p;
	return from_secs(cbc_w7a(1, N_D, UINT64_MAX));
}
#endif

/* ---- Go: a child process that times its own region --------------------------- */

#if defined(BENCH_GO_CHAN)
/* Run go_chan with the words in argv (NULL-terminated); its "ok SECONDS". */
static double go_run(char **argv, long *hwm)
{
	int fd[2];
	if (pipe(fd))
		return -1;
	pid_t pid = fork();
	if (pid == 0) {
		dup2(fd[1], 1);
		close(fd[0]);
		close(fd[1]);
		execv(BENCH_GO_CHAN, argv);
		_exit(127);
	}
	close(fd[1]);
	char buf[128] = {0};
	ssize_t k, got = 0;
	while (got < (ssize_t)sizeof buf - 1 &&
	       (k = read(fd[0], buf + got, sizeof buf - 1 - (size_t)got)) > 0)
		got += k;
	close(fd[0]);
	int st;
	if (waitpid(pid, &st, 0) != pid || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
		return -1;
	double s;
	long h = -1;
	if (sscanf(buf, "ok %lf %ld", &s, &h) < 1)
		return -1;
	if (hwm)
		*hwm = h;
	return s;
}

static char *u64s(char *b, uint64_t v)
{
	snprintf(b, 24, "%llu", (unsigned long long)v);
	return b;
}

static bench_result go_a(void *arg, unsigned p)
{
	(void)arg;
	char a[24], b[24], c[24];
	char *argv[] = {(char *)"go_chan", (char *)"w7a", u64s(a, p), u64s(b, N_A), u64s(c, CAP_A), NULL};
	return from_secs(go_run(argv, NULL));
}
static bench_result go_b(void *arg, unsigned p)
{
	(void)arg;
	(void)p;
	char a[24];
	char *argv[] = {(char *)"go_chan", (char *)"w7b", u64s(a, R_B), NULL};
	return from_secs(go_run(argv, NULL));
}
static bench_result go_c(void *arg, unsigned p)
{
	(void)arg;
	(void)p;
	char a[24];
	char *argv[] = {(char *)"go_chan", (char *)"w7c", u64s(a, N_C), NULL};
	return from_secs(go_run(argv, NULL));
}
#endif

/* ---- the implementations ------------------------------------------------------ */

#if defined(BENCH_HAVE_CROSSBEAM_CHANNEL)
#define CBC(name, fn) {name, fn, NULL}
#else
#define CBC(name, fn) BENCH_MISSING(name, BENCH_CROSSBEAM_CHANNEL_MISSING)
#endif
#if defined(BENCH_GO_CHAN)
#define GO(name, fn) {name, fn, NULL}
#else
#define GO(name, fn) BENCH_MISSING(name, BENCH_GO_MISSING)
#endif
#if defined(BENCH_HAVE_GLIB)
#define GQ(name, fn) {name, fn, NULL}
#else
#define GQ(name, fn) BENCH_MISSING(name, "no glib-2.0 (Debian: libglib2.0-dev)")
#endif
#if defined(BENCH_HAVE_TBB)
#define TBB(name, fn) {name, fn, NULL}
#else
#define TBB(name, fn) BENCH_MISSING(name, BENCH_TBB_MISSING)
#endif
#if defined(BENCH_HAVE_MOODYCAMEL)
#define MCB(name, fn) {name, fn, NULL}
#else
#define MCB(name, fn) BENCH_MISSING(name, BENCH_MOODYCAMEL_MISSING)
#endif

static const bench_impl impls_a[] = {
	{"libconc", lc_w7a, NULL},
	CBC("crossbeam bounded", cbc_a),
	GO("go chan", go_a),
	{"mutex+2cond ring", ring_w7a, NULL},
	TBB("tbb bounded_queue", tbb_a),
	GQ("GAsyncQueue (unbounded)", gq_w7a),
	MCB("moodycamel blocking (unbounded)", mcb_a),
};
static const bench_impl impls_b[] = {
	{"libconc", lc_w7b, NULL},
	CBC("crossbeam zero", cbc_b),
	GO("go chan unbuffered", go_b),
	BENCH_MISSING("mutex+2cond ring", "no rendezvous"),
	BENCH_MISSING("tbb bounded_queue", "no rendezvous"),
	BENCH_MISSING("GAsyncQueue", "no rendezvous"),
	BENCH_MISSING("moodycamel blocking", "no rendezvous"),
};
static const bench_impl impls_c[] = {
	{"libconc", lc_w7c, NULL},
	CBC("crossbeam select!", cbc_c),
	GO("go select", go_c),
	BENCH_MISSING("mutex+2cond ring", "no select"),
	BENCH_MISSING("tbb bounded_queue", "no select"),
	BENCH_MISSING("GAsyncQueue", "no select"),
	BENCH_MISSING("moodycamel blocking", "no select"),
};
static const bench_impl impls_d[] = {
	{"libconc", lc_w7d, NULL},
	CBC("crossbeam unbounded", cbc_d),
	BENCH_MISSING("go chan", "no unbounded channel"),
	BENCH_MISSING("mutex+2cond ring", "bounded only"),
	TBB("tbb (unbounded)", tbb_d),
	GQ("GAsyncQueue", gq_w7d),
	MCB("moodycamel blocking", mcb_d),
};
#define NI(a) ((int)(sizeof a / sizeof a[0]))

/* ---- idle receiver CPU -------------------------------------------------------- */

struct idle {
	void (*pop)(void *q);
	void *q;
	atomic_int started;
};

static void *idle_main(void *arg)
{
	struct idle *d = arg;
	atomic_store(&d->started, 1);
	d->pop(d->q);
	return NULL;
}

static void lc_idle_pop(void *q)
{
	void *v;
	if (conc_chan_recv(q, &v) != 0)
		abort();
}

static void ring_idle_pop(void *q)
{
	uint64_t v;
	if (!ring_recv(q, &v))
		abort();
}

#if defined(BENCH_HAVE_GLIB)
static void gq_idle_pop(void *q)
{
	(void)g_async_queue_pop(q);
}
#endif

/* CPU seconds a receiver blocked on an empty queue uses in 300 ms. */
static double idle_cpu(void (*pop)(void *), void *q, void (*push)(void *))
{
	struct idle d = {pop, q, 0};
	pthread_t t;
	pthread_create(&t, NULL, idle_main, &d);
	while (!atomic_load(&d.started))
		sched_yield();
	struct timespec ms50 = {0, 50000000}, ms300 = {0, 300000000};
	nanosleep(&ms50, NULL); /* past its spinning phase */
	clockid_t cid;
	pthread_getcpuclockid(t, &cid);
	struct timespec a, b;
	clock_gettime(cid, &a);
	nanosleep(&ms300, NULL);
	clock_gettime(cid, &b);
	push(q);
	pthread_join(t, NULL);
	return (double)(b.tv_sec - a.tv_sec) + (double)(b.tv_nsec - a.tv_nsec) * 1e-9;
}

static void lc_idle_push(void *q)
{
	if (conc_chan_send(q, (void *)1))
		abort();
}
static void ring_idle_push(void *q)
{
	ring_send(q, 1);
}
#if defined(BENCH_HAVE_GLIB)
static void gq_idle_push(void *q)
{
	g_async_queue_push(q, (gpointer)1);
}
#endif

static void report_idle(void)
{
	printf("\nidle blocked receiver, CPU time over 300 ms (after 50 ms to settle):\n");
	conc_chan *c;
	if (conc_chan_create(&c, CAP_A) == 0) {
		printf("  %-34s %.6f s\n", "libconc (bounded)", idle_cpu(lc_idle_pop, c, lc_idle_push));
		conc_chan_destroy(c, NULL);
	}
	if (conc_chan_create(&c, 0) == 0) {
		printf("  %-34s %.6f s\n", "libconc (rendezvous)", idle_cpu(lc_idle_pop, c, lc_idle_push));
		conc_chan_destroy(c, NULL);
	}
	struct ring r;
	ring_init(&r, CAP_A);
	printf("  %-34s %.6f s\n", "mutex+2cond ring", idle_cpu(ring_idle_pop, &r, ring_idle_push));
	ring_fini(&r);
#if defined(BENCH_HAVE_GLIB)
	GAsyncQueue *q = g_async_queue_new();
	printf("  %-34s %.6f s\n", "GAsyncQueue", idle_cpu(gq_idle_pop, q, gq_idle_push));
	g_async_queue_unref(q);
#endif
#if defined(BENCH_HAVE_TBB)
	void *tq = tbb_idle_new();
	printf("  %-34s %.6f s\n", "tbb bounded_queue", idle_cpu(tbb_idle_pop, tq, tbb_idle_push));
	tbb_idle_free(tq);
#endif
#if defined(BENCH_HAVE_MOODYCAMEL)
	void *mq = mcb_idle_new();
	printf("  %-34s %.6f s\n", "moodycamel blocking", idle_cpu(mcb_idle_pop, mq, mcb_idle_push));
	mcb_idle_free(mq);
#endif
	printf("  (crossbeam and Go not measured here)\n");
}

/* ---- peak RSS of one W7a run, each in a fresh process ------------------------ */

/* VmHWM of this process (KiB): the peak resident set of its own address
 * space since exec (ru_maxrss would carry the forking parent's). */
static long self_hwm(void)
{
	FILE *f = fopen("/proc/self/status", "r");
	char line[256];
	long v = -1;
	while (f && fgets(line, sizeof line, f))
		if (sscanf(line, "VmHWM: %ld", &v) == 1)
			break;
	if (f)
		fclose(f);
	return v;
}

/* --rss-child I P: run impls_a[I] (I -1: nothing) once, print "hwm KiB". */
static int rss_child(int i, unsigned p)
{
	bool ok = true;
	if (i >= 0)
		ok = impls_a[i].run(impls_a[i].arg, p).verified;
	printf("hwm %ld\n", self_hwm());
	return ok ? 0 : 1;
}

static long spawn_hwm(char **argv, const char *path)
{
	int fd[2];
	if (pipe(fd))
		return -1;
	fflush(stdout);
	pid_t pid = fork();
	if (pid == 0) {
		dup2(fd[1], 1);
		close(fd[0]);
		close(fd[1]);
		execv(path, argv);
		_exit(127);
	}
	close(fd[1]);
	char buf[128] = {0};
	ssize_t k, got = 0;
	while (got < (ssize_t)sizeof buf - 1 &&
	       (k = read(fd[0], buf + got, sizeof buf - 1 - (size_t)got)) > 0)
		got += k;
	close(fd[0]);
	int st;
	long h;
	if (waitpid(pid, &st, 0) != pid || !WIFEXITED(st) || WEXITSTATUS(st) != 0 ||
	    sscanf(buf, "hwm %ld", &h) != 1)
		return -1;
	return h;
}

static void report_rss(unsigned p)
{
	printf("\npeak RSS (VmHWM, KiB) of one W7a run (P = %u, N = %llu), each in a fresh "
	       "process:\n", p, (unsigned long long)N_A);
	char self[4096];
	ssize_t k = readlink("/proc/self/exe", self, sizeof self - 1);
	if (k <= 0)
		return;
	self[k] = 0;
	char ps[24], ns[24], is[24];
	snprintf(ps, sizeof ps, "%u", p);
	snprintf(ns, sizeof ns, "%llu", (unsigned long long)N_A);
	for (int i = -1; i < NI(impls_a); i++) {
		const char *name = i < 0 ? "baseline (no run)" : impls_a[i].name;
		if (i >= 0 && !impls_a[i].run) {
			printf("  %-34s missing\n", name);
			continue;
		}
#if defined(BENCH_GO_CHAN)
		if (i >= 0 && impls_a[i].run == go_a) {
			char a[24], bb[24], c[24];
			char *argv[] = {(char *)"go_chan", (char *)"w7a", u64s(a, p), u64s(bb, N_A), u64s(c, CAP_A), NULL};
			long h = -1;
			go_run(argv, &h);
			printf("  %-34s %ld (the Go program alone)\n", name, h);
			continue;
		}
#endif
		snprintf(is, sizeof is, "%d", i);
		char *argv[] = {self, (char *)"--rss-child", is, ps, ns, NULL};
		printf("  %-34s %ld\n", name, spawn_hwm(argv, self));
	}
}

int main(int argc, char **argv)
{
	static const unsigned def[] = {1, 2, 4, 8, 0};
	if (argc == 5 && !strcmp(argv[1], "--rss-child")) {
		N_A = strtoull(argv[4], NULL, 10);
		return rss_child(atoi(argv[2]), (unsigned)atoi(argv[3]));
	}
	bench_cfg cfg;
	bench_init(&cfg, argc, argv, def);
	if (cfg.quick) {
		N_A /= 10;
		R_B /= 10;
		N_C /= 10;
		N_D /= 10;
	}
	if (bench_wanted(&cfg, "W7a"))
		for (int i = 0; i < cfg.nthreads; i++)
			bench_row(&cfg, "W7a chan cap 1024", cfg.threads[i], (double)cfg.threads[i] * (double)N_A,
				  BENCH_MOPS, impls_a, NI(impls_a));
	if (bench_wanted(&cfg, "W7b"))
		bench_row(&cfg, "W7b rendezvous ping-pong", 2, (double)R_B, BENCH_NS_PER_OP, impls_b,
			  NI(impls_b));
	if (bench_wanted(&cfg, "W7c"))
		bench_row(&cfg, "W7c select over 4", 5, 4.0 * (double)N_C, BENCH_MOPS, impls_c,
			  NI(impls_c));
	if (bench_wanted(&cfg, "W7d"))
		bench_row(&cfg, "W7d unbounded 1:1", 2, (double)N_D, BENCH_MOPS, impls_d, NI(impls_d));
	if (bench_wanted(&cfg, "idle"))
		report_idle();
	if (bench_wanted(&cfg, "rss"))
		report_rss(4);
	return bench_finish(&cfg);
}
