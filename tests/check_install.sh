#!/bin/sh
# check_install.sh SOURCE_ROOT "CC..." ["CXX..."] - install libconc into
# scratch prefixes, the default (static) build and a shared one, and build
# and run a consumer against each install, in C and (when a C++ compiler is
# given) in C++:
#   1. through pkg-config (--static for the archive; an rpath for the .so);
#   2. through CMake, find_package(conc CONFIG) and conc::conc;
#   3. as a meson subproject (dependency('conc') and the override), static
#      and shared, where libconc's tests and bench must turn off by
#      themselves; and once more with cmocka hidden from meson, the parent
#      asking nothing special;
#   4. through dlopen(): a plugin linked with libconc.so, loaded by a
#      program that does not link libconc, called from threads started
#      before and after the dlopen, then dlclose()d.
# The single header's consumers are tests/check_single.sh's (it says so).
# Also: libconc.so exports conc_* only (and the three conc__ names the
# inline pin/unpin use; see the ABI rule in meson.build), its SONAME, and
# the time and ninja steps of the library-only default build and install.
set -eu
src=$1 cc=$2 cxx=${3:-}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
log=$tmp/log
run() { "$@" >"$log" 2>&1 || { echo "FAILED: $*"; cat "$log"; exit 1; }; }

cat >"$tmp/consumer.c" <<'C'
#include <conc/conc.h>
#include <stdio.h>
#include <string.h>

static int ran;
static void bump(conc_epoch_node *n) { (void)n; ran++; }

int main(void)
{
	conc_epoch *d;
	conc_epoch_node node;
	void (*pin)(conc_epoch *) = conc_epoch_pin; /* the library's copy */
	if (conc_epoch_create(&d) != 0)
		return 1;
	pin(d);
	conc_epoch_pin(d);
	conc_epoch_retire(d, &node, bump);
	conc_epoch_unpin(d);
	conc_epoch_unpin(d);
	if (conc_epoch_barrier(d) != 0 || conc_epoch_destroy(d) != 0)
		return 1;
	printf("C: libconc %s (headers %s) cpus=%u ran=%d\n", conc_version(),
	       CONC_VERSION_STRING, conc_cpu_count(), ran);
	return ran == 1 && conc_cpu_count() >= 1 &&
	       strcmp(conc_version(), CONC_VERSION_STRING) == 0 ? 0 : 1;
}
C
cat >"$tmp/consumer.cc" <<'CC'
#include <conc/conc.h>
#include <atomic>
#include <cstdio>
#include <cstring>

static std::atomic<int> ran{0};

int main()
{
	conc_epoch *d = conc_epoch_global();
	static conc_epoch_node node;
	conc_epoch_pin(d);
	conc_epoch_retire(d, &node, [](conc_epoch_node *) { ran++; });
	conc_epoch_unpin(d);
	if (conc_epoch_barrier(d) != 0)
		return 1;
	static_assert(CONC_CHECK_VERSION(0, 1, 0), "headers older than 0.1.0");
	std::printf("C++: libconc %s ran=%d\n", conc_version(), ran.load());
	return ran == 1 && conc_version_number() == CONC_VERSION_NUMBER ? 0 : 1;
}
CC

langs=c
[ -n "$cxx" ] && langs="c cxx"
[ -n "$cxx" ] || echo "install: no C++ compiler given: C consumers only"

# Whether the consumer linked libconc.so (shared) or nothing (static).
check_link() { # binary kind
	if ldd "$1" | grep -q 'libconc\.so\.0 '; then got=shared; else got=static; fi
	[ "$got" = "$2" ] || { echo "FAIL: $1 linked libconc $got, expected $2"; exit 1; }
}

# ---- the installs ------------------------------------------------------------

# The library-only default build (static), timed: configure, build, install.
t0=$(date +%s.%N)
run meson setup "$tmp/b-static" "$src" --prefix="$tmp/static" --libdir=lib \
	-Dtests=disabled -Dbench=disabled
