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
import pathlib
import re
import subprocess
import sys
import tempfile
import time

PATLAB = sys.argv[1] if len(sys.argv) > 1 else "patlab"
# The bound for a refused input: one line and exit 2 within a second.
BAD_INPUT_SECONDS = 1.0
# A complexity bound, not a speed target: a 30,000-segment chain parses and prints in linear time.
CHAIN_SEGMENTS = 30000
CHAIN_SECONDS = 5.0
# bench/compare with no GPU stage run (no CUDA device, a build without CUDA): the CPU parts passed.
EXIT_NOTHING_RAN = 77
# The CPU mode's default bandwidth (tools/patlab/cmd_bench.cpp) and the saved H200 runs it comes from.
DEFAULT_BANDWIDTH_GBS = 4200
REPO = pathlib.Path(__file__).resolve().parents[2]
H200_RESULTS = "docs/results/2026-12-01-h200-*"
# The CPU mode's predicted_us column has one decimal.
PREDICTED_US_ROUNDING = 0.05
# The limits the CLI states in --help (reference/include/patlab/model/workload.hpp).
MAX_WORKLOAD_FILE_BYTES = 16 << 20
CRASH_MARKERS = ("terminate called", "Aborted", "Traceback", "Segmentation fault", "core dumped",
                 "what():", "internal error")
failures = []


def run(args, timeout=60, env=None):
    t0 = time.monotonic()
    p = subprocess.run([PATLAB] + args, capture_output=True, text=True, timeout=timeout,
                       env=None if env is None else {**os.environ, **env})
    return p, time.monotonic() - t0


def report(name, problems, elapsed):
    status = "FAIL" if problems else "ok"
    print(f"{status:4} {name} ({elapsed:.2f} s)" + ("".join(f"\n       {p}" for p in problems)))
    if problems:
        failures.append(name)


def expect_error(name, args, needles, timeout=30, progress_ok=False, within=None, env=None):
    """Exit 2, one error line naming the problem (every needle appears in it); within `within`
    seconds when given."""
    try:
        p, elapsed = run(args, timeout, env)
    except subprocess.TimeoutExpired:
        report(name, [f"no answer within {timeout} s"], timeout)
        return
    problems = []
    if within is not None and elapsed > within:
        problems.append(f"took {elapsed:.2f} s, more than {within} s")
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


def expect_exit(name, args, code, check=None, timeout=60, within=None, env=None, stderr_check=None):
    """Exit `code`, no error line; `check(stdout)` and `stderr_check(stderr)` return lists of
    problems; within `within` seconds when given."""
    try:
        p, elapsed = run(args, timeout, env)
    except subprocess.TimeoutExpired:
        report(name, [f"no answer within {timeout} s"], timeout)
        return
    problems = []
    if p.returncode != code:
        problems.append(f"exit {p.returncode}, expected {code}; stderr {p.stderr.strip()!r}")
    if "patlab: error" in p.stderr:
        problems.append(f"error on stderr: {p.stderr.strip()!r}")
    if within is not None and elapsed > within:
        problems.append(f"took {elapsed:.2f} s, more than {within} s")
    for marker in CRASH_MARKERS:
        if marker in p.stderr or marker in p.stdout:
            problems.append(f"crash marker {marker!r} in output")
    if p.returncode == code:
        try:
            problems += check(p.stdout) if check else []
            problems += stderr_check(p.stderr) if stderr_check else []
        except Exception as e:  # a check that cannot even parse the output is a failure
            problems.append(f"output check raised {type(e).__name__}: {e}")
    report(name, problems, elapsed)


def expect_ok(name, args, check=None, timeout=60, within=None, env=None):
    """Exit 0; `check(stdout)` returns a list of problems."""
    expect_exit(name, args, 0, check, timeout, within, env)


def has(*needles):
    return lambda out: [f"output lacks {n!r}" for n in needles if n not in out]


def json_check(out):
    doc = json.loads(out)
    problems = []
    if not isinstance(doc, dict) or "workload" not in doc:
        return [f"JSON has no 'workload' table: {list(doc)[:5]}"]
    fields = doc["workload"]
    if not isinstance(fields, dict):
        return [f"'workload' is a {type(fields).__name__}, expected an object of fields"]
    if fields.get("requests") != 4:
        problems.append(f"requests = {fields.get('requests')!r}, expected 4")
    if fields.get("unique tokens") != 96 + 4 * 41:
        problems.append(f"unique tokens = {fields.get('unique tokens')!r}, expected 260")
    if "tree levels" not in doc:
        problems.append("no 'tree levels' table")
    elif not doc["tree levels"] or not all(isinstance(r, dict) for r in doc["tree levels"]):
        problems.append("'tree levels' is not an array of row objects")
    return problems


def jsonl_check(out):
    """One JSON object per line, each naming its table; the field table is one line, rows one each."""
    try:
        objs = [json.loads(line) for line in out.splitlines()]
    except json.JSONDecodeError as e:
        return [f"a line is not JSON: {e}"]
    tables = [o.get("table") for o in objs]
    problems = [] if tables and tables.count("workload") == 1 else [f"'workload' lines: {tables.count('workload')}"]
    levels = json.loads(run(["workload", "tiny", "--format", "json"])[0].stdout)["tree levels"]
    if tables.count("tree levels") != len(levels):
        problems.append(f"{tables.count('tree levels')} 'tree levels' lines for {len(levels)} rows")
    work = next((o for o in objs if o.get("table") == "workload"), {})
    if work.get("requests") != 4:
        problems.append(f"requests = {work.get('requests')!r}, expected 4")
    return problems


def check_json_check(out):
    """check --format json: the verdicts PASS (the reference row has none: null), numbers as numbers."""
    rows = [r for t in json.loads(out).values() for r in t]
    problems = [] if rows[0]["verdict"] is None and rows[0]["packs"] is None else [f"reference row {rows[0]}"]
    for r in rows[1:]:
        if r["verdict"] != "PASS":
            problems.append(f"verdict {r['verdict']!r}")
        if not all(isinstance(r[k], (int, float)) for k in ("packs", "partials", "max rel. difference", "bound")):
            problems.append(f"a number printed as text: {r}")
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


