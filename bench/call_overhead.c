/*
 * call_overhead.c - what a caller pays for linking libconc.so rather than
 * libconc.a: pin/unpin and queue push/pop, one thread, uncontended (issue
 * 17).  bench/meson.build builds this one file twice, as a program outside
 * the project builds it (plain -O2, the public headers; Debian's gcc makes
 * a PIE):
 *
 *   cc -O2 -pthread -I include bench/call_overhead.c libconc.a -o call_overhead_static
 *   cc -O2 -pthread -I include bench/call_overhead.c libconc.so.0.1.0 -Wl,-rpath,DIR \
 *      -o call_overhead_shared
 *
 * and either of them runs the comparison:
 *
 *   call_overhead_static [ROUNDS [OPS]]        default 7 rounds, 10M ops a row
 *
 * Each round runs the two binaries (found beside this one) as child
 * processes, one after the other, the order swapped every round (static
 * shared, shared static, ...), so drift in the machine's speed hits both
 * alike; a child runs every row once untimed (registration, page faults)
 * and then once timed.  Each figure is the median over the rounds of ns per
 * op, with min-max, and the ratio is shared / static (> 1: the shared
 * library is slower).  A child says which libconc it runs with (whether
 * libconc.so.0 is loaded), and the runner refuses a mix-up.
 *
 * The rows (each loop a noinline function, so `objdump -d` shows it whole):
 *   pin+unpin inline     d held in a variable: the header's inline fast
 *                        path.  The executable reaches conc__epoch_last
 *                        initial-exec in both builds, so both run the same
 *                        instructions: the row is a control.
 *   pin+unpin +global    conc_epoch_pin(conc_epoch_global()) and the same
 *                        for unpin: two out-of-line calls a pair, through
 *                        the PLT in the shared build.
 *   pin+unpin via ptr    the library's own out-of-line copies (extern
 *                        inline in src/epoch/epoch.c) through a function
 *                        pointer, as a caller that takes their address or
 *                        builds with -O0 gets them.
 *   queue push+pop       conc_queue_push then conc_queue_try_pop on a
 *                        queue that stays near empty: two calls a pair,
 *                        each a real operation (epoch pin, node cache).
 */
#define _POSIX_C_SOURCE 200809L /* readlink, popen */
#include <dlfcn.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <conc/epoch.h>
#include <conc/queue.h>
#include <conc/version.h>

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

__attribute__((noinline)) void co_pin_inline(conc_epoch *d, unsigned long n);
__attribute__((noinline)) void co_pin_global(unsigned long n);
__attribute__((noinline)) void co_pin_ptr(conc_epoch *d, unsigned long n);
__attribute__((noinline)) int co_queue(conc_queue *q, unsigned long n);

__attribute__((noinline)) void co_pin_inline(conc_epoch *d, unsigned long n)
{
	for (unsigned long i = 0; i < n; i++) {
		conc_epoch_pin(d);
		conc_epoch_unpin(d);
	}
}

__attribute__((noinline)) void co_pin_global(unsigned long n)
{
	for (unsigned long i = 0; i < n; i++) {
		conc_epoch_pin(conc_epoch_global());
		conc_epoch_unpin(conc_epoch_global());
	}
}

/* volatile: the compiler must call through them, not inline the header's
 * copy in their place. */
static void (*volatile pin_ptr)(conc_epoch *) = conc_epoch_pin;
static void (*volatile unpin_ptr)(conc_epoch *) = conc_epoch_unpin;

__attribute__((noinline)) void co_pin_ptr(conc_epoch *d, unsigned long n)
{
	for (unsigned long i = 0; i < n; i++) {
		pin_ptr(d);
		unpin_ptr(d);
	}
}

/* 0 when every pop returned the item just pushed. */
__attribute__((noinline)) int co_queue(conc_queue *q, unsigned long n)
{
	int bad = 0;
	for (unsigned long i = 1; i <= n; i++) {
		void *item = NULL;
		if (conc_queue_push(q, (void *)(uintptr_t)i) != 0 || !conc_queue_try_pop(q, &item) ||
		    item != (void *)(uintptr_t)i)
			bad = 1;
	}
	return bad;
}

enum { PIN_INLINE, PIN_GLOBAL, PIN_PTR, QUEUE, NROWS };
static const char *const rows[NROWS] = {"pin+unpin inline", "pin+unpin +global",
					"pin+unpin via ptr", "queue push+pop"};

/* One child: every row untimed, then timed; prints "kind K" and one
 * "row I NS" line a row. */
