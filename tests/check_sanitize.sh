#!/bin/sh
# check_sanitize.sh SOURCE_ROOT "CC..." - the README's "Testing your program
# with libconc", path by path, as a user would take it: on a scratch
# prefix, install libconc three times side by side (TSan, ASan+UBSan,
# plain; library only, as the README says) and build one program against
# each, tests/sanitize_consumer.c: a 3-stage pipeline (queues between the
# stages, pool tasks and scoped threads, epoch retire).
#   tsan        libconc-tsan (static), `pkg-config conc-tsan`, 0 TSan reports
#   tsan-cmake  the same through find_package(conc-tsan) and conc::conc-tsan
#   asan        libconc-asan (shared: SONAME libconc-asan.so.0),
#               `pkg-config conc-asan`, 0 ASan/UBSan/LSan reports
#   single      dist/conc_single.h alone with -fsanitize=thread -Werror
#               -Wall -Wextra -Wpedantic, with CC and with clang, 0 reports
#   valgrind    the plain libconc (conc.pc), valgrind --leak-check=full,
#               0 errors
#   chaos       CONC_CHAOS=1, plain and under TSan
#   control     the pipeline under TSan against the plain libconc.a must
#               get reports (else TSan's silence above would prove nothing)
# Each prints ok or FAIL with the seconds it took; the script fails if any
# failed.  A path whose tool is missing (valgrind, clang) prints why and is
# skipped; with nothing failed, a skip makes the exit status 77 (meson's
# SKIP).
# The checks are functions that step() runs:
# shellcheck disable=SC2317
set -u
src=$1 cc=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
prefix=$tmp/prefix
log=$tmp/log
consumer=$src/tests/sanitize_consumer.c
n=20000 # items through the pipeline
fail=0 skip=0
export PKG_CONFIG_PATH="$prefix/lib/pkgconfig"
# A sanitizer report ends the run with exit status 66, never 0; the output
# is searched for reports as well.
tsan_env="halt_on_error=1 exitcode=66"
asan_env="halt_on_error=1:detect_leaks=1:exitcode=66"
ubsan_env="halt_on_error=1:print_stacktrace=1:exitcode=66"

