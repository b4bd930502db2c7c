#!/bin/sh
# test.sh - the README's test command: install what is missing, then build
# and run the whole suite in these builds:
#   gcc      debugoptimized, failure hooks on (unit, stress, headers, install,
#            arch, C++ consumer, amalgamation, models: Relacy and spin)
#   clang    debugoptimized, failure hooks on (the same but headers, install,
#            arch)
#   tsan     gcc -fsanitize=thread
#   asan     gcc -fsanitize=address,undefined
#   clang-tsan, clang-asan  the same two with clang
#   fuzz     clang: the libFuzzer targets (suite fuzz) only; skipped when
#            clang is missing
#   aarch64  cross gcc for AArch64, every suite but install and arch, under
#            qemu-user (-cpu neoverse-n1: Armv8.2, LSE atomics), stress at
#            scale 0 (a smoke run: the native builds have the full scale)
#   aarch64-clang  the same with clang --target=aarch64-linux-gnu under
#            -cpu cortex-a72 (Armv8.0, no LSE: the LL/SC atomics)
# CONC_TEST_BUILDS="gcc tsan" runs a subset; CONC_STRESS_SCALE scales the
# stress suites (default 1; passed to meson as -Dstress_scale, which is
# what the tests see).  An AArch64 build whose
# packages cannot be installed, or whose emulator cannot run a program
# here, is skipped with the reason printed; it does not fail the run.
# Ends with "N passed, N failed".
set -eu
cd "$(dirname "$0")/.."
. scripts/deps.sh
conc_need_packages $CONC_TEST_PACKAGES

builds=${CONC_TEST_BUILDS:-gcc clang tsan asan clang-tsan clang-asan fuzz aarch64 aarch64-clang}
log=$(mktemp)
passed=0 failed=0 status=0 skipped="" ok_builds="" bad_builds=""
# What failed, named again after the table: CI shows only the end of the
# output, and the test names must be in it.
failures=$(mktemp) || { rm -f "$log"; exit 1; }
trap 'rm -f "$log" "$failures"' EXIT
# A build that cannot be configured or compiled: its log is printed (by
# setup), it counts as one failure, and the run goes on to the next build,
# so the summary at the end still names everything that failed.
build_failed() {
	status=1 bad_builds="$bad_builds $b" failed=$((failed + 1))
	echo "$b: configure or build failed (its log is printed above)" >>"$failures"
	echo "reliability: build $b | tests passed=0 failed=1 (did not build)" >>"$summary"
}
# One line per build for the Reliability table (scripts/reliability.py).
mkdir -p build
summary=build/reliability-builds.txt
: >"$summary"

setup() { # dir, then meson options
	dir=$1
	shift
	if [ -f "$dir/build.ninja" ]; then
		meson setup --reconfigure "$dir" "$@" >"$log" 2>&1 || { cat "$log"; return 1; }
	else
		meson setup "$dir" "$@" >"$log" 2>&1 || { cat "$log"; return 1; }
	fi
	ninja -C "$dir" >"$log" 2>&1 || { cat "$log"; return 1; }
}

# aarch64_ready CROSS_FILE: the packages are there (installed if need be)
# and qemu-user runs an AArch64 program built with the cross file's
# compiler; else 1 with the reason in $conc_why.
aarch64_ready() {
	conc_try_packages $CONC_AARCH64_PACKAGES || return 1
	tmp=$(mktemp -d)
	printf '#include <pthread.h>\nstatic void *f(void *a) { return a; }\nint main(void) { pthread_t t; void *r; return pthread_create(&t, 0, f, &t) || pthread_join(t, &r) || r != &t; }\n' >"$tmp/hello.c"
	cc_line=$(sed -n "s/^c = //p" "$1" | tr -d "[],'")
	wrapper=$(sed -n '/^qemu = /,/\]$/p' "$1" | sed 's/^qemu = //' | tr -d "[],'\n" | tr -s ' ')
	# shellcheck disable=SC2086
	if ! $cc_line -pthread "$tmp/hello.c" -o "$tmp/hello" >"$tmp/log" 2>&1; then
		conc_why="the cross compiler ($cc_line) cannot build a program: $(head -3 "$tmp/log" | tr '\n' ' ')"
		rm -rf "$tmp"
		return 1
	fi
	set -f # the wrapper holds a glob (CONC_TEST_SKIP) for qemu, not for sh
	# shellcheck disable=SC2086
	if ! $wrapper "$tmp/hello" >"$tmp/log" 2>&1; then
		set +f
		conc_why="qemu-user cannot run an AArch64 program here ($wrapper): $(head -3 "$tmp/log" | tr '\n' ' ')"
		rm -rf "$tmp"
		return 1
	fi
	set +f
	rm -rf "$tmp"
}

