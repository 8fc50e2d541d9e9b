#!/usr/bin/env python3
"""Stage 8, N / A, on the lines both halves of a run_issue12_ab.sh run measured (RUN/a/suite and
RUN/n/suite): per line eager and replayed, then the geometric means and the range.
   stage8_ab.py RUN_FOLDER [--lines]"""
import math
import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[3] / "tools"))
import bench_rows  # noqa: E402

args = sys.argv[1:]
if not args or args[0].startswith("--"):
    sys.exit(__doc__)
run = pathlib.Path(args[0])
a = bench_rows.read_suite([str(run / "a")], ("hopper",))
n = bench_rows.read_suite([str(run / "n")], ("hopper",))
rows = []
for key in sorted(set(a) & set(n)):
    (ra, sa), (rn, sn) = a[key], n[key]
    if not bench_rows.issue12_line(rn):
        continue
    ha, hn = sa["hopper"], sn["hopper"]
    rows.append((hn["time_us"] / ha["time_us"], hn["graph_us"] / ha["graph_us"], bench_rows.workload_name(rn)))
if "--lines" in args:
    print("| N / A eager | replayed | workload |")
    print("|---:|---:|---|")
    for e, g, name in sorted(rows):
        print(f"| {e:.3f} | {g:.3f} | {name} |")
if not rows:
    sys.exit("no line measured by both halves")
gm = lambda xs: math.exp(sum(map(math.log, xs)) / len(xs))  # noqa: E731
eager = [r[0] for r in rows]
graph = [r[1] for r in rows]
print(f"stage 8, N / A over {len(rows)} lines: eager {gm(eager):.3f} ({min(eager):.3f}-{max(eager):.3f}), "
      f"replayed {gm(graph):.3f} ({min(graph):.3f}-{max(graph):.3f}); "
      f"below 0.97: {sum(e < 0.97 for e in eager)}, above 1.03: {sum(e > 1.03 for e in eager)}")
