#!/usr/bin/env bash
# Run 2: stage 7's bucket order and stream priorities against stage 6, on the H200, in one call;
# everything lands in OUT/r2.tar.gz. The binary (build-ab/patlab-exp.xz: main with
# experiment.patch) reads PATLAB_BUCKET_ORDER (longest: main's order; footprint: fewest CTAs per
# SM first, ties longest pack first; rows: longest pack x tile rows) and PATLAB_PRIO=1 (stage 7's
# side streams get descending priorities in launch order; graphs keep node priorities).
# Each workload: stages 6 and 7 per variant in PROCS (default 2) separate processes (the stream
# race can differ between processes), eager and graph, REPEATS (default 30) repeats, cold L2; the
# first process checks both stages against the oracle. No step starts after SECONDS (default 540).
#   docs/results/2026-12-04-h200-bucket-order/run2.sh OUT [SECONDS]
set -uo pipefail
final=$1
budget=${2:-540}
here=$(cd "$(dirname "$0")" && pwd)
cd "$here/../../.." || exit 1
# shellcheck source=../../../tools/results_steps.sh
source tools/results_steps.sh
out=/tmp/r2
mkdir -p "$out" "$final"
trap 'tar -C /tmp -czf "$final/r2.tar.gz" r2' EXIT
default_w="--random-tree 14 --random-requests 512 --random-max-segment 512 --heads 16/8"
default_w+="|--random-tree 11 --random-requests 128 --random-max-segment 2048 --heads 32/8"
default_w+="|--random-tree 12 --random-requests 256 --random-depth 6 --random-max-segment 1024 --heads 32/8"
default_w+="|--random-tree 13 --random-requests 64 --random-depth 3 --random-max-segment 8192 --heads 64/8"
default_w+="|--hetero 1 --heads 32/8|--hetero 2 --hetero-requests 16 --heads 32/8"
default_w+="|--hetero 3 --hetero-requests 512 --hetero-prefix 4096 --heads 32/8|--hetero 4 --hetero-dist code --heads 64/8"
default_w+="|--hetero 1 --model qwen2.5-7b|--tree 8,16,32,256_512,512,256,32 --heads 16/8"
default_w+="|--tree 1,4,16,512_1024,256,128,32 --model qwen2.5-7b|--tree 1,2,64_1024,256,256 --heads 64/8"
default_w+="|--tree 1,8,16,32,64,128,1024_256,128,64,32,32,32,32 --heads 32/8|sysprompt"
IFS='|' read -r -a workloads <<< "${WORKLOADS:-$default_w}"
repeats=${REPEATS:-30}
procs=${PROCS:-2}
xz -dc build-ab/patlab-exp.xz > /tmp/patlab && chmod +x /tmp/patlab
{ nvidia-smi --query-gpu=name,driver_version,clocks.max.sm --format=csv; date -u; /tmp/patlab --version | head -1; } > "$out/env.txt"
cat "$out/env.txt"
for w in "${workloads[@]}"; do
  for p in $(seq 1 "$procs"); do
    for v in longest footprint rows footprint+prio; do
      name="$(slug "$w")-$v-p$p"
      if (( $(left) < 15 )); then echo "stopped for time before $name"; break 3; fi
      check=--no-check
      [[ $v == longest && $p == 1 ]] && check=
      order=${v%+prio} prio=0
      [[ $v == *+prio ]] && prio=1
      # shellcheck disable=SC2086
      PATLAB_BUCKET_ORDER=$order PATLAB_PRIO=$prio timeout "$(cap 60)" /tmp/patlab bench $w \
        --stage multistream pat --repeats "$repeats" $check --format jsonl > "$out/b-$name.jsonl" 2> "$out/b-$name.err"
      echo "bench exit $? at $SECONDS s: $name"
    done
  done
done
