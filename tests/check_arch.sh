#!/bin/sh
# check_arch.sh SOURCE_ROOT - architecture-specific code lives in
# src/base/arch.h and nowhere else:
#   - no inline asm (asm, __asm, __asm__ followed by "(", "volatile" or
#     "goto") in any C or C++ file of the tree;
#   - no architecture test macro (__x86_64__, __aarch64__, __arm__,
#     __i386__, __ARM_ARCH..., __SSE..., __AVX...), no target builtin
#     (__builtin_ia32_*, __builtin_arm_*, __builtin_aarch64_*) and no
#     intrinsics header (immintrin.h, x86intrin.h, arm_neon.h, arm_acle.h).
# Compiler builtins that every target has (__atomic_*, __builtin_expect,
# __atomic_signal_fence) are portable and allowed everywhere.
#
# Allowed besides arch.h, in tests/ and bench/ only (code that is not part
# of libconc.a): an asm statement with an empty template, asm volatile(""
# ...), which emits no instruction and reads the same on every target - a
# compiler barrier or an optimizer sink (bench_keep, lincheck's jitter).
# In src/ and include/ even those go through arch.h (conc__compiler_barrier).
# Generated files (dist/conc_single.h) are copies of the sources and skipped.
#
# check_arch.sh --self-test: the check must catch a planted violation.
set -u

asm_re='(^|[^A-Za-z0-9_])(asm|__asm|__asm__)[[:space:]]*(\(|volatile|__volatile__|goto)'
empty_asm_re='(^|[^A-Za-z0-9_])(asm|__asm|__asm__)[[:space:]]*(volatile|__volatile__)?[[:space:]]*\([[:space:]]*""[[:space:]]*[:)]'
arch_re='__x86_64__|__amd64__|__aarch64__|__arm__|__i386__|__ARM_ARCH|__ARM_FEATURE|__SSE[0-9_]*__|__AVX[0-9A-Z_]*__|__builtin_ia32_|__builtin_arm_|__builtin_aarch64_|immintrin\.h|x86intrin\.h|xmmintrin\.h|arm_neon\.h|arm_acle\.h'

scan() { # root: prints offending lines, returns 1 if any
	root=$1
	found=0
	for f in $(cd "$root" && find . -path ./build -prune -o -path ./dist -prune -o \
		-path ./.git -prune -o -path ./subprojects -prune -o \
		-type f \( -name '*.c' -o -name '*.h' -o -name '*.cc' -o -name '*.cpp' \) -print | sort); do
		f=${f#./}
		case $f in
		src/base/arch.h) continue ;;
		esac
		# Block comments are stripped first (a comment may say "asm").
		hits=$(sed -e 's|//.*$||' "$root/$f" |
			awk '{ line = $0; out = "";
			       while (line != "") {
			         if (inc) { i = index(line, "*/"); if (!i) { line = ""; break }
			                    line = substr(line, i + 2); inc = 0 }
			         i = index(line, "/*");
			         if (!i) { out = out line; line = "" }
			         else { out = out substr(line, 1, i - 1); line = substr(line, i + 2); inc = 1 }
			       }
			       print NR ": " out }' |
			grep -E "$asm_re|$arch_re")
		case $f in
		tests/* | bench/*)
			hits=$(printf '%s\n' "$hits" | grep -Ev "$empty_asm_re" | grep -E "$asm_re|$arch_re") ;;
		esac
		if [ -n "$hits" ]; then
			printf '%s\n' "$hits" | sed "s|^|$f:|"
			found=1
		fi
	done
	return $found
}

if [ "${1:-}" = --self-test ]; then
	tmp=$(mktemp -d)
	trap 'rm -rf "$tmp"' EXIT
	mkdir -p "$tmp/src/base"
	printf '/* asm ( in a comment is fine */\nint f(void) { return 0; }\n' >"$tmp/src/ok.c"
	mkdir -p "$tmp/tests"
	printf 'void g(int x) { __asm__ __volatile__("" : "+r"(x)); }\n' >"$tmp/tests/sink.c"
	scan "$tmp" >/dev/null || { echo "self-test: a clean tree was rejected"; exit 1; }
	cp "$tmp/tests/sink.c" "$tmp/src/sink.c"
	if scan "$tmp" >/dev/null; then echo "self-test: missed an empty asm in src/"; exit 1; fi
	rm "$tmp/src/sink.c"
	printf 'void h(void) { __asm__ __volatile__("yield" ::: "memory"); }\n' >"$tmp/tests/spin.c"
	if scan "$tmp" >/dev/null; then echo "self-test: missed a real asm in tests/"; exit 1; fi
	rm "$tmp/tests/spin.c"
	for bad in 'void g(void) { __asm__ __volatile__("nop"); }' \
		'void g(void) { asm("nop"); }' \
		'#if defined(__aarch64__)' \
		'#include <immintrin.h>' \
		'void g(void) { __builtin_ia32_pause(); }'; do
		printf '%s\n' "$bad" >"$tmp/src/bad.c"
		if scan "$tmp" >/dev/null; then
			echo "self-test: missed: $bad"
			exit 1
		fi
	done
	echo "arch self-test: 7 planted violations caught, 2 clean trees passed"
	exit 0
fi

root=${1:?usage: check_arch.sh SOURCE_ROOT}
if scan "$root"; then
	echo "arch: no inline asm or architecture test outside src/base/arch.h"
else
	echo "arch: FAIL: move the lines above into src/base/arch.h"
	exit 1
fi
