#!/usr/bin/env python3
"""Run 8's table from r8/NAME-AB-PASS.jsonl (a: the binary before, b: after): per workload and
stage, eager / graph us (mean of the two passes' medians), after - before, after / before.
   summary8.py RUN_FOLDER"""
import collections
import json
import pathlib
import statistics
import sys

d = collections.OrderedDict()
for f in sorted(pathlib.Path(sys.argv[1]).glob("*.jsonl")):
    name, ab, _ = f.stem.rsplit("-", 2)
    for line in f.read_text().splitlines():
        r = json.loads(line)
        if r.get("table") == "results" and r.get("time_us"):
            d.setdefault(name, {}).setdefault((r["stage"], ab), []).append((r["time_us"], r["graph_us"]))
print("| workload | stage | before eager / graph | after | after - before (us) | after / before |")
print("|---|---|---:|---:|---:|---:|")
for name, v in d.items():
    for st in ("pat", "hopper"):
        if (st, "a") not in v or (st, "b") not in v:
            continue
        ae, ag = (statistics.mean(x[i] for x in v[(st, "a")]) for i in (0, 1))
        be, bg = (statistics.mean(x[i] for x in v[(st, "b")]) for i in (0, 1))
        print(f"| `{name.strip('_')}` | {st} | {ae:.1f} / {ag:.1f} | {be:.1f} / {bg:.1f} | {be - ae:+.1f} / {bg - ag:+.1f} "
              f"| {be / ae:.3f} / {bg / ag:.3f} |")
