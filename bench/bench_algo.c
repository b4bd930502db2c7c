/*
 * bench_algo.c - parallel algorithms over arrays (conc/algo.h) against their
 * peers, in the same run (WORKLOADS.md W8a-W8c):
 *
 *   W8a sort u64     sort 10,000,000 uniformly random uint64 (fixed seed):
 *                    conc_parallel_sort_u64 vs a serial LSD radix sort (8
 *                    passes of 8 bits, histograms in one pass: the best
 *                    serial sort of integer keys), std::sort, oneTBB
 *                    parallel_sort, rayon par_sort_unstable.
 *   W8a sort cmp     the same array through a comparator function pointer
 *                    (qsort_r's convention): conc_parallel_sort vs glibc
 *                    qsort_r, std::sort, tbb::parallel_sort and rayon
 *                    par_sort_unstable_by, each calling the same function.
 *   W8b stable sort  10,000,000 16-byte records {key in 0..1000, index} by
 *                    key: conc_parallel_stable_sort (comparator) vs
 *                    std::stable_sort and rayon par_sort_by_key with the
 *                    compare inlined, and both through the comparator.
 *   W8c prefix sum   inclusive prefix sum of 100,000,000 uint64 in place:
 *                    conc_parallel_scan_u64 (the addition inlined) and
 *                    conc_parallel_scan (op through a function pointer) vs
 *                    the serial loop (a[i] += a[i-1], inlined) and oneTBB
 *                    parallel_scan (a lambda).
 *
 * --quick (bench.sh's default) shrinks W8a and W8b to 1,000,000 elements and
 * W8c to 10,000,000.  Each run copies the input into the work array (not
 * timed), sorts or scans it (timed) and verifies: sorted, and the same sum
 * and xor as the input (W8a); sorted by key with the index increasing
 * within a key, and the index sum (W8b); a[i] - a[i-1] == input[i] (W8c).
 *
 * Peak extra memory.  After each sort row, every implementation is run once
 * more in a fresh process (this binary re-executed with --mem-child): it
 * builds the input, starts its pool and warms it up, then reads its peak
 * resident set (VmHWM) before and after the sort; the difference is the sort's peak extra
 * memory (scratch, stacks of threads that grew), printed in MiB.
 *
 * Threads: libconc runs on a pool of `threads` workers (the caller takes
 * part as well, as in bench_parallel), oneTBB in a task_arena of `threads`
 * slots, rayon in a pool of `threads` threads.  Ratios: peer / libconc
 * time, > 1 when libconc is faster.
 */
#include <errno.h>
#include <spawn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"
#include "conc/algo.h"
#include "conc/cpu.h"
#include "conc/pool.h"

#include "peers/algo_peers.h"

extern char **environ;

#ifdef BENCH_HAVE_CXX_ALGO
#define STD_MISSING NULL
#else
#define STD_MISSING BENCH_CXX_ALGO_MISSING
#endif
#ifdef BENCH_HAVE_TBB
#define TBB_MISSING NULL
#else
#define TBB_MISSING BENCH_TBB_MISSING
#endif
#ifdef BENCH_HAVE_RAYON
#define RAYON_MISSING NULL
#else
#define RAYON_MISSING BENCH_RAYON_MISSING
#endif

/* ---- the data ----------------------------------------------------------------------- */

