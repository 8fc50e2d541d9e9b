#!/usr/bin/env bash
# Run 5 on the H200, one call: test_08_hopper with its routing-off grids (build-ab/test_08_hopper.xz,
# PATLAB_REQUIRE_GPU=1), then tools/sanitize.sh on stage 8 (memcheck, racecheck, synccheck over its
# five workloads) with build-ab/patlab.xz. Writes OUT/r5.tar.gz (r5/: test log, sanitizer log,
# env.txt). No step starts after SECONDS (default 540).
#   docs/results/2026-12-04-h200-hopper-min-kv/run5.sh OUT [SECONDS]
set -uo pipefail
final=$1
budget=${2:-540}
here=$(cd "$(dirname "$0")" && pwd)
cd "$here/../../.." || exit 1
# shellcheck source=../../../tools/results_steps.sh
source tools/results_steps.sh
out=/tmp/r5
mkdir -p "$out" "$final"
trap 'tar -C /tmp -czf "$final/r5.tar.gz" r5' EXIT
unpack patlab test_08_hopper || exit 1
device_env patlab > "$out/env.txt"
cat "$out/env.txt"
PATLAB_REQUIRE_GPU=1 timeout "$(cap 150)" /tmp/ab/test_08_hopper > "$out/test-test_08_hopper.log" 2>&1
echo "test_08_hopper exit $? at $SECONDS s: $(grep -E 'passed|failed' "$out/test-test_08_hopper.log" | tail -1)"
export PATH=/usr/local/cuda/bin:$PATH
mkdir -p /tmp/sbuild/tools && cp /tmp/ab/patlab /tmp/sbuild/tools/patlab
SANITIZE_STAGES=hopper timeout "$(cap 400)" tools/sanitize.sh /tmp/sbuild > "$out/sanitize.log" 2>&1
echo "sanitize exit $? at $SECONDS s"
tail -8 "$out/sanitize.log"
exit 0
