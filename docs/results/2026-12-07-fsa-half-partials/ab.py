#!/usr/bin/env python3
"""16-bit against fp32 partials (README.md): per workload, the selected branch's median time in
each order, eager and replayed (us), in RUN/half and RUN/fp32, and half / fp32 for each.

    python3 ab.py RUN_FOLDER
"""
import pathlib
import statistics
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "2026-12-07-fsa-requests"))
from table import group_rows  # noqa: E402  (the run folders' reader, written once there)


def medians(folder: pathlib.Path) -> dict:
    """workload -> order -> (eager us, graph us), medians over the folder's rounds."""
    rows = group_rows(folder, lambda f, doc: f"{doc.get('sparse run', {}).get('workload', f.name)}, "
                                             f"{doc.get('sparse run', {}).get('shape', '').split(',')[0]}")
    return {w: {o: tuple(statistics.median(r[k] for r in rs) for k in ("selected us", "selected us (graph)"))
                for o, rs in orders.items()} for w, orders in rows.items()}


def main() -> None:
    if len(sys.argv) != 2:
        sys.exit("usage: ab.py RUN_FOLDER")
    run = pathlib.Path(sys.argv[1])
    half, fp32 = medians(run / "half"), medians(run / "fp32")
    if not half or not fp32:
        sys.exit(f"no patlab sparse JSON under {run}/half and {run}/fp32")
    print("| workload | order | 16-bit us (eager; graph) | fp32 us (eager; graph) | 16-bit / fp32 (eager; graph) |")
    print("|---|---|---|---|---|")
    for w in sorted(half, key=lambda w: (len(w), w)):
        for order in ("nsa", "split", "fsa"):
            if order not in half[w] or order not in fp32.get(w, {}):
                continue
            h, f = half[w][order], fp32[w][order]
            print(f"| `{w}` | {order} | {h[0]:.1f}; {h[1]:.1f} | {f[0]:.1f}; {f[1]:.1f} | "
                  f"{h[0] / f[0]:.3f}; {h[1] / f[1]:.3f} |")


if __name__ == "__main__":
    main()
