#!/usr/bin/env bash
# One command for the GPU machine: build, GPU tests, optional compute-sanitizer pass, and
# `patlab compare` over the standard suite, with logs and machine-readable results in OUTDIR.
#
#   tools/gpu_run.sh OUTDIR [--no-tests] [--sanitize] [--suite FILE] [--lines A:B] [--no-suite]
#                           [--build DIR] [--repeats N]
#
# OUTDIR gets: env.txt (device, driver, commit, date), build.log, tests.log, sanitize.log,
# suite.log (readable tables), suite.jsonl (one `patlab compare --format json` object per line,
# each with the arguments it ran). It works with meson >= 1.0 and Catch2 2.x or 3.x.
set -uo pipefail

usage() { sed -n '2,10p' "$0" | sed 's/^# \{0,1\}//'; exit 2; }
[[ $# -ge 1 && $1 != -* ]] || usage
out=$1; shift
tests=1 sanitize=0 suite=tools/suite.txt lines="" run_suite=1 build=build-gpu repeats=20
while [[ $# -gt 0 ]]; do
  case $1 in
    --no-tests) tests=0 ;;
    --sanitize) sanitize=1 ;;
    --suite) suite=$2; shift ;;
    --lines) lines=$2; shift ;;
    --no-suite) run_suite=0 ;;
    --build) build=$2; shift ;;
    --repeats) repeats=$2; shift ;;
    -h|--help) usage ;;
    *) echo "gpu_run.sh: unknown option $1" >&2; exit 2 ;;
  esac
  shift
done
here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here"
mkdir -p "$out"
out=$(cd "$out" && pwd)
export PATH=/usr/local/cuda/bin:$PATH

{
  echo "date: $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
  echo "commit: $(git describe --always --dirty --abbrev=12 2>/dev/null || echo unknown)"
  echo "host: $(uname -srm), $(nproc) cores"
  nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm,clocks.mem,clocks.max.sm,clocks.max.mem,power.limit --format=csv 2>&1
  nvcc --version | tail -1
} > "$out/env.txt"
cat "$out/env.txt"

status=0
if [[ ! -f $build/build.ninja ]]; then
  meson setup "$build" --buildtype=release -Dgpu_arch=90 > "$out/build.log" 2>&1 || { cat "$out/build.log"; exit 1; }
fi
if ! ninja -C "$build" >> "$out/build.log" 2>&1; then
  tail -50 "$out/build.log"
  exit 1
fi
echo "build: ok ($build)"

if [[ $tests == 1 ]]; then
  echo "tests: running (log in tests.log)"
  meson test -C "$build" --print-errorlogs --num-processes 1 > "$out/tests.log" 2>&1 || status=1
  grep -E "^ *[0-9]+/[0-9]+ |^(Ok|Fail|Skipped|Timeout):" "$out/tests.log"
  grep -h -E "cases passed" "$build/meson-logs/testlog.txt" >> "$out/tests.log" 2>/dev/null
fi

if [[ $sanitize == 1 ]]; then
  echo "sanitize: running (log in sanitize.log)"
  tools/sanitize.sh "$build" > "$out/sanitize.log" 2>&1 || status=1
  tail -20 "$out/sanitize.log"
fi

if [[ $run_suite == 1 ]]; then
  mapfile -t workloads < <(grep -v '^#' "$suite" | grep -v '^ *$')
  first=0 last=${#workloads[@]}
  if [[ -n $lines ]]; then first=${lines%%:*}; last=${lines##*:}; fi
  echo "suite: workloads $first..$((last - 1)) of ${#workloads[@]} from $suite"
  : > "$out/suite.jsonl"
  for ((i = first; i < last && i < ${#workloads[@]}; i++)); do
    args=${workloads[$i]}
    echo "[$((i + 1))/${#workloads[@]}] patlab compare $args"
    # shellcheck disable=SC2086
    json=$("$build/tools/patlab" compare $args --repeats "$repeats" --format json 2>> "$out/suite.log")
    rc=$?
    [[ $rc -ne 0 ]] && status=1
    printf '{"args": "%s", "exit": %d, "compare": %s}\n' "$args" "$rc" "${json:-null}" >> "$out/suite.jsonl"
    python3 - "$out/suite.jsonl" >> "$out/suite.log" <<'PY'
import json, sys
row = json.loads(open(sys.argv[1]).read().splitlines()[-1])
c = row["compare"] or {}
print(f"\n== {row['args']} (exit {row['exit']})")
for r in c.get("results", []):
    print(f"  {r['stage']:<12} {r['check']:<6} {str(r['time_us']):>10} us  {str(r['pct_copy']):>6} % copy  x{r['vs_first']} vs naive  {r['notes']}")
PY
    tail -n +1 "$out/suite.log" | tail -n 9
  done
fi
exit $status
