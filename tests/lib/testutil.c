#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "testutil.h"

/* CONC_TEST_SKIP=<glob>: cmocka skips the tests whose names match.  The
 * AArch64 cross files set it for what qemu-user cannot emulate (a thread
 * started in the child of a threaded fork fails an assertion inside qemu);
 * set before main so that no test file has to ask. */
__attribute__((constructor)) static void conc_test_skip_filter(void)
{
	const char *p = getenv("CONC_TEST_SKIP");
	if (p && *p) {
		/* cmocka 1.1 skips these silently: say so once */
		fprintf(stderr, "testutil: skipping tests that match CONC_TEST_SKIP=%s\n", p);
		cmocka_set_skip_filter(p);
	}
}

unsigned long conc_test_scale(void)
{
	const char *s = getenv("CONC_STRESS_SCALE");
	if (!s || !*s)
		return 1;
	char *end;
	unsigned long v = strtoul(s, &end, 10);
	return *end ? 1 : v;
}

unsigned long conc_test_iters(unsigned long n, unsigned long slow)
{
	unsigned long scale = conc_test_scale();
	unsigned long v = scale ? n * scale : n / 100;
	if (CONC_TEST_SANITIZED && slow > 1)
		v /= slow;
	return v ? v : 1;
}

static const char *volatile watchdog_what = "?";

static void on_alarm(int sig)
{
	(void)sig;
	static const char msg[] = "watchdog: test made no progress in time: ";
	/* async-signal-safe output only */
	ssize_t r = write(2, msg, sizeof msg - 1);
	r = write(2, watchdog_what, strlen(watchdog_what));
	r = write(2, "\n", 1);
	(void)r;
	_exit(3);
}

void conc_test_watchdog(const char *what, unsigned seconds)
{
	watchdog_what = what;
	signal(SIGALRM, on_alarm);
	alarm(CONC_TEST_SANITIZED ? seconds * 5 : seconds);
}

void conc_test_watchdog_off(void)
{
	alarm(0);
}

int conc_test_run_threads(unsigned n, void *(*fn)(void *), void *arg,
			  size_t stride)
{
	pthread_t *t = calloc(n, sizeof *t);
	if (!t)
		return 12;
	unsigned started = 0;
	int err = 0;
	for (; started < n; started++) {
		/* no arithmetic on a NULL arg (UB, and UBSan says so) */
		err = pthread_create(&t[started], NULL, fn,
				     arg ? (char *)arg + (size_t)started * stride : NULL);
		if (err)
			break;
	}
	for (unsigned i = 0; i < started; i++)
		pthread_join(t[i], NULL);
	free(t);
	return err;
}

/* ---- the progress watchdog ------------------------------------------------ */

struct conc_test_progress {
	const char *what;
	atomic_ulong *counter;
	unsigned long limit_ms;
	pthread_mutex_t lock;
	pthread_cond_t cond; /* CLOCK_MONOTONIC */
	int stop;            /* under lock */
	pthread_t thread;
};

static void progress_deadline(struct timespec *ts, long ms)
{
	clock_gettime(CLOCK_MONOTONIC, ts);
	ts->tv_nsec += ms * 1000000L;
	ts->tv_sec += ts->tv_nsec / 1000000000L;
	ts->tv_nsec %= 1000000000L;
}

static void *progress_monitor(void *arg)
{
	struct conc_test_progress *w = arg;
	/* relaxed: only whether the value moved matters */
	unsigned long last = atomic_load_explicit(w->counter, memory_order_relaxed);
	unsigned long still_ms = 0;
	const long step_ms = 100;
	pthread_mutex_lock(&w->lock);
	while (!w->stop) {
		/* The timed wait is the sampling period, not synchronisation:
		 * stop() wakes it at once through the condition. */
		struct timespec ts;
		progress_deadline(&ts, step_ms);
		while (!w->stop && pthread_cond_timedwait(&w->cond, &w->lock, &ts) != ETIMEDOUT)
			;
		if (w->stop)
			break;
		unsigned long now = atomic_load_explicit(w->counter, memory_order_relaxed);
		if (now != last) {
			last = now;
			still_ms = 0;
			continue;
		}
		still_ms += (unsigned long)step_ms;
		if (still_ms >= w->limit_ms) {
			fprintf(stderr, "progress watchdog: %s made no progress for %lu ms "
				"(counter stuck at %lu)\n", w->what, still_ms, now);
			fflush(stderr);
			fflush(stdout);
			_exit(3);
		}
	}
	pthread_mutex_unlock(&w->lock);
	return NULL;
}

