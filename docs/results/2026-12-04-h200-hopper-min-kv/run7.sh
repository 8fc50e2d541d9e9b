#!/usr/bin/env bash
# Run 7 on the H200, one call: the spread of graph replay between processes. Per workload of
# WORKLOADS ('|'-separated, default below), REPS (default 5) separate `patlab bench` processes of
# stages 6, 7 and 8 (build-ab/patlab.xz), eager and graph, 20 repeats, unchecked. Writes
# OUT/r7.tar.gz (r7/<w>-<rep>.jsonl, .err, env.txt). No run starts after SECONDS (default 400).
#   [REPS=5] [WORKLOADS=...] docs/results/2026-12-04-h200-hopper-min-kv/run7.sh OUT [SECONDS]
set -uo pipefail
final=$1
budget=${2:-400}
here=$(cd "$(dirname "$0")" && pwd)
cd "$here/../../.." || exit 1
# shellcheck source=../../../tools/results_steps.sh
source tools/results_steps.sh
out=/tmp/r7
mkdir -p "$out" "$final"
trap 'tar -C /tmp -czf "$final/r7.tar.gz" r7' EXIT
unpack patlab || exit 1
device_env patlab > "$out/env.txt"
cat "$out/env.txt"
w="--random-tree 11 --random-requests 128 --random-max-segment 2048 --heads 32/8"
w+="|--random-tree 12 --random-requests 256 --random-depth 6 --random-max-segment 1024 --heads 32/8"
w+="|--random-tree 13 --random-requests 64 --random-depth 3 --random-max-segment 8192 --heads 64/8"
w+="|--tree 1,64_4096,256 --model qwen2.5-32b"
IFS='|' read -r -a workloads <<< "${WORKLOADS:-$w}"
for wl in "${workloads[@]}"; do
  name=$(slug "$wl")
  for ((rep = 1; rep <= ${REPS:-5}; rep++)); do
    if (( $(left) < 20 )); then echo "stopped for time before $name $rep"; exit 0; fi
    # shellcheck disable=SC2086
    timeout "$(cap 60)" /tmp/ab/patlab bench $wl --stage multistream pat hopper --repeats 20 --no-check \
      --format jsonl > "$out/$name-$rep.jsonl" 2> "$out/$name-$rep.err"
    echo "exit $? at $SECONDS s: $name $rep"
  done
done
exit 0
