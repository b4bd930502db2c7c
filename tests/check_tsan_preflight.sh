#!/bin/sh
# check_tsan_preflight.sh EXE - the planted race must be reported by TSan.
out=$("$1" 2>&1)
if printf '%s\n' "$out" | grep -q 'WARNING: ThreadSanitizer: data race'; then
	echo "tsan preflight: the planted race was reported"
	exit 0
fi
printf '%s\n' "$out"
echo "tsan preflight: ThreadSanitizer did NOT report the planted race"
exit 1
