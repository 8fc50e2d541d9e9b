#!/usr/bin/env python3
"""A device call killed at its time limit still brings back the steps it finished: a run script
of docs/results/ (through tools/results_steps.sh) writes OUT/RUN.tar.gz after every step, not only
on exit. Runs on the CPU with a stub for the measured command: one script is killed (SIGKILL, as
the device's limit does, so no exit trap runs) during its third workload, another ends normally.

    python3 tests/docs/test_results_steps.py
"""
import pathlib
import subprocess
import sys
import tarfile
import tempfile

ROOT = pathlib.Path(__file__).resolve().parent.parent.parent
STEPS = ROOT / "tools" / "results_steps.sh"
# The stub writes its workload's number; on workload KILL it kills the run script (its pid in
# PIDFILE) and waits to be killed itself by the step's timeout.
SCRIPT = """
set -uo pipefail
source '{steps}'
budget=60
echo $$ > '{tmp}/pid'
results_begin '{run}' '{tmp}/final' || exit 1
mkdir -p "$out/a"
stub='echo "{{\\"n\\": {{n}}}}"; if [ {{n}} = {kill} ]; then kill -9 "$(cat {tmp}/pid)"; sleep 3; fi'
out=$out/a bench_each "w1|w2|w3" r 0 5 sh -c "$stub" stub
exit 0
"""

failures = 0


def check(what: str, ok: bool, detail: str = "") -> None:
    global failures
    print(("ok   " if ok else "FAIL ") + what + ("" if ok else f": {detail}"))
    failures += 0 if ok else 1


def members(archive: pathlib.Path) -> dict:
    """{name: text} of the archive's regular files."""
    with tarfile.open(archive) as t:
        return {m.name: t.extractfile(m).read().decode() for m in t.getmembers() if m.isfile()}


def run(tmp: pathlib.Path, name: str, kill: int) -> subprocess.CompletedProcess:
    script = SCRIPT.format(steps=STEPS, tmp=tmp, run=name, kill=kill)
    return subprocess.run(["bash", "-c", script], capture_output=True, text=True, timeout=60, cwd=tmp)


def main() -> int:
    with tempfile.TemporaryDirectory() as d:
        tmp = pathlib.Path(d)
        killed = run(tmp, "steps-killed", 3)
        archive = tmp / "final" / "steps-killed.tar.gz"
        check("killed at its third workload: the script died of SIGKILL", killed.returncode == -9 or
              killed.returncode == 137, f"exit {killed.returncode}, stderr {killed.stderr[-300:]}")
        check("killed: OUT/RUN.tar.gz is there", archive.is_file())
        if archive.is_file():
            m = members(archive)
            check("killed: the two finished workloads' outputs are in it, whole",
                  m.get("steps-killed/a/r-1.jsonl", "").strip() == '{"n": 1}' and
                  m.get("steps-killed/a/r-2.jsonl", "").strip() == '{"n": 2}', sorted(m))
            check("killed: the unfinished third is not", "steps-killed/a/r-3.jsonl" not in m, sorted(m))
            check("killed: env.txt is in it", "steps-killed/env.txt" in m, sorted(m))
        done = run(tmp, "steps-done", 0)
        archive = tmp / "final" / "steps-done.tar.gz"
        check("a normal end: exit 0", done.returncode == 0, f"exit {done.returncode}, stderr {done.stderr[-300:]}")
        m = members(archive) if archive.is_file() else {}
        check("a normal end: all three workloads in OUT/RUN.tar.gz",
              all(m.get(f"steps-done/a/r-{n}.jsonl", "").strip() == f'{{"n": {n}}}' for n in (1, 2, 3)), sorted(m))
        left = sorted(p.name for p in (tmp / "final").iterdir())
        check("no partial archive left beside the whole ones after a normal end",
              not any(p.startswith("steps-done") and p.endswith(".part") for p in left), left)
        # results_begin works under /tmp/RUN: the two runs' folders
        subprocess.run(["rm", "-rf", "/tmp/steps-killed", "/tmp/steps-done"], check=False)
    print(f"{failures} failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
