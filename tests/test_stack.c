/*
 * test_stack.c - conc/stack.h: the shared container contract
 * (container_tests.h) with LIFO expectations, plus the elimination layer
 * and the node caches.
 */
#include <malloc.h>
#include <sys/wait.h>
#include <unistd.h>

#include "conc/stack.h"
#include "stack/stack_internal.h"

#define CT_PRIM "test_stack"
#include "container_tests.h"

static const ct_ops CT = {
	.ops = &tl_stack,
	.spec = LC_LIFO,
	.force_alloc = conc__stack_trim_caches,
	.alloc_every = 1,
	.steady_max_allocs = 4096,
};

/* Concurrent pushers and poppers with elimination on and off: the same
 * exactly-once result; off, no pair is matched in the elimination array. */
typedef struct elim_run {
	conc_stack *s;
	unsigned long per;
	atomic_ulong popped;
	unsigned long total;
	atomic_uchar *seen;
} elim_run;

typedef struct elim_arg {
	elim_run *r;
	unsigned id;
	unsigned long dup, bad;
} elim_arg;

static void *elim_pusher(void *arg)
{
	elim_arg *a = arg;
	for (unsigned long i = 0; i < a->r->per; i++)
		if (conc_stack_push(a->r->s, (void *)(uintptr_t)(a->id * a->r->per + i + 1)) != 0)
			a->bad++;
	return NULL;
}

static void *elim_popper(void *arg)
{
	elim_arg *a = arg;
	elim_run *r = a->r;
	void *it;
	while (atomic_load(&r->popped) < r->total) {
		if (!conc_stack_try_pop(r->s, &it)) {
			sched_yield();
			continue;
		}
		atomic_fetch_add(&r->popped, 1);
		uintptr_t v = (uintptr_t)it;
		if (v == 0 || v > r->total)
			a->bad++;
		else if (atomic_fetch_add(&r->seen[v - 1], 1))
			a->dup++;
	}
	return NULL;
}

static uint64_t elim_once(bool on, unsigned pairs, unsigned long per)
{
	elim_run r = {.per = per, .total = pairs * per};
	assert_int_equal(conc_stack_create(&r.s), 0);
	conc__stack_set_elimination(r.s, on);
	atomic_init(&r.popped, 0);
	r.seen = calloc(r.total, 1);
	assert_non_null(r.seen);
	pthread_t t[16];
	elim_arg a[16];
	for (unsigned i = 0; i < 2 * pairs; i++) {
		a[i] = (elim_arg){&r, i % pairs, 0, 0};
		assert_int_equal(pthread_create(&t[i], NULL, i < pairs ? elim_pusher : elim_popper,
						&a[i]), 0);
	}
	unsigned long dup = 0, bad = 0;
	for (unsigned i = 0; i < 2 * pairs; i++) {
		pthread_join(t[i], NULL);
		dup += a[i].dup;
		bad += a[i].bad;
	}
	assert_int_equal(dup, 0);
	assert_int_equal(bad, 0);
	for (unsigned long i = 0; i < r.total; i++)
		assert_int_equal(atomic_load(&r.seen[i]), 1);
	assert_true(conc_stack_is_empty(r.s));
	uint64_t matched = conc__stack_eliminated(r.s);
	conc_stack_destroy(r.s, NULL);
	free(r.seen);
	return matched;
}

static void test_stack_elimination_switch(void **state)
{
	(void)state;
	conc_test_watchdog("elimination", 120);
	unsigned long per = conc_test_iters(100000, 10);
	uint64_t on = elim_once(true, 4, per);
	uint64_t off = elim_once(false, 4, per);
	print_message("pairs matched by elimination: %llu (on), %llu (off) of %lu\n",
		      (unsigned long long)on, (unsigned long long)off, 4 * per);
	assert_int_equal(off, 0);
	assert_true(on <= 4 * per);
	conc_test_watchdog_off();
}

/*
 * The elimination protocol on its own, where it can be made to happen at
 * will: a pusher offers items 1..N one at a time, each until a pop takes
 * it; a popper takes from the slots only.  Every item is handed over
 * exactly once and in order, and each hand-over is counted once.
 */
enum { HAND_N = 2000 };

typedef struct hand {
	conc_stack *s;
	unsigned long offers, taken, bad;
	uintptr_t got[HAND_N];
	unsigned ngot;
} hand;

