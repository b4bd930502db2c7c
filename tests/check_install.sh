#!/bin/sh
# check_install.sh SOURCE_ROOT "CC..." - install libconc into a scratch
# prefix and build a small program against it two ways:
#   1. through `pkg-config --static --cflags --libs conc` (static link);
#   2. as a meson subproject, through dependency('conc') and the override.
set -eu
src=$1 cc=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

cat >"$tmp/consumer.c" <<'C'
#include <conc/conc.h>
#include <stdio.h>

static int ran;
static void bump(conc_epoch_node *n) { (void)n; ran++; }

int main(void)
{
	conc_epoch *d;
	conc_epoch_node node;
	if (conc_epoch_create(&d) != 0)
		return 1;
	conc_epoch_pin(d);
	conc_epoch_retire(d, &node, bump);
	conc_epoch_unpin(d);
	if (conc_epoch_barrier(d) != 0 || conc_epoch_destroy(d) != 0)
		return 1;
	printf("cpus=%u ran=%d\n", conc_cpu_count(), ran);
	return ran == 1 && conc_cpu_count() >= 1 ? 0 : 1;
}
C

# 1. meson install + pkg-config.
meson setup "$tmp/build" "$src" --prefix="$tmp/prefix" --libdir=lib \
	-Dtests=false -Dbench=false -Dbuildtype=release >"$tmp/log" 2>&1 ||
	{ cat "$tmp/log"; exit 1; }
meson install -C "$tmp/build" >"$tmp/log" 2>&1 || { cat "$tmp/log"; exit 1; }
test -f "$tmp/prefix/lib/libconc.a"
test -f "$tmp/prefix/include/conc/conc.h"
export PKG_CONFIG_PATH="$tmp/prefix/lib/pkgconfig"
flags=$(pkg-config --static --cflags --libs conc)
echo "pkg-config: $flags"
# shellcheck disable=SC2086
$cc -std=c11 -static-libgcc "$tmp/consumer.c" -o "$tmp/consumer" $flags
"$tmp/consumer"
# The archive is what was linked, not a shared object.
if ldd "$tmp/consumer" | grep -q libconc; then echo "linked dynamically"; exit 1; fi

# 2. meson subproject.
mkdir -p "$tmp/proj/subprojects"
ln -s "$src" "$tmp/proj/subprojects/libconc"
cp "$tmp/consumer.c" "$tmp/proj/"
cat >"$tmp/proj/meson.build" <<'M'
project('consumer', 'c', default_options: ['c_std=c11'])
conc = dependency('conc', fallback: ['libconc', 'conc_dep'],
  default_options: ['tests=false', 'bench=false'])
executable('consumer', 'consumer.c', dependencies: conc)
M
meson setup "$tmp/proj/build" "$tmp/proj" >"$tmp/log" 2>&1 || { cat "$tmp/log"; exit 1; }
meson compile -C "$tmp/proj/build" >"$tmp/log" 2>&1 || { cat "$tmp/log"; exit 1; }
"$tmp/proj/build/consumer"
echo "install: pkg-config and subproject consumers built and ran"
