#!/usr/bin/env python3
"""fp16 / fp8 time of each twin of run.sh's step 3, per stage, as a Markdown table.

    python3 twins.py RUN_DIR [RUN_DIR_B]    (RUN_DIR holds bench-tN-auto.jsonl and bench-tN-fp8.jsonl)

With a second folder, a column per folder (the same twins measured by another commit)."""
import json
import pathlib
import sys

STAGES = ("packed", "pat", "packinfer")


def results(path):
    out = {}
    for line in path.read_text().splitlines():
        row = json.loads(line)
        if row.get("table") == "results":
            out[row["stage"]] = row
    return out


def main():
    if len(sys.argv) not in (2, 3):
        sys.exit(__doc__)
    dirs = [pathlib.Path(a) for a in sys.argv[1:]]
    print("| twin | fp16 MB | stage | " + " | ".join(f"{d.name}: fp16 us (% copy) / fp8 us (% copy) = fp16 / fp8" for d in dirs) + " |")
    print("| --- | ---: | --- |" + " ---: |" * len(dirs))
    present = sorted(int(p.name[7:].split("-")[0]) for p in dirs[0].glob("bench-t*-auto.jsonl"))
    for n in present:
        runs = []
        for d in dirs:
            a, f = d / f"bench-t{n}-auto.jsonl", d / f"bench-t{n}-fp8.jsonl"
            runs.append((results(a), results(f)) if a.exists() and f.exists() else ({}, {}))
        first = runs[0][0]["pat"]
        name = f"t{n} `{first['workload']}` {', '.join(first['shape'].split(', ')[:2])}"
        for st in STAGES:
            cells = []
            for a, f in runs:
                if st in a and st in f:
                    ta, tf = a[st]["time_us"], f[st]["time_us"]
                    cells.append(f"{ta:.1f} ({a[st]['pct_copy']:.0f}) / {tf:.1f} ({f[st]['pct_copy']:.0f}) = {ta / tf:.2f}")
                else:
                    cells.append("-")
            print(f"| {name} | {first['unique_bytes'] / 1e6:.0f} | {st} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
