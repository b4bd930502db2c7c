#!/usr/bin/env python3
"""report.py - one report over every bench_<name>.json in a results dir.

    scripts/report.py DIR                    combined table, per-workload JSON, PNG plots
    scripts/report.py DIR --compare OLD_DIR  ... and what changed since OLD_DIR
    scripts/report.py --readme DIR           rewrite README.md between the bench markers
    scripts/report.py --readme DIR --print   only print that section

DIR holds what scripts/bench.sh wrote: bench_<name>.json from each binary
(bench/harness.c writes them: the machine and build facts, then one entry per
implementation per row).  The report

  - prints ONE table over all binaries: workload, threads, libconc, each peer
    with its ratio (peer time / libconc time: > 1 means libconc is faster),
    and whether every implementation's result verified;
  - writes DIR/<workload-slug>.json: the facts plus that workload's rows;
  - draws with gnuplot DIR/<workload-slug>.png for every workload measured at
    two or more thread counts (one line per implementation, min-max bars) and
    DIR/ratios.png (one bar per peer per row, log scale, a line at 1.0;
    and ratios-<binary>.png, the same for each binary alone);
  - with --compare OLD_DIR, lists each (workload, threads, impl) old -> new
    and marks slowdowns over 10% as REGRESSION.

Exits 1 if any result did not verify (or the dir has no results), 2 on bad
usage.  Python 3 standard library only.
"""
import argparse
import glob
import json
import math
import os
import re
import shutil
import subprocess
import sys
import tempfile

BEGIN, END = "<!-- bench:begin -->", "<!-- bench:end -->"
REGRESSION = 0.10  # a slowdown above this is marked


# ---- loading ---------------------------------------------------------------

class Run:
    """One binary's JSON: its facts and its rows (grouped by workload and
    thread count, implementations in the order the binary ran them)."""

    def __init__(self, path):
        with open(path) as f:
            data = json.load(f)
        self.path = path
        self.facts = {k: v for k, v in data.items() if k != "rows"}
        self.binary = data.get("binary") or os.path.basename(path)[:-5]
        self.entries = data.get("rows", [])
        self.rows = []  # [(workload, threads, [entry, ...])]
        index = {}
        for e in self.entries:
            key = (e["workload"], e["threads"])
            if key not in index:
                index[key] = len(self.rows)
                self.rows.append((e["workload"], e["threads"], []))
            self.rows[index[key]][2].append(e)


def load(directory):
    paths = sorted(glob.glob(os.path.join(directory, "bench_*.json")))
    order = ["epoch", "queue", "stack", "chan", "pool", "scope", "parallel", "algo", "park"]

    def rank(p):
        name = os.path.basename(p)[len("bench_"):-len(".json")]
        return (order.index(name) if name in order else len(order), name)

    return [Run(p) for p in sorted(paths, key=rank)]


# ---- numbers ---------------------------------------------------------------

def fmt(v):
    """4 significant digits, never an exponent (as bench/harness.c)."""
    if v is None or not math.isfinite(v):
        return "-"
    if v >= 1000:
        return "%.0f" % v
    if v >= 100:
        return "%.1f" % v
    if v >= 10:
        return "%.2f" % v
    return "%.3f" % v


def shown(e, seconds):
    """A time converted to the row's unit."""
    if not seconds:
        return None
    ops = e.get("ops")
    if e["unit"] == "M/s":
        return ops / seconds / 1e6 if ops else None
    if e["unit"] == "ns":
        return seconds * 1e9 / ops if ops else None
    return seconds * 1e3


def higher_is_better(unit):
    return unit == "M/s"


def slowdown(unit, old, new):
    """How much longer the new run takes per op (0.1 = 10% slower)."""
    if not old or not new:
        return None
    return old / new - 1 if higher_is_better(unit) else new / old - 1


def slug(text):
    s = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
    return s or "workload"


# ---- the combined table ----------------------------------------------------

def cell(e):
    if e.get("missing"):  # a peer that could not be built (bench/harness.h)
        return "missing"
    return "%s %s" % (fmt(e.get("value")), e["unit"])


def ratio_text(e):
    r = e.get("ratio")
    return "-" if r is None else "%.2f" % r


def row_verified(entries):
    bad = [e["impl"] for e in entries if not e.get("verified")]
    return ("NO: " + ", ".join(bad)) if bad else "yes"


