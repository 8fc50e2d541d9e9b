#!/usr/bin/env python3
"""Chapter 14's KV tile cap: stages 5 and 7 at n <= 64 against n <= 128 (tutorial/14-multitile.md).

    python3 tools/tutorial/kv_tile.py [FILE]

FILE (default docs/results/2026-11-22-h100-profiles/kv_tile.jsonl) holds `patlab bench ...
--format json` records written one after another, each with "args" and "max_kv_tile"; splitting
the text on `{"args"` gives one record per run. Medians to 0.1 us, the ratio to 2 decimals.
"""
import argparse
import json

import suite_results as sr

DEFAULT = sr.ROOT / "docs/results/2026-11-22-h100-profiles/kv_tile.jsonl"
STAGES = ("multitile", "pat")
CAPS = (64, 128)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("file", nargs="?", default=DEFAULT)
    a = p.parse_args()
    try:
        text = open(a.file).read()
        runs = [json.loads('{"args"' + part) for part in text.split('{"args"')[1:]]
        t = {(r["args"], x["stage"], r["max_kv_tile"]): x for r in runs for x in r["bench"]["results"]}
    except (OSError, ValueError, KeyError) as e:
        sr.fail(f"cannot read {a.file} as bench records: {e}")
    print("| workload | stage | n <= 64 (us) | n <= 128 (us) | 128 / 64 |")
    print("| --- | --- | ---: | ---: | ---: |")
    for args in dict.fromkeys(r["args"] for r in runs):
        for stage in STAGES:
            if any((args, stage, cap) not in t for cap in CAPS):
                sr.fail(f"'{args}' lacks {stage} at one of the caps {CAPS}")
            a64, a128 = (t[(args, stage, cap)] for cap in CAPS)
            print(f"| `{args}` | {stage} | {a64['time_us']:.1f} | {a128['time_us']:.1f} | "
                  f"{a128['time_us'] / a64['time_us']:.2f} |")


if __name__ == "__main__":
    main()
