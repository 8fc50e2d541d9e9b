#!/usr/bin/env python3
"""Chapter 15's two questions over the suite (tutorial/15-multistream.md): does stage 6 gain
where stage 5 ran several buckets, and do CUDA-graph replays gain over direct launches per stage?

    python3 tools/tutorial/buckets_graph.py [--results FILE]

Geometric means to 3 (buckets) and 4 (graph) decimals; the median difference to 0.01 us.
"""
import argparse
import math

import suite_results as sr

STAGES = ("naive", "gqa", "splitkv", "packed", "multitile", "multistream", "pat")


def gmean(xs):
    return math.exp(sum(math.log(x) for x in xs) / len(xs))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--results", default=sr.DEFAULT_SUITE, help="a suite's patlab.jsonl")
    a = p.parse_args()
    suite = {k: w["stages"] for k, w in sr.load(a.results).items()}
    for n_buckets in ("one", "several"):
        keys = [k for k in suite if ("in 1 bucket" in suite[k]["multistream"]["notes"]) == (n_buckets == "one")]
        r = [suite[k]["multitile"]["time_us"] / suite[k]["multistream"]["time_us"] for k in keys]
        print(f"{n_buckets} bucket(s): {len(keys)} workloads, stage 5 / stage 6 geometric mean {gmean(r):.3f}, "
              f"min {min(r):.3f}, max {max(r):.3f}")
    print()
    print("| stage | direct / graph (geometric mean) | graph faster on | median difference (us) |")
    print("| --- | ---: | ---: | ---: |")
    for stage in STAGES:
        xs = [suite[k][stage] for k in suite]
        d = sorted(x["time_us"] - x["graph_us"] for x in xs)
        print(f"| {stage} | {gmean([x['time_us'] / x['graph_us'] for x in xs]):.4f} | "
              f"{sum(x['graph_us'] < x['time_us'] for x in xs)} of {len(xs)} | {d[len(d) // 2]:.2f} |")


if __name__ == "__main__":
    main()
