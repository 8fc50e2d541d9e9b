#!/usr/bin/env python3
"""Stage 8 at --hopper-rows 192 against 128 from a run of run.sh: one Markdown row per line of
workloads.txt (stage 7 and 8 times, stage 8 / stage 7 in each process, their ratio eager and
replayed), then the geometric means and the counts more than 3% faster and slower.
    python3 summary.py RUN_DIR"""
import json
import math
import sys
from pathlib import Path


def results(path: Path) -> dict:
    rows = (json.loads(line) for line in path.read_text().splitlines() if line.strip())
    return {r["stage"]: r for r in rows if r.get("table") == "results"}


def main() -> int:
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    run = Path(sys.argv[1])
    here = Path(__file__).resolve().parent
    lines = [l.split("#")[0].strip() for l in (here / "workloads.txt").read_text().splitlines()]
    lines = [l for l in lines if l]
    print("| line | workload | stage 7 us | stage 8 us, 128 / 192 rows | 8/7 at 128 | 8/7 at 192"
          " | 192 / 128 eager | 192 / 128 graph |")
    print("|---:|---|---:|---:|---:|---:|---:|---:|")
    eager, graph = [], []
    for i, w in enumerate(lines, 1):
        a, b = results(run / f"{i}-128.jsonl"), results(run / f"{i}-192.jsonl")
        r128 = a["hopper"]["time_us"] / a["pat"]["time_us"]
        r192 = b["hopper"]["time_us"] / b["pat"]["time_us"]
        g128 = a["hopper"]["graph_us"] / a["pat"]["graph_us"]
        g192 = b["hopper"]["graph_us"] / b["pat"]["graph_us"]
        eager.append(r192 / r128)
        graph.append(g192 / g128)
        print(f"| {i} | `{w}` | {a['pat']['time_us']:.1f} | {a['hopper']['time_us']:.1f} / {b['hopper']['time_us']:.1f}"
              f" | {r128:.3f} | {r192:.3f} | {eager[-1]:.3f} | {graph[-1]:.3f} |")
    gm = lambda xs: math.exp(sum(map(math.log, xs)) / len(xs))
    print(f"\ngeometric mean 192 / 128: eager {gm(eager):.3f}, replayed {gm(graph):.3f}; "
          f"more than 3% faster (eager): {sum(x < 0.97 for x in eager)}, "
          f"more than 3% slower: {sum(x > 1.03 for x in eager)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
