#!/usr/bin/env python3
"""Time against shared-prefix length: stage 3 (splitkv), stage 7 (pat) and every peer that passed
its check, from a suite run over workloads that differ only in the prompt length
(tools/figures/prefix_sweep.sh runs it on the GPU machine; tools/figures/prefix_sweep.txt lists
them: --tree 1,R_P,OWN with P varying).

    python3 tools/figures/prefix_sweep.py RESULTS_DIR OUT.png [--stages splitkv,pat]

RESULTS_DIR holds the run's patlab.jsonl (one patlab compare record per workload) and
peers.jsonl (one row per peer and workload). Workloads must all be two-level trees with the same
requests, own length and heads; the x axis is the prompt length P.
"""
import argparse
import pathlib
import re

import figures_common as fc

TREE = re.compile(r"--tree 1,(\d+)_(\d+),(\d+)(?:\s|$)")


def prefix_of(key: str):
    """(P, (requests, own tokens, the rest of the arguments)) of a sweep workload key."""
    m = TREE.search(key)
    if not m:
        fc.fail(f"workload '{key}' is not a two-level tree --tree 1,R_P,OWN")
    rest = TREE.sub("", key).strip()
    return int(m.group(2)), (int(m.group(1)), int(m.group(3)), rest)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("results_dir", type=pathlib.Path)
    p.add_argument("out")
    p.add_argument("--stages", default="splitkv,pat", help="comma-separated patlab stages to draw")
    a = p.parse_args()
    for name in ("patlab.jsonl", "peers.jsonl"):
        if not (a.results_dir / name).is_file():
            fc.fail(f"no {name} in {a.results_dir}")
    stages = a.stages.split(",")
    series, fixed, device = {}, set(), "device not recorded"
    for r in fc.read_records(a.results_dir / "patlab.jsonl"):
        P, rest = prefix_of(r["key"])
        run = r["compare"].get("run") or {}
        run = run if isinstance(run, dict) else {f["field"]: f["value"] for f in run}
        device = f"{run.get('device', device)}, commit {run.get('commit', '?')}"
        fixed.add(rest)
        rows = {x["stage"]: x for x in r["compare"]["results"]}
        for s in stages:
            if s not in rows:
                fc.fail(f"no stage '{s}' for '{r['key']}'")
            if rows[s].get("time_us"):
                series.setdefault(f"patlab {s}", {})[P] = rows[s]["time_us"]
    for r in fc.read_records(a.results_dir / "peers.jsonl"):
        P, rest = prefix_of(r["key"])
        fixed.add(rest)
        if r.get("status") == "PASS" and r.get("time_us"):
            series.setdefault(r["peer"], {})[P] = r["time_us"]
    if len(fixed) != 1:
        fc.fail(f"the workloads differ in more than the prompt length: {sorted(fixed)}")
    if not any(k.startswith("patlab ") for k in series):
        fc.fail("no timed patlab stage in patlab.jsonl (a run without a GPU times nothing)")
    (requests, own, rest), = fixed
    plt = fc.pyplot()
    fig, ax = plt.subplots(figsize=(8, 5.5))
    for name, points in series.items():
        xs = sorted(points)
        ours = name.startswith("patlab ")
        ax.plot(xs, [points[x] for x in xs], marker="o", ms=4, lw=2 if ours else 1.2,
                ls="-" if ours else "--", label=name)
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xlabel("shared prompt length P (tokens)")
    ax.set_ylabel("median time (us)")
    ax.set_title(f"time against shared-prefix length: --tree 1,{requests}_P,{own} {rest}\n{device}", fontsize=10)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(a.out, dpi=120)
    print(f"prefix_sweep.py: wrote {a.out} ({len(series)} series)")


if __name__ == "__main__":
    main()
