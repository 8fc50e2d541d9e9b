#!/usr/bin/env python3
"""The serving commands' contract (memsim, layerkv, serve): malformed and impossible traces give
exit 2 and one line naming the problem; --format csv/json parse; a generated trace written with
--write-trace replays to the same numbers; serve without a GPU runs the loop, says so and exits 77,
and its --series file has one row per step.

Usage: test_serving_cli.py PATH/TO/patlab
"""
import csv
import io
import json
import math
import os
import subprocess
import sys
import tempfile

from cli_checks import check, failures
import cli_checks

PATLAB = sys.argv[1] if len(sys.argv) > 1 else "patlab"
SMALL = "gen:requests=40,rate=10,prompt=100,output=50,system=200x0.5,n=2,seed=3"
EXIT_NOTHING_RAN = 77


def run(args):
    return subprocess.run([PATLAB] + args, capture_output=True, text=True, timeout=120)


def expect_error(name, args, needle):
    cli_checks.expect_error(name, run(args), needle)


def write(tmp, name, text):
    path = os.path.join(tmp, name)
    with open(path, "w") as f:
        f.write(text)
    return path


def arrivals_trace(tmp, name, arrivals):
    """A trace file of one request (10 own prompt tokens, 5 outputs) per arrival time (JSON text)."""
    requests = ", ".join(f'{{"arrival": {a}, "prompt": [10], "output": 5}}' for a in arrivals)
    return write(tmp, name, '{"format": "patlab-trace-1", "requests": [' + requests + ']}')


def steps_of(args, quick_s=10):
    """The steps a memsim or serve run reports (per policy for memsim), and the finished run;
    a run that takes longer than quick_s seconds (stepping through idle time) fails the check."""
    try:
        p = subprocess.run([PATLAB] + args + ["--format", "json"], capture_output=True, text=True, timeout=quick_s)
    except subprocess.TimeoutExpired:
        return None, None
    doc = json.loads(p.stdout) if p.stdout.strip().startswith("{") else {}
    if args[0] == "memsim":
        return [r["steps"] for r in doc.get("policies", [])], p
    summary = doc.get("serve summary", {})
    return (summary.get("steps"), summary.get("idle steps jumped over (nothing running or waiting)")), p


def quick_error(name, args, needle, quick_s=10):
    """expect_error() for a run that must also be refused within quick_s seconds."""
    try:
        p = subprocess.run([PATLAB] + args, capture_output=True, text=True, timeout=quick_s)
    except subprocess.TimeoutExpired:
        check(name, False, f"still running after {quick_s} s")
        return
    cli_checks.expect_error(name, p, needle)


