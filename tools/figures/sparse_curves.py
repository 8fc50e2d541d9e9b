#!/usr/bin/env python3
"""Error against KV bytes read for sparse decode: fixed top-n (NSA, FSA) and PSA's progressive
budget, one panel per input, from `patlab sparse ... --curves --format csv` (its 'curves' table,
and its 'sparse run' table for the panel's title). The error is the selected branch's largest
|o - o_dense| (float64 oracle); the bytes are K and V of the chosen blocks (NSA's order).

    python3 tools/figures/sparse_curves.py CSV [CSV ...] OUT.png

For example (chapter 22), a peaked and a flat workload:
    build/tools/patlab sparse sysprompt --method psa --curves --format csv --quiet > peaked.csv
    build/tools/patlab sparse sysprompt --method psa --data flat --curves --format csv --quiet > flat.csv
    python3 tools/figures/sparse_curves.py peaked.csv flat.csv docs/figures/sparse_curves.png
"""
import argparse
import csv
import io
import pathlib

import figures_common as fc

DPI = 120
#: Series drawn, by the 'budget' column: label and marker.
SERIES = {"top-n": ("fixed top-n (NSA, FSA)", "o"), "progressive": ("PSA, progressive (tau)", "s")}
MB = 1e6
#: Errors below this are drawn at it (reading every block gives ~1e-15, which would flatten the rest).
FLOOR = 1e-3


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
    """(title, {budget: [(MB, error, parameter)]}) of one input."""
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
    return title, series


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("inputs", nargs="+", help="CSV outputs of patlab sparse --curves, then OUT.png")
    a = p.parse_args()
    if len(a.inputs) < 2:
        fc.fail("give at least one CSV file and the output .png")
    *inputs, out = a.inputs
    panels = [panel(path) for path in inputs]
    plt = fc.pyplot()
    fig, axes = plt.subplots(1, len(panels), figsize=(6.2 * len(panels), 4.8), squeeze=False)
    points = 0
    for ax, (title, series) in zip(axes.flat, panels):
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
