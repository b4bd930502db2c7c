#!/bin/sh
# bench.sh - the README's main command: install what is missing, build a
# release libconc, run every bench binary there is (quick by default), and
# report: one combined table of libconc beside its peers with the ratios,
# results/<date>/bench_<name>.json (+ one JSON per workload) and PNG plots.
#
#   scripts/bench.sh                     quick run (< 3 minutes on 2 cores)
#   scripts/bench.sh --full              more repetitions, threads 1,2,4,8,16
#   scripts/bench.sh --compare OLD_DIR   also list what changed since OLD_DIR
#
# CONC_RESULTS=DIR writes elsewhere than results/<date>.  Each binary's own
# table goes to DIR/bench_<name>.txt; its progress lines show on stderr.
# Exits non-zero if a binary fails or any result does not verify.
set -eu
mode=--quick
compare=""
while [ $# -gt 0 ]; do
	case $1 in
	--full) mode=--full ;;
	--quick) mode=--quick ;;
	--compare)
		[ $# -ge 2 ] || { echo "bench.sh: --compare needs a results dir" >&2; exit 2; }
		compare=$2
		shift ;;
	*) echo "usage: scripts/bench.sh [--full] [--compare OLD_DIR]" >&2; exit 2 ;;
	esac
	shift
done
if [ -n "$compare" ]; then # relative to where the command was given
	compare=$(cd "$compare" && pwd) || { echo "bench.sh: no results dir $compare" >&2; exit 2; }
fi
cd "$(dirname "$0")/.."
. scripts/deps.sh
conc_need_packages $CONC_BENCH_PACKAGES
# shellcheck disable=SC2086
conc_try_packages $CONC_BENCH_OPTIONAL_PACKAGES ||
	echo "libconc: $conc_why (the bench tables list those peers as missing)" >&2

dir=build/release
log=$(mktemp)
trap 'rm -f "$log"' EXIT
if [ -f "$dir/build.ninja" ]; then
	meson setup --reconfigure "$dir" -Dbuildtype=release -Dtests=disabled >"$log" 2>&1 || { cat "$log"; exit 1; }
else
	meson setup "$dir" -Dbuildtype=release -Dtests=disabled >"$log" 2>&1 || { cat "$log"; exit 1; }
fi
ninja -C "$dir" >"$log" 2>&1 || { cat "$log"; exit 1; }

out=${CONC_RESULTS:-results/$(date +%Y-%m-%d)}
mkdir -p "$out"
rm -f "$out"/*.json "$out"/*.png "$out"/*.txt # a rerun the same day replaces it
status=0
start=$(date +%s)
# Every bench binary the build made, in the README's order, then any other.
bins=""
for name in epoch queue stack chan pool scope parallel algo park; do
	[ -f "$dir/bench/bench_$name" ] && bins="$bins $dir/bench/bench_$name"
done
for bin in "$dir"/bench/bench_*; do
	[ -f "$bin" ] && [ -x "$bin" ] || continue
	case " $bins " in *" $bin "*) ;; *) bins="$bins $bin" ;; esac
done
[ -n "$bins" ] || { echo "bench.sh: no bench binaries in $dir/bench" >&2; exit 1; }
for bin in $bins; do
	name=$(basename "$bin")
	t0=$(date +%s)
	rc=0
	"$bin" $mode --json "$out/$name.json" >"$out/$name.txt" || rc=$?
	if [ $rc -ne 0 ]; then
		echo "bench.sh: $name failed (exit status $rc); its table:" >&2
		cat "$out/$name.txt" >&2
		status=1
	fi
	echo "[$name] done in $(($(date +%s) - t0)) s" >&2
done
echo "bench.sh: all binaries in $(($(date +%s) - start)) s" >&2
echo

if [ -n "$compare" ]; then
	python3 scripts/report.py "$out" --compare "$compare" || status=1
else
	python3 scripts/report.py "$out" || status=1
fi
exit $status
