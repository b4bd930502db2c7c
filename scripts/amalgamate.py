#!/usr/bin/env python3
"""amalgamate.py - build conc_single.h, libconc as one drop-in header.

    python3 scripts/amalgamate.py              # writes dist/conc_single.h
    python3 scripts/amalgamate.py -o FILE      # writes FILE
    python3 scripts/amalgamate.py --check FILE # exit 1 if FILE is not what
                                               # the sources generate now

The result is made from the real sources, never edited by hand:

  1. the public API: include/conc/conc.h with every project header it pulls
     in inlined once, in dependency order (each header where it is first
     included), plus CONC_HAVE_<PRIM> for each primitive src/meson.build
     lists;
  2. under #ifdef CONC_IMPLEMENTATION: the system headers of the sources,
     the internal headers (src/base/*.h and each module's, each once), then
     every source file that meson compiles (read from src/meson.build), each
     in its own section.  The algorithm cores, src/<module>/alg_*.h, are the
     exception:
     each is written against the types of the one source that includes it
     (and the Relacy models), so it is inlined inside that source's section,
     where the source includes it, and its names count as the source's own.

One translation unit holds what meson compiles as several, so file-local
names could collide: two files may each have a `static void init(void)`, and
the program that defines CONC_IMPLEMENTATION may have one too.  Each source's
section therefore begins with `#define name conc__<file>__name` for every
file-scope name it declares (static functions and variables, typedef names,
struct/union/enum tags, enumeration constants) and ends by #undef-ing those
and every macro the file defines.  Names that also appear in a project
header are shared, not file-local, and are never renamed; if two sources
declare such a name at file scope the script stops and lists the clashes.

Needs python3 only (meson, which builds libconc, depends on it anyway).
"""
import argparse
import os
import re
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
INCLUDE_DIRS = [os.path.join(ROOT, "include"), os.path.join(ROOT, "src")]

KEYWORDS = set("""
auto break case char const continue default do double else enum extern float
for goto if inline int long register restrict return short signed sizeof static
struct switch typedef union unsigned void volatile while _Alignas _Alignof
_Atomic _Bool _Complex _Generic _Imaginary _Noreturn _Static_assert
_Thread_local __thread __attribute__ __attribute __typeof__ __typeof typeof
__restrict __inline __inline__ __extension__ __asm__ __asm asm main
""".split())

# Specifiers followed by a parenthesised argument that is not a declarator.
PAREN_SPECIFIERS = {"_Atomic", "_Alignas", "__attribute__", "__attribute",
                    "alignas", "__typeof__", "__typeof", "typeof",
                    "_Static_assert", "static_assert", "__declspec"}


class Error(Exception):
    pass


def read(path):
    with open(path, encoding="utf-8") as f:
        text = f.read()
    if os.path.abspath(path).startswith(os.path.join(ROOT, "src") + os.sep):
        text = strip_mutants(text, path)
    return text


# ---- the mutants stay out of dist/ ---------------------------------------

MUTANT_CALL_RE = re.compile(r"\bCONC__MUTANT_(VALUE|MO)\(")


def macro_args(text, i):
    """The arguments of the call whose '(' is at text[i], and the index past
    its ')'; commas inside nested parentheses do not split."""
    depth, args, start = 0, [], i + 1
    for j in range(i, len(text)):
        c = text[j]
        if c == "(":
            depth += 1
        elif c == ")":
            depth -= 1
            if depth == 0:
                args.append(text[start:j].strip())
                return args, j + 1
        elif c == "," and depth == 1:
            args.append(text[start:j].strip())
            start = j + 1
    raise Error("unbalanced mutant macro call")


