/* faults.c - the faults suite's machinery (faults.h). */
#include "faults.h"

#include <pthread.h>
#include <sched.h>
#include <stdlib.h>
#include <sys/stat.h>

char faults_sentinel_byte;

long total_failed, total_bad, total_unreached;
long hammer_failed;

/* Arm the hooks for this run: count from zero, fail the k-th call. */
void arm(struct sweep *sw)
{
	conc__fault_reset();
	if (sw->kind == FAIL_ALLOC)
		conc__fault_fail_alloc_at(sw->k);
	else if (sw->kind == FAIL_THREAD)
		conc__fault_fail_thread_at(sw->k);
	sw->site = NULL;
}

/* Disarm after the operation (and everything it started) is over; sets
 * sw->site to the site that was failed, NULL if the k-th call never came. */
void disarm(struct sweep *sw)
{
	long a = conc__fault_alloc_calls(), t = conc__fault_thread_calls();
	sw->site = conc__fault_last_failed();
	conc__fault_reset();
	if (sw->kind == CALIBRATE) {
		sw->n_alloc = a;
		sw->n_thread = t;
	}
}

bool site_is(const struct sweep *sw, const char *prefix)
{
	return sw->site && strncmp(sw->site, prefix, strlen(prefix)) == 0;
}

/* The error an injected failure must produce (0: none injected). */
int want_err(const struct sweep *sw)
{
	if (!sw->site)
		return 0;
	return sw->kind == FAIL_ALLOC ? ENOMEM : EAGAIN;
}

typedef void (*run_fn)(struct sweep *sw);

void sweep_report(struct sweep *sw)
{
	char a[64], t[64];
	if (sw->n_alloc)
		snprintf(a, sizeof a, "alloc_k=1..%ld ok=%ld", sw->n_alloc, sw->ok_alloc);
	else
		snprintf(a, sizeof a, "alloc_k=none");
	if (sw->n_thread)
		snprintf(t, sizeof t, "thread_k=1..%ld ok=%ld", sw->n_thread, sw->ok_thread);
	else
		snprintf(t, sizeof t, "thread_k=none");
	printf("reliability: faults %s | %s, %s, unreached=%ld bad=%ld\n", sw->api, a, t,
	       sw->unreached, sw->bad);
	fflush(stdout);
}

/* Run `run` once to count, then once per k for allocations and threads. */
void sweep(const char *api, run_fn run)
{
	struct sweep sw = {.api = api};
	sw.kind = CALIBRATE;
	run(&sw);
	CHECK(&sw, sw.site == NULL);
	long na = sw.n_alloc, nt = sw.n_thread;
	for (int pass = 0; pass < 2; pass++) {
		long n = pass == 0 ? na : nt;
		for (long k = 1; k <= n; k++) {
			sw.kind = pass == 0 ? FAIL_ALLOC : FAIL_THREAD;
			sw.k = k;
			sw.bad_before = sw.bad;
			run(&sw);
			if (!sw.site) {
				sw.unreached++;
				continue;
			}
			total_failed++;
			if (sw.bad == sw.bad_before)
				*(pass == 0 ? &sw.ok_alloc : &sw.ok_thread) += 1;
		}
	}
	sweep_report(&sw);
	total_bad += sw.bad;
	total_unreached += sw.unreached;
	assert_int_equal(sw.bad, 0);
}

bool site_reached(const char *name)
{
	const char *v[128];
	size_t n = conc__fault_sites(v, 128);
	for (size_t i = 0; i < n && i < 128; i++)
		if (strcmp(v[i], name) == 0)
			return true;
	return false;
}

/* The domain's books balance: everything retired has run. */
void check_domain_clean(struct sweep *sw, conc_epoch *d)
{
	CHECK(sw, conc_epoch_barrier(d) == 0);
	conc_epoch_stats st;
	conc_epoch_get_stats(d, &st);
	CHECK(sw, st.pending == 0);
	CHECK(sw, st.retired == st.freed);
}

void check_destroy_domain(struct sweep *sw, conc_epoch *d)
{
	check_domain_clean(sw, d);
	CHECK(sw, conc_epoch_destroy(d) == 0);
}

atomic_long dropped;

void drop_count(void *item)
{
	(void)item;
	atomic_fetch_add(&dropped, 1);
}