def table(runs):
    """Lines of the combined table.  A header line (the implementations'
    names) opens each group of rows that share the same implementations."""
    lines = []
    wl = max([len("workload")] + [len(r.binary) for r in runs] +
             [len(w) for r in runs for w, _, _ in r.rows])
    width = {}  # column position -> width (names and values)
    for r in runs:
        for _, _, es in r.rows:
            for i, e in enumerate(es):
                width[i] = max(width.get(i, 8), len(cell(e)), len(e["impl"]))
    prev = None
    for r in runs:
        for w, t, es in r.rows:
            impls = [e["impl"] for e in es]
            if (r.binary, impls) != prev:
                prev = (r.binary, impls)
                head = "%-*s %4s  %-*s" % (wl, r.binary, "thr", width[0], impls[0])
                for i, name in enumerate(impls[1:], 1):
                    head += "  %-*s %6s" % (width[i], name, "ratio")
                lines.append("")
                lines.append(head + "  ok")
            line = "%-*s %4d  %-*s" % (wl, w, t, width[0], cell(es[0]))
            for i, e in enumerate(es[1:], 1):
                line += "  %-*s %6s" % (width[i], cell(e), ratio_text(e))
            lines.append(line + "  " + row_verified(es))
    return lines


def machine_line(runs):
    f = runs[0].facts
    cpus = "%s CPUs online, %s in the affinity mask" % (
        f.get("cpus_online", "?"), f.get("cpus_affinity", "?"))
    return "%s (%s), Linux %s %s" % (f.get("cpu_model", "?"), cpus,
                                    f.get("kernel", "?"), f.get("machine", ""))


def compiler_line(runs):
    f = runs[0].facts
    return "%s, %s" % (f.get("compiler_id") or f.get("compiler", "?"),
                       f.get("cflags", "?"))


def peers_line(runs):
    p = runs[0].facts.get("peers") or {}
    names = {"liburcu": "liburcu", "ck": "ck", "glib-2.0": "GLib", "openmp": "OpenMP"}
    return ", ".join("%s %s" % (names.get(k, k), v) for k, v in p.items())


def run_date(runs, directory):
    d = runs[0].facts.get("date", "")
    return d[:10] if d else os.path.basename(os.path.normpath(directory))


def modes(runs):
    return sorted({r.facts.get("mode", "?") for r in runs})


# ---- per-workload files ----------------------------------------------------

def split(runs, directory):
    """DIR/<slug>.json per workload: the binary's facts plus its rows."""
    written, taken = [], {}
    for r in runs:
        by_workload = {}
        for e in r.entries:
            by_workload.setdefault(e["workload"], []).append(e)
        for w, entries in by_workload.items():
            name = slug(w)
            if taken.get(name, r.binary) != r.binary:  # the same name elsewhere
                name = slug(r.binary + " " + w)
            taken[name] = r.binary
            doc = dict(r.facts)
            doc["workload"] = w
            doc["rows"] = entries
            path = os.path.join(directory, name + ".json")
            with open(path, "w") as f:
                json.dump(doc, f, indent=1)
                f.write("\n")
            written.append(path)
    return written


# ---- plots -----------------------------------------------------------------

def gp_str(s):
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def gnuplot(script, what):
    with tempfile.NamedTemporaryFile("w", suffix=".gp", delete=False) as f:
        f.write(script)
        name = f.name
    try:
        p = subprocess.run(["gnuplot", name], capture_output=True, text=True)
    finally:
        os.unlink(name)
    if p.returncode != 0:
        sys.stderr.write("report: gnuplot failed on %s:\n%s" % (what, p.stderr))
        return False
    return True


FONT = 'font "DejaVu Sans,11"'


