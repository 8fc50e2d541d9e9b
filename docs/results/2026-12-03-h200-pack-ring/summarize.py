#!/usr/bin/env python3
"""Tables of a pack-ring run: stage times per workload and binary, and each binary's time over the
first one's (same call, alternating binaries per workload).

    python3 docs/results/2026-12-03-h200-pack-ring/summarize.py RUN/bench.jsonl [--binaries A,B,..]

bench.jsonl is `patlab bench --format jsonl` of every run, each line tagged by the binary that
wrote it ("binary", added by run.sh's step 3 through the file name bench-wN-BINARY.jsonl, or by
the order of the run's bench.log)."""
import argparse
import json
import pathlib
import re


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("run", type=pathlib.Path, help="a run folder with bench-wN-BINARY.jsonl files")
    ap.add_argument("--binaries", default="patlab-cf622a7,patlab-B,patlab", help="binaries, the first is the base")
    a = ap.parse_args()
    binaries = a.binaries.split(",")
    rows = {}
    for f in sorted(a.run.glob("bench-w*-*.jsonl")):
        m = re.match(r"bench-w(\d+)-(.*)\.jsonl", f.name)
        n, b = int(m.group(1)), m.group(2)
        for line in f.read_text().splitlines():
            r = json.loads(line)
            if r.get("table") != "results" or r.get("time_us") is None:
                continue
            key = (n, r["workload"] + (" --kv-dtype fp8" if "fp8" in r["shape"] else ""), r["shape"].split(",")[0])
            rows.setdefault(key, {}).setdefault(r["stage"], {})[b] = r
    head = "| workload | heads | stage | " + " | ".join(f"{b} us (% copy)" for b in binaries)
    head += " | " + " | ".join(f"{b} / {binaries[0]}" for b in binaries[1:]) + " |"
    print(head)
    print("| --- | --- | --- |" + " ---: |" * (2 * len(binaries) - 1))
    for (n, w, heads), stages in sorted(rows.items()):
        for stage, by in stages.items():
            if not all(b in by for b in binaries):
                continue
            t = [by[b]["time_us"] for b in binaries]
            cells = [f"{by[b]['time_us']:.1f} ({by[b]['pct_copy']:.1f})" for b in binaries]
            ratios = [f"{x / t[0]:.3f}" for x in t[1:]]
            print(f"| w{n} `{w}` | {heads} | {stage} | " + " | ".join(cells + ratios) + " |")
    print()
    print("Plans that differ between binaries (the notes of stage pat):")
    for (n, w, heads), stages in sorted(rows.items()):
        by = stages.get("pat", {})
        notes = {b: by[b]["notes"] for b in binaries if b in by}
        if len(set(notes.values())) > 1:
            for b, text in notes.items():
                print(f"- w{n} {b}: {text}")


if __name__ == "__main__":
    main()
