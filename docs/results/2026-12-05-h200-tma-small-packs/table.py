#!/usr/bin/env python3
"""The A/B table of a run (README.md): per line of workloads.txt, stage 8's time (eager; graph
replay, us) with each 16-row loader, tma / cp.async and tma-kv / cp.async, stage 7's time in the
cp.async process and stage 8 / stage 7 per loader, and stage 8's fraction of the copy bandwidth on
unique bytes (the process's own copy measurement).

    python3 table.py RUN_FOLDER
"""
import json
import pathlib
import sys

LOADERS = ("cp.async", "tma", "tma-kv")


def load(path: pathlib.Path):
    """stage -> (eager us, graph us, unique bytes, copy GB/s) of one jsonl file, or None."""
    if not path.exists():
        return None
    copy, rows = None, {}
    for line in path.read_text().splitlines():
        o = json.loads(line)
        if o.get("table") == "run":
            copy = o.get("copy GB/s")
        elif o.get("table") == "results":
            rows[o["stage"]] = (o["time_us"], o["graph_us"], o["unique_bytes"], copy)
    return rows or None


def main() -> None:
    if len(sys.argv) != 2:
        sys.exit("usage: table.py RUN_FOLDER")
    run = pathlib.Path(sys.argv[1])
    here = pathlib.Path(__file__).resolve().parent
    lines = [l.split("#")[0].strip() for l in (here / "workloads.txt").read_text().splitlines()]
    lines = [l for l in lines if l]
    print("| line | workload | stage 8 cp.async / tma / tma-kv (eager; graph, us) | tma / cp.async (eager; graph) "
          "| tma-kv / cp.async (eager; graph) | stage 8 / stage 7 (cp.async; tma; eager) | copy BW (cp.async; tma) |")
    print("|---:|---|---|---|---|---|---|")
    for n, wl in enumerate(lines, 1):
        r = {l: load(run / f"ab-{n}-{l}.jsonl") for l in LOADERS}
        if any(r[l] is None or "hopper" not in r[l] for l in LOADERS):
            print(f"| {n} | `{wl}` | not run or failed | | | | |")
            continue
        h = {l: r[l]["hopper"] for l in LOADERS}
        times = " / ".join(f"{h[l][0]:.1f}" for l in LOADERS) + "; " + " / ".join(f"{h[l][1]:.1f}" for l in LOADERS)
        ratio = lambda l: f"{h[l][0] / h['cp.async'][0]:.3f}; {h[l][1] / h['cp.async'][1]:.3f}"
        s7 = r["cp.async"]["pat"][0]
        bw = lambda l: f"{h[l][2] / (h[l][0] * 1e-6) / (h[l][3] * 1e9):.1%}"
        print(f"| {n} | `{wl}` | {times} | {ratio('tma')} | {ratio('tma-kv')} | "
              f"{h['cp.async'][0] / s7:.3f}; {h['tma'][0] / r['tma']['pat'][0]:.3f} | {bw('cp.async')}; {bw('tma')} |")


if __name__ == "__main__":
    main()