def plot_threads(run, workload, entries, path):
    """Value against thread count, one line per implementation, with the
    min-max range as error bars."""
    impls = []
    for e in entries:
        if e["impl"] not in impls:
            impls.append(e["impl"])
    threads = sorted({e["threads"] for e in entries})
    unit = entries[0]["unit"]
    ylabel = {"M/s": "million ops per second (higher is better)",
              "ns": "ns per op (lower is better)",
              "ms": "ms (lower is better)"}.get(unit, unit)
    out = ["set terminal pngcairo size 960,600 enhanced %s" % FONT,
           "set output %s" % gp_str(path),
           "set title %s noenhanced" % gp_str("%s: %s" % (run.binary, workload)),
           "set xlabel 'threads'", "set ylabel %s" % gp_str(ylabel),
           "set logscale x 2", "set xrange [%g:%g]" % (threads[0] / 1.3, threads[-1] * 1.3),
           "set xtics (%s)" % ", ".join('"%d" %d' % (t, t) for t in threads),
           "set grid", "set key outside right top noenhanced", "set pointsize 1.3"]
    values = [e["value"] for e in entries if e.get("value")]
    if values and max(values) > 20 * min(values):  # one line would flatten the rest
        out += ["set logscale y", "set ylabel %s" % gp_str(ylabel + ", log scale")]
    else:
        out.append("set yrange [0:*]")
    blocks, plots = [], []
    for i, name in enumerate(impls):
        pts = []
        for e in sorted((e for e in entries if e["impl"] == name), key=lambda e: e["threads"]):
            a, b = shown(e, e.get("min_s")), shown(e, e.get("max_s"))
            v = e.get("value")
            if v is None or a is None or b is None:
                continue
            pts.append("%d %g %g %g" % (e["threads"], v, min(a, b), max(a, b)))
        if not pts:
            continue
        blocks.append("$d%d << EOD\n%s\nEOD" % (i, "\n".join(pts)))
        lw = 2.5 if i == 0 else 1.5
        plots.append("$d%d using 1:2:3:4 with yerrorlines lw %g pt %d title %s"
                     % (i, lw, 7 if i == 0 else 5 + i, gp_str(name)))
    if not plots:
        return False
    return gnuplot("\n".join(blocks + out) + "\nplot " + ", \\\n  ".join(plots) + "\n", path)


def tics125(lo, hi):
    """1-2-5 steps from lo to hi (a log axis labelled where people read)."""
    out, e = [], math.floor(math.log10(lo))
    while 10 ** e <= hi:
        for m in (1, 2, 5):
            v = float("%.6g" % (m * 10 ** e))
            if lo <= v <= hi:
                out.append(v)
        e += 1
    return out


def plot_ratios(runs, path, title):
    """One bar per peer per row (peer time / libconc time), log y, a line at
    1.0; bars of one row stand together, a peer keeps its colour."""
    groups = []  # (label, [(peer, ratio)])
    for r in runs:
        short = r.binary[len("bench_"):] if r.binary.startswith("bench_") else r.binary
        for w, t, es in r.rows:
            bars = [(e["impl"], e["ratio"]) for e in es[1:] if e.get("ratio")]
            if bars:
                name = w if w.lower().startswith(short.lower()) else "%s: %s" % (short, w)
                groups.append(("%s, %d thr" % (name, t), bars))
    if not groups:
        return False
    peers = []
    for _, bars in groups:
        for p, _ in bars:
            if p not in peers:
                peers.append(p)
    x, tics, data = 0.0, [], {p: [] for p in peers}
    ratios = [v for _, bars in groups for _, v in bars]
    for label, bars in groups:
        start = x
        for p, v in bars:
            data[p].append("%g %g" % (x, v))
            x += 1
        tics.append("%s %g" % (gp_str(label), (start + x - 1) / 2))
        x += 1.2  # gap between rows
    lo = min(min(ratios), 1.0) / 1.5
    hi = max(max(ratios), 1.0) * 1.5
    longest = max(len(label) for label, _ in groups)
    width = max(1000, int(x * 20) + 420)
    height = max(480 + int(longest * 4.2), int(width * 0.4))
    out = ["set terminal pngcairo size %d,%d enhanced %s" % (width, height, FONT),
           "set output %s" % gp_str(path),
           "set title %s noenhanced" % gp_str(title),
           "set ylabel 'peer time / libconc time  (> 1: libconc is faster)'",
           "set logscale y", "set yrange [%g:%g]" % (lo, hi),
           "set ytics (%s)" % ", ".join('"%g" %g' % (v, v) for v in tics125(lo, hi)),
           "set xrange [-1:%g]" % x, "set grid ytics",
           "set style fill solid 0.85 border -1",
           "set xtics rotate by -35 left noenhanced font ',10' (%s)" % ", ".join(tics),
           "set rmargin 34",
           "set key outside right top noenhanced",
           "set arrow from graph 0, first 1 to graph 1, first 1 nohead lw 2 lc rgb 'black' front"]
    blocks, plots = [], []
    palette = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b",
               "#e377c2", "#7f7f7f", "#bcbd22", "#17becf", "#aec7e8", "#ffbb78",
               "#98df8a", "#ff9896", "#c5b0d5", "#c49c94", "#f7b6d2", "#c7c7c7",
               "#dbdb8d", "#9edae5", "#393b79", "#637939", "#8c6d31", "#843c39"]
    for i, p in enumerate(peers):
        blocks.append("$r%d << EOD\n%s\nEOD" % (i, "\n".join(data[p])))
        # a bar from 1.0 to the ratio: up where libconc is faster
        plots.append("$r%d using 1:2:($1-0.45):($1+0.45):(1):2 with boxxyerror lc rgb '%s' title %s"
                     % (i, palette[i % len(palette)], gp_str(p)))
    return gnuplot("\n".join(blocks + out) + "\nplot " + ", \\\n  ".join(plots) + "\n", path)