static void *hand_pusher(void *arg)
{
	hand *h = arg;
	for (uintptr_t i = 1; i <= HAND_N; i++) {
		int r;
		do {
			h->offers++;
			r = conc__stack_offer(h->s, (void *)i, 1u << 16);
		} while (r == 0);
		if (r == 1)
			h->taken++;
		else
			h->bad++;
	}
	return NULL;
}

static void *hand_popper(void *arg)
{
	hand *h = arg;
	void *it;
	while (h->ngot < HAND_N)
		if (conc__stack_take(h->s, &it))
			h->got[h->ngot++] = (uintptr_t)it;
	return NULL;
}

static void test_stack_elimination_handover(void **state)
{
	(void)state;
	conc_test_watchdog("elimination hand-over", 120);
	static hand h;
	memset(&h, 0, sizeof h);
	assert_int_equal(conc_stack_create(&h.s), 0);
	pthread_t a, b;
	assert_int_equal(pthread_create(&a, NULL, hand_pusher, &h), 0);
	assert_int_equal(pthread_create(&b, NULL, hand_popper, &h), 0);
	pthread_join(a, NULL);
	pthread_join(b, NULL);
	conc_test_watchdog_off();
	print_message("hand-over: %u items in %lu offers\n", h.ngot, h.offers);
	assert_int_equal(h.bad, 0);
	assert_int_equal(h.taken, HAND_N);
	assert_int_equal(h.ngot, HAND_N);
	for (unsigned i = 0; i < HAND_N; i++)
		assert_int_equal(h.got[i], i + 1);
	assert_int_equal(conc__stack_eliminated(h.s), HAND_N);
	assert_true(conc_stack_is_empty(h.s)); /* nothing went through top */
	assert_int_equal(conc__stack_offers_waiting(h.s), 0);
	conc_stack_destroy(h.s, NULL);
}

/* close seals the slots: an offer waiting in one is cancelled (its pusher
 * gets it back), and no pop can take it or any later offer. */
typedef struct sealed {
	conc_stack *s;
	int result;
} sealed;

static void *sealed_pusher(void *arg)
{
	sealed *x = arg;
	/* nobody else uses the slots, so the offer is posted; it waits until
	 * a pop takes it or the slot changes (close), for minutes at most */
	x->result = conc__stack_offer(x->s, (void *)(uintptr_t)7, UINT32_MAX);
	return NULL;
}

static void test_stack_close_cancels_offer(void **state)
{
	(void)state;
	conc_test_watchdog("close cancels offer", 120);
	sealed x = {NULL, -1};
	assert_int_equal(conc_stack_create(&x.s), 0);
	pthread_t t;
	assert_int_equal(pthread_create(&t, NULL, sealed_pusher, &x), 0);
	/* poll until the offer is in its slot (a state, not a delay) */
	while (conc__stack_offers_waiting(x.s) == 0)
		sched_yield();
	conc_stack_close(x.s);
	pthread_join(t, NULL);
	conc_test_watchdog_off();
	assert_int_equal(x.result, 0);                 /* cancelled, not taken */
	assert_int_equal(conc__stack_offers_waiting(x.s), 0);
	void *it = NULL;
	assert_false(conc__stack_take(x.s, &it));      /* sealed: nothing to take */
	assert_int_equal(conc__stack_offer(x.s, (void *)(uintptr_t)8, 1000), 0);
	assert_false(conc__stack_take(x.s, &it));
	assert_int_equal(conc__stack_eliminated(x.s), 0);
	assert_int_equal(conc_stack_push(x.s, (void *)(uintptr_t)9), EPIPE);
	conc_stack_destroy(x.s, NULL);
}

/* Stacks on a private domain gather popped nodes per stack and retire
 * them every RETIRE_BATCH (64) pops of that stack, whoever pops: one thread
 * alternating between two stacks, and many short-lived threads popping a
 * few items each, leave at most a batch's worth pending in each. */
static void *pop_few(void *arg)
{
	void *it;
	for (int i = 0; i < 10; i++)
		if (!conc_stack_try_pop(arg, &it))
			return arg; /* an error: the stack held enough */
	return NULL;
}

