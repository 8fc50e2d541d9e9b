#!/usr/bin/env bash
# Run 7: the landed build (footprint order, eager launches gated), on the H200, in one call;
# everything lands in OUT/r7.tar.gz:
#  1. test_07_pat of the landed build (build-ab/test_07_pat.xz), PATLAB_REQUIRE_GPU=1;
#  2. stages 6 and 7 (build-ab/patlab.xz) on every workload of tools/suite.txt and
#     tools/suite-categories.txt, eager and graph, 20 repeats, cold L2, unchecked, until the time
#     is up (r7/suite/N.jsonl: the N-th workload line of the two files).
# No step starts after SECONDS (default 300).
#   docs/results/2026-12-04-h200-bucket-order/run7.sh OUT [SECONDS]
set -uo pipefail
final=$1
budget=${2:-300}
here=$(cd "$(dirname "$0")" && pwd)
cd "$here/../../.." || exit 1
# shellcheck source=../../../tools/results_steps.sh
source tools/results_steps.sh
out=/tmp/r7
mkdir -p "$out/suite" "$final"
trap 'tar -C /tmp -czf "$final/r7.tar.gz" r7' EXIT
mkdir -p /tmp/ab
for f in build-ab/patlab.xz build-ab/test_07_pat.xz; do
  xz -dc "$f" > "/tmp/ab/$(basename "$f" .xz)" && chmod +x "/tmp/ab/$(basename "$f" .xz)"
done
{ nvidia-smi --query-gpu=name,driver_version,clocks.max.sm --format=csv; date -u; /tmp/ab/patlab --version | head -1; } \
  > "$out/env.txt"
cat "$out/env.txt"
for t in test_07_pat; do
  PATLAB_REQUIRE_GPU=1 timeout "$(cap 150)" "/tmp/ab/$t" > "$out/test-$t.log" 2>&1
  echo "$t exit $? at $SECONDS s: $(grep -E 'passed|failed' "$out/test-$t.log" | tail -1)"
done
n=0
while IFS= read -r line; do
  w=${line%%#*}
  w=$(echo "$w" | xargs)
  [[ -z $w ]] && continue
  n=$((n + 1))
  if (( $(left) < 25 )); then echo "suite: stopped for time before line $n ($w)"; break; fi
  # shellcheck disable=SC2086
  timeout "$(cap 60)" /tmp/ab/patlab bench $w --stage multistream pat --repeats 20 --no-check --format jsonl \
    > "$out/suite/$n.jsonl" 2> "$out/suite/$n.err"
  echo "suite $n exit $? at $SECONDS s: $w"
done < <(cat tools/suite.txt tools/suite-categories.txt)
