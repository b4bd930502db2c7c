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
#   3. its API part compiles as C++17.
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
# shellcheck disable=SC2086
run "cc: implementation in its own file" \
	$cc $flags "$src/tests/single_impl.c" "$src/tests/single_example.c" -o "$work/example2"
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
			"$ex" "$src/tests/single_impl.c" -o "$work/ex-$name" &&
			run "examples/$name runs" emu "$work/ex-$name" </dev/null
	done
fi

# 3. The API as C++.
if [ -n "$cxx" ]; then
	printf '#include "conc_single.h"\nint main() { return conc_cpu_count() > 0 ? 0 : 1; }\n' >"$work/api.cc"
	# shellcheck disable=SC2086
	run "c++17: the API part" $cxx -std=c++17 -Wall -Wextra -Wpedantic -Werror \
		-fsyntax-only -I"$work/dist" "$work/api.cc"
fi

echo "amalgamation: $fail failures"
[ "$fail" -eq 0 ]
