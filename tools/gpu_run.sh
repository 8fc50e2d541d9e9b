#!/usr/bin/env bash
# One command for the GPU machine: build, GPU tests, optional compute-sanitizer pass, and
# `patlab compare` over the standard suite, with logs and machine-readable results in OUTDIR.
#
#   tools/gpu_run.sh OUTDIR [--no-tests] [--sanitize] [--suite FILE] [--lines A:B] [--no-suite]
#                           [--peers LIST | --no-peers] [--build DIR] [--repeats N]
#
# OUTDIR gets: env.txt (device, driver, commit, date), build.log, tests.log, sanitize.log, and
# suite/ from tools/run_suite.sh (patlab compare and the peers per workload: tables, CSV, JSON,
# plots). It works with meson >= 1.0 and Catch2 2.x or 3.x. This is the GPU machine: it fails
# at once unless a GPU stage runs (tools/require_gpu.sh), and a GPU test that skips fails.
set -uo pipefail

usage() { sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'; exit 2; }
[[ $# -ge 1 && $1 != -* ]] || usage
out=$1; shift
tests=1 sanitize=0 suite=tools/suite.txt lines="" run_suite=1 build=build-gpu repeats=20
peers=fi-decode,fi-decode-tc,fi-cascade,fi-cascade-fa2,sdpa-cudnn,sdpa-flash
while [[ $# -gt 0 ]]; do
  case $1 in
    --no-tests) tests=0 ;;
    --sanitize) sanitize=1 ;;
    --suite) suite=$2; shift ;;
    --lines) lines=$2; shift ;;
    --no-suite) run_suite=0 ;;
    --peers) peers=$2; shift ;;
    --no-peers) peers="" ;;
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

# The commit results record: PATLAB_COMMIT when set (the device machine's copy of .git may be stale), else git's.
commit=${PATLAB_COMMIT:-$(git describe --always --dirty --abbrev=12 2>/dev/null || echo unknown)}
export PATLAB_COMMIT=$commit
{
  echo "date: $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
  echo "commit: $commit"
  echo "host: $(uname -srm), $(nproc) cores"
  nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm,clocks.mem,clocks.max.sm,clocks.max.mem,power.limit --format=csv 2>&1
  nvcc --version | tail -1
} > "$out/env.txt"
cat "$out/env.txt"

status=0
if [[ ! -f $build/build.ninja ]]; then
  meson setup "$build" --buildtype=release -Dgpu_arch=90 -Dcommit="$commit" > "$out/build.log" 2>&1 || { cat "$out/build.log"; exit 1; }
fi
if ! ninja -C "$build" >> "$out/build.log" 2>&1; then
  tail -50 "$out/build.log"
  exit 1
fi
echo "build: ok ($build)"
tools/require_gpu.sh "$build/tools/patlab" || exit 1

if [[ $tests == 1 ]]; then
  echo "tests: running (log in tests.log)"
  # No skips here: a GPU test that cannot run fails (tests/main.cpp, tests/meson.build).
  PATLAB_REQUIRE_GPU=1 meson test -C "$build" --print-errorlogs --num-processes 1 > "$out/tests.log" 2>&1 || status=1
  grep -E "^ *[0-9]+/[0-9]+ |^(Ok|Fail|Skipped|Timeout):" "$out/tests.log"
  grep -h -E "cases passed" "$build/meson-logs/testlog.txt" >> "$out/tests.log" 2>/dev/null
fi

if [[ $sanitize == 1 ]]; then
  echo "sanitize: running (log in sanitize.log)"
  tools/sanitize.sh "$build" > "$out/sanitize.log" 2>&1 || status=1
  tail -20 "$out/sanitize.log"
fi

if [[ $run_suite == 1 ]]; then
  echo "suite: tools/run_suite.sh (patlab compare${peers:+ and the peers $peers}) into $out/suite"
  suite_args=(--build "$build" --suite "$suite" --repeats "$repeats" --peers "$peers")
  [[ -n $lines ]] && suite_args+=(--lines "$lines")
  tools/run_suite.sh "$out/suite" "${suite_args[@]}" || status=1
fi
exit $status
