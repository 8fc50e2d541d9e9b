#!/usr/bin/env python3
"""Figures of the serving simulations (matplotlib; the build and the tests do not need it).

  tools/plot_serving.py memsim SERIES.csv OUT.png [--bytes-per-token B]
      KV memory held and running batch over steps, one line per policy, from
      `patlab memsim ... --series SERIES.csv`.
  tools/plot_serving.py layerkv RESULTS.json OUT.png
      TTFT p99, TPOT mean and SLO violations against the arrival rate, request-wise vs
      layer-wise, from `patlab layerkv ... --format json`.
"""
import argparse
import csv
import json
import sys
from collections import defaultdict

GIB = float(1 << 30)


def load_matplotlib():
    try:
        import matplotlib
    except ImportError:
        sys.exit("plot_serving.py: matplotlib is missing (pip install matplotlib)")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def plot_memsim(series_path, out_path, bytes_per_token):
    plt = load_matplotlib()
    steps, held, running = defaultdict(list), defaultdict(list), defaultdict(list)
    with open(series_path, newline="") as f:
        for row in csv.DictReader(f):
            p = row["policy"]
            steps[p].append(int(row["step"]))
            held[p].append(int(row["held"]) * bytes_per_token / GIB)
            running[p].append(int(row["running"]))
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(9, 7), sharex=True)
    for p in steps:
        top.plot(steps[p], held[p], label=p, linewidth=1)
        bottom.plot(steps[p], running[p], label=p, linewidth=1)
    top.set_ylabel("KV memory held (GiB)")
    bottom.set_ylabel("running sequences")
    bottom.set_xlabel("decode step")
    top.legend(fontsize=8)
    top.set_title("memsim: KV memory and batch per policy")
    fig.tight_layout()
    fig.savefig(out_path, dpi=110)


def plot_layerkv(results_path, out_path):
    plt = load_matplotlib()
    with open(results_path) as f:
        rows = json.load(f)["results"]
    by_policy = defaultdict(list)
    for r in rows:
        by_policy[r["policy"]].append(r)
    panels = [("TTFT p99 (s)", "TTFT p99 (s)", True), ("TPOT mean (ms)", "TPOT mean (ms)", False),
              ("SLO violations %", "SLO violations (%)", False)]
    fig, axes = plt.subplots(1, len(panels), figsize=(13, 4))
    for ax, (key, label, log) in zip(axes, panels):
        for policy, rs in by_policy.items():
            ax.plot([r["rate (req/s)"] for r in rs], [r[key] for r in rs], marker="o", label=policy)
        ax.set_xlabel("arrival rate (requests/s)")
        ax.set_ylabel(label)
        if log:
            ax.set_yscale("log")
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    fig.suptitle("layerkv: request-wise vs layer-wise KV allocation (simulation)")
    fig.tight_layout()
    fig.savefig(out_path, dpi=110)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="what", required=True)
    m = sub.add_parser("memsim")
    m.add_argument("series")
    m.add_argument("out")
    m.add_argument("--bytes-per-token", type=int, default=131072, help="KV bytes per token, all layers (Llama-3-8B)")
    lk = sub.add_parser("layerkv")
    lk.add_argument("results")
    lk.add_argument("out")
    a = ap.parse_args()
    if a.what == "memsim":
        plot_memsim(a.series, a.out, a.bytes_per_token)
    else:
        plot_layerkv(a.results, a.out)


if __name__ == "__main__":
    main()
