#!/usr/bin/env python3
"""Arithmetic, not a measurement: issue 12's 67 lines on the H200 with --half-partials, from the
H200 run of main (../2026-12-05-head-suite, run 3, 3168af6: each line's percent of the copy
bandwidth on unique bytes, as ../2026-12-06-cpu-partial-bytes/table.md lists it) divided by this
folder's measured stage-8 time ratio B / A (an H100) where the line was measured, and elsewhere by
1 - f x 0.496 x (the partials' share of the line's model bytes), f being the fraction of the
proportional saving the measured lines realised (their geometric mean's saving over the sized
one's). Prints the median and the count below 50% before and after.
   h200_arithmetic.py RUN_FOLDER"""
import math
import pathlib
import statistics
import subprocess
import sys

HERE = pathlib.Path(__file__).resolve().parent
if len(sys.argv) != 2:
    sys.exit(__doc__)
rows = {}
for line in (HERE.parent / "2026-12-06-cpu-partial-bytes" / "table.md").read_text().splitlines():
    c = [x.strip() for x in line.strip().strip("|").split("|")]
    if len(c) == 6 and c[4].isdigit():
        rows[int(c[4])] = (float(c[0]), float(c[1]), c[5])
out = subprocess.run([sys.executable, str(HERE / "table.py"), sys.argv[1]], capture_output=True, text=True,
                     check=True).stdout
measured = {}
for line in out.splitlines():
    c = [x.strip() for x in line.strip().strip("|").split("|")]
    if len(c) == 7 and c[0].isdigit():
        measured[int(c[0])] = float(c[4])  # stage 8 B / A
ns = [n for n in measured if n in rows]
gm = math.exp(sum(math.log(measured[n]) for n in ns) / len(ns))
sized = math.exp(sum(math.log(1 - 0.496 * rows[n][1]) for n in ns) / len(ns))
f = (1 - gm) / (1 - sized)
before = [rows[n][0] for n in rows]
after = []
for n, (pct, share, _) in rows.items():
    r = measured.get(n, 1 - f * 0.496 * share)
    after.append(pct / r)
print(f"lines: {len(rows)}; measured here: {len(ns)} (geometric mean B / A {gm:.3f}, sized {sized:.3f}: f = {f:.2f})")
print(f"H200 median, fp32 partials (run 3): {statistics.median(before):.1f}%, below 50%: {sum(p < 50 for p in before)}")
print(f"H200 median by this arithmetic, 16-bit partials: {statistics.median(after):.1f}%, below 50%: "
      f"{sum(p < 50 for p in after)}, lowest {min(after):.1f}%")