def strip_mutants(text, path):
    """The source as a build without mutants sees it (base/mutant.h): each
    CONC__MUTANT_VALUE(k, normal, planted) and CONC__MUTANT_MO(k, mo) is
    its normal argument, each #if CONC__MUTANT(k) block is gone (its #else
    part kept), and the include of base/mutant.h is dropped."""
    if os.path.basename(path) == "mutant.h":
        return ""
    out, i = [], 0
    while True:
        m = MUTANT_CALL_RE.search(text, i)
        if not m:
            out.append(text[i:])
            break
        out.append(text[i:m.start()])
        args, end = macro_args(text, m.end() - 1)
        normal = args[1]
        simple = re.match(r"[A-Za-z_0-9]+$", normal) is not None
        out.append(normal if simple else "(" + normal + ")")
        i = end
    lines, kept, stack = "".join(out).splitlines(keepends=True), [], []
    # stack entries: None for an #if that is not a mutant's, else "drop" or
    # "keep" (inside a mutant #if: drop until #else, then keep)
    for line in lines:
        s = line.strip()
        if re.match(r'#\s*include\s*"base/mutant\.h"', s):
            continue
        if re.match(r"#\s*if", s):
            if re.match(r"#\s*if\s+CONC__MUTANT\(\d+\)", s):
                stack.append("drop")
                continue
            stack.append(None)
        elif re.match(r"#\s*else", s) and stack and stack[-1] is not None:
            stack[-1] = "keep"
            continue
        elif re.match(r"#\s*endif", s) and stack:
            if stack.pop() is not None:
                continue
        if "drop" in stack:
            continue
        kept.append(line)
    text = "".join(kept)
    if "CONC__MUTANT" in text or "CONC_MUTANT" in text:
        raise Error("%s: a mutant plant amalgamate.py cannot strip (use base/mutant.h's macros "
                    "or an #if CONC__MUTANT(k) block)" % rel(path))
    return text


def rel(path):
    return os.path.relpath(path, ROOT)


# ---- the list of sources, as meson has it ---------------------------------

def meson_sources():
    """The .c files src/meson.build compiles, in its order, and the
    primitives it lists (each is src/<prim>/<prim>.c)."""
    text = read(os.path.join(ROOT, "src", "meson.build"))
    text = re.sub(r"#.*", "", text)
    m = re.search(r"conc_primitives\s*=\s*\[([^\]]*)\]", text)
    if not m:
        raise Error("src/meson.build: no conc_primitives list")
    prims = re.findall(r"'([^']+)'", m.group(1))
    m = re.search(r"conc_sources\s*=\s*files\(([^)]*)\)", text)
    if not m:
        raise Error("src/meson.build: no conc_sources = files(...)")
    files = [os.path.join(ROOT, "src", f) for f in re.findall(r"'([^']+)'", m.group(1))]
    for f in files:
        if not os.path.exists(f):
            raise Error("src/meson.build names %s, which does not exist" % rel(f))
    for p in prims:
        if os.path.join(ROOT, "src", p, p + ".c") not in files:
            raise Error("src/meson.build: primitive %s has no src/%s/%s.c in conc_sources" % (p, p, p))
    return files, prims


# ---- includes ---------------------------------------------------------------

INCLUDE_RE = re.compile(r'^\s*#\s*include\s*([<"])([^>"]+)[>"]')


def resolve(name, quote, from_file):
    """The project file an #include names, or None for a system header."""
    cands = []
    if quote == '"':
        cands.append(os.path.join(os.path.dirname(from_file), name))
    cands += [os.path.join(d, name) for d in INCLUDE_DIRS]
    for c in cands:
        if os.path.isfile(c) and os.path.abspath(c).startswith(ROOT + os.sep):
            return os.path.abspath(c)
    return None


def lines_with_depth(path):
    """(line, #if nesting depth at it) for each line of a file."""
    depth = 0
    for line in read(path).splitlines(keepends=True):
        s = line.strip()
        if re.match(r"#\s*if", s):
            depth += 1
        elif re.match(r"#\s*endif", s):
            depth -= 1
        yield line, depth


