#!/usr/bin/env python3
"""The A/B table of a run of this folder (RUN_FOLDER/ab-N-SIDE-K.jsonl as run.sh writes them):
per workload and stage, A's eager time (median of its two runs), B / A eager and replayed (B: the
default, leaf tails; A: --no-take-leaves), B's check; then geometric means.
   ab_table.py RUN_FOLDER"""
import collections
import math
import pathlib
import statistics
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[3] / "tools"))
import bench_rows  # noqa: E402

if len(sys.argv) != 2:
    sys.exit(__doc__)
times = collections.defaultdict(lambda: collections.defaultdict(list))
names, checks = {}, {}
for f in sorted(pathlib.Path(sys.argv[1]).glob("ab-*.jsonl")):
    _, n, side, _ = f.stem.split("-")
    run, stages = bench_rows.read_bench(f)
    if run is None:
        continue
    names[int(n)] = bench_rows.workload_name(run)
    for stage, r in stages.items():
        times[(int(n), stage)][side].append((r["time_us"], r["graph_us"]))
        if side == "b" and r["check"].strip() not in ("not", ""):
            checks[(int(n), stage)] = r["check"].strip().split(" ")[0]


def ratio(n, stage, i):
    s = times[(n, stage)]
    return statistics.median(x[i] for x in s["b"]) / statistics.median(x[i] for x in s["a"])


print("| # | workload | stage | A us (eager) | B / A eager | B / A replayed | B's check |")
print("| ---: | --- | --- | ---: | ---: | ---: | --- |")
by_stage = collections.defaultdict(list)
for (n, stage) in sorted(times):
    a = statistics.median(x[0] for x in times[(n, stage)]["a"])
    e, g = ratio(n, stage, 0), ratio(n, stage, 1)
    by_stage[stage].append((n, e))
    print(f"| {n} | {names[n]} | {stage} | {a:.1f} | {e:.3f} | {g:.3f} | {checks.get((n, stage), '-')} |")
gm = lambda xs: math.exp(sum(map(math.log, xs)) / len(xs))  # noqa: E731
for stage, rs in sorted(by_stage.items()):
    xs = [r for _, r in rs]
    print(f"\n{stage}: B / A eager geometric mean {gm(xs):.3f} over {len(xs)} ({min(xs):.3f}-{max(xs):.3f})", end="")
print()
