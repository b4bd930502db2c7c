#!/usr/bin/env python3
"""gendocs.py - libconc's reference documentation, from the header comments.

    gendocs.py [--include DIR] --out DIR [--check]
    gendocs.py --list
    gendocs.py --self-test

Reads include/conc/*.h (the comments above each declaration are the single
source) and writes into --out (a build directory, never the source tree):

    man3/<symbol>.3      one page per public function, documented type and
                         macro: NAME, SYNOPSIS, DESCRIPTION, CONCURRENCY,
                         RETURN VALUE, ERRORS, SEE ALSO
    man3/conc_<h>.3      one overview page per header (conc_queue.3, ...)
    man7/libconc.7       the index
    html/index.html      the same reference as one HTML page, an anchor
                         (id) per symbol and per header

The comment format it reads (see any header in include/conc/):

    /*
     * conc_queue_push - append item at the tail of q.      <- name - summary
     *
     * Free text; indented lines (examples, tables) are kept as they are.
     * Thread safety: any number of threads ...             <- labelled fields,
     * Ordering: everything the caller wrote ...               continued on
     *   what the thread whose pop ...                         lines indented
     * Progress: lock-free; ...                                by two spaces
     * Returns: 0; ENOMEM (nothing was pushed, ...);
     *   EPIPE (q is closed; nothing was pushed).
     */
    int conc_queue_push(conc_queue *q, void *item);

A comment documents the declarations that follow it without a blank line
(one comment may cover a group: the pool's queries, a pair of macros).

--check: every public function (and type and macro) must be documented;
every function must state its thread safety and progress, and one that
returns int its Returns (README: "Every function documents ...");
anything the parser cannot read is a warning; the man pages written are
run through groff -ww and man --warnings when those exist.  Prints
"docs: N symbols, D documented, W warnings" and exits 1 on any warning.
--self-test: --check passes a clean scratch header and names each fault
planted in it (undocumented function, missing fields, unknown errno,
unparsable declaration, a page groff warns about).
Python 3 standard library only.
"""

import argparse
import concurrent.futures
import errno
import html
import os
import re
import shutil
import subprocess
import sys

ERRNOS = ('EINVAL', 'ENOMEM', 'EAGAIN', 'EPIPE', 'ETIMEDOUT', 'EDEADLK',
          'EBUSY', 'ECANCELED')
LABELS = ('Thread safety', 'Ordering', 'Progress', 'Returns', 'Destroy')
LABEL_RE = re.compile(r'^((?:%s)(?:, (?:%s))*):(?:\s+|$)' %
                      ('|'.join(LABELS), '|'.join(LABELS)))
# a label that starts mid-line, after a sentence: "any thread.  Progress: ..."
INLINE_LABEL_RE = re.compile(r'(?<=\.)\s{2,}(?=(?:%s)(?:, [A-Z][a-z ]+)*:\s)' %
                             '|'.join(LABELS))
IDENT = r'[A-Za-z_]\w*'
PUBLIC_RE = re.compile(r'^(conc_(?!_)\w+|CONC_(?!_)\w+)$')
VERSION = '0.1.0'


class Warnings:
    def __init__(self):
        self.items = []

    def __call__(self, where, msg):
        self.items.append('%s: %s' % (where, msg))


class Symbol:
    def __init__(self, name, kind, header, line, decl):
        self.name = name
        self.kind = kind        # function, type, opaque, macro
        self.header = header    # 'queue.h'
        self.line = line
        self.decl = decl        # the declaration as written (synopsis)
        self.comment = None     # list of comment lines, or None
        self.group = [name]     # symbols sharing the comment
        self.doc = None         # parsed: see parse_doc

    @property
    def page(self):
        return self.name


class Header:
    def __init__(self, fname):
        self.fname = fname      # 'queue.h'
        self.stem = fname[:-2]
        self.page = 'conc_' + self.stem
        self.overview = []      # the file comment's lines
        self.summary = ''
        self.symbols = []
        self.includes = []


# ---------------------------------------------------------------- parsing

def comment_lines(text):
    """The lines of a /* */ comment without the delimiters and ' * '."""
    body = text[2:-2]
    lines = body.split('\n')
    out = []
    for i, ln in enumerate(lines):
        s = ln.rstrip()
        if i == 0:
            s = s.strip()
        else:
            m = re.match(r'^\s*\*(?: |$)?', s)
            if m:
                s = s[m.end():]
            else:
                s = s.strip()
        out.append(s)
    while out and not out[0].strip():
        out.pop(0)
    while out and not out[-1].strip():
        out.pop()
    return out


def strip_comments(text):
    return re.sub(r'/\*.*?\*/', ' ', text, flags=re.S)


