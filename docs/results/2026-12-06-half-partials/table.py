#!/usr/bin/env python3
"""The tables of this folder from a run's output (RUN_FOLDER as run.sh wrote it).
   table.py RUN_FOLDER

1. The check step (check-N-SIDE.jsonl): per workload and stage, the verdict of side a (fp32
   partials) and side b (--half-partials) and each side's worst row as a fraction of its bound
   (the row with the largest error / bound, as `patlab bench` reports it).
2. The A/B (ab-N-SIDE-K.jsonl): per suite line N, the partials' share of stage 8's model bytes and
   the proportional sizing 1 - 0.496 x share (../2026-12-06-cpu-partial-bytes/table.md; 0.496 of
   a partial's bytes is the half of its o that 16 bits save: 2d of 4d + 4 bytes per head), then
   B's time over A's for stages 8 and 7, eager (median of each side's two runs) and B's check;
   then geometric means over the groups the prediction names.
"""
import collections
import math
import pathlib
import re
import statistics
import sys

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[2] / "tools"))
import bench_rows  # noqa: E402

if len(sys.argv) != 2:
    sys.exit(__doc__)
folder = pathlib.Path(sys.argv[1])

# 1. the check step
verdict_re = re.compile(r"^(PASS|FAIL).*rel L2 ([0-9.e+-]+) \(bound ([0-9.e+-]+)\)")
checks = collections.defaultdict(dict)
names = {}
for f in sorted(folder.glob("check-*.jsonl")):
    _, n, side = f.stem.split("-")
    import json
    for line in f.read_text().splitlines():
        r = json.loads(line)
        if r.get("table") == "run":
            names[int(n)] = bench_rows.workload_name(r) + ", " + r["shape"].split(", ", 1)[1]
        elif r.get("table") == "checks":
            m = verdict_re.match(r["verdict"])
            checks[(int(n), r["stage"])][side] = (m.group(1), float(m.group(2)) / float(m.group(3))) if m else (r["verdict"][:40], None)
print("| check workload | stage | fp32 partials: verdict, worst row / bound | 16-bit: verdict, worst row / bound |")
print("| --- | --- | --- | --- |")
fmt = lambda v: f"{v[0]}, {v[1]:.3f}" if v and v[1] is not None else (v[0] if v else "-")
worst = {"a": 0.0, "b": 0.0}
for (n, stage), sides in sorted(checks.items()):
    for s in "ab":
        if sides.get(s) and sides[s][1] is not None:
            worst[s] = max(worst[s], sides[s][1])
    print(f"| {names.get(n, n)} | {stage} | {fmt(sides.get('a'))} | {fmt(sides.get('b'))} |")
print(f"\nlargest worst row / bound over the check step: fp32 partials {worst['a']:.3f}, 16-bit {worst['b']:.3f}\n")

# 2. the A/B
share = {}
for line in (HERE.parent / "2026-12-06-cpu-partial-bytes" / "table.md").read_text().splitlines():
    c = [x.strip() for x in line.strip().strip("|").split("|")]
    if len(c) == 6 and c[4].isdigit():
        share[int(c[4])] = float(c[1])
runs = collections.defaultdict(lambda: collections.defaultdict(list))
ab_names, ab_checks = {}, {}
for f in sorted(folder.glob("ab-*.jsonl")):
    _, n, side, _ = f.stem.split("-")
    run, stages = bench_rows.read_bench(f)
    if run is not None:
        ab_names[int(n)] = bench_rows.workload_name(run)
    for stage, r in stages.items():
        runs[(int(n), stage)][side].append(r["time_us"])
        if side == "b" and r["check"].strip() not in ("not", ""):
            ab_checks[(int(n), stage)] = r["check"].strip()


def ratio(n, stage):
    s = runs.get((n, stage))
    if not s or not s["a"] or not s["b"]:
        return None
    return statistics.median(s["b"]) / statistics.median(s["a"])


print("| line | workload | partials / model bytes | sized B / A | stage 8 B / A | stage 7 B / A | B's checks |")
print("| ---: | --- | ---: | ---: | ---: | ---: | --- |")
lines = sorted({n for n, _ in runs}, key=lambda n: (n > 900, -share.get(n, 0)))
for n in lines:
    sh = share.get(n)
    r8, r7 = ratio(n, "hopper"), ratio(n, "pat")
    chk = "/".join(ab_checks.get((n, s), "-") for s in ("hopper", "pat"))
    print(f"| {n if n < 900 else 'held-out'} | {ab_names.get(n, n)} | {sh if sh is not None else '-'} | "
          f"{'-' if sh is None else f'{1 - 0.496 * sh:.3f}'} | {r8:.3f} | {r7:.3f} | {chk} |")


def gm(xs):
    xs = [x for x in xs if x is not None]
    return math.exp(sum(map(math.log, xs)) / len(xs)) if xs else float("nan")


groups = {
    "the 23 lines below 50% on the H200": [12, 11, 52, 112, 103, 108, 60, 56, 48, 81, 47, 10, 107, 51, 55, 68, 82,
                                           59, 54, 58, 46, 50, 67],
    "64/8 deep trees (52, 60, 56, 48)": [52, 60, 56, 48],
    "share below 0.1 (112, 103, 108, 81, 107, 82)": [112, 103, 108, 81, 107, 82],
    "controls (1, 93, 45, 61) and the held-out tree": [1, 93, 45, 61, 901],
}
print("\n| lines | sized (geometric mean) | stage 8 B / A: geometric mean (range) | stage 7 B / A: geometric mean (range) |")
print("| --- | ---: | --- | --- |")
for label, ns in groups.items():
    ns = [n for n in ns if (n, "hopper") in runs]
    if not ns:  # a run without the A/B step (run 3: the check step alone)
        continue
    sized = gm([1 - 0.496 * share[n] for n in ns if n in share])
    r8 = [ratio(n, "hopper") for n in ns]
    r7 = [ratio(n, "pat") for n in ns]
    print(f"| {label} | {sized:.3f} | {gm(r8):.3f} ({min(r8):.3f}-{max(r8):.3f}) | {gm(r7):.3f} ({min(r7):.3f}-{max(r7):.3f}) |")