now() { date +%s.%N; }
took() { awk "BEGIN { printf \"%.1f\", $(now) - $1 }"; }
# step WHAT COMMAND...: run it quietly; ok or FAIL (with its log), timed.
step() {
	what=$1 t0=$(now)
	shift
	if "$@" >"$log" 2>&1; then
		echo "ok: $what [$(took "$t0") s]"
	else
		echo "FAIL: $what [$(took "$t0") s]"
		sed 's/^/    /' "$log" | tail -40
		fail=$((fail + 1))
		return 1
	fi
}
# runs WHAT [VAR=VALUE...] PROGRAM...: run the pipeline of $n items; it
# must exit 0 (its own checks held) with no sanitizer report; prints the
# pipeline's result line (and valgrind's error summary).
runs() {
	what=$1
	shift
	step "$what" run_clean "$@" "$n" &&
		grep -E '^pipeline:|ERROR SUMMARY' "$log" | sed 's/^==[0-9]*== //; s/^/    /'
}
run_clean() {
	env "$@" || return 1
	if grep -E 'WARNING: ThreadSanitizer|ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:' "$log" >/dev/null; then
		echo "a sanitizer report, although the exit status was 0"
		return 1
	fi
}
# build OUT PKG-CONFIG-ARGS...: the pipeline, compiled and linked with what
# pkg-config gives (the sanitized .pc files bring -fsanitize themselves).
build() {
	out=$1
	shift
	# shellcheck disable=SC2046,SC2086
	$cc -std=c11 -O1 -g "$consumer" -o "$tmp/$out" $(pkg-config "$@")
}
# install_lib NAME MESON-OPTIONS...: a library-only build, installed into
# the one prefix.
install_lib() {
	name=$1
	shift
	CC=$cc meson setup "$tmp/b-$name" "$src" --prefix="$prefix" --libdir=lib \
		-Dtests=disabled -Dbench=disabled "$@" &&
		ninja -C "$tmp/b-$name" && meson install -C "$tmp/b-$name"
}
# has_flag PKG FLAG: both --cflags and --libs carry FLAG.
has_flag() {
	for part in --cflags --libs; do
		pkg-config "$part" "$1" | grep -q -- "$2" ||
			{ echo "$1: pkg-config $part lacks $2: $(pkg-config "$part" "$1")"; return 1; }
	done
}
tsan_files() {
	test -f "$prefix/lib/libconc-tsan.a" &&
		test -f "$prefix/lib/pkgconfig/conc-tsan.pc" &&
		test -f "$prefix/lib/cmake/conc-tsan/conc-tsanConfig.cmake" &&
		test -f "$prefix/include/conc/conc.h" &&
		test ! -e "$prefix/lib/libconc.a" && test ! -e "$prefix/lib/pkgconfig/conc.pc"
}
tsan_cmake() {
	mkdir -p "$tmp/cm"
	cp "$consumer" "$tmp/cm/consumer.c"
	cat >"$tmp/cm/CMakeLists.txt" <<-'CM'
	cmake_minimum_required(VERSION 3.13)
	project(pipeline C)
	find_package(conc-tsan 0.1 CONFIG REQUIRED)
	add_executable(pipeline consumer.c)
	set_target_properties(pipeline PROPERTIES C_STANDARD 11)
	target_link_libraries(pipeline PRIVATE conc::conc-tsan)
	CM
	CC=$cc cmake -S "$tmp/cm" -B "$tmp/cm-b" -DCMAKE_PREFIX_PATH="$prefix" \
		-DCMAKE_BUILD_TYPE=RelWithDebInfo && cmake --build "$tmp/cm-b"
}
asan_soname() {
	soname=$(readelf -d "$prefix/lib/libconc-asan.so" | sed -n 's/.*Library soname: \[\(.*\)\]/\1/p')
	echo "SONAME $soname"
	[ "$soname" = libconc-asan.so.0 ] && test ! -e "$prefix/lib/libconc-asan.a"
}
plain_files() {
	if pkg-config --cflags --libs conc | grep -q -- -fsanitize; then
		echo "conc.pc: $(pkg-config --cflags --libs conc)"
		return 1
	fi
	test -f "$prefix/lib/libconc.a" && test -f "$prefix/lib/cmake/conc/concConfig.cmake" &&
		test "$(ls "$prefix/include")" = conc
}
# The control: TSan's silence counts only if it does report the same
# program linked with the uninstrumented libconc.a, where it sees neither
# libconc's atomics nor its fences (the README's reason for conc-tsan), so
# that each handover through a queue looks like a race.
tsan_control() {
	# shellcheck disable=SC2046
	$cc -std=c11 -O1 -g -fsanitize=thread "$consumer" -o "$tmp/pipe-control" \
		$(pkg-config --static --cflags --libs conc) || return 1
	TSAN_OPTIONS="halt_on_error=0 exitcode=0" "$tmp/pipe-control" 5000 >"$tmp/control.log" 2>&1
	reports=$(grep -c 'WARNING: ThreadSanitizer' "$tmp/control.log")
	echo "TSan reports: $reports (expected some)"
	[ "$reports" -gt 0 ]
}

# ---- TSan --------------------------------------------------------------------