def parse_header(path, warn):
    """The header's overview comment and its declarations, each with the
    comment just above it (no blank line between)."""
    fname = os.path.basename(path)
    h = Header(fname)
    with open(path, encoding='utf-8') as f:
        src = f.read()
    i, n = 0, len(src)
    line = 1
    pending = None          # (comment lines, line) not yet attached
    group = None            # the symbols the last comment documents
    first_comment = True
    guard = None

    def where(ln):
        return 'include/conc/%s:%d' % (fname, ln)

    while i < n:
        # skip whitespace, noting blank lines (they detach comments)
        j = i
        while j < n and src[j] in ' \t\n':
            j += 1
        if src.count('\n', i, j) > 1:      # a blank line
            pending = None
            group = None
        line += src.count('\n', i, j)
        i = j
        if i >= n:
            break
        start_line = line
        if src.startswith('/*', i):
            e = src.find('*/', i + 2)
            if e < 0:
                warn(where(line), 'unterminated comment')
                break
            e += 2
            text = src[i:e]
            line += text.count('\n')
            i = e
            lines = comment_lines(text)
            if first_comment:
                first_comment = False
                h.overview = lines
                continue
            pending = (lines, start_line)
            group = None
            continue
        first_comment = False
        if src.startswith('//', i):
            e = src.find('\n', i)
            i = n if e < 0 else e
            continue
        if src[i] == '#':
            e = i
            while True:
                e = src.find('\n', e)
                if e < 0:
                    e = n
                    break
                if src[e - 1] == '\\':
                    e += 1
                    continue
                break
            d = src[i:e]
            i = e
            m = re.match(r'#\s*(\w+)\s*(.*)$', d, re.S)
            if not m:
                warn(where(start_line), 'cannot parse directive: %s' % d)
                continue
            kw, rest = m.group(1), m.group(2).strip()
            if kw == 'ifndef' and guard is None:
                guard = rest
            elif kw == 'define':
                mm = re.match(r'(%s)(\([^)]*\))?\s*(.*)$' % IDENT, rest, re.S)
                name = mm.group(1) if mm else None
                if name == guard:
                    pass
                elif name and PUBLIC_RE.match(name):
                    s = Symbol(name, 'macro', fname, start_line, d.strip())
                    attach(h, s, pending, group)
                    group = s.group if s.comment is not None else None
                    pending = None if s.comment is not None else pending
                elif not name:
                    warn(where(start_line), 'cannot parse: %s' % d)
            elif kw == 'include':
                mm = re.match(r'"(conc/\w+\.h)"', rest)
                if mm:
                    h.includes.append(mm.group(1))
            elif kw in ('ifdef', 'ifndef', 'endif', 'if', 'else', 'elif',
                        'undef', 'pragma'):
                pass
            else:
                warn(where(start_line), 'unexpected directive #%s' % kw)
            continue
        if src.startswith('extern "C"', i):
            e = src.find('{', i)
            i = e + 1
            continue
        if src[i] == '}':
            i += 1      # extern "C" closes
            continue
        # a declaration: to ';' at depth 0, or a function body
        depth = 0
        j = i
        body = None
        while j < n:
            c = src[j]
            if src.startswith('/*', j):
                j = src.find('*/', j + 2) + 2
                continue
            if c == '(':
                depth += 1
            elif c == ')':
                depth -= 1
            elif c == '{':
                if depth == 0 and re.search(r'\)\s*$', strip_comments(src[i:j])):
                    body = j
                    break
                depth += 1
            elif c == '}':
                depth -= 1
            elif c == ';' and depth == 0:
                break
            j += 1
        if j >= n:
            warn(where(start_line), 'cannot parse: declaration never ends')
            break
        if body is not None:
            decl = src[i:body].rstrip() + ';'
            # skip the function body
            k, d2 = body, 0
            while k < n:
                if src[k] == '{':
                    d2 += 1
                elif src[k] == '}':
                    d2 -= 1
                    if d2 == 0:
                        break
                k += 1
            end = k + 1
        else:
            decl = src[i:j + 1]
            end = j + 1
        line += src.count('\n', i, end)
        i = end
        sym = classify(decl, fname, start_line, warn)
        if sym is None:
            pending = None
            group = None
            continue
        if sym is False:        # internal (conc__*): its comment is not ours
            pending = None
            group = None
            continue
        attach(h, sym, pending, group)
        if sym.comment is not None:
            group = sym.group
            pending = None
    if h.overview:
        m = re.match(r'conc/%s\s+-\s+' % re.escape(fname), h.overview[0])
        if not m:
            warn(where(1), 'the file comment does not start with '
                 '"conc/%s - "' % fname)
        else:
            para = []
            for ln in h.overview:
                if not ln.strip():
                    break
                para.append(ln.strip())
            h.summary = first_sentence(' '.join(para)[m.end():])
    else:
        warn(where(1), 'no file comment (the header overview)')
    return h


def attach(h, sym, pending, group):
    """Give sym the pending comment, or make it part of the last group."""
    if pending is not None:
        sym.comment, sym.comment_line = pending
        sym.group = [sym.name]
    elif group is not None and h.symbols:
        prev = h.symbols[-1]
        sym.comment = prev.comment
        sym.comment_line = prev.comment_line
        group.append(sym.name)
        sym.group = group
    h.symbols.append(sym)


