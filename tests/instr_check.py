#!/usr/bin/env python3
"""instr_check.py - the instruction-count guard (meson suite 'instr').

    instr_check.py --valgrind PATH --driver PATH --budget FILE OP...

Runs `driver OP N` under valgrind --tool=callgrind, counting only inside
instr_measured(), at two N; (Ir(N2) - Ir(N1)) / (N2 - N1) is the count per
operation.  Fails when an op costs more than its budget (tests/instr_budget.txt)
+ 20%, or has no budget line.  Times nothing, so it is stable on a loaded
machine; the counts do depend on the compiler and flags, which is why only
the plain gcc -O2 test build runs it.

CONC_INSTR_UPDATE=1 writes the measured figures into the budget file instead
(after a deliberate change in cost; commit the file with the change).

The ops are measured with chaos mode off (CONC_CHAOS is removed from the
driver's environment, whatever the caller exported): that is the cost every
user pays with the chaos switch compiled in.  With --chaos the ops are
measured once more with CONC_CHAOS=1, and both figures are printed as
`reliability:` lines (chaos off against the budget, and chaos on).
"""
import argparse
import os
import re
import subprocess
import sys
import tempfile

TOLERANCE = 0.20
N1, N2 = 2000, 12000


def callgrind_ir(valgrind, driver, op, n, chaos=False):
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "callgrind.out")
        cmd = [valgrind, "--tool=callgrind", "--callgrind-out-file=" + out,
               "--toggle-collect=instr_measured", "--error-exitcode=3",
               driver, op, str(n)]
        # meson sets MALLOC_PERTURB_, which makes malloc fill memory: not
        # the library's cost.
        env = {k: v for k, v in os.environ.items()
               if k not in ("MALLOC_PERTURB_", "CONC_CHAOS")}
        if chaos:
            env["CONC_CHAOS"] = "1"
        p = subprocess.run(cmd, capture_output=True, text=True, env=env)
        if p.returncode != 0:
            sys.stderr.write("instr: %s exited %d\n%s%s" % (" ".join(cmd), p.returncode,
                                                            p.stdout, p.stderr))
            return None
        with open(out) as f:
            for line in f:
                m = re.match(r"(?:totals|summary):\s+(\d+)", line)
                if m:
                    return int(m.group(1))
    sys.stderr.write("instr: no totals in callgrind's output for %s %d\n" % (op, n))
    return None


def read_budget(path):
    budget = {}
    with open(path) as f:
        for line in f:
            fields = line.split("#", 1)[0].split()
            if len(fields) >= 2:
                budget[fields[0]] = float(fields[1])
    return budget


def write_budget(path, measured):
    """Replace (or append) the lines of the measured ops; keep the rest."""
    with open(path) as f:
        lines = f.read().splitlines()
    done = set()
    for i, line in enumerate(lines):
        fields = line.split("#", 1)[0].split()
        if fields and fields[0] in measured:
            lines[i] = "%-20s %8.1f" % (fields[0], measured[fields[0]])
            done.add(fields[0])
    for op, v in measured.items():
        if op not in done:
            lines.append("%-20s %8.1f" % (op, v))
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--valgrind", required=True)
    ap.add_argument("--driver", required=True)
    ap.add_argument("--budget", required=True)
    ap.add_argument("--chaos", action="store_true",
                    help="also measure with CONC_CHAOS=1; print reliability: lines")
    ap.add_argument("ops", nargs="+")
    args = ap.parse_args()
    args.budget = os.path.normpath(args.budget)

    budget = read_budget(args.budget)
    measured, status = {}, 0
    print("%-20s %10s %10s %8s" % ("op", "Ir/op", "budget", "change"))
    for op in args.ops:
        a = callgrind_ir(args.valgrind, args.driver, op, N1)
        b = callgrind_ir(args.valgrind, args.driver, op, N2)
        if a is None or b is None:
            status = 1
            continue
        per_op = (b - a) / (N2 - N1)
        measured[op] = per_op
        if op not in budget:
            print("%-20s %10.1f %10s %8s  FAIL: no budget line; add `%s %.1f` to %s"
                  % (op, per_op, "-", "", op, per_op, args.budget))
            status = 1
            continue
        change = per_op / budget[op] - 1
        verdict = ""
        if change > TOLERANCE:
            verdict = "  FAIL: more than %d%% over budget" % (TOLERANCE * 100)
            status = 1
        elif change < -TOLERANCE:
            verdict = "  (well under budget: lower it with CONC_INSTR_UPDATE=1)"
        print("%-20s %10.1f %10.1f %+7.1f%%%s" % (op, per_op, budget[op], 100 * change, verdict))
    if args.chaos and measured:
        on = {}
        for op in measured:
            a = callgrind_ir(args.valgrind, args.driver, op, N1, chaos=True)
            b = callgrind_ir(args.valgrind, args.driver, op, N2, chaos=True)
            if a is None or b is None:
                status = 1
                continue
            on[op] = (b - a) / (N2 - N1)
        if status == 0:
            # off: what every user pays with the switch compiled in, next
            # to the budget (recorded without it); on: CONC_CHAOS=1.
            print("reliability: chaos off cost | Ir/op off (budget): " +
                  ", ".join("%s %.1f (%.1f)" % (op, v, budget.get(op, float("nan")))
                            for op, v in measured.items()))
            print("reliability: chaos on cost | Ir/op with CONC_CHAOS=1: " +
                  ", ".join("%s %.1f" % (op, v) for op, v in on.items()))
            sys.stdout.flush()
    if os.environ.get("CONC_INSTR_UPDATE") == "1" and measured:
        write_budget(args.budget, measured)
        print("instr: wrote %d figures to %s" % (len(measured), args.budget))
        return 0
    if status:
        print("instr: a rise over budget is a real cost increase (or a different compiler/flags);"
              " if it is deliberate, rerun with CONC_INSTR_UPDATE=1 and commit %s" % args.budget)
    return status


if __name__ == "__main__":
    sys.exit(main())
