#!/usr/bin/env python3
"""Every stage on every suite workload, one panel per head configuration, from a suite's suite.json
(tools/peers/report.py writes it): the speedup over stage 3 (splitkv) of each stage and of the
best peer (dashed), or with --metric pct_copy each one's % of the copy bandwidth on unique bytes.
Readable at page width: about 20 workloads per panel.

    python3 tools/figures/stages_by_heads.py SUITE_JSON... OUT.png [--metric speedup|pct_copy]

Several SUITE_JSON (the parts of a suite run in several device calls) are drawn as one suite.

For example, the H100 suite of 2026-11-22 (the figures of chapters 13, 16 and 20):
    python3 tools/figures/stages_by_heads.py docs/results/2026-11-22-h100-suite/suite.json docs/figures/stages_by_heads.png
    python3 tools/figures/stages_by_heads.py docs/results/2026-11-22-h100-suite/suite.json \
        docs/figures/stages_by_heads_copy.png --metric pct_copy
"""
import argparse
import re

import figures_common as fc

BASELINE = "splitkv"
HEADS_RE = re.compile(r"--heads (\d+/\d+)")
#: The heads in a row's shape ("40/8 heads, d=128, ..."), for workloads set by --model or a preset.
SHAPE_HEADS_RE = re.compile(r"^(\d+/\d+) heads")
COLUMNS = 2
DPI = 120


def panels(suite: dict, metric: str):
    """{heads: [(tree, {stage: value}, best peer's value)]} in the suite's order, and the stage order.
    The value is the time (us) or % copy; the best peer is the fastest one."""
    by_heads, stages = {}, []
    for w in suite["workloads"]:
        m = HEADS_RE.search(w["key"]) or next(
            (h for r in w["rows"] if (h := SHAPE_HEADS_RE.match(str(r.get("shape") or "")))), None)
        if not m:
            fc.fail(f"workload '{w['key']}' has no --heads and no row with a shape")
        field = "time_us" if metric == "speedup" else "pct_copy"
        ours = {r["name"]: r[field] for r in w["rows"] if r["source"] == "patlab" and r.get(field)}
        peers = [(r["time_us"], r[field]) for r in w["rows"] if r["source"] != "patlab" and r.get("time_us")]
        if BASELINE not in ours:
            fc.fail(f"workload '{w['key']}' has no {BASELINE} time")
        stages += [s for s in ours if s not in stages]
        tree = w["key"].split("--tree ")[-1].split(" --")[0] if "--tree" in w["key"] else w["key"]
        by_heads.setdefault(m.group(1), []).append((tree, ours, min(peers)[1] if peers else None))
    return by_heads, stages


def device(suite: dict) -> str:
    """Device, commit(s) and day(s) of the runs (a suite in parts names each part's commit)."""
    runs = suite.get("runs", {}).get("patlab", [])
    fields = runs[0] if runs else {}
    commits = list(dict.fromkeys(str(r.get("commit", "?")) for r in runs)) or ["?"]
    days = sorted({str(r.get("date", "?"))[:10] for r in runs}) or ["?"]
    return f"{fields.get('device', 'device not recorded')}, commit{'s' if len(commits) > 1 else ''} " \
           f"{', '.join(commits)}, {days[0] if len(days) == 1 else days[0] + ' to ' + days[-1]}"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("suite_json", nargs="+", help="suite.json of a run, or of each of its parts")
    p.add_argument("out")
    p.add_argument("--metric", default="speedup", help="speedup (over splitkv, log scale) or pct_copy")
    a = p.parse_args()
    if a.metric not in ("speedup", "pct_copy"):
        fc.fail(f"--metric '{a.metric}' is neither speedup nor pct_copy")
    suite = {"workloads": [], "runs": {"patlab": []}}
    for path in a.suite_json:
        part = fc.read_json(path)
        if not isinstance(part, dict) or "workloads" not in part:
            fc.fail(f"{path} has no 'workloads' (expected tools/peers/report.py's suite.json)")
        suite["workloads"] += part["workloads"]
        suite["runs"]["patlab"] += part.get("runs", {}).get("patlab", [])
    by_heads, stages = panels(suite, a.metric)
    speedup = a.metric == "speedup"

    def value(o, stage):  # the plotted value of one stage on one workload
        if stage not in o:
            return None
        return o[BASELINE] / o[stage] if speedup else o[stage]

    plt = fc.pyplot()
    rows = (len(by_heads) + COLUMNS - 1) // COLUMNS
    fig, axes = plt.subplots(rows, COLUMNS, figsize=(13, 5.2 * rows), squeeze=False)
    colors = plt.cm.viridis([i / max(1, len(stages) - 1) for i in range(len(stages))])
    for ax, (heads, ws) in zip(axes.flat, by_heads.items()):
        x = range(len(ws))
        for stage, color in zip(stages, colors):
            ax.plot(x, [value(o, stage) for _, o, _ in ws], marker="o", ms=3, lw=1.2, color=color, label=stage)
        ax.plot(x, [(o[BASELINE] / b if speedup else b) if b else None for _, o, b in ws], "k--", lw=1.2,
                label="best peer")
        if speedup:
            ax.set_yscale("log")
        ax.set_title(f"heads {heads} (query/KV): {len(ws)} workloads")
        ax.set_xticks(list(x))
        ax.set_xticklabels([t for t, _, _ in ws], rotation=90, fontsize=7)
        ax.set_ylabel(f"speedup over {BASELINE}" if speedup else "% of copy bandwidth\non unique bytes")
        ax.grid(True, which="both", alpha=0.3)
    for ax in list(axes.flat)[len(by_heads):]:
        ax.set_visible(False)
    handles, labels = axes.flat[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="upper center", ncol=len(labels), bbox_to_anchor=(0.5, 0.965), fontsize=9)
    what = f"speedup over {BASELINE}" if speedup else "% of the copy bandwidth on unique bytes"
    fig.suptitle(f"patlab stages and the best peer on the suite, by head configuration: {what}\n{device(suite)}, "
                 "cold L2; x: the workload's --tree", y=0.995)
    fig.tight_layout(rect=(0, 0, 1, 0.95))
    fig.savefig(a.out, dpi=DPI)
    print(f"stages_by_heads.py: wrote {a.out} ({a.metric}, {len(by_heads)} panels, "
          f"{sum(map(len, by_heads.values()))} workloads)")


if __name__ == "__main__":
    main()