def classify(decl, fname, line, warn):
    """A Symbol, False for an internal declaration, None if unparsable."""
    flat = ' '.join(strip_comments(decl).split())
    where = 'include/conc/%s:%d' % (fname, line)
    m = re.match(r'typedef struct (%s) (%s);$' % (IDENT, IDENT), flat)
    if m:
        name = m.group(2)
        if not PUBLIC_RE.match(name):
            return False
        return Symbol(name, 'opaque', fname, line, flat)
    m = re.match(r'typedef (?:struct|union|enum) (?:%s )?\{.*\} (%s);$' %
                 (IDENT, IDENT), flat)
    if m:
        name = m.group(1)
        if not PUBLIC_RE.match(name):
            return False
        return Symbol(name, 'type', fname, line, decl.strip())
    m = re.match(r'(?:struct|union|enum) (%s) \{.*\};$' % IDENT, flat)
    if m:
        if not PUBLIC_RE.match(m.group(1)):
            return False
        return Symbol(m.group(1), 'type', fname, line, decl.strip())
    m = re.match(r'(?:extern )?(?:inline |static )*[\w\s\*]+?\b(%s)\s*\(' % IDENT,
                 flat)
    if m and flat.endswith(');'):
        name = m.group(1)
        if not PUBLIC_RE.match(name):
            return False
        return Symbol(name, 'function', fname, line,
                      '\n'.join(l.rstrip() for l in decl.strip().split('\n')))
    m = re.match(r'extern [\w\s\*]+?\b(%s)(\[[^\]]*\])?;$' % IDENT, flat)
    if m:
        if not PUBLIC_RE.match(m.group(1)):
            return False
        return Symbol(m.group(1), 'variable', fname, line, flat)
    warn(where, 'cannot parse declaration: %s' % flat[:80])
    return None


def first_sentence(text):
    m = re.search(r'\.(\s|$)', text)
    s = text[:m.start()] if m else text
    return s.strip().rstrip('.')


# ------------------------------------------------------- comment structure

def split_inline_labels(lines):
    """'a.  Progress: b' at column 0 -> two lines."""
    out = []
    for ln in lines:
        if ln.startswith(' '):
            out.append(ln)
            continue
        parts = INLINE_LABEL_RE.split(ln)
        out.extend(parts)
    return out


def parse_blocks(lines, item_names=()):
    """Comment lines -> blocks:
       ('p', [lines])               filled text
       ('pre', [lines])             kept as written (indented in the source)
       ('items', [(name, [lines])]) a definition list (group comments)
       ('field', label, [lines])    Thread safety:, Returns:, ...
    """
    blocks = []
    lines = split_inline_labels(lines)
    i = 0
    cur = None              # the open block

    def close():
        nonlocal cur
        if cur is not None:
            blocks.append(cur)
        cur = None

    item_re = None
    if item_names:
        item_re = re.compile(r'^(%s)\s+-\s+' % '|'.join(map(re.escape,
                                                          item_names)))
    while i < len(lines):
        ln = lines[i]
        i += 1
        if not ln.strip():
            close()
            continue
        m = LABEL_RE.match(ln)
        if m:
            close()
            cur = ('field', m.group(1), [ln[m.end():]])
            continue
        if item_re is not None:
            m = item_re.match(ln)
            if m:
                if cur is None or cur[0] != 'items':
                    close()
                    cur = ('items', [])
                cur[1].append((m.group(1), [ln[m.end():]]))
                continue
        indented = ln.startswith('  ')
        if cur is not None and cur[0] == 'field' and indented:
            cur[2].append(ln.strip())
            continue
        if cur is not None and cur[0] == 'items' and indented:
            cur[1][-1][1].append(ln.strip())
            continue
        if indented:
            if cur is None or cur[0] != 'pre':
                close()
                cur = ('pre', [])
            cur[1].append(ln)
            continue
        if cur is None or cur[0] != 'p':
            close()
            cur = ('p', [])
        cur[1].append(ln)
    close()
    # pre blocks: drop the common indentation
    out = []
    for b in blocks:
        if b[0] == 'pre':
            ind = min(len(l) - len(l.lstrip()) for l in b[1] if l.strip())
            b = ('pre', [l[ind:] for l in b[1]])
        out.append(b)
    return out


def split_top(text, sep=';'):
    """Split at sep outside parentheses."""
    parts, depth, cur = [], 0, ''
    for c in text:
        if c == '(':
            depth += 1
        elif c == ')':
            depth -= 1
        if c == sep and depth == 0:
            parts.append(cur)
            cur = ''
        else:
            cur += c
    parts.append(cur)
    return [p.strip() for p in parts if p.strip()]


def closing(text):
    """The index of the ')' that closes text[0] == '('."""
    depth = 0
    for k, c in enumerate(text):
        depth += (c == '(') - (c == ')')
        if depth == 0:
            return k
    return -1


def errors_of(returns):
    """The ERRORS list from a Returns text: [(tag, text)]."""
    out = []
    text = ' '.join(returns.split()).rstrip('.')
    for item in split_top(text):
        names = []
        for e in re.findall(r'\bE[A-Z]{3,}\b', item):
            if e not in names:
                names.append(e)
        if not names:
            continue
        m = re.match(r'(E[A-Z]{3,})\s*(.*)$', item)
        if m and len(names) == 1:
            rest = m.group(2).strip()
            if rest.startswith('(') and closing(rest) == len(rest) - 1:
                rest = rest[1:-1]
            rest = re.sub(r'^[:,-]\s*', '', rest)
            if not rest:    # "ENOMEM" alone: the C library's words
                rest = os.strerror(getattr(errno, m.group(1), 0)) + '.'
            out.append((m.group(1), rest))
        else:
            out.append((', '.join(names), item))
    return out


