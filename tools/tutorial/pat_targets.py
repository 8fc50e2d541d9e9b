#!/usr/bin/env python3
"""Chapter 16's missed target: on the shared-prefix trees with at least 128 MB of unique bytes,
how far stage 7 is from 70% of the copy bandwidth, and why (tutorial/16-pat.md).

    python3 tools/tutorial/pat_targets.py [--results FILE]

The selection is docs/results/.../summary.md's: a tree whose first level has fewer nodes than its
leaves (more than one level), unique bytes >= 128 MB. % copy to 0.1, ratios to 2 decimals.
"""
import argparse

import suite_results as sr

TARGET_PCT = 70
MIN_UNIQUE_BYTES = 128e6


def shares(key: str) -> bool:
    words = key.split()
    return len(words[words.index("--tree") + 1].split("_")[0].split(",")) > 1


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--results", default=sr.DEFAULT_SUITE, help="a suite's patlab.jsonl")
    a = p.parse_args()
    pat = {k: w["stages"]["pat"] for k, w in sr.load(a.results).items() if "--tree" in k.split()}
    big = [k for k in pat if shares(k) and pat[k]["unique_bytes"] >= MIN_UNIQUE_BYTES]
    miss = [k for k in big if pat[k]["pct_copy"] < TARGET_PCT]
    ratio = {k: pat[k]["model_bytes"] / pat[k]["unique_bytes"] for k in miss}
    on_model = {k: pat[k]["pct_copy"] * ratio[k] for k in miss}
    pct = sorted(pat[k]["pct_copy"] for k in miss)
    need = sorted(TARGET_PCT / pat[k]["pct_copy"] for k in miss)
    print(f"{len(big)} workloads, {len(miss)} missed; % copy {pct[0]:.1f} to {pct[-1]:.1f}, median {pct[len(pct) // 2]:.1f}")
    print(f"time reduction needed: {need[0]:.2f}x to {need[-1]:.2f}x, median {need[len(need) // 2]:.2f}x")
    bound = 100 / TARGET_PCT
    far = [k for k in miss if ratio[k] > bound]
    rest = [k for k in miss if k not in far]
    print(f"model / unique > {bound:.2f}: {len(far)}, on model bytes {min(on_model[k] for k in far):.1f} to "
          f"{max(on_model[k] for k in far):.1f}; the others: {len(rest)}, {min(on_model[k] for k in rest):.1f} to "
          f"{max(on_model[k] for k in rest):.1f}")


if __name__ == "__main__":
    main()
