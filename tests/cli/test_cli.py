#!/usr/bin/env python3
"""The patlab CLI's contract: exit codes, one-line errors, output formats.

Usage: test_cli.py PATH/TO/patlab

Bad input must give exit 2 and exactly one line on stderr, "patlab: error: ..." naming the
problem (progress lines "patlab: ..." before it are allowed for commands that build data), and
never a crash, an uncaught exception or a traceback. Prints one line per case; exits 1 if any
case failed.
"""
import csv
import io
import json
import os
import subprocess
import sys
import tempfile
import time

PATLAB = sys.argv[1] if len(sys.argv) > 1 else "patlab"
CRASH_MARKERS = ("terminate called", "Aborted", "Traceback", "Segmentation fault", "core dumped",
                 "what():", "internal error")
failures = []


def run(args, timeout=60):
    t0 = time.monotonic()
    p = subprocess.run([PATLAB] + args, capture_output=True, text=True, timeout=timeout)
    return p, time.monotonic() - t0


def report(name, problems, elapsed):
    status = "FAIL" if problems else "ok"
    print(f"{status:4} {name} ({elapsed:.2f} s)" + ("".join(f"\n       {p}" for p in problems)))
    if problems:
        failures.append(name)


def expect_error(name, args, needles, timeout=30, progress_ok=False):
    """Exit 2, one error line naming the problem (every needle appears in it)."""
    try:
        p, elapsed = run(args, timeout)
    except subprocess.TimeoutExpired:
        report(name, [f"no answer within {timeout} s"], timeout)
        return
    problems = []
    if p.returncode != 2:
        problems.append(f"exit {p.returncode}, expected 2")
    lines = p.stderr.splitlines()
    errors = [l for l in lines if l.startswith("patlab: error: ")]
    others = [l for l in lines if not l.startswith("patlab: error: ")]
    if len(errors) != 1 or not lines or lines[-1] != errors[0]:
        problems.append(f"expected exactly one 'patlab: error:' line, last; stderr was {p.stderr!r}")
    if others and not (progress_ok and all(l.startswith("patlab: ") for l in others)):
        problems.append(f"stderr has other lines: {others!r}")
    for needle in needles:
        if not errors or needle not in errors[0]:
            problems.append(f"error line does not name {needle!r}: {p.stderr.strip()!r}")
    for marker in CRASH_MARKERS:
        if marker in p.stderr or marker in p.stdout:
            problems.append(f"crash marker {marker!r} in output")
    if p.stdout.strip():
        problems.append(f"stdout not empty: {p.stdout[:200]!r}")
    report(name, problems, elapsed)


def expect_ok(name, args, check=None, timeout=60):
    """Exit 0; `check(stdout)` returns a list of problems."""
    try:
        p, elapsed = run(args, timeout)
    except subprocess.TimeoutExpired:
        report(name, [f"no answer within {timeout} s"], timeout)
        return
    problems = []
    if p.returncode != 0:
        problems.append(f"exit {p.returncode}, expected 0; stderr {p.stderr.strip()!r}")
    if "patlab: error" in p.stderr:
        problems.append(f"error on stderr: {p.stderr.strip()!r}")
    if check and p.returncode == 0:
        try:
            problems += check(p.stdout)
        except Exception as e:  # a check that cannot even parse the output is a failure
            problems.append(f"output check raised {type(e).__name__}: {e}")
    report(name, problems, elapsed)


def has(*needles):
    return lambda out: [f"output lacks {n!r}" for n in needles if n not in out]


def json_check(out):
    doc = json.loads(out)
    problems = []
    if not isinstance(doc, dict) or "workload" not in doc:
        return [f"JSON has no 'workload' table: {list(doc)[:5]}"]
    fields = {row["field"]: row["value"] for row in doc["workload"]}
    if fields.get("requests") != 4:
        problems.append(f"requests = {fields.get('requests')!r}, expected 4")
    if fields.get("unique tokens") != 96 + 4 * 41:
        problems.append(f"unique tokens = {fields.get('unique tokens')!r}, expected 260")
    if "tree levels" not in doc:
        problems.append("no 'tree levels' table")
    return problems


def csv_check(out):
    lines = out.splitlines()
    if not lines or lines[0] != "# workload":
        return [f"first line {lines[:1]!r}, expected '# workload'"]
    rows = list(csv.reader(io.StringIO(out)))
    fields = {r[0]: r[1] for r in rows if len(r) == 2}
    return [] if fields.get("tokens summed over requests") == "548" else [f"fields {fields!r}"]