def parse_doc(sym, warn):
    """Fill sym.doc: summary, blocks, fields."""
    where = 'include/conc/%s:%d' % (sym.header, getattr(sym, 'comment_line',
                                                        sym.line))
    lines = list(sym.comment)
    doc = {'summary': '', 'blocks': [], 'fields': {}}
    grouped = len(sym.group) > 1
    head = re.match(r'^(%s)\s+-\s+' % IDENT, lines[0]) if lines else None
    if head and not grouped:
        if head.group(1) != sym.name:
            warn(where, '%s: its comment is headed "%s -"' %
                 (sym.name, head.group(1)))
        para = []
        for ln in lines:
            if not ln.strip() or LABEL_RE.match(ln):
                break
            para.append(ln.strip())
        first = ' '.join(para)[head.end():]
        first = INLINE_LABEL_RE.split(first)[0]
        doc['summary'] = first_sentence(first)
        lines[0] = lines[0][head.end():]
        if lines[0]:
            lines[0] = lines[0][0].upper() + lines[0][1:]
    elif grouped:
        names = [s for s in sym.group]
        item = [ls for b in parse_blocks(lines, sym.group) if b[0] == 'items'
                for name, ls in b[1] if name == sym.name]
        if item:
            doc['summary'] = first_sentence(' '.join(item[0]))
        elif sym.name in ' '.join(lines):
            doc['summary'] = first_sentence(' '.join(
                l.strip() for l in lines if l.strip()))
        else:
            warn(where, '%s: the comment it shares with %s does not name it'
                 % (sym.name, ', '.join(n for n in names if n != sym.name)))
            doc['summary'] = first_sentence(' '.join(
                l.strip() for l in lines if l.strip()))
    else:
        if sym.kind == 'function':
            warn(where, '%s: its comment does not start with "%s - "' %
                 (sym.name, sym.name))
        doc['summary'] = first_sentence(' '.join(
            l.strip() for l in lines if l.strip()))
    blocks = parse_blocks(lines, sym.group if grouped else ())
    for b in blocks:
        if b[0] == 'field':
            for lab in b[1].split(', '):
                doc['fields'].setdefault(lab, []).append(' '.join(b[2]))
    doc['blocks'] = blocks
    doc['summary'] = ' '.join(doc['summary'].split())
    sym.doc = doc
    if sym.kind == 'function':
        f = doc['fields']
        if 'Thread safety' not in f:
            warn(where, '%s: no "Thread safety:" (which threads may call it)'
                 % sym.name)
        if 'Progress' not in f:
            warn(where, '%s: no "Progress:" (its progress guarantee)' %
                 sym.name)
        # past the attribute macros (conc/attr.h): CONC_NODISCARD int f(...)
        rtype = re.match(r'(?:CONC_[A-Z_]+(?:\([^)]*\))?\s+)*(?:inline\s+)?(\w+)',
                         sym.decl).group(1)
        if rtype == 'int' and 'Returns' not in f:
            warn(where, '%s: returns int but has no "Returns:"' % sym.name)
        for r in f.get('Returns', []):
            for e in re.findall(r'\bE[A-Z]{3,}\b', r):
                if e not in ERRNOS:
                    warn(where, '%s: Returns names %s, not one of %s' %
                         (sym.name, e, ' '.join(ERRNOS)))


def load(include, warn):
    d = os.path.join(include, 'conc')
    headers = []
    for fname in sorted(os.listdir(d)):
        if fname.endswith('.h'):
            headers.append(parse_header(os.path.join(d, fname), warn))
    for h in headers:
        for s in h.symbols:
            if s.comment is not None:
                parse_doc(s, warn)
        # A function named like its header (conc_version in version.h)
        # keeps its name; the overview becomes conc_<header>_h.
        if any(s.name == h.page and s.kind != 'opaque' for s in h.symbols):
            h.page += '_h'
        HEADER_PAGE[h.fname] = h.page
    return headers


# The overview page of each header (by file name), for cross references.
HEADER_PAGE = {}


def documented(sym, h):
    if sym.comment is not None:
        return True
    # an opaque handle named like its header is what the overview describes
    return sym.kind == 'opaque' and sym.name == h.page


# ------------------------------------------------------------------- troff

def t_esc(s):
    return s.replace('\\', '\\e')


def t_line(s):
    s = t_esc(s.expandtabs(8))
    if s.startswith('.') or s.startswith("'"):
        s = '\\&' + s
    return s


class Linker:
    def __init__(self, names):
        self.names = set(names)
        self.re = re.compile(r'\b(%s)\b' % '|'.join(
            sorted(map(re.escape, names), key=len, reverse=True)))

    def troff(self, s):
        return self.re.sub(lambda m: '\\fB%s\\fR' % m.group(1), t_line(s))

    def html(self, s):
        return self.re.sub(lambda m: '<a href="#%s"><code>%s</code></a>' %
                           (m.group(1), m.group(1)), html.escape(s, quote=False))


