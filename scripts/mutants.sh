#!/bin/sh
# mutants.sh [--control] [N...] - the mutant runs of issue 8 (nightly / on
# demand; not part of the README's test command).
#
# Each mutant N is a known bug planted in src/ by the build option
# -Dmutant=N (src/base/mutant.h; grep CONC__MUTANT).  For each one this
# builds build/mutant-N (gcc, debugoptimized, fault hooks on), runs the
# suites that guard that part of the library, stopping at the first
# failure, and expects them to FAIL.  Three use a gcc TSan build instead
# (build/mutant-N-tsan): 1, a weakened memory order that x86, being TSO,
# never shows to a plain test; 3 and 9, a node reused or retired twice while
# another thread may still use it, which a plain run hits only in rare
# schedules and TSan reports as a data race on the node at once.
# A run that does not finish within MUTANT_TIMEOUT seconds (default 180)
# counts as caught: the bug deadlocked a suite that finishes in well under
# that time without it (--control shows they do).
#
#   mutant k <name>: caught by <test> (<detail>)    or    ... SURVIVED
#   reliability: mutants | caught=K/N
#
# Exit status: 0 when every mutant run was caught, 1 otherwise.  A full
# run (no N) with --control also writes its reliability line to
# build/reliability-mutants.txt, for scripts/reliability.py.
#
# --control first builds the same configurations with -Dmutant=0 (the
# normal code) and checks that every suite used here passes there; a
# failure of the control makes the whole run fail (a mutant "caught" by a
# suite that fails anyway proves nothing).
#
# Environment: CC (default gcc), MUTANT_TIMEOUT (seconds per mutant run),
# MUTANT_BUILD_ROOT (default build/).
set -u
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root" || exit 2
CC=${CC:-gcc}
export CC
limit=${MUTANT_TIMEOUT:-180}
broot=${MUTANT_BUILD_ROOT:-build}

# number|name|flavour (plain or tsan)|the tests that guard it (meson test
# names; those not in this build are left out)
table='1|queue slot publish relaxed|plain|relacy-queue queue stress-queue
2|queue segment freed at once|plain|queue stress-queue
3|stack node reused at once (ABA)|tsan|stack stress-stack
4|epoch free at t+1|plain|epoch stack queue
5|epoch advance skips a record|plain|epoch epoch-fences
6|queue notify before publish|plain|queue stress-queue
7|scope early exit unjoined|plain|scope
8|parallel_for loses an index|plain|parallel
9|queue head moved without CAS|tsan|queue stress-queue
10|pool drops a batch task|plain|pool stress-pool
11|epoch record slot handover relaxed|plain|relacy-record lifecycle-epoch
12|epoch bag push ignores a steal|plain|relacy-retire
13|chan closed receive strands items|plain|chan
14|chan close leaves senders asleep|plain|chan'

control=0
if [ "${1:-}" = "--control" ]; then
	control=1
	shift
fi
all=$(printf '%s\n' "$table" | cut -d'|' -f1 | tr '\n' ' ')
wanted=${*:-$all}

field() { # number field-index
	printf '%s\n' "$table" | awk -F'|' -v n="$1" -v f="$2" '$1 == n { print $f }'
}

# Configure and build dir for mutant n, flavour fl.  0 on success.
build() { # dir n flavour
	dir=$1 n=$2 fl=$3
	if [ ! -f "$dir/build.ninja" ]; then
		san=none
		[ "$fl" = tsan ] && san=thread
		nice meson setup "$dir" --buildtype=debugoptimized \
			-Dfault_hooks=true -Dbench=disabled -Dmutant="$n" \
			-Db_sanitize="$san" >"$dir.setup.log" 2>&1 || return 1
	fi
	nice ninja -C "$dir" >"$dir.build.log" 2>&1
}

# The tests among $1 that this build has.
present() { # dir "names"
	list=$(meson test -C "$1" --list --no-rebuild 2>/dev/null | sed 's/.* \/ //')
	for t in $2; do
		printf '%s\n' "$list" | grep -qx -- "$t" && printf '%s ' "$t"
	done
}

