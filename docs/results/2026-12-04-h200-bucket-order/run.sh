#!/usr/bin/env bash
# Stage 7's launch order and direct output against stage 6, on the H200, in one call; everything
# lands in OUT/r1.tar.gz. The binary (build-ab/patlab-exp.xz, branch bucket-order) reads
# PATLAB_BUCKET_ORDER (longest: main's order; appearance: stage 6's; rows: longest pack x tile
# rows; fewest: fewest CTAs first) and PATLAB_DIRECT=0 (no direct output) in stage 7's upload.
# Each workload: stages 6 and 7 once per variant, eager and graph, REPEATS (default 30) repeats,
# cold L2; the first variant checks both stages against the oracle. No step starts after
# SECONDS (default 520).
#   docs/results/2026-12-04-h200-bucket-order/run.sh OUT [SECONDS]
set -uo pipefail
final=$1
budget=${2:-520}
here=$(cd "$(dirname "$0")" && pwd)
cd "$here/../../.." || exit 1
# shellcheck source=../../../tools/results_steps.sh
source tools/results_steps.sh
out=/tmp/r1
mkdir -p "$out" "$final"
trap 'tar -C /tmp -czf "$final/r1.tar.gz" r1' EXIT
default_w="--random-tree 14 --random-requests 512 --random-max-segment 512 --heads 16/8"
default_w+="|--random-tree 11 --random-requests 128 --random-max-segment 2048 --heads 32/8"
default_w+="|--tree 8,16,32,256_512,512,256,32 --heads 16/8"
default_w+="|--tree 1,4,16,512_1024,256,128,32 --model qwen2.5-7b|--tree 1,2,64_1024,256,256 --heads 64/8"
default_w+="|--tree 4,256_8192,512 --heads 32/8|--hetero 1 --heads 32/8|sysprompt"
default_w+="|--random-tree 12 --random-requests 256 --random-depth 6 --random-max-segment 1024 --heads 32/8"
default_w+="|--tree 1,4,16,512_1024,256,128,32 --model gemma-2-9b|--tree 1,256_256,32 --heads 16/8"
IFS='|' read -r -a workloads <<< "${WORKLOADS:-$default_w}"
repeats=${REPEATS:-30}
xz -dc build-ab/patlab-exp.xz > /tmp/patlab && chmod +x /tmp/patlab
{ nvidia-smi --query-gpu=name,driver_version,clocks.max.sm --format=csv; date -u; /tmp/patlab --version | head -1; } > "$out/env.txt"
cat "$out/env.txt"
for w in "${workloads[@]}"; do
  for v in longest appearance rows fewest nodirect; do
    name="$(slug "$w")-$v"
    if (( $(left) < 20 )); then echo "stopped for time before $name"; break 2; fi
    check=--no-check
    [[ $v == longest ]] && check=
    order=$v direct=1
    [[ $v == nodirect ]] && order=longest direct=0
    # shellcheck disable=SC2086
    PATLAB_BUCKET_ORDER=$order PATLAB_DIRECT=$direct timeout "$(cap 60)" /tmp/patlab bench $w --stage multistream pat \
      --repeats "$repeats" $check --format jsonl > "$out/b-$name.jsonl" 2> "$out/b-$name.err"
    echo "bench exit $? at $SECONDS s: $name"
  done
done
