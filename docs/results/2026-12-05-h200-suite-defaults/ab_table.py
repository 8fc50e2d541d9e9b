#!/usr/bin/env python3
"""The two-tile rule's A/B of run 2 (RUN_FOLDER/ab-N-SIDE-K.jsonl): per workload and stage, B's
time over A's, eager and replayed, each side's median over its K runs, and B's oracle verdict.
   ab_table.py RUN_FOLDER"""
import collections
import pathlib
import statistics
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[3] / "tools"))
import bench_rows  # noqa: E402  (the bench files' reader, written once there)

if len(sys.argv) != 2:
    sys.exit(__doc__)
runs = collections.defaultdict(lambda: collections.defaultdict(list))
names, checks = {}, {}
for f in sorted(pathlib.Path(sys.argv[1]).glob("ab-*.jsonl")):
    n, side, _ = f.stem.split("-")[1:]
    run, stages = bench_rows.read_bench(f)
    if run is not None:
        names[int(n)] = bench_rows.workload_name(run)
    for stage, r in stages.items():
        runs[(int(n), stage)][side].append((r["time_us"], r["graph_us"]))
        if side == "b" and r["check"].strip() not in ("not", ""):
            checks[(int(n), stage)] = r["check"].strip()
print("| workload | stage | A us (eager) | B / A eager | B / A replayed | B's check |")
print("| --- | --- | ---: | ---: | ---: | --- |")
for (n, stage), sides in sorted(runs.items()):
    if not sides["a"] or not sides["b"]:
        continue
    a_e = statistics.median(t for t, _ in sides["a"])
    b_e = statistics.median(t for t, _ in sides["b"])
    a_g = statistics.median(g for _, g in sides["a"])
    b_g = statistics.median(g for _, g in sides["b"])
    print(f"| {names.get(n, n)} | {stage} | {a_e:.1f} | {b_e / a_e:.3f} | {b_g / a_g:.3f} | {checks.get((n, stage), '-')} |")
