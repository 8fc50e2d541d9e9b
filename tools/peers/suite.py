#!/usr/bin/env python3
"""The standard suite on the GPU machine, patlab and peers side by side, in one process and one run.

For every workload line of the suite file (patlab workload arguments, e.g. `--tree 1,64_4096,256
--heads 32/8`):
  1. `patlab compare ARGS --format json`: every patlab stage, checked and timed;
  2. `patlab export ARGS --out WORKDIR/NNN`: the same workload (same seed, same block tables);
  3. the peers (run_peers.PeerRunner) on that export: checked, then timed with the same protocol;
  4. the export is deleted (unless --keep-exports): large workloads take GBs of disk.
The GPU memory the peers hold is released before each `patlab compare`. Results go to OUT as
they come (patlab.jsonl, peers.jsonl: an interrupted run keeps what it did), and at the end
report.py prints one table per workload and writes suite.csv, suite.json and the plots.

    PYTHONPATH=/tmp/site python3 tools/peers/suite.py --patlab build-gpu/tools/patlab --out results/
"""

from __future__ import annotations

import argparse
import json
import pathlib
import shlex
import shutil
import subprocess
import sys
import time

HERE = pathlib.Path(__file__).resolve().parent
REPO = HERE.parents[1]
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(REPO / "tools"))
import export_io  # noqa: E402
import fi_env  # noqa: E402
import report  # noqa: E402
import run_peers  # noqa: E402
import suite_file  # noqa: E402


def read_suite(path: pathlib.Path, lines: str | None) -> list[tuple[str, str]]:
    """(category, workload line) of the suite file (tools/suite_file.py), optionally lines A:B."""
    items = suite_file.read_entries(path)
    if lines:
        a, _, b = lines.partition(":")
        items = items[int(a or 0):int(b) if b else len(items)]
    return items


