#!/usr/bin/env python3
"""reliability.py - gather the figures the reliability suites printed.

Every suite of the reliability work (issue 8) prints its figures as lines
    reliability: <row> | <figures>
on stdout; meson keeps each test's output in <build>/meson-logs/testlog.txt,
and scripts/test.sh adds one line per build (tests passed/failed, seconds) to
build/reliability-builds.txt (on-demand runs such as scripts/mutants.sh
write build/reliability-<name>.txt).  This script reads those and prints one
Markdown table, rows in the order the suites are listed below, one line per
row: the gcc build's figures, gcc TSan's where they differ (the sanitizer
scale), and the builds that printed the row; every build's own figures go to
build/reliability-table.md.  Nothing here is typed in by hand: a figure that no suite
printed is not in the table.

    scripts/reliability.py [BUILD_DIR...]      print the table
    scripts/reliability.py --readme [DIRS...]  also rewrite README.md between
                                               the reliability markers
Without BUILD_DIRs it reads build/test-*.
"""
import glob
import os
import platform
import re
import subprocess
import sys
import time

LINE = re.compile(r'^reliability: (.+?) \| (.*)$')
# Row order in the table: by the first word(s) of the row name.
ORDER = ['build', 'lincheck', 'models', 'sanitizers', 'stress', 'memory',
         'faults', 'fuzz', 'mutants', 'liveness', 'chaos']
BEGIN, END = '<!-- reliability:begin -->', '<!-- reliability:end -->'


TEST = re.compile(r'^test:\s+\S+ / (\S+)$')


def lines_of(path):
    """(row, figures) pairs; rows printed by a chaos-mode rerun of a suite
    (a meson test named *-chaos, CONC_CHAOS=1) are prefixed 'chaos ', so that
    they do not pass for the normal run's figures."""
    test = ''
    try:
        with open(path, errors='replace') as f:
            for raw in f:
                t = TEST.match(raw.strip())
                if t:
                    test = t.group(1)
                m = LINE.match(raw.strip())
                if m:
                    row = m.group(1).strip()
                    if test.endswith('-chaos') and not row.startswith('chaos'):
                        row = 'chaos ' + row
                    yield row, m.group(2).strip()
    except OSError:
        return


def gather(dirs):
    rows = {}  # (row, figures) -> [builds], first-seen order kept
    for d in dirs:
        build = os.path.basename(os.path.normpath(d))
        build = build[5:] if build.startswith('test-') else build
        for row, fig in lines_of(os.path.join(d, 'meson-logs', 'testlog.txt')):
            rows.setdefault((row, fig), [])
            if build not in rows[(row, fig)]:
                rows[(row, fig)].append(build)
    # build/reliability-builds.txt (scripts/test.sh), and the on-demand
    # runs' own files such as build/reliability-mutants.txt (mutants.sh)
    for path in sorted(glob.glob(os.path.join('build', 'reliability-*.txt'))):
        for row, fig in lines_of(path):
            rows.setdefault((row, fig), [])
    return rows


def rank(row):
    first = row.split()[0]
    return ORDER.index(first) if first in ORDER else len(ORDER)


def machine():
    model = ''
    try:
        with open('/proc/cpuinfo') as f:
            for line in f:
                if line.startswith('model name'):
                    model = line.split(':', 1)[1].strip()
                    break
    except OSError:
        pass
    return '%s %s, %d cores%s' % (platform.system(), platform.machine(),
                                 os.cpu_count() or 0,
                                 (', ' + model) if model else '')


def table(rows):
    """Every (row, figures) with the builds that printed it."""
    out = ['| suite | builds | figures (as the suite printed them) |',
           '|---|---|---|']
    items = sorted(rows.items(), key=lambda kv: rank(kv[0][0]))
    for (row, fig), builds in items:
        fig = fig.replace('|', '/')
        out.append('| %s | %s | %s |' % (row, ', '.join(builds) or '-', fig))
    return '\n'.join(out)


# The condensed table's two figure columns: the native gcc build (full
# scale) and gcc's ThreadSanitizer build (the sanitizer scale).
MAIN, SAN = 'gcc', 'tsan'


def condensed(rows):
    """One line per row name: the gcc build's figures, TSan's where they
    differ, and every build that printed the row."""
    by_row = {}
    for (row, fig), builds in rows.items():
        e = by_row.setdefault(row, {'figs': {}, 'builds': [], 'plain': None})
        if not builds:  # from a results file (test.sh's, mutants.sh's)
            e['plain'] = fig
        for b in builds:
            e['figs'].setdefault(b, fig)
            if b not in e['builds']:
                e['builds'].append(b)
    out = ['| suite | figures (gcc build, or the script) | gcc TSan build, where different | printed in |',
           '|---|---|---|---|']
    for row in sorted(by_row, key=lambda r: (rank(r), list(by_row).index(r))):
        e = by_row[row]
        main = e['plain'] or e['figs'].get(MAIN) or next(iter(e['figs'].values()), '')
        san = e['figs'].get(SAN, '')
        if san == main:
            san = 'same'
        builds = ', '.join(e['builds']) or '-'
        out.append('| %s | %s | %s | %s |' % (row, main.replace('|', '/'),
                                                 san.replace('|', '/') or '-', builds))
    return '\n'.join(out)


def main(argv):
    readme = '--readme' in argv
    dirs = [a for a in argv if not a.startswith('--')]
    if not dirs:
        dirs = sorted(d for d in glob.glob('build/test-*') if os.path.isdir(d))
    rows = gather(dirs)
    if not rows:
        print('reliability.py: no "reliability:" lines in %s' % ' '.join(dirs),
              file=sys.stderr)
        return 1
    try:
        rev = subprocess.run(['git', 'rev-parse', '--short', 'HEAD'],
                             capture_output=True, text=True).stdout.strip()
    except OSError:
        rev = ''
    head = ('Printed by the suites of `sh scripts/test.sh` on %s (commit %s), '
            '%s.' % (time.strftime('%Y-%m-%d'), rev or '?', machine()))
    body = head + '\n\n' + condensed(rows)
    full = head + '\n\n' + table(rows)
    print(body)
    os.makedirs('build', exist_ok=True)
    with open(os.path.join('build', 'reliability-table.md'), 'w') as f:
        f.write(full + '\n')
    print('\n(every build\'s own figures: build/reliability-table.md)')
    if readme:
        with open('README.md') as f:
            text = f.read()
        if BEGIN not in text or END not in text:
            print('reliability.py: README.md has no reliability markers',
                  file=sys.stderr)
            return 1
        pre, rest = text.split(BEGIN, 1)
        _, post = rest.split(END, 1)
        with open('README.md', 'w') as f:
            f.write(pre + BEGIN + '\n' + body + '\n' + END + post)
    return 0


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