def contract_cases(tmp, path):
    """Empty values, zero sizes, seeds out of range, orphan options, control characters: each one
    line and exit 2, at once, never a silent default."""
    B = BAD_INPUT_SECONDS
    for opt in ("--tree", "--preset", "--workload", "--heads", "--dtype", "--kv-dtype", "--head-dim", "--page"):
        expect_error(f"empty {opt}", ["workload", opt, ""], [opt, "empty"], within=B)
    expect_error("empty positional workload", ["workload", ""], ["empty"], within=B)
    # CLI11 2.1 looped forever on an empty argument past the filled positionals or an option's values.
    for args in (["plan", "tiny", ""], ["export", "tiny", "--quiet", ""], ["bench", "tiny", "--stage", "8", ""],
                 ["workload", "tiny", "--", ""]):
        expect_error("stray empty argument: " + " ".join(args), args, ["is empty where", "an option was expected"],
                     timeout=10, within=B)
    expect_error("--head-dim 0", ["workload", "--head-dim", "0"], ["unsupported head dim 0"], within=B)
    expect_error("--page 0", ["workload", "--page", "0"], ["unsupported page size 0"], within=B)
    expect_error("--seed -1", ["workload", "tiny", "--seed", "-1"], ["--seed", "'-1' is not a seed"], within=B)
    expect_error("--seed 2^64", ["workload", "tiny", "--seed", str(2**64)], ["--seed", str(2**64)], within=B)
    expect_error("--seed 2^53 (past what JSON prints exactly)", ["workload", "tiny", "--seed", str(2**53)],
                 ["--seed"], within=B)
    expect_ok("--seed 2^53 - 1 is printed exactly", ["workload", "tiny", "--seed", str(2**53 - 1), "--format", "json"],
              lambda out: [] if json.loads(out)["workload"]["seed"] == 2**53 - 1
              else ["seed not printed exactly"])
    expect_error("--random-tree 2^64", ["workload", "--random-tree", str(2**64)], ["--random-tree"], within=B)
    for opt in ("--random-requests", "--random-depth", "--random-max-segment"):
        expect_error(f"{opt} without --random-tree", ["workload", opt, "5"], [opt, "--random-tree"], within=B)
    expect_error("newline in a tree spec: one line", ["workload", "--tree", "1,2_3\n,4"], ["'1,2_3\\n,4'"], within=B)
    expect_error("newline in a preset name: one line", ["workload", "--preset", "a\nb"], ["'a\\nb'"], within=B)
    expect_error("control character in a file name: one line", ["workload", "--workload", path("x\x1b\ty.json")],
                 ["\\x1b\\t"], within=B)
    expect_error("newline in an unknown command: one line", ["fro\nb"], ["'fro\\nb'"], within=B)
    expect_error("parse error points at the subcommand's help", ["bench", "--bogus"],
                 ["--bogus", "(see patlab bench --help)"], within=B)
    expect_error("parse error points at the subcommand's help (export)", ["export", "tiny"],
                 ["--out", "(see patlab export --help)"], within=B)
    expect_ok("--version", ["--version"], lambda out: [] if out.startswith("patlab 0.") and "commit" in out
              else [f"version line {out!r}"], within=B)
    expect_ok("--quiet: no progress lines", ["check", "tiny", "--quiet"], has("PASS"))
    expect_exit("--quiet leaves stderr empty", ["check", "tiny", "--quiet"], 0,
                stderr_check=lambda err: [] if err == "" else [f"stderr {err!r}"])


