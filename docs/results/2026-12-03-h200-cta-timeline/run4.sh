#!/usr/bin/env bash
# Ranked stream priorities (the new build, `prio`) against a364d72 (`room`), on the H200, in one
# call; everything lands in OUT/r4.tar.gz:
#  1. stages 6, 7 and 8 of both binaries (build-ab/patlab-NAME.xz) on WORKLOADS ('|'-separated),
#     eager and graph, REPEATS (default 40) repeats, cold L2; `prio` checks them first;
#  2. the new build's test_07_pat (build-ab/test_07_pat-prio.xz), PATLAB_REQUIRE_GPU=1.
# No step starts after SECONDS (default 400).
#   docs/results/2026-12-03-h200-cta-timeline/run4.sh OUT [SECONDS]
set -uo pipefail
final=$1
budget=${2:-400}
here=$(cd "$(dirname "$0")" && pwd)
cd "$here/../../.." || exit 1
# shellcheck source=../../../tools/results_steps.sh
source tools/results_steps.sh
out=/tmp/r4
mkdir -p "$out" "$final"
trap 'tar -C /tmp -czf "$final/r4.tar.gz" r4' EXIT
default_w="--tree 4,256_8192,512 --heads 32/8|--tree 4,256_8192,512 --heads 32/8 --kv-dtype fp8"
default_w+="|--tree 1,4,16,512_1024,256,128,32 --heads 16/8|--tree 8,16,32,256_512,512,256,32 --heads 16/8"
default_w+="|--random-tree 14 --random-requests 512 --random-max-segment 512 --heads 16/8"
default_w+="|--random-tree 11 --random-requests 128 --random-max-segment 2048 --heads 32/8"
default_w+="|--tree 1,2,64_1024,256,256 --heads 64/8|--tree 1,256_256,32 --heads 16/8|sysprompt"
IFS='|' read -r -a workloads <<< "${WORKLOADS:-$default_w}"
repeats=${REPEATS:-40}
mkdir -p /tmp/ab
for f in build-ab/*.xz; do xz -dc "$f" > "/tmp/ab/$(basename "$f" .xz)" && chmod +x "/tmp/ab/$(basename "$f" .xz)"; done
{ nvidia-smi --query-gpu=name,driver_version,clocks.max.sm --format=csv; date -u
  for b in room prio; do echo "$b: $("/tmp/ab/patlab-$b" --version | head -1)"; done; } > "$out/env.txt"
cat "$out/env.txt"
for w in "${workloads[@]}"; do
  for b in room prio; do
    name="$(slug "$w")-$b"
    if (( $(left) < 30 )); then echo "stopped for time before $name"; break 2; fi
    check=--no-check
    [[ $b == prio ]] && check=
    # shellcheck disable=SC2086
    timeout "$(cap 90)" "/tmp/ab/patlab-$b" bench $w --stage multistream pat hopper --repeats "$repeats" $check \
      --format jsonl > "$out/b-$name.jsonl" 2> "$out/b-$name.err"
    echo "bench exit $? at $SECONDS s: $name"
  done
done
PATLAB_REQUIRE_GPU=1 timeout "$(cap 120)" /tmp/ab/test_07_pat-prio > "$out/test-test_07_pat.log" 2>&1
echo "test_07_pat exit $? at $SECONDS s: $(grep -E 'passed|failed' "$out/test-test_07_pat.log" | tail -1)"
