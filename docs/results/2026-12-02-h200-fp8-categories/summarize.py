#!/usr/bin/env python3
"""Tables of this folder's README from its raw output: categories.jsonl (stages 4-7 per workload of
tools/suite-categories.txt), the fp8/fp16 twins, and suite67.jsonl (stages 6-7 on tools/suite.txt).

    python3 docs/results/2026-12-02-h200-fp8-categories/summarize.py
"""
import collections
import json
import math
import pathlib

HERE = pathlib.Path(__file__).resolve().parent
REPO = HERE.parents[2]
STAGES = ["packed", "multitile", "multistream", "pat"]


def load(name):
    rows, order = collections.defaultdict(dict), []
    for line in (HERE / name).read_text().splitlines():
        r = json.loads(line)
        if r.get("table") == "results":
            if r["workload"] not in rows:
                order.append(r["workload"])
            rows[r["workload"]][r["stage"]] = r
    return rows, order


def categories():
    cats, cur = {}, None
    for line in (REPO / "tools" / "suite-categories.txt").read_text().splitlines():
        s = line.strip()
        if s.startswith("# category:"):
            cur = s.split(":", 1)[1].strip()
        elif s and not s.startswith("#"):
            cats[s.split("#")[0].strip()] = cur
    return cats


def main():
    t, order = load("categories.jsonl")
    cats = categories()
    print("| category | workload | check | packed | multitile | multistream | pat | pat / multistream (eager, graph) | pat % copy |")
    print("| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for w in order:
        d = t[w]
        check = "PASS" if all(d[s]["check"] == "PASS" for s in d) else "FAIL"
        times = " | ".join("%.1f" % d[s]["time_us"] for s in STAGES)
        print("| %s | `%s` | %s | %s | %.2f, %.2f | %.1f |" % (
            cats.get(w, "?"), w, check, times, d["pat"]["time_us"] / d["multistream"]["time_us"],
            d["pat"]["graph_us"] / d["multistream"]["graph_us"], d["pat"]["pct_copy"]))
    print("\n| fp16 twin | stage | fp16 us | fp8 us | fp16 / fp8 time | fp16 / fp8 model bytes |")
    print("| --- | --- | ---: | ---: | ---: | ---: |")
    for w in order:
        if "--kv-dtype fp8" not in w:
            continue
        twin = w.replace(" --kv-dtype fp8", "")
        for s in STAGES:
            a, b = t[twin][s], t[w][s]
            print("| `%s` | %s | %.1f | %.1f | %.2f | %.2f |" % (twin, s, a["time_us"], b["time_us"],
                                                           a["time_us"] / b["time_us"], a["model_bytes"] / b["model_bytes"]))
    s, _ = load("suite67.jsonl")
    ratios = [d["pat"]["graph_us"] / d["multistream"]["graph_us"] for d in s.values() if "pat" in d]
    eager = [d["pat"]["time_us"] / d["multistream"]["time_us"] for d in s.values() if "pat" in d]
    geo = lambda xs: math.exp(sum(map(math.log, xs)) / len(xs))
    print("\nsuite67: %d workloads; pat / multistream geometric mean %.3f eager, %.3f graph; worst %.3f eager, %.3f graph"
          % (len(ratios), geo(eager), geo(ratios), max(eager), max(ratios)))


if __name__ == "__main__":
    main()
