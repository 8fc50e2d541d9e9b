#!/usr/bin/env python3
"""The tutorial's scripts cannot rot: every `python3 tools/tutorial/...` command that a chapter
shows is run here on the committed results, must exit 0, and every line it prints must be in the
chapter (the chapter quotes the output, all of it). Every script under tools/tutorial/ must be run
by some chapter, must reject bad input with one line and exit 2, and the workload files there
(uneven.json) must plan to what the chapter shows.

    python3 tests/docs/test_tutorial_scripts.py PATLAB     # PATLAB: the built patlab executable
"""
import pathlib
import re
import shlex
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent.parent
SCRIPTS = ROOT / "tools/tutorial"
LIBRARY = {"suite_results.py"}  # imported by the scripts, not run
FENCE = re.compile(r"^```(\w*)\n(.*?)^```\n", re.S | re.M)
# A script given input it cannot read: each must say so in one line and exit 2.
BAD_INPUT = {
    "predict.py": ["naive", "--tree 1_1 --heads 1/1"],
    "percta.py": ["gqa:--tree 1_1 --heads 1/1"],
    "splitkv_ctas.py": ["--tree 1_1 --heads 1/1"],
    "stage_table.py": ["--stages", "pat", "--tree 1_1 --heads 1/1"],
    "kv_tile.py": ["/nonexistent/kv_tile.jsonl"],
    "buckets_graph.py": ["--results", "/nonexistent/patlab.jsonl"],
    "pat_targets.py": ["--results", "/nonexistent/patlab.jsonl"],
    "prefix_reads.py": ["--tree 256_1024 --heads 32/8"],
    "peers_vs_pat.py": ["/nonexistent"],
    "pat_vs_multistream.py": ["--results", "/nonexistent/patlab.jsonl"],
}
failures = []


def fail(message: str) -> None:
    failures.append(message)
    print("FAIL:", message)


def commands(text: str):
    """(command, the fenced block after it) for each line of a sh block, continuations joined."""
    blocks = list(FENCE.finditer(text))
    for i, block in enumerate(blocks):
        if block.group(1) != "sh":
            continue
        following = blocks[i + 1].group(2) if i + 1 < len(blocks) else ""
        for line in block.group(2).replace("\\\n", " ").splitlines():
            line = line.split("  #")[0].strip()
            if line:
                yield line, following


def run(argv):
    return subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=300)


def check_script_command(chapter: pathlib.Path, text: str, argv) -> None:
    r = run([sys.executable] + argv[1:])
    where = f"{chapter.name}: {' '.join(argv[1:3])}..."
    if r.returncode != 0:
        fail(f"{where} exited {r.returncode}: {r.stderr.strip()}")
        return
    lines = {l.strip() for l in text.splitlines()}
    printed = [l for l in r.stdout.splitlines() if l.strip()]
    if not printed:
        fail(f"{where} printed nothing")
    missing = [l for l in printed if l.strip() not in lines]
    if missing:
        fail(f"{where}: {len(missing)} printed line(s) not in the chapter, first: {missing[0]!r}")
    print(f"ok  {where} ({len(printed)} lines, all in the chapter)")


def check_plan_command(chapter: pathlib.Path, patlab: str, argv, following: str) -> None:
    r = run([patlab] + argv[1:])
    where = f"{chapter.name}: patlab {' '.join(argv[1:])}"
    if r.returncode != 0:
        fail(f"{where} exited {r.returncode}: {r.stderr.strip()}")
        return
    shown = [l for l in following.splitlines() if l.strip() and l.strip() != "..."]
    out = {l.rstrip() for l in r.stdout.splitlines()}
    missing = [l for l in shown if l.rstrip() not in out]
    if not shown or missing:
        fail(f"{where}: the chapter's block after it has lines the plan does not print, first: "
             f"{(missing or ['(no block)'])[0]!r}")
    else:
        print(f"ok  {where} ({len(shown)} lines of the chapter in the output)")


def main(argv) -> int:
    if len(argv) != 2:
        print("usage: test_tutorial_scripts.py PATLAB", file=sys.stderr)
        return 2
    patlab = str(pathlib.Path(argv[1]).resolve())  # meson passes it relative to the build folder
    used = set()
    for chapter in sorted((ROOT / "tutorial").glob("*.md")):
        text = chapter.read_text()
        for line, following in commands(text):
            if "tools/tutorial/" not in line:
                continue
            words = shlex.split(line)
            script = next((w for w in words if w.startswith("tools/tutorial/")), None)
            if script is None:
                continue
            if words[0] == "python3":
                used.add(pathlib.Path(words[1]).name)
                check_script_command(chapter, text, words)
            elif words[0].endswith("patlab") and words[1] == "plan":
                used.add(pathlib.Path(script).name)
                check_plan_command(chapter, patlab, words, following)
    chapters = "".join(c.read_text() for c in (ROOT / "tutorial").glob("*.md"))
    for data in sorted(SCRIPTS.glob("*.json")):
        if data.read_text() not in chapters:
            fail(f"tools/tutorial/{data.name} is not shown verbatim by any chapter")
    for path in sorted(SCRIPTS.iterdir()):
        if path.name in LIBRARY or path.name == "__pycache__":
            continue
        if path.name not in used:
            fail(f"tools/tutorial/{path.name} is run by no chapter")
        if path.suffix != ".py":
            continue
        if path.name not in BAD_INPUT:
            fail(f"tools/tutorial/{path.name} has no bad-input case here")
            continue
        r = run([sys.executable, str(path)] + BAD_INPUT[path.name])
        lines = r.stderr.strip().splitlines()
        if r.returncode != 2 or len(lines) != 1 or r.stdout:
            fail(f"{path.name} on bad input: exit {r.returncode}, stderr {r.stderr.strip()!r}")
        else:
            print(f"ok  {path.name} on bad input: exit 2, {lines[0]!r}")
    print(f"{len(failures)} failure(s)")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
