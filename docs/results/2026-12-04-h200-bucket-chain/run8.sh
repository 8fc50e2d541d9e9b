#!/usr/bin/env bash
# Run 8 on the H200, one call: the merge launched behind a single bucket (programmatic dependent
# launch) against the ordinary merge launch. With TESTS="test_07_pat ..." those test binaries
# (build-ab/NAME.xz) run first, PATLAB_REQUIRE_GPU=1. Then per workload of WORKLOADS ('|'-separated,
# default below: one-bucket plans with a merge) build-ab/patlab-a.xz (before) and build-ab/patlab.xz
# (after) bench stages 7 and 8 in turn, A B B A, eager and graph, 20 repeats, cold L2, unchecked.
# Writes OUT/r8.tar.gz (r8/<workload>-<a|b>-<pass>.jsonl, .err, test logs, env.txt).
#   [TESTS=...] [WORKLOADS=...] docs/results/2026-12-04-h200-bucket-chain/run8.sh OUT [SECONDS]
set -uo pipefail
final=$1
budget=${2:-400}
here=$(cd "$(dirname "$0")" && pwd)
cd "$here/../../.." || exit 1
# shellcheck source=../../../tools/results_steps.sh
source tools/results_steps.sh
out=/tmp/r8
mkdir -p "$out" "$final"
trap 'tar -C /tmp -czf "$final/r8.tar.gz" r8' EXIT
unpack patlab patlab-a || exit 1
device_env patlab patlab-a > "$out/env.txt"
cat "$out/env.txt"
read -r -a tests <<< "${TESTS:-}"
if (( ${#tests[@]} )); then
  unpack "${tests[@]}" || exit 1
  for t in "${tests[@]}"; do
    PATLAB_REQUIRE_GPU=1 timeout "$(cap 200)" "/tmp/ab/$t" > "$out/test-$t.log" 2>&1
    echo "$t exit $? at $SECONDS s: $(grep -E 'passed|failed' "$out/test-$t.log" | tail -1)"
  done
fi
w="--tree 16_8192 --heads 32/8|--tree 16_8192 --heads 32/8 --kv-dtype fp8|--tree 16_32768 --heads 32/8"
w+="|--tree 8_32768 --heads 64/8|--tree 4_32768 --heads 32/8|--tree 32_8192 --heads 32/8"
w+="|--tree 16_8192 --model gemma-2-9b --kv-dtype fp8|--tree 100_12000 --heads 32/8"
IFS='|' read -r -a workloads <<< "${WORKLOADS:-$w}"
for wl in "${workloads[@]}"; do
  name=$(slug "$wl")
  for step in a1 b1 b2 a2; do
    if (( $(left) < 15 )); then echo "stopped for time before $name $step"; exit 0; fi
    bin=patlab
    [[ $step == a* ]] && bin=patlab-a
    # shellcheck disable=SC2086
    timeout "$(cap 60)" "/tmp/ab/$bin" bench $wl --stage pat hopper --repeats 20 --no-check --format jsonl \
      > "$out/$name-${step:0:1}-${step:1}.jsonl" 2> "$out/$name-${step:0:1}-${step:1}.err"
    echo "exit $? at $SECONDS s: $name $step"
  done
done
exit 0
