#!/usr/bin/env python3
"""The serving commands' contract (memsim, layerkv): malformed and impossible traces give exit 2
and one line naming the problem; --format csv/json parse; a generated trace written with
--write-trace replays to the same numbers.

Usage: test_serving_cli.py PATH/TO/patlab
"""
import csv
import io
import json
import os
import subprocess
import sys
import tempfile

PATLAB = sys.argv[1] if len(sys.argv) > 1 else "patlab"
SMALL = "gen:requests=40,rate=10,prompt=100,output=50,system=200x0.5,n=2,seed=3"
failures = []


def run(args):
    return subprocess.run([PATLAB] + args, capture_output=True, text=True, timeout=120)


def check(name, ok, detail=""):
    print(f"{'ok' if ok else 'FAIL':4} {name}" + ("" if ok else f"\n       {detail}"))
    if not ok:
        failures.append(name)


def expect_error(name, args, needle):
    p = run(args)
    errors = [l for l in p.stderr.splitlines() if l.startswith("patlab: error: ")]
    check(name, p.returncode == 2 and len(errors) == 1 and needle in errors[0] and p.stderr.strip() == errors[0],
          f"exit {p.returncode}, stderr {p.stderr!r}, wanted {needle!r}")


def write(tmp, name, text):
    path = os.path.join(tmp, name)
    with open(path, "w") as f:
        f.write(text)
    return path


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
        expect_error("memsim: unknown model", ["memsim", SMALL, "--model", "gpt-9"], "unknown model 'gpt-9'")
        expect_error("memsim: bad generator key", ["memsim", "gen:rat=3"], "unknown key rat")
        expect_error("memsim: missing file", ["memsim", os.path.join(tmp, "none.json")], "cannot read trace file")
        expect_error("layerkv: bad rate", ["layerkv", SMALL, "--rates", "2,-1"], "'-1' is not a positive rate")

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
    print(f"{len(failures)} failed" if failures else "all passed")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
