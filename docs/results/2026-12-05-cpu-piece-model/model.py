#!/usr/bin/env python3
"""Stage 8's plans of the piece-rows A/B (../2026-12-05-piece-rows, run 1) against a schedule model
in which a 128- or 192-row CTA has an SM to itself. Reads plans.json (each workload's stage-8 pieces
under main's and the branch's planner: `plans.py A_PATLAB B_PATLAB` writes it) and the measured
stage-8 times of that run (ab-N-SIDE-K.jsonl, medians per side). Fits the model's four constants
on all 32 times (a grid), then on 15 workloads at a time for the 16th (leave one out), and prints,
per workload, the measured B / A beside the model's.
   model.py [RUN_FOLDER]   (default ../2026-12-05-piece-rows/r1)

The model: every CTA of a piece (one per KV head) runs `f0 + tokens x u` microseconds, u = u16 for
the pack kernel's 16- and 32-row tiles (1.5 u16 for its 64-row tile), u192 x m / 192 for stage
8's 128- and 192-row tiles (m the tile's rows); a CTA takes 1/k of an SM, k its CTAs per SM (3 for the pack kernel's
16- and 32-row tiles, 2 for 64 rows and stage 8's 64-row tile, 1 for 128 and 192 rows); CTAs start
in the launch order of stages 7-8 (fewest per SM first, then longest) on the first SM with room,
list scheduling; the batch takes the longer of that schedule and the KV bytes over 4.25 TB/s, plus
its pieces' partials (rows x d x 4 bytes a KV head, written and read again) over the bandwidth
times a weight w."""
import glob
import heapq
import itertools
import json
import math
import pathlib
import re
import statistics
import sys

here = pathlib.Path(__file__).resolve().parent
run = pathlib.Path(sys.argv[1]) if len(sys.argv) > 1 else here.parent / "2026-12-05-piece-rows" / "r1"
plans = json.loads((here / "plans.json").read_text())
workloads = list(dict.fromkeys(k.split("|")[0] for k in plans))
times = {}
for f in glob.glob(str(run / "ab-*.jsonl")):
    n, side, _ = pathlib.Path(f).stem.split("-")[1:]
    for line in open(f):
        r = json.loads(line)
        if r.get("table") == "results" and r["stage"] == "hopper":
            times.setdefault((int(n), side), []).append(r["time_us"])
measured = {w: (statistics.median(times[(i + 1, "a")]), statistics.median(times[(i + 1, "b")]))
            for i, w in enumerate(workloads)}
SMS, BW, D = 132, 4.25e6, 128  # SMs, bytes per microsecond (the copy bandwidth), head dim


def per_sm(tile):
    m = int(tile.split("x")[0])
    if tile.endswith("h"):
        return 1 if m >= 128 else 2
    return 2 if m == 64 else 3


def batch_time(plan, u16, u192, f0, w):
    ctas, partial_bytes = [], 0
    for tile, tokens, rows in plan["pieces"]:
        m = int(re.match(r"\d+", tile).group())
        u = u192 * m / 192 if tile.endswith("h") and m >= 128 else u16 * (1.5 if m == 64 else 1)
        ctas += [(per_sm(tile), f0 + tokens * u, tokens)] * plan["hkv"]
        partial_bytes += rows * D * 4 * 2 * plan["hkv"]
    ctas.sort(key=lambda c: (c[0], -c[1]))
    room, running, now, end = [1.0] * SMS, [], 0.0, 0.0
    for k, duration, _ in ctas:
        need = 1.0 / k
        while max(room) < need - 1e-9:
            finish, sm, share = heapq.heappop(running)
            now, room[sm] = max(now, finish), room[sm] + share
        sm = room.index(max(room))
        room[sm] -= need
        heapq.heappush(running, (now + duration, sm, need))
        end = max(end, now + duration)
    kv_bytes = sum(c[2] for c in ctas) * D * 2 * 2
    return max(end, kv_bytes / BW) + w * partial_bytes / BW


GRID = list(itertools.product([0.03, 0.04, 0.05, 0.06], [0.02, 0.025, 0.03, 0.035, 0.04, 0.05],
                              [0, 1, 2, 4, 6], [0, 0.5, 1, 2, 3]))


def fit(names):
    def err(p):
        return sum(math.log(batch_time(plans[f"{n}|{s}"], *p) / measured[n][i]) ** 2
                   for n in names for i, s in enumerate("ab"))
    return min(GRID, key=err)


whole = fit(workloads)
print(f"fit on all 16 workloads: u16 {whole[0]} us/token, u192 {whole[1]} us/token, f0 {whole[2]} us, w {whole[3]}")
print("| workload | measured B / A | model, fit on all | model, fit without it | current price B / A |")
print("| --- | ---: | ---: | ---: | ---: |")
right_all = right_out = 0
for n in workloads:
    a, b = measured[n]
    p_out = fit([x for x in workloads if x != n])
    m_all = batch_time(plans[f"{n}|b"], *whole) / batch_time(plans[f"{n}|a"], *whole)
    m_out = batch_time(plans[f"{n}|b"], *p_out) / batch_time(plans[f"{n}|a"], *p_out)
    price = plans[f"{n}|b"]["price"] / plans[f"{n}|a"]["price"]
    # the model names the faster side: both within 2% of a tie, or the same side by more than 1%
    same = lambda m: (abs(b / a - 1) < 0.02 and abs(m - 1) < 0.02) or ((b / a - 1) * (m - 1) > 0 and abs(m - 1) > 0.01)
    right_all += same(m_all)
    right_out += same(m_out)
    print(f"| `{n}` | {b / a:.3f} | {m_all:.3f} | {m_out:.3f} | {price:.3f} |")
print(f"\nthe faster side as measured (a tie: both within 2%; a side: by more than 1% in the model): {right_all} of 16 fit on all, "
      f"{right_out} of 16 left out")