def man_blocks(blocks, lk, skip_fields=()):
    out = []
    for b in blocks:
        if b[0] == 'p':
            out.append('.PP')
            out.extend(lk.troff(l.strip()) for l in b[1])
        elif b[0] == 'pre':
            out += ['.PP', '.RS 4', '.nf']
            out.extend(t_line(l) for l in b[1])
            out += ['.fi', '.RE']
        elif b[0] == 'items':
            for name, ls in b[1]:
                out += ['.TP', '.B %s' % name]
                out.extend(lk.troff(l.strip()) for l in ls)
        elif b[0] == 'field':
            if b[1] in skip_fields:
                continue
            out += ['.TP', '.B %s' % b[1]]
            out.extend(lk.troff(l) for l in b[2])
    return out


def synopsis(decls, header):
    out = ['.SH SYNOPSIS', '.nf', '.B #include <conc/%s>' % header, '']
    for d in decls:
        out.extend(t_line(l) for l in d.split('\n'))
    out += ['.fi', '.PP', 'Compile and link with',
            '.IR "pkg\\-config \\-\\-cflags \\-\\-libs conc"',
            '(the library is static; it needs',
            '.BR \\-pthread ).']
    return out


def th(name, sec, title):
    return ['.\\" Generated by scripts/gendocs.py from the header comments;',
            '.\\" edit include/conc/*.h, not this file.',
            '.TH %s %s "" "libconc %s" "%s"' % (name.upper(), sec, VERSION,
                                                 title),
            '.nh', '.ad l']


def see_also(refs):
    out = ['.SH SEE ALSO']
    for k, (name, sec) in enumerate(refs):
        out.append('.BR %s (%s)%s' % (name, sec, ',' if k + 1 < len(refs)
                                       else ''))
    return out


def man_symbol(sym, h, headers, lk):
    doc = sym.doc
    o = th(sym.name, 3, 'libconc reference')
    o += ['.SH NAME', '%s \\- %s' % (sym.name, t_esc(doc['summary']))]
    o += synopsis([sym.decl], sym.header)
    concurrency = [b for b in doc['blocks'] if b[0] == 'field' and
                   b[1] not in ('Returns',)]
    desc = [b for b in doc['blocks'] if b[0] != 'field']
    o += ['.SH DESCRIPTION'] + man_blocks(desc, lk)
    if concurrency:
        o += ['.SH CONCURRENCY'] + man_blocks(concurrency, lk)
    rets = doc['fields'].get('Returns')
    if rets:
        o += ['.SH RETURN VALUE']
        for r in rets:
            o += [lk.troff(' '.join(r.split()))]
        errs = []
        for r in rets:
            errs += errors_of(r)
        if errs:
            o += ['.SH ERRORS']
            for tag, text in errs:
                o += ['.TP', '.B %s' % tag, lk.troff(text or '(see above)')]
    refs = [(s.name, 3) for s in h.symbols
            if s.kind == 'function' and s.name != sym.name and s.doc]
    mentioned = []
    for b in doc['blocks']:
        texts = b[1] if b[0] in ('p', 'pre') else (
            b[2] if b[0] == 'field' else [t for _, ls in b[1] for t in ls])
        for t in texts:
            for m in lk.re.finditer(t):
                mentioned.append(m.group(1))
    by_name = {s.name: s for hh in headers for s in hh.symbols}
    for name in mentioned:
        s = by_name.get(name)
        if s and s.header != sym.header and s.doc and s.kind == 'function' \
                and (name, 3) not in refs:
            refs.append((name, 3))
    refs = [(h.page, 3)] + refs + [('libconc', 7)]
    o += see_also(refs)
    return '\n'.join(o) + '\n'


def man_header(h, headers, lk):
    o = th(h.page, 3, 'libconc reference')
    o += ['.SH NAME', '%s \\- %s' % (h.page, t_esc(h.summary))]
    decls = [s.decl for s in h.symbols if s.kind in ('function', 'opaque')]
    o += synopsis(decls, h.fname)
    ov = list(h.overview)
    m = re.match(r'conc/%s\s+-\s+' % re.escape(h.fname), ov[0]) if ov else None
    if m:
        ov[0] = ov[0][m.end():]
        ov[0] = ov[0][:1].upper() + ov[0][1:]
    o += ['.SH DESCRIPTION'] + man_blocks(parse_blocks(ov), lk)
    for kind, title in (('function', 'FUNCTIONS'),
                        (('type', 'opaque'), 'TYPES'),
                        ('macro', 'MACROS')):
        kinds = kind if isinstance(kind, tuple) else (kind,)
        syms = [s for s in h.symbols if s.kind in kinds and s.doc]
        if not syms:
            continue
        o += ['.SH ' + title]
        for s in syms:
            o += ['.TP', '.BR %s (3)' % s.name, lk.troff(s.doc['summary'] + '.')]
    refs = [('libconc', 7)]
    for inc in h.includes:
        refs.insert(0, (HEADER_PAGE.get(inc[5:], 'conc_' + inc[5:-2]), 3))
    o += see_also(refs)
    return '\n'.join(o) + '\n'


