#!/usr/bin/env bash
# Run 4 on the H200, one call: tools/sanitize.sh (memcheck, racecheck, synccheck over its five
# workloads) on stages 7 and 8, whose buckets are chained by default, with build-ab/patlab.xz.
# Writes OUT/r4.tar.gz (r4/: sanitizer log, env.txt). No step starts after SECONDS (default 540).
#   docs/results/2026-12-04-h200-bucket-chain/run4.sh OUT [SECONDS]
set -uo pipefail
final=$1
budget=${2:-540}
here=$(cd "$(dirname "$0")" && pwd)
cd "$here/../../.." || exit 1
# shellcheck source=../../../tools/results_steps.sh
source tools/results_steps.sh
out=/tmp/r4
mkdir -p "$out" "$final"
trap 'tar -C /tmp -czf "$final/r4.tar.gz" r4' EXIT
unpack patlab || exit 1
device_env patlab > "$out/env.txt"
cat "$out/env.txt"
export PATH=/usr/local/cuda/bin:$PATH
mkdir -p /tmp/sbuild/tools && cp /tmp/ab/patlab /tmp/sbuild/tools/patlab
SANITIZE_STAGES="pat hopper" timeout "$(cap 520)" tools/sanitize.sh /tmp/sbuild > "$out/sanitize.log" 2>&1
echo "sanitize exit $? at $SECONDS s"
tail -8 "$out/sanitize.log"
exit 0
