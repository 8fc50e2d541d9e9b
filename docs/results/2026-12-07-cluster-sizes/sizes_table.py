#!/usr/bin/env python3
"""Run 1's cluster-size table (RUN_FOLDER/c-N-SIZE-K.jsonl as run.sh writes them): per workload,
stage 9's eager time at --max-cluster 1 (median of its two runs), its time at caps 2 and 4 over
that, replayed likewise, and stage 8's spread over the six runs (max / min, eager); the check of
the first cap-1 run.
   sizes_table.py RUN_FOLDER"""
import pathlib
import statistics
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[3] / "tools"))
import bench_rows  # noqa: E402

if len(sys.argv) != 2:
    sys.exit(__doc__)
folder = pathlib.Path(sys.argv[1])
runs = {}
for f in folder.glob("c-*-*-*.jsonl"):
    _, n, c, k = f.stem.split("-")
    run, stages = bench_rows.read_bench(f)
    if run is not None and stages:
        runs[(int(n), int(c), int(k))] = (run, stages)


def med(n, c, stage, key):
    xs = [runs[(n, c, k)][1][stage][key] for k in (1, 2) if (n, c, k) in runs and stage in runs[(n, c, k)][1]]
    return statistics.median(xs) if xs else None


print("| # | workload | stage 9 us, cap 1 | cap 2 / cap 1 | cap 4 / cap 1 | replayed: cap 2, cap 4 | stage 8 us | stage 8 max / min | check, cap 1 |")
print("|---:|---|---:|---:|---:|---|---:|---:|---|")
for n in sorted({k[0] for k in runs}):
    one = med(n, 1, "cluster", "time_us")
    if one is None:
        continue
    name = bench_rows.workload_name(next(r for (m, _, _), (r, _) in runs.items() if m == n))
    cells = []
    for c in (2, 4):
        t = med(n, c, "cluster", "time_us")
        cells.append(f"{t / one:.3f}" if t else "-")
    g1 = med(n, 1, "cluster", "graph_us")
    graphs = [med(n, c, "cluster", "graph_us") for c in (2, 4)]
    graph = ", ".join(f"{g / g1:.3f}" if g else "-" for g in graphs)
    h = [s["hopper"]["time_us"] for (m, _, _), (_, s) in runs.items() if m == n and "hopper" in s]
    check = runs[(n, 1, 1)][1]["cluster"].get("check", "-") if (n, 1, 1) in runs else "-"
    print(f"| {n} | {name} | {one:.1f} | {cells[0]} | {cells[1]} | {graph} | {statistics.median(h):.1f} | "
          f"{max(h) / min(h):.3f} | {check} |")
