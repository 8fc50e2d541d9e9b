#!/usr/bin/env python3
"""Run 5's (and run 6's) table from a folder of NAME-VARIANT-ORDER.jsonl files: per workload,
variant and stage order (ph: pat first; hp: hopper first), stages 7 and 8 eager / graph (us) and
stage 8 / stage 7.
   summary.py RUN_FOLDER"""
import collections
import json
import pathlib
import sys

rows = collections.OrderedDict()
for f in sorted(pathlib.Path(sys.argv[1]).glob("*.jsonl")):
    name, var, order = f.stem.rsplit("-", 2)
    d = {}
    for line in f.read_text().splitlines():
        r = json.loads(line)
        if r.get("table") == "results" and r.get("time_us"):
            d[r["stage"]] = r
    if "pat" in d and "hopper" in d:
        rows.setdefault(d["pat"]["workload"] + ", " + d["pat"]["shape"].split(", d=")[0], {})[(var, order)] = d
print("| workload | variant | order | stage 7 eager / graph | stage 8 eager / graph | 8/7 eager | 8/7 graph |")
print("|---|---:|---|---:|---:|---:|---:|")
for name, v in rows.items():
    for (var, order), d in sorted(v.items()):
        p, h = d["pat"], d["hopper"]
        print(f"| {name} | {var} | {order} | {p['time_us']:.1f} / {p['graph_us']:.1f} | "
              f"{h['time_us']:.1f} / {h['graph_us']:.1f} | {h['time_us'] / p['time_us']:.3f} | "
              f"{h['graph_us'] / p['graph_us']:.3f} |")
