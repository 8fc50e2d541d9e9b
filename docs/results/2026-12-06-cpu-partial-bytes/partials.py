#!/usr/bin/env python3
"""How much of stage 8's modelled HBM traffic on issue 12's lines is the partials' round trip, and
what 16-bit partials would leave (a sizing, no kernel).

For each of issue 12's lines (shared KV, >= 128 MB unique bytes) in a suite run folder
(RUN/suite/N.jsonl, read through tools/bench_rows.py), `patlab plan W --hopper-tiles --format json`
gives stage 8's plan and its partials (one per (query, pack) of a query with more than one pack);
their round trip is partials x 2 x Hq x (d x 4 + 4) bytes (fp32 o and lse, written by the packs
and read by the merge: traffic::partials_round_trip_bytes()). Printed per line, lowest percent of
the copy bandwidth first: that percent (the run's), the partials' share of the run's stage-8 model
bytes and of the unique bytes, and the percent if the time shrank with the model bytes when o is
stored in 16 bits (half of o's round trip gone; the lse stays fp32). Then the medians.
   partials.py PATLAB RUN_FOLDER"""
import json
import pathlib
import shlex
import statistics
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parents[3]
sys.path.insert(0, str(ROOT / "tools"))
import bench_rows  # noqa: E402  (the bench files' reader, written once there)

FP32, LSE = 4, 4

if len(sys.argv) != 3:
    sys.exit(__doc__)
patlab, folder = sys.argv[1:]
listing = subprocess.run(["bash", "-c", f"source {ROOT}/tools/results_steps.sh; suite_workloads"],
                         capture_output=True, text=True, check=True).stdout
workloads = dict(line.split(" ", 1) for line in listing.splitlines() if line.strip())
rows = []
for n, (run, stages) in bench_rows.read_suite([folder], ("hopper",)).items():
    if not bench_rows.issue12_line(run):
        continue
    unique = run["unique bytes (KV + q + out)"]
    cmd = [patlab, "plan", *shlex.split(workloads[str(n)]), "--hopper-tiles", "--format", "json", "--quiet"]
    plan = json.loads(subprocess.run(cmd, capture_output=True, text=True, check=True).stdout)["plan"]
    heads = int(run["shape"].split("/")[0])
    d = int(run["shape"].split("d=")[1].split(",")[0])
    partials = int(plan["partials"])
    trip = partials * 2 * heads * (d * FP32 + LSE)
    saved = partials * 2 * heads * d * FP32 // 2
    h = stages["hopper"]
    model = h["model_bytes"]
    rows.append((h["pct_copy"], trip / model, trip / unique, h["pct_copy"] * model / (model - saved), n,
                 bench_rows.workload_name(run)))
print("| % copy | partials / model bytes | partials / unique | % copy, 16-bit o (sized) | line | workload |")
print("| ---: | ---: | ---: | ---: | ---: | --- |")
for r in sorted(rows):
    print(f"| {r[0]:.1f} | {r[1]:.3f} | {r[2]:.3f} | {r[3]:.1f} | {r[4]} | {r[5]} |")
below = [r for r in rows if r[0] < 50]
print(f"\nlines: {len(rows)}; median % copy {statistics.median(r[0] for r in rows):.1f}, "
      f"sized with 16-bit o {statistics.median(r[3] for r in rows):.1f}")
print(f"partials / model bytes: median {statistics.median(r[1] for r in rows):.3f}; "
      f"on the {len(below)} lines below 50%: median {statistics.median(r[1] for r in below):.3f}, "
      f"range {min(r[1] for r in below):.3f}-{max(r[1] for r in below):.3f}")
