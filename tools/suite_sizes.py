#!/usr/bin/env python3
"""Plans every workload of suite files with `patlab plan` and writes or checks the size comment
after each line: its unique KV bytes in fp16 ("unique KV bytes" of `patlab workload`; MB = 10^6
bytes). A line with `--kv-dtype X` is sized without that option (its fp16 twin), and is planned
as written only where this patlab has --kv-dtype.

    python3 tools/suite_sizes.py --patlab build/tools/patlab --write tools/suite-categories.txt
    python3 tools/suite_sizes.py --patlab build/tools/patlab --check tools/suite.txt tools/suite-categories.txt

--check (the suite-files test) fails when a line does not plan (non-zero exit, or slower than
--timeout), or when a line's size comment differs from the computed size; a file with any size
comment must have one on every line. Exit 0 when all hold, 1 when one does not, 2 on bad usage.
"""

from __future__ import annotations

import argparse
import json
import pathlib
import re
import shlex
import subprocess
import sys
import time

#: The size comment after a workload.
SIZE_COMMENT = re.compile(r"\s+# (\d+) MB unique KV \(fp16\)$")
#: The option sized away (the fp16 twin of an fp8 line).
KV_DTYPE = "--kv-dtype"


def fail(message: str) -> None:
    print(f"suite_sizes: {message}", file=sys.stderr)
    sys.exit(2)


def fp16_twin(args: list[str]) -> list[str]:
    """`args` without `--kv-dtype X` (or `--kv-dtype=X`)."""
    out, skip = [], False
    for a in args:
        if skip:
            skip = False
        elif a == KV_DTYPE:
            skip = True
        elif not a.startswith(KV_DTYPE + "="):
            out.append(a)
    return out


def plan(patlab: str, args: list[str], timeout: float, command: str = "plan") -> tuple[dict | None, str, float]:
    """`patlab COMMAND ARGS --format json --quiet`: (its JSON or None, the error line, seconds)."""
    t0 = time.monotonic()
    try:
        r = subprocess.run([patlab, command, *args, "--format", "json", "--quiet"], capture_output=True, text=True,
                           timeout=timeout)
    except subprocess.TimeoutExpired:
        return None, f"timed out after {timeout:.0f} s", time.monotonic() - t0
    seconds = time.monotonic() - t0
    if r.returncode != 0:
        why = r.stderr.strip().splitlines()[-1] if r.stderr.strip() else ""
        return None, f"exit {r.returncode}: {why}", seconds
    return json.loads(r.stdout), "", seconds


def unique_mb(doc: dict) -> int:
    """"unique KV bytes" of `patlab workload`, in MB (10^6 bytes), rounded."""
    return round(doc["workload"]["unique KV bytes"] / 1e6)


def has_kv_dtype(patlab: str) -> bool:
    r = subprocess.run([patlab, "plan", "--help"], capture_output=True, text=True)
    return KV_DTYPE in r.stdout


def process(path: pathlib.Path, patlab: str, write: bool, timeout: float, kv_dtype: bool) -> int:
    """Plans each workload line of `path`; writes or checks its size comment. Returns the faults."""
    lines = path.read_text().splitlines()
    workload_lines = [i for i, l in enumerate(lines) if l.strip() and not l.lstrip().startswith("#")]
    commented = sum(1 for i in workload_lines if SIZE_COMMENT.search(lines[i]))
    faults, slowest = 0, (0.0, "")
    for i in workload_lines:
        text = lines[i].split(" #", 1)[0].strip()
        args = shlex.split(text)
        where = f"{path}:{i + 1}: {text}"
        twin = fp16_twin(args)
        doc, why, seconds = plan(patlab, twin, timeout)
        slowest = max(slowest, (seconds, text))
        if doc is None:
            print(f"FAIL {where}: patlab plan {why}")
            faults += 1
            continue
        if twin != args:
            if kv_dtype:
                full, why, seconds = plan(patlab, args, timeout)
                slowest = max(slowest, (seconds, text))
                if full is None:
                    print(f"FAIL {where}: patlab plan {why}")
                    faults += 1
            else:
                print(f"skip {where}: this patlab has no {KV_DTYPE} (sized as its fp16 twin)")
        sizes, why, _ = plan(patlab, twin, timeout, "workload")
        if sizes is None:
            print(f"FAIL {where}: patlab workload {why}")
            faults += 1
            continue
        mb = unique_mb(sizes)
        found = SIZE_COMMENT.search(lines[i])
        if write:
            lines[i] = f"{text}  # {mb} MB unique KV (fp16)"
        elif found and int(found.group(1)) != mb:
            print(f"FAIL {where}: the comment says {found.group(1)} MB, patlab workload {mb} MB")
            faults += 1
        elif not found and commented:
            print(f"FAIL {where}: no size comment (other lines of the file have one)")
            faults += 1
    if write:
        path.write_text("\n".join(lines) + "\n")
    print(f"{path}: {len(workload_lines)} workloads planned, {faults} faults; slowest plan {slowest[0]:.2f} s "
          f"({slowest[1]})")
    return faults


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--patlab", required=True, help="patlab binary")
    mode = p.add_mutually_exclusive_group(required=True)
    mode.add_argument("--write", action="store_true", help="write the size comments")
    mode.add_argument("--check", action="store_true", help="check that every line plans and its comment holds")
    p.add_argument("--timeout", type=float, default=60.0, help="seconds allowed to one patlab plan")
    p.add_argument("files", nargs="+", type=pathlib.Path, help="suite files")
    a = p.parse_args(argv)
    if not pathlib.Path(a.patlab).exists():
        fail(f"no patlab binary at {a.patlab}")
    for f in a.files:
        if not f.is_file():
            fail(f"no suite file {f}")
    kv_dtype = has_kv_dtype(a.patlab)
    faults = sum(process(f, a.patlab, a.write, a.timeout, kv_dtype) for f in a.files)
    return 1 if faults else 0


if __name__ == "__main__":
    sys.exit(main())
