#!/usr/bin/env python3
"""Figures of the serving simulations (matplotlib; the build and the tests do not need it).

  tools/plot_serving.py memsim SERIES.csv OUT.png [--bytes-per-token B]
      KV memory held and running batch over steps, one line per policy, from
      `patlab memsim ... --series SERIES.csv`.
  tools/plot_serving.py layerkv RESULTS.json OUT.png
      TTFT p99, TPOT mean and SLO violations against the arrival rate, request-wise vs
      layer-wise, from `patlab layerkv ... --format json`.
  tools/plot_serving.py serve SERIES.csv OUT.png
      Plan time (incremental and from scratch), kernel time per layer, KV memory in use and the
      sharing ratio over steps, from `patlab serve ... --series SERIES.csv` (panels whose column
      was not measured, e.g. kernel time without a GPU, say so).
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


def plot_serve(series_path, out_path):
    plt = load_matplotlib()
    with open(series_path, newline="") as f:
        rows = [r for r in csv.DictReader(f) if int(r["running"]) > 0]
    if not rows:
        sys.exit(f"plot_serving.py: {series_path} has no step with a batch")
    steps = [int(r["step"]) for r in rows]

    def column(name, scale=1.0):
        return [float(r[name]) * scale if r[name] != "" else None for r in rows]

    def draw(ax, name, label, scale=1.0):
        values = column(name, scale)
        if all(v is None for v in values):
            return False
        ax.plot(steps, [float("nan") if v is None else v for v in values], label=label, linewidth=1)
        return True

    fig, axes = plt.subplots(4, 1, figsize=(9, 10), sharex=True)
    draw(axes[0], "plan_ms", "incremental")
    draw(axes[0], "scratch_ms", "from scratch (make_plan)")
    axes[0].set_ylabel("plan time (ms)")
    axes[0].set_yscale("log")
    axes[0].legend(fontsize=8)
    if not draw(axes[1], "kernel_us_layer", "mean over layers"):
        axes[1].text(0.5, 0.5, "not measured (no GPU)", ha="center", va="center", transform=axes[1].transAxes)
    axes[1].set_ylabel("kernel time per layer (us)")
    draw(axes[2], "kv_bytes_in_use", "KV in use", 1.0 / GIB)
    axes[2].set_ylabel("KV in use, all layers (GiB)")
    draw(axes[3], "sharing", "sharing")
    axes[3].set_ylabel("tokens referenced / stored")
    axes[3].set_xlabel("decode step")
    axes[0].set_title("serve: plan, kernel, memory and sharing per step")
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
    sv = sub.add_parser("serve")
    sv.add_argument("series")
    sv.add_argument("out")
    a = ap.parse_args()
    if a.what == "memsim":
        plot_memsim(a.series, a.out, a.bytes_per_token)
    elif a.what == "serve":
        plot_serve(a.series, a.out)
    else:
        plot_layerkv(a.results, a.out)


if __name__ == "__main__":
    main()