class Inliner:
    """Copies files with project includes replaced by the header's text the
    first time and by nothing afterwards (every header has a guard, so the
    compiler would skip the second copy anyway)."""

    def __init__(self):
        self.done = set()
        self.order = []

    def header(self, path, out):
        if path in self.done:
            return
        self.done.add(path)
        self.order.append(path)
        out.append("/* ---- %s %s */\n" % (rel(path), "-" * max(3, 66 - len(rel(path)))))
        for line in read(path).splitlines(keepends=True):
            m = INCLUDE_RE.match(line)
            if m:
                target = resolve(m.group(2), m.group(1), path)
                if target:
                    self.header(target, out)
                    continue
            out.append(line)
        if not out[-1].endswith("\n"):
            out.append("\n")

    def includes_of(self, path):
        """Project headers a file includes, directly or not, in order."""
        found = []

        def walk(p, seen):
            for line in read(p).splitlines():
                m = INCLUDE_RE.match(line)
                if m:
                    t = resolve(m.group(2), m.group(1), p)
                    if t and t not in seen:
                        seen.add(t)
                        walk(t, seen)
                        found.append(t)
        walk(path, set())
        return found


def source_local(path):
    """An algorithm core (src/<module>/alg_*.h): it needs the including
    source's types, so it stays inside that source's section."""
    return os.path.basename(path).startswith("alg_")


# ---- a small C scanner: the file-scope names of a source -------------------

TOKEN_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*|\d[\w.]*|->|\+\+|--|<<=?|>>=?|[<>=!]=|&&|\|\||\.\.\.|\S")


def strip_c(text):
    """Comments, string and char literals removed; line splices joined."""
    text = text.replace("\\\n", "")
    out = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if text.startswith("/*", i):
            j = text.find("*/", i + 2)
            j = n if j < 0 else j + 2
            out.append(" " + "\n" * text.count("\n", i, j))
            i = j
        elif text.startswith("//", i):
            j = text.find("\n", i)
            i = n if j < 0 else j
        elif c in "\"'":
            j = i + 1
            while j < n and text[j] != c:
                j += 2 if text[j] == "\\" else 1
            out.append('""' if c == '"' else "0")
            i = j + 1
        else:
            out.append(c)
            i += 1
    return "".join(out)


def tokens_of(text):
    """(code tokens, names #defined) of C text."""
    code, macros = [], []
    for line in strip_c(text).splitlines():
        s = line.strip()
        if s.startswith("#"):
            m = re.match(r"#\s*define\s+([A-Za-z_]\w*)", s)
            if m:
                macros.append(m.group(1))
            continue
        code += TOKEN_RE.findall(line)
    return code, macros


def is_ident(t):
    return re.match(r"[A-Za-z_]\w*$", t) is not None


def skip_group(toks, i, open_, close):
    """Index just past the group that opens at toks[i]."""
    depth = 0
    while i < len(toks):
        if toks[i] == open_:
            depth += 1
        elif toks[i] == close:
            depth -= 1
            if depth == 0:
                return i + 1
        i += 1
    raise Error("unbalanced %s%s" % (open_, close))


def drop_specifier_groups(toks):
    out, i = [], 0
    while i < len(toks):
        if toks[i] in PAREN_SPECIFIERS and i + 1 < len(toks) and toks[i + 1] == "(":
            i = skip_group(toks, i + 1, "(", ")")
            continue
        out.append(toks[i])
        i += 1
    return out


def split_top(toks, sep):
    parts, cur, depth = [], [], 0
    for t in toks:
        if t in "([{":
            depth += 1
        elif t in ")]}":
            depth -= 1
        if t == sep and depth == 0:
            parts.append(cur)
            cur = []
        else:
            cur.append(t)
    parts.append(cur)
    return parts


