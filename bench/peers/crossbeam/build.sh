#!/bin/sh
# build.sh - build a crossbeam peer offline, from Debian's crates: the
# crossbeam-epoch peer (this directory) or the crossbeam-queue one
# (../crossbeam_queue), whichever crate SRC_DIR holds.
#
#   build.sh --check CARGO SRC_DIR WORK_DIR  can it be built here?  print the
#                                            version of the crate's first
#                                            dependency and exit 0, or print
#                                            the reason and exit 1
#   build.sh CARGO SRC_DIR WORK_DIR OUT.a    cargo build --release --offline;
#                                            copy the staticlib to OUT.a
#
# The dependencies are read from SRC_DIR/Cargo.toml's [dependencies]: one
# `name = "major.minor"` a line, each looked for in the registry as
# name-major.minor.* (Debian: librust-name-dev).
# Debian ships the crates as a directory source (librust-*-dev install them
# under /usr/share/cargo/registry, each with its .cargo-checksum.json), so a
# [source] replacement of crates.io by that directory is all cargo needs; the
# crate is copied into WORK_DIR (in the build dir) so that Cargo.lock, the
# config and target/ never land in the source tree.
set -eu
registry=${CONC_CARGO_REGISTRY:-/usr/share/cargo/registry}
check=0
if [ "${1:-}" = --check ]; then
	check=1
	shift
fi
cargo=$1
src=$2
work=$3
case ${4:-} in
/*) out=$4 ;;
?*) out=$(pwd)/$4 ;; # the build runs in $work
esac

if ! command -v "$cargo" >/dev/null 2>&1; then
	echo "no cargo (Debian: cargo)"
	exit 1
fi
lib=$(sed -n 's/^name = "\(.*\)"$/\1/p' "$src/Cargo.toml" | head -1)
deps=$(sed -n '/^\[dependencies\]/,/^\[/s/^\([a-z0-9_-]*\) = "\([0-9.]*\)"$/\1-\2/p' "$src/Cargo.toml")
version=""
for dep in $deps; do
	crate=$(ls -d "$registry/$dep".* 2>/dev/null | tail -1)
	if [ -z "$crate" ]; then
		echo "no ${dep%-*} ${dep##*-} in $registry (Debian: librust-${dep%-*}-dev)"
		exit 1
	fi
	[ -n "$version" ] || version=${crate##*/"${dep%-*}"-}
done
mkdir -p "$work/src" "$work/.cargo"
cp "$src/Cargo.toml" "$work/Cargo.toml"
cp "$src/src/lib.rs" "$work/src/lib.rs"
cat >"$work/.cargo/config.toml" <<CFG
[source.crates-io]
replace-with = "debian"

[source.debian]
directory = "$registry"

[net]
offline = true
CFG
cd "$work"
if [ $check = 1 ]; then
	# Resolve the dependencies only (seconds): the same lookup the build does.
	if ! out=$("$cargo" generate-lockfile --offline 2>&1); then
		echo "cargo cannot resolve $(echo $deps | tr ' ' ,) offline: $(printf '%s\n' "$out" | grep -m1 -i error)"
		exit 1
	fi
	echo "$version"
	exit 0
fi
"$cargo" build --release --offline --quiet
cp "target/release/lib$lib.a" "$out"
