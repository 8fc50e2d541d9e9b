#!/usr/bin/env python3
"""Arithmetic, not a measurement: issue 12's 67 lines on the H200 at main's two new defaults, from
the H200 run of the code before them (../2026-12-05-head-suite, run 3, 3168af6: each line's stage-8
percent of the copy bandwidth on unique bytes, as ../2026-12-06-cpu-partial-bytes/table.md lists
it), divided by each line's stage-8 time ratios measured on an H100: 16-bit partials over fp32
(../2026-12-06-half-partials, run 5, all 67 lines) and, where rule 5 gives stage 8 tails (lines 48
and 56), tails over none (this folder's run 1, both sides with 16-bit partials). Prints the median
and the lines below 50% before and after: the prediction for the next H200 run of issue 12's lines.
   predict_h200.py"""
import pathlib
import statistics
import subprocess
import sys

HERE = pathlib.Path(__file__).resolve().parent
RESULTS = HERE.parent
if len(sys.argv) != 1:
    sys.exit(__doc__)
h200 = {}
for line in (RESULTS / "2026-12-06-cpu-partial-bytes" / "table.md").read_text().splitlines():
    c = [x.strip() for x in line.strip().strip("|").split("|")]
    if len(c) == 6 and c[4].isdigit():
        h200[int(c[4])] = float(c[0])
half_dir = RESULTS / "2026-12-06-half-partials"
out = subprocess.run([sys.executable, str(half_dir / "all_lines.py"), str(half_dir / "h100all"),
                      str(half_dir / "h100all2")], capture_output=True, text=True, check=True).stdout
partials = {}
for line in out.splitlines():
    c = [x.strip() for x in line.strip().strip("|").split("|")]
    if len(c) == 6 and c[0].isdigit():
        partials[int(c[0])] = float(c[2])  # stage 8 B / A
out = subprocess.run([sys.executable, str(HERE / "ab_table.py"), str(HERE / "r1")], capture_output=True, text=True,
                     check=True).stdout
tails_of_workload = {}
for line in out.splitlines():
    c = [x.strip() for x in line.strip().strip("|").split("|")]
    if len(c) == 7 and c[0].isdigit() and c[2] == "hopper":
        tails_of_workload[int(c[0])] = float(c[4])
tails = {48: tails_of_workload[6], 56: tails_of_workload[7]}  # run.sh's workloads 6 and 7 are lines 48 and 56
missing = sorted(set(h200) - set(partials))
if missing:
    sys.exit(f"predict_h200.py: no run-5 ratio for lines {missing}")
before = list(h200.values())
after = {n: pct / (partials[n] * tails.get(n, 1.0)) for n, pct in h200.items()}
print(f"lines: {len(h200)}; 16-bit partials measured on all; tails on lines {sorted(tails)} "
      f"({', '.join(f'{tails[n]:.3f}' for n in sorted(tails))})")
print(f"H200, code before the defaults (run 3): median {statistics.median(before):.1f}%, "
      f"below 50%: {sum(p < 50 for p in before)}, lowest {min(before):.1f}%")
print(f"H200 by this arithmetic, both defaults: median {statistics.median(after.values()):.1f}%, "
      f"below 50%: {sum(p < 50 for p in after.values())}, lowest {min(after.values()):.1f}%")
for n in sorted(tails):
    print(f"  line {n}: {h200[n]:.1f}% -> {after[n]:.1f}%")