/* Pops (try, blocking, timed out on empty) and close: no allocation. */
void run_container_pops(struct sweep *sw, const tl_container *k)
{
	conc_epoch *d;
	void *c = NULL;
	CHECK(sw, conc_epoch_create(&d) == 0);
	CHECK(sw, k->create_in(&c, d) == 0);
	for (uintptr_t i = 1; i <= 3; i++)
		CHECK(sw, k->push(c, ITEM(i)) == 0);
	void *x = NULL, *y = NULL, *z = NULL, *w = SENTINEL;
	arm(sw);
	bool a = k->try_pop(c, &x);
	int b = k->pop(c, &y);
	int r = k->pop_timeout(c, &z, 1000000);
	int e = k->pop_timeout(c, &w, 1000000); /* empty: sleeps, times out */
	k->close(c);
	int f = k->pop(c, &w);
	disarm(sw);
	/* FIFO: 1, 2, 3; LIFO: 3, 2, 1 */
	void *first = k->fifo ? ITEM(1) : ITEM(3), *last = k->fifo ? ITEM(3) : ITEM(1);
	CHECK(sw, a && x == first && b == 0 && y == ITEM(2) && r == 0 && z == last);
	CHECK(sw, e == ETIMEDOUT && f == EPIPE && w == SENTINEL);
	k->destroy(c, NULL);
	check_destroy_domain(sw, d);
}

/* ---- under concurrency: random failures --------------------------------- */

/*
 * The sweeps fail one call of one operation on a quiet object.  Here
 * many threads work at once while a fixed share of all allocations (and
 * thread creations) fails at random (conc__fault_fail_rate): a failed call
 * must still change nothing - every item whose push returned 0 is popped
 * exactly once, in per-producer order for the queue, and no item of a
 * failed push ever appears; every task whose execute returned 0 runs once;
 * every spawn that returned 0 runs once and the others never.
 */
#define HAM_P 2
#define HAM_C 2

struct ham {
	const tl_container *k;
	void *c;
	unsigned long m; /* items per producer */
	atomic_uchar *seen;  /* [HAM_P * m] */
	unsigned char *fail; /* [HAM_P * m], written by the producer */
	atomic_int producers_left;
	long order_bad[HAM_C];
	long failed[HAM_P];
};

static struct ham ham;

bool expect_failures(long calls, long ppm)
{
	return (double)calls * (double)ppm / 1e6 >= 10.0;
}

static void *ham_producer(void *arg)
{
	unsigned p = (unsigned)(uintptr_t)arg;
	for (unsigned long i = 0; i < ham.m; i++) {
		void *item = ITEM(((uintptr_t)p << 32) | (i + 1));
		int err = ham.k->push(ham.c, item);
		if (err) {
			ham.fail[p * ham.m + i] = err == ENOMEM ? 1 : 2;
			ham.failed[p]++;
		}
	}
	atomic_fetch_sub(&ham.producers_left, 1);
	return NULL;
}

static void *ham_consumer(void *arg)
{
	unsigned c = (unsigned)(uintptr_t)arg;
	uint64_t last[HAM_P] = {0};
	for (;;) {
		bool done = atomic_load(&ham.producers_left) == 0;
		void *x;
		bool got = ham.k->try_pop(ham.c, &x);
		if (!got) {
			if (done)
				break; /* empty after every producer finished */
			sched_yield();
			continue;
		}
		uintptr_t v = (uintptr_t)x;
		unsigned p = (unsigned)(v >> 32);
		uint64_t seq = v & 0xffffffffu;
		if (p >= HAM_P || seq == 0 || seq > ham.m) {
			ham.order_bad[c]++; /* not an item anybody pushed */
			continue;
		}
		atomic_fetch_add(&ham.seen[p * ham.m + seq - 1], 1);
		if (ham.k->fifo) {
			if (seq <= last[p])
				ham.order_bad[c]++;
			last[p] = seq;
		}
	}
	return NULL;
}

static void *ham_thread(void *arg)
{
	unsigned i = (unsigned)(uintptr_t)arg;
	return i < HAM_P ? ham_producer(arg) : ham_consumer((void *)(uintptr_t)(i - HAM_P));
}

void run_threads_indexed(unsigned n, void *(*fn)(void *))
{
	pthread_t t[16];
	assert_true(n <= 16);
	for (unsigned i = 0; i < n; i++)
		assert_int_equal(pthread_create(&t[i], NULL, fn, (void *)(uintptr_t)i), 0);
	for (unsigned i = 0; i < n; i++)
		pthread_join(t[i], NULL);
}

