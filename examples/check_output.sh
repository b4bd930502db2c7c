#!/bin/sh
# check_output.sh EXE PATTERN - run an example; it must exit 0 and print a
# line matching PATTERN (grep -E).
out=$("$1") || { printf '%s\n' "$out"; echo "exit status $?"; exit 1; }
printf '%s\n' "$out"
printf '%s\n' "$out" | grep -Eq "$2" || { echo "expected a line matching: $2"; exit 1; }