static void test_stack_private_pending_bounded(void **state)
{
	(void)state;
	conc_epoch *d;
	assert_int_equal(conc_epoch_create(&d), 0);
	conc_stack *a, *b;
	assert_int_equal(conc_stack_create_in(&a, d), 0);
	assert_int_equal(conc_stack_create_in(&b, d), 0);
	for (int i = 0; i < 100000; i++) {
		void *it;
		assert_int_equal(conc_stack_push(a, (void *)(uintptr_t)(i + 1)), 0);
		assert_true(conc_stack_try_pop(a, &it));
		assert_int_equal(conc_stack_push(b, (void *)(uintptr_t)(i + 1)), 0);
		assert_true(conc_stack_try_pop(b, &it));
	}
	unsigned pa = conc__stack_pending(a), pb = conc__stack_pending(b);
	enum { THREADS = 200 };
	for (int i = 0; i < THREADS * 10; i++)
		assert_int_equal(conc_stack_push(a, (void *)(uintptr_t)(i + 1)), 0);
	for (int i = 0; i < THREADS; i++) {
		pthread_t t;
		void *ret = a;
		assert_int_equal(pthread_create(&t, NULL, pop_few, a), 0);
		pthread_join(t, &ret);
		assert_null(ret);
	}
	unsigned pa2 = conc__stack_pending(a);
	print_message("pending: %u and %u after 100000 alternating pairs, %u after %d threads x 10 pops\n",
		      pa, pb, pa2, THREADS);
	assert_true(pa < 64 && pb < 64 && pa2 < 64);
	assert_true(conc_stack_is_empty(a) && conc_stack_is_empty(b));
	conc_stack_destroy(a, NULL);
	conc_stack_destroy(b, NULL);
	assert_int_equal(conc_epoch_destroy(d), 0);
}

/* Destroying the last stack frees the caches; a new stack starts over. */
static void test_stack_caches_survive_churn(void **state)
{
	(void)state;
	for (int round = 0; round < 3; round++) {
		conc_stack *a, *b;
		assert_int_equal(conc_stack_create(&a), 0);
		assert_int_equal(conc_stack_create(&b), 0);
		for (int i = 0; i < 1000; i++) {
			assert_int_equal(conc_stack_push(a, (void *)(uintptr_t)i), 0);
			assert_int_equal(conc_stack_push(b, (void *)(uintptr_t)i), 0);
		}
		void *it;
		for (int i = 0; i < 600; i++) {
			assert_true(conc_stack_try_pop(a, &it));
			assert_ptr_equal(it, (void *)(uintptr_t)(999 - i));
		}
		conc_stack_destroy(a, NULL);
		for (int i = 0; i < 1000; i++) {
			assert_true(conc_stack_try_pop(b, &it));
			assert_ptr_equal(it, (void *)(uintptr_t)(999 - i));
		}
		conc_stack_destroy(b, NULL);
		conc_epoch_barrier(conc_epoch_global());
	}
}

/*
 * fork() while another thread holds the node depot's lock (issue 15): the
 * child must not inherit it held.  A pause point in the library stops the
 * first thread that takes the depot lock once the test arms it, holding the
 * lock; the main thread forks while it is stopped, so the fork lands in the
 * window every time.  The child then uses a stack and destroys every stack,
 * and the last destroy takes the depot lock (blocking) to drain it: with
 * the lock inherited held, the child spins there forever, and the parent
 * counts a hang when the child's deadline passes.  The holder is let go
 * when the stack's fork prepare handler starts (a pause point there): that
 * handler takes the depot lock itself, so it waits for the holder; with no
 * handler (the bug), the holder is let go after fork has returned in the
 * parent, so the child's copy is certain to hold the lock.
 */
#if defined(CONC_FAULT_HOOKS) && CONC_FAULT_HOOKS
static struct {
	atomic_int armed;   /* 1: the next depot holder stops */
	atomic_int holding; /* a holder is stopped (holding the lock) */
	atomic_int release; /* the stopped holder may go */
	atomic_int stop;    /* the hammer thread ends */
} dh;

static void depot_pause(const char *point)
{
	if (strcmp(point, "stack.fork_prepare") == 0) {
		/* the fork's prepare is about to take the depot lock */
		atomic_store(&dh.release, 1);
		return;
	}
	if (strcmp(point, "stack.depot_locked") != 0)
		return;
	int one = 1;
	if (!atomic_compare_exchange_strong(&dh.armed, &one, 0))
		return;
	atomic_store(&dh.holding, 1);
	while (!atomic_load(&dh.release))
		sched_yield();
	atomic_store(&dh.holding, 0);
}

