#!/usr/bin/env python3
"""Two suite runs of the bucket-chain script (RUN/suite/N.jsonl: line N of both suite files) line
by line: per stage, the second run's time over the first's (eager and replayed), their geometric
means over the lines both ran, and every line where a stage moved by more than --threshold.
   compare.py RUN_A RUN_B [--threshold 0.02]"""
import json
import math
import pathlib
import sys

args = sys.argv[1:]
threshold = 0.02
if "--threshold" in args:
    i = args.index("--threshold")
    threshold = float(args[i + 1])
    del args[i:i + 2]
if len(args) != 2:
    sys.exit(__doc__)


def load(run):
    lines = {}
    for f in (pathlib.Path(run) / "suite").glob("*.jsonl"):
        name, stages = None, {}
        for line in f.read_text().splitlines():
            r = json.loads(line)
            if r.get("table") == "run":
                name = f"{r['workload']}, {r['shape']}"
            elif r.get("table") == "results" and r.get("time_us") is not None:
                stages[r["stage"]] = (r["time_us"], r["graph_us"])
        if name and stages:
            lines[int(f.stem)] = (name, stages)
    return lines


a, b = load(args[0]), load(args[1])
common = sorted(set(a) & set(b))
print(f"lines in both runs: {len(common)} (A: {len(a)}, B: {len(b)})")
gm = lambda xs: math.exp(sum(map(math.log, xs)) / len(xs))
stages = sorted({s for n in common for s in a[n][1]} & {s for n in common for s in b[n][1]})
for s in stages:
    eager = [b[n][1][s][0] / a[n][1][s][0] for n in common if s in a[n][1] and s in b[n][1]]
    graph = [b[n][1][s][1] / a[n][1][s][1] for n in common if s in a[n][1] and s in b[n][1]]
    print(f"{s}: B / A geometric mean eager {gm(eager):.4f}, replayed {gm(graph):.4f} over {len(eager)} lines")
print(f"\nlines where a stage moved by more than {threshold:.0%} (B / A eager; replayed):")
for n in common:
    moved = []
    for s in stages:
        if s in a[n][1] and s in b[n][1]:
            e = b[n][1][s][0] / a[n][1][s][0]
            g = b[n][1][s][1] / a[n][1][s][1]
            if abs(e - 1) > threshold or abs(g - 1) > threshold:
                moved.append(f"{s} {e:.3f}; {g:.3f}")
    if moved:
        print(f"  {n:3d} {a[n][0]}: " + ", ".join(moved))
