#!/usr/bin/env python3
"""Join patlab's `compare` results and the peers' results into one table per workload, and
write CSV, JSON and plots.

Inputs it understands (any mix, any number):
* the output of `patlab compare [W] --format json` (an object with "results", an array of row
  objects whose missing numbers are null, and "run", an object of fields),
* a JSON-lines file of {"args": ..., "exit": ..., "compare": <that object>} (tools/gpu_run.sh's
  suite.jsonl, and suite.py's patlab.jsonl),
* the JSON written by run_peers.py ({"run", "results", ...}) and suite.py's peers.jsonl.

Rows are joined by workload: a patlab row's key is its "workload" (plus the run's "shape" where
given), a peer row's key is its export's description (plus its shape); suite.py also writes an
explicit "key" (the suite line) into both, which wins, and the line's "category" (its
`# category:` group of the suite file, tools/suite_file.py), which the CSV and JSON carry. For
every workload the table lists every patlab stage and every peer with time, % of copy bandwidth
on the unique bytes, and the time as a ratio to the best peer's (time / best peer time: below 1
is faster than every peer).

    python3 tools/peers/report.py --patlab suite.jsonl --peers peers.json --out results/
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import pathlib
import sys

COLUMNS = ["key", "category", "workload", "shape", "source", "name", "check", "time_us", "min_us", "max_us", "plan_ms",
           "graph_us", "unique_bytes", "copy_GBs", "eff_GBs", "pct_copy", "x_floor", "x_floor_graph", "vs_best_peer",
           "notes"]


def x_of_floor(time_us, unique_bytes, copy_gbs):
    """time / (unique bytes / copy bandwidth of the same run): 1 is the memory floor."""
    if not time_us or not unique_bytes or not copy_gbs:
        return None
    return time_us / (unique_bytes / (copy_gbs * 1e9) * 1e6)


def add_floor(row: dict, copy_gbs) -> dict:
    """Fills copy_GBs (the row's own, else its run's) and x_floor / x_floor_graph."""
    row["copy_GBs"] = num(row.get("copy_GBs")) or num(copy_gbs)
    row["x_floor"] = x_of_floor(row.get("time_us"), row.get("unique_bytes"), row["copy_GBs"])
    row["x_floor_graph"] = x_of_floor(row.get("graph_us"), row.get("unique_bytes"), row["copy_GBs"])
    return row


def num(v):
    """A number from a JSON cell ("-", "", None and non-numbers become None)."""
    if isinstance(v, bool) or v is None:
        return None
    if isinstance(v, (int, float)):
        return float(v) if math.isfinite(v) else None
    try:
        x = float(str(v).replace(",", ""))
        return x if math.isfinite(x) else None
    except ValueError:
        return None


def read_json_or_lines(path: pathlib.Path) -> list:
    text = path.read_text()
    try:
        doc = json.loads(text)
        return doc if isinstance(doc, list) else [doc]
    except json.JSONDecodeError:
        out = []
        for i, line in enumerate(text.splitlines()):
            line = line.strip()
            if not line:
                continue
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError as e:
                print(f"report: {path}:{i + 1}: skipped a line that is not JSON ({e})", file=sys.stderr)
        return out


def run_fields(run) -> dict:
    """patlab's "run" table as a dict: an object of fields (patlab's JSON), or an array of
    {"field", "value"} rows (results saved before field tables printed as objects)."""
    if isinstance(run, dict):
        return run
    out = {}
    for row in run or []:
        if isinstance(row, dict) and "field" in row:
            out[str(row["field"])] = row.get("value")
    return out


def patlab_rows(docs: list) -> tuple[list[dict], list[dict]]:
    """Rows from patlab compare outputs; also their run tables (with the key they belong to)."""
    rows, runs = [], []
    for d in docs:
        if not isinstance(d, dict):
            continue
        key = d.get("key") or d.get("args")
        compare = d.get("compare", d) if "compare" in d else d
        if not isinstance(compare, dict) or "results" not in compare:
            if key:
                rows.append({"key": key, "category": d.get("category"), "workload": key, "shape": "",
                             "source": "patlab", "name": "(patlab)",
                             "check": f"no results (exit {d.get('exit', '?')})"})
            continue
        run = run_fields(compare.get("run"))
        shape = str(run.get("shape", ""))
        runs.append(dict(run, key=key))
        for r in compare.get("results", []):
            workload = str(r.get("workload", ""))
            rows.append(add_floor({
                "key": key or (f"{workload} | {shape}" if shape else workload), "category": d.get("category"),
                "workload": workload, "shape": shape, "source": "patlab", "name": str(r.get("stage", "?")),
                "check": str(r.get("check", "")), "time_us": num(r.get("time_us")), "min_us": num(r.get("min_us")),
                "max_us": num(r.get("max_us")), "plan_ms": num(r.get("plan_ms")), "graph_us": num(r.get("graph_us")),
                "unique_bytes": num(r.get("unique_bytes")), "eff_GBs": num(r.get("eff_GBs")),
                "pct_copy": num(r.get("pct_copy")), "notes": str(r.get("notes", "") or "")}, run.get("copy GB/s")))
    return rows, runs


def peer_rows(docs: list) -> tuple[list[dict], list[dict]]:
    rows, runs = [], []
    for d in docs:
        if not isinstance(d, dict):
            continue
        copy_gbs = None
        if "results" in d and "run" in d:
            runs.append(dict(d["run"]))
            copy_gbs = d["run"].get("copy GB/s")
            items = d["results"]
        elif "peer" in d:
            items = [d]
        else:
            continue
        for r in items:
            workload, shape = str(r.get("workload", "")), str(r.get("shape", ""))
            key = r.get("key")
            if not key or key == workload:
                key = f"{workload} | {shape}" if shape else workload
            passed = r.get("status") == "PASS"
            graph_ok = passed and str(r.get("graph", "")).startswith("PASS")
            rows.append(add_floor({
                "key": key, "category": r.get("category"), "workload": workload, "shape": shape, "source": "peer",
                "name": str(r.get("peer", "?")),
                "check": "PASS" if passed else str(r.get("check", r.get("status", ""))),
                "time_us": num(r.get("time_us")) if passed else None, "min_us": num(r.get("min_us")),
                "max_us": num(r.get("max_us")), "plan_ms": num(r.get("plan_ms")),
                "graph_us": num(r.get("graph_us")) if graph_ok else None, "copy_GBs": r.get("copy_GBs"),
                "unique_bytes": num(r.get("unique_bytes")), "eff_GBs": num(r.get("eff_GBs")) if passed else None,
                "pct_copy": num(r.get("pct_copy")) if passed else None,
                "notes": str(r.get("notes", "") or "") + (f"; graph {r['graph']}" if r.get("graph") and not graph_ok
                                                           else "")}, copy_gbs))
    return rows, runs


def passed(row) -> bool:
    return row.get("time_us") is not None and str(row.get("check", "")).startswith("PASS")


def join(prows: list[dict], qrows: list[dict]) -> dict:
    """key -> rows (patlab first, then peers), with vs_best_peer filled in."""
    by_key: dict = {}
    for r in prows + qrows:
        by_key.setdefault(r["key"], []).append(r)
    for key, rows in by_key.items():
        peers = [r["time_us"] for r in rows if r["source"] == "peer" and passed(r)]
        best = min(peers) if peers else None
        for r in rows:
            r["vs_best_peer"] = (r["time_us"] / best) if (best and passed(r)) else None
            r.setdefault("workload", key)
    return by_key


def fmt(v, digits=1):
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.{digits}f}"
    return str(v)


def table_text(key: str, rows: list[dict]) -> str:
    head = ["source", "name", "check", "time us", "graph us", "% copy", "x floor", "x best peer", "notes"]
    cells = []
    for r in rows:
        check = r.get("check", "")
        check = "PASS" if check.startswith("PASS") else check
        cells.append([r["source"], r["name"], check[:60], fmt(r.get("time_us")), fmt(r.get("graph_us")),
                      fmt(r.get("pct_copy")), fmt(r.get("x_floor"), 2), fmt(r.get("vs_best_peer"), 2),
                      (r.get("notes") or "")[:90]])
    widths = [max(len(h), *(len(c[i]) for c in cells)) for i, h in enumerate(head)]
    lines = [key, "=" * len(key), "  ".join(h.ljust(w) for h, w in zip(head, widths)).rstrip()]
    for c in cells:
        lines.append("  ".join(x.ljust(w) for x, w in zip(c, widths)).rstrip())
    best = [r for r in rows if r["source"] == "peer" and r.get("vs_best_peer") == 1.0]
    ours = [r for r in rows if r["source"] == "patlab" and passed(r)]
    if best and ours:
        top = min(ours, key=lambda r: r["time_us"])
        lines.append(f"best patlab stage {top['name']} {top['time_us']:.1f} us vs best peer {best[0]['name']} "
                     f"{best[0]['time_us']:.1f} us: x{best[0]['time_us'] / top['time_us']:.2f} speedup")
    elif not best:
        lines.append("no peer passed on this workload: no ratio")
    return "\n".join(lines)


def write_outputs(by_key: dict, runs: dict, out: pathlib.Path, stem: str = "suite") -> list[pathlib.Path]:
    out.mkdir(parents=True, exist_ok=True)
    written = []
    csv_path = out / f"{stem}.csv"
    with open(csv_path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=COLUMNS, extrasaction="ignore")
        w.writeheader()
        for key, rows in by_key.items():
            for r in rows:
                w.writerow({c: ("" if r.get(c) is None else r.get(c)) for c in COLUMNS})
    written.append(csv_path)
    json_path = out / f"{stem}.json"
    json_path.write_text(json.dumps({"runs": runs, "workloads": [
        {"key": k, "rows": [{c: r.get(c) for c in COLUMNS} for r in rows]} for k, rows in by_key.items()]},
        indent=1) + "\n")
    written.append(json_path)
    written += plot(by_key, out, stem)
    return written


def plot(by_key: dict, out: pathlib.Path, stem: str) -> list[pathlib.Path]:
    """Two horizontal bar charts, one row per workload: speedup over the best peer (best peer time
    / time) of the best patlab stage and of each peer, and the times themselves (log scale)."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("report: matplotlib not installed: no plots", file=sys.stderr)
        return []
    keys = [k for k, rows in by_key.items() if any(passed(r) for r in rows)]
    if not keys:
        print("report: nothing passed: no plots", file=sys.stderr)
        return []
    series = ["patlab (best stage)"] + sorted({r["name"] for k in keys for r in by_key[k] if r["source"] == "peer"})

    def value(rows, s, field):
        if s == "patlab (best stage)":
            ours = [r for r in rows if r["source"] == "patlab" and passed(r)]
            return min((r[field] for r in ours if r.get(field) is not None), default=None)
        vals = [r[field] for r in rows if r["source"] == "peer" and r["name"] == s and passed(r) and r.get(field) is not None]
        return vals[0] if vals else None

    written = []
    n = len(keys)
    bar = 0.8 / len(series)
    colors = plt.get_cmap("tab10")
    for field, fname, xlabel, transform in (
            ("vs_best_peer", f"{stem}_speedup.png", "speedup over the best peer (best peer time / time; >1 is faster)",
             lambda v: 1.0 / v),
            ("time_us", f"{stem}_times.png", "time (us, median, log scale)", lambda v: v)):
        fig, ax = plt.subplots(figsize=(11, max(3.0, 0.32 * n * max(1, len(series)) / 2 + 1.5)))
        for j, s in enumerate(series):
            ys, xs = [], []
            for i, k in enumerate(keys):
                v = value(by_key[k], s, field)
                if v:
                    ys.append(i + (j - (len(series) - 1) / 2) * bar)
                    xs.append(transform(v))
            if not xs:
                continue
            if field == "vs_best_peer":  # bars grow from 1 (the best peer): right is faster
                ax.barh(ys, [x - 1.0 for x in xs], left=1.0, height=bar, label=s, color=colors(j % 10))
                for y, x in zip(ys, xs):
                    ax.text(x, y, f" {x:.2f}" if x >= 1 else f"{x:.2f} ", va="center", fontsize=6,
                            ha="left" if x >= 1 else "right")
            else:
                ax.barh(ys, xs, height=bar, label=s, color=colors(j % 10))
        ax.set_yticks(range(n))
        ax.set_yticklabels([k if len(k) < 70 else k[:67] + "..." for k in keys], fontsize=7)
        ax.invert_yaxis()
        ax.set_xscale("log")
        if field == "vs_best_peer":
            ax.axvline(1.0, color="black", linewidth=0.8)
            from matplotlib.ticker import FuncFormatter, LogLocator
            ax.xaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
            ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}x"))
            ax.xaxis.set_minor_formatter(FuncFormatter(lambda v, _: ""))
        ax.set_xlabel(xlabel)
        ax.legend(fontsize=7, loc="best")
        ax.grid(axis="x", which="both", alpha=0.3)
        fig.tight_layout()
        path = out / fname
        fig.savefig(path, dpi=110)
        plt.close(fig)
        written.append(path)
    return written


