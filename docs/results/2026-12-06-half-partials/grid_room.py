#!/usr/bin/env python3
"""How much of each row bound the GPU test grids use with and without 16-bit partials: per stage
test log of a tests.sh run (RUN_FOLDER/test-test_NN_SLUG.log), the largest worst-row error /
bound over the eager checks of the cases with ", 16-bit partials" in their name, and over the same
cases without it (the default grids: boundary, tree, shapes; the other grids' cases left out).
   grid_room.py RUN_FOLDER"""
import pathlib
import re
import sys

if len(sys.argv) != 2:
    sys.exit(__doc__)
line_re = re.compile(r"^(\S+)\s+(.*?)\s+(PASS|FAIL) .*?rel L2 ([0-9.e+-]+) \(bound ([0-9.e+-]+)\)")
print("| stage | cases | fp32 partials: largest worst row / bound | 16-bit: largest worst row / bound | 16-bit verdicts |")
print("| --- | ---: | ---: | ---: | --- |")
for log in sorted(pathlib.Path(sys.argv[1]).glob("test-test_0[4-9]_*.log")):
    fp32, half = {}, {}
    verdicts = set()
    for line in log.read_text().splitlines():
        m = line_re.match(line)
        if not m:
            continue
        name, use = m.group(2).strip(), float(m.group(4)) / float(m.group(5))
        if name.endswith(", 16-bit partials"):
            half[name[: -len(", 16-bit partials")]] = max(use, half.get(name, 0.0))
            verdicts.add(m.group(3))
        else:
            fp32.setdefault(name, use)  # the first (default-grid) run of a case name
    both = [n for n in half if n in fp32]
    print(f"| {log.stem.split('_', 2)[2]} | {len(both)} | {max(fp32[n] for n in both):.3f} | "
          f"{max(half[n] for n in both):.3f} | {', '.join(sorted(verdicts))} |")
