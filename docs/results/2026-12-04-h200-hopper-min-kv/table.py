#!/usr/bin/env python3
"""Run 1's table from r1/: per workload and --hopper-min-kv value, stage 7 and stage 8 (eager /
graph, us) and stage 8 / stage 7 (eager, graph), with the oracle check.
   table.py RUN_FOLDER"""
import json
import pathlib
import sys

folder = pathlib.Path(sys.argv[1])
rows = {}
for f in sorted(folder.glob("*.jsonl")):
    name, value = f.stem.rsplit("-", 1)
    for line in f.read_text().splitlines():
        r = json.loads(line)
        if r.get("table") == "results" and r.get("time_us") is not None:
            rows.setdefault(r["workload"] + " " + r["shape"].split(" heads")[0], {}).setdefault(int(value), {})[r["stage"]] = r

print("| workload | min-kv | stage 7 eager / graph | stage 8 eager / graph | 8/7 eager | 8/7 graph | check | stage 8 buckets |")
print("|---|---:|---:|---:|---:|---:|---|---|")
for w, by_value in rows.items():
    for v in sorted(by_value):
        s = by_value[v]
        if "pat" not in s or "hopper" not in s:
            continue
        p, h = s["pat"], s["hopper"]
        notes = h["notes"].split(" in ")[1].split(")")[0] + ")" if " in " in h["notes"] else ""
        print(f"| `{w}` | {v} | {p['time_us']:.1f} / {p['graph_us']:.1f} | {h['time_us']:.1f} / {h['graph_us']:.1f} | "
              f"{h['time_us'] / p['time_us']:.3f} | {h['graph_us'] / p['graph_us']:.3f} | {h['check']} | {notes} |")
