#!/usr/bin/env python3
"""Run 4's table from its folder (NAME-PAGE-A|B.jsonl): per workload, page and stage (8, 9), the
eager and replayed medians of A (producer thread, ff691b1) and B (producer warp), B / A, and the
percent of the copy bandwidth on unique bytes.
    python3 run4_table.py RUN_FOLDER"""
import json
import pathlib
import sys

if len(sys.argv) != 2:
    sys.exit(__doc__)
cells, order = {}, []
for f in sorted(pathlib.Path(sys.argv[1]).glob("*.jsonl")):
    name, page, tag = f.stem.rsplit("-", 2)
    for line in f.read_text().splitlines():
        r = json.loads(line)
        if r.get("table") != "results" or r.get("time_us") is None:
            continue
        key = (f"{r['workload']}, {r['shape'].split(', d=')[0]}", int(page), r["stage"])
        if key not in cells:
            order.append(key)
        cells.setdefault(key, {})[tag] = r
print("| workload | page | stage | A eager / graph us | B eager / graph us | B / A eager | B / A graph | % copy A / B |")
print("|---|---:|---|---:|---:|---:|---:|---:|")
for key in sorted(order, key=lambda k: (order.index((k[0], 16, k[2])) if (k[0], 16, k[2]) in order else 0, k[1])):
    c = cells[key]
    if "A" not in c or "B" not in c:
        continue
    a, b = c["A"], c["B"]
    print(f"| {key[0]} | {key[1]} | {key[2]} | {a['time_us']:.1f} / {a['graph_us']:.1f} | {b['time_us']:.1f} / "
          f"{b['graph_us']:.1f} | {b['time_us'] / a['time_us']:.3f} | {b['graph_us'] / a['graph_us']:.3f} | "
          f"{a['pct_copy']:.0f} / {b['pct_copy']:.0f} |")
