#!/usr/bin/env python3
"""Reads the JSON-lines files of `patlab bench --format jsonl`, as the results folders keep them.

A bench file holds one "run" row (the workload, its shape and bytes, the device) and one "results"
row per stage (time_us, graph_us, pct_copy, check, ...). A suite run keeps one file per line of
the suite files, RUN_FOLDER/suite/N.jsonl. The results folders' scripts read them through here:

    import bench_rows
    run, stages = bench_rows.read_bench(path)          # stages: slug -> results row (timed ones)
    lines = bench_rows.read_suite(["r1", "r2"])        # N -> (run, stages); later folders win
    ab = bench_rows.read_ab(["r1"])                    # an A/B run's ab-N-SIDE-K.jsonl files
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


class AB:
    """An A/B run read by read_ab(): per workload number N, its run row (`runs[N]`), and per (N,
    stage) each side's timed results rows (`rows[(N, stage)]["a" or "b"]`, in round order)."""

    def __init__(self):
        self.runs: dict[int, dict] = {}
        self.rows: dict[tuple[int, str], dict[str, list[dict]]] = {}

    def median(self, n: int, stage: str, side: str, key: str = "time_us") -> float | None:
        """The median of `key` over side's rounds of (n, stage), or None without any."""
        xs = sorted(r[key] for r in self.rows.get((n, stage), {}).get(side, []))
        if not xs:
            return None
        mid = len(xs) // 2
        return xs[mid] if len(xs) % 2 else (xs[mid - 1] + xs[mid]) / 2

    def ratio(self, n: int, stage: str, key: str = "time_us") -> float | None:
        """B's median over A's for (n, stage), or None where a side is missing."""
        a, b = self.median(n, stage, "a", key), self.median(n, stage, "b", key)
        return b / a if a and b else None

    def check(self, n: int, stage: str) -> str:
        """The first word of B's oracle verdict for (n, stage) (PASS, FAIL...), or "-" where no B
        round was checked."""
        for r in self.rows.get((n, stage), {}).get("b", []):
            words = r["check"].split()
            if words and words[0] != "not":
                return words[0]
        return "-"


def read_ab(folders) -> AB:
    """The files FOLDER/ab-N-SIDE-K.jsonl of an A/B run (side a or b, round K) over several folders
    (each file from the last folder that has it), as AB."""
    files = {}
    for folder in folders:
        for f in pathlib.Path(folder).glob("ab-*.jsonl"):
            _, n, side, k = f.stem.split("-")
            files[(int(n), side, int(k))] = f
    ab = AB()
    for (n, side, _), f in sorted(files.items()):
        run, stages = read_bench(f)
        if run is None:
            continue
        ab.runs[n] = run
        for stage, r in stages.items():
            ab.rows.setdefault((n, stage), {"a": [], "b": []})[side].append(r)
    return ab


def workload_name(run: dict) -> str:
    """The workload and its heads, as the tables name a line: "tree 1,256_256,32, 32/32 heads"."""
    return f"{run['workload']}, {run['shape'].split(', d=')[0]}"


def issue12_line(run: dict) -> bool:
    """Issue 12's selection of a workload: its requests share KV (the KV bytes summed over the
    requests exceed the unique bytes by more than 1%) and it has at least TARGET_UNIQUE_BYTES
    unique bytes (summarize_results.py's bandwidth target)."""
    unique = run["unique bytes (KV + q + out)"]
    return unique >= TARGET_UNIQUE_BYTES and run["per-request KV bytes"] > 1.01 * unique
