#!/bin/sh
# check_docs.sh BUILD_DIR PREFIX MANDIR PYTHON GENDOCS - the man pages of a
# build, installed (meson install --tags man into a scratch DESTDIR), are
# every page gendocs.py --list names, and man finds and renders them:
# `man -M <prefix>/<mandir> conc_queue_push` works.  Without man installed
# it checks the files alone and says so.
set -u
build=$1 prefix=$2 mandir=$3 python=$4 gendocs=$5
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail=0

meson install -C "$build" --no-rebuild --destdir "$tmp/dest" --tags man \
	>"$tmp/log" 2>&1 || { cat "$tmp/log"; echo "FAIL: meson install --tags man"; exit 1; }
case $mandir in
/*) man_root=$tmp/dest$mandir ;;
*) man_root=$tmp/dest$prefix/$mandir ;;
esac

# 1. every page the generator names, installed, and nothing else
"$python" "$gendocs" --list | sort >"$tmp/want" || exit 1
(cd "$man_root" && find man3 man7 -type f | sort) >"$tmp/have"
if cmp -s "$tmp/want" "$tmp/have"; then
	echo "ok: $(wc -l <"$tmp/have") pages installed in $mandir (man3, man7)"
else
	echo "FAIL: installed pages differ from gendocs.py --list (< wanted, > installed):"
	diff "$tmp/want" "$tmp/have" | grep '^[<>]' | head -20
	fail=1
fi
for p in man3/conc_queue_push.3 man3/conc_queue.3 man7/libconc.7; do
	[ -s "$man_root/$p" ] || { echo "FAIL: $p not installed"; fail=1; }
done

# 2. man finds them through -M and renders them without a warning
if command -v man >/dev/null 2>&1; then
	for q in conc_queue_push conc_pool_config conc_epoch "7 libconc"; do
		# shellcheck disable=SC2086
		where=$(man -M "$man_root" -w $q 2>&1)
		case $where in
		"$man_root"/*) ;;
		*) echo "FAIL: man -M <mandir> -w $q: $where"; fail=1; continue ;;
		esac
		# shellcheck disable=SC2086
		LC_ALL=C.UTF-8 MANWIDTH=80 man -M "$man_root" --warnings $q \
			>"$tmp/out" 2>"$tmp/err"
		if [ -s "$tmp/err" ] || ! grep -q 'SEE ALSO' "$tmp/out"; then
			echo "FAIL: man -M <mandir> $q:"
			sed 's/^/    /' "$tmp/err" | head -10
			fail=1
		else
			echo "ok: man -M <mandir> $q -> ${where#"$tmp/dest"}"
		fi
	done
else
	echo "note: man is not installed; checked the installed files only"
fi
exit $fail
