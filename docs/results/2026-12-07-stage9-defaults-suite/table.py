#!/usr/bin/env python3
"""Stage 9 against stage 8 over a suite run (RUN_FOLDER/suite/N.jsonl, stages hopper and cluster):
the geometric mean, range and count of lines where stage 9 is the faster of stage 9 / stage 8
(eager and replayed) for issue 13's classes of lines: shared prefix with >= 128 MB unique bytes
(bench_rows.issue12_line), no sharing (summed KV within 1% of the unique bytes), small (< 20 MB
unique bytes), and the rest. With --lines, one row per line, slowest first.
   table.py RUN_FOLDER... [--lines]"""
import math
import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[3] / "tools"))
import bench_rows  # noqa: E402

SMALL_BYTES = 20e6  # issue 13's "small workloads (< 20 MB unique)"

args = sys.argv[1:]
show_lines = "--lines" in args
folders = [a for a in args if a != "--lines"]
if not folders or any(a.startswith("--") for a in folders):
    sys.exit(__doc__)


def kind(run):
    unique = run["unique bytes (KV + q + out)"]
    if unique < SMALL_BYTES:
        return "small (< 20 MB unique)"
    if bench_rows.issue12_line(run):
        return "shared prefix, >= 128 MB unique"
    if run["per-request KV bytes"] <= 1.01 * unique:
        return "no sharing"
    return "shared prefix, 20-128 MB unique"


def gmean(xs):
    return math.exp(sum(map(math.log, xs)) / len(xs))


classes, rows = {}, []
for n, (run, stages) in bench_rows.read_suite(folders, ("hopper", "cluster")).items():
    h, c = stages["hopper"], stages["cluster"]
    e, g, k = c["time_us"] / h["time_us"], c["graph_us"] / h["graph_us"], kind(run)
    classes.setdefault(k, []).append((e, g))
    rows.append((e, g, n, k, bench_rows.workload_name(run), h["time_us"], c["time_us"]))
print("| lines | n | stage 9 / stage 8 eager: geometric mean (min-max) | stage 9 faster | replayed: geometric mean |")
print("| --- | ---: | --- | ---: | ---: |")
for k in sorted(classes):
    es, gs = [x[0] for x in classes[k]], [x[1] for x in classes[k]]
    print(f"| {k} | {len(es)} | {gmean(es):.3f} ({min(es):.3f}-{max(es):.3f}) | {sum(e < 1 for e in es)} | {gmean(gs):.3f} |")
if show_lines:
    print("\n| line | class | workload | stage 8 us | stage 9 us | 9 / 8 eager | replayed |")
    print("| ---: | --- | --- | ---: | ---: | ---: | ---: |")
    for e, g, n, k, name, t8, t9 in sorted(rows, reverse=True):
        print(f"| {n} | {k} | {name} | {t8:.1f} | {t9:.1f} | {e:.3f} | {g:.3f} |")
