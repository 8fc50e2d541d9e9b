#!/usr/bin/env python3
"""Error against KV bytes read for sparse decode: fixed top-n (NSA, FSA) and PSA's progressive
budget, one panel per input, from `patlab sparse ... --curves --format csv` (its 'curves' table,
and its 'sparse run' table for the panel's title). The error is the selected branch's largest
|o - o_dense| (float64 oracle); the bytes are K and V of the chosen blocks (NSA's order).

It also prints, per input, each PSA point against top-n at equal maximum error: the blocks top-n
needs to reach that PSA point's error (topn_blocks_at(), the rule is stated there) and the ratio
of the two, the number issue 17's PSA target ("at least 2x fewer blocks") is about.

    python3 tools/figures/sparse_curves.py CSV [CSV ...] OUT.png

For example (chapter 22), a peaked and a flat workload:
    build/tools/patlab sparse sysprompt --method psa --curves --format csv --quiet > peaked.csv
    build/tools/patlab sparse sysprompt --method psa --data flat --curves --format csv --quiet > flat.csv
    python3 tools/figures/sparse_curves.py peaked.csv flat.csv docs/figures/sparse_curves.png
"""
import argparse
import csv
import io
import math
import pathlib
import sys

import figures_common as fc

DPI = 120
#: Series drawn, by the 'budget' column: label and marker.
SERIES = {"top-n": ("fixed top-n (NSA, FSA)", "o"), "progressive": ("PSA, progressive (tau)", "s")}
MB = 1e6
#: Errors below this are drawn at it (reading every block gives ~1e-15, which would flatten the rest).
FLOOR = 1e-3


def topn_blocks_at(error: float, topn):
    """Blocks fixed top-n needs to reach maximum error `error`, from its curve `topn`, a list of
    (blocks read, max error) points: (blocks, below, above), or None when no point of the curve
    reaches `error`.

    The rule: sort the points by blocks; take the first point whose error is <= `error`. If it is
    the first point, top-n's fewest blocks already reach `error`: blocks = below = above = its
    blocks (the PSA ratio computed from it is then an upper bound). Otherwise the error lies
    between that point (b1, e1) and the one before it (b0, e0 > error), and blocks is read off
    the straight line between them on the figure's axes, linear in blocks and in log(error):
        blocks = b0 + (b1 - b0) * (ln e0 - ln error) / (ln e0 - ln e1),
    with below = b0 and above = b1 the measured points that bracket it. Errors are floored at
    the smallest positive double before the logarithm (reading every block gives ~1e-15, or 0).
    """
    tiny = sys.float_info.min
    pts = sorted((float(b), max(float(e), tiny)) for b, e in topn)
    target = max(float(error), tiny)
    for i, (b1, e1) in enumerate(pts):
        if e1 <= target:
            if i == 0:
                return b1, b1, b1
            b0, e0 = pts[i - 1]
            return b0 + (b1 - b0) * (math.log(e0) - math.log(target)) / (math.log(e0) - math.log(e1)), b0, b1
    return None


def equal_error_lines(path: str, rows) -> list:
    """One line per PSA point of `rows` (the 'curves' rows): its blocks and error, top-n's blocks
    at that error (topn_blocks_at) and their ratio."""
    topn = [(int(r["blocks read"]), float(r["max abs error"])) for r in rows if r["budget"] == "top-n"]
    out = [f"{path}: PSA against top-n at equal max error (top-n interpolated linearly in blocks and log(error))",
           f"{'tau':>6} {'PSA blocks':>10} {'max error':>10} {'top-n blocks':>12} {'bracket':>13} {'top-n / PSA':>11}"]
    for r in rows:
        if r["budget"] != "progressive":
            continue
        blocks, err = int(r["blocks read"]), float(r["max abs error"])
        at = topn_blocks_at(err, topn)
        if at is None:
            out.append(f"{r['parameter']:>6} {blocks:>10} {err:>10.3e} {'not reached':>12} {'-':>13} {'-':>11}")
            continue
        need, lo, hi = at
        bound = "<=" if lo == hi else "  "
        out.append(f"{r['parameter']:>6} {blocks:>10} {err:>10.3e} {need:>12.0f} {f'{lo:.0f}..{hi:.0f}':>13} "
                   f"{bound}{need / blocks:>9.2f}")
    return out


def sections(path: str) -> dict:
    """The tables of a patlab CSV output: {title: [row dicts]}."""
    try:
        text = pathlib.Path(path).read_text()
    except OSError as e:
        fc.fail(f"cannot read {path}: {e.strerror}")
    out, title, lines = {}, None, []
    for line in text.splitlines() + ["# "]:
        if line.startswith("# "):
            if title is not None:
                out[title] = list(csv.DictReader(io.StringIO("\n".join(lines))))
            title, lines = line[2:], []
        elif title is not None and line.strip():
            lines.append(line)
    return out


def panel(path: str):
    """(title, {budget: [(MB, error, parameter)]}, equal-error lines) of one input."""
    tables = sections(path)
    rows = tables.get("curves")
    if not rows:
        fc.fail(f"{path} has no 'curves' table (expected patlab sparse ... --curves --format csv)")
    run = {r.get("field"): r.get("value") for r in tables.get("sparse run", [])}
    series = {}
    for r in rows:
        try:
            point = (float(r["KV bytes"]) / MB, float(r["max abs error"]), r["parameter"])
        except (KeyError, TypeError, ValueError):
            fc.fail(f"{path}: a 'curves' row without numeric 'KV bytes' and 'max abs error': {r}")
        if r.get("budget") not in SERIES:
            fc.fail(f"{path}: unknown budget '{r.get('budget')}' (expected top-n or progressive)")
        series.setdefault(r["budget"], []).append(point)
    title = f"{run.get('workload', path)}, {run.get('data', '?')} data\n{run.get('shape', '')}"
    try:
        lines = equal_error_lines(path, rows)
    except (KeyError, TypeError, ValueError):
        fc.fail(f"{path}: a 'curves' row without integer 'blocks read' (expected patlab sparse ... --curves)")
    return title, series, lines


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("inputs", nargs="+", help="CSV outputs of patlab sparse --curves, then OUT.png")
    a = p.parse_args()
    if len(a.inputs) < 2:
        fc.fail("give at least one CSV file and the output .png")
    *inputs, out = a.inputs
    panels = [panel(path) for path in inputs]
    plt = fc.pyplot()
    for _, _, lines in panels:
        print("\n".join(lines))
    fig, axes = plt.subplots(1, len(panels), figsize=(6.2 * len(panels), 4.8), squeeze=False)
    points = 0
    for ax, (title, series, _) in zip(axes.flat, panels):
        for budget, pts in series.items():
            pts = sorted(pts)
            label, marker = SERIES[budget]
            ax.plot([x for x, _, _ in pts], [max(y, FLOOR) for _, y, _ in pts], marker=marker, lw=1.2, label=label)
            for x, y, par in pts:
                ax.annotate(par, (x, max(y, FLOOR)), fontsize=7, xytext=(3, 3), textcoords="offset points")
            points += len(pts)
        ax.set_yscale("log")
        ax.set_xlabel("K and V read by the selected branch (MB)")
        ax.set_ylabel(f"max |o_sel - o_dense| (drawn at least {FLOOR:g})")
        ax.set_title(title, fontsize=9)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle("sparse decode: error against bytes read (float64 oracle, CPU)")
    fig.tight_layout()
    fig.savefig(out, dpi=DPI)
    print(f"sparse_curves.py: wrote {out} ({len(panels)} panels, {points} points)")


if __name__ == "__main__":
    main()