def hetero_cases():
    """--hetero and its knobs: every bad value one line and exit 2; the batch plans and checks."""
    B = BAD_INPUT_SECONDS
    bad = [("--hetero-requests", "0", "--hetero-requests must be in [1, 65536]"),
           ("--hetero-requests", "65537", "--hetero-requests must be in [1, 65536]"),
           ("--hetero-requests", "1.5", "--hetero-requests"),
           ("--hetero-shared", "-0.1", "--hetero-shared must be a fraction in [0, 1]"),
           ("--hetero-shared", "1.01", "--hetero-shared must be a fraction in [0, 1]"),
           ("--hetero-shared", "nan", "--hetero-shared must be a fraction in [0, 1]"),
           ("--hetero-shared", "abc", "--hetero-shared"),
           ("--hetero-prefix", "0", "--hetero-prefix must be in [1, 16777216]"),
           ("--hetero-min", "0", "--hetero-min must be in [1, 16777216]"),
           ("--hetero-max", str(2**24 + 1), "--hetero-max must be in [1, 16777216]"),
           ("--hetero-dist", "chat", "unknown --hetero-dist 'chat' (known: conv, code)"),
           ("--hetero-dist", "", "--hetero-dist")]
    for opt, value, needle in bad:
        expect_error(f"{opt} {value!r}", ["plan", "--hetero", "1", opt, value], [needle], within=B)
    expect_error("--hetero-min above --hetero-max", ["plan", "--hetero", "1", "--hetero-min", "100", "--hetero-max", "50"],
                 ["--hetero-min (100) is larger than --hetero-max (50)"], within=B)
    expect_error("--hetero -1", ["workload", "--hetero", "-1"], ["--hetero", "'-1' is not a seed"], within=B)
    expect_error("--hetero with --tree", ["workload", "--hetero", "1", "--tree", "1,2_3,4"], ["choose one workload"],
                 within=B)
    for opt in ("--hetero-requests", "--hetero-shared", "--hetero-prefix", "--hetero-min", "--hetero-max",
                "--hetero-dist"):
        expect_error(f"{opt} without --hetero", ["workload", opt, "5"], [opt, "--hetero"], within=B)
    expect_ok("workload --hetero 1", ["workload", "--hetero", "1"],
              has("hetero conv, seed 1, 96 requests of 20-12288 own tokens, 72 of 96 share a 2048-token prompt"))
    expect_ok("workload --hetero, no sharing", ["workload", "--hetero", "1", "--hetero-shared", "0", "--format", "json"],
              lambda out: [] if (lambda w: w["unique tokens"] == w["tokens summed over requests"])(
                  json.loads(out)["workload"]) else ["F = 0 shares tokens"])
    expect_ok("list --presets has hetero96", ["list", "--presets"], has("hetero96", "--hetero 1"))
    expect_ok("plan hetero96", ["plan", "hetero96", "--quiet"], has("packs", "HBM traffic model"))
    # Stage 8's routing (--hopper-min-kv, --hopper-wide-kv; defaults 512 and 2048): on this tree
    # (ranges of 32-544 tokens) the off switch puts every pack of 33-128 rows on stage 8's kernel
    # (tiles named "64x64h", "128x128h"); a short range's 64-row packs keep the pack kernel and
    # stage 7's tile (64x32 at 32 tokens); no range is long enough for a 128-row pack by default.
    short_tree = ["plan", "--tree", "2,8,16,256_256,256,32,32", "--heads", "32/8", "--hopper-tiles", "--quiet"]
    expect_ok("plan --hopper-tiles, routing off: 64- and 128-row packs on stage 8's kernel",
              short_tree + ["--hopper-min-kv", "0", "--hopper-wide-kv", "0"],
              lambda out: [] if re.search(r"^64x64h ", out, re.M) and re.search(r"^128x128h ", out, re.M)
              and not re.search(r"^64x32 ", out, re.M) else ["expected 64x64h and 128x128h buckets, no 64x32 one"])
    expect_ok("plan --hopper-min-kv 64: short 64-row packs keep the pack kernel",
              short_tree + ["--hopper-min-kv", "64", "--hopper-wide-kv", "0"],
              lambda out: [] if re.search(r"^64x32 ", out, re.M) and not re.search(r"^64x64h ", out, re.M)
              else ["expected a 64x32 bucket and no 64x64h one"])
    expect_ok("plan --hopper-tiles, default routing: no 128-row pack over ranges shorter than 2048",
              short_tree, lambda out: [] if not re.search(r"^128x128h ", out, re.M) else ["expected no 128x128h bucket"])
    expect_ok("plan --hopper-tiles names the routing it planned with", short_tree,
              has("stage 8 routing", "--hopper-min-kv 512 --hopper-wide-kv 2048 --hopper-rows 192 --hopper-min-piece 512"))
    expect_ok("plan --hopper-min-kv 1024: every range shorter, stage 7's tiles only",
              short_tree + ["--hopper-min-kv", "1024"],
              lambda out: [] if re.search(r"^64x64 ", out, re.M) and not re.search(r"^\d+x\d+h ", out, re.M)
              else ["expected a 64x64 bucket and no stage-8 tile"])
    expect_ok("plan --hopper-wide-kv 1024: no 128-row pack, 64-row packs stay on stage 8's kernel",
              short_tree + ["--hopper-min-kv", "0", "--hopper-wide-kv", "1024"],
              lambda out: [] if re.search(r"^64x64h ", out, re.M) and not re.search(r"^128x128h ", out, re.M)
              else ["expected a 64x64h bucket and no 128x128h one"])
    # --hopper-rows 192: 37 queries of group 8 on a 3000-token prefix are two packs (192 and 104
    # rows) instead of three 128-row ones; 16 queries (128 rows) stay one 128-row pack.
    tall_tree = ["plan", "--tree", "1,37_3000,40", "--heads", "64/8", "--hopper-tiles", "--quiet"]
    expect_ok("plan --hopper-rows 192: a 192-row pack where it saves a read of the prefix",
              tall_tree + ["--hopper-rows", "192"],
              lambda out: [] if re.search(r"^192x64h ", out, re.M) and re.search(r"^128x128h ", out, re.M)
              else ["expected a 192x64h and a 128x128h bucket"])
    expect_ok("plan --hopper-tiles, default --hopper-rows 192: the same 192-row pack", tall_tree,
              lambda out: [] if re.search(r"^192x64h ", out, re.M) else ["expected a 192x64h bucket"])
    expect_ok("plan --hopper-rows 128: no 192-row pack", tall_tree + ["--hopper-rows", "128"],
              lambda out: [] if not re.search(r"^192x64h ", out, re.M) and re.search(r"^128x128h ", out, re.M)
              else ["expected 128x128h buckets and no 192x64h one"])
    expect_ok("plan --hopper-rows 192: 128 rows stay one 128-row pack",
              ["plan", "--tree", "1,16_3000,40", "--heads", "64/8", "--hopper-tiles", "--quiet",
               "--hopper-rows", "192"],
              lambda out: [] if re.search(r"^128x128h ", out, re.M) and not re.search(r"^192x64h ", out, re.M)
              else ["expected a 128x128h bucket and no 192x64h one"])
    # --hopper-min-piece: 64 requests over a 1536-token prefix at group 4 with 128-row packs from
    # 1024 tokens; the KV split cuts the two 128-row packs into pieces of 192 tokens with no minimum
    # piece, of 384 with a minimum of 256 (the halving's next length), of 512 with the default, 512.
    piece_tree = ["plan", "--tree", "1,64_1536,128", "--heads", "32/8", "--hopper-tiles", "--quiet",
                  "--hopper-wide-kv", "1024"]
    expect_ok("plan --hopper-tiles: 128-row pieces of 192 tokens without a minimum piece",
              piece_tree + ["--hopper-min-piece", "0"],
              lambda out: [] if re.search(r"^128x128h +16 .* 192 ", out, re.M)
              else ["expected 16 128x128h pieces of 192"])
    expect_ok("plan --hopper-wide-kv 1024, default minimum piece: 128-row pieces of 512",
              piece_tree, lambda out: [] if re.search(r"^128x128h +6 .* 512 ", out, re.M)
              and "of a 128/192-row pack >= 512 tokens" in out else ["expected 6 128x128h pieces of 512"])
    expect_ok("plan --hopper-min-piece 256: 128-row pieces of 384 tokens, named in the split's line",
              piece_tree + ["--hopper-min-piece", "256"],
              lambda out: [] if re.search(r"^128x128h +8 .* 384 ", out, re.M) and
              "of a 128/192-row pack >= 256 tokens" in out else ["expected 8 128x128h pieces of 384"])
    # Stage 8 plans an fp8 cache and d = 256 on stage 7's tile table, as the GPU stage does: the
    # tall tree's 192-row pack becomes stage 7's 64-row tiles, and the summary says why.
    for extra, why in ((["--kv-dtype", "fp8"], "fp8"), (["--head-dim", "256"], "d = 256")):
        expect_ok(f"plan --hopper-tiles, {why}: stage 7's tile table, named in the summary", tall_tree + extra,
                  lambda out: [] if "stage 8 tiles" in out and "stage 7's tile table" in out
                  and not re.search(r"^\d+x\d+h ", out, re.M) and "stage 8 routing" not in out
                  else ["expected stage 7's tiles only and a 'stage 8 tiles' line"])
    expect_error("plan: --hopper-min-piece -1", ["plan", "tiny", "--hopper-tiles", "--hopper-min-piece", "-1"],
                 ["--hopper-min-piece must be a token count >= 0"], within=B)
    expect_error("plan: --hopper-rows 96", ["plan", "tiny", "--hopper-tiles", "--hopper-rows", "96"],
                 ["--hopper-rows must be 64, 128 or 192", "96"], within=B)
    expect_error("bench: --hopper-small-loader ldg", ["bench", "tiny", "--hopper-small-loader", "ldg"],
                 ["--hopper-small-loader", "ldg"], within=B)
    expect_ok("bench --help names the 16-row loaders", ["bench", "--help"], has("--hopper-small-loader"))
    expect_ok("bench --help names --fp32-partials", ["bench", "--help"], has("--fp32-partials", "Stages 4-9"))
    expect_ok("plan --hopper-tiles --cluster: stage 9 without stage 8's routing", ["plan", "tiny", "--hopper-tiles",
              "--cluster", "--quiet"], has("packs"))
    # --take-leaves (step 3c): the 1024-leaf tree's leaves become tails of their 64-row packs.
    leaves = ["plan", "--tree", "1,16,32,64,128,1024_256,128,64,32,32,32", "--heads", "64/8", "--quiet"]
    expect_ok("plan --take-leaves: 1024 leaves taken, no query merged", leaves + ["--take-leaves"],
              has("1024 leaves read by the pack before them", "64x64t", "PASS"))
    expect_ok("plan without --take-leaves: the leaves stay packs", leaves,
              lambda out: [] if "off (--take-leaves takes them)" in out and "64x64t" not in out
              else ["expected the leaf tails off and no tails' tile"])
    expect_ok("plan --take-leaves --packs lists each pack's tails", ["plan", "--tree", "1,4_64,32", "--take-leaves",
              "--packs", "--no-split", "--quiet"], has("leaf tails (query:tokens)", ":32 "))
    expect_error("plan: --tail-rows without --take-leaves", ["plan", "tiny", "--tail-rows", "64"],
                 ["--tail-rows requires --take-leaves"], within=B)
    expect_error("plan: --tail-rows 0", ["plan", "tiny", "--take-leaves", "--tail-rows", "0"],
                 ["--tail-rows", "not in range 1 to 192"], within=B)
    expect_error("bench: --tail-min-cut 1.5", ["bench", "tiny", "--tail-min-cut", "1.5"],
                 ["--tail-min-cut", "not in range"], within=B)
    expect_error("bench: --tail-rows with --no-take-leaves", ["bench", "tiny", "--no-take-leaves", "--tail-rows", "64"],
                 ["--no-take-leaves excludes --tail-rows"], within=B)
    # Stages 7-8 take leaf tails by default (bench and compare); --no-take-leaves turns them off.
    row = "leaf tails (stages 7-8, --no-take-leaves)"
    tails_row = lambda want: lambda out: [] if json.loads(out)["run"].get(row, "").startswith(want) \
        else [f"run row {row!r}: {json.loads(out)['run'].get(row)!r}, expected {want!r}..."]  # noqa: E731
    deep = ["bench", "--tree", "1,16,32,64,128,1024_256,128,64,32,32,32", "--heads", "64/8", "--stage", "pat",
            "--format", "json"]
    expect_exit("bench CPU mode: leaf tails taken by default", deep, EXIT_NOTHING_RAN,
                lambda out: tails_row("taken in packs of up to 64 rows")(out)
                + ([] if "128 packs x 8 KV heads, 1024 partials" in json.loads(out)["run"].get("plan (132 SMs)", "")
                   else [f"plan row: {json.loads(out)['run'].get('plan (132 SMs)')!r}, expected 128 packs, 1024 partials"]))
    expect_exit("bench CPU mode --no-take-leaves: no tails", deep + ["--no-take-leaves"], EXIT_NOTHING_RAN, tails_row("off"))
    # The gates: on a random tree the 45 leaves the rules allow would remove 13% of the CTAs and
    # add tile buckets.
    gated = ["plan", "--random-tree", "21", "--random-requests", "256", "--random-depth", "5",
             "--random-max-segment", "200", "--heads", "32/8", "--take-leaves", "--quiet"]
    expect_ok("plan --take-leaves: a plan that keeps no tails says why", gated,
              has("none: the 45 leaves the rules allow would remove 13% of the CTAs, fewer than 25% "
                  "(--tail-min-cut), and add 4 tile bucket(s), so as many launches"))
    expect_ok("plan --take-leaves: tails that would add tile buckets are declined",
              ["plan", "--random-tree", "42", "--random-requests", "256", "--random-depth", "6",
               "--random-max-segment", "64", "--heads", "32/8", "--take-leaves", "--quiet"],
              has("none: the 89 leaves the rules allow would add 4 tile bucket(s), so as many launches"))
    expect_ok("plan --take-leaves --tail-min-cut 0 keeps them", gated + ["--tail-min-cut", "0"],
              has("45 leaves read by the pack before them"))
    expect_error("plan: --take-leaves with --cluster", ["plan", "tiny", "--hopper-tiles", "--cluster", "--take-leaves"],
                 ["--take-leaves is stages 7 and 8's"], within=B)
    expect_error("plan: --take-leaves with --incremental", ["plan", "tiny", "--take-leaves", "--incremental", "4"],
                 ["--take-leaves is not in the incremental planner"], within=B)
    expect_error("plan: --hopper-wide-kv without --hopper-tiles", ["plan", "tiny", "--hopper-wide-kv", "4096"],
                 ["--hopper-min-kv, --hopper-wide-kv, --hopper-rows and --hopper-min-piece", "add --hopper-tiles"],
                 within=B)
    expect_ok("check a small hetero batch", ["check", "--hetero", "3", "--hetero-requests", "12", "--hetero-max", "400",
                                             "--hetero-prefix", "100", "--hetero-dist", "code", "--quiet"], has("PASS"))