ninja -C "$tmp/b-static" >"$log" 2>&1 || { cat "$log"; exit 1; }
steps=$(sed -n 's/^\[[0-9]*\/\([0-9]*\)\].*/\1/p' "$log" | tail -n 1)
run meson install -C "$tmp/b-static"
t1=$(date +%s.%N)
echo "install: library-only default configure+build+install: $(awk "BEGIN { printf \"%.1f\", $t1 - $t0 }") s, $steps ninja steps"
test -f "$tmp/static/lib/libconc.a"
test ! -e "$tmp/static/lib/libconc.so"
test ! -e "$tmp/static/lib/libconc_internal.a"
for f in conc.h version.h attr.h epoch.h; do test -f "$tmp/static/include/conc/$f"; done
test -f "$tmp/static/lib/pkgconfig/conc.pc"
test -f "$tmp/static/lib/cmake/conc/concConfig.cmake"
test -f "$tmp/static/lib/cmake/conc/concConfigVersion.cmake"
if grep -q '^URL' "$tmp/static/lib/pkgconfig/conc.pc"; then
	echo "FAIL: conc.pc has a URL line"; exit 1
fi

run meson setup "$tmp/b-shared" "$src" --prefix="$tmp/shared" --libdir=lib \
	-Dtests=disabled -Dbench=disabled -Ddefault_library=shared
run ninja -C "$tmp/b-shared"
run meson install -C "$tmp/b-shared"
so=$tmp/shared/lib/libconc.so
test -L "$so" && test ! -e "$tmp/shared/lib/libconc.a"
soname=$(readelf -d "$so" | sed -n 's/.*Library soname: \[\(.*\)\]/\1/p')
[ "$soname" = libconc.so.0 ] || { echo "FAIL: SONAME '$soname', expected libconc.so.0"; exit 1; }

# Exports: conc_* only; of the conc__ names only the inline fast path's.
nm -D --defined-only "$so" >"$tmp/exports"
if grep -v ' conc_' "$tmp/exports"; then echo "FAIL: libconc.so exports the names above"; exit 1; fi
inner=$(awk '$3 ~ /^conc__/ { print $3 }' "$tmp/exports" | sort | tr '\n' ' ')
[ "$inner" = "conc__epoch_last conc__epoch_pin_slow conc__epoch_unpin_slow " ] ||
	{ echo "FAIL: conc__ names exported: $inner"; exit 1; }
for f in conc_epoch_pin conc_epoch_unpin conc_version conc_version_number; do
	grep -q " T $f\$" "$tmp/exports" || { echo "FAIL: $f not exported"; exit 1; }
done
echo "install: exported symbols $(wc -l <"$tmp/exports") (SONAME $soname)"

# ---- 1. pkg-config -----------------------------------------------------------

for kind in static shared; do
	prefix=$tmp/$kind
	if [ $kind = static ]; then
		flags=$(PKG_CONFIG_PATH=$prefix/lib/pkgconfig pkg-config --static --cflags --libs conc)
	else
		flags="$(PKG_CONFIG_PATH=$prefix/lib/pkgconfig pkg-config --cflags --libs conc) -Wl,-rpath,$prefix/lib"
	fi
	echo "pkg-config ($kind): $flags"
	# shellcheck disable=SC2086
	$cc -std=c11 "$tmp/consumer.c" -o "$tmp/pc-$kind-c" $flags
	check_link "$tmp/pc-$kind-c" $kind
	"$tmp/pc-$kind-c"
	if [ -n "$cxx" ]; then
		# shellcheck disable=SC2086
		$cxx -std=c++17 "$tmp/consumer.cc" -o "$tmp/pc-$kind-cxx" $flags
		check_link "$tmp/pc-$kind-cxx" $kind
		"$tmp/pc-$kind-cxx"
	fi
done

# ---- 2. CMake ----------------------------------------------------------------

