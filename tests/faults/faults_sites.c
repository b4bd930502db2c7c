/*
 * faults_sites.c - the faults suite's last test (issue 8): reads the
 * call-site names from src/ (every conc__malloc/calloc/aligned_alloc/
 * thread_create names its site) and checks that the suite's parts reached
 * each one; adds up the parts' books and prints the suite's `faults sites`
 * and `faults total` rows.
 *
 * The parts (tests/faults/faults_<primitive>.c, one executable each) write
 * their books and the sites they reached to $CONC_FAULTS_PARTS/<part>.txt
 * (tests/lib/faults.c); this test runs after them (meson priority -1,
 * every faults test is_parallel: false), reads the files of the parts
 * named on its command line, and removes them: a part that did not finish
 * in this run leaves no file, and that fails here.
 */
#include <dirent.h>
#include <sys/stat.h>
#include <stdlib.h>

#include "faults.h"

/* ---- every site in src/ was reached ---------------------------------------- */

#define MAX_SITES FAULTS_MAX_SITES /* 128 */

struct names {
	const char *v[MAX_SITES];
	size_t n;
};

static bool has_suffix(const char *s, const char *suf)
{
	size_t a = strlen(s), b = strlen(suf);
	return a >= b && strcmp(s + a - b, suf) == 0;
}

static char *slurp(const char *path)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return NULL;
	size_t cap = 1 << 16, len = 0;
	char *buf = malloc(cap);
	size_t r;
	while (buf && (r = fread(buf + len, 1, cap - len - 1, f)) > 0) {
		len += r;
		if (cap - len - 1 == 0) {
			char *nb = realloc(buf, cap * 2);
			if (!nb) {
				free(buf);
				buf = NULL;
				break;
			}
			buf = nb;
			cap *= 2;
		}
	}
	fclose(f);
	if (buf)
		buf[len] = 0;
	return buf;
}

static bool ident_char(char c)
{
	return c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	       (c >= '0' && c <= '9');
}

/*
 * The sites of one file: every call of the four hook macros must name its
 * site with a string literal, and nothing allocates or creates a thread
 * without them; returns the number of calls that break either rule.
 */
static unsigned scan_file(const char *path, struct names *out, unsigned *dups)
{
	static const char *const macros[] = {"conc__malloc(", "conc__calloc(",
					     "conc__aligned_alloc(", "conc__thread_create("};
	char *text = slurp(path);
	assert_non_null(text);
	unsigned unnamed = 0;
	for (unsigned m = 0; m < 4; m++) {
		for (char *p = text; (p = strstr(p, macros[m])); p++) {
			if (p > text && ident_char(p[-1]))
				continue;
			char *q = p + strlen(macros[m]);
			while (*q == ' ' || *q == '\t' || *q == '\n')
				q++;
			char *end = *q == '"' ? strchr(q + 1, '"') : NULL;
			if (!end) {
				printf("faults sites: %s: a %s call without a site name\n", path,
				       macros[m]);
				unnamed++;
				continue;
			}
			size_t len = (size_t)(end - q - 1);
			char *name = malloc(len + 1);
			assert_non_null(name);
			memcpy(name, q + 1, len);
			name[len] = 0;
			for (size_t i = 0; i < out->n; i++)
				if (strcmp(out->v[i], name) == 0) {
					printf("faults sites: %s: site name \"%s\" used twice\n",
					       path, name);
					++*dups;
				}
			assert_true(out->n < MAX_SITES);
			out->v[out->n++] = name;
		}
	}
	/* and no allocation or thread creation bypasses the hooks */
	static const char *const raw[] = {"malloc(",         "calloc(",  "realloc(",
					  "aligned_alloc(",  "strdup(",  "strndup(",
					  "posix_memalign(", "pthread_create("};
	for (unsigned m = 0; m < sizeof raw / sizeof raw[0]; m++)
		for (char *p = text; (p = strstr(p, raw[m])); p++)
			if (p == text || !ident_char(p[-1])) {
				printf("faults sites: %s: %s called directly, not through a hook\n",
				       path, raw[m]);
				unnamed++;
			}
	free(text);
	return unnamed;
}

/* Every .c and .h file below dir (src/ and its module folders). */
static unsigned scan_dir(const char *dir, struct names *out, unsigned *dups, unsigned *files)
{
	DIR *d = opendir(dir);
	assert_non_null(d);
	unsigned unnamed = 0;
	struct dirent *e;
	while ((e = readdir(d))) {
		if (e->d_name[0] == '.')
			continue;
		char path[4096];
		snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
		struct stat st;
		assert_int_equal(stat(path, &st), 0);
		if (S_ISDIR(st.st_mode)) {
			unnamed += scan_dir(path, out, dups, files);
			continue;
		}
		/* fault.h defines the macros (no literal there) */
		if ((!has_suffix(e->d_name, ".c") && !has_suffix(e->d_name, ".h")) ||
		    strcmp(e->d_name, "fault.h") == 0)
			continue;
		unnamed += scan_file(path, out, dups);
		++*files;
	}
	closedir(d);
	return unnamed;
}