def packinfer_cases():
    """patlab packinfer: every bad knob one line and exit 2 before any work; hetero96 in table and JSON."""
    B = BAD_INPUT_SECONDS
    bad = [("--sms", "0", "--sms must be an SM count in [1, 1024]"),
           ("--sms", "2147483647", "--sms must be an SM count in [1, 1024]"),
           ("--ctas-per-sm", "-1", "--ctas-per-sm must be in [1, 32], or 0 for the estimate"),
           ("--ctas-per-sm", "33", "--ctas-per-sm must be in [1, 32], or 0 for the estimate"),
           ("--units", "heads", "unknown --units 'heads' (known: packs, requests)"),
           ("--min-piece-blocks", "0", "--min-piece-blocks must be >= 1"),
           ("--horizon", "0", "--horizon must be >= 1 decode step"),
           ("--run-cost", "-1", "--run-cost must be >= 0 bytes"),
           ("--reserve", "-1", "--reserve must be >= 0 decode steps"),
           ("--reserve", "2147483647", "more than 4194304"),
           ("--format", "xml", "unknown format 'xml'")]
    for opt, value, needle in bad:
        expect_error(f"packinfer {opt} {value}", ["packinfer", "hetero96", opt, value], [needle], within=B)
    expect_error("packinfer: unknown option", ["packinfer", "--bogus"], ["--bogus", "(see patlab packinfer --help)"],
                 within=B)
    expect_error("packinfer: no such workload", ["packinfer", "nosuchpreset"], ["nosuchpreset"], within=B)
    expect_ok("packinfer hetero96", ["packinfer", "hetero96", "--quiet"],
              has("execution groups", "max <= bound", "yes", "PASS", "N: steps to pay off", "re-layout"))
    expect_ok("packinfer no sharing, requests, JSON", ["packinfer", "--hetero", "1", "--hetero-shared", "0", "--units",
                                                      "requests", "--format", "json", "--quiet"], packinfer_json)


def raw_byte_cases(tmp):
    """Bytes that are not text reach the error line as escapes, and a long input is cut."""
    B = BAD_INPUT_SECONDS
    cases = {"nul.json": b"\x00{}", "ff.json": b"\xff\xfe{",
             "long.json": b'{"segments": {"a": 10}, "requests": ["a+' + b"x" * 100000 + b'"]}'}
    for name, data in cases.items():
        with open(os.path.join(tmp, name), "wb") as f:
            f.write(data)
    expect_error("workload file starting with NUL", ["workload", os.path.join(tmp, "nul.json")],
                 ["unexpected byte 0x00 (not JSON text)"], within=B)
    expect_error("workload file of non-UTF-8 bytes", ["workload", os.path.join(tmp, "ff.json")],
                 ["unexpected byte 0xff"], within=B)
    try:
        p, elapsed = run(["workload", os.path.join(tmp, "long.json")])
        problems = [] if p.returncode == 2 else [f"exit {p.returncode}, expected 2"]
        if len(p.stderr) > 2200 or "more bytes)" not in p.stderr:
            problems.append(f"error line not cut: {len(p.stderr)} bytes")
        report("a 100 KB segment name is cut in the error line", problems, elapsed)
    except subprocess.TimeoutExpired:
        report("a 100 KB segment name is cut in the error line", ["no answer"], 60)