def drop_macros(toks, macros):
    """Macro uses (NAME or NAME(...)) out of a declaration: TLS_IE in
    `static _Thread_local int x TLS_IE;` declares nothing."""
    out, i = [], 0
    while i < len(toks):
        if toks[i] in macros:
            if i + 1 < len(toks) and toks[i + 1] == "(":
                i = skip_group(toks, i + 1, "(", ")")
            else:
                i += 1
            continue
        out.append(toks[i])
        i += 1
    return out


def declarator_name(toks, macros=frozenset()):
    """The name a declarator declares (specifiers may precede it)."""
    toks = drop_macros(drop_specifier_groups(toks), macros)
    # strip an initializer
    depth = 0
    for k, t in enumerate(toks):
        if t in "([{":
            depth += 1
        elif t in ")]}":
            depth -= 1
        elif t == "=" and depth == 0:
            toks = toks[:k]
            break
    # The first parenthesis decides: after a name it opens a function's
    # parameters (that name is declared); otherwise it is a declarator in
    # parentheses, ( * name ), a pointer to function or to array.
    for k, t in enumerate(toks):
        if t == "(":
            if k > 0 and is_ident(toks[k - 1]) and toks[k - 1] not in KEYWORDS:
                return toks[k - 1]
            j = k + 1
            while j < len(toks) and toks[j] in ("*", "const", "volatile", "restrict"):
                j += 1
            if j < len(toks) and is_ident(toks[j]):
                return toks[j]
            break
    # otherwise the last identifier before any [ (arrays) or bit-field
    name = None
    for t in toks:
        if t in ("[", ":"):
            break
        if is_ident(t) and t not in KEYWORDS:
            name = t
    return name


def file_scope_names(text, known_macros=frozenset()):
    """Names a C source declares at file scope with internal linkage or no
    linkage: static functions and objects, typedef names, tags, enumeration
    constants.  Extern definitions are left alone (their names are global by
    design).  A scanner, not a parser: it knows the shapes libconc uses, and
    the amalgamation test compiles the result, so a miss cannot go unseen."""
    toks, macros = tokens_of(text)
    known = set(known_macros) | set(macros)
    names = []
    i, decl = 0, []
    braces = []  # collapsed brace groups of the current declaration
    while i < len(toks):
        t = toks[i]
        if t == "{":
            end = skip_group(toks, i, "{", "}")
            body = toks[i + 1:end - 1]
            flat = drop_specifier_groups(decl)
            is_init = "=" in split_top(flat, ",")[-1]
            if not is_init and flat and flat[-1] == ")":
                # a function definition
                if "static" in flat:
                    n = declarator_name(flat, known)
                    if n:
                        names.append(n)
                decl = []
                i = end
                continue
            # a struct/union/enum body (or an initializer)
            if not is_init:
                k = len(flat) - 1
                if k >= 1 and flat[k - 1] in ("struct", "union", "enum") and is_ident(flat[k]):
                    names.append(flat[k])
                if "enum" in flat[-2:]:
                    for item in split_top(body, ","):
                        if item and is_ident(item[0]):
                            names.append(item[0])
            decl.append("{")
            decl.append("}")
            braces.append(body)
            i = end
            continue
        if t == ";":
            flat = drop_specifier_groups(decl)
            if flat:
                # forward-declared or defined tags: struct x ... ;
                for k in range(len(flat) - 1):
                    if flat[k] in ("struct", "union", "enum") and is_ident(flat[k + 1]):
                        if k + 2 < len(flat) and flat[k + 2] in ("{", ";") or len(flat) == k + 2:
                            names.append(flat[k + 1])
                if flat[0] == "typedef" or "static" in flat or "typedef" in flat:
                    for part in split_top(flat, ","):
                        n = declarator_name(part, known)
                        if n:
                            names.append(n)
            decl = []
            i += 1
            continue
        decl.append(t)
        i += 1
    seen, out = set(), []
    for n in names:
        if n not in seen and n not in KEYWORDS and n not in known:
            seen.add(n)
            out.append(n)
    return out, macros


