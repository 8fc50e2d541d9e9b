#!/usr/bin/env python3
"""A run's table from its folder (r1/, r2/, ...): per workload and setting (--hopper-min-kv N, or
N_M: --hopper-min-kv N --hopper-wide-kv M), stage 7 and stage 8 (eager / graph, us) and stage 8 /
stage 7 (eager, graph), with the oracle check; then, per setting, how many workloads stage 8 is
more than 3% slower than stage 7 on and the geometric mean of stage 8 / stage 7. SETTING names the
setting's column (default min-kv; docs/results/2026-12-05-h200-hopper-min-piece names its own).
   table.py RUN_FOLDER [SETTING]"""
import json
import math
import pathlib
import sys

folder = pathlib.Path(sys.argv[1])
setting_title = sys.argv[2] if len(sys.argv) > 2 else "min-kv"
rows = {}
for f in sorted(folder.glob("*.jsonl")):
    name, value = f.stem.rsplit("-", 1)
    for line in f.read_text().splitlines():
        r = json.loads(line)
        if r.get("table") == "results" and r.get("time_us") is not None:
            key = r["workload"] + " " + r["shape"].split(" heads")[0]
            rows.setdefault(key, {}).setdefault(value, {})[r["stage"]] = r

print(f"| workload | {setting_title} | stage 7 eager / graph | stage 8 eager / graph | 8/7 eager | 8/7 graph | check "
      "| stage 8 buckets |")
print("|---|---:|---:|---:|---:|---:|---|---|")
for w, by_value in rows.items():
    for v in sorted(by_value, key=lambda v: [int(x) for x in v.split("_")]):
        s = by_value[v]
        if "pat" not in s or "hopper" not in s:
            continue
        p, h = s["pat"], s["hopper"]
        notes = h["notes"].split(" in ")[1].split(")")[0] + ")" if " in " in h["notes"] else ""
        print(f"| `{w}` | {v} | {p['time_us']:.1f} / {p['graph_us']:.1f} | {h['time_us']:.1f} / {h['graph_us']:.1f} | "
              f"{h['time_us'] / p['time_us']:.3f} | {h['graph_us'] / p['graph_us']:.3f} | {h['check']} | {notes} |")

print()
settings = sorted({v for by_value in rows.values() for v in by_value}, key=lambda v: [int(x) for x in v.split("_")])
for v in settings:
    for mode, key in (("eager", "time_us"), ("graph", "graph_us")):
        r = [s["hopper"][key] / s["pat"][key] for s in (b.get(v) for b in rows.values())
             if s and "pat" in s and "hopper" in s]
        if r:
            over = sum(x > 1.03 for x in r)
            gm = math.exp(sum(math.log(x) for x in r) / len(r))
            print(f"setting {v} {mode}: {len(r)} workloads, stage 8 / stage 7 geometric mean {gm:.3f}, "
                  f"more than 3% slower on {over}")