conc_test_progress *conc_test_progress_watchdog_start(const char *what,
						      atomic_ulong *counter,
						      unsigned seconds)
{
	struct conc_test_progress *w = calloc(1, sizeof *w);
	if (!w)
		return NULL;
	w->what = what;
	w->counter = counter;
	w->limit_ms = (unsigned long)seconds * 1000UL * (CONC_TEST_SANITIZED ? 3 : 1);
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_mutex_init(&w->lock, NULL);
	pthread_cond_init(&w->cond, &ca);
	pthread_condattr_destroy(&ca);
	if (pthread_create(&w->thread, NULL, progress_monitor, w) != 0) {
		pthread_cond_destroy(&w->cond);
		pthread_mutex_destroy(&w->lock);
		free(w);
		return NULL;
	}
	return w;
}

void conc_test_progress_watchdog_stop(conc_test_progress *w)
{
	if (!w)
		return;
	pthread_mutex_lock(&w->lock);
	w->stop = 1;
	pthread_cond_signal(&w->cond);
	pthread_mutex_unlock(&w->lock);
	pthread_join(w->thread, NULL);
	pthread_cond_destroy(&w->cond);
	pthread_mutex_destroy(&w->lock);
	free(w);
}

static uint64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* Whether pc lies in a mapping of pid whose file is a sanitizer runtime -
 * or, in a sanitized build, the executable itself: clang links its
 * runtime into the executable, and a thread blocked in a system call
 * issued from the executable's own code is the runtime's (its inline
 * internal_syscall); libconc's and the tests' system calls go through
 * libc's wrappers (syscall(), futex waits), whose pc is in libc.  Without
 * this, a clang-sanitized child hung in the runtime's allocator lock was
 * recognised only at the deadline (50 s, then gdb) and lifecycle-fork's
 * 300 s ran out. */
static bool pc_in_sanitizer(pid_t pid, unsigned long pc)
{
	char path[64], line[512], exe[512];
	snprintf(path, sizeof path, "/proc/%d/exe", (int)pid);
	ssize_t k = CONC_TEST_SANITIZED ? readlink(path, exe, sizeof exe - 1) : -1;
	exe[k > 0 ? k : 0] = 0;
	snprintf(path, sizeof path, "/proc/%d/maps", (int)pid);
	FILE *f = fopen(path, "r");
	if (!f)
		return false;
	bool hit = false;
	while (fgets(line, sizeof line, f)) {
		unsigned long lo, hi;
		if (sscanf(line, "%lx-%lx", &lo, &hi) != 2 || pc < lo || pc >= hi)
			continue;
		hit = strstr(line, "/libasan") || strstr(line, "/libtsan") ||
		      strstr(line, "/libubsan") || strstr(line, "/liblsan");
		if (!hit && exe[0]) {
			line[strcspn(line, "\n")] = 0;
			const char *file = strchr(line, '/');
			hit = file && strcmp(file, exe) == 0;
		}
		break;
	}
	fclose(f);
	return hit;
}

/* Whether a thread of pid is blocked in a system call that the sanitizer
 * runtime made: /proc/PID/task/TID/syscall reads "nr args... sp pc" while
 * the thread sleeps in one. */
static bool child_in_sanitizer(pid_t pid)
{
	char path[64], line[512];
	snprintf(path, sizeof path, "/proc/%d/task", (int)pid);
	DIR *dir = opendir(path);
	if (!dir)
		return false;
	bool hit = false;
	struct dirent *e;
	while (!hit && (e = readdir(dir)) != NULL) {
		if (e->d_name[0] < '0' || e->d_name[0] > '9')
			continue;
		snprintf(path, sizeof path, "/proc/%d/task/%.16s/syscall", (int)pid, e->d_name);
		FILE *f = fopen(path, "r");
		if (!f)
			continue;
		if (fgets(line, sizeof line, f) && line[0] >= '0' && line[0] <= '9') {
			char *last = strrchr(line, ' ');
			if (last)
				hit = pc_in_sanitizer(pid, strtoul(last + 1, NULL, 16));
		}
		fclose(f);
	}
	closedir(dir);
	return hit;
}

