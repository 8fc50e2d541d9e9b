#!/usr/bin/env python3
"""Run 7's table from r7/: per workload and stage, the eager and the replayed time of each
process (us) and the spread (max / min) over the processes.
   spread.py RUN_FOLDER"""
import json
import pathlib
import sys

folder = pathlib.Path(sys.argv[1])
times = {}
for f in sorted(folder.glob("*.jsonl")):
    name, rep = f.stem.rsplit("-", 1)
    for line in f.read_text().splitlines():
        r = json.loads(line)
        if r.get("table") == "results" and r.get("time_us") is not None:
            key = (r["workload"] + " " + r["shape"].split(" heads")[0], r["stage"])
            times.setdefault(key, []).append((int(rep), r["time_us"], r["graph_us"]))
print("| workload | stage | eager per process | spread | replayed per process | spread |")
print("|---|---|---|---:|---|---:|")
for (w, stage), rows in times.items():
    rows.sort()
    eager = [e for _, e, _ in rows]
    graph = [g for _, _, g in rows]
    print(f"| `{w}` | {stage} | {' '.join(f'{x:.1f}' for x in eager)} | {max(eager) / min(eager):.3f} | "
          f"{' '.join(f'{x:.1f}' for x in graph)} | {max(graph) / min(graph):.3f} |")
