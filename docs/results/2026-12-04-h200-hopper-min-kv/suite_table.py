#!/usr/bin/env python3
"""A suite run's summary from RUN_FOLDER/suite/N.jsonl (stages 7 and 8, and 6 when the run has it;
eager and graph): per pair (8/7, 7/6) and mode, the workloads, the geometric mean of the ratio and
every workload where the later stage is more than 3% slower, worst first. Several RUN_FOLDERs are
read as one run (a suite spread over calls: line N from the last folder that has it).
   suite_table.py RUN_FOLDER..."""
import json
import math
import pathlib
import sys

if len(sys.argv) < 2 or any(a.startswith("-") for a in sys.argv[1:]):
    sys.exit(__doc__)
files = {int(f.stem): f for folder in sys.argv[1:] for f in (pathlib.Path(folder) / "suite").glob("*.jsonl")}
lines = {}
for f in (files[n] for n in sorted(files)):
    t, cmd = {}, None
    for line in f.read_text().splitlines():
        r = json.loads(line)
        if r.get("table") == "results" and r.get("time_us") is not None:
            t[r["stage"]] = r
    if "pat" in t:
        lines[int(f.stem)] = t
suite = [ln.split("#")[0].strip() for p in ("tools/suite.txt", "tools/suite-categories.txt")
         for ln in (pathlib.Path(__file__).resolve().parents[3] / p).read_text().splitlines()]
suite = [w for w in suite if w]
print(f"suite: {len(lines)} workload lines with stage 7")
pairs = [("8/7", "hopper", "pat")]
if any("multistream" in t for t in lines.values()):
    pairs.insert(0, ("7/6", "pat", "multistream"))
for label, num, den in pairs:
    for mode, key in (("eager", "time_us"), ("graph", "graph_us")):
        r = {n: t[num][key] / t[den][key] for n, t in lines.items() if num in t and den in t}
        gm = math.exp(sum(math.log(x) for x in r.values()) / len(r)) if r else float("nan")
        over = sorted(((x, n) for n, x in r.items() if x > 1.03), reverse=True)
        print(f"\n{label} {mode}: {len(r)} workloads, geometric mean {gm:.4f}, more than 3% slower on {len(over)}")
        for x, n in over:
            print(f"  {x:.3f}  {suite[n - 1]}")
