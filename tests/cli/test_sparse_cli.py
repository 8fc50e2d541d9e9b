#!/usr/bin/env python3
"""`patlab sparse`'s contract: inconsistent parameters give exit 2 and one line naming the problem
before any data is built; --clamp turns the per-request ones into clamps that the output states;
the report exits 0, runs the GPU part or says why it was skipped, and its numbers hang together (n at
least every request's blocks reads every block with zero error; FSA's order reads no more KV
than NSA's on a shared prefix); --curves --format csv gives the table sparse_curves.py draws;
--no-check drops the oracles and says so.

Usage: test_sparse_cli.py PATH/TO/patlab
"""
import csv
import io
import json
import subprocess
import sys

from cli_checks import check, failures
import cli_checks

PATLAB = sys.argv[1] if len(sys.argv) > 1 else "patlab"
# 4 requests sharing 300 tokens, 100 own: 400 tokens, 7 selection blocks of 64 (page 16).
SMALL = ["--tree", "1,4_300,100", "--heads", "8/2", "--head-dim", "64", "--quiet"]
FITS = ["--top-n", "4", "--window", "128"]
# The same for psa, whose budget is --tau, --min-budget and --max-budget (--top-n is refused there).
PSA_FITS = ["--window", "128", "--max-budget", "7"]


def run(args):
    return subprocess.run([PATLAB, "sparse"] + args, capture_output=True, text=True, timeout=300)


def expect_error(name, args, needle):
    cli_checks.expect_error(name, run(args), needle, no_stdout=True)


def report(args):
    p = run(SMALL + ["--format", "json"] + args)
    check(f"sparse {' '.join(args)}: exit 0 with JSON", p.returncode == 0, p.stderr)
    return json.loads(p.stdout) if p.returncode == 0 else {}


