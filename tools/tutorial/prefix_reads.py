#!/usr/bin/env python3
"""Chapter 16's 64-row cap: how often stage 7 reads the prefix of a two-level tree `1,S_T,own`,
and what the plan would read with packs of 128 rows (tutorial/16-pat.md).

    python3 tools/tutorial/prefix_reads.py WORKLOAD... [--results FILE]

A prefix shared by S queries at group g is read by ceil(S x g / 64) packs. The last two columns
are arithmetic, not a measurement: the same plan with the prefix read ceil(S x g / 128) times,
everything else unchanged. MB to 0.1, ratios to 2 decimals.
"""
import argparse
import math
import re

import suite_results as sr

ROWS_NOW, ROWS_WIDER = 64, 128
DTYPE_BYTES = {"fp16": 2, "bf16": 2}
K_AND_V = 2


def two_level_tree(key: str):
    """(S, T) of '--tree 1,S_T,own ...'; exit 2 for any other workload."""
    m = re.search(r"--tree 1,(\d+)_(\d+),\d+(\s|$)", key)
    if not m:
        sr.fail(f"'{key}' is not a two-level tree --tree 1,S_T,own")
    return int(m.group(1)), int(m.group(2))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("workloads", nargs="+", help="suite keys, e.g. '--tree 1,128_16384,256 --heads 32/8'")
    p.add_argument("--results", default=sr.DEFAULT_SUITE, help="a suite's patlab.jsonl")
    a = p.parse_args()
    suite = sr.load(a.results)
    for key in a.workloads:  # every input checked before the first line is printed
        sr.row(suite, key, "pat")
        two_level_tree(key)
    print("| workload | queries x group | prefix MB | reads of the prefix | prefix bytes read (MB) | model MB "
          "| unique MB | model / unique | reads with 128 rows | model / unique with 128 rows |")
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for key in a.workloads:
        s = sr.row(suite, key, "pat")
        n_queries, prefix_tokens = two_level_tree(key)
        shape = re.match(r"(\d+)/(\d+) heads, d=(\d+), page \d+, (\w+)", suite[key]["run"]["shape"])
        q_heads, kv_heads, d, dtype = int(shape[1]), int(shape[2]), int(shape[3]), shape[4]
        g = q_heads // kv_heads
        prefix = prefix_tokens * K_AND_V * kv_heads * d * DTYPE_BYTES[dtype]
        reads, reads_wider = math.ceil(n_queries * g / ROWS_NOW), math.ceil(n_queries * g / ROWS_WIDER)
        wider = s["model_bytes"] - (reads - reads_wider) * prefix
        print(f"| `{key}` | {n_queries} x {g} | {prefix / 1e6:.1f} | {reads} | {reads * prefix / 1e6:.1f} | "
              f"{s['model_bytes'] / 1e6:.1f} | {s['unique_bytes'] / 1e6:.1f} | {s['model_bytes'] / s['unique_bytes']:.2f} | "
              f"{reads_wider} | {wider / s['unique_bytes']:.2f} |")


if __name__ == "__main__":
    main()