/* Depot traffic: runs of pushes and pops much longer than a magazine
 * (MAG_BATCH, 64), and a flush now and then so that retired nodes come
 * back, fill magazines and spill whole batches to the depot. */
static void *depot_hammer(void *arg)
{
	conc_stack *s = arg;
	enum { N = 512 };
	unsigned long bad = 0;
	while (!atomic_load(&dh.stop)) {
		for (uintptr_t i = 1; i <= N; i++)
			bad += conc_stack_push(s, (void *)i) != 0;
		void *it;
		for (unsigned i = 0; i < N; i++)
			bad += !conc_stack_try_pop(s, &it);
		conc_epoch_flush(conc_epoch_global());
	}
	return (void *)(uintptr_t)bad;
}

static int fork_child_uses_stacks(conc_stack *inherited)
{
	conc_stack *c;
	if (conc_stack_create(&c) != 0)
		return 1;
	void *it;
	for (uintptr_t i = 1; i <= 1000; i++)
		if (conc_stack_push(c, (void *)i) != 0)
			return 2;
	for (uintptr_t i = 1000; i >= 1; i--)
		if (!conc_stack_try_pop(c, &it) || it != (void *)i)
			return 3;
	conc_stack_destroy(c, NULL);
	/* the last stack: its destroy drains the depot under depot_lock */
	conc_stack_destroy(inherited, NULL);
	return conc_epoch_barrier(conc_epoch_global()) == 0 ? 0 : 4;
}

