#!/usr/bin/env python3
"""Chapter 12's CTA model: stage 3 predicted from stage 2's GB/s per CTA (one CTA per SM) times
stage 3's CTA count, and how often stage 3 splits (tutorial/12-splitkv.md).

    python3 tools/tutorial/splitkv_ctas.py WORKLOAD... [--results FILE]

Times to 0.1 us, rates to 0.01 GB/s, ratios to 0.1%.
"""
import argparse

import suite_results as sr


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("workloads", nargs="+", help="suite keys, e.g. '--tree 4_32768 --heads 32/8'")
    p.add_argument("--results", default=sr.DEFAULT_SUITE, help="a suite's patlab.jsonl")
    a = p.parse_args()
    suite = sr.load(a.results)
    for key in a.workloads:  # every input checked before the first line is printed
        for stage in ("gqa", "splitkv"):
            sr.ctas(sr.row(suite, key, stage))
    print("| workload | gqa CTAs | GB/s per gqa CTA | splitkv CTAs | predicted us | measured us | predicted / measured "
          "| GB/s per splitkv CTA |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for key in a.workloads:
        g, s = sr.row(suite, key, "gqa"), sr.row(suite, key, "splitkv")
        rate = g["model_bytes"] / (g["time_us"] * 1e3) / sr.ctas(g)  # GB/s per CTA
        predicted = s["model_bytes"] / (sr.ctas(s) * rate * 1e3)
        print(f"| `{key}` | {sr.ctas(g)} | {rate:.2f} | {sr.ctas(s)} | {predicted:.1f} | {s['time_us']:.1f} "
              f"| {100 * predicted / s['time_us']:.1f}% | {s['model_bytes'] / (s['time_us'] * 1e3) / sr.ctas(s):.2f} |")
    print()
    stages = {k: w["stages"] for k, w in suite.items()}
    split = [k for k, r in stages.items() if "chunks of" in r["splitkv"]["notes"]]
    ratio = [r["gqa"]["time_us"] / r["splitkv"]["time_us"] for k, r in stages.items() if k not in split]
    print(f"split: {len(split)} of {len(stages)} workloads; on the other {len(ratio)}, gqa time / splitkv time "
          f"is {min(ratio):.2f} to {max(ratio):.2f}")
    worst = max(stages, key=lambda k: stages[k]["splitkv"]["model_bytes"] / stages[k]["splitkv"]["unique_bytes"])
    s = stages[worst]["splitkv"]
    print(f"largest splitkv model / unique: {s['model_bytes'] / s['unique_bytes']:.2f} on {worst}")


if __name__ == "__main__":
    main()
