#!/usr/bin/env python3
"""The suite files (tools/suite.txt, tools/suite-categories.txt) and what reads their categories.

* tools/suite_file.py: categories, comment lines, trailing comments, the default category;
* both files: the categories they must have; every line plans with `patlab plan` within the
  timeout, and the size comments of tools/suite-categories.txt match `patlab workload`
  (tools/suite_sizes.py --check; `--kv-dtype` lines are planned as written only where patlab has
  the option); the fp8 lines each followed by their fp16 twin of >= 512 MB;
* suite_sizes.py fails on a line that does not plan and on a wrong size;
* tools/summarize_results.py: the per-category table from a synthetic results folder;
* the device scripts tools/run_suite.sh and tools/peers/profile_peers.sh: usage errors exit 2
  with a line that says what is wrong (they cannot run here: no GPU).

    python3 tests/cli/test_suite_files.py build/tools/patlab
"""

import json
import pathlib
import subprocess
import sys
import tempfile

REPO = pathlib.Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tools"))
import suite_file  # noqa: E402
import suite_sizes  # noqa: E402

SUITE = REPO / "tools/suite.txt"
CATEGORIES = REPO / "tools/suite-categories.txt"
#: Categories issue 11 asks for, in the file's order.
ISSUE_CATEGORIES = ["long no-sharing", "heterogeneous lengths", "random asymmetric trees", "groups 5 and 7", "d 256",
                    "fp8 KV"]
#: Categories of the standard suite.
SUITE_CATEGORIES = ["PAT trees", "large prefixes", "no-sharing controls"]
#: Smallest unique KV of an fp8 line's fp16 twin (MB).
FP8_MIN_MB = 512
#: Seconds allowed to one `patlab plan` (no K/V data is made; the slowest line takes well under 1 s).
PLAN_SECONDS = 10
failures = []


def check(name, ok, detail=""):
    print(f"{'ok' if ok else 'FAIL':4} {name}" + (f": {detail}" if detail and not ok else ""))
    if not ok:
        failures.append(name)


def parser_cases(tmp: pathlib.Path):
    f = tmp / "s.txt"
    f.write_text("# header\n--tree 1,2_3,4\n\n# category: A\n--tree 4_5  # 1 MB unique KV (fp16)\n# note\n"
                 "#   category: not one (indented text after '#')\n# category: B C\n--hetero 1 --heads 32/8\n")
    got = suite_file.read_entries(f)
    check("read_entries: categories, comments, trailing comments",
          got == [(suite_file.DEFAULT_CATEGORY, "--tree 1,2_3,4"), ("A", "--tree 4_5"), ("B C", "--hetero 1 --heads 32/8")],
          repr(got))
    check("categories_by_line", suite_file.categories_by_line(f)["--tree 4_5"] == "A")
    check("fp16_twin drops --kv-dtype X and --kv-dtype=X",
          suite_sizes.fp16_twin(["--tree", "4_5", "--kv-dtype", "fp8", "--heads", "32/8"]) == ["--tree", "4_5", "--heads",
                                                                                            "32/8"]
          and suite_sizes.fp16_twin(["--kv-dtype=fp8", "a"]) == ["a"])


def file_cases():
    suite = suite_file.read_entries(SUITE)
    check("tools/suite.txt: 85 workloads in its three categories",
          len(suite) == 85 and sorted({c for c, _ in suite}) == sorted(SUITE_CATEGORIES),
          f"{len(suite)} workloads, categories {sorted({c for c, _ in suite})}")
    cats = suite_file.read_entries(CATEGORIES)
    order = list(dict.fromkeys(c for c, _ in cats))
    check("tools/suite-categories.txt: the issue's categories, in order", order == ISSUE_CATEGORIES, repr(order))
    lines = [l for _, l in cats]
    check("tools/suite-categories.txt: no workload twice (results are joined by line)", len(set(lines)) == len(lines))
    check("tools/suite-categories.txt: about 30 workloads", 24 <= len(lines) <= 36, str(len(lines)))
    sizes = {}
    for raw in CATEGORIES.read_text().splitlines():
        m = suite_sizes.SIZE_COMMENT.search(raw)
        if m:
            sizes[raw.split(" #", 1)[0].strip()] = int(m.group(1))
    fp8 = [l for c, l in cats if c == "fp8 KV"]
    pairs_ok = len(fp8) >= 2 and len(fp8) % 2 == 0
    for i in range(0, len(fp8) - 1, 2):
        a, b = fp8[i].split(), fp8[i + 1].split()
        pairs_ok &= suite_sizes.KV_DTYPE in a and suite_sizes.fp16_twin(a) == b and sizes.get(fp8[i + 1], 0) >= FP8_MIN_MB
    check(f"fp8 KV: each --kv-dtype line followed by its fp16 twin of >= {FP8_MIN_MB} MB", pairs_ok, repr(fp8))