static void test_stack_fork_depot_held(void **state)
{
	(void)state;
	conc_test_watchdog(__func__, 120);
	conc_stack *s;
	assert_int_equal(conc_stack_create(&s), 0);
	atomic_store(&dh.stop, 0);
	atomic_store(&dh.armed, 0);
	conc__test_set_hook(depot_pause);
	pthread_t t;
	assert_int_equal(pthread_create(&t, NULL, depot_hammer, s), 0);
	enum { FORKS = 3 };
	unsigned hangs = 0, bad_exits = 0;
	for (int k = 0; k < FORKS; k++) {
		atomic_store(&dh.release, 0);
		atomic_store(&dh.armed, 1);
		while (!atomic_load(&dh.holding))
			sched_yield();
		pid_t pid = fork();
		assert_true(pid >= 0);
		if (pid == 0)
			_exit(fork_child_uses_stacks(s));
		atomic_store(&dh.release, 1); /* no prepare let it go: we do */
		int status = 0;
		int rc = conc_test_wait_child(pid, 10000, &status, NULL);
		if (rc == ETIMEDOUT)
			hangs++;
		else if (rc != 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
			bad_exits++;
		while (atomic_load(&dh.holding))
			sched_yield();
	}
	atomic_store(&dh.stop, 1);
	void *bad;
	pthread_join(t, &bad);
	conc__test_set_hook(NULL);
	conc_stack_destroy(s, NULL);
	print_message("fork with the depot lock held: forks=%d hangs=%u bad_exits=%u\n", FORKS,
		      hangs, bad_exits);
	conc_test_watchdog_off();
	assert_null(bad);
	assert_int_equal(hangs, 0);
	assert_int_equal(bad_exits, 0);
}
#endif

/*
 * Issue 22, fault 11: short-lived pushing threads.  Threads that each push
 * one item and exit, a few at a time; another stack stays alive, so the
 * caches are not freed by a last destroy.  The address space and the
 * resident memory (/proc/self/statm) are printed after the pushes, after
 * the drain (and a barrier) and after destroy; what the stack holds must
 * be bounded by its live items plus a constant, not by the number of
 * threads that ever pushed.  Thread stacks are small and glibc's malloc is
 * kept to one arena, so that what is measured is the stack's memory.
 */
typedef struct statm_fig {
	double vm_mib, rss_mib;
} statm_fig;

static statm_fig statm_now(void)
{
	statm_fig f = {0, 0};
	unsigned long vm = 0, rss = 0;
	FILE *fp = fopen("/proc/self/statm", "r");
	if (fp) {
		if (fscanf(fp, "%lu %lu", &vm, &rss) != 2)
			vm = rss = 0;
		fclose(fp);
	}
	double page = (double)sysconf(_SC_PAGESIZE);
	f.vm_mib = (double)vm * page / (1024.0 * 1024.0);
	f.rss_mib = (double)rss * page / (1024.0 * 1024.0);
	return f;
}

typedef struct oneshot {
	conc_stack *s;
	uintptr_t item;
	int rc;
} oneshot;

static void *push_one_and_exit(void *arg)
{
	oneshot *o = arg;
	o->rc = conc_stack_push(o->s, (void *)o->item);
	return NULL;
}

static void test_stack_short_lived_pushers_bounded(void **state)
{
	(void)state;
	conc_test_watchdog("short-lived pushers", 240);
#ifdef M_ARENA_MAX
	mallopt(M_ARENA_MAX, 1); /* arenas reserve 64 MiB each: not ours */
#endif
	/* Under qemu-user (CONC_TEST_EMULATED, set by the cross files) the
	 * bound below is not checked (see there) and a thread start costs
	 * milliseconds: 1,000 threads keep the exit path covered there. */
	const unsigned n = getenv("CONC_TEST_EMULATED") ? 1000 : CONC_TEST_SANITIZED ? 2000 : 20000;
	enum { WAVE = 4 };
	conc_stack *keep, *s;
	assert_int_equal(conc_stack_create(&keep), 0);
	assert_int_equal(conc_stack_push(keep, U(1)), 0);
	assert_int_equal(conc_stack_create(&s), 0);
	pthread_attr_t attr;
	pthread_attr_init(&attr);
	pthread_attr_setstacksize(&attr, 256 << 10);
	/* a first wave, so that the thread stacks glibc caches are counted in
	 * the baseline */
	oneshot o[WAVE];
	pthread_t t[WAVE];
	for (unsigned k = 0; k < WAVE; k++) {
		o[k] = (oneshot){.s = keep, .item = 2 + k, .rc = -1};
		assert_int_equal(pthread_create(&t[k], &attr, push_one_and_exit, &o[k]), 0);
	}
	for (unsigned k = 0; k < WAVE; k++)
		pthread_join(t[k], NULL);
	statm_fig base = statm_now();
	unsigned failed = 0;
	for (unsigned i = 0; i < n; i += WAVE) {
		for (unsigned k = 0; k < WAVE; k++) {
			o[k] = (oneshot){.s = s, .item = i + k, .rc = -1};
			assert_int_equal(pthread_create(&t[k], &attr, push_one_and_exit, &o[k]), 0);
		}
		for (unsigned k = 0; k < WAVE; k++) {
			pthread_join(t[k], NULL);
			failed += o[k].rc != 0;
		}
	}
	pthread_attr_destroy(&attr);
	statm_fig pushed = statm_now();
	unsigned char *seen = calloc(n, 1);
	assert_non_null(seen);
	unsigned got = 0, dup = 0;
	void *it;
	while (conc_stack_try_pop(s, &it)) {
		uintptr_t v = (uintptr_t)it;
		if (v < n && !seen[v]++)
			got++;
		else
			dup++;
	}
	free(seen);
	assert_int_equal(conc_epoch_barrier(conc_epoch_global()), 0);
	statm_fig drained = statm_now();
	conc_stack_destroy(s, NULL);
	assert_int_equal(conc_epoch_barrier(conc_epoch_global()), 0);
	statm_fig destroyed = statm_now();
	print_message("short-lived pushers: %u threads x 1 push; address space / RSS (MiB) over the "
		      "baseline %.1f / %.1f: after the pushes %+.1f / %+.1f, after the drain %+.1f / "
		      "%+.1f, after destroy %+.1f / %+.1f\n",
		      n, base.vm_mib, base.rss_mib, pushed.vm_mib - base.vm_mib,
		      pushed.rss_mib - base.rss_mib, drained.vm_mib - base.vm_mib,
		      drained.rss_mib - base.rss_mib, destroyed.vm_mib - base.vm_mib,
		      destroyed.rss_mib - base.rss_mib);
	conc_stack_destroy(keep, NULL);
	assert_int_equal(failed, 0);
	assert_int_equal(got, n);
	assert_int_equal(dup, 0);
	/* The bound: the live items' nodes (16 bytes each, carved from shared
	 * slabs of 256 KiB) plus a constant - a few slabs per thread alive at
	 * once and the caches' own share - never a slab per thread that ever
	 * pushed (which was 10 GiB / 234 MiB).  Sanitizer allocators keep freed
	 * blocks in a quarantine and pad each: a looser constant there. */
	double live_mib = (double)n * 16.0 / (1024.0 * 1024.0);
	double slack = CONC_TEST_SANITIZED ? 256.0 : 24.0;
	if (getenv("CONC_TEST_EMULATED")) {
		/* qemu-user (the cross files set it): /proc/self/statm is the
		 * emulator's, which keeps its own per-thread reservations -
		 * the figures are printed above, the bound is the native
		 * builds' to check. */
		conc_test_watchdog_off();
		return;
	}
	assert_true(pushed.vm_mib - base.vm_mib <= 4 * live_mib + slack);
	assert_true(pushed.rss_mib - base.rss_mib <= 4 * live_mib + slack);
	assert_true(drained.vm_mib - base.vm_mib <= slack);
	assert_true(drained.rss_mib - base.rss_mib <= slack);
	assert_true(destroyed.vm_mib - base.vm_mib <= slack);
	conc_test_watchdog_off();
}

/* push_n and try_pop_n: a batch comes back last item first; the argument
 * rules; a closed stack refuses a batch whole and still drains. */
static void test_stack_batch_order(void **state)
{
	(void)state;
	conc_stack *s;
	assert_int_equal(conc_stack_create(&s), 0);
	void *in[50], *out[64];
	for (unsigned i = 0; i < 50; i++)
		in[i] = U(i + 1);
	assert_int_equal(conc_stack_push_n(s, in, 0), 0);
	assert_int_equal(conc_stack_push_n(NULL, in, 3), EINVAL);
	assert_int_equal(conc_stack_push_n(s, NULL, 3), EINVAL);
	assert_int_equal(conc_stack_push_n(s, NULL, 0), 0);
	assert_int_equal(conc_stack_try_pop_n(s, out, 8), 0); /* empty */
	assert_int_equal(conc_stack_push(s, U(1000)), 0);
	assert_int_equal(conc_stack_push_n(s, in, 50), 0);
	assert_int_equal(conc_stack_try_pop_n(NULL, out, 8), 0);
	assert_int_equal(conc_stack_try_pop_n(s, NULL, 8), 0);
	assert_int_equal(conc_stack_try_pop_n(s, out, 0), 0);
	assert_int_equal(conc_stack_try_pop_n(s, out, 7), 7);
	for (unsigned k = 0; k < 7; k++)
		assert_ptr_equal(out[k], U(50 - k));
	assert_int_equal(conc_stack_try_pop_n(s, out, 64), 44); /* 43 of the batch, then 1000 */
	for (unsigned k = 0; k < 43; k++)
		assert_ptr_equal(out[k], U(43 - k));
	assert_ptr_equal(out[43], U(1000));
	assert_int_equal(conc_stack_try_pop_n(s, out, 64), 0);
	assert_int_equal(conc_stack_push_n(s, in, 5), 0);
	conc_stack_close(s);
	assert_int_equal(conc_stack_push_n(s, in, 5), EPIPE);
	assert_int_equal(conc_stack_push_n(s, in, 0), 0); /* closed or not */
	assert_int_equal(conc_stack_try_pop_n(s, out, 64), 5);
	for (unsigned k = 0; k < 5; k++)
		assert_ptr_equal(out[k], U(5 - k));
	assert_true(conc_stack_is_empty(s));
	void *it;
	assert_int_equal(conc_stack_pop(s, &it), EPIPE);
	conc_stack_destroy(s, NULL);
}

/* Batch sizes around the magazine's (64 nodes) with the thread's cache in
 * different states (empty, loose nodes, a spare batch: barriers reclaim
 * the popped nodes at different points): every batch comes back whole,
 * last item first, after the single items pushed before it. */
static void test_stack_batch_cache_edges(void **state)
{
	(void)state;
	static const size_t sizes[] = {1, 2, 63, 64, 65, 127, 128, 129, 300};
	enum { MAXN = 300 };
	conc_stack *s;
	assert_int_equal(conc_stack_create(&s), 0);
	void *in[MAXN], *out[50];
	for (unsigned r = 0; r < 45; r++) {
		size_t n = sizes[r % 9];
		for (size_t i = 0; i < n; i++)
			in[i] = U(r * 1000 + i + 1);
		unsigned singles = r % 5;
		for (unsigned i = 0; i < singles; i++)
			assert_int_equal(conc_stack_push(s, U(900000 + i)), 0);
		assert_int_equal(conc_stack_push_n(s, in, n), 0);
		size_t got = 0, k;
		while ((k = conc_stack_try_pop_n(s, out, 1 + r % 50)) > 0) {
			for (size_t j = 0; j < k; j++, got++) {
				if (got < n)
					assert_ptr_equal(out[j], in[n - 1 - got]);
				else
					assert_ptr_equal(out[j], U(900000 + singles - 1 - (got - n)));
			}
		}
		assert_int_equal(got, n + singles);
		if (r % 3 == 0)
			assert_int_equal(conc_epoch_barrier(conc_epoch_global()), 0);
	}
	conc_stack_destroy(s, NULL);
}

/* Batches pushed and popped from several threads at once: every item once;
 * inside one try_pop_n result a batch's items are consecutive and in
 * reverse order (a batch is one chain, a pop takes one run of the top). */
#define SB_THREADS 4
#define SB_BATCH 8
typedef struct sb_ctx {
	conc_stack *s;
	unsigned long batches; /* per thread */
	atomic_uchar *taken;   /* [SB_THREADS * batches * SB_BATCH] */
	atomic_uint pushers_left;
	atomic_ulong progress;
} sb_ctx;

typedef struct sb_thread {
	sb_ctx *x;
	unsigned id;
	unsigned long got, dup, bad_run, push_err;
} sb_thread;

/* item value: thread, batch, index in batch (1-based so that no item is 0) */
static uintptr_t sb_val(unsigned t, unsigned long b, unsigned i)
{
	return ((uintptr_t)t << 40 | (uintptr_t)b << 8 | i) + 1;
}

static void sb_take(sb_thread *t, void **buf, size_t got)
{
	sb_ctx *x = t->x;
	for (size_t k = 0; k < got; k++) {
		uintptr_t v = (uintptr_t)buf[k] - 1;
		unsigned th = (unsigned)(v >> 40), i = (unsigned)(v & 0xff);
		unsigned long b = (v >> 8) & 0xffffffffu;
		if (th >= SB_THREADS || b >= x->batches || i >= SB_BATCH) {
			t->bad_run++;
			continue;
		}
		/* the next item of a result: the one below this one in its
		 * batch, unless this one is its batch's bottom */
		if (i > 0 && k + 1 < got && (uintptr_t)buf[k + 1] != sb_val(th, b, i - 1))
			t->bad_run++;
		if (atomic_fetch_add(&x->taken[(th * x->batches + b) * SB_BATCH + i], 1) != 0)
			t->dup++;
		t->got++;
	}
}

static void *sb_run(void *arg)
{
	sb_thread *t = arg;
	sb_ctx *x = t->x;
	void *buf[SB_BATCH * 3];
	for (unsigned long b = 0; b < x->batches; b++) {
		void *in[SB_BATCH];
		for (unsigned i = 0; i < SB_BATCH; i++)
			in[i] = (void *)sb_val(t->id, b, i);
		if (conc_stack_push_n(x->s, in, SB_BATCH))
			t->push_err++;
		size_t got = conc_stack_try_pop_n(x->s, buf, 1 + (b * 7 + t->id) % (SB_BATCH * 3));
		sb_take(t, buf, got);
		atomic_fetch_add_explicit(&x->progress, 1, memory_order_relaxed);
	}
	atomic_fetch_sub(&x->pushers_left, 1);
	for (;;) {
		bool done = atomic_load(&x->pushers_left) == 0;
		size_t got = conc_stack_try_pop_n(x->s, buf, SB_BATCH * 3);
		sb_take(t, buf, got);
		atomic_fetch_add_explicit(&x->progress, 1, memory_order_relaxed);
		if (got == 0 && done)
			break;
	}
	return NULL;
}

static void test_stack_batch_concurrent(void **state)
{
	(void)state;
	sb_ctx x = {.batches = conc_test_iters(40000, 4)};
	assert_int_equal(conc_stack_create(&x.s), 0);
	x.taken = calloc(SB_THREADS * x.batches * SB_BATCH, sizeof *x.taken);
	assert_non_null(x.taken);
	atomic_init(&x.pushers_left, SB_THREADS);
	atomic_init(&x.progress, 0);
	conc_test_progress *w = conc_test_progress_watchdog_start("stack batches", &x.progress, 5);
	assert_non_null(w);
	sb_thread t[SB_THREADS];
	for (unsigned i = 0; i < SB_THREADS; i++)
		t[i] = (sb_thread){.x = &x, .id = i};
	assert_int_equal(conc_test_run_threads(SB_THREADS, sb_run, t, sizeof t[0]), 0);
	conc_test_progress_watchdog_stop(w);
	unsigned long got = 0;
	for (unsigned i = 0; i < SB_THREADS; i++) {
		assert_int_equal(t[i].push_err, 0);
		assert_int_equal(t[i].dup, 0);
		assert_int_equal(t[i].bad_run, 0);
		got += t[i].got;
	}
	assert_int_equal(got, SB_THREADS * x.batches * SB_BATCH);
	assert_true(conc_stack_is_empty(x.s));
	conc_stack_destroy(x.s, NULL);
	free(x.taken);
}

#if defined(CONC_FAULT_HOOKS) && CONC_FAULT_HOOKS
/* A batch that cannot get all its nodes pushes nothing, and gives back the
 * nodes it had (a thread of its own: its node cache starts empty). */
static void *sb_enomem_run(void *arg)
{
	conc_stack *s = arg;
	enum { N = 40000 }; /* more nodes than one 256 KiB slab holds */
	void **in = malloc(N * sizeof *in);
	if (!in)
		return (void *)1;
	for (unsigned i = 0; i < N; i++)
		in[i] = U(i + 1);
	conc__stack_trim_caches(); /* no node to be had without a new slab */
	/* A batch takes its first nodes from the thread's magazine, linked
	 * as they are, and the rest one at a time: fill the magazine (a
	 * batch popped, its nodes reclaimed by a barrier), so that the
	 * failing batch below gives back nodes of both kinds. */
	uintptr_t bad = 0;
	void *out[4];
	bad |= (uintptr_t)(conc_stack_push_n(s, in, 100) != 0) << 5;
	for (size_t k, left = 100; left; left -= k)
		if ((k = conc_stack_try_pop_n(s, out, 4)) == 0) {
			bad |= (uintptr_t)1 << 6;
			break;
		}
	bad |= (uintptr_t)(conc_epoch_barrier(conc_epoch_global()) != 0) << 7;
	conc__fault_reset();
	conc__fault_fail_alloc_at(1);
	int err = conc_stack_push_n(s, in, N);
	conc__fault_reset();
	bad |= err != ENOMEM;
	bad |= (uintptr_t)(conc_stack_try_pop_n(s, out, 4) != 0) << 1; /* nothing pushed */
	bad |= (uintptr_t)(conc_stack_push_n(s, in, N) != 0) << 2;	  /* and now it can */
	size_t got = 0, k;
	while ((k = conc_stack_try_pop_n(s, out, 4)) > 0) {
		for (size_t j = 0; j < k; j++)
			bad |= (uintptr_t)(out[j] != U(N - got - j)) << 3;
		got += k;
	}
	bad |= (uintptr_t)(got != N) << 4;
	free(in);
	return (void *)bad;
}

static void test_stack_batch_enomem(void **state)
{
	(void)state;
	conc_stack *s;
	assert_int_equal(conc_stack_create(&s), 0);
	pthread_t th;
	void *bad;
	assert_int_equal(pthread_create(&th, NULL, sb_enomem_run, s), 0);
	assert_int_equal(pthread_join(th, &bad), 0);
	assert_int_equal((uintptr_t)bad, 0);
	conc_stack_destroy(s, NULL);
}
#endif

int main(void)
{
	const struct CMUnitTest tests[] = {
		CT_TESTS,
		CT_FAULT_TESTS,
		cmocka_unit_test(test_stack_elimination_switch),
		cmocka_unit_test(test_stack_elimination_handover),
		cmocka_unit_test(test_stack_close_cancels_offer),
		cmocka_unit_test(test_stack_private_pending_bounded),
		cmocka_unit_test(test_stack_caches_survive_churn),
#if defined(CONC_FAULT_HOOKS) && CONC_FAULT_HOOKS
		cmocka_unit_test(test_stack_fork_depot_held),
#endif
		cmocka_unit_test(test_stack_short_lived_pushers_bounded),
		cmocka_unit_test(test_stack_batch_order),
		cmocka_unit_test(test_stack_batch_concurrent),
		cmocka_unit_test(test_stack_batch_cache_edges),
#if defined(CONC_FAULT_HOOKS) && CONC_FAULT_HOOKS
		cmocka_unit_test(test_stack_batch_enomem),
#endif
	};
	return cmocka_run_group_tests_name("stack", tests, NULL, NULL);
}