mkdir -p "$tmp/cm"
cp "$tmp/consumer.c" "$tmp/consumer.cc" "$tmp/cm/"
cat >"$tmp/cm/CMakeLists.txt" <<'CM'
cmake_minimum_required(VERSION 3.13)
project(consumer C)
set(WANT 0.1 CACHE STRING "the version find_package asks for")
find_package(conc ${WANT} CONFIG REQUIRED)
message(STATUS "conc ${conc_VERSION} from ${conc_DIR}")
add_executable(consumer_c consumer.c)
set_target_properties(consumer_c PROPERTIES C_STANDARD 11)
target_link_libraries(consumer_c PRIVATE conc::conc)
if(WITH_CXX)
  enable_language(CXX)
  add_executable(consumer_cxx consumer.cc)
  set_target_properties(consumer_cxx PROPERTIES CXX_STANDARD 17)
  target_link_libraries(consumer_cxx PRIVATE conc::conc)
endif()
CM
with_cxx=OFF
[ -n "$cxx" ] && with_cxx=ON
for kind in static shared; do
	b=$tmp/cm-$kind
	CC=$cc CXX=$cxx run cmake -S "$tmp/cm" -B "$b" -DCMAKE_PREFIX_PATH="$tmp/$kind" \
		-DWITH_CXX=$with_cxx
	run cmake --build "$b"
	for l in $langs; do
		check_link "$b/consumer_$l" "$kind"
		"$b/consumer_$l"
	done
	echo "cmake ($kind): conc::conc built and ran ($langs)"
done
# A request the install does not satisfy (0.x: another minor) fails.
if CC=$cc cmake -S "$tmp/cm" -B "$tmp/cm-want" -DCMAKE_PREFIX_PATH="$tmp/static" \
	-DWANT=0.2 >"$log" 2>&1; then
	echo "FAIL: find_package(conc 0.2) accepted 0.1"; cat "$log"; exit 1
fi

# ---- 3. meson subproject -----------------------------------------------------

mkdir -p "$tmp/proj/subprojects"
ln -s "$src" "$tmp/proj/subprojects/libconc"
cp "$tmp/consumer.c" "$tmp/consumer.cc" "$tmp/proj/"
cat >"$tmp/proj/meson.build" <<'M'
project('consumer', 'c', default_options: ['c_std=c11'])
# No tests=/bench= here: a subproject turns them off by itself.
conc = dependency('conc', fallback: ['libconc', 'conc_dep'])
executable('consumer_c', 'consumer.c', dependencies: conc)
if add_languages('cpp', required: get_option('with_cxx'))
  executable('consumer_cxx', 'consumer.cc', dependencies: conc,
    override_options: ['cpp_std=c++17'])
endif
M
echo "option('with_cxx', type: 'boolean', value: false)" >"$tmp/proj/meson_options.txt"
with_cxx=false
[ -n "$cxx" ] && with_cxx=true
subproject() { # name kind [meson setup options]: configure, build, run
	name=$1 kind=$2
	shift 2
	b=$tmp/proj/build-$name
	CC=$cc CXX=$cxx run meson setup "$b" "$tmp/proj" -Dwith_cxx=$with_cxx "$@"
	# libconc's tests and bench are off, and not at the parent's request.
	if [ "$(meson introspect --tests "$b")" != "[]" ]; then
		echo "FAIL: the subproject ($name) defined tests"; exit 1
	fi
	if [ -d "$b/subprojects/libconc/bench" ] || [ -d "$b/subprojects/libconc/tests" ]; then
		echo "FAIL: the subproject ($name) built its tests or bench"; exit 1
	fi
	run meson compile -C "$b"
	for l in $langs; do
		check_link "$b/consumer_$l" "$kind"
		"$b/consumer_$l"
	done
}
for kind in static shared; do
	# libconc's default_options (static) are its own: the parent's
	# default_library does not reach it; the parent asks by name.
	subproject $kind $kind -Dlibconc:default_library=$kind
	echo "subproject ($kind): built and ran ($langs), libconc's tests and bench off"