static size_t sites_max; /* the most sites one part reached */

/* The books and the sites of one part; false if its report is missing. */
static bool read_part(const char *part, struct names *reached, long *failed, long *hammer,
		      long *bad, long *unreached)
{
	char path[4096];
	if (!faults_part_path(part, path, sizeof path)) {
		printf("faults sites: CONC_FAULTS_PARTS is not set (run the faults suite with meson test)\n");
		return false;
	}
	FILE *f = fopen(path, "r");
	if (!f) {
		printf("faults sites: no report from part %s (%s): it did not finish in this run\n",
		       part, path);
		return false;
	}
	char line[512];
	long v;
	while (fgets(line, sizeof line, f)) {
		line[strcspn(line, "\n")] = 0;
		if (sscanf(line, "failed %ld", &v) == 1)
			*failed += v;
		else if (sscanf(line, "hammer %ld", &v) == 1)
			*hammer += v;
		else if (sscanf(line, "bad %ld", &v) == 1)
			*bad += v;
		else if (sscanf(line, "unreached %ld", &v) == 1)
			*unreached += v;
		else if (sscanf(line, "sites %ld", &v) == 1)
			sites_max = (size_t)v > sites_max ? (size_t)v : sites_max;
		else if (strncmp(line, "site ", 5) == 0) {
			bool known = false;
			for (size_t i = 0; i < reached->n && !known; i++)
				known = strcmp(reached->v[i], line + 5) == 0;
			if (!known) {
				assert_true(reached->n < MAX_SITES);
				char *name = strdup(line + 5);
				assert_non_null(name);
				reached->v[reached->n++] = name;
			}
		}
	}
	fclose(f);
	remove(path); /* counted once: a later run needs the parts' new reports */
	return true;
}

static int part_argc;
static char **part_argv;

static void test_faults_sites(void **state)
{
	(void)state;
	struct names src = {{0}, 0};
	unsigned dups = 0, files = 0;
	unsigned unnamed = scan_dir(CONC_SRC_DIR, &src, &dups, &files);
	assert_true(files >= 20);
	/* every part's books and the union of the sites they reached */
	struct names got = {{0}, 0};
	/* (into this process's books, faults.h: it runs no sweep of its own) */
	unsigned missing = 0;
	for (int i = 1; i < part_argc; i++)
		missing += !read_part(part_argv[i], &got, &total_failed, &hammer_failed,
				      &total_bad, &total_unreached);
	const char **reached = got.v;
	size_t nr = got.n;
	assert_true(nr <= MAX_SITES);
	assert_true(sites_max <= MAX_SITES);
	unsigned hit = 0, stray = 0;
	for (size_t i = 0; i < src.n; i++) {
		bool found = false;
		for (size_t j = 0; j < nr && !found; j++)
			found = strcmp(src.v[i], reached[j]) == 0;
		hit += found;
		if (!found)
			printf("faults sites: %s not reached by the suite\n", src.v[i]);
	}
	for (size_t j = 0; j < nr; j++) {
		bool found = false;
		for (size_t i = 0; i < src.n && !found; i++)
			found = strcmp(src.v[i], reached[j]) == 0;
		if (!found) { /* a name the source scan missed */
			printf("faults sites: %s reached but not found in %s\n", reached[j],
			       CONC_SRC_DIR);
			stray++;
		}
	}
	printf("reliability: faults sites | hit=%u/%zu\n", hit, src.n);
	printf("reliability: faults total | calls_failed=%ld (sweeps %ld, hammer %ld) bad=%ld "
	       "unreached=%ld\n",
	       total_failed + hammer_failed, total_failed, hammer_failed, total_bad,
	       total_unreached);
	fflush(stdout);
	for (size_t i = 0; i < src.n; i++)
		free((void *)src.v[i]);
	for (size_t i = 0; i < got.n; i++)
		free((void *)got.v[i]);
	assert_int_equal(missing, 0);
	assert_true(part_argc > 1);
	assert_int_equal(unnamed, 0);
	assert_int_equal(dups, 0);
	assert_int_equal(stray, 0);
	assert_true(src.n > 0);
	assert_int_equal(hit, src.n);
	assert_int_equal(total_bad, 0);
}

int main(int argc, char **argv)
{
	/* the parts whose reports to add up: faults_sites epoch queue ... */
	part_argc = argc;
	part_argv = argv;
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_faults_sites),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
