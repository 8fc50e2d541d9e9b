#!/usr/bin/env python3
"""Run 4's A/B table: fp8 time of binary A and binary B per twin and stage, B / A, and fp16 / fp8
for each (the fp16 twin timed by B alone, whose fp16 code A shares).

    python3 ab.py RUN_DIR A B    (RUN_DIR/A and RUN_DIR/B hold bench-tN-fp8.jsonl; RUN_DIR/B bench-tN-auto.jsonl)"""
import json
import pathlib
import sys


def results(path):
    if not path.exists():
        return {}
    return {r["stage"]: r for r in map(json.loads, path.read_text().splitlines()) if r.get("table") == "results"}


def main():
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    run, a, b = pathlib.Path(sys.argv[1]), sys.argv[2], sys.argv[3]
    print(f"| twin | stage | fp16 us | fp8 us, {a} | fp8 us, {b} | B / A | fp16 / fp8, A | fp16 / fp8, B |")
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for n in sorted(int(p.name[7:].split("-")[0]) for p in (run / b).glob("bench-t*-auto.jsonl")):
        f16, fa, fb = (results(run / d / f"bench-t{n}-{kv}.jsonl") for d, kv in ((b, "auto"), (a, "fp8"), (b, "fp8")))
        for st in f16:
            if st not in fa or st not in fb:
                continue
            t16, ta, tb = f16[st]["time_us"], fa[st]["time_us"], fb[st]["time_us"]
            shape = ", ".join(f16[st]["shape"].split(", ")[:2])
            print(f"| t{n} `{f16[st]['workload']}` {shape} | {st} | {t16:.1f} | {ta:.1f} | {tb:.1f} | {tb / ta:.3f} | "
                  f"{t16 / ta:.2f} | {t16 / tb:.2f} |")


if __name__ == "__main__":
    main()
