#!/bin/sh
# test.sh - the README's test command: install what is missing, then build
# and run the whole suite in four builds:
#   gcc   debugoptimized, failure hooks on (unit, stress, headers, install)
#   clang debugoptimized, failure hooks on (unit, stress)
#   tsan  gcc -fsanitize=thread
#   asan  gcc -fsanitize=address,undefined
# CONC_TEST_BUILDS="gcc tsan" runs a subset; CONC_STRESS_SCALE scales the
# stress suites (default 1).  Ends with "N passed, N failed".
set -eu
cd "$(dirname "$0")/.."
. scripts/deps.sh
conc_need_packages $CONC_TEST_PACKAGES

builds=${CONC_TEST_BUILDS:-gcc clang tsan asan}
log=$(mktemp)
trap 'rm -f "$log"' EXIT
passed=0 failed=0 status=0

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

for b in $builds; do
	echo "=== build: $b"
	common="-Dfault_hooks=true -Dbench=false"
	case $b in
	gcc) CC=gcc CXX=g++ setup build/test-gcc $common || exit 1; dir=build/test-gcc; extra="" ;;
	clang) CC=clang CXX=clang++ setup build/test-clang $common || exit 1; dir=build/test-clang; extra="--no-suite install --no-suite headers" ;;
	tsan) CC=gcc CXX=g++ setup build/test-tsan $common -Db_sanitize=thread || exit 1; dir=build/test-tsan; extra="--no-suite install --no-suite headers" ;;
	asan) CC=gcc CXX=g++ setup build/test-asan $common -Db_sanitize=address,undefined || exit 1; dir=build/test-asan; extra="--no-suite install --no-suite headers" ;;
	*) echo "unknown build $b" >&2; exit 2 ;;
	esac
	# shellcheck disable=SC2086
	if meson test -C "$dir" --print-errorlogs $extra >"$log" 2>&1; then :; else status=1; fi
	grep -E '^ *[0-9]+/[0-9]+ ' "$log" || true
	grep -E '^(Ok|Fail|Timeout|Unexpected Pass):' "$log" | tr '\n' ' '
	echo
	if [ "$status" -ne 0 ]; then sed -n '/^=* [0-9]*\/[0-9]* =*$/,$p' "$log" | head -200; fi
	ok=$(sed -n 's/^Ok: *\([0-9]*\).*/\1/p' "$log")
	bad=$(grep -E '^(Fail|Timeout|Unexpected Pass):' "$log" | awk '{s += $NF} END {print s + 0}')
	passed=$((passed + ${ok:-0}))
	failed=$((failed + ${bad:-0}))
done
echo "tests: $passed passed, $failed failed"
exit $status
