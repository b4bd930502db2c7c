#!/bin/sh
# check_output.sh EXE PATTERN - run an example; it must exit 0 and print a
# line matching PATTERN (grep -E).
# CONC_EXE_WRAPPER: qemu in a cross build (set by meson); its words are
# not globs here (set -f).
set -f
# shellcheck disable=SC2086
out=$(${CONC_EXE_WRAPPER:-} "$1") || { printf '%s\n' "$out"; echo "exit status $?"; exit 1; }
printf '%s\n' "$out"
printf '%s\n' "$out" | grep -Eq "$2" || { echo "expected a line matching: $2"; exit 1; }
