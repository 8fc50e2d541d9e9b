#!/usr/bin/env python3
"""Chapter 10's prediction: a stage's model bytes at the copy bandwidth of the same run, against
the measured time (tutorial/10-naive.md, also used by chapters 11 and 12).

    python3 tools/tutorial/predict.py STAGE[,STAGE...] WORKLOAD... [--summary] [--results FILE]

WORKLOAD is a line of tools/suite.txt ("--tree 256_1024 --heads 32/8"). Prints the prediction
table, the measurement table and, with --summary, predicted / measured over every workload of the
results by head configuration. Bytes to 0.1 MB (10^6 bytes), times to 0.1 us, ratios to 0.1%.
Reads docs/results/2026-11-22-h100-suite/patlab.jsonl unless --results names another file.
"""
import argparse
import statistics

import suite_results as sr

HEADS = ("32/32", "16/8", "32/8", "64/8")


def predicted_us(r: dict, copy_gbs: float) -> float:
    return r["model_bytes"] / (copy_gbs * 1e3)  # bytes / (GB/s) = ns; / 1e3 = us


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("stages", help="comma-separated stage slugs")
    p.add_argument("workloads", nargs="+", help="suite keys, e.g. '--tree 256_1024 --heads 32/8'")
    p.add_argument("--summary", action="store_true", help="also predicted / measured over the suite")
    p.add_argument("--results", default=sr.DEFAULT_SUITE, help="a suite's patlab.jsonl")
    a = p.parse_args()
    suite = sr.load(a.results)
    stages = a.stages.split(",")
    rows = []  # every input checked before the first line is printed
    for k in a.workloads:
        for s in stages:
            r = sr.row(suite, k, s)
            rows.append((k, s, suite[k]["run"]["copy GB/s"], r))
    print("| workload | stage | notes | model bytes | model / unique | copy GB/s | predicted us |")
    print("| --- | --- | --- | ---: | ---: | ---: | ---: |")
    for k, s, copy, r in rows:
        print(f"| `{k}` | {s} | {r['notes']} | {r['model_bytes'] / 1e6:.1f} MB | "
              f"{r['model_bytes'] / r['unique_bytes']:.2f} | {copy:.0f} | {predicted_us(r, copy):.1f} |")
    print()
    print("| workload | stage | predicted us | measured us (min-max) | predicted / measured |")
    print("| --- | --- | ---: | ---: | ---: |")
    for k, s, copy, r in rows:
        pred = predicted_us(r, copy)
        print(f"| `{k}` | {s} | {pred:.1f} | {r['time_us']:.1f} ({r['min_us']:.1f}-{r['max_us']:.1f}) "
              f"| {100 * pred / r['time_us']:.1f}% |")
    if not a.summary:
        return
    print()
    print("| stage | heads | workloads | predicted / measured, min | median | max |")
    print("| --- | --- | ---: | ---: | ---: | ---: |")
    for s in stages:
        for heads in HEADS:
            v = sorted(100 * predicted_us(w["stages"][s], w["run"]["copy GB/s"]) / w["stages"][s]["time_us"]
                       for k, w in suite.items() if k.endswith("--heads " + heads))
            if v:
                print(f"| {s} | {heads} | {len(v)} | {v[0]:.1f}% | {statistics.median(v):.1f}% | {v[-1]:.1f}% |")


if __name__ == "__main__":
    main()