def parse_args(argv=None):
    p = argparse.ArgumentParser(
        description="Run the standard suite: patlab compare and the peers on each workload, then one table per "
                    "workload and CSV/JSON/PNG (see tools/peers/README.md).",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--patlab", type=pathlib.Path, default=REPO / "build-gpu" / "tools" / "patlab", help="patlab binary")
    p.add_argument("--suite", type=pathlib.Path, default=REPO / "tools" / "suite.txt",
                   help="one workload per line, '# category: NAME' lines grouping them (e.g. tools/suite-categories.txt)")
    p.add_argument("--workload", action="append", default=[],
                   help="a workload line to run instead of the suite file (repeatable), e.g. 'sysprompt'")
    p.add_argument("--lines", help="A:B: only suite lines A..B-1 (0-based, comments and blanks not counted)")
    p.add_argument("--out", type=pathlib.Path, required=True, help="results folder")
    p.add_argument("--workdir", type=pathlib.Path, help="where exports are written (default OUT/exports)")
    p.add_argument("--keep-exports", action="store_true", help="keep each export folder after its peers ran")
    p.add_argument("--warmup", type=int, default=5, help="untimed runs before timing (patlab and peers)")
    p.add_argument("--repeats", type=int, default=30, help="timed runs, at least 20 (patlab and peers)")
    p.add_argument("--warm-l2", action="store_true", help="do not flush L2 before timed runs (patlab and peers)")
    p.add_argument("--peers", default=",".join(run_peers.PEERS), help="comma-separated subset of the peers")
    p.add_argument("--no-patlab", action="store_true", help="run only the peers (patlab compare is not called)")
    p.add_argument("--cache", type=pathlib.Path, default=fi_env.DEFAULT_CACHE, help="FlashInfer cache folder")
    p.add_argument("--no-prebuilt", action="store_true", help="ignore prebuilt FlashInfer modules")
    p.add_argument("--graph", action="store_true", help="also time each passing peer captured in a CUDA graph")
    p.add_argument("--budget", type=float, default=None, metavar="SECONDS",
                   help="start no new workload after this many seconds (the finished ones are kept and reported)")
    p.add_argument("--timeout", type=int, default=1800, help="seconds allowed to one patlab command")
    return p.parse_args(argv)


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def main(argv=None) -> int:
    a = parse_args(argv)
    if a.repeats < run_peers.MIN_REPEATS:
        log(f"suite: --repeats must be at least {run_peers.MIN_REPEATS}")
        return 2
    if not a.patlab.exists():
        log(f"suite: patlab binary {a.patlab} not found (build it: meson setup build-gpu -Dgpu_arch=90 && ninja -C build-gpu)")
        return 2
    workloads = [(suite_file.COMMAND_LINE_CATEGORY, w) for w in a.workload] or read_suite(a.suite, a.lines)
    if not workloads:
        log("suite: no workloads")
        return 2
    out = a.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    workdir = (a.workdir or out / "exports").resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    common = ["--repeats", str(a.repeats), "--warmup", str(a.warmup)] + (["--warm-l2"] if a.warm_l2 else [])

    settings = {"warmup": a.warmup, "repeats": a.repeats, "warm_l2": a.warm_l2,
                "peers": [p.strip() for p in a.peers.split(",") if p.strip()], "cache": a.cache,
                "use_prebuilt": not a.no_prebuilt, "graph": a.graph}
    for p in settings["peers"]:
        if p not in run_peers.PEERS:
            log(f"suite: unknown peer '{p}' (known: {', '.join(run_peers.PEERS)})")
            return 2
    worker = run_peers.PeerProcess(settings, timeout=a.timeout) if settings["peers"] else None
    if worker is not None:
        try:
            run_info = worker.start()
        except RuntimeError as e:
            log(f"suite: the peers cannot run: {e}")
            return 2
        log("peers run: " + json.dumps(run_info, indent=1))
        (out / "peers_run.json").write_text(json.dumps(run_info, indent=1) + "\n")
    patlab_log = open(out / "patlab.jsonl", "w")
    peers_log = open(out / "peers.jsonl", "w")
    status = 0
    t_start = time.time()
    for i, (category, line) in enumerate(workloads):
        if a.budget is not None and time.time() - t_start > a.budget:
            left = len(workloads) - i
            log(f"suite: --budget {a.budget:.0f} s spent: stopped before workload {i + 1} ({left} not run, "
                f"from: {line})")
            status = 1
            break
        args = shlex.split(line)
        log(f"[{i + 1}/{len(workloads)}] {category}: {line}  ({time.time() - t_start:.0f} s so far)")
        if worker is not None:
            worker.release()
        if not a.no_patlab:
            cmd = [str(a.patlab), "compare", *args, *common, "--format", "json"]
            try:
                r = subprocess.run(cmd, capture_output=True, text=True, timeout=a.timeout)
                rc, text, err = r.returncode, r.stdout, r.stderr
            except subprocess.TimeoutExpired:
                rc, text, err = 124, "", f"timed out after {a.timeout} s"
            try:
                compare = json.loads(text) if text.strip() else None
            except json.JSONDecodeError:
                compare = None
            if rc != 0:
                status = 1
                log(f"  patlab compare exit {rc}: {err.strip().splitlines()[-1] if err.strip() else ''}")
            patlab_log.write(json.dumps({"key": line, "args": line, "category": category, "exit": rc,
                                         "compare": compare}) + "\n")
            patlab_log.flush()
        if worker is None:
            continue  # no peers: nothing to export
        edir = workdir / f"{i:03d}"
        try:
            r = subprocess.run([str(a.patlab), "export", *args, "--out", str(edir), "--format", "json"],
                               capture_output=True, text=True, timeout=a.timeout)
            erc, eerr = r.returncode, r.stderr
        except subprocess.TimeoutExpired:
            erc, eerr = 124, f"timed out after {a.timeout} s"
        if erc != 0:
            status = 1
            why = eerr.strip().splitlines()[-1] if eerr.strip() else f"exit {erc}"
            log(f"  patlab export failed: {why}")
            for p in worker.peers:
                peers_log.write(json.dumps({"key": line, "category": category, "workload": line, "shape": "", "peer": p,
                                            "status": "skipped", "check": f"skipped: patlab export failed ({why})"})
                                + "\n")
            peers_log.flush()
            continue
        rows = worker.run_export(edir, line)
        try:
            ex = export_io.load_export(edir)
        except export_io.ExportError:
            ex = None
        for row in rows:
            peers_log.write(json.dumps(dict(row, category=category)) + "\n")
        peers_log.flush()
        if ex is not None:
            print(run_peers.format_table(rows, f"{line} | {ex.description} | {ex.shape.get('describe', '')}"), flush=True)
            print(flush=True)
        del ex
        if not a.keep_exports:
            shutil.rmtree(edir, ignore_errors=True)
    patlab_log.close()
    peers_log.close()
    if worker is not None:
        worker.stop()
        (out / "peers_run.json").write_text(json.dumps(worker.run_info, indent=1) + "\n")
        (out / "peers_jit.json").write_text(json.dumps(worker.jit, indent=1) + "\n")
    log(f"suite: {len(workloads)} workloads in {time.time() - t_start:.0f} s; report:")
    pdocs = report.read_json_or_lines(out / "patlab.jsonl") if (out / "patlab.jsonl").exists() else []
    qdocs = report.read_json_or_lines(out / "peers.jsonl")
    with open(out / "suite_tables.txt", "w") as f:
        report.build_report(pdocs, qdocs, out, "suite", stream=f)
    print((out / "suite_tables.txt").read_text())
    return status


if __name__ == "__main__":
    sys.exit(main())
