#!/usr/bin/env python3
"""Issue 12's numbers from a suite run (RUN_FOLDER/suite/N.jsonl, stages pat and hopper): over the
lines whose requests share KV (tokens summed over requests above the unique ones: per-request KV
bytes over 1.01x the unique bytes) with at least 128 MB unique bytes, stage 8's median and lowest
percent of the copy bandwidth on unique bytes (eager), and the geometric mean of stage 7 / stage 8
(eager and replayed). With --lines, first one line per workload, lowest percent first: the
percent, stage 7 / stage 8, unique MB, tokens summed over requests per unique token, model bytes
per unique byte. Several RUN_FOLDERs are read as one run (a suite spread over calls: line N from
the last folder that has it).
   issue12.py RUN_FOLDER... [--lines]"""
import math
import pathlib
import statistics
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[3] / "tools"))
import bench_rows  # noqa: E402  (the bench files' reader, written once there)

args = sys.argv[1:]
show_lines = "--lines" in args
folders = [a for a in args if a != "--lines"]
if not folders or any(a.startswith("--") for a in folders):
    sys.exit(__doc__)
lines = []
pct, speedup, graph_speedup, low = [], [], [], []
for run, stages in bench_rows.read_suite(folders, ("pat", "hopper")).values():
    if not bench_rows.issue12_line(run):
        continue
    unique = run["unique bytes (KV + q + out)"]
    h, p = stages["hopper"], stages["pat"]
    pct.append(h["pct_copy"])
    speedup.append(p["time_us"] / h["time_us"])
    graph_speedup.append(p["graph_us"] / h["graph_us"])
    low.append((h["pct_copy"], bench_rows.workload_name(run)))
    lines.append((h["pct_copy"], p["time_us"] / h["time_us"], unique / 1e6, run["per-request KV bytes"] / unique,
                   h["model_bytes"] / unique, low[-1][1]))
if show_lines:
    print("| % copy | 7 / 8 | unique MB | summed / unique | model / unique | workload |")
    print("|---:|---:|---:|---:|---:|---|")
    for ln in sorted(lines):
        print(f"| {ln[0]:.1f} | {ln[1]:.2f} | {ln[2]:.0f} | {ln[3]:.1f} | {ln[4]:.2f} | {ln[5]} |")
gm = lambda xs: math.exp(sum(map(math.log, xs)) / len(xs))
print(f"shared-prefix suite lines of >= 128 MB unique bytes: {len(pct)}")
print(f"stage 8, percent of the copy bandwidth on unique bytes (eager): median {statistics.median(pct):.1f}, "
      f"lowest {min(low)[0]:.1f} ({min(low)[1]})")
print(f"stage 7 / stage 8, geometric mean: eager {gm(speedup):.3f}, replayed {gm(graph_speedup):.3f}")