static int child(unsigned long ops)
{
	/* libconc.so.0 is loaded (by the dynamic linker: it is the program's
	 * DT_NEEDED) only in the shared build. */
	const char *kind = dlopen("libconc.so.0", RTLD_NOW | RTLD_NOLOAD) ? "shared" : "static";
	conc_epoch *d = conc_epoch_global();
	conc_queue *q;
	if (conc_epoch_register(d) != 0 || conc_queue_create(&q) != 0)
		return 1;
	/* the queue row runs a quarter of the ops: each op is ~20x a pin */
	unsigned long n[NROWS] = {ops, ops, ops, ops / 4 ? ops / 4 : 1};
	double ns[NROWS];
	for (int timed = 0; timed < 2; timed++)
		for (int r = 0; r < NROWS; r++) {
			unsigned long k = timed ? n[r] : n[r] / 10 + 1;
			double t0 = now();
			switch (r) {
			case PIN_INLINE: co_pin_inline(d, k); break;
			case PIN_GLOBAL: co_pin_global(k); break;
			case PIN_PTR: co_pin_ptr(d, k); break;
			default:
				if (co_queue(q, k) != 0) {
					fprintf(stderr, "call_overhead: a pop did not return the item pushed\n");
					return 1;
				}
			}
			ns[r] = (now() - t0) * 1e9 / (double)k;
		}
	if (conc_epoch_is_pinned(d) || !conc_queue_is_empty(q))
		return 1;
	conc_queue_destroy(q, NULL);
	printf("kind %s %s\n", kind, conc_version());
	for (int r = 0; r < NROWS; r++)
		printf("row %d %.4f\n", r, ns[r]);
	return 0;
}

/* Runs `path --child ops` and reads its figures into ns; 0 on success. */
static int spawn(const char *path, const char *want, unsigned long ops, double *ns)
{
	char cmd[PATH_MAX + 64], kind[16] = "", line[128];
	int seen = 0;
	snprintf(cmd, sizeof cmd, "'%s' --child %lu", path, ops);
	FILE *f = popen(cmd, "r");
	if (!f)
		return 1;
	while (fgets(line, sizeof line, f)) {
		int r;
		double v;
		if (sscanf(line, "kind %15s", kind) == 1)
			continue;
		if (sscanf(line, "row %d %lf", &r, &v) == 2 && r >= 0 && r < NROWS) {
			ns[r] = v;
			seen++;
		}
	}
	if (pclose(f) != 0 || seen != NROWS) {
		fprintf(stderr, "call_overhead: %s failed\n", path);
		return 1;
	}
	if (strcmp(kind, want) != 0) {
		fprintf(stderr, "call_overhead: %s runs with the %s libconc, not the %s one\n",
			path, kind, want);
		return 1;
	}
	return 0;
}

static int cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

static double median(double *v, int n)
{
	qsort(v, (size_t)n, sizeof v[0], cmp);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

int main(int argc, char **argv)
{
	if (argc == 3 && strcmp(argv[1], "--child") == 0)
		return child(strtoul(argv[2], NULL, 10));
	int rounds = argc > 1 ? atoi(argv[1]) : 7;
	unsigned long ops = argc > 2 ? strtoul(argv[2], NULL, 10) : 10000000ul;
	if (rounds < 1 || rounds > 99 || ops == 0) {
		fprintf(stderr, "usage: %s [ROUNDS (1-99) [OPS]]\n", argv[0]);
		return 2;
	}
	/* The two binaries sit side by side in the build's bench/. */
	char self[PATH_MAX], bin[2][PATH_MAX + 32];
	ssize_t len = readlink("/proc/self/exe", self, sizeof self - 1);
	if (len <= 0 || memchr(self, '\'', (size_t)len)) {
		fprintf(stderr, "call_overhead: cannot tell (or quote) where it runs from\n");
		return 1;
	}
	self[len] = '\0';
	*strrchr(self, '/') = '\0';
	static const char *const kinds[2] = {"static", "shared"};
	for (int v = 0; v < 2; v++) {
		snprintf(bin[v], sizeof bin[v], "%s/call_overhead_%s", self, kinds[v]);
		if (access(bin[v], X_OK) != 0) {
			fprintf(stderr, "call_overhead: %s is missing\n", bin[v]);
			return 1;
		}
	}
	printf("call overhead, libconc %s: libconc.a against libconc.so, plain -O2 consumer, "
	       "1 thread, %d rounds of %lu ops (queue: %lu), one process each, alternated\n",
	       conc_version(), rounds, ops, ops / 4 ? ops / 4 : 1);
	double s[2][NROWS][99];
	for (int k = 0; k < rounds; k++)
		for (int i = 0; i < 2; i++) {
			int v = (k + i) % 2; /* S H, H S, ... */
			double ns[NROWS];
			if (spawn(bin[v], kinds[v], ops, ns) != 0)
				return 1;
			for (int r = 0; r < NROWS; r++)
				s[v][r][k] = ns[r];
		}
	printf("%-18s %10s %-15s %10s %-15s %8s\n", "op (ns per pair)", "static", "min-max",
	       "shared", "min-max", "sh/st");
	for (int r = 0; r < NROWS; r++) {
		double med[2];
		char range[2][32];
		for (int v = 0; v < 2; v++) {
			med[v] = median(s[v][r], rounds);
			snprintf(range[v], sizeof range[v], "%.2f-%.2f", s[v][r][0],
				 s[v][r][rounds - 1]);
		}
		printf("%-18s %10.2f %-15s %10.2f %-15s %8.2f\n", rows[r], med[0], range[0],
		       med[1], range[1], med[1] / med[0]);
	}
	return 0;
}