def build_report(patlab_docs: list, peer_docs: list, out: pathlib.Path | None, stem: str = "suite",
                 stream=sys.stdout) -> dict:
    prows, pruns = patlab_rows(patlab_docs)
    qrows, qruns = peer_rows(peer_docs)
    by_key = join(prows, qrows)
    for key, rows in by_key.items():
        print(table_text(key, rows), file=stream)
        print(file=stream)
    if out is not None:
        for p in write_outputs(by_key, {"patlab": pruns, "peers": qruns}, out, stem):
            print(f"report: wrote {p}", file=sys.stderr)
    return by_key


def parse_args(argv=None):
    p = argparse.ArgumentParser(
        description="One table per workload of patlab stages and peers (time, % copy bandwidth, ratio to the best "
                    "peer); writes CSV, JSON and PNG plots.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--patlab", nargs="*", type=pathlib.Path, default=[],
                   help="patlab compare --format json outputs, or JSON-lines of {args, exit, compare}")
    p.add_argument("--peers", nargs="*", type=pathlib.Path, default=[], help="run_peers.py JSON or suite.py peers.jsonl")
    p.add_argument("--out", type=pathlib.Path, help="folder for suite.csv, suite.json and the plots (omit: print only)")
    p.add_argument("--stem", default="suite", help="file name stem of the outputs")
    return p.parse_args(argv)


def main(argv=None) -> int:
    a = parse_args(argv)
    if not a.patlab and not a.peers:
        print("report: give --patlab and/or --peers files", file=sys.stderr)
        return 2
    try:
        pdocs = [d for p in a.patlab for d in read_json_or_lines(p)]
        qdocs = [d for p in a.peers for d in read_json_or_lines(p)]
    except OSError as e:
        print(f"report: {e}", file=sys.stderr)
        return 2
    build_report(pdocs, qdocs, a.out, a.stem)
    return 0


if __name__ == "__main__":
    sys.exit(main())