/*
 * A hung child: print its stacks (gdb, when the machine has it), so that a
 * failure names the place, and say whether a thread is stuck inside the
 * sanitizer runtime's own locks (a top frame in __sanitizer::, __tsan::,
 * __asan::) - also where the runtime is linked into the executable (clang),
 * which the maps check above cannot tell.
 */
static bool child_stacks_in_sanitizer(pid_t pid)
{
	char cmd[160], line[1024];
	snprintf(cmd, sizeof cmd,
		 "command -v gdb >/dev/null && timeout 60 gdb -p %d -batch -ex "
		 "'thread apply all bt 24' 2>/dev/null | grep '^#'",
		 (int)pid);
	fprintf(stderr, "conc_test_wait_child: child %d hung; its stacks:\n", (int)pid);
	FILE *f = popen(cmd, "r");
	if (!f)
		return false;
	bool hit = false;
	while (fgets(line, sizeof line, f)) {
		fputs(line, stderr);
		/* frames #0-#5: the innermost, where a thread waits */
		if (line[0] == '#' && line[1] >= '0' && line[1] <= '5' && line[2] == ' ' &&
		    (strstr(line, "__sanitizer::") || strstr(line, "__tsan::") ||
		     strstr(line, "__asan::") || strstr(line, "__lsan::")))
			hit = true;
	}
	if (pclose(f) != 0 && !hit)
		fprintf(stderr, "conc_test_wait_child: (no stacks: gdb missing or failed)\n");
	return hit;
}

int conc_test_wait_child(pid_t pid, unsigned timeout_ms, int *status, bool *in_sanitizer)
{
	uint64_t start = now_ms();
	uint64_t deadline = start + (CONC_TEST_SANITIZED ? 5ull : 1ull) * timeout_ms;
	unsigned seen = 0; /* samples that found it in the sanitizer runtime */
	if (in_sanitizer)
		*in_sanitizer = false;
#ifdef SYS_pidfd_open
	int fd = (int)syscall(SYS_pidfd_open, pid, 0);
#else
	int fd = -1;
#endif
	for (;;) {
		pid_t r = waitpid(pid, status, WNOHANG);
		if (r == pid) {
			if (fd >= 0)
				close(fd);
			return 0;
		}
		if (r < 0 && errno != EINTR) {
			int e = errno;
			if (fd >= 0)
				close(fd);
			return e;
		}
		uint64_t now = now_ms();
		if (now >= deadline)
			break;
		/* Past its first 2 s a child is sampled every 50 ms: a thread
		 * that spins on a sanitizer lock (sched_yield) is in a system
		 * call only now and then, so sightings are counted, not runs. */
		bool sampling = in_sanitizer && now - start >= 2000;
		if (sampling && child_in_sanitizer(pid) && ++seen >= 3) {
			*in_sanitizer = true;
			break;
		}
		if (fd >= 0) {
			/* readable once the child has exited */
			struct pollfd p = {.fd = fd, .events = POLLIN};
			uint64_t left = deadline - now, step = sampling ? 50 : 1000;
			poll(&p, 1, (int)(left > step ? step : left));
		} else {
			nanosleep(&(struct timespec){0, 100000}, NULL);
		}
	}
	if (fd >= 0)
		close(fd);
	if (!(in_sanitizer && *in_sanitizer) && child_stacks_in_sanitizer(pid) && in_sanitizer)
		*in_sanitizer = true;
	kill(pid, SIGKILL);
	while (waitpid(pid, status, 0) < 0 && errno == EINTR)
		;
	return ETIMEDOUT;
}

/* ---- test points ----------------------------------------------------------- */

#if defined(CONC_FAULT_HOOKS) && CONC_FAULT_HOOKS
#include "base/fault.h"

struct watch {
	const char *point; /* NULL: unused */
	int tag;
	int pause;
	unsigned long hits;
	int paused;   /* a thread blocked there now */
	int released; /* the pause is over (one pause per watch) */
};

