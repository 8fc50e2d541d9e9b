#!/usr/bin/env bash
# Run 6: stage 7 gated on the first bucket only (`first`: build-ab/patlab-first.xz, e387c0d)
# against gated on every larger bucket (`gated`: build-ab/patlab-gated.xz, 68ace93) and the
# footprint order alone (`order`: build-ab/patlab-order.xz, ec35c96), on the H200, in one call;
# everything lands in OUT/r6.tar.gz:
#  1. the `first` build's test_07_pat (build-ab/test_07_pat.xz), PATLAB_REQUIRE_GPU=1;
#  2. stages 6 and 7 of the three binaries on WORKLOADS ('|'-separated), PROCS (default 3)
#     processes each, the binaries in a rotated order per process, eager and graph, 20 repeats,
#     cold L2; the first `first` process checks both stages against the oracle.
# No step starts after SECONDS (default 540).
#   docs/results/2026-12-04-h200-bucket-order/run6.sh OUT [SECONDS]
set -uo pipefail
final=$1
budget=${2:-540}
here=$(cd "$(dirname "$0")" && pwd)
cd "$here/../../.." || exit 1
# shellcheck source=../../../tools/results_steps.sh
source tools/results_steps.sh
out=/tmp/r6
mkdir -p "$out" "$final"
trap 'tar -C /tmp -czf "$final/r6.tar.gz" r6' EXIT
default_w="--random-tree 11 --random-requests 128 --random-max-segment 2048 --heads 32/8"
default_w+="|--random-tree 13 --random-requests 64 --random-depth 3 --random-max-segment 8192 --heads 64/8"
default_w+="|--random-tree 12 --random-requests 256 --random-depth 6 --random-max-segment 1024 --heads 32/8"
default_w+="|--random-tree 14 --random-requests 512 --random-max-segment 512 --heads 16/8"
default_w+="|--hetero 1 --model qwen2.5-7b|--tree 1,4,8,256_32,256,256,32 --heads 16/8"
default_w+="|--tree 8,16,32,256_512,512,256,32 --heads 16/8|--tree 4,256_8192,512 --heads 32/8"
IFS='|' read -r -a workloads <<< "${WORKLOADS:-$default_w}"
procs=${PROCS:-3}
mkdir -p /tmp/ab
for f in build-ab/patlab-order.xz build-ab/patlab-gated.xz build-ab/patlab-first.xz build-ab/test_07_pat.xz; do
  xz -dc "$f" > "/tmp/ab/$(basename "$f" .xz)" && chmod +x "/tmp/ab/$(basename "$f" .xz)"
done
{ nvidia-smi --query-gpu=name,driver_version,clocks.max.sm --format=csv; date -u
  for b in order gated first; do echo "$b: $("/tmp/ab/patlab-$b" --version | head -1)"; done; } > "$out/env.txt"
cat "$out/env.txt"
PATLAB_REQUIRE_GPU=1 timeout "$(cap 150)" /tmp/ab/test_07_pat > "$out/test-test_07_pat.log" 2>&1
echo "test_07_pat exit $? at $SECONDS s: $(grep -E 'passed|failed' "$out/test-test_07_pat.log" | tail -1)"
for w in "${workloads[@]}"; do
  for p in $(seq 1 "$procs"); do
    order="order gated first"
    (( p % 3 == 2 )) && order="gated first order"
    (( p % 3 == 0 )) && order="first order gated"
    for b in $order; do
      name="$(slug "$w")-$b-p$p"
      if (( $(left) < 15 )); then echo "stopped for time before $name"; break 3; fi
      check=--no-check
      [[ $b == first && $p == 1 ]] && check=
      # shellcheck disable=SC2086
      timeout "$(cap 60)" "/tmp/ab/patlab-$b" bench $w --stage multistream pat --repeats 20 $check --format jsonl \
        > "$out/b-$name.jsonl" 2> "$out/b-$name.err"
      echo "bench exit $? at $SECONDS s: $name"
    done
  done
done
