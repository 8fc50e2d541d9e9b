#!/usr/bin/env python3
"""Issue 12's 67 lines and the extra workloads of the h100all runs (run 5), both sides of the A/B.
   all_lines.py RUN_FOLDER...   (e.g. h100all h100all2; a line from the last folder that has it)

Per line N (ab-N-SIDE-K.jsonl; N > 900: the EXTRA workloads): stage 8's and stage 7's B / A time
(median of each side's runs; B = --half-partials), B's checks; then issue 12's numbers on each side
(issue12_line() selection: stage 8's median and lowest percent of the copy bandwidth on unique
bytes, lines below 50%, stage 7 / stage 8 geometric mean), both eager, each side's percent the
median of its runs' percents (tools/bench_rows.py's read_ab())."""
import math
import pathlib
import statistics
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[3] / "tools"))
import bench_rows  # noqa: E402

folders = sys.argv[1:]
if not folders:
    sys.exit(__doc__)
ab = bench_rows.read_ab(folders)
meta = ab.runs


def med(n, stage, side, key="time_us"):
    return ab.median(n, stage, side, key)


def ratio(n, stage):
    return ab.ratio(n, stage)


def gm(xs):
    xs = [x for x in xs if x is not None]
    return math.exp(sum(map(math.log, xs)) / len(xs)) if xs else float("nan")


fmt = lambda x: "-" if x is None else f"{x:.3f}"
print("| line | workload | stage 8 B / A | stage 7 B / A | stage 8 % copy A / B | B's checks (8/7) |")
print("| ---: | --- | ---: | ---: | ---: | --- |")
issue12 = []
for n in sorted(meta):
    r8, r7 = ratio(n, "hopper"), ratio(n, "pat")
    pa, pb = med(n, "hopper", "a", "pct_copy"), med(n, "hopper", "b", "pct_copy")
    chk = "/".join(ab.check(n, s) for s in ("hopper", "pat"))
    both = r8 is not None and r7 is not None
    if both and n < 900 and bench_rows.issue12_line(meta[n]):
        issue12.append(n)
    pcts = "-" if pa is None or pb is None else f"{pa:.1f} / {pb:.1f}"
    name = bench_rows.workload_name(meta[n]) if n < 900 else f"{meta[n]['workload']}, {meta[n]['shape']}"
    print(f"| {n if n < 900 else 'extra'} | {name} | {fmt(r8)} | {fmt(r7)} | {pcts} | {chk} |")

print(f"\nissue 12's lines with both sides of both stages: {len(issue12)}")
for side, label in (("a", "A (fp32 partials)"), ("b", "B (--half-partials)")):
    p = [med(n, "hopper", side, "pct_copy") for n in issue12]
    s = [med(n, "pat", side) / med(n, "hopper", side) for n in issue12]
    print(f"{label}: stage 8 median {statistics.median(p):.1f}% of the copy bandwidth, lowest {min(p):.1f}%, "
          f"{sum(x < 50 for x in p)} below 50%; stage 7 / stage 8 {gm(s):.3f}")
r8 = [ratio(n, "hopper") for n in issue12]
r7 = [ratio(n, "pat") for n in issue12]
print(f"B / A over those lines: stage 8 {gm(r8):.3f} ({min(r8):.3f}-{max(r8):.3f}), "
      f"stage 7 {gm(r7):.3f} ({min(r7):.3f}-{max(r7):.3f})")
rest = [n for n in sorted(meta) if n not in issue12]
x8 = [ratio(n, "hopper") for n in rest if ratio(n, "hopper")]
x7 = [ratio(n, "pat") for n in rest if ratio(n, "pat")]
if x8:
    print(f"B / A over the other {len(rest)} workloads: stage 8 {gm(x8):.3f} ({min(x8):.3f}-{max(x8):.3f}), "
          f"stage 7 {gm(x7):.3f} ({min(x7):.3f}-{max(x7):.3f})")
checks = {k: ab.check(*k) for k in ab.rows if ab.check(*k) != "-"}
fails = [k for k, v in checks.items() if v != "PASS"]
print(f"B's checks: {len(checks)} run, not passed: {fails if fails else 'none'}")