def full_disk_cases():
    """Output that cannot be written (stdout on /dev/full) is an error, not a silent exit 0."""
    if not os.path.exists("/dev/full"):
        print("skip stdout on /dev/full: no /dev/full here")
        return
    for args in (["list"], ["workload", "tiny", "--format", "json"]):
        t0 = time.monotonic()
        with open("/dev/full", "w") as full:
            p = subprocess.run([PATLAB] + args, stdout=full, stderr=subprocess.PIPE, text=True, timeout=60)
        lines = p.stderr.splitlines()
        problems = [] if p.returncode == 2 else [f"exit {p.returncode}, expected 2"]
        if not lines or not lines[-1].startswith("patlab: error: could not write the output to stdout"):
            problems.append(f"stderr does not end with the write error: {p.stderr!r}")
        report(f"{' '.join(args)} > /dev/full", problems, time.monotonic() - t0)


def packinfer_json(out):
    """The JSON of patlab packinfer: every table, the groups valid and within their bound."""
    doc = json.loads(out)
    missing = [t for t in ("packinfer", "execution groups", "group-contiguous layout", "decode step model",
                           "amortisation and policy") if t not in doc]
    if missing:
        return [f"JSON lacks tables {missing}"]
    groups = doc["execution groups"]
    problems = []
    if groups.get("max <= bound") != "yes":
        problems.append(f"max <= bound is {groups.get('max <= bound')!r}")
    if not str(groups.get("validator", "")).startswith("PASS"):
        problems.append(f"validator: {groups.get('validator')!r}")
    if doc["packinfer"].get("requests") != 96:
        problems.append(f"requests = {doc['packinfer'].get('requests')!r}, expected 96")
    return problems


def limit_cases(tmp, path):
    """Inputs past the stated limits are refused by size or count before the work, within a second;
    a long chain (linear, not quadratic) is accepted."""
    B = BAD_INPUT_SECONDS
    expect_error("--workload /dev/zero", ["workload", "--workload", "/dev/zero"], ["not a regular file"], within=B)
    expect_error("--workload a FIFO", ["workload", "--workload", make_fifo(tmp)], ["not a regular file"], within=B)
    huge = path("huge.json")
    with open(huge, "wb") as f:  # sparse: nothing is written, the size is what counts
        f.truncate(MAX_WORKLOAD_FILE_BYTES + 1)
    expect_error("workload file over 16 MiB", ["workload", huge], ["larger than 16 MiB"], within=B)
    many = path("6M_requests.json")
    with open(many, "w") as f:
        f.write('{"segments": {"a": 1}, "requests": [' + ",".join(['"a"'] * 6_000_000) + "]}")
    expect_error("24 MB JSON with 6M requests", ["workload", many], ["larger than 16 MiB"], within=B)
    counted = path("70k_requests.json")
    with open(counted, "w") as f:
        f.write('{"segments": {"a": 1}, "requests": [' + ",".join(['"a"'] * 70_000) + "]}")
    expect_error("JSON with more requests than the limit", ["workload", counted], ["too many requests (70000; at most 65536)"],
                 within=B)
    expect_error("--tree of 2 billion tokens", ["workload", "--tree", "1,128_16000000,1"],
                 ["tokens summed over its requests", "at most 268435456"], within=B)
    expect_error("--tree of 2 billion tokens (check)", ["check", "--tree", "1,128_16000000,1"],
                 ["at most 268435456"], within=B)
    levels = 17  # 1 + 17 * 65536 segments: past the limit of 2^20
    expect_error("--tree with too many segments", ["workload", "--tree", "1," + ",".join(["65536"] * levels) + "_" +
                                                   ",".join(["1"] * (levels + 1))],
                 ["more than 1048576 segments"], within=B)
    expect_error("--tree with a request past the limit", ["workload", "--tree", "1,2_16000000,1000000"],
                 ["17000000 tokens (at most 16777216)"], within=B)
    chain = path("chain.json")
    with open(chain, "w") as f:
        names = [f"segment{i}" for i in range(CHAIN_SEGMENTS)]
        f.write('{"segments": {' + ", ".join(f'"{n}": 1' for n in names) + '}, "requests": ["' + "+".join(names) + '"]}')
    expect_ok(f"chain of {CHAIN_SEGMENTS} segments ({os.path.getsize(chain) // 1000} kB) within {CHAIN_SECONDS} s",
              ["workload", chain], has(f"tree depth", str(CHAIN_SEGMENTS)), within=CHAIN_SECONDS)
    expect_ok("chain of segments, plan", ["plan", chain], has("PASS"), within=CHAIN_SECONDS)


def make_fifo(tmp):
    fifo = os.path.join(tmp, "fifo.json")
    if not os.path.exists(fifo):
        os.mkfifo(fifo)
    return fifo


