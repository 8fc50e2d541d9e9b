#!/usr/bin/env python3
"""Two floors under each workload of a results file, and how close each stage comes to them.

A decode step cannot be faster than reading its unique bytes at the copy bandwidth (the *copy
floor*, what `pct_copy` of `patlab bench` measures against), nor than doing its attention
arithmetic at the tensor cores' peak (the *tensor floor*). The arithmetic does not shrink with
sharing: every query head still scores every token of its request, so on a long shared prefix
read by many query heads the tensor floor can be the higher one, and then no kernel reaches a
given fraction of the copy bandwidth however few bytes it reads.

    FLOPs        = 4 x d x Hq x (sum of request lengths)       (S = q K^T and P V, 2 each)
    tensor floor = FLOPs / (SMs x max SM clock x TENSOR_FLOPS_PER_CLOCK)
    copy floor   = unique bytes / measured copy bandwidth

The sum of request lengths comes from the run table's "per-request KV bytes" (every request's
tokens x Hkv x d x K and V x bytes per element); the SM count, the clock and the copy bandwidth
from the same table, so the floors are the measured device's. TENSOR_FLOPS_PER_CLOCK is the dense
FP16/BF16 rate of a Hopper SM (the kernels compute in 16 bits also over an fp8 cache).

    python3 tools/roofline.py docs/results/2026-12-02-h200-stage8-routed/suite.jsonl --stages pat,hopper

Reads `patlab bench` / `compare --format jsonl` files (their "run" and "results" rows). Prints a
markdown table per workload and a summary over the shared-prefix workloads (summarize_results'
rule) of at least --min-mb unique MB, against the suite's copy target (its TARGET_COPY_PCT).
Exit 0, 2 on bad usage or a file that is not such a results file.
"""

from __future__ import annotations

import argparse
import json
import pathlib
import re
import statistics
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from summarize_results import TARGET_COPY_PCT, TARGET_UNIQUE_BYTES, shares_prefix  # noqa: E402

#: Dense FP16/BF16 tensor FLOPs per SM per clock on sm_90 (Hopper's 4th-generation tensor cores:
#: 1024 FMA per clock per SM on A100, twice that per clock on H100; 2 FLOPs per FMA).
TENSOR_FLOPS_PER_CLOCK = 4096

SHAPE = re.compile(r"(\d+)/(\d+) heads, d=(\d+)")
CLOCKS = re.compile(r"(\d+) / (\d+)")


def fail(message: str) -> None:
    print(f"roofline: {message}", file=sys.stderr)
    sys.exit(2)


def read_rows(paths: list[str]) -> tuple[dict, dict]:
    """(run row per workload, {workload: {stage: results row}}) of every file."""
    runs, results = {}, {}
    for name in paths:
        path = pathlib.Path(name)
        if not path.is_file():
            fail(f"{name}: no such file")
        for n, line in enumerate(path.read_text().splitlines(), 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as e:
                fail(f"{name}:{n}: not JSON ({e.msg})")
            if not isinstance(row, dict):
                fail(f"{name}:{n}: not a JSON object")
            if row.get("table") == "run":
                runs[row.get("workload")] = row
            elif row.get("table") == "results" and "stage" in row:
                results.setdefault(row.get("workload"), {})[row["stage"]] = row
    if not runs:
        fail("no 'run' rows: expected `patlab bench` or `compare --format jsonl` output")
    return runs, results


def floors(run: dict) -> dict:
    """The workload's group, unique MB and both floors in us, from its run row."""
    shape = SHAPE.search(str(run.get("shape", "")))
    clocks = CLOCKS.search(str(run.get("max clocks (SM / memory, MHz)", "")))
    needed = ("per-request KV bytes", "unique bytes (KV + q + out)", "copy GB/s", "SMs")
    if not shape or not clocks or any(not isinstance(run.get(k), (int, float)) for k in needed):
        fail(f"run row of {run.get('workload')!r} lacks the shape, clocks or sizes")
    hq, hkv, d = (int(x) for x in shape.groups())
    elem = 1 if run.get("kv dtype") == "fp8" else 2
    tokens = run["per-request KV bytes"] / (2 * hkv * d * elem)  # summed over the requests
    flops = 4 * d * hq * tokens
    peak = run["SMs"] * int(clocks.group(1)) * 1e6 * TENSOR_FLOPS_PER_CLOCK
    unique = run["unique bytes (KV + q + out)"]
    return {
        "group": hq // hkv,
        "unique_mb": unique / 1e6,
        "copy_us": unique / (run["copy GB/s"] * 1e3),
        "tensor_us": flops / peak * 1e6,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("files", nargs="+", help="results files (jsonl)")
    ap.add_argument("--stages", default="pat,hopper", help="stages to show, comma-separated (default pat,hopper)")
    ap.add_argument("--min-mb", type=float, default=TARGET_UNIQUE_BYTES / 1e6,
                    help=f"the summary's least unique MB (default {TARGET_UNIQUE_BYTES / 1e6:g}, the suite's target)")
    args = ap.parse_args()
    stages = [s for s in args.stages.split(",") if s]
    if not stages:
        fail("--stages is empty")
    if args.min_mb < 0:
        fail(f"--min-mb {args.min_mb} is negative")
    runs, results = read_rows(args.files)

    head = ["workload", "g", "unique MB", "copy floor us", "tensor floor us"]
    for s in stages:
        head += [f"{s} us", f"{s} % of copy", f"{s} % of the higher floor"]
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    picked, out_of_reach, of_bound = 0, 0, {s: [] for s in stages}
    for workload, run in runs.items():
        f = floors(run)
        bound = max(f["copy_us"], f["tensor_us"])
        cells = [f"`{workload}`", str(f["group"]), f"{f['unique_mb']:.0f}", f"{f['copy_us']:.1f}", f"{f['tensor_us']:.1f}"]
        timed = results.get(workload, {})
        for s in stages:
            t = timed.get(s, {}).get("time_us")
            if isinstance(t, (int, float)) and t > 0:
                cells += [f"{t:.1f}", f"{100 * f['copy_us'] / t:.1f}", f"{100 * bound / t:.1f}"]
            else:
                cells += ["", "", ""]
        print("| " + " | ".join(cells) + " |")
        if shares_prefix(workload) and f["unique_mb"] >= args.min_mb:
            picked += 1
            out_of_reach += f["tensor_us"] > f["copy_us"] / (TARGET_COPY_PCT / 100)
            for s in stages:
                t = timed.get(s, {}).get("time_us")
                if isinstance(t, (int, float)) and t > 0:
                    of_bound[s].append(100 * bound / t)
    print()
    print(f"Shared-prefix workloads of >= {args.min_mb:g} MB: {picked}; on {out_of_reach} of them the tensor floor "
          f"is above the copy floor / {TARGET_COPY_PCT / 100:g} (even at the tensor peak, below "
          f"{TARGET_COPY_PCT:g}% of the copy bandwidth).")
    for s in stages:
        if of_bound[s]:
            print(f"{s}: median {statistics.median(of_bound[s]):.1f}% of the higher floor over those "
                  f"{len(of_bound[s])} (lowest {min(of_bound[s]):.1f}%).")


if __name__ == "__main__":
    main()
