#!/usr/bin/env python3
"""Where stage 9's time goes, from `patlab bench --stage hopper cluster --cta-trace FILE` of a
build configured with -Dcta_trace=true: stage 9 records each work item (kernel `pack CxR`: cluster
size C, slice rows R; from its consumers' start to its rows written) and each folded merge after
it (`pack 0xQ`: Q queries counted in), stage 8 its CTAs. For each traced run of stage 9, per SM
(one CTA per SM), the share of the kernel's span (first start to last end on any SM) spent in
items, in merges, between them (the hand-off: waiting for the next item) and after its last
record (idle at the end); medians over the runs; with stage 8's span of the same run number for
scale. With --plot OUT.png, the first run's timeline: one lane per SM, items by cluster size,
merges in red.
   stage9_items.py TRACE.csv[.gz] [TRACE.csv[.gz] ...] [--plot OUT.png]"""
import csv
import gzip
import statistics
import sys
from collections import defaultdict

args = sys.argv[1:]
plot = None
if "--plot" in args:
    i = args.index("--plot")
    if i + 1 >= len(args):
        sys.exit(__doc__)
    plot = args[i + 1]
    del args[i:i + 2]
if not args or any(a.startswith("--") for a in args):
    sys.exit(__doc__)


def read(path):
    opener = gzip.open if path.endswith(".gz") else open  # run c2 keeps its traces gzipped
    with opener(path, "rt", newline="") as f:
        return [dict(r, start=float(r["start_us"]), end=float(r["end_us"]), sm=int(r["sm"]), run=int(r["run"]))
                for r in csv.DictReader(f)]


def kind(r):
    """('item', C, R) or ('merge', 0, Q) from the record's kernel name 'pack MxN'."""
    m, n = r["kernel"].split()[1].split("x")
    return ("merge" if m == "0" else "item", int(m), int(n))


def shares(recs):
    span0 = min(r["start"] for r in recs)
    span1 = max(r["end"] for r in recs)
    span = span1 - span0
    by_sm = defaultdict(list)
    for r in recs:
        by_sm[r["sm"]].append(r)
    item = merge = gap = tail = 0.0
    long_merges = 0
    for rs in by_sm.values():
        rs.sort(key=lambda r: r["start"])
        t = span0
        for r in rs:
            gap += max(0.0, r["start"] - t)
            d = r["end"] - r["start"]
            if kind(r)[0] == "merge":
                merge += d
                long_merges += d > 1.0
            else:
                item += d
            t = max(t, r["end"])
        tail += span1 - t
    total = span * len(by_sm)
    return span, len(by_sm), item / total, merge / total, gap / total, tail / total, long_merges


print("| trace | stage 8 span us | stage 9 span us | SMs | items | merges | hand-offs | idle at end | merges > 1 us |")
print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
for path in args:
    rows = read(path)
    runs = sorted({r["run"] for r in rows})
    s8 = [max(r["end"] for r in rows if r["stage"] == "hopper" and r["run"] == k) -
          min(r["start"] for r in rows if r["stage"] == "hopper" and r["run"] == k)
          for k in runs if any(r["stage"] == "hopper" and r["run"] == k for r in rows)]
    per = [shares([r for r in rows if r["stage"] == "cluster" and r["run"] == k]) for k in runs
           if any(r["stage"] == "cluster" and r["run"] == k for r in rows)]
    if not per:
        print(f"| {path} | no stage-9 records |")
        continue
    med = [statistics.median(p[i] for p in per) for i in range(7)]
    s8m = f"{statistics.median(s8):.1f}" if s8 else "-"
    print(f"| {path} | {s8m} | {med[0]:.1f} | {med[1]:.0f} | {100 * med[2]:.1f}% | {100 * med[3]:.1f}% | "
          f"{100 * med[4]:.1f}% | {100 * med[5]:.1f}% | {med[6]:.0f} |")

if plot:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    rows = [r for r in read(args[0]) if r["stage"] == "cluster" and r["run"] == 0]
    t0 = min(r["start"] for r in rows)
    sms = sorted({r["sm"] for r in rows})
    lane = {s: i for i, s in enumerate(sms)}
    colors = {1: "tab:blue", 2: "tab:green", 4: "tab:purple"}
    fig, ax = plt.subplots(figsize=(12, 6))
    for r in rows:
        k, c, _ = kind(r)
        ax.broken_barh([(r["start"] - t0, r["end"] - r["start"])], (lane[r["sm"]] - 0.4, 0.8),
                       facecolors="tab:red" if k == "merge" else colors.get(c, "tab:gray"), linewidth=0)
    ax.set_xlabel("us from the first item's start")
    ax.set_ylabel("SM (one stage-9 CTA each)")
    ax.set_title(f"{args[0]}: stage 9's items (blue solo, green 2-CTA, purple 4-CTA) and folded merges (red)")
    fig.tight_layout()
    fig.savefig(plot, dpi=110)
