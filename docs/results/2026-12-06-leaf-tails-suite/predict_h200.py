#!/usr/bin/env python3
"""The H200 prediction of README.md: issue 12's stage-8 percent of the copy bandwidth per line of
the H200 run of main (../2026-12-05-head-suite/r3), divided by this folder's H100 stage-8 B / A
(r1 with the tails, r2 without) on the lines where the row cap and the CTA gate keep run 1's tails
(every changed line except those in A_PLAN, whose stage-8 plan under the rule is A's); then the
median, the lowest and the count below 50% over the 67 lines, and the changed lines. With
--rule3: rule 3 of ../2026-12-05-leaf-tails (at most 8 tails a pack), whose stage-8 plan is A's on
RULE3_A_PLAN too (`patlab plan W --hopper-tiles --take-leaves` of both binaries; line 61 keeps half
its tails, counted here as A's). With --rule5: rule 5 (no tails that leave the merge), under
which only RULE5_TAILS keep stage 8's tails.
   predict_h200.py [--rule3 | --rule5]   (from this folder)"""
import pathlib
import statistics
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[3] / "tools"))
import bench_rows  # noqa: E402  (the bench files' reader, written once there)

A_PLAN = {9, 10, 11, 12, 95, 98, 99, 100, 101}  # stage 8 without tails under the rule
RULE3_A_PLAN = {5, 17, 33, 37, 61, 108}  # ... and under rule 3
RULE5_TAILS = {48, 56}  # the only lines whose stage-8 plan keeps tails under rule 5
if "--rule3" in sys.argv[1:]:
    A_PLAN |= RULE3_A_PLAN
rule5 = "--rule5" in sys.argv[1:]


h200 = bench_rows.read_suite(["../2026-12-05-head-suite/r3"], ("hopper",))
with_tails, without = (bench_rows.read_suite([f], ("hopper",)) for f in ("r1", "r2"))
old, new, changed = [], [], []
for n, (run, stages) in sorted(h200.items()):
    if not bench_rows.issue12_line(run):
        continue
    ratio = 1.0
    if n in with_tails and n in without and n not in A_PLAN and (not rule5 or n in RULE5_TAILS):
        ratio = with_tails[n][1]["hopper"]["time_us"] / without[n][1]["hopper"]["time_us"]
    pct = stages["hopper"]["pct_copy"]
    old.append(pct)
    new.append(pct / ratio)
    if ratio != 1.0:
        changed.append(f"{n}: {pct:.1f} -> {pct / ratio:.1f} (B / A {ratio:.3f})")
print(f"lines: {len(old)}, changed: {len(changed)}")
print(f"median {statistics.median(old):.1f} -> {statistics.median(new):.1f}, "
      f"lowest {min(old):.1f} -> {min(new):.1f}, "
      f"below 50%: {sum(p < 50 for p in old)} -> {sum(p < 50 for p in new)}")
print("\n".join(changed))