def plots(runs, directory):
    if not shutil.which("gnuplot"):
        sys.stderr.write("report: gnuplot not found (Debian: gnuplot-nox); no plots\n")
        return []
    made = []
    for r in runs:
        by_workload = {}
        for e in r.entries:
            by_workload.setdefault(e["workload"], []).append(e)
        for w, entries in by_workload.items():
            if len({e["threads"] for e in entries}) < 2:
                continue
            path = os.path.join(directory, slug(w) + ".png")
            if plot_threads(r, w, entries, path):
                made.append(path)
    date = run_date(runs, directory)
    path = os.path.join(directory, "ratios.png")
    if plot_ratios(runs, path, "libconc against its peers, %s" % date):
        made.append(path)
    if len(runs) > 1:  # and one per binary, where the bars are few and wide
        for r in runs:
            path = os.path.join(directory, "ratios-%s.png" % slug(r.binary))
            if plot_ratios([r], path, "%s against its peers, %s" % (r.binary, date)):
                made.append(path)
    return made


# ---- compare ---------------------------------------------------------------

def compare(runs, old_runs):
    old = {}
    for r in old_runs:
        for e in r.entries:
            old[(e["workload"], e["threads"], e["impl"])] = e
    lines, regressions, seen = [], 0, set()
    wl = max([len("workload")] + [len(e["workload"]) for r in runs for e in r.entries])
    il = max([len("impl")] + [len(e["impl"]) for r in runs for e in r.entries])
    lines.append("%-*s %4s  %-*s %12s %12s %8s" % (wl, "workload", "thr", il, "impl",
                                                  "old", "new", "slower"))
    for r in runs:
        for e in r.entries:
            key = (e["workload"], e["threads"], e["impl"])
            seen.add(key)
            o = old.get(key)
            if o is None:
                lines.append("%-*s %4d  %-*s %12s %12s %8s  new" % (
                    wl, key[0], key[1], il, key[2], "-", cell(e), ""))
                continue
            if o["unit"] != e["unit"]:
                lines.append("%-*s %4d  %-*s %12s %12s %8s  unit changed" % (
                    wl, key[0], key[1], il, key[2], cell(o), cell(e), ""))
                continue
            s = slowdown(e["unit"], o.get("value"), e.get("value"))
            mark = ""
            if s is not None and s > REGRESSION:
                mark = "  REGRESSION"
                regressions += 1
            lines.append("%-*s %4d  %-*s %12s %12s %8s%s" % (
                wl, key[0], key[1], il, key[2], cell(o), cell(e),
                "-" if s is None else "%+.1f%%" % (100 * s), mark))
    for key, o in old.items():
        if key not in seen:
            lines.append("%-*s %4d  %-*s %12s %12s %8s  gone" % (
                wl, key[0], key[1], il, key[2], cell(o), "-", ""))
    lines.append("%d regression%s over %d%% (slower = time per op, new/old - 1)"
                 % (regressions, "" if regressions == 1 else "s", int(REGRESSION * 100)))
    return lines


# ---- README ----------------------------------------------------------------

def md_escape(s):
    return s.replace("|", "\\|")