def man_index(headers, lk):
    conc = [h for h in headers if h.fname == 'conc.h']
    o = th('libconc', 7, 'libconc')
    o += ['.SH NAME', 'libconc \\- lock\\-free concurrency primitives for C11']
    o += ['.SH SYNOPSIS', '.nf', '.B #include <conc/conc.h>', '.fi', '.PP',
          'Compile and link with',
          '.IR "pkg\\-config \\-\\-cflags \\-\\-libs conc" .']
    o += ['.SH DESCRIPTION', '.PP',
          'libconc provides epoch\\-based reclamation, an MPMC queue, a stack, channels with select,',
          'a work\\-stealing thread pool, scoped threads and parallel loops.',
          'Every function documents which threads may call it, its progress',
          'guarantee, its memory ordering and its errors.  Functions that can',
          'fail return 0 or a positive errno value',
          '(' + ', '.join(ERRNOS) + ');',
          'a failed call changes nothing; nothing aborts, prints or touches',
          '.IR errno .']
    if conc and conc[0].overview:
        ov = [l for l in conc[0].overview[1:]]
        o += man_blocks(parse_blocks(ov), lk)
    o += ['.SH HEADERS']
    for h in headers:
        if h.fname == 'conc.h':
            continue
        o += ['.TP', '.BR %s (3)' % h.page,
              '.I <conc/%s>' % h.fname, '\\- ' + lk.troff(h.summary) + '.']
    o += ['.SH FUNCTIONS']
    for h in headers:
        for s in h.symbols:
            if s.kind == 'function' and s.doc:
                o += ['.TP', '.BR %s (3)' % s.name, lk.troff(s.doc['summary'] + '.')]
    o += ['.SH "TYPES AND MACROS"']
    for h in headers:
        for s in h.symbols:
            if s.kind != 'function' and s.doc:
                o += ['.TP', '.BR %s (3)' % s.name,
                      lk.troff(s.doc['summary'] + '.')]
    o += see_also([(h.page, 3) for h in headers if h.fname != 'conc.h'])
    return '\n'.join(o) + '\n'


# -------------------------------------------------------------------- html

def html_blocks(blocks, lk):
    out = []
    for b in blocks:
        if b[0] == 'p':
            out.append('<p>%s</p>' % lk.html(' '.join(l.strip() for l in b[1])))
        elif b[0] == 'pre':
            out.append('<pre>%s</pre>' % html.escape('\n'.join(b[1]),
                                                     quote=False))
        elif b[0] == 'items':
            out.append('<dl>')
            for name, ls in b[1]:
                out.append('<dt><code>%s</code></dt><dd>%s</dd>' %
                           (name, lk.html(' '.join(ls))))
            out.append('</dl>')
        elif b[0] == 'field':
            out.append('<dl class="field"><dt>%s</dt><dd>%s</dd></dl>' %
                       (html.escape(b[1]), lk.html(' '.join(b[2]))))
    return '\n'.join(out)


CSS = """body{max-width:52em;margin:2em auto;padding:0 1em;font-family:sans-serif;line-height:1.4}
pre{background:#f4f4f4;padding:.5em;overflow-x:auto}
h3{border-top:1px solid #ccc;padding-top:.5em;font-family:monospace}
dl.field dt{font-weight:bold}dl.field{margin:.3em 0}
nav ul{columns:2}a{text-decoration:none}"""


def write_html(headers, lk, path):
    o = ['<!DOCTYPE html>', '<html lang="en"><head><meta charset="utf-8">',
         '<title>libconc %s reference</title>' % VERSION,
         '<style>%s</style></head><body>' % CSS,
         '<!-- Generated by scripts/gendocs.py from include/conc/*.h -->',
         '<h1>libconc %s reference</h1>' % VERSION,
         '<p>Generated from the comments in <code>include/conc/*.h</code>. '
         'Functions that can fail return 0 or a positive errno value; see '
         'each function\'s <em>Returns</em>.</p>', '<nav><ul>']
    for h in headers:
        o.append('<li><a href="#%s"><code>&lt;conc/%s&gt;</code></a> %s</li>' %
                 (h.page, h.fname, html.escape(h.summary)))
    o.append('</ul></nav>')
    for h in headers:
        o.append('<section id="%s">' % h.page)
        o.append('<h2><code>&lt;conc/%s&gt;</code></h2>' % h.fname)
        ov = list(h.overview)
        m = re.match(r'conc/%s\s+-\s+' % re.escape(h.fname), ov[0]) if ov else None
        if m:
            ov[0] = ov[0][m.end():]
        o.append(html_blocks(parse_blocks(ov), lk))
        for s in h.symbols:
            if not s.doc:
                if s.kind == 'opaque' and s.name != h.page:
                    o.append('<h3 id="%s">%s</h3><pre>%s</pre>' %
                             (s.name, s.name, html.escape(s.decl)))
                continue
            o.append('<h3 id="%s">%s</h3>' % (s.name, s.name))
            o.append('<pre>%s</pre>' % html.escape(s.decl.expandtabs(8),
                                                   quote=False))
            if s.group[0] == s.name or len(s.group) == 1:
                o.append(html_blocks(s.doc['blocks'], lk))
            else:
                o.append('<p>See <a href="#%s"><code>%s</code></a>: %s.</p>'
                         % (s.group[0], s.group[0], lk.html(s.doc['summary'])))
        o.append('</section>')
    o.append('</body></html>')
    with open(path, 'w', encoding='utf-8') as f:
        f.write('\n'.join(o) + '\n')


# ------------------------------------------------------------------ checks

