#!/usr/bin/env python3
"""Reads the JSON-lines files of `patlab bench --format jsonl`, as the results folders keep them.

A bench file holds one "run" row (the workload, its shape and bytes, the device) and one "results"
row per stage (time_us, graph_us, pct_copy, check, ...). A suite run keeps one file per line of
the suite files, RUN_FOLDER/suite/N.jsonl. The results folders' scripts read them through here:

    import bench_rows
    run, stages = bench_rows.read_bench(path)          # stages: slug -> results row (timed ones)
    lines = bench_rows.read_suite(["r1", "r2"])        # N -> (run, stages); later folders win
    bench_rows.workload_name(run)                      # "tree 1,256_256,32, 32/32 heads"
    bench_rows.issue12_line(run)                       # shared KV, >= 128 MB unique bytes

A script in docs/results/FOLDER imports it with
`sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[3] / "tools"))`.
"""

from __future__ import annotations

import json
import pathlib

from summarize_results import TARGET_UNIQUE_BYTES


def read_bench(path) -> tuple[dict | None, dict[str, dict]]:
    """The run row of a bench file (None if it has none) and its timed results rows by stage."""
    run, stages = None, {}
    for line in pathlib.Path(path).read_text().splitlines():
        r = json.loads(line)
        if r.get("table") == "run":
            run = r
        elif r.get("table") == "results" and r.get("time_us") is not None:
            stages[r["stage"]] = r
    return run, stages


def read_suite(folders, need=()) -> dict[int, tuple[dict, dict[str, dict]]]:
    """Suite line N -> (run, stages) of FOLDER/suite/N.jsonl over several folders read as one run
    (a suite spread over calls: line N from the last folder that has it); files without a run row
    or without every stage in NEED are left out."""
    files = {int(f.stem): f for folder in folders for f in pathlib.Path(folder, "suite").glob("*.jsonl")}
    out = {}
    for n in sorted(files):
        run, stages = read_bench(files[n])
        if run is not None and all(s in stages for s in need):
            out[n] = (run, stages)
    return out


def workload_name(run: dict) -> str:
    """The workload and its heads, as the tables name a line: "tree 1,256_256,32, 32/32 heads"."""
    return f"{run['workload']}, {run['shape'].split(', d=')[0]}"


def issue12_line(run: dict) -> bool:
    """Issue 12's selection of a workload: its requests share KV (the KV bytes summed over the
    requests exceed the unique bytes by more than 1%) and it has at least TARGET_UNIQUE_BYTES
    unique bytes (summarize_results.py's bandwidth target)."""
    unique = run["unique bytes (KV + q + out)"]
    return unique >= TARGET_UNIQUE_BYTES and run["per-request KV bytes"] > 1.01 * unique
