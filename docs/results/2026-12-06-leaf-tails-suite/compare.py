#!/usr/bin/env python3
"""Leaf tails over the suite's lines, one call: per line in both folders (B_RUN with --take-leaves,
A_RUN without; RUN/suite/N.jsonl, stages pat and hopper), B's eager time over A's for stage 7 and
stage 8, stage 8's replayed ratio and its percent of the copy bandwidth on unique bytes (A, B);
then the geometric means and how many lines moved by more than 5% and 2% either way.
   compare.py B_RUN A_RUN"""
import math
import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[3] / "tools"))
import bench_rows  # noqa: E402  (the bench files' reader, written once there)


def load(run):
    """Line N -> (its name, stages) of RUN/suite/N.jsonl, lines with stages 7 and 8."""
    return {n: (bench_rows.workload_name(r), st) for n, (r, st) in bench_rows.read_suite([run], ("pat", "hopper")).items()}


if len(sys.argv) != 3:
    sys.exit(__doc__)
b, a = load(sys.argv[1]), load(sys.argv[2])
rows = []
print("| line | workload | stage 7 B / A | stage 8 B / A | stage 8 replayed | stage 8 % copy A | B |")
print("| ---: | --- | ---: | ---: | ---: | ---: | ---: |")
for n in sorted(set(a) & set(b)):
    name, sa = a[n]
    sb = b[n][1]
    r7 = sb["pat"]["time_us"] / sa["pat"]["time_us"]
    r8 = sb["hopper"]["time_us"] / sa["hopper"]["time_us"]
    g8 = sb["hopper"]["graph_us"] / sa["hopper"]["graph_us"]
    rows.append((r7, r8))
    print(f"| {n} | {name} | {r7:.3f} | {r8:.3f} | {g8:.3f} | {sa['hopper']['pct_copy']:.1f} | "
          f"{sb['hopper']['pct_copy']:.1f} |")
gm = lambda xs: math.exp(sum(map(math.log, xs)) / len(xs))
for i, stage in enumerate(("stage 7", "stage 8")):
    xs = [r[i] for r in rows]
    print(f"\n{stage}: {len(xs)} lines, B / A geometric mean {gm(xs):.3f}; below 0.95 on {sum(x < 0.95 for x in xs)}, "
          f"above 1.02 on {sum(x > 1.02 for x in xs)}, above 1.05 on {sum(x > 1.05 for x in xs)}")
