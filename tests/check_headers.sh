#!/bin/sh
# check_headers.sh INCLUDE_DIR "CC..." "CXX..." - each public header alone,
# as C11 and C++17, with -Wall -Wextra -Werror (and -pedantic for C++).
set -u
inc=$1 cc=$2 cxx=$3
fail=0 n=0
for h in "$inc"/conc/*.h; do
	b=conc/$(basename "$h")
	n=$((n + 1))
	printf '#include <%s>\nint main(void) { return 0; }\n' "$b" |
		$cc -std=c11 -Wall -Wextra -Werror -pedantic -fsyntax-only -I"$inc" -x c - ||
		{ echo "FAIL: $b as C11"; fail=$((fail + 1)); }
	if [ -n "$cxx" ]; then
		printf '#include <%s>\nint main() { return 0; }\n' "$b" |
			$cxx -std=c++17 -Wall -Wextra -Werror -pedantic -fsyntax-only -I"$inc" -x c++ - ||
			{ echo "FAIL: $b as C++17"; fail=$((fail + 1)); }
	fi
done
# The extern "C" guards: a C++ unit that declares nothing but sees every
# function with C linkage links against C definitions; checked by nm on a
# tiny object.
if [ -n "$cxx" ]; then
	tmp=$(mktemp -d)
	printf '#include <conc/conc.h>\nvoid *f(void) { return (void *)&conc_epoch_retire; }\n' >"$tmp/c.cc"
	$cxx -std=c++17 -c -I"$inc" "$tmp/c.cc" -o "$tmp/c.o" &&
		nm "$tmp/c.o" | grep -q ' U conc_epoch_retire$' ||
		{ echo "FAIL: conc_epoch_retire is not extern \"C\" in C++"; fail=$((fail + 1)); }
	rm -rf "$tmp"
fi
echo "headers: $n checked, $fail failures"
[ "$fail" -eq 0 ]