void hammer_container(const tl_container *k, long ppm, unsigned long seed)
{
	const char *name = k->name;
	memset(&ham, 0, sizeof ham);
	ham.k = k;
	ham.m = conc_test_iters(300000, 10);
	ham.seen = calloc(HAM_P * ham.m, sizeof *ham.seen);
	ham.fail = calloc(HAM_P * ham.m, 1);
	assert_non_null(ham.seen);
	assert_non_null(ham.fail);
	atomic_store(&ham.producers_left, HAM_P);
	conc_epoch *d;
	assert_int_equal(conc_epoch_create(&d), 0);
	assert_int_equal(k->create_in(&ham.c, d), 0);
	conc__fault_reset();
	conc__fault_fail_rate(ppm, 0, seed);
	run_threads_indexed(HAM_P + HAM_C, ham_thread);
	long calls = conc__fault_alloc_calls(), failed_calls = conc__fault_alloc_failures();
	/* a pop that finds no retire record keeps its nodes pending and still
	 * succeeds: those failures fail no call */
	long absorbed = conc__fault_site_failures("stack.retire");
	conc__fault_reset();
	long lost = 0, dup = 0, ghost = 0, wrong_err = 0, order = 0, failed = 0;
	for (unsigned long i = 0; i < HAM_P * ham.m; i++) {
		unsigned seen = atomic_load(&ham.seen[i]);
		if (ham.fail[i]) {
			failed++;
			ghost += seen != 0; /* a failed push must leave no item */
			wrong_err += ham.fail[i] != 1;
		} else {
			lost += seen == 0;
			dup += seen > 1;
		}
	}
	for (unsigned c = 0; c < HAM_C; c++)
		order += ham.order_bad[c];
	void *x;
	bool left = k->try_pop(ham.c, &x);
	k->destroy(ham.c, NULL);
	assert_int_equal(conc_epoch_barrier(d), 0);
	conc_epoch_stats st;
	conc_epoch_get_stats(d, &st);
	assert_int_equal(conc_epoch_destroy(d), 0);
	free(ham.seen);
	free(ham.fail);
	hammer_failed += failed_calls;
	printf("reliability: faults hammer %s %u:%u fail=%ld%% | pushes=%lu failed=%ld (of %ld allocs, "
	       "%ld failed) lost=%ld dup=%ld ghost=%ld order=%ld\n",
	       name, HAM_P, HAM_C, ppm / 10000, HAM_P * ham.m, failed, calls, failed_calls, lost, dup,
	       ghost, order);
	fflush(stdout);
	assert_false(left);
	assert_int_equal(lost, 0);
	assert_int_equal(dup, 0);
	assert_int_equal(ghost, 0);
	assert_int_equal(wrong_err, 0);
	assert_int_equal(order, 0);
	assert_int_equal(st.pending, 0);
	/* each failed allocation failed exactly one push (the record
	 * failures of pops, absorbed, aside) */
	assert_int_equal(failed, failed_calls - absorbed);
	if (expect_failures(calls, ppm))
		assert_true(failed_calls > 0);
}

/* ---- the parts --------------------------------------------------------- */

static const char *part_name;

const char *faults_part_path(const char *part, char *buf, size_t size)
{
	const char *dir = getenv("CONC_FAULTS_PARTS");
	if (!dir || !*dir)
		return NULL;
	snprintf(buf, size, "%s/%s.txt", dir, part);
	return buf;
}

static void *no_op_thread(void *arg)
{
	return arg;
}

void faults_begin(const char *part)
{
	/* the global pool's size, before anything can create it */
	setenv("CONC_NUM_THREADS", GLOBAL_T_STR, 1);
	/* A thread started and joined before any test counts the process's
	 * threads: the threads a runtime starts at the first pthread_create
	 * (ThreadSanitizer's background thread) exist from here on, as they
	 * did when the suite was one process whose earlier tests had
	 * started threads. */
	pthread_t t;
	if (pthread_create(&t, NULL, no_op_thread, NULL) != 0 || pthread_join(t, NULL) != 0) {
		printf("faults %s: cannot start a thread\n", part);
		exit(1);
	}
	part_name = part;
	char path[4096];
	if (faults_part_path(part, path, sizeof path))
		remove(path); /* a report from an earlier run must not count */
}

int faults_end(int rc)
{
	char path[4096];
	if (!faults_part_path(part_name, path, sizeof path))
		return rc;
	mkdir(getenv("CONC_FAULTS_PARTS"), 0777); /* EEXIST: already there */
	FILE *f = fopen(path, "w");
	if (!f) {
		printf("faults %s: cannot write %s\n", part_name, path);
		return 1;
	}
	fprintf(f, "failed %ld\nhammer %ld\nbad %ld\nunreached %ld\n", total_failed,
		hammer_failed, total_bad, total_unreached);
	const char *reached[FAULTS_MAX_SITES];
	size_t n = conc__fault_sites(reached, FAULTS_MAX_SITES);
	fprintf(f, "sites %zu\n", n);
	for (size_t i = 0; i < n && i < FAULTS_MAX_SITES; i++)
		fprintf(f, "site %s\n", reached[i]);
	if (fclose(f) != 0) {
		printf("faults %s: cannot write %s\n", part_name, path);
		return 1;
	}
	return rc;
}