static pthread_mutex_t tp_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t tp_cond = PTHREAD_COND_INITIALIZER;
static struct watch watches[CONC_TEST_WATCHES];
static _Thread_local int my_tag;
static unsigned long tp_gen; /* bumped at each broadcast: no event is missed */

static void tp_hook(const char *point)
{
	pthread_mutex_lock(&tp_lock);
	for (int i = 0; i < CONC_TEST_WATCHES; i++) {
		struct watch *w = &watches[i];
		if (!w->point || strcmp(w->point, point) ||
		    (w->tag != CONC_TEST_ANY && w->tag != my_tag))
			continue;
		w->hits++;
		tp_gen++;
	pthread_cond_broadcast(&tp_cond);
		if (w->pause && !w->released && !w->paused) {
			w->paused = 1;
			while (!w->released)
				pthread_cond_wait(&tp_cond, &tp_lock);
			w->paused = 0;
			tp_gen++;
	pthread_cond_broadcast(&tp_cond);
		}
	}
	pthread_mutex_unlock(&tp_lock);
}

void conc_test_points_start(void)
{
	pthread_mutex_lock(&tp_lock);
	memset(watches, 0, sizeof watches);
	pthread_mutex_unlock(&tp_lock);
	conc__test_set_hook(tp_hook);
}

void conc_test_points_stop(void)
{
	pthread_mutex_lock(&tp_lock);
	for (int i = 0; i < CONC_TEST_WATCHES; i++)
		watches[i].released = 1;
	tp_gen++;
	pthread_cond_broadcast(&tp_cond);
	pthread_mutex_unlock(&tp_lock);
	conc__test_set_hook(NULL);
}

void conc_test_tag(int tag)
{
	my_tag = tag;
}

int conc_test_watch(const char *point, int tag, int pause)
{
	pthread_mutex_lock(&tp_lock);
	int id = -1;
	for (int i = 0; i < CONC_TEST_WATCHES && id < 0; i++)
		if (!watches[i].point) {
			watches[i] = (struct watch){.point = point, .tag = tag, .pause = pause};
			id = i;
		}
	pthread_mutex_unlock(&tp_lock);
	return id;
}

unsigned long conc_test_watch_hits(int id)
{
	pthread_mutex_lock(&tp_lock);
	unsigned long h = watches[id].hits;
	pthread_mutex_unlock(&tp_lock);
	return h;
}

int conc_test_watch_paused(int id)
{
	pthread_mutex_lock(&tp_lock);
	int v = watches[id].paused;
	pthread_mutex_unlock(&tp_lock);
	return v;
}

void conc_test_watch_release(int id)
{
	pthread_mutex_lock(&tp_lock);
	watches[id].released = 1;
	tp_gen++;
	pthread_cond_broadcast(&tp_cond);
	pthread_mutex_unlock(&tp_lock);
}

void conc_test_points_signal(void)
{
	pthread_mutex_lock(&tp_lock);
	tp_gen++;
	pthread_cond_broadcast(&tp_cond);
	pthread_mutex_unlock(&tp_lock);
}

int conc_test_points_wait(int (*pred)(void *arg), void *arg, unsigned timeout_s)
{
	struct timespec dl;
	clock_gettime(CLOCK_REALTIME, &dl);
	dl.tv_sec += (time_t)timeout_s * (CONC_TEST_SANITIZED ? 5 : 1);
	pthread_mutex_lock(&tp_lock);
	int ok;
	/* pred runs unlocked: it may read watches through the calls above */
	for (;;) {
		unsigned long gen = tp_gen;
		pthread_mutex_unlock(&tp_lock);
		ok = pred(arg);
		pthread_mutex_lock(&tp_lock);
		if (ok)
			break;
		if (gen != tp_gen)
			continue; /* something happened while pred ran */
		if (pthread_cond_timedwait(&tp_cond, &tp_lock, &dl) == ETIMEDOUT) {
			pthread_mutex_unlock(&tp_lock);
			return pred(arg);
		}
	}
	pthread_mutex_unlock(&tp_lock);
	return 1;
}
#endif
