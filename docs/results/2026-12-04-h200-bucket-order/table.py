#!/usr/bin/env python3
"""Prints, per workload and launch-order variant, stage 6 and stage 7 times (eager and graph
replay) and stage 7 / stage 6 from the bench files of one run folder: b-WORKLOAD-VARIANT.jsonl
(run 1) or b-WORKLOAD-VARIANT-pN.jsonl (run 2, process N; one value per process, comma-separated).
   table.py RUN_FOLDER"""
import json
import pathlib
import re
import sys

folder = pathlib.Path(sys.argv[1])
rows = {}
for f in sorted(folder.glob("b-*.jsonl")):
    stem = f.stem[2:]
    proc = re.search(r"-p(\d+)$", stem)
    if proc:
        stem = stem[: proc.start()]
    workload, variant = stem.rsplit("-", 1)
    times = {}
    for line in f.read_text().splitlines():
        r = json.loads(line)
        if r.get("table") == "results" and r.get("time_us") is not None:
            times[r["stage"]] = (r["time_us"], r.get("graph_us"))
    if "multistream" in times and "pat" in times:
        rows.setdefault(workload, {}).setdefault(variant, []).append(times)


def join(values, fmt):
    return ", ".join(format(v, fmt) for v in values)


print("| workload | order | stage 6 graph us | stage 7 graph us | 7/6 eager | 7/6 graph |")
print("|---|---|---:|---:|---:|---:|")
for workload, variants in rows.items():
    for variant, runs in variants.items():
        g6 = [t["multistream"][1] for t in runs]
        g7 = [t["pat"][1] for t in runs]
        eager = [t["pat"][0] / t["multistream"][0] for t in runs]
        graph = [t["pat"][1] / t["multistream"][1] for t in runs]
        print(f"| `{workload.strip('_')}` | {variant} | {join(g6, '.1f')} | {join(g7, '.1f')} | "
              f"{join(eager, '.3f')} | {join(graph, '.3f')} |")
