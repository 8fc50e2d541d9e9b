#!/usr/bin/env python3
"""The radix tree and the packs of a plan, drawn from `patlab plan ... --packs --format json`: one
rectangle per pack, over the tokens it reads (x) and the requests whose queries it serves (y). A
rectangle across several requests is a node of the radix tree that they share; one panel per plan
file, so the tree walk (--no-split) and the KV split of the same workload sit side by side.

    python3 tools/figures/plan_tree.py PLAN_JSON... OUT.png

For example (chapter 02's figure):
    build/tools/patlab plan --tree 1,3,9_1024,256,64 --heads 64/8 --no-split --packs --format json > /tmp/walk.json
    build/tools/patlab plan --tree 1,3,9_1024,256,64 --heads 64/8 --packs --format json > /tmp/split.json
    python3 tools/figures/plan_tree.py /tmp/walk.json /tmp/split.json docs/figures/plan_tree.png
"""
import argparse
import re

import figures_common as fc

TOKENS = re.compile(r"\[(\d+), (\d+)\)")
ROW_HEIGHT = 0.8
LABEL_MIN_WIDTH = 0.03  # label a pack when it spans at least this fraction of the x axis


def runs(queries):
    """Consecutive runs [(first, last)] of a sorted list of query indices."""
    out = []
    for q in sorted(queries):
        if out and q == out[-1][1] + 1:
            out[-1][1] = q
        else:
            out.append([q, q])
    return out


def packs_of(path):
    plan = fc.read_json(path)
    if not isinstance(plan, dict) or "packs" not in plan or "plan" not in plan:
        fc.fail(f"{path} has no 'plan' and 'packs' (expected patlab plan ... --packs --format json)")
    packs = []
    for p in plan["packs"]:
        m = TOKENS.match(str(p.get("tokens", "")))
        if not m:
            fc.fail(f"{path}: pack {p.get('pack')} has no token range '[a, b)'")
        packs.append((p["pack"], p["tile"], int(m.group(1)), int(m.group(2)),
                      [int(q) for q in str(p["queries"]).split()]))
    return plan["plan"], packs


def title(fields: dict, path: str) -> str:
    split = fields.get("KV split cuts", 0)
    kind = "tree walk, no KV split" if split == 0 and fields.get("packs") == fields.get("packs from the tree walk") \
        else f"with the KV split ({split} cuts)"
    return f"{fields.get('workload', path)}, {fields.get('shape', '')}\n{kind}: {fields.get('packs')} packs, " \
           f"{fields.get('radix tree nodes')} radix tree nodes"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("plans", nargs="+", metavar="PLAN_JSON")
    p.add_argument("out")
    a = p.parse_args()
    plans = [(path, *packs_of(path)) for path in a.plans]
    plt = fc.pyplot()
    tiles = sorted({t for _, _, packs in plans for _, t, _, _, _ in packs})
    colors = dict(zip(tiles, plt.cm.Set2.colors))
    fig, axes = plt.subplots(len(plans), 1, figsize=(12, 3 + 2.8 * len(plans)), squeeze=False)
    for ax, (path, fields, packs) in zip(axes.flat, plans):
        end = max(b for _, _, _, b, _ in packs)
        requests = max(max(q) for *_, q in packs) + 1
        for pack, tile, begin, stop, queries in packs:
            for first, last in runs(queries):
                ax.add_patch(plt.Rectangle((begin, first - ROW_HEIGHT / 2), stop - begin, last - first + ROW_HEIGHT,
                                           facecolor=colors[tile], edgecolor="black", lw=0.6))
                if (stop - begin) / end >= LABEL_MIN_WIDTH:
                    ax.text((begin + stop) / 2, (first + last) / 2, str(pack), ha="center", va="center", fontsize=7)
        ax.set_xlim(0, end)
        ax.set_ylim(requests - 0.5, -0.5)
        ax.set_yticks(range(requests))
        ax.set_xlabel("token position")
        ax.set_ylabel("request (query)")
        ax.set_title(title(fields, path), fontsize=10)
    handles = [plt.Rectangle((0, 0), 1, 1, facecolor=colors[t], edgecolor="black") for t in tiles]
    fig.legend(handles, [f"tile {t}" for t in tiles], loc="upper right", fontsize=8)
    fig.suptitle("packs over the radix tree: one rectangle per pack (its number inside when wide enough)",
                 fontsize=11)
    fig.tight_layout(rect=(0, 0, 0.9, 0.97))
    fig.savefig(a.out, dpi=120)
    print(f"plan_tree.py: wrote {a.out} ({len(plans)} plans, {sum(len(x[2]) for x in plans)} packs)")


if __name__ == "__main__":
    main()
