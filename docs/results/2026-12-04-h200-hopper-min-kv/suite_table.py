#!/usr/bin/env python3
"""A suite run's summary from RUN_FOLDER/suite/N.jsonl (stages 7 and 8, eager and graph): per mode,
the workloads, the geometric mean of stage 8 / stage 7 and every workload where stage 8 is more
than 3% slower, worst first.
   suite_table.py RUN_FOLDER"""
import json
import math
import pathlib
import sys

folder = pathlib.Path(sys.argv[1]) / "suite"
lines = {}
for f in sorted(folder.glob("*.jsonl"), key=lambda f: int(f.stem)):
    t, cmd = {}, None
    for line in f.read_text().splitlines():
        r = json.loads(line)
        if r.get("table") == "results" and r.get("time_us") is not None:
            t[r["stage"]] = r
    if "pat" in t and "hopper" in t:
        lines[int(f.stem)] = t
suite = [ln.split("#")[0].strip() for p in ("tools/suite.txt", "tools/suite-categories.txt")
         for ln in (pathlib.Path(__file__).resolve().parents[3] / p).read_text().splitlines()]
suite = [w for w in suite if w]
print(f"suite: {len(lines)} workload lines with stages 7 and 8")
for mode, key in (("eager", "time_us"), ("graph", "graph_us")):
    r = {n: t["hopper"][key] / t["pat"][key] for n, t in lines.items()}
    gm = math.exp(sum(math.log(x) for x in r.values()) / len(r)) if r else float("nan")
    over = sorted(((x, n) for n, x in r.items() if x > 1.03), reverse=True)
    print(f"\n8/7 {mode}: {len(r)} workloads, geometric mean {gm:.3f}, more than 3% slower on {len(over)}")
    for x, n in over:
        print(f"  {x:.3f}  {suite[n - 1]}")
