#!/usr/bin/env python3
"""The A/B table of a run of this folder (RUN_FOLDER/ab-N-SIDE-K.jsonl as run.sh writes them):
per workload and stage, A's eager time (median of its two runs), B / A eager and replayed (B: the
default, leaf tails; A: --no-take-leaves), B's check; then geometric means.
   ab_table.py RUN_FOLDER"""
import math
import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[3] / "tools"))
import bench_rows  # noqa: E402

if len(sys.argv) != 2:
    sys.exit(__doc__)
ab = bench_rows.read_ab([sys.argv[1]])
print("| # | workload | stage | A us (eager) | B / A eager | B / A replayed | B's check |")
print("| ---: | --- | --- | ---: | ---: | ---: | --- |")
by_stage = {}
for (n, stage) in sorted(ab.rows):
    e = ab.ratio(n, stage)
    by_stage.setdefault(stage, []).append(e)
    print(f"| {n} | {bench_rows.workload_name(ab.runs[n])} | {stage} | {ab.median(n, stage, 'a'):.1f} | {e:.3f} | "
          f"{ab.ratio(n, stage, 'graph_us'):.3f} | {ab.check(n, stage)} |")
for stage, xs in sorted(by_stage.items()):
    gm = math.exp(sum(map(math.log, xs)) / len(xs))
    print(f"\n{stage}: B / A eager geometric mean {gm:.3f} over {len(xs)} ({min(xs):.3f}-{max(xs):.3f})", end="")
print()
