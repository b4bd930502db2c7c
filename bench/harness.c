/*
 * harness.c - repetitions, medians, the side-by-side table, JSON.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/utsname.h>

#include "harness.h"

typedef struct row {
	char workload[96];
	unsigned threads;
	bench_unit unit;
	double ops;
	int n, reps;
	char impl[BENCH_MAX_IMPLS][32];
	double samples[BENCH_MAX_IMPLS][BENCH_MAX_REPS];
	double median[BENCH_MAX_IMPLS], min[BENCH_MAX_IMPLS], max[BENCH_MAX_IMPLS];
	bool verified[BENCH_MAX_IMPLS];
} row;

static row *rows;
static int nrows, caprows;
static bool any_failed;

double bench_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void usage(const char *argv0)
{
	fprintf(stderr,
		"usage: %s [--quick|--full] [--reps N] [--threads 1,2,4] "
		"[--filter TEXT] [--json FILE]\n", argv0);
	exit(2);
}

void bench_init(bench_cfg *cfg, int argc, char **argv, const unsigned *def_threads)
{
	memset(cfg, 0, sizeof *cfg);
	cfg->binary = strrchr(argv[0], '/') ? strrchr(argv[0], '/') + 1 : argv[0];
	const char *threads = NULL;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (!strcmp(a, "--quick"))
			cfg->quick = true;
		else if (!strcmp(a, "--full"))
			cfg->full = true;
		else if (!strcmp(a, "--reps") && i + 1 < argc)
			cfg->reps = atoi(argv[++i]);
		else if (!strcmp(a, "--threads") && i + 1 < argc)
			threads = argv[++i];
		else if (!strcmp(a, "--filter") && i + 1 < argc)
			cfg->filter = argv[++i];
		else if (!strcmp(a, "--json") && i + 1 < argc)
			cfg->json_path = argv[++i];
		else
			usage(argv[0]);
	}
	if (cfg->reps <= 0)
		cfg->reps = cfg->quick ? 3 : cfg->full ? 11 : 5;
	if (cfg->reps > BENCH_MAX_REPS)
		cfg->reps = BENCH_MAX_REPS;
	if (threads) {
		char *copy = strdup(threads), *save = NULL;
		for (char *t = strtok_r(copy, ",", &save); t && cfg->nthreads < BENCH_MAX_THREADS;
		     t = strtok_r(NULL, ",", &save))
			if (atoi(t) > 0)
				cfg->threads[cfg->nthreads++] = (unsigned)atoi(t);
		free(copy);
	} else if (cfg->full) {
		static const unsigned sweep[] = {1, 2, 4, 8, 16};
		for (int i = 0; i < 5; i++)
			cfg->threads[cfg->nthreads++] = sweep[i];
	} else {
		for (int i = 0; def_threads[i] && cfg->nthreads < BENCH_MAX_THREADS; i++)
			cfg->threads[cfg->nthreads++] = def_threads[i];
	}
	printf("%-34s %4s  %-16s %12s  %-21s %7s  %s\n", "workload", "thr",
	       "implementation", "median", "min-max", "ratio", "ok");
}

bool bench_wanted(const bench_cfg *cfg, const char *workload)
{
	return !cfg->filter || strstr(workload, cfg->filter);
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

static double shown(const row *r, double seconds)
{
	switch (r->unit) {
	case BENCH_MOPS:
		return r->ops / seconds / 1e6;
	case BENCH_NS_PER_OP:
		return seconds * 1e9 / r->ops;
	default:
		return seconds * 1e3;
	}
}

/* 4 significant digits, never an exponent. */
static void fmt(char *buf, size_t n, double v)
{
	if (v >= 1000)
		snprintf(buf, n, "%.0f", v);
	else if (v >= 100)
		snprintf(buf, n, "%.1f", v);
	else if (v >= 10)
		snprintf(buf, n, "%.2f", v);
	else
		snprintf(buf, n, "%.3f", v);
}

static const char *unit_name(bench_unit u)
{
	return u == BENCH_MOPS ? "M/s" : u == BENCH_NS_PER_OP ? "ns" : "ms";
}

