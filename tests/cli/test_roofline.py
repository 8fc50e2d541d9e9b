#!/usr/bin/env python3
"""tools/roofline.py: the copy and tensor floors of a synthetic results file, computed by hand
here, the summary's count of workloads out of reach of 70% of the copy bandwidth, and bad input
(exit 2, one line).

Usage: test_roofline.py
"""
import json
import pathlib
import subprocess
import sys
import tempfile

from cli_checks import check, failures

REPO = pathlib.Path(__file__).resolve().parents[2]
TOOL = REPO / "tools/roofline.py"


def run_row(workload, shape, unique, per_request):
    return {"table": "run", "workload": workload, "shape": shape, "kv dtype": "fp16", "SMs": 132,
            "max clocks (SM / memory, MHz)": "1980 / 3201", "copy GB/s": 4000.0,
            "unique bytes (KV + q + out)": unique, "per-request KV bytes": per_request}


def result_row(workload, stage, us):
    return {"table": "results", "workload": workload, "stage": stage, "time_us": us}


def roofline(*args):
    return subprocess.run([sys.executable, str(TOOL), *args], capture_output=True, text=True, timeout=60)


def main():
    # a: 32/8 (g 4), 400 MB unique, own copies 4 GB: tokens 4e9 / (2 x 8 x 128 x 2) = 976562.5,
    #    FLOPs 4 x 128 x 32 x tokens = 1.6e10 at 132 x 1.98e9 x 4096 = 1.0705e15/s: 14.9 us;
    #    copy 400e6 / 4e12 = 100 us. b: 64/8 (g 8), 100 MB, own copies 8 GB: 59.8 us against 25 us.
    rows = [run_row("a", "32/8 heads, d=128, page 16, fp16", 400e6, 4e9), result_row("a", "pat", 200.0),
            run_row("b", "64/8 heads, d=128, page 16, fp16", 100e6, 8e9), result_row("b", "pat", 119.56)]
    with tempfile.TemporaryDirectory() as tmp:
        good = pathlib.Path(tmp) / "r.jsonl"
        good.write_text("".join(json.dumps(r) + "\n" for r in rows))
        p = roofline(str(good), "--stages", "pat", "--min-mb", "50")
        lines = {l.split("|")[1].strip(): [c.strip() for c in l.split("|")[2:-1]] for l in p.stdout.splitlines()
                 if l.startswith("| `")}
        check("exit 0 with a row per workload", p.returncode == 0 and set(lines) == {"`a`", "`b`"}, p.stdout + p.stderr)
        check("a: copy floor 100 us, tensor floor 14.9 us, 50% of the copy floor",
              lines.get("`a`", [])[2:7] == ["100.0", "14.9", "200.0", "50.0", "50.0"], str(lines.get("`a`")))
        check("b: copy floor 25 us, tensor floor 59.8 us, 50% of the higher floor",
              lines.get("`b`", [])[2:7] == ["25.0", "59.8", "119.6", "20.9", "50.0"], str(lines.get("`b`")))
        check("summary: 2 shared-prefix workloads, 1 out of reach of 70% of the copy bandwidth",
              "of >= 50 MB: 2; on 1 of them" in p.stdout and "pat: median 50.0%" in p.stdout, p.stdout)
        p = roofline(str(good), "--min-mb", "150")
        check("--min-mb leaves out the smaller one", "of >= 150 MB: 1; on 0 of them" in p.stdout, p.stdout)
        empty = pathlib.Path(tmp) / "e.jsonl"
        empty.write_text(json.dumps(result_row("a", "pat", 1.0)) + "\n")
        for name, args, needle in [("a missing file", [str(pathlib.Path(tmp) / "none.jsonl")], "no such file"),
                                   ("no run rows", [str(empty)], "no 'run' rows"),
                                   ("negative --min-mb", [str(good), "--min-mb", "-1"], "is negative")]:
            p = roofline(*args)
            errors = p.stderr.strip().splitlines()
            check(f"{name}: exit 2, one line", p.returncode == 2 and len(errors) == 1 and needle in errors[0],
                  f"exit {p.returncode}: {p.stderr!r}")
    print("all passed" if not failures else f"{len(failures)} failed")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