def subcommand_cases(tmp, path):
    """Bad input of every subcommand: exit 2, one line, within a second; exit 1 on a failed check;
    bench and compare without a GPU decide before building any data."""
    B = BAD_INPUT_SECONDS
    for cmd in ("list", "workload", "check", "plan", "bench", "compare", "export"):
        expect_error(f"{cmd}: unknown option", [cmd, "--bogus"] + (["--out", tmp] if cmd == "export" else []),
                     ["--bogus", f"(see patlab {cmd} --help)"], within=B)
        expect_error(f"{cmd}: --format xml", [cmd, "--format", "xml"] + (["--out", tmp] if cmd == "export" else []),
                     ["unknown format 'xml'"], within=B)
    for cmd in ("workload", "check", "plan", "bench", "compare", "export"):
        extra = ["--out", path("out")] if cmd == "export" else []
        expect_error(f"{cmd}: malformed tree", [cmd, "--tree", "1,4_x,5"] + extra, ["malformed tree spec"], within=B)
        expect_error(f"{cmd}: unsupported shape", [cmd, "tiny", "--head-dim", "96"] + extra, ["unsupported head dim 96"],
                     within=B)
        expect_error(f"{cmd}: empty --tree", [cmd, "--tree", ""] + extra, ["--tree", "empty"], within=B)
    for cmd in ("bench", "compare"):
        expect_error(f"{cmd}: --clean-l2 with --warm-l2", [cmd, "tiny", "--clean-l2", "--warm-l2"],
                     ["--clean-l2", "--warm-l2"], within=B)
    expect_error("list: extra positional", ["list", "extra"], ["extra"], within=B)
    expect_error("plan: --sms 0", ["plan", "tiny", "--sms", "0"], ["--sms must be an SM count in [1, 1024]"], within=B)
    expect_error("plan: --sms 2^31 - 1 with --cluster", ["plan", "tiny", "--hopper-tiles", "--cluster", "--sms",
                                                         "2147483647"], ["--sms must be an SM count"], within=B)
    expect_error("plan: --ctas-per-sm -1", ["plan", "tiny", "--ctas-per-sm", "-1"], ["--ctas-per-sm must be in [1, 32]"],
                 within=B)
    expect_error("plan: --ctas-per-sm 33", ["plan", "tiny", "--ctas-per-sm", "33"], ["--ctas-per-sm must be in [1, 32]"],
                 within=B)
    expect_error("plan: --hopper-wide-kv below --hopper-min-kv", ["plan", "tiny", "--hopper-tiles", "--hopper-min-kv",
                                                                  "4096", "--hopper-wide-kv", "16"],
                 ["--hopper-wide-kv 16 is below --hopper-min-kv 4096"], within=B)
    expect_error("plan: --fill-window with --no-fill", ["plan", "tiny", "--fill-window", "4", "--no-fill"],
                 ["--no-fill excludes --fill-window"], within=B)
    # Numbers read as decimal everywhere: CLI11 alone would read "020" as 16 and "0x10" as 16.
    for opt, value in (("--page", "020"), ("--page", "0x10"), ("--head-dim", "0128")):
        expect_error(f"workload {opt} {value}", ["workload", "tiny", opt, value],
                     [opt, f"'{value}' is not a decimal number"], within=B)
    expect_error("workload --page 99999999999", ["workload", "tiny", "--page", "99999999999"],
                 ["--page: '99999999999' is not a value of the option's type, or out of its range"], within=B)
    expect_error("serve --steps past int64", ["serve", "gen:requests=2,rate=0", "--steps", "99999999999999999999"],
                 ["--steps: '99999999999999999999' is out of range"], within=B)
    expect_error("bench --repeats 020", ["bench", "tiny", "--repeats", "020"], ["'020' is not a decimal number"],
                 within=B)
    expect_error("plan: --fill-window 0", ["plan", "tiny", "--fill-window", "0"], ["--fill-window must be 1..16"], within=B)
    expect_error("plan: --hopper-min-kv -1", ["plan", "tiny", "--hopper-tiles", "--hopper-min-kv", "-1"],
                 ["--hopper-min-kv must be a token count >= 0"], within=B)
    expect_error("plan: --hopper-min-kv without --hopper-tiles", ["plan", "tiny", "--hopper-min-kv", "256"],
                 ["--hopper-min-kv, --hopper-wide-kv, --hopper-rows and --hopper-min-piece", "add --hopper-tiles"],
                 within=B)
    expect_error("plan: --hopper-min-kv with --cluster",
                 ["plan", "tiny", "--hopper-tiles", "--cluster", "--hopper-min-kv", "256"],
                 ["--hopper-min-kv, --hopper-wide-kv, --hopper-rows and --hopper-min-piece are stage 8's"], within=B)
    bad_timing_and_routing = [
        ("--repeats", "5", ["--repeats must be in [20, 100000]"]),
        ("--repeats", "2000000000", ["--repeats must be in [20, 100000]"]),
        ("--warmup", "2000000000", ["--warmup must be in [0, 100000]"]),
        ("--max-kv-tile", "48", ["--max-kv-tile must be"]),
        ("--fill-window", "17", ["--fill-window must be 1..16"]),
        ("--hopper-min-kv", "-5", ["--hopper-min-kv must be a token count >= 0"]),
        ("--hopper-wide-kv", "-5", ["--hopper-wide-kv must be a token count >= 0"]),
        ("--hopper-rows", "256", ["--hopper-rows must be 64, 128 or 192", "256"]),
        ("--bucket-launch", "streams", ["--bucket-launch must be gates or chain", "'streams'"]),
        ("--cluster-merge", "late", ["--cluster-merge must be folded or kernel", "'late'"]),
    ]
    for cmd in ("bench", "compare"):
        for opt, value, needles in bad_timing_and_routing:
            expect_error(f"{cmd}: {opt} {value}", [cmd, "tiny", opt, value], needles, within=B)
    expect_error("bench: unknown stage", ["bench", "tiny", "--stage", "nope"], ["unknown GPU stage 'nope'", "7 pat"],
                 within=B)
    expect_error("bench: stage 0 is the CPU oracle", ["bench", "tiny", "--stage", "0"], ["unknown GPU stage '0'"],
                 within=B)
    expect_error("bench: empty --stage", ["bench", "tiny", "--stage", ""], ["--stage", "empty"], within=B)
    expect_error("compare takes no --stage", ["compare", "tiny", "--stage", "pat"], ["--stage"], within=B)
    expect_error("bench: empty --cta-trace", ["bench", "tiny", "--cta-trace", ""], ["--cta-trace", "empty"], within=B)
    if "CTA trace build" not in run(["--version"])[0].stdout:
        expect_error("bench --cta-trace needs a trace build", ["bench", "tiny", "--cta-trace", path("t.csv")],
                     ["--cta-trace", "-Dcta_trace=true"], within=B)
        if os.path.exists(path("t.csv")):
            report("bench --cta-trace refused: no file left behind", [f"{path('t.csv')} exists"], 0)
    expect_error("export: no --out", ["export", "tiny"], ["--out"], within=B)
    expect_error("export: empty --out", ["export", "tiny", "--out", ""], ["--out", "empty"], within=B)
    a_file = path("good.json")
    expect_error("export: --out is a file", ["export", "tiny", "--out", a_file], ["exists and is not a folder"],
                 within=B)
    expect_error("export: --out under a file", ["export", "tiny", "--out", os.path.join(a_file, "sub")],
                 ["is not a folder"], within=B)
    expect_error("export: --out checked before the oracle", ["export", "long-prefix", "--out", a_file],
                 ["exists and is not a folder"], within=B)
    expect_error("check: unknown PATLAB_INJECT_FAULT", ["check", "tiny"], ["PATLAB_INJECT_FAULT='nope'"], within=B,
                 env={"PATLAB_INJECT_FAULT": "nope"})

    # Exit 1 on a failed check, without a GPU: faults injected on purpose (test-only variable).
    fails = lambda out: [] if "FAIL" in out else ["no FAIL in the table"]  # noqa: E731
    expect_exit("check: an injected plan fault exits 1", ["check", "tiny"], 1, fails,
                env={"PATLAB_INJECT_FAULT": "plan"},
                stderr_check=lambda err: [] if "plan fault" in err else [f"no 'plan fault' line: {err!r}"])
    expect_exit("check: an injected output error exits 1", ["check", "tiny"], 1, fails,
                env={"PATLAB_INJECT_FAULT": "output"})

    # No GPU (a CPU build or a host without a device): decided before any data is built, the
    # cheap CPU parts run, and the exit code says that no stage ran.
    if has_gpu():
        print("note: a CUDA device is present; the no-GPU cases of bench and compare do not apply here")
        return
    skipped = lambda out: [] if "GPU stages skipped" in out else ["no 'GPU stages skipped' row"]  # noqa: E731
    expect_exit("compare without a GPU: CPU parts, exit 77", ["compare", "tiny"], EXIT_NOTHING_RAN,
                lambda out: skipped(out) + has("PASS", "validator PASS")(out))
    expect_exit("compare of a large workload without a GPU: no oracle, fast", ["compare", "--tree", "1,128_16384,256"],
                EXIT_NOTHING_RAN, lambda out: skipped(out) + has("not run", "patlab check runs it")(out), within=5)
    prediction_cases(B)
    # Partials in 16 bits (stages 4-9, the default): without a GPU the model bytes of stage 7 are
    # --fp32-partials' less the o's half of every partial's round trip (208 partials x 2 trips x 32
    # heads x 128 x 2 bytes), stage 3's the same.
    hp = ["bench", "--tree", "1,16_4096,256", "--heads", "32/8", "--stage", "pat", "splitkv", "--format", "json"]
    fp32_bytes = {}

    def stage_bytes(out):
        return {r["stage"]: r["model_bytes"] for r in json.loads(out)["prediction"]}

    def half_partials_check(out):
        half = stage_bytes(out)
        problems = [] if "16-bit" in json.loads(out)["run"].get("partials' o (stages 4-9, --fp32-partials)", "") \
            else ["the run table does not say the partials are 16-bit"]
        if fp32_bytes.get("pat", 0) - half.get("pat", 0) != 208 * 2 * 32 * 128 * 2:
            problems.append(f"stage 7's model bytes {fp32_bytes.get('pat')} -> {half.get('pat')}")
        if fp32_bytes.get("splitkv") != half.get("splitkv"):
            problems.append(f"stage 3's model bytes moved: {fp32_bytes.get('splitkv')} -> {half.get('splitkv')}")
        return problems

    expect_exit("bench CPU mode with --fp32-partials", hp + ["--fp32-partials"], EXIT_NOTHING_RAN,
                lambda out: fp32_bytes.update(stage_bytes(out)) or [])
    expect_exit("bench CPU mode by default: stage 7's partial o in 16 bits, stage 3's not",
                hp, EXIT_NOTHING_RAN, half_partials_check)
    expect_error("bench: --half-partials is gone (the default)", ["bench", "tiny", "--half-partials"],
                 ["--half-partials"], within=B)
    expect_exit("bench --stage 7 == --stage pat", ["bench", "tiny", "--stage", "7", "--format", "json"],
                EXIT_NOTHING_RAN, lambda out: [] if json.loads(out)["run"]["GPU stages skipped"].startswith("pat (")
                else ["stage 7 is not pat"])
    expect_exit("bench --stage 7 pat runs pat once", ["bench", "tiny", "--stage", "7", "pat", "--format", "json"],
                EXIT_NOTHING_RAN, lambda out: [] if json.loads(out)["run"]["GPU stages skipped"].startswith("pat (")
                else ["pat listed twice"])


