#!/usr/bin/env python3
"""A run's table from its folder (r1/, ...) of files NAME-MODE-pPASS.jsonl (MODE gates, chain, auto):
per workload and mode, stages 6, 7 and 8 (eager / graph, us, median over the passes of their
medians), stage 7 / stage 6 and stage 8 / stage 7 (eager, graph); then, per mode, how many
workloads each ratio is over 1.03 on, with its geometric mean, and chain / gates and auto / gates
per stage.
   table.py RUN_FOLDER"""
import json
import math
import pathlib
import statistics
import sys

folder = pathlib.Path(sys.argv[1])
runs = {}  # workload -> mode -> stage -> {"time_us": [...], "graph_us": [...]}
order = []
for f in sorted(folder.glob("*.jsonl")):
    name, mode, _ = f.stem.rsplit("-", 2)
    for line in f.read_text().splitlines():
        r = json.loads(line)
        if r.get("table") != "results" or r.get("time_us") is None:
            continue
        key = r["workload"] + ", " + r["shape"].split(", d=")[0]
        if key not in runs:
            order.append(key)
        cell = runs.setdefault(key, {}).setdefault(mode, {}).setdefault(r["stage"], {"time_us": [], "graph_us": []})
        cell["time_us"].append(r["time_us"])
        cell["graph_us"].append(r["graph_us"])


def t(w, mode, stage, key):
    cell = runs[w].get(mode, {}).get(stage)
    return statistics.median(cell[key]) if cell and cell[key] else None


def ratio(a, b):
    return a / b if a and b else None


def fmt(x, d=1):
    return "-" if x is None else f"{x:.{d}f}"


print("| workload | mode | stage 6 eager / graph | stage 7 | stage 8 | 7/6 eager | 7/6 graph | 8/7 eager | 8/7 graph |")
print("|---|---|---:|---:|---:|---:|---:|---:|---:|")
for w in order:
    for mode in [m for m in ("gates", "chain", "auto") if m in runs[w]]:
        s = {st: (t(w, mode, st, "time_us"), t(w, mode, st, "graph_us")) for st in ("multistream", "pat", "hopper")}
        print(f"| {w} | {mode} | " + " | ".join(f"{fmt(s[st][0])} / {fmt(s[st][1])}" for st in s) + " | " +
              " | ".join(fmt(ratio(a, b), 3) for a, b in (
                  (s["pat"][0], s["multistream"][0]), (s["pat"][1], s["multistream"][1]),
                  (s["hopper"][0], s["pat"][0]), (s["hopper"][1], s["pat"][1]))) + " |")
print()


def summary(label, values):
    values = [v for v in values if v]
    if not values:
        return
    gm = math.exp(sum(math.log(v) for v in values) / len(values))
    print(f"{label}: {len(values)} workloads, geometric mean {gm:.3f}, over 1.03 on {sum(v > 1.03 for v in values)}, "
          f"largest {max(values):.3f}")


for mode in ("gates", "chain", "auto"):
    for key, what in (("time_us", "eager"), ("graph_us", "graph")):
        summary(f"{mode} {what} stage 7 / stage 6", [ratio(t(w, mode, "pat", key), t(w, mode, "multistream", key))
                                                      for w in order])
        summary(f"{mode} {what} stage 8 / stage 7", [ratio(t(w, mode, "hopper", key), t(w, mode, "pat", key))
                                                      for w in order])
for stage in ("multistream", "pat", "hopper"):
    for key, what in (("time_us", "eager"), ("graph_us", "graph")):
        for mode in ("chain", "auto"):
            summary(f"{stage} {what} {mode} / gates", [ratio(t(w, mode, stage, key), t(w, "gates", stage, key))
                                                       for w in order])