def markdown_check(out):
    """Two tables, each a title, a blank line, a header, a separator and rows of equal width."""
    problems = []
    titles = [i for i, l in enumerate(out.splitlines()) if l.startswith("**")]
    lines = out.splitlines()
    if [lines[i] for i in titles] != ["**workload**", "**tree levels**"]:
        return [f"titles {[lines[i] for i in titles]!r}"]
    cells = lambda l: l.replace("\\|", "").count("|") - 1  # noqa: E731
    for t, width in zip(titles, (2, 4)):
        block = []
        for l in lines[t + 2:]:
            if not l.startswith("|"):
                break
            block.append(l)
        if len(block) < 3 or set(block[1].replace(" ", "").strip("|").split("|")) - {"---", "---:"}:
            problems.append(f"table at line {t}: no header/separator: {block[:2]!r}")
        problems += [f"row with {cells(l)} cells, expected {width}: {l!r}" for l in block if cells(l) != width]
    return problems


def table_check(out):
    lines = out.splitlines()
    return [] if lines[:2] == ["workload", "--------"] and any(
        l.startswith("blocks read by >1 request") and l.endswith(" 6") for l in lines) else [f"output {out[:300]!r}"]


def main():
    tmp = tempfile.mkdtemp(prefix="patlab_cli_")
    files = {
        "malformed.json": '{"segments": {"a": 10},\n "requests": ["a", ]}',
        "zero.json": '{"segments": {"sys": 100, "u": 0}, "requests": ["sys+u"]}',
        "unknown_seg.json": '{"segments": {"sys": 100}, "requests": ["sys+nope"]}',
        "unknown_key.json": '{"segments": {"a": 1}, "requests": ["a"], "pages": 16}',
        "bad_shape.json": '{"segments": {"a": 1}, "requests": ["a"], "head_dim": 96}',
        "good.json": '{"segments": {"sys": 100, "u1": 37, "u2": 5}, "requests": ["sys+u1", "sys+u2"],'
                     ' "heads": "8/2", "head_dim": 64}',
    }
    for name, text in files.items():
        with open(os.path.join(tmp, name), "w") as f:
            f.write(text)
    path = lambda name: os.path.join(tmp, name)  # noqa: E731

    # Bad input: exit 2 with one line naming the problem.
    expect_error("malformed tree spec", ["workload", "--tree", "1,4_x,5"], ["malformed tree spec '1,4_x,5'"])
    expect_error("tree spec without '_' (positional)", ["workload", "1,4"], ["unknown preset '1,4'"])
    expect_error("tree spec, counts do not divide", ["workload", "--tree", "2,3_4,5"], ["not a multiple"])
    expect_error("tree spec, zero-length level", ["workload", "--tree", "1,4_0,5"], ["0 tokens"])
    expect_error("tree spec, zero nodes", ["workload", "--tree", "0,4_10,5"], ["0 nodes"])
    expect_error("unknown preset", ["workload", "--preset", "nope"], ["unknown preset 'nope'", "sysprompt"])
    expect_error("heads 32/5", ["workload", "--heads", "32/5"], ["multiple of KV heads (5)"])
    expect_error("heads malformed", ["workload", "--heads", "32"], ["malformed heads '32'"])
    expect_error("group size 32", ["workload", "--heads", "64/2"], ["unsupported group size 32"])
    expect_error("head dim 96", ["workload", "--head-dim", "96"], ["unsupported head dim 96"])
    expect_error("page 24", ["workload", "--page", "24"], ["unsupported page size 24"])
    expect_error("dtype fp8", ["workload", "--dtype", "fp8"], ["unsupported dtype 'fp8'"])
    expect_error("head dim not a number", ["workload", "--head-dim", "abc"], ["--head-dim"])
    expect_error("workload file missing", ["workload", path("missing.json")], ["cannot read workload file", "missing.json"])
    expect_error("workload file is a directory", ["workload", "--workload", tmp], ["cannot read workload file"])
    expect_error("workload file malformed", ["workload", path("malformed.json")], ["malformed.json: line 2:"])
    expect_error("workload file, zero-length segment", ["workload", "--workload", path("zero.json")],
                 ['segment "u" has 0 tokens'])
    expect_error("workload file, unknown segment", ["workload", path("unknown_seg.json")], ['unknown segment "nope"'])
    expect_error("workload file, unknown key", ["workload", path("unknown_key.json")], ['unknown key "pages"'])
    expect_error("workload file, unsupported shape", ["workload", path("bad_shape.json")], ["unsupported head dim 96"])
    expect_error("two workloads at once", ["workload", "tiny", "--tree", "1,2_3,4"], ["choose one workload"])
    expect_error("random tree, 0 requests", ["workload", "--random-tree", "3", "--random-requests", "0"],
                 ["--random-requests"])
    expect_error("random tree, negative seed", ["workload", "--random-tree", "-5"], ["--random-tree"])
    expect_error("too large for host memory (workload)", ["workload", "--tree", "4096_16000000"],
                 ["too large for host memory"], timeout=10)
    expect_error("too large for host memory (check)", ["check", "--tree", "4096_16000000"],
                 ["too large for host memory"], timeout=10, progress_ok=True)
    expect_error("too large for host memory (pools)", ["check", "--tree", "1,64_16000000,100000", "--heads", "128/128"],
                 ["too large for host memory"], timeout=10, progress_ok=True)
    expect_error("request too long", ["workload", "--tree", "1,2_16777216,1"], ["at most 16777216"])
    expect_error("too many requests", ["workload", "--tree", "65537_1"], ["at most 65536"])
    expect_error("unknown subcommand", ["frobnicate"], ["unknown command 'frobnicate'"])
    expect_error("no subcommand", [], ["subcommand"])
    expect_error("unknown option", ["workload", "--bogus"], ["--bogus"])
    expect_error("extra positional", ["workload", "tiny", "extra"], ["extra"])
    expect_error("--format xml", ["workload", "tiny", "--format", "xml"], ["unknown format 'xml'"])
    expect_error("--format xml (list)", ["list", "--format", "xml"], ["unknown format 'xml'"])
    expect_error("--format xml (check)", ["check", "tiny", "--format", "xml"], ["unknown format 'xml'"])
    expect_error("plan --incremental 0", ["plan", "tiny", "--incremental", "0"], ["--incremental: 0 decode steps"])
    expect_error("plan --incremental past the longest request", ["plan", "--tree", "1_16777000", "--incremental", "1000"],
                 ["more than the 16777216 supported"])
    expect_error("plan --incremental with --packs", ["plan", "tiny", "--incremental", "5", "--packs"], ["--packs"])

    # Success.
    expect_ok("--help", ["--help"], has("patlab [OPTIONS]", "workload", "check"))
    expect_ok("workload --help", ["workload", "--help"], has("--tree", "--heads"))
    expect_ok("list", ["list"], has("oracle", "tutorial/01-oracle-and-merge.md"))
    expect_ok("list --presets", ["list", "--presets"], has("sysprompt", "tiny", "asymmetric", "1,64_4096,256"))
    expect_ok("list --format json", ["list", "--format", "json"], lambda out: [] if json.loads(out)["stages"] else ["empty"])
    expect_ok("workload tiny (table)", ["workload", "tiny"], table_check)
    expect_ok("workload tiny --format csv", ["workload", "tiny", "--format", "csv"], csv_check)
    expect_ok("workload tiny --format json", ["workload", "tiny", "--format", "json"], json_check)
    expect_ok("workload tiny --format markdown", ["workload", "tiny", "--format", "markdown"], markdown_check)
    expect_ok("workload default preset", ["workload"], has("preset sysprompt", "13.60"))
    expect_ok("workload from a file", ["workload", path("good.json")], has("8/2 heads, d=64", "workload " + path("good.json")))
    expect_ok("workload --tree with overrides", ["workload", "--tree", "1,8_512,64", "--heads", "16/16", "--page", "64",
                                                 "--dtype", "bf16", "--no-shuffle"], has("16/16 heads, d=128, page 64, bf16"))
    expect_ok("workload --random-tree", ["workload", "--random-tree", "9", "--random-depth", "1"], has("random tree, seed 9"))
    expect_ok("check tiny", ["check", "tiny"], has("PASS"))
    expect_ok("check tiny --format json", ["check", "tiny", "--format", "json"],
              lambda out: [] if all(r["verdict"] in ("PASS", "-") for t in json.loads(out).values() for r in t)
              else ["verdict not PASS"])
    expect_ok("plan --incremental", ["plan", "--tree", "1,4,32_256,64,8", "--incremental", "40"],
              has("40 of 40 (PASS)", "40 of 40 plans valid (PASS)", "speedup (medians)"))
    expect_ok("check a small file", ["check", path("good.json"), "--dtype", "bf16"], has("PASS"))

    print(f"{len(failures)} failed" if failures else "all CLI cases passed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
