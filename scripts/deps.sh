# deps.sh - sourced by test.sh and bench.sh: install the Debian packages that
# are missing, and only those.  Needs root (or every package already there).
conc_need_packages() {
	conc_try_packages "$@" || { echo "libconc: $conc_why" >&2; exit 1; }
}

# What building and testing needs (gcc and clang both build the suite).
# valgrind and python3: the instruction-count guard (suite instr).
# relacy-dev and spin: the model checkers (suite models).
CONC_TEST_PACKAGES="meson ninja-build pkg-config gcc g++ clang libclang-rt-dev libcmocka-dev valgrind python3 relacy-dev spin"
# What the bench binaries' peers need on top, and the report (python3,
# gnuplot for the PNG plots).
CONC_BENCH_PACKAGES="meson ninja-build pkg-config gcc libcmocka-dev liburcu-dev libck-dev libglib2.0-dev libgomp1 python3 gnuplot-nox"
# Peers the bench can go without (bench.sh tries them; the table then lists
# the peer as missing): crossbeam-epoch, crossbeam-queue's SegQueue and a
# Treiber stack on crossbeam-epoch, built offline with cargo from Debian's
# crates under /usr/share/cargo/registry; moodycamel::ConcurrentQueue and
# Boost.Lockfree, header-only C++ behind small adapters (g++); rayon (scope,
# join, par_iter) the same way as crossbeam, and oneTBB (task_group,
# parallel_invoke, parallel_reduce) behind an adapter (bench_pool,
# bench_parallel).
CONC_BENCH_OPTIONAL_PACKAGES="cargo librust-crossbeam-epoch-dev librust-crossbeam-queue-dev librust-rayon-dev g++ libconcurrentqueue-dev libboost-dev libtbb-dev"

# The AArch64 cross build: Debian's cross toolchain, qemu-user, and cmocka
# for arm64 through multiarch (needs `dpkg --add-architecture arm64`).
CONC_AARCH64_PACKAGES="gcc-aarch64-linux-gnu g++-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user libcmocka-dev:arm64"

# conc_try_packages PKG... - install those that are missing; never exits:
# returns 1 with the reason in $conc_why when something is missing and
# cannot be installed (not root, no apt-get, no network, a package that
# will not install).  Adds the arm64 architecture first when a :arm64
# package is asked for (multiarch).
conc_try_packages() {
	conc_why=""
	missing=""
	for p in "$@"; do
		if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
			missing="$missing $p"
		fi
	done
	[ -z "$missing" ] && return 0
	if ! command -v apt-get >/dev/null 2>&1; then
		conc_why="missing packages:$missing, and no apt-get here (libconc is set up for Debian 12)"
		return 1
	fi
	if [ "$(id -u)" -ne 0 ]; then
		conc_why="missing packages:$missing; run this as root to install them, or: sudo apt-get install$missing"
		return 1
	fi
	case $missing in
	*:arm64*)
		if ! dpkg --print-foreign-architectures | grep -qx arm64; then
			echo "libconc: dpkg --add-architecture arm64 (multiarch, for cmocka)" >&2
			dpkg --add-architecture arm64 ||
				{ conc_why="dpkg --add-architecture arm64 failed"; return 1; }
		fi ;;
	esac
	echo "libconc: installing$missing" >&2
	export DEBIAN_FRONTEND=noninteractive
	if ! apt-get update -qq >/dev/null 2>&1; then
		conc_why="apt-get update failed (no network?); missing:$missing"
		return 1
	fi
	# shellcheck disable=SC2086
	if ! out=$(apt-get install -y -qq --no-install-recommends $missing 2>&1); then
		conc_why="apt-get install$missing failed: $(printf '%s\n' "$out" | grep -E '^E:' | head -3 | tr '\n' ' ')"
		return 1
	fi
	return 0
}
