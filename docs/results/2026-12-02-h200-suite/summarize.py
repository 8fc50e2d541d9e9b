#!/usr/bin/env python3
"""Summary of issue 14's suite parts (part*/suite.json of this folder, written by tools/peers/report.py).

Per workload: the best patlab stage against the best peer that passed, eager and under CUDA graph
replay (each side's own best), and x floor; per category: geometric means and the losses. Writes
best-vs-peers.md next to this file (tools/summarize_results.py on this folder writes summary.md: stages, categories, targets) and prints it.

    python3 docs/results/2026-12-02-h200-suite/summarize.py
"""
import json
import math
import pathlib

HERE = pathlib.Path(__file__).resolve().parent


def best(rows, source, key):
    ok = [r for r in rows if r["source"] == source and r.get("check") == "PASS" and r.get(key)]
    return min(ok, key=lambda r: r[key]) if ok else None


def geomean(v):
    return math.exp(sum(math.log(x) for x in v) / len(v)) if v else float("nan")


def main():
    lines, table, by_cat = [], [], {}
    parts = sorted(HERE.glob("part*/suite.json"))
    for part in parts:
        run = json.loads((part.parent / "peers_run.json").read_text())
        for w in json.loads(part.read_text())["workloads"]:
            rows = w["rows"]
            cat = rows[0].get("category", "?")
            pe, qe = best(rows, "patlab", "time_us"), best(rows, "peer", "time_us")
            pg, qg = best(rows, "patlab", "graph_us"), best(rows, "peer", "graph_us")
            if not (pe and qe):
                continue
            xe = qe["time_us"] / pe["time_us"]
            xg = qg["graph_us"] / pg["graph_us"] if pg and qg else None
            by_cat.setdefault(cat, []).append((w["key"], xe, xg, pe, qe, pg, qg))
            table.append(f"| {part.parent.name} | `{w['key']}` | {pe['name']} {pe['time_us']:.1f} | {qe['name']} "
                         f"{qe['time_us']:.1f} | {xe:.2f} | "
                         + (f"{pg['name']} {pg['graph_us']:.1f} | {qg['name']} {qg['graph_us']:.1f} | {xg:.2f}"
                            if xg else "- | - | -")
                         + f" | {pe['x_floor']:.2f} |")
        lines.append(f"- {part.parent.name}: commit {run.get('commit')}, {run.get('date')}, "
                     f"{sum(1 for _ in open(part.parent / 'patlab.jsonl'))} workloads")
    out = ["# Issue 14's suite on the H200: summary of the parts so far", "", *lines, "",
           "Ratios are best peer time / best patlab time (above 1: patlab faster), each side's own best "
           "row that passed the oracle check; graph: the same with CUDA-graph replay times.", "",
           "| category | workloads | geomean eager | below 1.0 eager | worst eager | geomean graph | below 1.0 graph | worst graph |",
           "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for cat, items in by_cat.items():
        xe = [i[1] for i in items]
        xg = [i[2] for i in items if i[2]]
        out.append(f"| {cat} | {len(items)} | {geomean(xe):.2f} | {sum(x < 1 for x in xe)} | {min(xe):.2f} | "
                   f"{geomean(xg):.2f} | {sum(x < 1 for x in xg)} | {min(xg) if xg else float('nan'):.2f} |")
    best_peers = {}
    for items in by_cat.values():
        for i in items:
            best_peers[i[4]["name"]] = best_peers.get(i[4]["name"], 0) + 1
    out += ["", "Best peer (eager) by count: " + ", ".join(f"{k} {v}" for k, v in
                                                         sorted(best_peers.items(), key=lambda kv: -kv[1])), "",
            "| part | workload | best patlab (eager us) | best peer (eager us) | x | best patlab (graph us) | "
            "best peer (graph us) | x graph | patlab x floor |",
            "|---|---|---|---|---:|---|---|---:|---:|", *table]
    text = "\n".join(out) + "\n"
    (HERE / "best-vs-peers.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