def main():
    expect_error("n more than a request's blocks", SMALL + ["--top-n", "8", "--window", "128"],
                 "n = 8 is more than the 7 selection blocks of request 0 (400 tokens")
    expect_error("l' not a multiple of the page", SMALL + FITS + ["--sel-block", "40"],
                 "l' = 40 is not a multiple of the page (16 tokens)")
    expect_error("tau 0", SMALL + PSA_FITS + ["--method", "psa", "--tau", "0"], "tau = 0")
    expect_error("tau above 1", SMALL + PSA_FITS + ["--method", "psa", "--tau", "1.5"], "is outside (0, 1]")
    expect_error("window longer than a request", SMALL + ["--top-n", "4"], "window w = 512 is longer than request 0")
    expect_error("unknown method", SMALL + FITS + ["--method", "quest"], "--method 'quest' (expected nsa, fsa or psa)")
    expect_error("unknown data", SMALL + FITS + ["--data", "spiky"],
                 "--data 'spiky' (expected flat, peaked, clustered, mixed or streaming)")
    expect_error("two gates", SMALL + FITS + ["--gates", "0.5,0.5"], "--gates takes three values")
    expect_error("gate above 1", SMALL + FITS + ["--gates", "0.5,2,0.5"], "selected gate")
    expect_error("stride above l", SMALL + FITS + ["--cmp-stride", "64"], "stride = 64")
    expect_error("minimum above maximum budget", SMALL + PSA_FITS + ["--method", "psa", "--min-budget", "8"],
                 "maximum budget")
    expect_error("too few repeats", SMALL + FITS + ["--repeats", "5"], "--repeats must be in [20, 100000] timed runs (got 5")
    expect_error("negative warm-up", SMALL + FITS + ["--warmup", "-1"], "--warmup must be in [0, 100000]")
    expect_error("span above a mask word", SMALL + FITS + ["--method", "fsa", "--span-blocks", "33"],
                 "--span-blocks 33 is outside 0..32")
    expect_error("negative span", SMALL + FITS + ["--method", "fsa", "--span-blocks", "-1"],
                 "--span-blocks -1 is outside 0..32")
    expect_error("span rows not a tile", SMALL + FITS + ["--method", "fsa", "--span-rows", "48"],
                 "--span-rows 48 is not 16, 32 or 64")
    expect_error("span ring not built", SMALL + FITS + ["--method", "fsa", "--span-stages", "4"],
                 "--span-stages 4 is not 2 or 3")
    expect_error("span KV tile not built", SMALL + FITS + ["--method", "fsa", "--span-kv-tile", "48"],
                 "--span-kv-tile 48 is not 32 or 64 (or 0: automatic)")
    expect_error("--curve-n without --curves", SMALL + FITS + ["--curve-n", "3,4"], "--curve-n requires --curves")
    expect_error("curve n past the longest request", SMALL + FITS + ["--curves", "--curve-n", "3,99999"],
                 "--curve-n: 99999 is more than the 7 selection blocks of the longest request")
    expect_error("negative curve n", SMALL + FITS + ["--curves", "--curve-n", "3,-3"], "--curve-n: -3 is not a count")
    expect_error("curve list with a trailing comma", SMALL + FITS + ["--curves", "--curve-n", "3,4,"],
                 "--curve-n: '3,4,' ends with a comma")
    expect_error("--top-n under psa", SMALL + PSA_FITS + ["--method", "psa", "--top-n", "4"],
                 "--top-n is the fixed budget of nsa and fsa")
    expect_error("--tau under nsa", SMALL + FITS + ["--tau", "0.8"], "--tau is psa's")
    expect_error("--max-budget under fsa without --curves", SMALL + FITS + ["--method", "fsa", "--max-budget", "7"],
                 "--max-budget is psa's")
    expect_error("empty --gates", SMALL + FITS + ["--gates", ""], "--gates: empty value")
    expect_error("--top-n 010", SMALL + ["--top-n", "010", "--window", "128"], "'010' is not a decimal number")
    expect_error("curve n below the forced blocks", SMALL + FITS + ["--curves", "--curve-n", "2"],
                 "--curve-n: 2 is below the 3 forced blocks")

    doc = report(FITS + ["--method", "fsa"])
    run_table = doc.get("sparse run", {})
    gpu_status = str(run_table.get("GPU"))
    check("the GPU part ran and passed, or says it was skipped",
          gpu_status.startswith("skipped: ") or (gpu_status.startswith("ran: every check passed") and doc.get("gpu")),
          str(run_table))
    check("no clamps without --clamp", run_table.get("clamps") == "none", str(run_table))
    sel = doc.get("selection", {})
    check("4 blocks per (request, KV head)", sel.get("blocks read") == 32 and sel.get("blocks per row: max") == 4, str(sel))
    orders = {r["order"].split(" ")[0]: r for r in doc.get("loop orders (selected branch, byte model)", [])}
    check("FSA reads no more KV than NSA on a shared prefix",
          orders and orders["FSA"]["KV bytes"] <= orders["NSA"]["KV bytes"], str(orders))
    check("--method fsa marks FSA's order", orders and orders["FSA"]["method's order"] == "yes", str(orders))
    spans = doc.get("FSA spans (host plan)", {})
    check("the spans' host plan: KV + q + partials, each block read at least once",
          bool(spans) and spans.get("span model bytes") == spans.get("KV bytes (a span once per pack)", 0)
          + spans.get("q bytes", 0) + spans.get("partial bytes (16-bit o)", 0)
          and spans.get("KV bytes / per-block model's", 0) >= 1, str(spans))
    spans32 = report(FITS + ["--method", "fsa", "--fp32-partials"]).get("FSA spans (host plan)", {})
    check("--fp32-partials: the host plan's partials in fp32, more bytes",
          spans32.get("partial bytes (fp32 o)", 0) > spans.get("partial bytes (16-bit o)", float("inf")), str(spans32))

    doc = report(["--clamp", "--top-n", "16"])
    clamps = doc.get("sparse run", {}).get("clamps", "")
    check("--clamp states its clamps", "n clamped" in clamps and "window clamped" in clamps, clamps)
    sel = doc.get("selection", {})
    errors = {r["output"]: r["max |o - o_dense|"] for r in doc.get("error vs dense (float64)", [])}
    check("n clamped to every block: all blocks read, zero error",
          sel.get("blocks read / all") == 1 and errors.get("selected branch", 1) < 1e-12
          and errors.get("window branch", 1) < 1e-12, f"{sel} {errors}")

    doc = report(FITS + ["--data", "clustered"])
    check("--data clustered is reported", doc.get("sparse run", {}).get("data") == "clustered",
          str(doc.get("sparse run")))
    doc = report(PSA_FITS + ["--data", "mixed", "--method", "psa"])
    check("--data mixed is reported", doc.get("sparse run", {}).get("data") == "mixed", str(doc.get("sparse run")))
    check("--data mixed: PSA chooses blocks", doc.get("selection", {}).get("blocks read", 0) > 0,
          str(doc.get("selection")))
    p = run(["--help"])
    check("--help lists mixed", p.returncode == 0 and "mixed (clustered keys" in p.stdout, p.stdout[-400:])

    p = run(SMALL + PSA_FITS + ["--method", "psa", "--curves", "--curve-n", "3,7", "--curve-tau", "0.5,1",
                            "--format", "csv"])
    check("psa --curves --format csv", p.returncode == 0, p.stderr)
    curves = p.stdout.split("# curves\n")[-1].split("\n# ")[0]
    rows = list(csv.DictReader(io.StringIO(curves)))
    check("curves: one row per n and tau", [(r["budget"], r["parameter"]) for r in rows] ==
          [("top-n", "3"), ("top-n", "7"), ("progressive", "0.5"), ("progressive", "1")], str(rows))
    if len(rows) == 4:
        check("curves: n = 7 reads every block, no error", int(rows[1]["blocks read"]) == 56
              and float(rows[1]["max abs error"]) < 1e-12, str(rows[1]))
        check("curves: tau 1 reads every block with mass", float(rows[3]["max abs error"]) < 1e-12, str(rows[3]))
    doc = report(FITS + ["--method", "fsa", "--no-check"])
    run_table = doc.get("sparse run", {})
    check("--no-check: both oracles skipped and said so, the selection kept",
          run_table.get("dense oracle ms (CPU)") == "skipped (--no-check)" and
          run_table.get("sparse oracle ms (CPU)") == "skipped (--no-check)" and
          doc.get("selection", {}).get("blocks read") == 32, str(run_table))
    check("--no-check: no error table and no true mass, the byte models and host plan kept",
          "error vs dense (float64)" not in doc and doc.get("selection", {}).get("true mass covered (mean)") is None and
          "loop orders (selected branch, byte model)" in doc and "FSA spans (host plan)" in doc, str(sorted(doc)))
    check("--no-check: the GPU part runs unchecked or says it was skipped",
          run_table.get("GPU", "").startswith("ran: outputs not checked (--no-check)") or
          (run_table.get("GPU", "").startswith("skipped: ") and
           run_table.get("GPU", "").endswith("(CPU selection and byte models only)")), run_table.get("GPU", ""))
    expect_error("--no-check with --curves", SMALL + FITS + ["--no-check", "--curves"],
                 "--curves measures the error against the dense oracle, which --no-check skips")
    print(f"{len(failures)} failed" if failures else "all passed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