def sizes_cases(patlab: str, tmp: pathlib.Path):
    def run(*files):
        return subprocess.run([sys.executable, str(REPO / "tools/suite_sizes.py"), "--patlab", patlab, "--check",
                               "--timeout", str(PLAN_SECONDS), *map(str, files)], capture_output=True, text=True,
                              timeout=600)

    r = run(SUITE, CATEGORIES)
    print(r.stdout.strip())
    check("every line of both suite files plans; sizes hold", r.returncode == 0, r.stdout[-2000:] + r.stderr[-500:])
    bad = tmp / "bad.txt"
    bad.write_text("--tree 0_5\n")
    r = run(bad)
    check("suite_sizes --check fails on a line that does not plan", r.returncode == 1 and "0 nodes" in r.stdout,
          r.stdout + r.stderr)
    wrong = tmp / "wrong.txt"
    wrong.write_text("--tree 16_8192 --heads 32/8  # 999 MB unique KV (fp16)\n--tree 1,4_100,37\n")
    r = run(wrong)
    check("suite_sizes --check fails on a wrong size and a missing one",
          r.returncode == 1 and "says 999 MB, patlab workload 537 MB" in r.stdout and "no size comment" in r.stdout,
          r.stdout + r.stderr)


def stage_rows(times: dict) -> list:
    return [{"stage": s, "time_us": t, "pct_copy": 50.0, "unique_bytes": 2e8, "model_bytes": 2.2e8, "notes": ""}
            for s, t in times.items()]


def summarize_cases(tmp: pathlib.Path):
    """Two categories with known stage times: the table must show their geometric means."""
    out = tmp / "results"
    out.mkdir()
    base = {"naive": 100.0, "gqa": 80.0, "splitkv": 40.0, "packed": 30.0, "multitile": 25.0, "multistream": 20.0}
    records = [("--tree 1,64_4096,256", "A", 10.0), ("--tree 1,8_512,64", "A", 40.0), ("--tree 16_8192", "B", 20.0)]
    with open(out / "patlab.jsonl", "w") as f:
        for key, cat, pat in records:
            compare = {"run": {"device": "synthetic"}, "results": stage_rows({**base, "pat": pat})}
            f.write(json.dumps({"key": key, "args": key, "category": cat, "exit": 0, "compare": compare}) + "\n")
    with open(out / "peers.jsonl", "w") as f:
        f.write(json.dumps({"key": "--tree 16_8192", "peer": "fi-decode", "status": "PASS", "time_us": 10.0}) + "\n")
    r = subprocess.run([sys.executable, str(REPO / "tools/summarize_results.py"), str(out)], capture_output=True,
                       text=True, timeout=300)
    text = (out / "summary.md").read_text() if (out / "summary.md").exists() else ""
    # A: pat / multistream = geomean(10/20, 40/20) = 1.00, pat / splitkv = geomean(0.25, 1) = 0.50, no peer.
    # B: 20/20 = 1.00, 20/40 = 0.50, pat / best peer = 20/10 = 2.00 over one workload.
    want = ["| A | 2 | 1.00 | 0.50 | - | 0 |", "| B | 1 | 1.00 | 0.50 | 2.00 | 1 |"]
    check("summarize_results: one row per category", r.returncode == 0 and all(w in text for w in want),
          r.stderr[-500:] + text[text.find("## By category"):][:600])

    # The same records as a suite run in two parts (two device calls, two commits): one table over
    # both, each commit named with its workload count, the best stage's line against the best peer.
    parts = tmp / "parts"
    for i, (chunk, commit) in enumerate([(records[:2], "aaaa111"), (records[2:], "bbbb222")], start=1):
        part = parts / f"part{i}"
        part.mkdir(parents=True)
        with open(part / "patlab.jsonl", "w") as f:
            for key, cat, pat in chunk:
                compare = {"run": {"device": "synthetic", "commit": commit, "date": f"2026-12-0{i} 10:00"},
                           "results": stage_rows({**base, "pat": pat, "hopper": pat / 2})}
                f.write(json.dumps({"key": key, "args": key, "category": cat, "exit": 0, "compare": compare}) + "\n")
    (parts / "part2" / "peers.jsonl").write_text(
        json.dumps({"key": "--tree 16_8192", "peer": "deft", "status": "PASS", "time_us": 20.0}) + "\n")
    r = subprocess.run([sys.executable, str(REPO / "tools/summarize_results.py"), str(parts)], capture_output=True,
                       text=True, timeout=300)
    text = (parts / "summary.md").read_text() if (parts / "summary.md").exists() else ""
    want = ["# Suite summary: 3 workloads", "commits aaaa111 (2 workloads), bbbb222 (1 workloads); 2026-12-01 to 2026-12-02",
            "Stage `pat` against the best peer of each workload (DeFT): x1.00 geometric mean speedup, faster on 0 of 1",
            "The fastest stage of each workload against the best peer: x2.00 geometric mean speedup, faster on 1 of 1",
            "| A | 2 | 1.00 | 0.50 | - | 0 |"]
    check("summarize_results: a suite in parts is one suite, each part's commit named",
          r.returncode == 0 and all(w in text for w in want), r.stderr[-500:] + text[:900])