class HtmlCheck:
    def __init__(self):
        from html.parser import HTMLParser
        outer = self
        self.ids, self.hrefs, self.errors = [], [], []
        void = {'meta', 'br', 'hr', 'img', 'link', 'input'}

        class P(HTMLParser):
            def __init__(self):
                super().__init__()
                self.stack = []

            def handle_starttag(self, tag, attrs):
                a = dict(attrs)
                if 'id' in a:
                    outer.ids.append(a['id'])
                if tag == 'a' and 'href' in a:
                    outer.hrefs.append(a['href'])
                if tag not in void:
                    self.stack.append(tag)

            def handle_endtag(self, tag):
                if not self.stack or self.stack[-1] != tag:
                    outer.errors.append('unbalanced </%s>' % tag)
                else:
                    self.stack.pop()
        self.P = P

    def run(self, path):
        p = self.P()
        with open(path, encoding='utf-8') as f:
            p.feed(f.read())
        p.close()
        if p.stack:
            self.errors.append('unclosed: %s' % ' '.join(p.stack))
        dup = {i for i in self.ids if self.ids.count(i) > 1}
        for i in sorted(dup):
            self.errors.append('duplicate id %s' % i)
        for h in self.hrefs:
            if h.startswith('#') and h[1:] not in self.ids:
                self.errors.append('dangling link %s' % h)
        return self


def check_pages(pages, warn):
    """groff -ww and man --warnings on the written pages, where installed."""
    notes = []
    groff = shutil.which('groff')
    if groff:
        r = subprocess.run([groff, '-man', '-ww', '-z', '-Tutf8'] + pages,
                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                           text=True, env=dict(os.environ, LC_ALL='C.UTF-8'))
        for ln in r.stderr.splitlines():
            warn('groff', ln)
        if r.returncode != 0 and not r.stderr:
            warn('groff', 'exit status %d' % r.returncode)
        notes.append('groff -man -ww: %d pages' % len(pages))
    else:
        notes.append('groff not installed: pages not run through groff')
    man = shutil.which('man')
    if man:
        # groff -ww above read every page; man (preconv, tbl, the locale)
        # renders the same generated structure, so it gets one page of each
        # kind: the overviews, the index and one function page per header
        # (man-db takes ~0.1 s a page, most of it starting up)
        sample, seen = [], set()
        for p in pages:
            b = os.path.basename(p)
            kind = 'f:' + b.split('_')[1] if b.count('_') >= 2 else b
            if kind not in seen:
                seen.add(kind)
                sample.append(p)

        def render(p):
            return p, subprocess.run(
                [man, '--warnings', '-l', '-Tutf8', p],
                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                env=dict(os.environ, LC_ALL='C.UTF-8', MANWIDTH='80'))
        with concurrent.futures.ThreadPoolExecutor(2) as ex:
            for p, r in ex.map(render, sample):
                if r.returncode != 0 or r.stderr.strip():
                    warn(os.path.basename(p), 'man --warnings: ' +
                         (r.stderr.strip() or 'exit %d' % r.returncode))
        notes.append('man --warnings -l: %d of the pages (one of each kind)'
                     % len(sample))
    else:
        notes.append('man not installed: pages not rendered by man')
    return notes


# --------------------------------------------------------------- self-test

SELF_TEST_GOOD = """/*
 * conc/x.h - a header for the self-test.
 *
 *   conc_x *x;  conc_x_make(&x);
 */
#ifndef CONC_X_H
#define CONC_X_H

typedef struct conc_x conc_x;

/* The most of anything. */
#define CONC_X_MAX 4u

/*
 * conc_x_make - make an x.
 * .XX a line that starts with a dot, \\fB and a backslash \\n stay text.
 * 'quoted at the start of a line
 *
 * Thread safety: any thread.  Progress: blocking (allocates).
 * Returns: 0; EINVAL (out NULL); ENOMEM.
 */
int conc_x_make(conc_x **out);

%s

#endif
"""
SELF_TEST_BAD = [
    ('int conc_x_bare(void);', 'conc_x_bare (function) has no documentation'),
    ('/*\n * conc_x_a - a.\n *\n * Progress: wait-free.\n */\nvoid conc_x_a(void);',
     'conc_x_a: no "Thread safety:"'),
    ('/*\n * conc_x_b - b.\n *\n * Thread safety: any.\n */\nvoid conc_x_b(void);',
     'conc_x_b: no "Progress:"'),
    ('/*\n * conc_x_c - c.\n * Thread safety: any.  Progress: wait-free.\n */\n'
     'int conc_x_c(void);', 'conc_x_c: returns int but has no "Returns:"'),
    ('/*\n * conc_x_old - d.\n * Thread safety: any.  Progress: wait-free.\n */\n'
     'void conc_x_d(void);', 'conc_x_d: its comment is headed "conc_x_old -"'),
    ('/*\n * conc_x_n - n.\n * Thread safety: any.  Progress: wait-free.\n */\n'
     'CONC_NODISCARD int conc_x_n(void);',
     'conc_x_n: returns int but has no "Returns:"'),
    ('/*\n * conc_x_e - e.\n * Thread safety: any.  Progress: wait-free.\n'
     ' * Returns: 0; EFOO.\n */\nint conc_x_e(void);', 'Returns names EFOO'),
    ('/* An array. */\nint conc_x_table[4] = {1};', 'cannot parse declaration'),
    ('#pragmatic nonsense', 'unexpected directive'),
]