for b in $builds; do
	echo "=== build: $b"
	start=$(date +%s)
	scale=${CONC_STRESS_SCALE:-1}
	# --werror: the project's own builds treat warnings as errors (a
	# consumer's build of libconc does not).
	common="--werror -Dfault_hooks=true -Dbench=disabled -Dstress_scale=$scale"
	# The proofs' invariants are checked (src/base/check.h) in every build
	# but gcc's, whose instruction guard measures the code users get.
	checks="-Ddebug_checks=true"
	# install: native only; headers and arch: the gcc build has them;
	# amalgamation: compiled with the plain compiler, so once per compiler.
	case $b in
	gcc) CC=gcc CXX=g++ setup build/test-gcc $common -Ddebug_checks=false || { build_failed; continue; }; dir=build/test-gcc; extra="" ;;
	clang) CC=clang CXX=clang++ setup build/test-clang $common $checks || { build_failed; continue; }; dir=build/test-clang
		extra="--no-suite install --no-suite headers --no-suite arch" ;;
	tsan) CC=gcc CXX=g++ setup build/test-tsan $common $checks -Db_sanitize=thread || { build_failed; continue; }; dir=build/test-tsan
		extra="--no-suite install --no-suite headers --no-suite arch --no-suite amalgamation" ;;
	asan) CC=gcc CXX=g++ setup build/test-asan $common $checks -Db_sanitize=address,undefined || { build_failed; continue; }; dir=build/test-asan
		extra="--no-suite install --no-suite headers --no-suite arch --no-suite amalgamation" ;;
	# b_lundef=false: meson warns that clang's sanitizers and
	# --no-undefined clash; that matters for shared libraries only (there
	# are none here), so it is set to keep the log quiet.
	clang-tsan | clang-asan)
		case $b in clang-tsan) san=thread ;; *) san=address,undefined ;; esac
		dir=build/test-$b
		CC=clang CXX=clang++ setup "$dir" $common $checks -Db_sanitize=$san -Db_lundef=false || { build_failed; continue; }
		extra="--no-suite install --no-suite headers --no-suite arch --no-suite amalgamation" ;;
	fuzz)
		if ! command -v clang >/dev/null 2>&1; then
			echo "SKIPPED: fuzz needs clang (libFuzzer), which is not installed"
			skipped="$skipped $b"
			continue
		fi
		dir=build/test-fuzz
		CC=clang CXX=clang++ setup "$dir" --werror -Dbench=disabled -Dfuzz=enabled $checks || { build_failed; continue; }
		extra="--suite fuzz" ;;
	aarch64 | aarch64-clang)
		case $b in
		aarch64) cross=cross/aarch64-linux-gnu-gcc.ini ;;
		*) cross=cross/aarch64-linux-gnu-clang.ini ;;
		esac
		# Smoke-scale stress under qemu-user (10^5 ops a container): the
		# full 10^8 runs natively; qemu runs it 10-50x slower.
		common="--werror -Dfault_hooks=true -Dbench=disabled -Dstress_scale=0 $checks"
		if ! aarch64_ready "$cross"; then
			echo "SKIPPED: $b cannot run here: $conc_why"
			skipped="$skipped $b"
			continue
		fi
		dir=build/test-$b
		# CC/CXX would name the build machine's compilers here: unset.
		(unset CC CXX; setup "$dir" --cross-file "$cross" $common) || { build_failed; continue; }
		extra="--no-suite install --no-suite arch" ;;
	*) echo "unknown build $b" >&2; exit 2 ;;
	esac
	# shellcheck disable=SC2086
	if meson test -C "$dir" --print-errorlogs $extra >"$log" 2>&1; then
		ok_builds="$ok_builds $b" this=0
	else
		status=1 bad_builds="$bad_builds $b" this=1
	fi
	grep -E '^ *[0-9]+/[0-9]+ ' "$log" || true
	grep -E '^(Ok|Fail|Timeout|Unexpected Pass):' "$log" | tr '\n' ' '
	echo "($(($(date +%s) - start)) s with the build)"
	if [ "$this" -ne 0 ]; then
		sed -n '/^=* [0-9]*\/[0-9]* =*$/,$p' "$log" | head -200
		# meson's line for each failed test, then the lines in its output
		# that say what failed (cmocka's, an assertion's, a sanitizer's,
		# a watchdog's), at most 12 per build.
		{
			grep -E '^ *[0-9]+/[0-9]+ .*(FAIL|TIMEOUT|ERROR|UNEXPECTEDPASS)' "$log" | sed "s/^ */$b: /" || true
			grep -E '\[  FAILED  \]|\[  ERROR   \]|[Ff]ailure!|[Aa]ssert|ERROR: .*Sanitizer|WARNING: ThreadSanitizer|runtime error|watchdog|[Tt]imed out' "$log" |
				grep -v '^ *[0-9]*/[0-9]* ' | head -12 | sed "s/^/$b:   /" || true
		} >>"$failures"
	fi
	ok=$(sed -n 's/^Ok: *\([0-9]*\).*/\1/p' "$log")
	bad=$(grep -E '^(Fail|Timeout|Unexpected Pass):' "$log" | awk '{s += $NF} END {print s + 0}')
	passed=$((passed + ${ok:-0}))
	failed=$((failed + ${bad:-0}))
	echo "reliability: build $b | tests passed=${ok:-0} failed=${bad:-0} time=$(($(date +%s) - start)) s" >>"$summary"
done
[ -n "$skipped" ] && echo "builds skipped (reasons above):$skipped"
echo "builds passed:${ok_builds:- none}; failed:${bad_builds:- none}"
# The sanitizer row of the table: the sanitizer builds that passed.
san=$(for b in $ok_builds; do case $b in tsan | asan) echo gcc-$b ;; *san) echo $b ;; esac; done | paste -sd, -)
[ -n "$san" ] && echo "reliability: sanitizers | builds=$san" >>"$summary"
# The figures the reliability suites printed, as one table.
dirs=""
for b in $builds; do [ -d "build/test-$b" ] && dirs="$dirs build/test-$b"; done
# shellcheck disable=SC2086
python3 scripts/reliability.py $dirs || true
if [ -s "$failures" ]; then
	echo "what failed (each build's log is printed above, after its test lines):"
	awk '!seen[$0]++' "$failures" | cut -c1-300
fi
echo "tests: $passed passed, $failed failed"
exit $status
