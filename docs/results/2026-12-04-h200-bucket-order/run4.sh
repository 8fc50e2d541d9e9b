#!/usr/bin/env bash
# Run 4: stage 8's bucket order, longest pack first (`before`: build-ab/patlab-before.xz, 0d533d7)
# against the footprint order with its own tiles' estimate (`after`: build-ab/patlab-after.xz),
# on the H200, in one call; everything lands in OUT/r4.tar.gz:
#  1. the new build's test_08_hopper (build-ab/test_08_hopper.xz), PATLAB_REQUIRE_GPU=1;
#  2. stages 7 and 8 of both binaries on WORKLOADS ('|'-separated), PROCS (default 2) processes
#     each, before and after alternating, eager and graph, 20 repeats, cold L2; the first `after`
#     process checks both stages against the oracle.
# No step starts after SECONDS (default 540).
#   docs/results/2026-12-04-h200-bucket-order/run4.sh OUT [SECONDS]
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
default_w="--tree 1,8,512_512,512,256 --heads 32/32|--tree 2,8,16,256_256,256,32,32 --heads 32/32"
default_w+="|--tree 8,16,32,256_512,512,256,32 --heads 32/32|--tree 8,16,32,256_512,512,256,32 --heads 16/8"
default_w+="|--tree 8,16,32,256_512,512,256,32 --heads 32/8|--hetero 1 --heads 32/8"
default_w+="|--hetero 2 --hetero-requests 16 --heads 32/8|--hetero 3 --hetero-requests 512 --hetero-prefix 4096 --heads 32/8"
default_w+="|--hetero 4 --hetero-dist code --heads 64/8"
default_w+="|--random-tree 11 --random-requests 128 --random-max-segment 2048 --heads 32/8"
default_w+="|--random-tree 12 --random-requests 256 --random-depth 6 --random-max-segment 1024 --heads 32/8"
default_w+="|--random-tree 13 --random-requests 64 --random-depth 3 --random-max-segment 8192 --heads 64/8"
default_w+="|--random-tree 14 --random-requests 512 --random-max-segment 512 --heads 16/8"
default_w+="|--tree 1,128_16384,256 --model qwen2.5-32b|--tree 1,128_16384,256 --model qwen2.5-7b"
default_w+="|--hetero 1 --model qwen2.5-7b|--hetero 5 --hetero-requests 128 --heads 32/8"
default_w+="|sysprompt|--tree 1,64_32768,512 --heads 32/8|--tree 4,256_8192,512 --heads 32/8"
IFS='|' read -r -a workloads <<< "${WORKLOADS:-$default_w}"
procs=${PROCS:-2}
mkdir -p /tmp/ab
for f in build-ab/patlab-before.xz build-ab/patlab-after.xz build-ab/test_08_hopper.xz; do
  xz -dc "$f" > "/tmp/ab/$(basename "$f" .xz)" && chmod +x "/tmp/ab/$(basename "$f" .xz)"
done
{ nvidia-smi --query-gpu=name,driver_version,clocks.max.sm --format=csv; date -u
  for b in before after; do echo "$b: $("/tmp/ab/patlab-$b" --version | head -1)"; done; } > "$out/env.txt"
cat "$out/env.txt"
PATLAB_REQUIRE_GPU=1 timeout "$(cap 150)" /tmp/ab/test_08_hopper > "$out/test-test_08_hopper.log" 2>&1
echo "test_08_hopper exit $? at $SECONDS s: $(grep -E 'passed|failed' "$out/test-test_08_hopper.log" | tail -1)"
for w in "${workloads[@]}"; do
  for p in $(seq 1 "$procs"); do
    order="before after"
    (( p % 2 == 0 )) && order="after before"
    for b in $order; do
      name="$(slug "$w")-$b-p$p"
      if (( $(left) < 15 )); then echo "stopped for time before $name"; break 3; fi
      check=--no-check
      [[ $b == after && $p == 1 ]] && check=
      # shellcheck disable=SC2086
      timeout "$(cap 60)" "/tmp/ab/patlab-$b" bench $w --stage pat hopper --repeats 20 $check --format jsonl \
        > "$out/b-$name.jsonl" 2> "$out/b-$name.err"
      echo "bench exit $? at $SECONDS s: $name"
    done
  done
done
