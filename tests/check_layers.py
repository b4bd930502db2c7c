#!/usr/bin/env python3
"""check_layers.py - the layer rule of DESIGN.md, checked on the includes.

    python3 tests/check_layers.py ROOT        # exit 1 on a bad edge
    python3 tests/check_layers.py --self-test # plants bad edges: must see them

Every file of libconc belongs to one module: src/<module>/... (base is the
bottom one), include/conc/<name>.h to the module of that name (cpu.h is
base's).  A file may include the headers of its own module and of modules
of a lower rank, nothing else: no upward edge (pool must not include
scope) and no sideways one (queue and stack share a rank and must not
include each other).  A module folder missing from RANKS is an error too:
a new module must be given its place first.  System headers (<...>, or a
"..." that is no project file) are not edges.
"""
import os
import re
import sys
import tempfile

# Bottom up.  Equal ranks are siblings.
RANKS = {
    "base": 0,
    "epoch": 1,
    "queue": 2, "stack": 2,
    "chan": 3,
    "pool": 4,
    "scope": 5,
    "parallel": 6,
    "algo": 7,
}
# Public headers whose name is not a module's.
PUBLIC_MODULE = {"attr": "base", "cpu": "base", "version": "base"}
# The umbrella header includes everything; nothing in the library may use it.
UMBRELLA = "conc"

INCLUDE_RE = re.compile(r'^\s*#\s*include\s*"([^"]+)"', re.M)


def module_of_path(root, path):
    """The module a project file belongs to, or None."""
    r = os.path.relpath(path, root).replace(os.sep, "/")
    parts = r.split("/")
    if parts[0] == "src" and len(parts) >= 3:
        return parts[1]
    if parts[0] == "include" and len(parts) == 3 and parts[1] == "conc":
        name = os.path.splitext(parts[2])[0]
        return PUBLIC_MODULE.get(name, name)
    return None


def resolve(root, name, from_file):
    """The project file an #include "name" means (the compiler's search:
    the includer's folder, then include/ and src/), or None."""
    for d in (os.path.dirname(from_file), os.path.join(root, "include"),
              os.path.join(root, "src")):
        c = os.path.normpath(os.path.join(d, name))
        if os.path.isfile(c):
            return c
    return None


def files_of(root):
    for top in ("src", os.path.join("include", "conc")):
        for dirpath, _, names in os.walk(os.path.join(root, top)):
            for n in sorted(names):
                if n.endswith((".c", ".h")):
                    yield os.path.join(dirpath, n)


def check(root):
    """The list of bad edges (strings), empty when the tree keeps the rule."""
    bad = []
    for f in files_of(root):
        src_mod = module_of_path(root, f)
        rel = os.path.relpath(f, root)
        if src_mod is None:
            bad.append("%s: not inside a module folder (src/<module>/)" % rel)
            continue
        if src_mod == UMBRELLA:
            continue  # the umbrella: every public header, by design
        if src_mod not in RANKS:
            bad.append("%s: module %s has no rank in tests/check_layers.py" % (rel, src_mod))
            continue
        with open(f, encoding="utf-8") as fh:
            text = fh.read()
        for name in INCLUDE_RE.findall(text):
            target = resolve(root, name, f)
            if target is None:
                continue  # a system header
            dst_mod = module_of_path(root, target)
            if dst_mod == src_mod:
                continue
            if dst_mod == UMBRELLA:
                bad.append("%s includes %s: the umbrella header, never inside libconc" % (rel, name))
            elif dst_mod not in RANKS:
                bad.append("%s includes %s: module %s has no rank" % (rel, name, dst_mod))
            elif RANKS[dst_mod] == RANKS[src_mod]:
                bad.append("%s includes %s: sideways (%s and %s are siblings)"
                           % (rel, name, src_mod, dst_mod))
            elif RANKS[dst_mod] > RANKS[src_mod]:
                bad.append("%s includes %s: upward (%s is above %s)"
                           % (rel, name, dst_mod, src_mod))
    return bad


def self_test():
    """Plant each kind of bad edge in a small tree: each must be reported,
    and the clean tree must pass."""
    cases = {
        "clean": ({"src/pool/pool.c": '#include "epoch/epoch_internal.h"\n#include "base/park.h"\n',
                   "src/epoch/epoch_internal.h": "", "src/base/park.h": ""}, 0),
        "upward": ({"src/pool/pool.c": '#include "scope/scope_internal.h"\n',
                    "src/scope/scope_internal.h": ""}, 1),
        "sideways": ({"src/queue/queue.c": '#include "stack/stack_internal.h"\n',
                      "src/stack/stack_internal.h": ""}, 1),
        "public upward": ({"src/epoch/epoch.c": '#include "conc/pool.h"\n',
                           "include/conc/pool.h": ""}, 1),
        "unranked": ({"src/newthing/x.c": "", }, 1),
        "outside a module": ({"src/loose.c": ""}, 1),
        "umbrella": ({"src/pool/pool.c": '#include "conc/conc.h"\n',
                      "include/conc/conc.h": ""}, 1),
    }
    failed = 0
    for what, (tree, want) in cases.items():
        with tempfile.TemporaryDirectory() as root:
            for path, text in tree.items():
                p = os.path.join(root, path)
                os.makedirs(os.path.dirname(p), exist_ok=True)
                with open(p, "w") as fh:
                    fh.write(text)
            got = len(check(root))
            ok = got == want
            print("self-test %-17s bad edges %d, expected %d: %s" % (what, got, want, "ok" if ok else "WRONG"))
            failed += not ok
    return 1 if failed else 0


def main(argv):
    if argv[1:] == ["--self-test"]:
        return self_test()
    if len(argv) != 2:
        print(__doc__.strip().splitlines()[2], file=sys.stderr)
        return 2
    root = os.path.abspath(argv[1])
    bad = check(root)
    n = sum(1 for _ in files_of(root))
    for b in bad:
        print("layers: " + b)
    print("layers: %d files, %d bad edges" % (n, len(bad)))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