# Run the tests; sets rc (0 all passed, 124 timeout, else failed) and log.
run_tests() { # dir "tests"
	log=$1/meson-logs/testlog.txt
	rm -f "$log"
	# timeout puts meson and the tests in their own process group and
	# kills the group when the time is up.
	# shellcheck disable=SC2086
	timeout -k 10 "$limit" nice meson test -C "$1" --no-rebuild --maxfail 1 \
		--print-errorlogs $2 >"$1.test.log" 2>&1
	rc=$?
}

# What failed: the first failing meson test and, from its log, the cmocka
# test that was running and the first sign of the failure (a failed test,
# the watchdog, a sanitizer report).
culprit() { # dir
	# -a: a model checker's trace can hold bytes that make grep call the
	# log binary and print no line.
	t=$(grep -a -E '^ *[0-9]+/[0-9]+ .*(FAIL|TIMEOUT|ERROR)' "$1.test.log" | head -n 1 |
		sed -E 's/^ *[0-9]+\/[0-9]+ +[^ ]+ \/ ([^ ]+).*(FAIL|TIMEOUT|ERROR).*/\1 \2/')
	d=$(awk '/\[ RUN +\]/ { run = $NF }
		/\[  FAILED  \] test_|WARNING: ThreadSanitizer|ERROR: AddressSanitizer|runtime error:|watchdog:|lost wake-up|result=FAIL/ {
			sub(/^ +/, ""); print (run != "" ? run ": " : "") substr($0, 1, 80); exit }' "$1.test.log")
	printf '%s%s' "${t:-?}" "${d:+ ($d)}"
}

status=0
control_ok=0
if [ "$control" = 1 ]; then
	control_ok=1
	for fl in plain tsan; do
		tests=$(printf '%s\n' "$table" | awk -F'|' -v f="$fl" '$3 == f { print $4 }' |
			tr ' ' '\n' | sort -u | tr '\n' ' ')
		[ -n "$tests" ] || continue
		dir=$broot/mutant-0
		[ "$fl" = tsan ] && dir=$broot/mutant-0-tsan
		if ! build "$dir" 0 "$fl"; then
			echo "control $fl: BUILD FAILED (see $dir.build.log)"
			status=1
			control_ok=0
			continue
		fi
		tests=$(present "$dir" "$tests")
		start=$(date +%s)
		run_tests "$dir" "$tests"
		took=$(($(date +%s) - start))
		if [ "$rc" = 0 ]; then
			echo "control $fl (mutant 0): passed: $tests(${took}s)"
		else
			echo "control $fl (mutant 0): FAILED ($(culprit "$dir")) - mutant results mean nothing"
			status=1
			control_ok=0
		fi
	done
fi

caught=0
total=0
for n in $wanted; do
	name=$(field "$n" 2)
	if [ -z "$name" ]; then
		echo "mutants.sh: no mutant $n" >&2
		exit 2
	fi
	fl=$(field "$n" 3)
	dir=$broot/mutant-$n
	[ "$fl" = tsan ] && dir=$broot/mutant-$n-tsan
	total=$((total + 1))
	if ! build "$dir" "$n" "$fl"; then
		echo "mutant $n $name: SURVIVED (build failed: $dir.build.log)"
		status=1
		continue
	fi
	tests=$(present "$dir" "$(field "$n" 4)")
	if [ -z "$tests" ]; then
		echo "mutant $n $name: SURVIVED (none of its tests are in this build)"
		status=1
		continue
	fi
	start=$(date +%s)
	run_tests "$dir" "$tests"
	took=$(($(date +%s) - start))
	case $rc in
	0)
		echo "mutant $n $name: SURVIVED (${tests}[$fl], ${took}s)"
		status=1
		;;
	124 | 137)
		echo "mutant $n $name: caught by timeout after ${took}s (${tests}[$fl])"
		caught=$((caught + 1))
		;;
	*)
		echo "mutant $n $name: caught by $(culprit "$dir") [$fl, ${took}s]"
		caught=$((caught + 1))
		;;
	esac
done
summary="reliability: mutants | caught=$caught/$total"
echo "$summary"
# The whole set (no N given) after a passing control is what the README's
# table reports (caught or not); scripts/reliability.py reads this file.
if [ -z "${*:-}" ] && [ "$control_ok" = 1 ]; then
	echo "$summary" >"$broot/reliability-mutants.txt"
fi
exit $status
