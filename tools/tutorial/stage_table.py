#!/usr/bin/env python3
"""Chapter 13's table: each stage's model bytes, its predicted time at the copy bandwidth of the
same run, the measured time and % of the copy bandwidth on unique bytes (tutorial/13-packed.md;
chapters 15 and 16 run it with --graph).

    python3 tools/tutorial/stage_table.py --stages SLUG[,SLUG...] [--graph] WORKLOAD... [--results FILE]

MB are 10^6 bytes, rounded to 0.1; times to 0.1 us; ratios to 2 decimals.
"""
import argparse

import suite_results as sr


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--stages", required=True, help="comma-separated stage slugs")
    p.add_argument("--graph", action="store_true", help="add the CUDA-graph replay time")
    p.add_argument("workloads", nargs="+", help="suite keys, e.g. '--tree 4_32768 --heads 32/8'")
    p.add_argument("--results", default=sr.DEFAULT_SUITE, help="a suite's patlab.jsonl")
    a = p.parse_args()
    suite = sr.load(a.results)
    for key in a.workloads:  # every input checked before the first line is printed
        for slug in a.stages.split(","):
            sr.row(suite, key, slug)
    graph_head, graph_rule = (" graph replay us |", " ---: |") if a.graph else ("", "")
    print(f"| workload | stage | model MB | predicted us | measured us |{graph_head} measured / predicted | % copy |")
    print(f"| --- | --- | ---: | ---: | ---: |{graph_rule} ---: | ---: |")
    for key in a.workloads:
        copy = suite[key]["run"]["copy GB/s"]
        for slug in a.stages.split(","):
            s = sr.row(suite, key, slug)
            pred = s["model_bytes"] / (copy * 1e3)  # microseconds at the measured copy bandwidth
            graph = f" {s['graph_us']:.1f} |" if a.graph else ""
            print(f"| `{key}` | {slug} | {s['model_bytes'] / 1e6:.1f} | {pred:.1f} | {s['time_us']:.1f} |{graph} "
                  f"{s['time_us'] / pred:.2f} | {s['pct_copy']:.1f} |")


if __name__ == "__main__":
    main()
