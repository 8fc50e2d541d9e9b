#!/usr/bin/env python3
"""A run's table (README.md): per workload, the selected branch's time in NSA's and FSA's orders
(eager and graph replay, us; the median of the binary's two processes) for the binary before the
change and after it, FSA after / before, and NSA / FSA after (issue 17's ratio).

    python3 table.py RUN_FOLDER
"""
import json
import pathlib
import re
import statistics
import sys


def main() -> None:
    if len(sys.argv) != 2:
        sys.exit("usage: table.py RUN_FOLDER")
    runs = {}  # workload -> bin -> order -> [(eager, graph)]
    for f in sorted(pathlib.Path(sys.argv[1]).glob("*.json")):
        m = re.fullmatch(r"(patlab(?:-before)?)-(\d+)-(.+)\.json", f.name)
        if not m or f.stat().st_size == 0:
            continue
        for row in json.loads(f.read_text()).get("gpu", []):
            times = (row.get("selected us"), row.get("selected us (graph)"))
            if None not in times:
                runs.setdefault(m.group(3), {}).setdefault(m.group(1), {}).setdefault(row["order"], []).append(times)
    if not runs:
        sys.exit(f"no patlab sparse JSON with a 'gpu' table under {sys.argv[1]}")
    print("| workload | NSA before / after (eager; graph) | FSA before / after (eager; graph) | FSA after / before "
          "(eager; graph) | NSA / FSA after (eager; graph) |")
    print("|---|---|---|---|---|")
    for w, bins in runs.items():
        med = {b: {o: tuple(statistics.median(t[i] for t in ts) for i in (0, 1)) for o, ts in orders.items()}
               for b, orders in bins.items()}
        b, a = med.get("patlab-before", {}), med.get("patlab", {})
        if not all(o in x for x in (a, b) for o in ("nsa", "fsa")):
            continue
        pair = lambda x, y: f"{x[0]:.1f} / {y[0]:.1f}; {x[1]:.1f} / {y[1]:.1f}"
        ratio = lambda x, y: f"{x[0] / y[0]:.3f}; {x[1] / y[1]:.3f}"
        print(f"| `{w}` | {pair(b['nsa'], a['nsa'])} | {pair(b['fsa'], a['fsa'])} | {ratio(a['fsa'], b['fsa'])} | "
              f"{ratio(a['nsa'], a['fsa'])} |")


if __name__ == "__main__":
    main()
