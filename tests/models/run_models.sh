#!/bin/sh
# run_models.sh - the models suite's driver (issue 8).  Each model runs
# twice: as is (the checker must find nothing) and with its planted bug
# (the checker must report it - a checker that passes everything would
# otherwise go unnoticed).  Prints one reliability line per model.
#
#   run_models.sh relacy NAME OK_EXE PLANTED_EXE ITERS BOUND
#       Relacy harnesses (relacy_NAME.cc built twice); ITERS: random
#       scheduler iterations of the 3-thread scenarios, BOUND: preemption
#       bound of the exhaustive 2-thread search.
#   run_models.sh spin NAME MODEL.pml WORKDIR "CC" PLANT...
#       spin -a, the verifier compiled with CC, run in safety mode
#       (assertions, invalid end states); once as is, once per
#       -DPLANT=value given.
set -u
kind=$1 name=$2
shift 2
log() { sed 's/^/    /' "$1" | head -${2:-60}; }
tmp=${TMPDIR:-/tmp}/conc-models-$$
mkdir -p "$tmp"
trap 'rm -rf "$tmp"' EXIT

case $kind in
relacy)
	ok_exe=$1 planted_exe=$2 iters=$3 bound=$4
	"$ok_exe" "$iters" "$bound" >"$tmp/ok.log" 2>&1
	ok_rc=$?
	grep -a '^relacy:' "$tmp/ok.log"
	if [ $ok_rc -ne 0 ]; then
		echo "FAIL: relacy $name: the model of the real code failed:"
		log "$tmp/ok.log" 120
		exit 1
	fi
	"$planted_exe" "$iters" "$bound" >"$tmp/planted.log" 2>&1
	planted_rc=$?
	sed 's/^relacy:/relacy (planted bug):/' "$tmp/planted.log" | grep -a '^relacy (planted'
	if [ $planted_rc -eq 0 ]; then
		echo "FAIL: relacy $name: the planted bug was NOT caught"
		exit 1
	fi
	grep -a -m1 -E '^[A-Z][A-Z ]+\(' "$tmp/planted.log" | sed 's/^/planted bug reported as: /'
	total=$(grep -a '^relacy:' "$tmp/ok.log" | sed 's/.*iterations=\([0-9]*\).*/\1/' |
		awk '{s += $1} END {print s + 0}')
	echo "reliability: models relacy $name | iterations=$total result=ok planted=caught"
	;;
spin)
	model=$1 work=$2 cc=$3
	shift 3
	mkdir -p "$work"
	cp "$model" "$work/model.pml"
	# verify DEFINE LOG: the verifier's output in LOG; prints "errors states"
	verify() {
		(cd "$work" && rm -f pan pan.* &&
			spin $1 -a model.pml >"$2" 2>&1 &&
			$cc -O1 -DSAFETY -o pan pan.c >>"$2" 2>&1 &&
			./pan -m1000000 >>"$2" 2>&1) || { echo "FAIL: spin $name: could not build or run the verifier"; log "$2"; exit 1; }
		if grep -q 'max search depth too small' "$2"; then
			echo "FAIL: spin $name: search depth too small (the search was cut)"
			exit 1
		fi
	}
	verify "" "$tmp/ok.log"
	errors=$(sed -n 's/.*errors: \([0-9]*\).*/\1/p' "$tmp/ok.log")
	states=$(sed -n 's/^ *\([0-9]*\) states, stored.*/\1/p' "$tmp/ok.log")
	echo "spin: $name errors=${errors:-?} states=${states:-?}"
	if [ "${errors:-x}" != 0 ]; then
		echo "FAIL: spin $name: the model violates its property:"
		log "$tmp/ok.log"
		exit 1
	fi
	n=0
	for p in "$@"; do
		verify "-DPLANT=$p" "$tmp/planted.log"
		perr=$(sed -n 's/.*errors: \([0-9]*\).*/\1/p' "$tmp/planted.log")
		what=$(grep -m1 '^pan:1:' "$tmp/planted.log")
		echo "spin: $name planted bug $p errors=${perr:-?} ($what)"
		if [ "${perr:-0}" = 0 ]; then
			echo "FAIL: spin $name: planted bug $p was NOT caught"
			exit 1
		fi
		n=$((n + 1))
	done
	echo "reliability: models spin $name | states=$states errors=0 planted=caught ($n/$n)"
	;;
*)
	echo "usage: run_models.sh relacy|spin ..." >&2
	exit 2
	;;
esac
