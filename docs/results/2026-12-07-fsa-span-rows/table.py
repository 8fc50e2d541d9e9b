#!/usr/bin/env python3
"""A run's table (README.md): per workload and span pack size, the selected branch's time in NSA's
and FSA's orders replayed from a CUDA graph (us; the median over the run's rounds), FSA's span model
from the host plan (the table 'FSA spans (host plan)' of the same process), and NSA / FSA, with
every check's verdict.

    python3 table.py RUN_FOLDER
"""
import pathlib
import statistics
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "2026-12-07-fsa-requests"))
from table import documents  # noqa: E402  (the run folders' reader, written once there)


def main() -> None:
    if len(sys.argv) != 2:
        sys.exit("usage: table.py RUN_FOLDER")
    runs = {}  # (workload, requests per pack) -> {"host": table, order: [row]}
    for f, doc in documents(sys.argv[1]):
        run, host = doc.get("sparse run", {}), doc.get("FSA spans (host plan)", {})
        key = (f"{run.get('workload', f.name)}, {run.get('shape', '').split(',')[0]}", host.get("requests per pack", "?"))
        entry = runs.setdefault(key, {"host": host})
        for row in doc.get("gpu", []):
            entry.setdefault(row["order"], []).append(row)
    if not runs:
        sys.exit(f"no patlab sparse JSON with a 'gpu' table under {sys.argv[1]}")
    print("| workload | requests per pack | span model MB | packs | rounds | NSA us (graph) | FSA us (graph) | "
          "NSA / FSA (graph) | checks |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---|")
    for (w, per_pack), e in sorted(runs.items()):
        if "nsa" not in e or "fsa" not in e:
            continue
        n = statistics.median(r["selected us (graph)"] for r in e["nsa"])
        f = statistics.median(r["selected us (graph)"] for r in e["fsa"])
        checks = [v for o in ("nsa", "split", "fsa") for r in e.get(o, []) for k, v in r.items()
                  if k.startswith(("check", "graph"))]
        ran = [v for v in checks if not str(v).startswith("skipped")]  # `patlab sparse --no-check`
        verdict = ("FAIL: see the JSON" if not all(str(v).startswith("PASS") for v in ran)
                   else "all PASS" if len(ran) == len(checks) else "graph replay PASS, outputs not checked (--no-check)")
        mb = e["host"].get("span model bytes", 0) / 1e6
        print(f"| `{w}` | {per_pack} | {mb:.0f} | {e['host'].get('packs (CTAs)', '?')} | {len(e['fsa'])} | "
              f"{n:.1f} | {f:.1f} | {n / f:.2f} | {verdict} ({len(checks)}) |")


if __name__ == "__main__":
    main()
