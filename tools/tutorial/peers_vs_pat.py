#!/usr/bin/env python3
"""Chapter 20's comparison of stage 7 with the peers on a suite run (tutorial/20-peers.md): the
headline, each peer against `pat`, the workloads where a peer wins and the figures the chapter
quotes about FlashInfer's backends.

    python3 tools/tutorial/peers_vs_pat.py RESULTS_DIR

RESULTS_DIR holds the run's patlab.jsonl and peers.jsonl (docs/results/2026-11-22-h100-suite).
"""
import collections
import json
import math
import pathlib
import sys

import suite_results as sr

if len(sys.argv) != 2:
    sr.fail("usage: peers_vs_pat.py RESULTS_DIR")
d = pathlib.Path(sys.argv[1])
for name in ("patlab.jsonl", "peers.jsonl"):
    if not (d / name).is_file():
        sr.fail(f"no {name} in {d}")
pat, best_stage, run = {}, {}, {}
for line in open(d / "patlab.jsonl"):
    w = json.loads(line)
    stages = {s["stage"]: s for s in w["compare"]["results"]}
    pat[w["key"]] = stages["pat"]
    best_stage[w["key"]] = min(s["time_us"] for s in stages.values())
    run[w["key"]] = sr.run_fields(w["compare"]["run"])
peers = collections.defaultdict(dict)
for line in open(d / "peers.jsonl"):
    r = json.loads(line)
    if r["status"] == "PASS":
        peers[r["key"]][r["peer"]] = r["time_us"]

gm = lambda xs: math.exp(sum(map(math.log, xs)) / len(xs))
t = {k: s["time_us"] for k, s in pat.items()}
best = {k: min(peers[k].items(), key=lambda p: p[1]) for k in pat}
sharing = lambda k: "," in k.split()[1].split("_")[0]  # more than one tree level

def headline(keys, ours, label):
    r = [best[k][1] / ours[k] for k in keys]
    print(f"{label}: x{gm(r):.2f} geometric mean, faster on {sum(x > 1 for x in r)} of {len(r)}")

print(f"workloads {len(pat)}, peer rows that passed the check {sum(map(len, peers.values()))}")
headline(list(pat), t, "stage pat vs best peer")
headline([k for k in pat if sharing(k)], t, "  shared-prefix trees")
headline([k for k in pat if not sharing(k)], t, "  no sharing")
headline(list(pat), best_stage, "best patlab stage vs best peer")
print("best peer:", ", ".join(f"{p} {n}" for p, n in collections.Counter(b[0] for b in best.values()).most_common()))

print("\npeer            pat faster  peer time / pat time (geometric mean)")
for p in peers[next(iter(pat))]:
    r = [peers[k][p] / t[k] for k in pat]
    print(f"{p:15} {sum(x > 1 for x in r):3} of {len(r)}  x{gm(r):.2f}")

print("\npeer faster than stage pat: pat us (model bytes / unique, % copy on model bytes); faster peers: us, pat / peer")
for k in pat:
    faster = sorted((us, p) for p, us in peers[k].items() if us < t[k])
    if faster:
        s, copy = pat[k], run[k]["copy GB/s"]
        print(f"{k}\n    pat {t[k]:.1f} us ({s['model_bytes'] / s['unique_bytes']:.2f}, "
              f"{100 * s['model_bytes'] / (t[k] * 1e3) / copy:.1f}%); "
              + ", ".join(f"{p} {us:.1f} us x{t[k] / us:.3f}" for us, p in faster))

print("\nlargest leads of stage pat over the best peer")
for k in sorted(pat, key=lambda k: t[k] / best[k][1])[:5]:
    print(f"  {k}: pat {t[k]:.1f} us, {best[k][0]} {best[k][1]:.1f} us, x{best[k][1] / t[k]:.2f}")

print("\n256_4096 (no sharing): fi-cascade / fi-cascade-fa2 and fi-decode-tc / fi-decode")
for k in pat:
    if k.startswith("--tree 256_4096"):
        p = peers[k]
        print(f"  {k.split()[-1]:5}  x{p['fi-cascade'] / p['fi-cascade-fa2']:.2f}  x{p['fi-decode-tc'] / p['fi-decode']:.2f}")

print("shared-prefix trees, geometric mean of fi-decode-tc / fi-decode")
for h in ("32/32", "16/8", "32/8", "64/8"):
    r = [peers[k]["fi-decode-tc"] / peers[k]["fi-decode"] for k in pat if sharing(k) and k.endswith(h)]
    print(f"  {h:5}  x{gm(r):.2f} over {len(r)}")

print("\n1,10_4096,416: fi-decode-tc's per-request KV bytes over its time, against the copy bandwidth")
for k in pat:
    if "1,10_4096,416" in k:
        b, us = run[k]["per-request KV bytes"], peers[k]["fi-decode-tc"]
        print(f"  {k.split()[-1]:5}  {b / 1e6:.1f} MB / {us:.1f} us = {b / us / 1e3:.0f} GB/s"
              f"  (copy {run[k]['copy GB/s']:.0f} GB/s)  pat {t[k]:.1f} us, {pat[k]['notes'].split(' in ')[0]}")
