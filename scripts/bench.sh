#!/bin/sh
# bench.sh - the README's main command: install what is missing, build a
# release libconc and run every bench binary (quick by default; --full for
# the long version).  Each prints libconc beside its peers with the ratios.
set -eu
cd "$(dirname "$0")/.."
. scripts/deps.sh
conc_need_packages $CONC_BENCH_PACKAGES

mode=--quick
[ "${1:-}" = "--full" ] && mode=--full
dir=build/release
log=$(mktemp)
trap 'rm -f "$log"' EXIT
if [ -f "$dir/build.ninja" ]; then
	meson setup --reconfigure "$dir" -Dbuildtype=release -Dtests=false >"$log" 2>&1 || { cat "$log"; exit 1; }
else
	meson setup "$dir" -Dbuildtype=release -Dtests=false >"$log" 2>&1 || { cat "$log"; exit 1; }
fi
ninja -C "$dir" >"$log" 2>&1 || { cat "$log"; exit 1; }
mkdir -p results
status=0
for name in park epoch queue stack pool scope parallel; do
	bin=$dir/bench/bench_$name
	[ -x "$bin" ] || continue
	echo
	echo "== bench_$name"
	"$bin" $mode --json "results/bench_$name.json" || status=1
done
exit $status
