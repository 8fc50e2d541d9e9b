#!/usr/bin/env python3
"""PSA against top-n at equal maximum error over seeds (README.md): reads DIR/csv/*_s<seed>.csv
(patlab sparse ... --curves --format csv, run.sh), and prints per workload and tau the spread of
top-n's blocks / PSA's blocks over the seeds, then each seed's ratio at tau 0.9.

    python3 table.py DIR
"""
import pathlib
import re
import statistics
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[3] / "tools" / "figures"))
import sparse_curves as sc  # noqa: E402  (topn_blocks_at and the CSV reader, written once there)

#: The tau whose per-seed ratios are listed.
TAU_LISTED = "0.9"


def ratios(path: pathlib.Path) -> dict:
    """{tau: top-n blocks / PSA blocks at equal max error} of one run (None where not reached)."""
    rows = sc.sections(str(path)).get("curves") or sys.exit(f"{path}: no 'curves' table")
    topn = [(int(r["blocks read"]), float(r["max abs error"])) for r in rows if r["budget"] == "top-n"]
    out = {}
    for r in rows:
        if r["budget"] == "progressive":
            at = sc.topn_blocks_at(float(r["max abs error"]), topn)
            out[r["parameter"]] = None if at is None else at[0] / int(r["blocks read"])
    return out


def quartiles(v: list) -> tuple:
    """(first quartile, median, third quartile) of v (statistics' 'inclusive' method)."""
    q = statistics.quantiles(v, n=4, method="inclusive") if len(v) > 1 else [v[0]] * 3
    return q[0], q[1], q[2]


def main() -> None:
    if len(sys.argv) != 2:
        sys.exit("usage: table.py DIR")
    files = sorted(pathlib.Path(sys.argv[1], "csv").glob("*_s*.csv"))
    if not files:
        sys.exit(f"no {sys.argv[1]}/csv/*_s*.csv (run run.sh first)")
    runs = {}  # workload -> seed -> {tau: ratio}
    for f in files:
        m = re.fullmatch(r"(.+)_s(\d+)\.csv", f.name)
        runs.setdefault(m.group(1), {})[int(m.group(2))] = ratios(f)
    for workload, seeds in sorted(runs.items()):
        print(f"--tree {workload.replace('-', ',')}: top-n / PSA blocks at equal max error over {len(seeds)} seeds")
        print(f"{'tau':>5} {'min':>5} {'q1':>5} {'median':>6} {'q3':>5} {'max':>5} {'seeds >= 2':>10}")
        for tau in next(iter(seeds.values())):
            v = sorted(r[tau] for r in seeds.values() if r.get(tau) is not None)
            if not v:
                continue
            q1, med, q3 = quartiles(v)
            print(f"{tau:>5} {v[0]:>5.2f} {q1:>5.2f} {med:>6.2f} {q3:>5.2f} {v[-1]:>5.2f} "
                  f"{sum(x >= 2 for x in v):>4} of {len(v):<3}")
        listed = " ".join(f"{s}:{r[TAU_LISTED]:.2f}" if r.get(TAU_LISTED) else f"{s}:-"
                          for s, r in sorted(seeds.items()))
        print(f"tau {TAU_LISTED} per seed: {listed}\n")


if __name__ == "__main__":
    main()
