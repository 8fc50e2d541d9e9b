#!/usr/bin/env python3
"""The CTA timeline of `patlab bench --cta-trace FILE` (a build configured with -Dcta_trace=true):
one lane per SM (y), one bar per CTA from its start to its end (x, microseconds from the run's
first CTA start), CTAs resident on one SM at once stacked inside its lane, one colour per pack
kernel (tile bucket), and under it the CTAs of each kernel resident on the GPU over time. Two
panels per stage on a shared time axis, so stage 6's and stage 7's buckets can be seen side by
side; a table on stdout gives each kernel's CTAs, span and the CTAs resident beside it.

    python3 tools/figures/cta_timeline.py TRACE.csv OUT.png [--run N] [--stage SLUG ...]

For example (chapter 16's figure):
    build-trace/tools/patlab bench --tree 1,2,64_1024,256,256 --heads 64/8 --stage multistream pat \\
        --cta-trace /tmp/trace.csv
    python3 tools/figures/cta_timeline.py /tmp/trace.csv /tmp/timeline.png
"""
import argparse
import csv
import pathlib

import figures_common as fc

COLUMNS = ("run", "stage", "kernel", "block", "sm", "start_us", "end_us")
BAR_FILL = 0.85  # of a sub-lane's height
COLORS = ("tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple", "tab:brown")


def read_trace(path):
    """The CSV's rows as dicts with numbers, or exit 2 naming the file and the problem."""
    try:
        with open(path, newline="") as f:
            reader = csv.DictReader(f)
            if reader.fieldnames is None or any(c not in reader.fieldnames for c in COLUMNS):
                fc.fail(f"{path} is not a CTA trace (expected the columns {', '.join(COLUMNS)}: "
                        "patlab bench --cta-trace)")
            rows = []
            for n, r in enumerate(reader, 2):
                try:
                    rows.append({"run": int(r["run"]), "stage": r["stage"], "kernel": r["kernel"],
                                 "block": int(r["block"]), "sm": int(r["sm"]),
                                 "start": float(r["start_us"]), "end": float(r["end_us"])})
                except ValueError as e:
                    fc.fail(f"{path}:{n}: {e}")
    except OSError as e:
        fc.fail(f"cannot read {path}: {e}")
    if not rows:
        fc.fail(f"{path} has no CTAs")
    return rows


def stack(ctas):
    """Sub-lane of each CTA within its SM: the lowest one free at its start (interval colouring)."""
    by_sm = {}
    for c in sorted(ctas, key=lambda c: (c["sm"], c["start"])):
        lanes = by_sm.setdefault(c["sm"], [])  # end time of each sub-lane's last CTA
        for i, end in enumerate(lanes):
            if end <= c["start"]:
                lanes[i] = c["end"]
                c["lane"] = i
                break
        else:
            c["lane"] = len(lanes)
            lanes.append(c["end"])
    return max(len(v) for v in by_sm.values())


def resident_beside(ctas, kernel):
    """Mean number of CTAs of other kernels on the same SM at the midpoint of each CTA of `kernel`."""
    others_on = {}  # SM -> the other kernels' CTAs that ran on it
    for o in ctas:
        if o["kernel"] != kernel:
            others_on.setdefault(o["sm"], []).append(o)
    mine = [c for c in ctas if c["kernel"] == kernel]
    total = 0
    for c in mine:
        t = 0.5 * (c["start"] + c["end"])
        total += sum(1 for o in others_on.get(c["sm"], []) if o["start"] <= t < o["end"])
    return total / len(mine)


def main():
    ap = argparse.ArgumentParser(description="Draw the CTA timeline of patlab bench --cta-trace.")
    ap.add_argument("trace", help="the CSV that patlab bench --cta-trace wrote")
    ap.add_argument("out", help="PNG to write")
    ap.add_argument("--run", type=int, default=0, help="which traced run to draw (default 0)")
    ap.add_argument("--stage", nargs="+", help="stages to draw, in this order (default: every stage in the file)")
    args = ap.parse_args()
    plt = fc.pyplot()
    rows = read_trace(args.trace)
    stages = args.stage or list(dict.fromkeys(r["stage"] for r in rows))
    panels = []
    for s in stages:
        ctas = [r for r in rows if r["stage"] == s and r["run"] == args.run]
        if not ctas:
            fc.fail(f"{args.trace} has no CTAs of stage '{s}' in run {args.run}")
        if any(c["end"] < 0 for c in ctas):
            fc.fail(f"{args.trace}: a CTA of stage '{s}' has no end (the kernel did not finish)")
        panels.append((s, ctas, stack(ctas)))
    kernels = list(dict.fromkeys(r["kernel"] for _, ctas, _ in panels for r in ctas))
    color = {k: COLORS[i % len(COLORS)] for i, k in enumerate(kernels)}

    print(f"run {args.run} of {args.trace}")
    print("stage | kernel | CTAs | SMs | first start us | last end us | mean CTA us | other kernels' CTAs beside")
    for s, ctas, _ in panels:
        for k in dict.fromkeys(c["kernel"] for c in ctas):
            mine = [c for c in ctas if c["kernel"] == k]
            mean = sum(c["end"] - c["start"] for c in mine) / len(mine)
            print(f"{s} | {k} | {len(mine)} | {len({c['sm'] for c in mine})} | {min(c['start'] for c in mine):.1f} | "
                  f"{max(c['end'] for c in mine):.1f} | {mean:.1f} | {resident_beside(ctas, k):.2f}")

    fig, axes = plt.subplots(2 * len(panels), 1, figsize=(11, 4.6 * len(panels) + 0.6), sharex=True, squeeze=False,
                             gridspec_kw={"height_ratios": [3, 1] * len(panels)})
    for i, (s, ctas, depth) in enumerate(panels):
        lanes, counts = axes[2 * i, 0], axes[2 * i + 1, 0]
        h = 1.0 / depth
        for c in ctas:
            lanes.broken_barh([(c["start"], c["end"] - c["start"])], (c["sm"] + c["lane"] * h, h * BAR_FILL),
                              facecolors=color[c["kernel"]], linewidth=0)
        end = max(c["end"] for c in ctas)
        lanes.set_title(f"{s}: {len(ctas)} CTAs, last ends at {end:.1f} us", fontsize=10)
        lanes.set_ylabel("SM")
        lanes.set_ylim(0, max(c["sm"] for c in ctas) + 1)
        for k in dict.fromkeys(c["kernel"] for c in ctas):
            events = sorted([(c["start"], 1) for c in ctas if c["kernel"] == k] +
                            [(c["end"], -1) for c in ctas if c["kernel"] == k])
            t, n = [0.0], [0]
            for when, step in events:
                t.append(when)
                n.append(n[-1] + step)
            counts.step(t, n, where="post", color=color[k], linewidth=1.2)
        counts.set_ylabel("CTAs\nresident", fontsize=9)
        counts.set_ylim(bottom=0)
    axes[-1, 0].set_xlabel("us from the run's first CTA start (%globaltimer)")
    handles = [plt.Rectangle((0, 0), 1, 1, color=color[k]) for k in kernels]
    fig.legend(handles, kernels, loc="upper right", ncol=len(kernels), fontsize=9)
    fig.tight_layout(rect=(0, 0, 1, 0.97))
    fig.savefig(args.out, dpi=110)
    print(f"wrote {pathlib.Path(args.out)} ({len(panels)} stages, {sum(len(c) for _, c, _ in panels)} CTAs)")


if __name__ == "__main__":
    main()