def peak_rss_bytes(args):
    """Exit code and peak resident set of a patlab run (ru_maxrss from wait4, KiB on Linux)."""
    proc = subprocess.Popen([PATLAB] + args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, _, usage = os.wait4(proc.pid, 0)
    return usage.ru_maxrss * 1024


def small_file_memory(tmp):
    """A 100-byte trace file is read into a buffer of its size, not of the 256 MiB a trace may
    have (that buffer was the whole peak of memsim and serve on small traces)."""
    one = arrivals_trace(tmp, "small.json", ["0"])
    for cmd in ("memsim", "serve"):
        rss = peak_rss_bytes([cmd, one])
        check(f"{cmd}: a small trace file in little memory", rss < 64 << 20, f"peak {rss >> 20} MiB")


def upfront_cases():
    """Traces no run could finish are refused before their prompts are expanded or anything runs:
    100 prompts of 2^24 - 1 shared tokens took 15 s and 6.7 GB before the cache check; n above
    --max-running made serve wait forever."""
    huge = "gen:requests=100,system=16777215x1,max=2,rate=0"
    for cmd, needle in (("memsim", "request 0 needs 16777217 KV tokens (prompt + output), the cache holds 65536"),
                        ("serve", "request 0 needs 16777217 KV tokens (prompt + output), the cache holds 262144"),
                        ("layerkv", "request 0 needs 33554464 layer-blocks (request-wise)")):
        quick_error(f"{cmd}: a request longer than the cache, before expanding", [cmd, huge], needle)
    quick_error("memsim: more prompt tokens than a trace may hold", ["memsim", huge, "--capacity-gib", "4096"],
                "past the 268435456 (2^28) a trace may hold in all")
    for cmd in ("serve", "memsim"):
        quick_error(f"{cmd}: n above --max-running", [cmd, "gen:requests=2,n=4,rate=0", "--max-running", "2"],
                    "request 0 has n = 4 samples, more than --max-running 2")
    quick_error("layerkv: a cache too small for one block, before any progress line",
                ["layerkv", SMALL, "--capacity-gib", "0.0001"], "is too small for one block in 32 layers")


def idle_cases(tmp):
    """Idle time before an arrival is jumped over, not stepped through (that took minutes and
    gigabytes), with the steps the step-by-step replay counts; an arrival or a --step-ms whose
    step does not fit the step counter is refused with one line."""
    one = arrivals_trace(tmp, "one.json", ["0"])
    late = arrivals_trace(tmp, "late.json", ["0", "1e6"])
    gap = math.floor(1e6 / (20 / 1000.0))  # the second request's step at the default 20 ms
    alone, _ = steps_of(["memsim", one])
    steps, p = steps_of(["memsim", late])
    check("memsim: an arrival after 10^6 s finishes quickly with every idle step counted",
          steps is not None and alone and steps == [gap + a for a in alone], f"{steps} vs {alone}")
    steps, p = steps_of(["memsim", "gen:requests=2,rate=1e-9,prompt=10,output=2"])
    check("memsim: rate=1e-9 finishes quickly", steps is not None and p.returncode == 0 and len(steps) == 5,
          str(p and p.stderr))
    alone, _ = steps_of(["serve", one])
    steps, p = steps_of(["serve", late, "--quiet"])
    check("serve: an arrival after 10^6 s finishes quickly with every idle step counted",
          steps is not None and alone and steps == (gap + alone[0], gap - alone[0]), f"{steps} vs {alone}")
    steps, p = steps_of(["serve", "gen:requests=2,rate=1e-9,prompt=10,output=2", "--quiet"])
    check("serve: rate=1e-9 finishes quickly", steps is not None and p.returncode in (0, EXIT_NOTHING_RAN),
          str(p and p.stderr))
    far = arrivals_trace(tmp, "far.json", ["0", "1e300"])
    for cmd in ("memsim", "serve"):
        expect_error(f"{cmd}: an arrival past the step counter", [cmd, far],
                     "request 1 arrives at 1e+300 s, step 5e+301 at 20 ms per step: past the last step")
        for bad in ("1e-300", "0", "-5", "inf", "nan", "1e9"):
            expect_error(f"{cmd}: --step-ms {bad}", [cmd, "gen:requests=2,rate=1,prompt=10,output=2", "--step-ms", bad],
                         "--step-ms must be a finite number in [0.001, 60000] ms")


def main():
    with tempfile.TemporaryDirectory() as tmp:
        bad = write(tmp, "neg.json", '{"format": "patlab-trace-1", "requests": '
                                     '[{"arrival": 0, "prompt": [10], "output": -4}]}')
        expect_error("memsim: negative output", ["memsim", bad], "request 0: output must be in [1,")
        expect_error("layerkv: negative output", ["layerkv", bad], "request 0: output must be in [1,")
        long = write(tmp, "long.json", '{"format": "patlab-trace-1", "requests": '
                                       '[{"arrival": 0, "prompt": [100000], "output": 4}]}')
        expect_error("memsim: request longer than the cache", ["memsim", long, "--capacity-gib", "1"],
                     "request 0 needs 100004 KV tokens")
        expect_error("memsim: cache smaller than a block", ["memsim", SMALL, "--capacity-gib", "0.000001"],
                     "too small for one block")
        # Capacities too large to count in tokens or blocks are refused, not overflowed into
        # "-9223372036854775808 tokens is too small" or "1e+15 GiB is too small for one block".
        for cmd in ("memsim", "layerkv", "serve"):
            for cap in ("1e18", "1e308", "inf", "nan", "0", "-1"):
                expect_error(f"{cmd}: --capacity-gib {cap}", [cmd, SMALL, "--capacity-gib", cap],
                             "--capacity-gib must be a finite number in (0, 1048576] GiB")
        expect_error("memsim: capacity past 2^31 - 1 tokens", ["memsim", SMALL, "--capacity-gib", "1e6"],
                     "--capacity-gib 1000000 holds 8192000000 KV tokens of llama-3-8b, past the 2^31 - 1 memsim models")
        expect_error("serve: capacity past 2^31 - 1 blocks", ["serve", SMALL, "--capacity-gib", "1e6"],
                     "--capacity-gib 1000000 is more than 2^31 - 1 blocks")
        expect_error("memsim: unknown model", ["memsim", SMALL, "--model", "gpt-9"], "unknown model 'gpt-9'")
        expect_error("memsim: bad generator key", ["memsim", "gen:rat=3"], "unknown key rat")
        # A repeated key or an empty item of a gen: spec is refused, not read as the last or skipped.
        expect_error("memsim: repeated generator key", ["memsim", "gen:requests=4,requests=5"],
                     "requests is given twice")
        expect_error("memsim: trailing comma in gen:", ["memsim", "gen:requests=4,"], "empty item (a stray comma)")
        expect_error("serve: trailing + in system=", ["serve", "gen:requests=4,system=100x0.5+"],
                     "empty item (a stray +)")
        expect_error("memsim: missing file", ["memsim", os.path.join(tmp, "none.json")], "cannot read trace file")
        for cmd, option in (("memsim", "--write-trace"), ("layerkv", "--write-trace"), ("serve", "--write-trace"),
                            ("memsim", "--series"), ("serve", "--series")):  # an empty path wrote nothing, silently
            expect_error(f"{cmd}: {option} ''", [cmd, SMALL, option, ""], f"{option}: empty value")
        for cmd in ("memsim", "layerkv", "serve"):  # refused before reading: reading it never ended
            expect_error(f"{cmd}: /dev/zero", [cmd, "/dev/zero"], "trace file '/dev/zero' is not a regular file")
        if os.path.exists("/dev/full"):  # a full disk: the error shows only when the stream is flushed
            expect_error("memsim: --write-trace on a full disk", ["memsim", SMALL, "--write-trace", "/dev/full"],
                         "cannot write trace file /dev/full")
            expect_error("memsim: --series on a full disk", ["memsim", SMALL, "--series", "/dev/full"],
                         "cannot write series file /dev/full")
        rates = "is not a finite rate in [0.001, 1000000] requests/s"
        expect_error("layerkv: bad rate", ["layerkv", SMALL, "--rates", "2,-1"], "'-1' " + rates)
        expect_error("layerkv: infinite rate", ["layerkv", SMALL, "--rates", "inf"], "'inf' " + rates)
        expect_error("layerkv: a rate too slow to time (TTFT read 0)", ["layerkv", SMALL, "--rates", "1e-300"],
                     "'1e-300' " + rates)
        expect_error("layerkv: empty rate", ["layerkv", SMALL, "--rates", "3,,4"], "'' " + rates)
        for option, value in (("--pcie-gbs", "inf"), ("--ttft-slo-ms", "inf"), ("--tpot-slo-ms", "nan")):
            expect_error(f"layerkv: {option} {value}", ["layerkv", SMALL, option, value],
                         f"{option} must be a finite number > 0 (got {value})")  # inf was read as no limit
        expect_error("layerkv: --mfu nan", ["layerkv", SMALL, "--mfu", "nan"], "--mfu must be in (0, 1] (got nan)")
        expect_error("layerkv: trailing comma in --rates", ["layerkv", SMALL, "--rates", "1,2,"],
                     "--rates: '1,2,' ends with a comma")

        saved = os.path.join(tmp, "small.json")
        p = run(["memsim", SMALL, "--format", "json", "--write-trace", saved])
        check("memsim json", p.returncode == 0, p.stderr)
        doc = json.loads(p.stdout) if p.returncode == 0 else {}
        policies = {r["policy"]: r for r in doc.get("policies", [])}
        check("memsim: five policies, all finished",
              len(policies) == 5 and all(r["finished"] == 80 for r in policies.values()), str(policies))
        p2 = run(["memsim", saved, "--format", "json"])
        doc2 = json.loads(p2.stdout) if p2.returncode == 0 else {}
        check("memsim: the written trace replays the same", doc2.get("policies") == doc.get("policies"),
              p2.stderr)
        p = run(["layerkv", SMALL, "--rates", "5,10", "--format", "csv"])
        check("layerkv csv", p.returncode == 0 and "request-wise" in p.stdout and "layer-wise" in p.stdout, p.stderr)
        sources = [r for r in csv.reader(io.StringIO(p.stdout)) if len(r) == 3 and r[0] != "parameter"]
        check("layerkv: every parameter has a source", len(sources) >= 10 and all(r[2] for r in sources), str(sources))
        serve_cases(tmp, bad)
        idle_cases(tmp)
        upfront_cases()
        small_file_memory(tmp)
    print(f"{len(failures)} failed" if failures else "all passed")
    sys.exit(1 if failures else 0)


def serve_cases(tmp, bad):
    """patlab serve: bad input exits 2 with one line before any work; a small trace runs the
    loop (on the CPU: exit 77 and a line saying no GPU stage ran) and writes its series."""
    expect_error("serve: negative output", ["serve", bad], "request 0: output must be in [1,")
    expect_error("serve: unknown stage", ["serve", SMALL, "--stage", "frob"], "unknown GPU stage 'frob'")
    expect_error("serve: stage 0 is the CPU oracle", ["serve", SMALL, "--stage", "0"], "unknown GPU stage '0'")
    expect_error("serve: no layers", ["serve", SMALL, "--layers", "0"], "--layers must be in [1, 128]")
    expect_error("serve: pool smaller than a request", ["serve", SMALL, "--capacity-blocks", "4"],
                 "KV tokens (prompt + output), the cache holds 64")
    expect_error("serve: pool over the limit", ["serve", SMALL, "--capacity-gib", "16", "--layers", "8"],
                 "GiB serve allocates at most")
    expect_error("serve: blocks and GiB", ["serve", SMALL, "--capacity-blocks", "100", "--capacity-gib", "1"],
                 "excludes")
    expect_error("serve: bad check steps", ["serve", SMALL, "--check-steps", "some"], "--check-steps must be")
    expect_error("serve: bad page", ["serve", SMALL, "--page", "24"], "page")
    expect_error("serve: bad head dim", ["serve", SMALL, "--head-dim", "96"], "head")
    expect_error("serve: bad tile", ["serve", SMALL, "--max-kv-tile", "48"], "--max-kv-tile must be 32, 64 or 128")
    for seed in ("-1", "9007199254740992", "1.5", ""):  # -1 read as 2^64 - 1 said "must be at most 2^53 - 1"
        expect_error(f"serve: --seed {seed!r}", ["serve", SMALL, "--seed", seed],
                     f"--seed must be an integer in [0, 2^53 - 1] (got '{seed}')")

    series = os.path.join(tmp, "serve.csv")
    p = run(["serve", SMALL, "--compare-scratch", "--format", "json", "--series", series])
    doc = json.loads(p.stdout) if p.stdout.strip().startswith("{") else {}
    fields = {**doc.get("serve run", {}), **doc.get("serve summary", {})}  # key-value tables are objects
    gpu = not str(fields.get("device", "none")).startswith("none")
    check("serve: exit 0 with a GPU, 77 without", p.returncode == (0 if gpu else EXIT_NOTHING_RAN),
          f"exit {p.returncode}, stderr {p.stderr!r}")
    check("serve: without a GPU one line says no GPU stage runs",
          gpu or any(l.startswith("patlab: serve: no GPU stage runs (") for l in p.stderr.splitlines()), p.stderr)
    check("serve: every sequence finished", fields.get("sequences finished") == "80 of 80", str(fields))
    check("serve: plans identical to make_plan", "identical to make_plan() on every step (PASS)" in
          str(fields.get("plans")), str(fields))
    check("serve: plan times measured", isinstance(fields.get("plan ms (incremental), median"), (int, float)) and
          isinstance(fields.get("speedup of incremental over scratch (medians)"), (int, float)), str(fields))
    rows = list(csv.DictReader(open(series))) if os.path.exists(series) else []
    idle = fields.get("idle steps jumped over (nothing running or waiting)")
    steps = [int(r["step"]) for r in rows]
    check("serve: the series has one row per step but the idle ones jumped over",
          isinstance(idle, int) and len(rows) + idle == fields.get("steps") and len(rows) > 0 and
          steps == sorted(set(steps)) and steps[-1] == fields.get("steps") - 1,
          f"{len(rows)} rows, {idle} idle, {fields.get('steps')} steps")
    check("serve: the series' finished column adds up", sum(int(r["finished"]) for r in rows) == 80,
          str(sum(int(r["finished"]) for r in rows)))
    check("serve: plan times in the series", all(r["plan_ms"] != "" for r in rows if int(r["running"]) > 0) and
          all((r["kernel_us_layer"] != "") == gpu for r in rows if int(r["running"]) > 0), str(rows[:2]))

    jsonl = os.path.join(tmp, "serve.jsonl")
    p = run(["serve", SMALL, "--steps", "30", "--quiet", "--series", jsonl, "--format", "json"])
    lines = [json.loads(l) for l in open(jsonl)] if os.path.exists(jsonl) else []
    summary = json.loads(p.stdout).get("serve summary", {}) if p.stdout.strip().startswith("{") else {}
    idle = summary.get("idle steps jumped over (nothing running or waiting)", -1)
    check("serve --steps 30: 30 steps, a JSON line for each but the idle ones, quiet",
          summary.get("steps") == 30 and len(lines) == 30 - idle and lines[-1]["step"] == 29 and p.stderr == "" and
          p.returncode in (0, EXIT_NOTHING_RAN), f"exit {p.returncode}, {len(lines)} lines, {idle} idle, stderr {p.stderr!r}")


if __name__ == "__main__":
    main()