def readme_section(runs, directory):
    date = run_date(runs, directory)
    mode = "/".join(modes(runs))
    command = "scripts/bench.sh" + (" --full" if mode == "full" else "")
    rel = os.path.relpath(directory)
    f = runs[0].facts
    out = [BEGIN,
           "<!-- generated by scripts/report.py --readme %s; edit the script, not this -->" % rel,
           "",
           "Run of %s, `%s` (%s mode), on %s; compiled by %s `%s`; peers: %s."
           % (date, command, mode, machine_line(runs), f.get("compiler_id") or f.get("compiler", "?"),
              f.get("cflags", "?"), peers_line(runs)),
           "Each figure is the median of the repetitions; ratio = peer time / libconc time"
           " (> 1: libconc is faster); every result was verified.",
           "Plots and per-workload JSON: `%s/` (`ratios.png`, one PNG per thread sweep)." % rel]
    for r in runs:
        prev = None
        for w, t, es in r.rows:
            impls = [e["impl"] for e in es]
            if impls != prev:
                prev = impls
                out += ["", "`%s`" % r.binary, ""]
                head = "| workload | threads | %s |" % md_escape(impls[0])
                for name in impls[1:]:
                    head += " %s | ratio |" % md_escape(name)
                out.append(head + " verified |")
                out.append("|---|---:|" + "---:|" * (1 + 2 * (len(impls) - 1)) + "---|")
            line = "| %s | %d | %s |" % (md_escape(w), t, cell(es[0]))
            for e in es[1:]:
                line += " %s | %s |" % (cell(e), ratio_text(e))
            out.append(line + " %s |" % row_verified(es))
    out.append("")
    out.append(END)
    return "\n".join(out) + "\n"


def update_readme(path, section):
    with open(path) as f:
        text = f.read()
    b, e = text.find(BEGIN), text.find(END)
    if b < 0 or e < b:
        sys.stderr.write("report: %s has no %s ... %s markers\n" % (path, BEGIN, END))
        return False
    text = text[:b] + section.rstrip("\n") + text[e + len(END):]
    with open(path, "w") as f:
        f.write(text)
    return True


# ---- main ------------------------------------------------------------------

def main():
    ap = argparse.ArgumentParser(description="libconc bench report")
    ap.add_argument("dir", help="results dir (bench_<name>.json files)")
    ap.add_argument("--compare", metavar="OLD_DIR", help="an earlier results dir")
    ap.add_argument("--readme", action="store_true",
                    help="rewrite the README's results section from DIR")
    ap.add_argument("--readme-file", default=None, help="default: README.md of the repo")
    ap.add_argument("--print", action="store_true", help="with --readme: print the section only")
    ap.add_argument("--no-plots", action="store_true")
    args = ap.parse_args()

    runs = load(args.dir)
    if not runs:
        sys.stderr.write("report: no bench_*.json in %s\n" % args.dir)
        return 1
    unverified = [(r.binary, w, t) for r in runs for w, t, es in r.rows
                  if row_verified(es) != "yes"]

    if args.readme:
        if unverified:
            sys.stderr.write("report: %d rows did not verify; the README keeps its old section\n"
                             % len(unverified))
            return 1
        section = readme_section(runs, args.dir)
        if args.print:
            sys.stdout.write(section)
            return 0
        path = args.readme_file or os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                                "..", "README.md")
        if not update_readme(path, section):
            return 1
        print("report: %s updated from %s" % (os.path.normpath(path), args.dir))
        return 0

    print("libconc bench, %s (%s mode): %s" % (run_date(runs, args.dir), "/".join(modes(runs)),
                                               machine_line(runs)))
    print("compiler: %s" % compiler_line(runs))
    print("peers: %s" % peers_line(runs))
    print("value: median; ratio = peer time / libconc time (> 1: libconc is faster)")
    for line in table(runs):
        print(line)
    files = split(runs, args.dir)
    pngs = [] if args.no_plots else plots(runs, args.dir)
    print()
    print("wrote %d per-workload JSON files and %d plots in %s%s" % (
        len(files), len(pngs), args.dir,
        (" (" + ", ".join(os.path.basename(p) for p in pngs) + ")") if pngs else ""))
    if args.compare:
        old_runs = load(args.compare)
        print()
        if not old_runs:
            print("compare: no bench_*.json in %s" % args.compare)
        else:
            print("changes since %s (%s):" % (args.compare, run_date(old_runs, args.compare)))
            for line in compare(runs, old_runs):
                print(line)
    if unverified:
        print()
        for b, w, t in unverified:
            print("FAILED: %s: %s, %d threads did not verify" % (b, w, t))
        return 1
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except BrokenPipeError:
        sys.exit(1)
