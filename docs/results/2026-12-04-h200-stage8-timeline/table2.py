#!/usr/bin/env python3
"""Run 2's tables from r2/: the A/B (ab-<binary>-<workload>.jsonl: stages 6, 7, 8 of b1cd470 and of
the new build) and the suite (suite/N.jsonl: stages 6, 7, 8 of the new build), eager and graph.
   table2.py RUN_FOLDER"""
import json
import math
import pathlib
import sys

folder = pathlib.Path(sys.argv[1])


def times(path):
    t = {}
    for line in path.read_text().splitlines():
        r = json.loads(line)
        if r.get("table") == "results" and r.get("time_us") is not None:
            t[r["stage"]] = (r["time_us"], r.get("graph_us"))
    return t


def ratio(t, a, b, mode):
    if a not in t or b not in t or t[a][mode] is None or t[b][mode] is None:
        return None
    return t[a][mode] / t[b][mode]


print("| workload | binary | stage 6 | stage 7 | stage 8 | 7/6 eager | 7/6 graph | 8/7 eager | 8/7 graph |")
print("|---|---|---:|---:|---:|---:|---:|---:|---:|")
for f in sorted(folder.glob("ab-patlab-before-*.jsonl")):
    w = f.name[len("ab-patlab-before-"):-len(".jsonl")]
    for b in ("patlab-before", "patlab"):
        t = times(folder / f"ab-{b}-{w}.jsonl")
        cells = [" / ".join(f"{v:.1f}" for v in t[s]) if s in t else "-" for s in ("multistream", "pat", "hopper")]
        rs = [ratio(t, "pat", "multistream", 0), ratio(t, "pat", "multistream", 1),
              ratio(t, "hopper", "pat", 0), ratio(t, "hopper", "pat", 1)]
        print(f"| `{w.strip('_')}` | {'b1cd470' if b.endswith('before') else 'new'} | " + " | ".join(cells) + " | " +
              " | ".join("-" if r is None else f"{r:.3f}" for r in rs) + " |")

lines = [l.split("#")[0].strip() for p in ("tools/suite.txt", "tools/suite-categories.txt")
         for l in (pathlib.Path(__file__).resolve().parents[3] / p).read_text().splitlines()]
lines = [l for l in lines if l]
over = {k: [] for k in ("7/6 eager", "7/6 graph", "8/7 eager", "8/7 graph")}
logs = {k: [] for k in over}
n = 0
for i, w in enumerate(lines, 1):
    f = folder / "suite" / f"{i}.jsonl"
    if not f.exists():
        continue
    t = times(f)
    n += 1
    for key, (a, b, m) in {"7/6 eager": ("pat", "multistream", 0), "7/6 graph": ("pat", "multistream", 1),
                           "8/7 eager": ("hopper", "pat", 0), "8/7 graph": ("hopper", "pat", 1)}.items():
        r = ratio(t, a, b, m)
        if r is None:
            continue
        logs[key].append(math.log(r))
        if r > 1.03:
            over[key].append((w, r))
print(f"\nsuite: {n} workload lines with results")
for key in over:
    g = math.exp(sum(logs[key]) / len(logs[key])) if logs[key] else float("nan")
    print(f"\n{key}: {len(logs[key])} workloads, geometric mean {g:.3f}, more than 3% slower on {len(over[key])}")
    for w, r in sorted(over[key], key=lambda x: -x[1]):
        print(f"  {r:.3f}  {w}")
