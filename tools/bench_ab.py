#!/usr/bin/env python3
"""A/B of patlab's own options in one device call: every workload is benchmarked twice in a row,
once with the options of A and once with those of B, on the same stages, and the table gives
B's time over A's (eager and CUDA-graph replay) per workload and stage.

    python3 tools/bench_ab.py --a "--fill-window 4" --b "--fill-window 8" --stages multistream,pat \\
        --out OUT [--patlab build-gpu/tools/patlab] [--no-check] [--repeats 20] (--suite FILE | W...)

Each workload is a line of patlab workload options ("--tree 256_1024 --heads 32/8"); --suite takes
them from a suite file (tools/suite_file.py: comments and `# category:` lines skipped). Writes
OUT/ab.jsonl (one `patlab bench --format json` object per run, with "key" and "side") and
OUT/ab.md (the table), and prints the table. Exit: 0; 1 when a run failed; 2 on a usage error;
77 when no run had a GPU (patlab's own skip).
"""

from __future__ import annotations

import argparse
import json
import pathlib
import shlex
import subprocess
import sys

REPO = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tools"))
import suite_file  # noqa: E402

#: patlab's exit status for "GPU stages skipped" (meson's skip code).
EXIT_SKIPPED = 77


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("workloads", nargs="*", help="workloads, each quoted: \"--tree 256_1024 --heads 32/8\"")
    p.add_argument("--suite", type=pathlib.Path, help="take the workloads from this suite file")
    p.add_argument("--a", required=True, help="patlab bench options of side A, quoted (\"--fill-window 4\")")
    p.add_argument("--b", required=True, help="patlab bench options of side B, quoted")
    p.add_argument("--stages", default="pat", help="comma-separated stages (slugs or ids), default pat")
    p.add_argument("--out", type=pathlib.Path, required=True, help="folder for ab.jsonl and ab.md")
    p.add_argument("--patlab", default=str(REPO / "build-gpu/tools/patlab"), help="the patlab binary")
    p.add_argument("--repeats", type=int, default=20, help="timed runs per stage (patlab: at least 20)")
    p.add_argument("--no-check", action="store_true", help="skip the oracle check (large workloads)")
    a = p.parse_args(argv)
    if a.suite and a.workloads:
        p.error("give workloads or --suite, not both")
    if a.suite:
        if not a.suite.exists():
            p.error(f"--suite {a.suite}: no such file")
        a.workloads = [w for _, w in suite_file.read_entries(a.suite)]
    if not a.workloads:
        p.error("no workloads: give some, or --suite FILE")
    if not pathlib.Path(a.patlab).exists():
        p.error(f"--patlab {a.patlab}: no such file (build it: meson setup build-gpu && ninja -C build-gpu tools/patlab)")
    if shlex.split(a.a) == shlex.split(a.b):
        p.error("--a and --b are the same options: nothing to compare")
    return a


def bench(a, workload: str, options: str) -> tuple[int, dict | None, str]:
    cmd = [a.patlab, "bench", *shlex.split(workload), "--stage", *a.stages.split(","), "--format", "json",
           "--repeats", str(a.repeats), *shlex.split(options)] + (["--no-check"] if a.no_check else [])
    r = subprocess.run(cmd, capture_output=True, text=True)
    try:
        return r.returncode, json.loads(r.stdout), r.stderr
    except json.JSONDecodeError:
        return r.returncode, None, r.stderr


def times(result: dict | None) -> dict:
    """stage -> (eager us, graph us) of a bench result."""
    out = {}
    for row in (result or {}).get("results", []):
        if isinstance(row.get("time_us"), (int, float)):
            out[row["stage"]] = (row["time_us"], row.get("graph_us"))
    return out


def cell(x) -> str:
    return f"{x:.1f}" if isinstance(x, (int, float)) else "-"


def ratio(b, a) -> str:
    return f"{b / a:.3f}" if isinstance(a, (int, float)) and isinstance(b, (int, float)) and a > 0 else "-"


def main(argv=None) -> int:
    a = parse_args(argv)
    a.out.mkdir(parents=True, exist_ok=True)
    lines = [f"A: `{a.a}`, B: `{a.b}`; stages {a.stages}; each workload A then B in one call "
             f"(`patlab bench --repeats {a.repeats}{' --no-check' if a.no_check else ''}`).", "",
             "| workload | stage | A us | B us | B / A | A graph us | B graph us | B / A graph |",
             "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |"]
    failed = ran = 0
    with open(a.out / "ab.jsonl", "w") as log:
        for i, w in enumerate(a.workloads, start=1):
            print(f"[{i}/{len(a.workloads)}] {w}", file=sys.stderr, flush=True)
            side = {}
            for name, options in (("A", a.a), ("B", a.b)):
                rc, result, err = bench(a, w, options)
                log.write(json.dumps({"key": w, "side": name, "options": options, "exit": rc, "bench": result}) + "\n")
                if rc == EXIT_SKIPPED:
                    continue
                if rc != 0 or result is None:
                    failed += 1
                    last = err.strip().splitlines()[-1] if err.strip() else f"exit {rc}"
                    print(f"  {name}: failed: {last}", file=sys.stderr)
                    continue
                ran += 1
                side[name] = times(result)
            ta, tb = side.get("A", {}), side.get("B", {})
            for s in dict.fromkeys([*ta, *tb]):  # every stage that ran, in the order patlab printed
                ea, ga = ta.get(s, (None, None))
                eb, gb = tb.get(s, (None, None))
                lines.append(f"| `{w}` | {s} | {cell(ea)} | {cell(eb)} | {ratio(eb, ea)} | {cell(ga)} | {cell(gb)} | "
                             f"{ratio(gb, ga)} |")
    text = "\n".join(lines) + "\n"
    (a.out / "ab.md").write_text(text)
    print(text)
    if ran == 0 and failed == 0:
        print("bench_ab: no GPU: every run skipped its GPU stages (patlab exit 77)", file=sys.stderr)
        return EXIT_SKIPPED
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