def script_cases(patlab: str, tmp: pathlib.Path):
    def run(*args):
        return subprocess.run(["bash", *map(str, args)], capture_output=True, text=True, timeout=60)
    r = run(REPO / "tools/run_suite.sh")
    check("run_suite.sh without OUTDIR: usage, exit 2", r.returncode == 2 and "run_suite.sh OUTDIR" in r.stdout,
          f"exit {r.returncode}")
    r = run(REPO / "tools/run_suite.sh", "/tmp/x", "--bogus")
    check("run_suite.sh unknown option: exit 2, named", r.returncode == 2 and "--bogus" in r.stderr,
          f"exit {r.returncode}: {r.stderr[-200:]}")
    def ab(*args):
        return subprocess.run([sys.executable, str(REPO / "tools/bench_ab.py"), *map(str, args)], capture_output=True,
                              text=True, timeout=120)
    r = ab("--a", "--fill-window 4", "--b", "--fill-window  4", "--out", tmp / "ab", "--patlab", patlab, "tiny")
    check("bench_ab.py: the same options on both sides: exit 2, named",
          r.returncode == 2 and "nothing to compare" in r.stderr, f"exit {r.returncode}: {r.stderr[-200:]}")
    r = ab("--a", "--fill-window 4", "--b", "--fill-window 8", "--out", tmp / "ab", "--patlab", patlab)
    check("bench_ab.py: no workloads: exit 2, named", r.returncode == 2 and "no workloads" in r.stderr,
          f"exit {r.returncode}: {r.stderr[-200:]}")
    r = ab("--a", "--fill-window 4", "--b", "--fill-window 8", "--out", "/tmp/ab-test", "--patlab", "/nonexistent", "tiny")
    check("bench_ab.py: a missing patlab binary: exit 2, named", r.returncode == 2 and "/nonexistent" in r.stderr,
          f"exit {r.returncode}: {r.stderr[-200:]}")
    r = ab("--a", "--fill-window 4", "--b", "--fill-window 8", "--out", tmp / "ab", "--patlab", patlab, "tiny")
    sides = [json.loads(x)["side"] for x in open(tmp / "ab" / "ab.jsonl")] if (tmp / "ab" / "ab.jsonl").exists() else []
    check("bench_ab.py: both sides run; without a GPU exit 77 and said, with one a row per stage",
          sides == ["A", "B"] and ((r.returncode == 77 and "no GPU" in r.stderr)
                                   or (r.returncode == 0 and "| `tiny` | pat |" in r.stdout)),
          f"exit {r.returncode}: {r.stderr[-300:]}")
    r = run(REPO / "tools/peers/setup_carry.sh", "--bogus")
    check("setup_carry.sh unknown option: exit 2, named", r.returncode == 2 and "--bogus" in r.stderr,
          f"exit {r.returncode}: {r.stderr[-200:]}")
    r = run(REPO / "tools/peers/setup_carry.sh", "--venv")
    check("setup_carry.sh option without its value: usage, exit 2",
          r.returncode == 2 and "setup_carry.sh [--pat-git DIR]" in r.stdout, f"exit {r.returncode}")
    r = run(REPO / "tools/peers/profile_peers.sh")
    check("profile_peers.sh without arguments: usage, exit 2",
          r.returncode == 2 and "profile_peers.sh OUTDIR" in r.stdout and "set -uo" not in r.stdout, f"exit {r.returncode}")
    r = run(REPO / "tools/peers/profile_peers.sh", "/tmp/x", "tiny", "fasttree", "hopper", "0")
    check("profile_peers.sh LAUNCHES 0: exit 2, named", r.returncode == 2 and "LAUNCHES" in r.stderr,
          f"exit {r.returncode}: {r.stderr[-200:]}")


def main() -> int:
    if len(sys.argv) != 2:
        print("usage: test_suite_files.py PATLAB", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory() as d:
        tmp = pathlib.Path(d)
        parser_cases(tmp)
        file_cases()
        sizes_cases(sys.argv[1], tmp)
        summarize_cases(tmp)
        script_cases(sys.argv[1], tmp)
    print(f"{len(failures)} failures" + (": " + ", ".join(failures) if failures else ""))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
