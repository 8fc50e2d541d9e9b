#!/usr/bin/env bash
# --hopper-min-kv on the H200, one call: per workload of WORKLOADS ('|'-separated, default below),
# stages 7 and 8 of build-ab/patlab.xz with --hopper-min-kv 0, 256, 512 and 1024 in turn (VALUES),
# eager and graph, 20 repeats, cold L2; the oracle check on every value but 0 (0 is the default,
# measured checked before). Writes OUT/r1.tar.gz (r1/<w>-<value>.jsonl, .err, env.txt).
# No run starts after SECONDS (default 540).
#   [RUN=r1] [WORKLOADS=...] [VALUES="0 256 512 1024"] docs/results/2026-12-04-h200-hopper-min-kv/run.sh OUT [SECONDS]
set -uo pipefail
final=$1
budget=${2:-540}
here=$(cd "$(dirname "$0")" && pwd)
cd "$here/../../.." || exit 1
# shellcheck source=../../../tools/results_steps.sh
source tools/results_steps.sh
run=${RUN:-r1}
out=/tmp/$run
mkdir -p "$out" "$final"
trap 'tar -C /tmp -czf "$final/$run.tar.gz" "$run"' EXIT
unpack patlab || exit 1
device_env patlab > "$out/env.txt"
cat "$out/env.txt"
w="--tree 2,8,16,256_256,256,32,32 --heads 32/8"
w+="|--tree 1,16,32,64,128,1024_256,128,64,32,32,32 --heads 64/8"
w+="|--tree 1,8,16,32,64,256,1024_256,128,64,32,32,32,32 --heads 32/8"
w+="|--tree 1,4,16,512_1024,256,128,32 --heads 16/8"
w+="|--tree 1,10_4096,416 --heads 32/8"
w+="|--tree 1,2,64_1024,256,256 --heads 16/8"
w+="|--tree 8,16,32,256_512,512,256,32 --heads 32/8"
w+="|--tree 1,4,8,256_32,256,256,32 --heads 32/8"
w+="|--tree 4,16,256,512_512,32,128,32 --heads 16/8"
w+="|--tree 1,8,16,32,64,128,1024_256,128,64,32,32,32,32 --heads 32/32"
w+="|--random-tree 11 --random-requests 128 --random-max-segment 2048 --heads 32/8"
w+="|--random-tree 13 --random-requests 64 --random-depth 3 --random-max-segment 8192 --heads 64/8"
w+="|--tree 1,64_4096,256 --model qwen2.5-32b"
w+="|--hetero 4 --hetero-dist code --heads 64/8"
w+="|--tree 1,128_16384,256 --model qwen2.5-7b"
w+="|--tree 1,1024_2048,32 --heads 64/8"
w+="|--tree 4,256_8192,512 --heads 32/8"
w+="|--tree 1,256_256,32 --heads 16/8"
IFS='|' read -r -a workloads <<< "${WORKLOADS:-$w}"
read -r -a values <<< "${VALUES:-0 256 512 1024}"
for wl in "${workloads[@]}"; do
  name=$(slug "$wl")
  for v in "${values[@]}"; do
    if (( $(left) < 20 )); then echo "stopped for time before $name $v"; exit 0; fi
    check=()
    (( v == 0 )) && check=(--no-check)
    # shellcheck disable=SC2086
    timeout "$(cap 60)" /tmp/ab/patlab bench $wl --stage pat hopper --hopper-min-kv "$v" --repeats 20 \
      "${check[@]}" --format jsonl > "$out/$name-$v.jsonl" 2> "$out/$name-$v.err"
    echo "exit $? at $SECONDS s: $name $v"
  done
done
exit 0
