#!/usr/bin/env python3
"""Every measured (workload, stage) of the A/B runs given whose plan keeps tails under PATLAB's
rules, with its B / A (eager; each side's median over its runs, as ab_table.py) from the latest
run that measured it, and what `patlab plan W [--hopper-tiles] [--take-leaves]` says of the plans
without and with the tails: queries merged, tile buckets, CTAs. Sorted by B / A. Run N's workloads
are the '|'-separated options of ab_rN.txt, in order (ab-K-SIDE-R.jsonl is the K-th).
   features.py PATLAB RUN...   (from this folder; e.g. features.py build/tools/patlab r2 r4 r5 r6 r7)"""
import collections
import pathlib
import re
import statistics
import subprocess
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[3] / "tools"))
import bench_rows  # noqa: E402  (the bench files' reader, written once there)

if len(sys.argv) < 3:
    sys.exit(__doc__)
patlab, runs = sys.argv[1], sys.argv[2:]


def plan(options, hopper, tails):
    """(name, heads, leaves taken, queries merged, CTAs, tile buckets) of one `patlab plan`."""
    args = [patlab, "plan", *options.split()] + ["--take-leaves"] * tails + ["--hopper-tiles"] * hopper
    out = subprocess.run(args, capture_output=True, text=True, check=True).stdout
    field = lambda name: re.search(rf"^{re.escape(name)}\s+(.*)$", out, re.M).group(1).strip()  # noqa: E731
    taken = re.match(r"(\d+) leaves", field("leaf tails"))
    buckets = out[out.index("tile buckets"):].split("\n\n")[0].splitlines()[3:]
    return (field("workload"), field("shape").split(" heads")[0], int(taken.group(1)) if taken else 0,
            int(field("queries merged (> 1 partial)")), int(field("CTAs (packs x KV heads)")),
            sum(1 for b in buckets if b.strip() and not b.startswith("CTAs")))


ratios = {}  # (workload name, stage) -> (B / A, run): the latest run wins
for run in runs:
    options = pathlib.Path(f"ab_{run}.txt").read_text().strip().split("|")
    sides = collections.defaultdict(lambda: collections.defaultdict(list))
    for f in pathlib.Path(run).glob("ab-*.jsonl"):
        n, side, _ = f.stem.split("-")[1:]
        for stage, r in bench_rows.read_bench(f)[1].items():
            sides[(int(n), stage)][side].append(r["time_us"])
    for (n, stage), t in sides.items():
        if t["a"] and t["b"]:
            ratios[(options[n - 1], stage)] = (statistics.median(t["b"]) / statistics.median(t["a"]), run)
rows = []
for (options, stage), (ratio, run) in ratios.items():
    hopper = stage == "hopper"
    a, b = plan(options, hopper, False), plan(options, hopper, True)
    if b[2] > 0:
        rows.append((ratio, stage, a[0][:45], a[1], a[3], b[3], a[5], b[5], a[4], b[4], run))
for x in sorted(rows):
    print("%.3f %-6s %-45s %-5s merged %4d->%4d buckets %d->%d ctas %5d->%5d %s" % x)
