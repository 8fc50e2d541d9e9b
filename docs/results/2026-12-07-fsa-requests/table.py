#!/usr/bin/env python3
"""A run's table (README.md): per workload, the selected branch's time in NSA's and FSA's orders,
eager and replayed from a CUDA graph (us; the median over the run's rounds), the byte models of
both orders, and NSA / FSA (issue 17's ratio), with every check's verdict.

    python3 table.py RUN_FOLDER
"""
import json
import pathlib
import re
import statistics
import sys


def documents(folder):
    """(file, JSON document) of every non-empty `patlab sparse --format json` output rK-N.jsonl
    of a run folder, in file-name order (the other folders' scripts import this)."""
    for f in sorted(pathlib.Path(folder).glob("r*-*.jsonl")):
        if f.stat().st_size > 0:
            yield f, json.loads(f.read_text())


def group_rows(folder, key):
    """{key(file, document): {order: [that order's 'gpu' rows]}} over documents(folder)."""
    runs = {}
    for f, doc in documents(folder):
        for row in doc.get("gpu", []):
            runs.setdefault(key(f, doc), {}).setdefault(row["order"], []).append(row)
    return runs


def main() -> None:
    if len(sys.argv) != 2:
        sys.exit("usage: table.py RUN_FOLDER")
    runs = group_rows(sys.argv[1], lambda f, doc: f"{doc.get('sparse run', {}).get('workload', f.name)}, "
                                                  f"{doc.get('sparse run', {}).get('shape', '')}")
    if not runs:
        sys.exit(f"no patlab sparse JSON with a 'gpu' table under {sys.argv[1]}")
    print("| workload | rounds | NSA us (eager; graph) | FSA us (eager; graph) | model MB NSA / FSA | "
          "NSA / FSA time (eager; graph) | checks |")
    print("|---|---:|---|---|---|---|---|")
    numbers = lambda w: [int(x) for x in re.findall(r"\d+", w)]  # tree 1,N_16384,512, H/8 heads, d=...
    for w in sorted(runs, key=lambda w: (numbers(w)[1], numbers(w)[4])):
        orders = runs[w]
        if "nsa" not in orders or "fsa" not in orders:
            continue
        med = {o: tuple(statistics.median(r[k] for r in rows) for k in ("selected us", "selected us (graph)"))
               for o, rows in orders.items()}
        checks = [v for rows in orders.values() for r in rows for k, v in r.items() if k.startswith(("check", "graph"))]
        verdict = "all PASS" if all(str(v).startswith("PASS") for v in checks) else "FAIL: see the JSON"
        n, f = med["nsa"], med["fsa"]
        mb = f"{orders['nsa'][0]['model bytes'] / 1e6:.0f} / {orders['fsa'][0]['model bytes'] / 1e6:.0f}"
        print(f"| `{w}` | {len(orders['fsa'])} | {n[0]:.1f}; {n[1]:.1f} | {f[0]:.1f}; {f[1]:.1f} | {mb} | "
              f"{n[0] / f[0]:.2f}; {n[1] / f[1]:.2f} | {verdict} ({len(checks)}) |")


if __name__ == "__main__":
    main()
