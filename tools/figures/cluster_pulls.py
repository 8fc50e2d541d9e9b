#!/usr/bin/env python3
"""Stage 9's persistent grid as its work list would be pulled, drawn from
`patlab plan ... --hopper-tiles --cluster --pulls --format json`: one bar per work item, over the
CTA slots it takes (y) and the model's time (x, KV tokens: an item takes as long as the tokens
each of its CTAs reads). A multicast item spans its cluster's CTAs (one colour per KV head); the
solo items that follow are grey. One panel per plan file, so the same workload with and without
multicast (--max-cluster 1) sit side by side.

    python3 tools/figures/cluster_pulls.py PLAN_JSON... OUT.png

For example (chapter 18's figure):
    build/tools/patlab plan --tree 1,128_16384,256 --model qwen2.5-7b --hopper-tiles --cluster --pulls --format json > /tmp/c4.json
    build/tools/patlab plan --tree 1,128_16384,256 --model qwen2.5-7b --hopper-tiles --cluster --pulls --max-cluster 1 --format json > /tmp/c1.json
    python3 tools/figures/cluster_pulls.py /tmp/c4.json /tmp/c1.json docs/figures/cluster_pulls.png
"""
import argparse

import figures_common as fc

SOLO_COLOR = "0.75"
BAR_FILL = 0.9  # of a CTA slot's height


def pulls_of(path):
    """(title, launch cluster, rows of the 'pulls' table) of one plan file, or exit 2."""
    plan = fc.read_json(path)
    if not isinstance(plan, dict) or "pulls" not in plan or "cluster" not in plan or "plan" not in plan:
        fc.fail(f"{path} has no 'pulls' table (expected patlab plan ... --hopper-tiles --cluster --pulls --format json)")
    rows = plan["pulls"]
    keys = ("part", "KV head", "first CTA", "CTAs", "start", "end")
    if not rows or any(not isinstance(r, dict) or any(k not in r for k in keys) for r in rows):
        fc.fail(f"{path}: the 'pulls' table is empty or lacks one of {', '.join(keys)}")
    info = plan["plan"]
    title = f"{info.get('workload', '?')}, {info.get('shape', '?').split(',')[0]}"
    return title, plan["cluster"].get("launch cluster size", "?"), rows


def main():
    ap = argparse.ArgumentParser(description="Draw stage 9's pulled work list (patlab plan --cluster --pulls JSON).")
    ap.add_argument("plans", nargs="+", help="patlab plan ... --hopper-tiles --cluster --pulls --format json outputs")
    ap.add_argument("out", help="the PNG to write")
    a = ap.parse_args()
    panels = [pulls_of(p) for p in a.plans]
    plt = fc.pyplot()
    from matplotlib.collections import PolyCollection

    cmap = plt.get_cmap("tab10")
    end = max(r["end"] for _, _, rows in panels for r in rows)
    fig, axes = plt.subplots(len(panels), 1, figsize=(11, 3.2 * len(panels)), squeeze=False)
    for ax, (title, cluster, rows) in zip(axes[:, 0], panels):
        boxes, colors, edges = [], [], []
        for r in rows:
            x0, x1 = r["start"], r["end"]
            y0 = r["first CTA"] + (1 - BAR_FILL) / 2
            y1 = r["first CTA"] + r["CTAs"] - (1 - BAR_FILL) / 2
            boxes.append([(x0, y0), (x1, y0), (x1, y1), (x0, y1)])
            multicast = r["part"] == "multicast"
            colors.append(cmap(r["KV head"] % 10) if multicast else SOLO_COLOR)
            edges.append("black" if multicast else "white")
        ax.add_collection(PolyCollection(boxes, facecolors=colors, edgecolors=edges, linewidths=0.3))
        slots = max(r["first CTA"] + r["CTAs"] for r in rows)
        multicast = sum(r["part"] == "multicast" for r in rows)
        makespan = max(r["end"] for r in rows)
        ax.set_xlim(0, end * 1.01)
        ax.set_ylim(slots, 0)
        ax.set_ylabel("CTA slot")
        ax.set_title(f"{title}: clusters of up to {cluster}, {multicast} multicast items (coloured by KV head), "
                     f"{len(rows) - multicast} solo (grey); last end {makespan} tokens", fontsize=9)
    axes[-1, 0].set_xlabel("model time: KV tokens read by a CTA")
    fig.tight_layout()
    fig.savefig(a.out, dpi=130)
    print(f"cluster_pulls.py: wrote {a.out} ({len(panels)} panel{'s' if len(panels) > 1 else ''})")


if __name__ == "__main__":
    main()
