#!/usr/bin/env python3
"""The exercises' checks cannot rot: every `build/tools/patlab` command in a chapter's Exercises
section (the shell blocks, and the inline commands in backticks) is run with the built patlab, on
the CPU (CUDA_VISIBLE_DEVICES is emptied, so GPU stages report themselves skipped).

A command passes when patlab exits 0 or 77 (GPU parts skipped) and its block, or its line, ends
with status 0: a renamed option fails (exit 2), and so does a `grep` that no longer finds the
line the exercise tells the reader to read (not judged where patlab skipped its GPU part: the
line may be the GPU's). A command the exercise shows being refused carries
the comment `# refused (exit 2)` on its line, and must then exit 2 with one line on stderr.

    python3 tests/docs/test_exercise_checks.py PATLAB     # PATLAB: the built patlab executable
"""
import concurrent.futures
import os
import pathlib
import re
import subprocess
import sys
import tempfile

ROOT = pathlib.Path(__file__).resolve().parent.parent.parent
PATLAB_IN_DOCS = "build/tools/patlab"
REFUSED = "# refused (exit 2)"
FENCE = re.compile(r"^[ \t]*```sh\n(.*?)^[ \t]*```[ \t]*$", re.S | re.M)
INLINE = re.compile(r"`(" + re.escape(PATLAB_IN_DOCS) + r"[^`]*)`")
TIMEOUT_S = 300
# Runs patlab, logs its exit status and arguments, and lets a shell block go on past a skip or
# an expected refusal (the log is what the test judges).
WRAPPER = """#!/bin/bash
"$EXERCISE_PATLAB" "$@" 2>"$EXERCISE_LOG.err"; rc=$?
printf '%s\\t%s\\t%s\\n' "$rc" "$(wc -l < "$EXERCISE_LOG.err")" "$*" >> "$EXERCISE_LOG"
cat "$EXERCISE_LOG.err" >&2
case $rc in 0|2|77) exit 0 ;; *) exit $rc ;; esac
"""


def exercise_scripts(chapter: pathlib.Path) -> list[str]:
    """The shell blocks of the Exercises section, and each inline patlab command outside them."""
    text = chapter.read_text()
    at = text.find("\n## Exercises")
    if at < 0:
        return []
    section = text[at:]
    scripts = [m.group(1) for m in FENCE.finditer(section) if PATLAB_IN_DOCS in m.group(1)]
    prose = FENCE.sub("", section)
    scripts += [m.group(1) for m in INLINE.finditer(prose)]
    return scripts


def refused_commands(script: str) -> set[str]:
    """The argument strings of the commands marked as refused."""
    found = set()
    for line in script.splitlines():
        if REFUSED in line and PATLAB_IN_DOCS in line:
            found.add(line.split(REFUSED)[0].split(PATLAB_IN_DOCS, 1)[1].strip())
    return found


def run_check(chapter: pathlib.Path, script: str, wrapper: pathlib.Path, log: pathlib.Path,
              patlab: pathlib.Path) -> list[str]:
    """Runs one block or inline command; returns the lines to print (the first says ok or FAIL)."""
    shown = " ".join(script.split())[:110]
    # The commands' python3 is this test's own interpreter (the one the build configured), not
    # whichever comes first on PATH: a pyenv Python without matplotlib would fail the figure scripts.
    path = os.pathsep.join([os.path.dirname(sys.executable), os.environ.get("PATH", "")])
    env = dict(os.environ, PATH=path, CUDA_VISIBLE_DEVICES="", EXERCISE_PATLAB=str(patlab), EXERCISE_LOG=str(log))
    log.write_text("")
    try:
        done = subprocess.run(["bash", "-c", script.replace(PATLAB_IN_DOCS, str(wrapper))], cwd=ROOT, env=env,
                              capture_output=True, text=True, timeout=TIMEOUT_S)
    except subprocess.TimeoutExpired:
        return [f"FAIL {chapter.name}: over {TIMEOUT_S} s: {shown}"]
    calls = [line.split("\t", 2) for line in log.read_text().splitlines()]
    refused = refused_commands(script)
    faults = [] if calls else ["patlab was not run"]
    for rc, err_lines, args in calls:
        if rc == "2" and args.strip() in refused:
            if err_lines != "1":
                faults.append(f"refused with {err_lines} lines on stderr, not one: {args}")
        elif rc not in ("0", "77"):
            faults.append(f"patlab exited {rc}: {args}")
        elif args.strip() in refused:
            faults.append(f"marked refused but exited {rc}: {args}")
    skipped = any(rc == "77" for rc, _, _ in calls)  # the GPU's output is what the grep reads
    if done.returncode != 0 and not skipped:
        faults.append(f"the commands ended with status {done.returncode} (a grep that found nothing?)")
    if not faults:
        return [f"ok   {chapter.name}: {shown}"]
    lines = [f"FAIL {chapter.name}: {shown}"] + [f"     {f}" for f in faults]
    if done.stderr.strip():
        lines.append("     stderr: " + done.stderr.strip().splitlines()[-1])
    return lines


def main() -> int:
    if len(sys.argv) != 2:
        print("usage: test_exercise_checks.py PATLAB", file=sys.stderr)
        return 2
    patlab = pathlib.Path(sys.argv[1]).resolve()
    checks = [(chapter, script) for chapter in sorted((ROOT / "tutorial").glob("[0-9]*.md"))
              for script in exercise_scripts(chapter)]
    with tempfile.TemporaryDirectory() as tmp:
        wrapper = pathlib.Path(tmp) / "patlab"
        wrapper.write_text(WRAPPER)
        wrapper.chmod(0o755)
        with concurrent.futures.ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
            results = list(pool.map(lambda i: run_check(*checks[i], wrapper, pathlib.Path(tmp) / f"calls{i}.log",
                                                        patlab), range(len(checks))))
    failures = 0
    for lines in results:
        failures += lines[0].startswith("FAIL")
        print("\n".join(lines))
    print(f"{len(checks)} exercise checks run, {failures} failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