def self_test():
    """--check must pass a clean header and name each planted fault."""
    import tempfile
    fails = 0
    with tempfile.TemporaryDirectory() as tmp:
        def run(extra):
            os.makedirs(os.path.join(tmp, 'inc', 'conc'), exist_ok=True)
            with open(os.path.join(tmp, 'inc', 'conc', 'x.h'), 'w') as f:
                f.write(SELF_TEST_GOOD % extra)
            return subprocess.run(
                [sys.executable, os.path.abspath(__file__), '--check',
                 '--include', os.path.join(tmp, 'inc'),
                 '--out', os.path.join(tmp, 'out')],
                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        r = run('')
        if r.returncode != 0 or ' 0 warnings' not in r.stdout:
            print('FAIL: the clean header:\n' + r.stdout + r.stderr)
            fails += 1
        else:
            print('ok: clean header: ' + r.stdout.strip().splitlines()[-1])
        for extra, want in SELF_TEST_BAD:
            r = run(extra)
            if r.returncode == 0 or want not in r.stderr:
                print('FAIL: not caught: %r (wanted %r)\n%s' %
                      (extra, want, r.stderr))
                fails += 1
            else:
                print('ok: caught: ' + want)
        # the page checks see a page that groff warns about
        bad = os.path.join(tmp, 'bad.3')
        with open(bad, 'w') as f:
            f.write('.TH BAD 3\n.SH NAME\nbad \\- bad\n.XYZ undefined\n')
        w = Warnings()
        notes = check_pages([bad], w)
        if not shutil.which('groff') and not shutil.which('man'):
            print('note: neither groff nor man installed: ' + '; '.join(notes))
        elif not any('XYZ' in x for x in w.items):
            print('FAIL: the page checks missed an undefined macro: %s' % w.items)
            fails += 1
        else:
            print('ok: caught: a page with an undefined macro (%s)' %
                  ', '.join(n.split(':')[0] for n in notes))
    return 1 if fails else 0


# -------------------------------------------------------------------- main

def main():
    here = os.path.dirname(os.path.abspath(__file__))
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--include', default=os.path.join(here, '..', 'include'))
    ap.add_argument('--out', help='output directory (man3/ man7/ html/)')
    ap.add_argument('--check', action='store_true',
                    help='fail on any undocumented symbol or warning')
    ap.add_argument('--list', action='store_true',
                    help='print the pages that would be written')
    ap.add_argument('--self-test', action='store_true',
                    help='plant faults in a scratch header; --check must see them')
    a = ap.parse_args()
    if a.self_test:
        return self_test()
    warn = Warnings()
    headers = load(a.include, warn)

    syms = [(s, h) for h in headers for s in h.symbols]
    undocumented = [(s, h) for s, h in syms if not documented(s, h)]
    for s, h in undocumented:
        where = 'include/conc/%s:%d' % (s.header, s.line)
        warn(where, '%s (%s) has no documentation comment' % (s.name, s.kind))

    pages = []      # (relative path, text)
    lk = Linker([s.name for s, _ in syms if s.doc] +
                [h.page for h in headers])
    for h in headers:
        if h.fname != 'conc.h':
            pages.append(('man3/%s.3' % h.page, man_header(h, headers, lk)))
        for s in h.symbols:
            if s.doc:
                if s.name == h.page:
                    warn(s.header, '%s: its page would replace the header '
                         'overview' % s.name)
                    continue
                pages.append(('man3/%s.3' % s.name,
                              man_symbol(s, h, headers, lk)))
    pages.append(('man7/libconc.7', man_index(headers, lk)))
    names = [p for p, _ in pages]
    for p in set(names):
        if names.count(p) > 1:
            warn(p, 'written twice')

    if a.list:
        for p in names:
            print(p)
        return 0
    if not a.out:
        ap.error('--out DIR is required (except with --list)')
    for sub in ('man3', 'man7', 'html'):
        d = os.path.join(a.out, sub)
        if os.path.isdir(d):
            shutil.rmtree(d)
        os.makedirs(d)
    for rel, text in pages:
        with open(os.path.join(a.out, rel), 'w', encoding='utf-8') as f:
            f.write(text)
    html_path = os.path.join(a.out, 'html', 'index.html')
    write_html(headers, lk, html_path)

    if a.check:
        hc = HtmlCheck().run(html_path)
        for e in hc.errors:
            warn('html/index.html', e)
        for s, _ in syms:
            if s.doc and s.name not in hc.ids:
                warn('html/index.html', 'no anchor for %s' % s.name)
        notes = check_pages([os.path.join(a.out, p) for p in names], warn)
        for n in notes:
            print('docs: ' + n)
        fns = [s for s, _ in syms if s.kind == 'function']
        print('docs: %d functions, %d documented' %
              (len(fns), sum(1 for s in fns if s.doc)))
    for w in warn.items:
        print('gendocs: warning: ' + w, file=sys.stderr)
    print('docs: %d symbols, %d documented, %d warnings (%d pages, %s)' %
          (len(syms), len(syms) - len(undocumented), len(warn.items),
           len(pages), os.path.relpath(html_path)))
    return 1 if a.check and warn.items else 0


if __name__ == '__main__':
    sys.exit(main())