done

# With cmocka absent (the issue: libconc used to fail outright there, also
# as a subproject).  cmocka is installed here, so it is hidden the two ways
# meson looks for it: a pkg-config that does not know it and a cmake that
# fails.  The parent is the same project as above, asking nothing special.
mkdir -p "$tmp/nocmocka"
real_pkg_config=$(command -v pkg-config)
cat >"$tmp/nocmocka/pkg-config" <<PC
#!/bin/sh
for a; do case \$a in cmocka*) exit 1 ;; esac; done
exec "$real_pkg_config" "\$@"
PC
printf '#!/bin/sh\nexit 1\n' >"$tmp/nocmocka/cmake"
chmod +x "$tmp/nocmocka/pkg-config" "$tmp/nocmocka/cmake"
# First that meson indeed cannot find it now, so that the build below
# proves something.
mkdir -p "$tmp/probe"
echo "project('probe', 'c')
dependency('cmocka', required: false)" >"$tmp/probe/meson.build"
(
	# in a subshell: the hiding ends with it
	PATH=$tmp/nocmocka:$PATH PKG_CONFIG=$tmp/nocmocka/pkg-config
	export PATH PKG_CONFIG
	CC=$cc run meson setup "$tmp/probe/build" "$tmp/probe"
	grep -q 'Run-time dependency cmocka found: NO' "$log" ||
		{ echo "FAIL: cmocka still visible to meson through the hiding"; cat "$log"; exit 1; }
	subproject nocmocka static
)
echo "subproject (cmocka absent): configured, built and ran ($langs)"
echo "install: pkg-config, CMake and subproject consumers built and ran (static, shared; $langs)"
# ---- 4. dlopen -----------------------------------------------------------------

# A plugin linked with the shared install, loaded by a program that does not
# link libconc: libconc.so then arrives with dlopen(), after the threads
# that already run, and with it the thread-local conc__epoch_last of the
# inline pin and libconc.so's own thread-locals, which it accesses with
# the dynamic model: were it initial-exec (a STATIC_TLS module), its whole
# TLS block would have to fit in the space glibc keeps spare for dlopen,
# and it does not.
cat >"$tmp/plugin.c" <<'C'
#include <conc/conc.h>
#include <stdint.h>

struct obj {
	conc_epoch_node node;
	int freed;
};
static void free_obj(conc_epoch_node *n) { ((struct obj *)(void *)n)->freed = 1; }

int plugin_run(void);
int plugin_run(void)
{
	conc_epoch *d = conc_epoch_global(), *mine;
	struct obj a = {.freed = 0}, b = {.freed = 0};
	conc_queue *q;
	void *item;
	conc_epoch_pin(d); /* the header's inline pin, compiled -fPIC */
	conc_epoch_pin(d);
	conc_epoch_retire(d, &a.node, free_obj);
	conc_epoch_unpin(d);
	if (!conc_epoch_is_pinned(d))
		return 1;
	conc_epoch_unpin(d);
	if (conc_epoch_barrier(d) != 0 || !a.freed)
		return 2;
	if (conc_epoch_create(&mine) != 0)
		return 3;
	conc_epoch_pin(mine);
	conc_epoch_retire(mine, &b.node, free_obj);
	conc_epoch_unpin(mine);
	if (conc_epoch_barrier(mine) != 0 || !b.freed || conc_epoch_destroy(mine) != 0)
		return 4;
	if (conc_queue_create(&q) != 0)
		return 5;
	for (uintptr_t i = 1; i <= 1000; i++)
		if (conc_queue_push(q, (void *)i) != 0)
			return 6;
	for (uintptr_t i = 1; i <= 1000; i++)
		if (!conc_queue_try_pop(q, &item) || item != (void *)i)
			return 7;
	conc_queue_destroy(q, NULL);
	return 0;
}
C
cat >"$tmp/host.c" <<'C'
/* Calls the plugin from the main thread, from a thread that was running
 * before the dlopen and from one started after it; then dlclose()s it
 * while the first thread, which used libconc, still lives, and lets that
 * thread exit (libconc's thread-exit hooks run then). */
