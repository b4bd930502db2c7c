# deps.sh - sourced by test.sh and bench.sh: install the Debian packages that
# are missing, and only those.  Needs root (or every package already there).
conc_need_packages() {
	missing=""
	for p in "$@"; do
		if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
			missing="$missing $p"
		fi
	done
	[ -z "$missing" ] && return 0
	if ! command -v apt-get >/dev/null 2>&1; then
		echo "libconc: missing packages:$missing, and no apt-get here (libconc is set up for Debian 12)." >&2
		exit 1
	fi
	if [ "$(id -u)" -ne 0 ]; then
		echo "libconc: missing packages:$missing" >&2
		echo "libconc: run this as root to install them, or: sudo apt-get install$missing" >&2
		exit 1
	fi
	echo "libconc: installing$missing" >&2
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq >/dev/null || { echo "libconc: apt-get update failed" >&2; exit 1; }
	# shellcheck disable=SC2086
	apt-get install -y -qq --no-install-recommends $missing >/dev/null ||
		{ echo "libconc: apt-get install$missing failed" >&2; exit 1; }
}

# What building and testing needs (gcc and clang both build the suite).
# valgrind and python3: the instruction-count guard (suite instr).
CONC_TEST_PACKAGES="meson ninja-build pkg-config gcc g++ clang libclang-rt-dev libcmocka-dev valgrind python3"
# What the bench binaries' peers need on top, and the report (python3,
# gnuplot for the PNG plots).
CONC_BENCH_PACKAGES="meson ninja-build pkg-config gcc libcmocka-dev liburcu-dev libck-dev libglib2.0-dev libgomp1 python3 gnuplot-nox"