static uint64_t mix(uint64_t x)
{
	x += UINT64_C(0x9e3779b97f4a7c15);
	x = (x ^ (x >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
	x = (x ^ (x >> 27)) * UINT64_C(0x94d049bb133111eb);
	return x ^ (x >> 31);
}

static size_t sort_n, scan_n;
static uint64_t *u_in, *u_work; /* W8a */
static uint64_t u_sum, u_xor;
static struct algo_rec *r_in, *r_work; /* W8b */
static uint64_t *s_in, *s_work;        /* W8c */

static void make_u64(void)
{
	u_in = malloc(sort_n * 8);
	u_work = malloc(sort_n * 8);
	if (!u_in || !u_work)
		exit(1);
	u_sum = u_xor = 0;
	for (size_t i = 0; i < sort_n; i++) {
		u_in[i] = mix(i ^ UINT64_C(0x8a)); /* fixed seed */
		u_sum += u_in[i];
		u_xor ^= u_in[i];
	}
}

static void make_rec(void)
{
	r_in = malloc(sort_n * sizeof *r_in);
	r_work = malloc(sort_n * sizeof *r_work);
	if (!r_in || !r_work)
		exit(1);
	for (size_t i = 0; i < sort_n; i++) {
		r_in[i].key = mix(i + 77) % 1001;
		r_in[i].idx = i;
	}
}

static void make_scan(void)
{
	s_in = malloc(scan_n * 8);
	s_work = malloc(scan_n * 8);
	if (!s_in || !s_work)
		exit(1);
	for (size_t i = 0; i < scan_n; i++)
		s_in[i] = mix(i) >> 20;
}

static bool check_u64(void)
{
	uint64_t sum = 0, x = 0;
	bool ok = true;
	for (size_t i = 0; i < sort_n; i++) {
		ok &= i == 0 || u_work[i - 1] <= u_work[i];
		sum += u_work[i];
		x ^= u_work[i];
	}
	return ok && sum == u_sum && x == u_xor;
}

static bool check_rec(void)
{
	uint64_t isum = 0;
	bool ok = true;
	for (size_t i = 0; i < sort_n; i++) {
		if (i)
			ok &= r_work[i - 1].key < r_work[i].key ||
			      (r_work[i - 1].key == r_work[i].key && r_work[i - 1].idx < r_work[i].idx);
		isum += r_work[i].idx;
	}
	return ok && isum == (uint64_t)sort_n * (sort_n - 1) / 2;
}

static bool check_scan(void)
{
	bool ok = s_work[0] == s_in[0];
	for (size_t i = 1; i < scan_n; i++)
		ok &= s_work[i] - s_work[i - 1] == s_in[i];
	return ok;
}

/* ---- the pools -------------------------------------------------------------------------- */

static conc_pool *pool;
static unsigned pool_size;
static void *tbb_arena, *rs_pool;
static unsigned tbb_size, rs_size;

static void use_threads(unsigned threads)
{
	if (!pool || pool_size != threads) {
		if (pool)
			conc_pool_destroy(pool);
		conc_pool_config cfg = {.threads = threads};
		if (conc_pool_create(&pool, &cfg) != 0) {
			fprintf(stderr, "bench_algo: cannot create a pool\n");
			exit(1);
		}
		pool_size = threads;
	}
#ifdef BENCH_HAVE_TBB
	if (!tbb_arena || tbb_size != threads) {
		if (tbb_arena)
			tbb_arena_free(tbb_arena);
		tbb_arena = tbb_arena_new(threads);
		tbb_size = threads;
	}
#endif
#ifdef BENCH_HAVE_RAYON
	if (!rs_pool || rs_size != threads) {
		if (rs_pool)
			rs_pool_free(rs_pool);
		rs_pool = rs_pool_new(threads);
		rs_size = threads;
	}
#endif
}

/* ---- the implementations -------------------------------------------------------------- */

static int cmp_u64(const void *a, const void *b, void *ctx)
{
	(void)ctx;
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return (x > y) - (x < y);
}

static int cmp_rec(const void *a, const void *b, void *ctx)
{
	(void)ctx;
	uint64_t x = ((const struct algo_rec *)a)->key, y = ((const struct algo_rec *)b)->key;
	return (x > y) - (x < y);
}

static void op_add(void *acc, const void *x, void *ctx)
{
	(void)ctx;
	*(uint64_t *)acc += *(const uint64_t *)x;
}

/* The serial LSD radix sort: one pass for the 8 histograms, then a pass
 * per byte that is not the same in every key, ping-ponging with a scratch
 * array; the result copied back when it ends there. */
static void lsd_radix_u64(uint64_t *a, size_t n)
{
	uint64_t *t = malloc(n * 8);
	if (!t)
		exit(1);
	static size_t h[8][256];
	memset(h, 0, sizeof h);
	for (size_t i = 0; i < n; i++) {
		uint64_t k = a[i];
		for (int d = 0; d < 8; d++)
			h[d][(k >> (8 * d)) & 255]++;
	}
	uint64_t *from = a, *to = t;
	for (int d = 0; d < 8; d++) {
		size_t sum = 0;
		bool trivial = false;
		for (int v = 0; v < 256; v++) {
			size_t c = h[d][v];
			trivial |= c == n;
			h[d][v] = sum;
			sum += c;
		}
		if (trivial)
			continue;
		for (size_t i = 0; i < n; i++) {
			uint64_t k = from[i];
			to[h[d][(k >> (8 * d)) & 255]++] = k;
		}
		uint64_t *x = from;
		from = to;
		to = x;
	}
	if (from != a)
		memcpy(a, from, n * 8);
	free(t);
}

static int qsort_cmp_u64(const void *a, const void *b, void *ctx)
{
	return cmp_u64(a, b, ctx);
}

enum wl { W_U64, W_CMP, W_REC, W_SCAN };

struct impl {
	const char *name;
	enum wl wl;
	void (*fn)(void); /* the timed call, on the work array */
	const char *missing;
};

static void i_lib_u64(void) { conc_parallel_sort_u64(pool, u_work, sort_n); }
static void i_lsd_u64(void) { lsd_radix_u64(u_work, sort_n); }
static void i_lib_cmp(void) { conc_parallel_sort(pool, u_work, sort_n, 8, cmp_u64, NULL); }
static void i_qsort_r(void) { qsort_r(u_work, sort_n, 8, qsort_cmp_u64, NULL); }
static void i_lib_rec(void) { conc_parallel_stable_sort(pool, r_work, sort_n, sizeof *r_work, cmp_rec, NULL); }
static void i_lib_scan(void) { conc_parallel_scan_u64(pool, s_work, scan_n); }
static void i_lib_scan_fn(void) { conc_parallel_scan(pool, s_work, scan_n, 8, op_add, NULL); }
static void i_serial_scan(void)
{
	uint64_t *a = s_work;
	for (size_t i = 1; i < scan_n; i++)
		a[i] += a[i - 1];
}
#ifdef BENCH_HAVE_CXX_ALGO
static void i_std_u64(void) { std_sort_u64(u_work, sort_n); }
static void i_std_cmp(void) { std_sort_u64_fn(u_work, sort_n, cmp_u64); }
static void i_std_rec(void) { std_stable_sort_rec(r_work, sort_n); }
static void i_std_rec_fn(void) { std_stable_sort_rec_fn(r_work, sort_n, cmp_rec); }
#else
#define i_std_u64 NULL
#define i_std_cmp NULL
#define i_std_rec NULL
#define i_std_rec_fn NULL
#endif
#ifdef BENCH_HAVE_TBB
static void i_tbb_u64(void) { tbb_sort_u64(tbb_arena, u_work, sort_n); }
static void i_tbb_cmp(void) { tbb_sort_u64_fn(tbb_arena, u_work, sort_n, cmp_u64); }
static void i_tbb_scan(void) { tbb_scan_u64(tbb_arena, s_work, scan_n); }
#else
#define i_tbb_u64 NULL
#define i_tbb_cmp NULL
#define i_tbb_scan NULL
#endif
#ifdef BENCH_HAVE_RAYON
static void i_rs_u64(void) { rs_par_sort_unstable_u64(rs_pool, u_work, sort_n); }
static void i_rs_cmp(void) { rs_par_sort_unstable_by_u64(rs_pool, u_work, sort_n, cmp_u64); }
static void i_rs_rec(void) { rs_par_sort_rec(rs_pool, r_work, sort_n); }
static void i_rs_rec_fn(void) { rs_par_sort_rec_by(rs_pool, r_work, sort_n, cmp_rec); }
#else
#define i_rs_u64 NULL
#define i_rs_cmp NULL
#define i_rs_rec NULL
#define i_rs_rec_fn NULL
#endif

static const struct impl impls[] = {
	{"libconc", W_U64, i_lib_u64, NULL},
	{"serial LSD radix", W_U64, i_lsd_u64, NULL},
	{"std::sort", W_U64, i_std_u64, STD_MISSING},
	{"tbb::parallel_sort", W_U64, i_tbb_u64, TBB_MISSING},
	{"rayon par_sort_unstable", W_U64, i_rs_u64, RAYON_MISSING},

	{"libconc", W_CMP, i_lib_cmp, NULL},
	{"glibc qsort_r", W_CMP, i_qsort_r, NULL},
	{"std::sort (fn)", W_CMP, i_std_cmp, STD_MISSING},
	{"tbb::parallel_sort (fn)", W_CMP, i_tbb_cmp, TBB_MISSING},
	{"rayon unstable_by (fn)", W_CMP, i_rs_cmp, RAYON_MISSING},

	{"libconc", W_REC, i_lib_rec, NULL},
	{"std::stable_sort", W_REC, i_std_rec, STD_MISSING},
	{"std::stable_sort (fn)", W_REC, i_std_rec_fn, STD_MISSING},
	{"rayon par_sort_by_key", W_REC, i_rs_rec, RAYON_MISSING},
	{"rayon par_sort_by (fn)", W_REC, i_rs_rec_fn, RAYON_MISSING},

	{"libconc", W_SCAN, i_lib_scan, NULL},
	{"libconc scan (fn op)", W_SCAN, i_lib_scan_fn, NULL},
	{"serial loop", W_SCAN, i_serial_scan, NULL},
	{"tbb::parallel_scan", W_SCAN, i_tbb_scan, TBB_MISSING},
};
#define NIMPLS (sizeof impls / sizeof *impls)

static void prepare(enum wl wl)
{
	switch (wl) {
	case W_U64:
	case W_CMP:
		memcpy(u_work, u_in, sort_n * 8);
		break;
	case W_REC:
		memcpy(r_work, r_in, sort_n * sizeof *r_work);
		break;
	case W_SCAN:
		memcpy(s_work, s_in, scan_n * 8);
		break;
	}
}

static bool verify(enum wl wl)
{
	switch (wl) {
	case W_U64:
	case W_CMP:
		return check_u64();
	case W_REC:
		return check_rec();
	default:
		return check_scan();
	}
}

static bench_result run_impl(void *arg, unsigned threads)
{
	const struct impl *im = arg;
	use_threads(threads);
	prepare(im->wl);
	double t0 = bench_now();
	im->fn();
	double t = bench_now() - t0;
	return (bench_result){t, verify(im->wl)};
}

/* ---- peak extra memory, in a fresh process ---------------------------------------------- */

/* The peak resident set of this process (VmHWM, KiB).  Not ru_maxrss:
 * that one survives execve (a child spawned by a big parent starts at the
 * parent's peak), VmHWM belongs to the new address space. */
static long maxrss_kb(void)
{
	FILE *f = fopen("/proc/self/status", "r");
	char line[256];
	long kb = -1;
	if (!f)
		return -1;
	while (fgets(line, sizeof line, f))
		if (sscanf(line, "VmHWM: %ld kB", &kb) == 1)
			break;
	fclose(f);
	return kb;
}

/* The child: --mem-child INDEX THREADS QUICK; prints the KiB. */
static int mem_child(int index, unsigned threads, bool quick)
{
	const struct impl *im = &impls[index];
	sort_n = quick ? 1000000 : 10000000;
	if (im->wl == W_REC)
		make_rec();
	else
		make_u64();
	use_threads(threads);
	/* warm the pools up on a small array, then fill the work array */
	size_t keep = sort_n;
	sort_n = 20000;
	prepare(im->wl);
	im->fn();
	sort_n = keep;
	prepare(im->wl);
	long before = maxrss_kb();
	im->fn();
	long after = maxrss_kb();
	if (!verify(im->wl) || before < 0 || after < 0)
		return 1;
	printf("%ld\n", after - before);
	return 0;
}

static const char *self_path;

static void mem_row(const bench_cfg *cfg, enum wl wl, unsigned threads)
{
	printf("  peak extra memory (VmHWM growth in a fresh process, MiB):");
	for (size_t i = 0; i < NIMPLS; i++) {
		if (impls[i].wl != wl || !impls[i].fn)
			continue;
		char idx[16], th[16];
		snprintf(idx, sizeof idx, "%zu", i);
		snprintf(th, sizeof th, "%u", threads);
		char *argv[] = {(char *)self_path, "--mem-child", idx, th,
				cfg->quick ? "1" : "0", NULL};
		int fds[2];
		if (pipe(fds) != 0)
			return;
		posix_spawn_file_actions_t fa;
		posix_spawn_file_actions_init(&fa);
		posix_spawn_file_actions_adddup2(&fa, fds[1], 1);
		posix_spawn_file_actions_addclose(&fa, fds[0]);
		pid_t pid;
		int err = posix_spawn(&pid, self_path, &fa, NULL, argv, environ);
		posix_spawn_file_actions_destroy(&fa);
		close(fds[1]);
		char buf[64] = "";
		if (!err) {
			ssize_t got = read(fds[0], buf, sizeof buf - 1);
			buf[got > 0 ? got : 0] = 0;
			int st;
			waitpid(pid, &st, 0);
			if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
				snprintf(buf, sizeof buf, "failed");
		}
		close(fds[0]);
		if (err || !buf[0] || !strcmp(buf, "failed"))
			printf(" %s ?;", impls[i].name);
		else
			printf(" %s %.1f;", impls[i].name, (double)atol(buf) / 1024.0);
	}
	printf("\n");
	fflush(stdout);
}

/* ---- main --------------------------------------------------------------------------- */

static void row(bench_cfg *cfg, const char *name, enum wl wl, unsigned threads, double ops)
{
	if (!bench_wanted(cfg, name))
		return;
	use_threads(threads);
	bench_impl b[BENCH_MAX_IMPLS];
	int n = 0;
	for (size_t i = 0; i < NIMPLS; i++) {
		if (impls[i].wl != wl)
			continue;
		if (impls[i].fn)
			b[n++] = (bench_impl){impls[i].name, run_impl, (void *)&impls[i]};
		else
			b[n++] = (bench_impl)BENCH_MISSING(impls[i].name, impls[i].missing);
	}
	bench_row(cfg, name, threads, ops, BENCH_MS, b, n);
	if (wl != W_SCAN)
		mem_row(cfg, wl, threads);
}

int main(int argc, char **argv)
{
	self_path = "/proc/self/exe";
	if (argc == 5 && !strcmp(argv[1], "--mem-child"))
		return mem_child(atoi(argv[2]), (unsigned)atoi(argv[3]), argv[4][0] == '1');
	static char exe[4096];
	ssize_t len = readlink("/proc/self/exe", exe, sizeof exe - 1);
	if (len > 0) {
		exe[len] = 0;
		self_path = exe;
	}
	const unsigned def_threads[] = {conc_cpu_count(), 0};
	bench_cfg cfg;
	bench_init(&cfg, argc, argv, def_threads);
	sort_n = cfg.quick ? 1000000 : 10000000;
	scan_n = cfg.quick ? 10000000 : 100000000;
	char a[80], c[80], r[80], s[80];
	snprintf(a, sizeof a, "W8a sort %zuM u64", sort_n / 1000000);
	snprintf(c, sizeof c, "W8a sort %zuM u64, comparator", sort_n / 1000000);
	snprintf(r, sizeof r, "W8b stable sort %zuM 16B records", sort_n / 1000000);
	snprintf(s, sizeof s, "W8c prefix sum %zuM u64", scan_n / 1000000);
	if (bench_wanted(&cfg, a) || bench_wanted(&cfg, c))
		make_u64();
	if (bench_wanted(&cfg, r))
		make_rec();
	if (bench_wanted(&cfg, s))
		make_scan();
	for (int t = 0; t < cfg.nthreads; t++) {
		unsigned th = cfg.threads[t] ? cfg.threads[t] : conc_cpu_count();
		row(&cfg, a, W_U64, th, (double)sort_n);
		row(&cfg, c, W_CMP, th, (double)sort_n);
		row(&cfg, r, W_REC, th, (double)sort_n);
		row(&cfg, s, W_SCAN, th, (double)scan_n);
	}
	if (pool)
		conc_pool_destroy(pool);
#ifdef BENCH_HAVE_TBB
	if (tbb_arena)
		tbb_arena_free(tbb_arena);
#endif
#ifdef BENCH_HAVE_RAYON
	if (rs_pool)
		rs_pool_free(rs_pool);
#endif
	return bench_finish(&cfg);
}