#define _POSIX_C_SOURCE 200809L
#include <dlfcn.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>

static int (*run)(void);
static pthread_barrier_t step;

static void *early(void *arg)
{
	(void)arg;
	pthread_barrier_wait(&step); /* the dlopen is done (or failed) */
	int r = run ? run() : -1;
	pthread_barrier_wait(&step); /* the dlclose is done */
	return (void *)(intptr_t)r;
}

static void *late(void *arg)
{
	(void)arg;
	return (void *)(intptr_t)run();
}

int main(int argc, char **argv)
{
	pthread_t t1, t2;
	void *r1, *r2;
	if (argc != 2 || pthread_barrier_init(&step, NULL, 2) != 0 ||
	    pthread_create(&t1, NULL, early, NULL) != 0)
		return 2;
	void *h = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
	if (h)
		*(void **)&run = dlsym(h, "plugin_run");
	if (!run) {
		printf("%s\n", dlerror());
		pthread_barrier_wait(&step);
		pthread_barrier_wait(&step);
		pthread_join(t1, NULL);
		return 1;
	}
	pthread_barrier_wait(&step);
	int r0 = run(); /* beside the early thread */
	if (pthread_create(&t2, NULL, late, NULL) != 0 || pthread_join(t2, &r2) != 0)
		return 2;
	if (dlclose(h) != 0)
		return 2;
	int kept = dlopen("libconc.so.0", RTLD_NOW | RTLD_NOLOAD) != NULL;
	pthread_barrier_wait(&step);
	pthread_join(t1, &r1);
	printf("dlopen: plugin ran in the main thread %d, a thread from before the dlopen %d, "
	       "one from after %d (0: ok); after dlclose libconc.so %s, and the first thread exited\n",
	       r0, (int)(intptr_t)r1, (int)(intptr_t)r2, kept ? "stays (nodelete)" : "was unloaded");
	return r0 || r1 || r2;
}
C
flags="$(PKG_CONFIG_PATH=$tmp/shared/lib/pkgconfig pkg-config --cflags --libs conc) -Wl,-rpath,$tmp/shared/lib"
# shellcheck disable=SC2086
run $cc -std=c11 -Wall -Wextra -fPIC -shared "$tmp/plugin.c" -o "$tmp/plugin.so" $flags
run $cc -std=c11 -Wall -Wextra -pthread "$tmp/host.c" -o "$tmp/host" -ldl
if ldd "$tmp/host" | grep -q libconc; then echo "FAIL: the host links libconc"; exit 1; fi
# libconc.so's own thread-locals use the dynamic TLS model (TLS
# descriptors with gcc on x86-64; src/base/arch.h, CONC__TLS_IE), so it is
# no STATIC_TLS module and the dlopen must work with glibc's defaults.
if readelf -d "$so" | grep -q STATIC_TLS; then
	echo "FAIL: libconc.so is STATIC_TLS (an initial-exec thread-local in its objects):"
	readelf -d "$so" | grep FLAGS; exit 1
fi
if "$tmp/host" "$tmp/plugin.so" >"$log" 2>&1; then
	echo "install: $(cat "$log")"
	tls=$(readelf -lW "$so" | awk '$1 == "TLS" { print $6 }')
	echo "install: dlopen: libconc.so is not STATIC_TLS (a $((tls))-byte TLS block, dynamic model), loaded with the default glibc tunables"
else
	echo "FAIL: the dlopen'ed plugin (default glibc tunables)"; cat "$log"; exit 1
fi

# The single header needs no install: suite amalgamation
# builds and runs its C and C++ consumers.
echo "install: single header (dist/conc_single.h), C and C++ consumers: suite amalgamation (tests/check_single.sh)"
