#!/usr/bin/env python3
"""Stage 8 (hopper) against stage 7 (pat), from one run's patlab bench rows (categories.jsonl,
suite.jsonl of this folder or ../2026-12-02-h200-stage8), against issue 12's targets:
  - shared-prefix workloads of >= 128 MB unique bytes: stage 8's median and lowest % of the copy
    bandwidth on unique bytes (targets: median >= 70%, none below 50%);
  - on those, stage 7 time / stage 8 time, geometric mean (target >= 1.3);
  - every workload: stage 8 never more than 3% slower than stage 7 (eager medians, and graph).
    python3 summarize.py DIR  ->  markdown on stdout
"""
import json
import math
import pathlib
import statistics
import sys

ROOT = pathlib.Path(__file__).resolve().parents[3]
sys.path.insert(0, str(ROOT / "tools"))
import suite_file  # noqa: E402
from summarize_results import shares_prefix  # noqa: E402

#: Unique bytes from which issue 12's bandwidth and speed-up targets apply.
LARGE_BYTES = 128e6
#: Slower than stage 7 by more than this fraction counts against "never more than 3% slower".
SLOWER = 0.03


def load(folder: pathlib.Path):
    categories = {}
    for name in ("suite-categories.txt", "suite.txt"):
        for line, cat in suite_file.categories_by_line(ROOT / "tools" / name).items():
            categories.setdefault(line, cat)
    rows = []
    for name in ("categories.jsonl", "suite.jsonl"):
        path = folder / name
        if not path.exists():
            continue
        runs, res = {}, {}
        for text in path.read_text().splitlines():
            r = json.loads(text)
            if r.get("table") == "run":
                runs[r["workload"]] = r
            elif r.get("table") == "results":
                res.setdefault(r["workload"], {})[r["stage"]] = r
        for w, stages in res.items():
            p, h = stages.get("pat"), stages.get("hopper")
            rows.append({"workload": w, "file": name, "category": categories.get(w, "suite"),
                         "unique": runs[w]["unique bytes (KV + q + out)"], "shared": shares_prefix(w),
                         "pat": p, "hopper": h if h and h.get("time_us") else None,
                         "skip": (h or {}).get("check", "") if not (h and h.get("time_us")) else ""})
    return rows


def geomean(xs):
    return math.exp(sum(math.log(x) for x in xs) / len(xs)) if xs else float("nan")


def main() -> int:
    folder = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else pathlib.Path(__file__).parent)
    rows = load(folder)
    timed = [r for r in rows if r["hopper"] and r["pat"]]
    large = [r for r in timed if r["shared"] and r["unique"] >= LARGE_BYTES]
    pct = [r["hopper"]["pct_copy"] for r in large]
    ratio = lambda r, key="time_us": r["pat"][key] / r["hopper"][key]  # noqa: E731
    slower = [r for r in timed if ratio(r) < 1 - SLOWER]
    slower_graph = [r for r in timed if r["pat"].get("graph_us") and ratio(r, "graph_us") < 1 - SLOWER]
    out = [f"# Stage 8 against stage 7: {folder.name}", "",
           f"{len(timed)} workloads timed on both stages; {len(rows) - len(timed)} not run on stage 8 (shapes it is not built for).", "",
           "| target (issue 12) | measured | met |", "| --- | --- | --- |",
           f"| shared prefix, >= 128 MB: median % of copy bandwidth >= 70 | {statistics.median(pct):.1f}% over {len(large)} workloads | {'yes' if statistics.median(pct) >= 70 else 'no'} |",
           f"| ... none below 50% | lowest {min(pct):.1f}%, {sum(p < 50 for p in pct)} below 50% | {'yes' if min(pct) >= 50 else 'no'} |",
           f"| ... stage 7 / stage 8 time, geometric mean >= 1.3 | {geomean([ratio(r) for r in large]):.2f} (graph replay {geomean([ratio(r, 'graph_us') for r in large]):.2f}) | {'yes' if geomean([ratio(r) for r in large]) >= 1.3 else 'no'} |",
           f"| never more than 3% slower than stage 7 | {len(slower)} of {len(timed)} workloads slower by more (eager), {len(slower_graph)} (graph replay) | {'yes' if not slower else 'no'} |",
           "", "All workloads (eager medians of 20 CUDA-event timings, cold L2; x = stage 7 time / stage 8 time):", "",
           "| workload | category | unique MB | shares | stage 7 us | stage 8 us | x eager | x graph | % copy 7 | % copy 8 | stage 8 buckets |",
           "| --- | --- | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |"]
    for r in rows:
        if not r["hopper"]:
            out.append(f"| `{r['workload']}` | {r['category']} | {r['unique'] / 1e6:.0f} | {'yes' if r['shared'] else 'no'} | {r['pat']['time_us']:.1f} | {r['skip']} | | | | | |")
            continue
        buckets = r["hopper"]["notes"].split(" in ")[1].split("),")[0] + ")" if " in " in r["hopper"]["notes"] else ""
        out.append(f"| `{r['workload']}` | {r['category']} | {r['unique'] / 1e6:.0f} | {'yes' if r['shared'] else 'no'} | "
                   f"{r['pat']['time_us']:.1f} | {r['hopper']['time_us']:.1f} | {ratio(r):.2f} | "
                   f"{ratio(r, 'graph_us'):.2f} | {r['pat']['pct_copy']:.1f} | {r['hopper']['pct_copy']:.1f} | {buckets} |")
    print("\n".join(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