def prediction_problems(out, stages, gbs, source):
    """The CPU mode's prediction: one row per stage, model bytes / bandwidth, the source named."""
    doc = json.loads(out)
    rows, run_fields = doc.get("prediction", []), doc.get("run", {})
    problems = []
    if [r.get("stage") for r in rows] != stages:
        problems.append(f"prediction rows {[r.get('stage') for r in rows]}, expected {stages}")
    for r in rows:
        if r["bandwidth_GBs"] != gbs:
            problems.append(f"{r['stage']}: bandwidth {r['bandwidth_GBs']}, expected {gbs}")
        want = r["model_bytes"] / (gbs * 1e3)
        if not isinstance(r["model_bytes"], int) or r["model_bytes"] <= 0:
            problems.append(f"{r['stage']}: model_bytes {r['model_bytes']!r}")
        elif abs(r["predicted_us"] - want) > PREDICTED_US_ROUNDING + 1e-9:
            problems.append(f"{r['stage']}: predicted {r['predicted_us']} us, bytes/bandwidth is {want:.3f}")
    if run_fields.get("bandwidth GB/s") != gbs:
        problems.append(f"run bandwidth {run_fields.get('bandwidth GB/s')!r}, expected {gbs}")
    if source not in str(run_fields.get("bandwidth source", "")):
        problems.append(f"bandwidth source {run_fields.get('bandwidth source')!r} lacks {source!r}")
    if "bytes / bandwidth only" not in str(run_fields.get("prediction", "")):
        problems.append("the run table does not say the model is bytes / bandwidth only")
    return problems


def saved_copy_bandwidths():
    """'copy GB/s' of every saved H200 bench run."""
    values = []
    for md in REPO.glob(H200_RESULTS + "/**/*.md"):
        values += [float(v) for v in re.findall(r"^\| copy GB/s \| ([0-9.]+) \|", md.read_text(), re.M)]
    return values


def prediction_cases(B):
    """No GPU: bench/compare predict each stage's time from its model bytes at a stated bandwidth."""
    all_stages = ["naive", "gqa", "splitkv", "packed", "multitile", "multistream", "pat", "hopper", "cluster", "packinfer"]
    expect_exit("compare without a GPU: a predicted time per stage at the default bandwidth",
                ["compare", "tiny", "--format", "json"], EXIT_NOTHING_RAN,
                lambda out: prediction_problems(out, all_stages, DEFAULT_BANDWIDTH_GBS, "docs/results"))
    expect_exit("bench --bandwidth 1000: the prediction at the given bandwidth",
                ["bench", "tiny", "--stage", "gqa", "pat", "--bandwidth", "1000", "--format", "json"], EXIT_NOTHING_RAN,
                lambda out: prediction_problems(out, ["gqa", "pat"], 1000, "--bandwidth"))

    def shared_prefix_order(out):
        rows = {r["stage"]: r["model_bytes"] for r in json.loads(out)["prediction"]}
        return [] if rows["pat"] < rows["gqa"] < rows["naive"] else [f"bytes not pat < gqa < naive: {rows}"]
    expect_exit("compare of a large shared prefix without a GPU: predicted in about a second",
                ["compare", "--tree", "1,128_16384,256", "--format", "json"], EXIT_NOTHING_RAN,
                lambda out: prediction_problems(out, all_stages, DEFAULT_BANDWIDTH_GBS, "docs/results")
                + shared_prefix_order(out), within=3)
    expect_exit("bench of 256 x 1024 tokens, 32/32 heads, without a GPU: predicted in about a second",
                ["bench", "--tree", "256_1024", "--heads", "32/32", "--format", "json"], EXIT_NOTHING_RAN,
                lambda out: prediction_problems(out, all_stages, DEFAULT_BANDWIDTH_GBS, "docs/results"), within=3)
    for bad in ("0", "-5", "nan", "fast", "1e-300", "inf", "1e6"):
        expect_error(f"bench --bandwidth {bad}", ["bench", "tiny", "--bandwidth", bad], ["--bandwidth"], within=B)
    expect_ok("bench --help names the bandwidth's source", ["bench", "--help"],
              has("--bandwidth", "GBPS", "docs/results/2026-12-01-h200-*)"))
    saved = saved_copy_bandwidths()
    problems = [] if saved else [f"no 'copy GB/s' rows under {H200_RESULTS}"]
    if saved and not min(saved) <= DEFAULT_BANDWIDTH_GBS <= max(saved):
        problems.append(f"default {DEFAULT_BANDWIDTH_GBS} GB/s outside the saved runs' {min(saved)}-{max(saved)}")
    report(f"the default bandwidth lies within the saved H200 runs' copy GB/s ({len(saved)} runs)", problems, 0)


