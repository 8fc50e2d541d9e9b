#!/usr/bin/env python3
"""The H200 prediction of README.md: issue 12's stage-8 percent of the copy bandwidth per line of
the H200 run of main (../2026-12-05-head-suite/r3), divided by this folder's H100 stage-8 B / A
(r1 with the tails, r2 without) on the lines where the row cap and the CTA gate keep run 1's tails
(every changed line except those in A_PLAN, whose stage-8 plan under the rule is A's); then the
median, the lowest and the count below 50% over the 67 lines, and the changed lines.
   predict_h200.py   (from this folder)"""
import json
import pathlib
import statistics

TARGET_UNIQUE_BYTES = 128e6  # issue 12: workloads with >= 128 MB unique bytes
A_PLAN = {9, 10, 11, 12, 95, 98, 99, 100, 101}  # stage 8 without tails under the rule


def load(folder):
    """Line number -> (run row, {stage: results row}) of FOLDER/suite/N.jsonl."""
    out = {}
    for f in pathlib.Path(folder, "suite").glob("*.jsonl"):
        run, stages = None, {}
        for line in f.read_text().splitlines():
            r = json.loads(line)
            if r.get("table") == "run":
                run = r
            elif r.get("table") == "results" and r.get("time_us") is not None:
                stages[r["stage"]] = r
        if run and "hopper" in stages:
            out[int(f.stem)] = (run, stages)
    return out


h200 = load("../2026-12-05-head-suite/r3")
with_tails, without = load("r1"), load("r2")
old, new, changed = [], [], []
for n, (run, stages) in sorted(h200.items()):
    unique = run["unique bytes (KV + q + out)"]
    if unique < TARGET_UNIQUE_BYTES or run["per-request KV bytes"] <= 1.01 * unique:
        continue
    ratio = 1.0
    if n in with_tails and n in without and n not in A_PLAN:
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
