#!/bin/sh
# run_fuzz.sh NAME BINARY RUNS MAX_LEN - run one libFuzzer target RUNS times
# from a fixed seed (no corpus: it starts from the empty input) and print
# its figures from libFuzzer's own output: the "Done N runs" line when it
# finished; on a crash, which kind (a model mismatch prints
# "fuzz mismatch", anything else is a crash) and the run it happened at.
# CONC_FUZZ_RUNS overrides RUNS (a longer run on demand).
set -u
name=$1 bin=$2 runs=${CONC_FUZZ_RUNS:-$3} max_len=$4
out=$(mktemp)
trap 'rm -f "$out"' EXIT
# halt_on_error: the first report ends the run.  Leaks: checked after each
# input (the queue and stack targets free everything an input allocated),
# for the pool and algo targets at exit only (their pool lives across
# inputs).
extra=""
case $name in pool | algo) extra=-detect_leaks=0 ;; esac
ASAN_OPTIONS=${ASAN_OPTIONS:-halt_on_error=1:detect_leaks=1} \
UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1} \
	"$bin" -runs="$runs" -seed=1 -max_len="$max_len" -print_final_stats=1 $extra \
	-artifact_prefix="${TMPDIR:-/tmp}/fuzz-$name-" >"$out" 2>&1
rc=$?
done_runs=$(sed -n 's/^Done \([0-9]*\) runs.*/\1/p' "$out" | tail -1)
if [ "$rc" -eq 0 ] && [ -n "$done_runs" ]; then
	grep -E '^(Done|stat::number_of_executed_units|stat::peak_rss_mb)' "$out"
	echo "reliability: fuzz $name | execs=$done_runs crashes=0 mismatches=0"
	exit 0
fi
# Failed: show the end of libFuzzer's report (the reproducer file is named
# there), then the figures of this run.
tail -60 "$out"
execs=$(sed -n 's/^#\([0-9]*\).*/\1/p' "$out" | tail -1)
if grep -q '^fuzz mismatch' "$out"; then m=1 c=0; else m=0 c=1; fi
echo "reliability: fuzz $name | execs=${execs:-0} crashes=$c mismatches=$m"
exit 1
