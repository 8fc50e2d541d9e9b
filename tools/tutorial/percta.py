#!/usr/bin/env python3
"""Chapter 11's rate per CTA: GB/s on model bytes per CTA resident at once (tutorial/11-gqa.md).

    python3 tools/tutorial/percta.py STAGE:WORKLOAD... [--results FILE]

The CTAs per SM come from stage 3's notes (the occupancy calculator on its kernel, which runs the
same body); at most 132 SMs (the H100 of the committed suite) times that many CTAs are resident.
"""
import argparse
import re

import suite_results as sr


def per_sm(suite: dict, key: str) -> int:
    notes = sr.row(suite, key, "splitkv")["notes"]
    m = re.search(r"\((\d+) CTAs/SM\)", notes)
    if not m:
        sr.fail(f"stage 3's notes of '{key}' have no CTAs/SM: '{notes}'")
    return int(m.group(1))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("runs", nargs="+", metavar="STAGE:WORKLOAD")
    p.add_argument("--results", default=sr.DEFAULT_SUITE, help="a suite's patlab.jsonl")
    a = p.parse_args()
    suite = sr.load(a.results)
    runs = []
    for arg in a.runs:  # every input checked before the first line is printed
        stage, sep, key = arg.partition(":")
        if not sep:
            sr.fail(f"'{arg}' is not STAGE:WORKLOAD")
        r = sr.row(suite, key, stage)
        runs.append((key, stage, r, sr.ctas(r), per_sm(suite, key)))
    print("| workload | stage | CTAs | CTAs/SM | resident at once | GB/s on model bytes | GB/s per resident CTA |")
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: |")
    for key, stage, r, n, k in runs:
        resident = min(n, sr.H100_SMS * k)
        gbs = r["model_bytes"] / (r["time_us"] * 1e3)
        print(f"| `{key}` | {stage} | {n} | {k} | {resident} | {gbs:.1f} | {gbs / resident:.2f} |")


if __name__ == "__main__":
    main()