def has_gpu():
    """Whether bench found a usable device: its run table names one."""
    p, _ = run(["bench", "tiny", "--stage", "naive", "--format", "json", "--quiet"], timeout=300)
    try:
        fields = json.loads(p.stdout)["run"]
    except (ValueError, KeyError):
        return False
    return fields.get("device", "none") != "none"


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
    expect_error("dtype fp8", ["workload", "--dtype", "fp8"], ["unsupported dtype 'fp8' for q", "--kv-dtype fp8"])
    expect_error("kv dtype fp8_e5m2", ["workload", "--kv-dtype", "fp8_e5m2"],
                 ["unsupported KV cache dtype 'fp8_e5m2' (expected auto, fp8 or fp8_e4m3)"])
    for cmd in ("plan", "bench", "check"):
        expect_error(f"{cmd} --kv-dtype int8", [cmd, "--kv-dtype", "int8"], ["unsupported KV cache dtype 'int8'"])
    expect_error("export --kv-dtype int8", ["export", "--out", tmp, "--kv-dtype", "int8"],
                 ["unsupported KV cache dtype 'int8'"])
    expect_ok("workload --kv-dtype fp8", ["workload", "tiny", "--kv-dtype", "fp8"], has("kv fp8_e4m3"))
    expect_ok("check --kv-dtype fp8", ["check", "tiny", "--kv-dtype", "fp8_e4m3", "--dtype", "bf16"], has("PASS"))
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
    expect_error("too large for host memory (check)", ["check", "--tree", "16_16000000"],
                 ["too large for host memory"], timeout=10, progress_ok=True, within=BAD_INPUT_SECONDS)
    expect_error("too large for host memory (pools)", ["check", "--tree", "1,8_16000000,100000", "--heads", "128/128"],
                 ["too large for host memory"], timeout=10, progress_ok=True, within=BAD_INPUT_SECONDS)
    expect_error("request too long", ["workload", "--tree", "1,2_16777216,1"], ["16777217 tokens (at most 16777216)"])
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
    expect_error("--model with --heads", ["workload", "--model", "qwen2.5-7b", "--heads", "32/8"],
                 ["--model qwen2.5-7b sets the heads and head dim", "not both"])
    expect_error("--model with --head-dim", ["plan", "tiny", "--model", "gemma-2-9b", "--head-dim", "128"],
                 ["--model gemma-2-9b sets the heads and head dim"])
    expect_error("unknown --model", ["workload", "--model", "qwen2-7b"], ["unknown model 'qwen2-7b'", "qwen2.5-7b"])
    expect_error("list --models with --presets", ["list", "--models", "--presets"], ["--models"])

    contract_cases(tmp, path)
    limit_cases(tmp, path)
    subcommand_cases(tmp, path)
    hetero_cases()
    packinfer_cases()
    full_disk_cases()
    raw_byte_cases(tmp)

    # Success.
    expect_ok("--help", ["--help"], has("patlab [OPTIONS]", "workload", "check", "Exit codes", "77"))
    expect_ok("workload --help", ["workload", "--help"], has("--tree", "--heads"))
    expect_ok("list", ["list"], has("oracle", "tutorial/01-oracle-and-merge.md"))
    expect_ok("list --presets", ["list", "--presets"], has("sysprompt", "tiny", "asymmetric", "1,64_4096,256"))
    expect_ok("list --models", ["list", "--models"],
              has("llama-3-8b", "llama-3-70b", "qwen2.5-7b", "qwen2.5-32b", "mistral-7b", "gemma-2-9b", "28/4", "40/8",
                  "https://huggingface.co/Qwen/Qwen2.5-7B/blob/main/config.json",
                  "https://huggingface.co/google/gemma-2-9b/blob/main/config.json"))
    # --model sets heads and head dim on every command that takes a shape; names match loosely.
    for model, shape in (("qwen2.5-7b", "28/4 heads, d=128"), ("llama3-70b", "64/8 heads, d=128"),
                         ("qwen2.5-32b", "40/8 heads, d=128"), ("mistral-7b", "32/8 heads, d=128"),
                         ("gemma-2-9b", "16/8 heads, d=256"), ("Llama-3-8B", "32/8 heads, d=128")):
        expect_ok(f"workload --model {model}", ["workload", "tiny", "--model", model, "--page", "32"],
                  has(shape, "page 32"))
    expect_ok("check --model qwen2.5-7b (group 7)", ["check", "tiny", "--model", "qwen2.5-7b", "--quiet"], has("PASS"))
    expect_ok("check --model gemma-2-9b (d=256)", ["check", "tiny", "--model", "gemma-2-9b", "--quiet"], has("PASS"))
    expect_ok("plan --model qwen2.5-32b (group 5)", ["plan", "tiny", "--model", "qwen2.5-32b"], has("packs"))
    expect_ok("list --format json", ["list", "--format", "json"], lambda out: [] if json.loads(out)["stages"] else ["empty"])
    expect_ok("workload tiny (table)", ["workload", "tiny"], table_check)
    expect_ok("workload tiny --format csv", ["workload", "tiny", "--format", "csv"], csv_check)
    expect_ok("workload tiny --format json", ["workload", "tiny", "--format", "json"], json_check)
    expect_ok("workload tiny --format jsonl", ["workload", "tiny", "--format", "jsonl"], jsonl_check)
    expect_ok("workload tiny --format markdown", ["workload", "tiny", "--format", "markdown"], markdown_check)
    expect_ok("workload default preset", ["workload"], has("preset sysprompt", "13.60"))
    expect_ok("workload from a file", ["workload", path("good.json")], has("8/2 heads, d=64", "workload " + path("good.json")))
    expect_ok("workload --tree with overrides", ["workload", "--tree", "1,8_512,64", "--heads", "16/16", "--page", "64",
                                                 "--dtype", "bf16", "--no-shuffle"], has("16/16 heads, d=128, page 64, bf16"))
    expect_ok("workload --random-tree", ["workload", "--random-tree", "9", "--random-depth", "1"], has("random tree, seed 9"))
    expect_ok("check tiny", ["check", "tiny"], has("PASS"))
    expect_ok("check tiny --format json", ["check", "tiny", "--format", "json"],
              check_json_check)
    expect_ok("plan --incremental", ["plan", "--tree", "1,4,32_256,64,8", "--incremental", "40"],
              has("40 of 40 (PASS)", "40 of 40 plans valid (PASS)", "speedup (medians)"))
    expect_ok("check a small file", ["check", path("good.json"), "--dtype", "bf16"], has("PASS"))

    print(f"{len(failures)} failed" if failures else "all CLI cases passed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