void bench_row(bench_cfg *cfg, const char *workload, unsigned threads,
	       double ops, bench_unit unit, const bench_impl *impls, int n)
{
	if (!bench_wanted(cfg, workload))
		return;
	if (nrows == caprows) {
		caprows = caprows ? 2 * caprows : 16;
		rows = realloc(rows, (size_t)caprows * sizeof *rows);
		if (!rows) {
			perror("bench");
			exit(1);
		}
	}
	row *r = &rows[nrows++];
	memset(r, 0, sizeof *r);
	snprintf(r->workload, sizeof r->workload, "%s", workload);
	r->threads = threads;
	r->unit = unit;
	r->ops = ops;
	r->n = n < BENCH_MAX_IMPLS ? n : BENCH_MAX_IMPLS;
	r->reps = cfg->reps;
	fprintf(stderr, "[%s] %s, %u threads: ", cfg->binary, workload, threads);
	for (int i = 0; i < r->n; i++) {
		snprintf(r->impl[i], sizeof r->impl[i], "%s", impls[i].name);
		r->verified[i] = true;
		bench_result w = impls[i].run(impls[i].arg, threads); /* warm-up */
		r->verified[i] = r->verified[i] && w.verified;
	}
	for (int k = 0; k < r->reps; k++) {
		for (int i = 0; i < r->n; i++) {
			bench_result res = impls[i].run(impls[i].arg, threads);
			r->samples[i][k] = res.seconds;
			r->verified[i] = r->verified[i] && res.verified;
		}
		fputc('.', stderr);
	}
	fputc('\n', stderr);
	for (int i = 0; i < r->n; i++) {
		double s[BENCH_MAX_REPS];
		memcpy(s, r->samples[i], sizeof(double) * (size_t)r->reps);
		qsort(s, (size_t)r->reps, sizeof s[0], cmp_double);
		r->median[i] = r->reps % 2 ? s[r->reps / 2]
					   : (s[r->reps / 2 - 1] + s[r->reps / 2]) / 2;
		r->min[i] = s[0];
		r->max[i] = s[r->reps - 1];
		if (!r->verified[i])
			any_failed = true;
	}
	for (int i = 0; i < r->n; i++) {
		double a = shown(r, r->min[i]), b = shown(r, r->max[i]);
		if (a > b) {
			double t = a;
			a = b;
			b = t;
		}
		char lo[24], hi[24], mid[24], range[52], med[32];
		fmt(lo, sizeof lo, a);
		fmt(hi, sizeof hi, b);
		fmt(mid, sizeof mid, shown(r, r->median[i]));
		snprintf(range, sizeof range, "%s-%s", lo, hi);
		snprintf(med, sizeof med, "%s %s", mid, unit_name(unit));
		printf("%-34s %4u  %-16s %12s  %-21s %7.2f  %s\n",
		       i == 0 ? r->workload : "", r->threads, r->impl[i], med, range,
		       r->median[i] / r->median[0], r->verified[i] ? "yes" : "NO");
	}
	fflush(stdout);
}

static void json_str(FILE *f, const char *s)
{
	fputc('"', f);
	for (; *s; s++) {
		if (*s == '"' || *s == '\\')
			fputc('\\', f);
		if ((unsigned char)*s >= 0x20)
			fputc(*s, f);
	}
	fputc('"', f);
}

int bench_finish(bench_cfg *cfg)
{
	if (cfg->json_path) {
		FILE *f = fopen(cfg->json_path, "w");
		if (!f) {
			perror(cfg->json_path);
			return 1;
		}
		struct utsname u;
		uname(&u);
		time_t now = time(NULL);
		char date[32];
		strftime(date, sizeof date, "%Y-%m-%dT%H:%M:%SZ", gmtime(&now));
		fprintf(f, "{\"binary\": ");
		json_str(f, cfg->binary);
		fprintf(f, ", \"date\": \"%s\", \"kernel\": ", date);
		json_str(f, u.release);
		fprintf(f, ", \"machine\": ");
		json_str(f, u.machine);
		fprintf(f, ", \"compiler\": ");
#if defined(__clang__)
		json_str(f, "clang " __clang_version__);
#else
		json_str(f, "gcc " __VERSION__);
#endif
		fprintf(f, ", \"reps\": %d, \"rows\": [", cfg->reps);
		for (int k = 0; k < nrows; k++) {
			row *r = &rows[k];
			for (int i = 0; i < r->n; i++) {
				fprintf(f, "%s\n  {\"workload\": ", k || i ? "," : "");
				json_str(f, r->workload);
				fprintf(f, ", \"threads\": %u, \"impl\": ", r->threads);
				json_str(f, r->impl[i]);
				fprintf(f, ", \"unit\": \"%s\", \"value\": %.6g, "
					   "\"median_s\": %.9g, \"min_s\": %.9g, \"max_s\": %.9g, "
					   "\"ratio\": %.4f, \"verified\": %s, \"samples_s\": [",
					unit_name(r->unit), shown(r, r->median[i]), r->median[i],
					r->min[i], r->max[i], r->median[i] / r->median[0],
					r->verified[i] ? "true" : "false");
				for (int j = 0; j < r->reps; j++)
					fprintf(f, "%s%.9g", j ? ", " : "", r->samples[i][j]);
				fprintf(f, "]}");
			}
		}
		fprintf(f, "\n]}\n");
		fclose(f);
	}
	free(rows);
	rows = NULL;
	nrows = caprows = 0;
	if (any_failed)
		fprintf(stderr, "[%s] FAILED: a result did not verify\n", cfg->binary);
	return any_failed ? 1 : 0;
}