if step "tsan: install libconc-tsan (-Db_sanitize=thread, library only)" \
	install_lib tsan -Db_sanitize=thread; then
	step "tsan: libconc-tsan.a, conc-tsan.pc, find_package(conc-tsan) installed; no plain name" tsan_files
	step "tsan: conc-tsan.pc carries -fsanitize=thread" has_flag conc-tsan -fsanitize=thread
	step "tsan: pipeline built with \$(pkg-config --cflags --libs conc-tsan)" \
		build pipe-tsan --cflags --libs conc-tsan &&
		runs "tsan: pipeline, 0 reports" TSAN_OPTIONS="$tsan_env" "$tmp/pipe-tsan"
	step "tsan-cmake: find_package(conc-tsan), conc::conc-tsan" tsan_cmake &&
		runs "tsan-cmake: pipeline, 0 reports" TSAN_OPTIONS="$tsan_env" "$tmp/cm-b/pipeline"
fi

# ---- ASan + UBSan ------------------------------------------------------------

if step "asan: install libconc-asan (-Db_sanitize=address,undefined -Ddefault_library=shared)" \
	install_lib asan -Db_sanitize=address,undefined -Ddefault_library=shared; then
	step "asan: SONAME libconc-asan.so.0" asan_soname
	step "asan: conc-asan.pc carries -fsanitize=address,undefined" has_flag conc-asan -fsanitize=address,undefined
	step "asan: pipeline built with \$(pkg-config --cflags --libs conc-asan)" \
		build pipe-asan --cflags --libs conc-asan &&
		runs "asan: pipeline, 0 reports" ASAN_OPTIONS="$asan_env" UBSAN_OPTIONS="$ubsan_env" \
			LD_LIBRARY_PATH="$prefix/lib" "$tmp/pipe-asan"
fi

# ---- the single header under TSan --------------------------------------------

single_flags="-std=c11 -pthread -O1 -g -fsanitize=thread -Werror -Wall -Wextra -Wpedantic -DCONC_SINGLE -DCONC_IMPLEMENTATION -I$src/dist"
# shellcheck disable=SC2086
step "single: dist/conc_single.h, $cc $single_flags" \
	$cc $single_flags "$consumer" -o "$tmp/single-cc" &&
	runs "single: pipeline ($cc), 0 reports" TSAN_OPTIONS="$tsan_env" "$tmp/single-cc"
if command -v clang >/dev/null 2>&1; then
	# shellcheck disable=SC2086
	step "single: dist/conc_single.h, clang $single_flags" \
		clang $single_flags "$consumer" -o "$tmp/single-clang" &&
		runs "single: pipeline (clang), 0 reports" TSAN_OPTIONS="$tsan_env" "$tmp/single-clang"
else
	echo "skip: single with clang: clang is not installed"
	skip=$((skip + 1))
fi

# ---- the plain library: valgrind, chaos mode, the control --------------------

if step "plain: install libconc (no sanitizer, library only) beside them" install_lib plain; then
	step "plain: conc.pc without -fsanitize, conc's CMake package; one set of headers" plain_files
	if step "plain: pipeline built with \$(pkg-config --static --cflags --libs conc)" \
		build pipe-plain --static --cflags --libs conc; then
		if command -v valgrind >/dev/null 2>&1; then
			runs "valgrind: pipeline, 0 errors (--leak-check=full)" \
				valgrind --error-exitcode=1 --leak-check=full "$tmp/pipe-plain"
		else
			echo "skip: valgrind: valgrind is not installed"
			skip=$((skip + 1))
		fi
		runs "chaos: pipeline with CONC_CHAOS=1" CONC_CHAOS=1 "$tmp/pipe-plain"
	fi
	if [ -x "$tmp/pipe-tsan" ]; then
		runs "chaos: pipeline with CONC_CHAOS=1 against libconc-tsan, 0 reports" \
			CONC_CHAOS=1 TSAN_OPTIONS="$tsan_env" "$tmp/pipe-tsan"
	fi
	step "control: -fsanitize=thread against the plain libconc.a gets reports" tsan_control &&
		sed 's/^/    /' "$log"
fi

echo "sanitize: $fail failed, $skip skipped"
[ "$fail" -eq 0 ] || exit 1
[ "$skip" -eq 0 ] || exit 77
exit 0