def header_tokens(paths):
    toks = set()
    for p in paths:
        code, macros = tokens_of(read(p))
        toks.update(t for t in code if is_ident(t))
        toks.update(macros)
    return toks


# ---- the amalgamation -------------------------------------------------------

PREAMBLE = """\
/*
 * conc_single.h - libconc %(version)s in one header (the sqlite/stb way).
 *
 * GENERATED by scripts/amalgamate.py from the libconc sources; do not edit.
 * CI regenerates it and fails when this copy is stale.
 *
 * Use: include it wherever you need the API.  In exactly ONE C file, define
 * CONC_IMPLEMENTATION first, and include this header before any system
 * header there (the implementation needs _GNU_SOURCE):
 *
 *     #define CONC_IMPLEMENTATION
 *     #include "conc_single.h"
 *
 * Build with a C11 compiler and -pthread:  cc -std=c11 -pthread app.c
 * The API is the same as libconc.a's (every header of include/conc/); it
 * compiles as C++ as well, the implementation as C only.  Test-only failure
 * hooks are compiled out.  CONC_HAVE_<PRIM> tells which primitives are in.
 *
 * Contents: %(contents)s.
 */
"""


def generate():
    sources, have = meson_sources()
    version = "?"
    m = re.search(r"version:\s*'([^']+)'", read(os.path.join(ROOT, "meson.build")))
    if m:
        version = m.group(1)
    inl = Inliner()
    umbrella = os.path.join(ROOT, "include", "conc", "conc.h")
    out = []
    out.append(PREAMBLE % {
        "version": version,
        "contents": ", ".join(rel(s) for s in sources)})
    out.append("#if defined(CONC_IMPLEMENTATION) && !defined(_GNU_SOURCE)\n"
               "#define _GNU_SOURCE 1\n#endif\n\n")
    out.append("#ifndef CONC_SINGLE_H\n#define CONC_SINGLE_H\n\n")
    for p in have:
        out.append("#define CONC_HAVE_%s 1\n" % p.upper())
    out.append("\n")
    inl.header(umbrella, out)
    public = list(inl.order)
    out.append("\n#endif /* CONC_SINGLE_H */\n\n")

    out.append("#if defined(CONC_IMPLEMENTATION) && !defined(CONC_SINGLE_IMPLEMENTATION_DONE)\n"
               "#define CONC_SINGLE_IMPLEMENTATION_DONE 1\n"
               "#if defined(__cplusplus)\n"
               "#error \"conc_single.h: define CONC_IMPLEMENTATION in a C file, not C++\"\n"
               "#endif\n"
               "#if defined(__GLIBC__) && !defined(__USE_GNU)\n"
               "#error \"conc_single.h: in the CONC_IMPLEMENTATION file, include conc_single.h "
               "before any system header, or compile that file with -D_GNU_SOURCE\"\n"
               "#endif\n\n")

    # System headers of the sources, hoisted so that no rename below can
    # reach into them; the conditional ones stay where they are.
    hoisted, seen = [], set()
    for src in sources:
        for line, depth in lines_with_depth(src):
            m = INCLUDE_RE.match(line)
            if m and depth == 0 and not resolve(m.group(2), m.group(1), src):
                key = m.group(2)
                if key not in seen:
                    seen.add(key)
                    hoisted.append("#include <%s>\n" % key)
    out.append("/* ---- system headers the sources use " + "-" * 38 + " */\n")
    out += hoisted
    out.append("\n")

    # Internal headers, in the order the sources first include them.
    internal = []
    for src in sources:
        for h in inl.includes_of(src):
            if h not in inl.done and not source_local(h):
                internal.append(h)
                inl.header(h, out)
    every_header = public + internal
    shared = header_tokens(every_header)
    header_macros = set()
    for h in every_header:
        header_macros.update(tokens_of(read(h))[1])

    # The sources.
    declared = {}
    sections = []
    for src in sources:
        stem = os.path.splitext(os.path.basename(src))[0]
        text = read(src) + "".join(read(h) for h in inl.includes_of(src) if source_local(h))
        names, macros = file_scope_names(text, header_macros)
        local = [n for n in names if n not in shared and not n.startswith(("conc_", "CONC_"))]
        for n in names:
            if n in shared:
                declared.setdefault(n, []).append(rel(src))
        sections.append((src, stem, local, macros))

    clashes = {n: fs for n, fs in declared.items() if len(fs) > 1}
    # A name declared at file scope of two sources and also in a header:
    # a header's struct tag defined by one source is fine (one definition);
    # two definitions are not.
    if clashes:
        raise Error("file-scope names declared in several sources that also appear "
                    "in a header (cannot be renamed safely):\n" +
                    "\n".join("  %s: %s" % (n, ", ".join(f)) for n, f in sorted(clashes.items())))

    # Every whole word of the output so far and of the sources, once: a
    # renamed name collides when it is one of them (a regex search per
    # name took 7 of this script's 9 seconds).
    all_words = set(re.findall(r"\w+", "".join(out) + "".join(read(s) for s in sources)))
    for src, stem, local, macros in sections:
        prefix = "conc__%s__" % re.sub(r"\W", "_", stem)
        for n in local:
            if prefix + n in all_words:
                raise Error("%s: renaming %s to %s%s would collide" % (rel(src), n, prefix, n))
        out.append("\n/* ==== %s %s */\n" % (rel(src), "=" * max(3, 66 - len(rel(src)))))
        if local:
            out.append("/* file-local names of %s, made unique in this unit */\n" % rel(src))
            for n in local:
                out.append("#define %s %s%s\n" % (n, prefix, n))
        for line, depth in lines_with_depth(src):
            m = INCLUDE_RE.match(line)
            if m:
                target = resolve(m.group(2), m.group(1), src)
                if target:
                    if target not in inl.done:
                        inl.header(target, out)
                    continue
                if depth == 0:
                    continue  # hoisted
            out.append(line)
        if not out[-1].endswith("\n"):
            out.append("\n")
        undef = [n for n in local] + [m for m in dict.fromkeys(macros)
                                      if m not in shared and not m.startswith("_")]
        if undef:
            out.append("/* end of %s: its names and macros stop here */\n" % rel(src))
            for n in undef:
                out.append("#undef %s\n" % n)
    out.append("\n#endif /* CONC_IMPLEMENTATION */\n")
    return "".join(out)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("-o", "--output", default=os.path.join(ROOT, "dist", "conc_single.h"))
    ap.add_argument("--check", metavar="FILE",
                    help="compare FILE with what the sources generate; exit 1 if it differs")
    args = ap.parse_args()
    try:
        text = generate()
    except Error as e:
        print("amalgamate.py: error: %s" % e, file=sys.stderr)
        return 2
    if args.check:
        try:
            old = read(args.check)
        except OSError as e:
            print("amalgamate.py: %s" % e, file=sys.stderr)
            return 1
        if old != text:
            import difflib
            diff = list(difflib.unified_diff(old.splitlines(), text.splitlines(),
                                             args.check, "generated", lineterm="", n=1))
            print("\n".join(diff[:40]))
            if len(diff) > 40:
                print("... (%d more diff lines)" % (len(diff) - 40))
            print("amalgamate.py: %s is stale: run `python3 scripts/amalgamate.py` "
                  "and commit the result" % args.check)
            return 1
        print("amalgamate.py: %s is up to date" % args.check)
        return 0
    os.makedirs(os.path.dirname(os.path.abspath(args.output)), exist_ok=True)
    tmp = args.output + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(tmp, args.output)
    print("amalgamate.py: wrote %s (%d lines)" % (args.output, text.count("\n")))
    return 0


if __name__ == "__main__":
    sys.exit(main())
