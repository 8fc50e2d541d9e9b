#!/usr/bin/env python3
"""Predicted against measured time per stage: predicted = the stage's model bytes (the planner's
byte count, `model_bytes`) over a bandwidth, measured = the median CUDA-event time (`time_us`),
from `patlab compare` (or `bench`) output saved as JSON or JSONL. One point per stage and workload,
log-log, the line where prediction and measurement agree drawn through.

    python3 tools/figures/predicted_vs_measured.py COMPARE_FILE OUT.png --bandwidth GBS|run

COMPARE_FILE: `--format json` output (one object with "run" and "results"), `--format jsonl`
output (rows with a "table" key), or a suite's patlab.jsonl (one {"compare": ...} per line).
--bandwidth: GB/s for every point, or `run` for each run's own "copy GB/s" field (the copy
bandwidth patlab measured in the same process, as the chapters predict). For example (chapter 16):
    python3 tools/figures/predicted_vs_measured.py docs/results/2026-11-22-h100-suite/patlab.jsonl \\
        docs/figures/predicted_vs_measured.png --bandwidth run
"""
import argparse

import figures_common as fc

STAGE_ORDER = ("naive", "gqa", "splitkv", "packed", "multitile", "multistream", "pat")


def run_fields(run) -> dict:
    return run if isinstance(run, dict) else {f["field"]: f["value"] for f in (run or [])}


def runs_of(records):
    """[(run fields, results rows)] from any of the three saved forms."""
    runs = []
    for r in records:
        if not isinstance(r, dict):
            fc.fail("a record is not a JSON object")
        r = r.get("compare") or r.get("bench") or r
        if "results" in r:
            runs.append((run_fields(r.get("run")), r["results"]))
        elif r.get("table") == "run":
            runs.append(({k: v for k, v in r.items() if k != "table"}, []))
        elif r.get("table") == "results":
            if not runs:
                runs.append(({}, []))
            runs[-1][1].append(r)
    if not any(rows for _, rows in runs):
        fc.fail("no results rows (expected patlab compare/bench --format json or jsonl output)")
    return runs


def points(runs, bandwidth: str):
    """{stage: [(predicted us, measured us)]} for the rows with bytes and a time."""
    by_stage = {}
    for fields, rows in runs:
        if bandwidth == "run":
            if "copy GB/s" not in fields:
                fc.fail("--bandwidth run: a run has no 'copy GB/s' field; give the bandwidth in GB/s")
            gbs = fields["copy GB/s"]
        else:
            gbs = float(bandwidth)
        for row in rows:
            if row.get("model_bytes") and row.get("time_us"):
                by_stage.setdefault(row["stage"], []).append((row["model_bytes"] / (gbs * 1e3), row["time_us"]))
    if not by_stage:
        fc.fail("no row has both model_bytes and time_us (a run without a GPU times nothing)")
    return by_stage


def check_bandwidth(text: str) -> None:
    """Exit 2 unless --bandwidth is a positive number of GB/s or 'run'."""
    if text == "run":
        return
    try:
        ok = float(text) > 0
    except ValueError:
        ok = False
    if not ok:
        fc.fail(f"--bandwidth '{text}' is neither a positive GB/s nor 'run'")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("compare_file")
    p.add_argument("out")
    p.add_argument("--bandwidth", required=True, help="GB/s, or 'run' for each run's copy GB/s")
    a = p.parse_args()
    check_bandwidth(a.bandwidth)
    runs = runs_of(fc.read_records(a.compare_file))
    by_stage = points(runs, a.bandwidth)
    plt = fc.pyplot()
    stages = sorted(by_stage, key=lambda s: STAGE_ORDER.index(s) if s in STAGE_ORDER else len(STAGE_ORDER))
    cols = min(4, len(stages))
    rows = (len(stages) + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(3.4 * cols, 3.3 * rows + 0.6), sharex=True, sharey=True,
                             squeeze=False)
    lo = min(min(min(xy) for xy in v) for v in by_stage.values())
    hi = max(max(max(xy) for xy in v) for v in by_stage.values())
    for ax, stage in zip(axes.flat, stages):
        pred, meas = zip(*by_stage[stage])
        ax.plot([lo, hi], [lo, hi], "k-", lw=1)
        ax.scatter(pred, meas, s=10, color="tab:blue", alpha=0.7)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_title(f"{stage} ({len(pred)} runs)", fontsize=10)
        ax.grid(True, which="both", alpha=0.3)
    for ax in list(axes.flat)[len(stages):]:
        ax.set_visible(False)
    bw = "each run's copy GB/s" if a.bandwidth == "run" else f"{float(a.bandwidth):g} GB/s"
    fig.supxlabel(f"predicted us: model bytes / {bw}")
    fig.supylabel("measured us (median)")
    device = runs[0][0].get("device", "device not recorded")
    fig.suptitle(f"predicted against measured per stage (the line: measured = predicted)\n{device}, commit "
                 f"{runs[0][0].get('commit', '?')}", fontsize=11)
    fig.tight_layout()
    fig.savefig(a.out, dpi=120)
    print(f"predicted_vs_measured.py: wrote {a.out} ({sum(map(len, by_stage.values()))} points, {len(runs)} runs)")


if __name__ == "__main__":
    main()
