#!/usr/bin/env python3
"""Writes plans.json for model.py: for each workload of the piece-rows A/B, the stage-8 plan's
pieces (tile, KV tokens, rows) and the wave fill's price per slot (KiB) under two patlab binaries,
A (main) and B (the branch).
   plans.py A_PATLAB B_PATLAB"""
import json
import pathlib
import re
import subprocess
import sys

if len(sys.argv) != 3:
    sys.exit(__doc__)
here = pathlib.Path(__file__).resolve().parent
script = (here.parent / "2026-12-05-piece-rows" / "run.sh").read_text()
workloads = re.findall(r'ab\+?="\|?([^"]+)"', script)
out = {}
for w in workloads:
    for side, binary in zip("ab", sys.argv[1:]):
        d = json.loads(subprocess.run([binary, "plan", *w.split(), "--hopper-tiles", "--packs", "--format", "json"],
                                      capture_output=True, text=True, check=True).stdout)
        plan = d["plan"][0] if isinstance(d["plan"], list) else d["plan"]
        hq, hkv = map(int, re.match(r"(\d+)/(\d+)", plan["shape"]).groups())
        pieces = []
        for p in d["packs"]:
            begin, end = map(int, re.match(r"\[(\d+), (\d+)\)", p["tokens"]).groups())
            pieces.append((p["tile"], end - begin, len(p["queries"].split()) * hq // hkv))
        price = int(re.search(r"model cost per slot (\d+) KiB", plan["wave fill"]).group(1))
        out[f"{w}|{side}"] = {"hkv": hkv, "pieces": pieces, "price": price}
(here / "plans.json").write_text(json.dumps(out) + "\n")
print(f"plans.json: {len(out)} plans")
