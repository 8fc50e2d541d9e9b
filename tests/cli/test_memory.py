#!/usr/bin/env python3
"""The host-memory estimate against the measured peak: `patlab workload` states what building and
checking a workload takes ("host memory to build and check", HostMemory in kv_cache.hpp); this
runs the commands that allocate the most on the CPU (`check`: oracle and packed oracle; `export`:
oracle and fp32 emulation) and reads each one's peak resident set (ru_maxrss from wait4).

Usage: test_memory.py PATH/TO/patlab

The estimate must cover the peak (estimate >= 0.9 x measured) without being absurd
(estimate <= 3 x measured + a fixed overhead for the process itself). Runs with the environment's
PATLAB_THREADS (the estimate counts per-thread buffers). Exits 1 if any case fails.
"""
import json
import os
import subprocess
import sys
import tempfile
import time

PATLAB = sys.argv[1] if len(sys.argv) > 1 else "patlab"
# The estimate may undershoot the measured peak by this factor at most...
LOW = 0.9
# ...and overshoot it by at most this factor, plus the process's own memory (code, allocator).
HIGH = 3.0
FIXED_OVERHEAD_BYTES = 64 << 20
# Workloads whose memory is dominated by different parts: one long request per thread (the
# gathered K/V), many requests and heads (results and partials), a deep random tree.
WORKLOADS = [
    ["--tree", "1,2_100000,1", "--heads", "1/1"],
    ["--tree", "1,128_2048,64", "--heads", "8/2"],
    ["--random-tree", "5", "--random-requests", "200", "--random-max-segment", "1000", "--heads", "16/4"],
]


def estimate(workload):
    p = subprocess.run([PATLAB, "workload", *workload, "--format", "json"], capture_output=True, text=True,
                       timeout=60, check=True)
    fields = json.loads(p.stdout)["workload"]
    return int(fields["host memory to build and check"])


def peak_rss(args):
    """Runs patlab with `args`; returns (exit code, peak RSS in bytes, seconds)."""
    t0 = time.monotonic()
    proc = subprocess.Popen([PATLAB, *args], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    proc.stderr.close()
    return proc.returncode, usage.ru_maxrss * 1024, time.monotonic() - t0  # ru_maxrss is in KiB on Linux


def main():
    print(f"PATLAB_THREADS={os.environ.get('PATLAB_THREADS', '(unset: all cores)')}")
    failures = 0
    out = tempfile.mkdtemp(prefix="patlab_memory_")
    for workload in WORKLOADS:
        est = estimate(workload)
        for command in (["check", "--quiet"], ["export", "--quiet", "--out", out]):
            code, rss, seconds = peak_rss([command[0], *workload, *command[1:]])
            ok = code == 0 and est >= LOW * rss and est <= HIGH * rss + FIXED_OVERHEAD_BYTES
            failures += not ok
            print(f"{'ok' if ok else 'FAIL':4} {command[0]} {' '.join(workload)}: estimate {est / 1e6:.1f} MB, "
                  f"peak RSS {rss / 1e6:.1f} MB, ratio {est / rss:.2f} (exit {code}, {seconds:.1f} s)")
    print(f"{failures} failed" if failures else "every estimate covers its measured peak")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
