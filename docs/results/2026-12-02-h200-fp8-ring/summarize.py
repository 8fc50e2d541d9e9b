#!/usr/bin/env python3
"""fp16 / fp8 time per stage on the fp8 twins of tools/suite-categories.txt, this run against the
two-stage fp8 ring of ../2026-12-02-h200-fp8-categories (its categories.jsonl).

    python3 docs/results/2026-12-02-h200-fp8-ring/summarize.py [twins.jsonl]
"""
import collections
import json
import pathlib
import sys

HERE = pathlib.Path(__file__).resolve().parent
BASELINE = HERE.parent / "2026-12-02-h200-fp8-categories" / "categories.jsonl"
STAGES = ["packed", "multitile", "multistream", "pat"]
FP8 = " --kv-dtype fp8"


def load(path):
    """Results rows by workload and stage, and the workloads in file order."""
    rows, order = collections.defaultdict(dict), []
    for line in pathlib.Path(path).read_text().splitlines():
        r = json.loads(line)
        if r.get("table") == "results":
            if r["workload"] not in rows:
                order.append(r["workload"])
            rows[r["workload"]][r["stage"]] = r
    return rows, order


def main():
    now, order = load(sys.argv[1] if len(sys.argv) > 1 else HERE / "twins.jsonl")
    before, _ = load(BASELINE)
    failed = [(w, s) for w in order for s, r in now[w].items() if r["check"] != "PASS"]
    print("checks: %s\n" % ("all PASS" if not failed else "FAIL on %s" % failed))
    print("| fp16 twin | stage | fp16 us | fp8 us | fp16 / fp8 time | before: fp8 us, fp16 / fp8 | fp16 / fp8 model bytes |")
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: |")
    for w in order:
        twin = w.replace(FP8, "")
        if FP8 not in w or twin not in now:
            continue
        for s in STAGES:
            if s not in now[w] or s not in now[twin]:
                continue
            a, b = now[twin][s], now[w][s]
            old = before.get(w, {}).get(s)
            old_twin = before.get(twin, {}).get(s)
            prev = "%.1f, %.2f" % (old["time_us"], old_twin["time_us"] / old["time_us"]) if old and old_twin else "-"
            print("| `%s` | %s | %.1f | %.1f | %.2f | %s | %.2f |" % (twin, s, a["time_us"], b["time_us"],
                                                                 a["time_us"] / b["time_us"], prev,
                                                                 a["model_bytes"] / b["model_bytes"]))


if __name__ == "__main__":
    main()
