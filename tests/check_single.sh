#!/bin/sh
# check_single.sh SOURCE_ROOT WORK_DIR PYTHON "CC..." ["CXX..."] - the
# single-file distribution, dist/conc_single.h:
#   1. it is what scripts/amalgamate.py makes from the sources now (not
#      stale, not edited by hand);
#   2. a program built from it alone with `cc -std=c11 -pthread` runs:
#      the implementation in its own file (single_impl.c, which also reuses
#      libconc's file-local names) and, the stb way, in the program's one
#      file (-DCONC_IMPLEMENTATION);
#      and the tutorial examples (examples/*.c) build from it and run;
#   3. a C++17 program on its API part builds, links with the C
#      implementation and runs.
# Cross builds run the programs through $CONC_EXE_WRAPPER (the cross
# file's conc_exe_wrapper property).
set -u
src=$1 work=$2 python=$3 cc=$4 cxx=${5:-}
rm -rf "$work"
mkdir -p "$work"
fail=0
run() { # what, command...
	what=$1
	shift
	if "$@" >"$work/out.log" 2>&1; then
		echo "ok: $what"
	else
		echo "FAIL: $what"
		sed 's/^/    /' "$work/out.log" | head -40
		fail=$((fail + 1))
		return 1
	fi
}

emu() { # program...: run it, through the cross build's wrapper if any
	set -f # the wrapper's words are not globs here (CONC_TEST_SKIP=*fork*)
	# shellcheck disable=SC2086
	set -- ${CONC_EXE_WRAPPER:-} "$@"
	set +f
	"$@"
}

# 1. Regenerate into the build dir and compare with the checked-in copy.
run "regenerated" "$python" "$src/scripts/amalgamate.py" -o "$work/conc_single.h"
if cmp -s "$work/conc_single.h" "$src/dist/conc_single.h"; then
	echo "ok: dist/conc_single.h is up to date"
else
	diff -u "$src/dist/conc_single.h" "$work/conc_single.h" | head -30
	echo "FAIL: dist/conc_single.h is stale: run 'python3 scripts/amalgamate.py' and commit it"
	fail=$((fail + 1))
fi

# 2. Programs from the checked-in header alone (what users download).
mkdir -p "$work/dist"
cp "$src/dist/conc_single.h" "$work/dist/conc_single.h"
flags="-std=c11 -pthread -O2 -Wall -Wextra -Wpedantic -Werror -I$work/dist"
# The implementation is compiled once, to an object that the two-file
# example, the tutorial examples and the C++ program all link with (a
# compile of the whole library at -O2 is the slow step here, under qemu's
# cross builds most of all).
impl_ok=0
# shellcheck disable=SC2086
run "cc: implementation in its own file" \
	$cc $flags -c "$src/tests/single_impl.c" -o "$work/single_impl.o" && impl_ok=1
# shellcheck disable=SC2086
[ $impl_ok -eq 1 ] && run "cc: example linked with it" \
	$cc $flags "$src/tests/single_example.c" "$work/single_impl.o" -o "$work/example2"
# shellcheck disable=SC2086
run "example (two files) runs" emu "$work/example2"
cat "$work/out.log"
# shellcheck disable=SC2086
run "cc: implementation in the program's one file" \
	$cc $flags -DCONC_IMPLEMENTATION "$src/tests/single_example.c" -o "$work/example1"
# shellcheck disable=SC2086
run "example (one file) runs" emu "$work/example1"

# The tutorial examples (examples/*.c, once they exist), unchanged: they
# include <conc/...>, which a shim directory maps to conc_single.h, and the
# implementation comes from single_impl.c.  Each must exit 0 on its own.
if ls "$src"/examples/*.c >/dev/null 2>&1; then
	mkdir -p "$work/shim/conc"
	for h in "$src"/include/conc/*.h; do
		printf '#include "conc_single.h"\n' >"$work/shim/conc/$(basename "$h")"
	done
	for ex in "$src"/examples/*.c; do
		name=$(basename "$ex" .c)
		# shellcheck disable=SC2086
		run "cc: examples/$name.c from conc_single.h" $cc $flags -I"$work/shim" \
			"$ex" "$work/single_impl.o" -o "$work/ex-$name" &&
			run "examples/$name runs" emu "$work/ex-$name" </dev/null
	done
fi

# 3. The API as C++: a C++ program that includes conc_single.h (the API
# part; the implementation is C11, built by cc in single_impl.c) and links
# with it: the inline pin/unpin compiled as C++ against the C copy's
# thread-local, a retire, a barrier and a queue.
if [ -n "$cxx" ]; then
	cat >"$work/api.cc" <<'CC'
#include "conc_single.h"
#include <cstdint>
#include <cstdio>

static int freed;
static conc_epoch_node node;

int main()
{
	conc_epoch *d = conc_epoch_global();
	conc_epoch_pin(d);
	conc_epoch_retire(d, &node, [](conc_epoch_node *) { freed++; });
	conc_epoch_unpin(d);
	conc_queue *q;
	if (conc_epoch_barrier(d) != 0 || freed != 1 || conc_queue_create(&q) != 0)
		return 1;
	for (std::uintptr_t i = 1; i <= 100; i++)
		if (conc_queue_push(q, reinterpret_cast<void *>(i)) != 0)
			return 1;
	void *item;
	for (std::uintptr_t i = 1; i <= 100; i++)
		if (!conc_queue_try_pop(q, &item) || item != reinterpret_cast<void *>(i))
			return 1;
	conc_queue_destroy(q, nullptr);
	std::printf("C++ from conc_single.h: cpus=%u freed=%d\n", conc_cpu_count(), freed);
	return conc_cpu_count() > 0 ? 0 : 1;
}
CC
	# shellcheck disable=SC2086
	if [ $impl_ok -eq 1 ] &&
		run "c++17: a program on the API part, linked with it" \
			$cxx -std=c++17 -pthread -O2 -Wall -Wextra -Wpedantic -Werror -I"$work/dist" \
			"$work/api.cc" "$work/single_impl.o" -o "$work/api-cxx" &&
		run "c++17 program runs" emu "$work/api-cxx"; then
		cat "$work/out.log"
	fi
fi

echo "amalgamation: $fail failures"
[ "$fail" -eq 0 ]
