#!/usr/bin/env bash
# --bucket-launch gates against chain on the H200, one call. With TESTS="test_07_pat ..." those
# test binaries (build-ab/NAME.xz) run first, PATLAB_REQUIRE_GPU=1. Then per workload of WORKLOADS
# ('|'-separated, default below) build-ab/patlab.xz benches stages 6, 7 and 8 once per setting of
# --bucket-launch in MODES (default "gates chain"; run 1 had "gates chain auto"), in that order
# (pass 1), then, while time is left, in the reverse order (pass 2): eager and graph,
# 20 repeats, cold L2, unchecked (the tests check both settings). With SUITE=1 the workloads are
# instead every line of tools/suite.txt then tools/suite-categories.txt, with --bucket-launch
# ${LAUNCH:-chain}, on the stages of STAGES (default "multistream pat hopper"; suite/N.jsonl: the
# N-th line). Writes OUT/RUN.tar.gz (RUN/, default r1). No run starts after SECONDS (default 540).
#   [RUN=r1] [TESTS=...] [WORKLOADS=...] [MODES=...] [SUITE=1 [LAUNCH=...] [STAGES=...]]
#     docs/results/2026-12-04-h200-bucket-chain/run.sh OUT [SECONDS]
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
read -r -a tests <<< "${TESTS:-}"
if (( ${#tests[@]} )); then
  unpack "${tests[@]}" || exit 1
  for t in "${tests[@]}"; do
    PATLAB_REQUIRE_GPU=1 timeout "$(cap 200)" "/tmp/ab/$t" > "$out/test-$t.log" 2>&1
    echo "$t exit $? at $SECONDS s: $(grep -E 'passed|failed' "$out/test-$t.log" | tail -1)"
  done
fi
stages=${STAGES:-multistream pat hopper}
if [[ ${SUITE:-0} == 1 ]]; then
  mkdir -p "$out/suite"
  n=0
  while IFS= read -r line; do
    wl=${line%%#*}
    wl=$(echo "$wl" | xargs)
    [[ -z $wl ]] && continue
    n=$((n + 1))
    if (( $(left) < 20 )); then echo "suite: stopped for time before line $n ($wl)"; break; fi
    # shellcheck disable=SC2086
    timeout "$(cap 60)" /tmp/ab/patlab bench $wl --stage $stages --bucket-launch "${LAUNCH:-chain}" --repeats 20 \
      --no-check --format jsonl > "$out/suite/$n.jsonl" 2> "$out/suite/$n.err"
    echo "suite $n exit $? at $SECONDS s: $wl"
  done < <(cat tools/suite.txt tools/suite-categories.txt)
  exit 0
fi
w="--tree 1,4,8,256_32,256,256,32 --heads 16/8"
w+="|--tree 1,256_256,32 --heads 16/8"
w+="|--tree 1,4,256_32,256,32 --heads 16/8"
w+="|--tree 8,16,32,256_512,512,256,32 --heads 16/8"
w+="|--tree 1,2,64_1024,256,256 --heads 64/8"
w+="|--tree 1,10_4096,416 --heads 64/8"
w+="|--random-tree 11 --random-requests 128 --random-max-segment 2048 --heads 32/8"
w+="|--random-tree 12 --random-requests 256 --random-depth 6 --random-max-segment 1024 --heads 32/8"
w+="|--random-tree 13 --random-requests 64 --random-depth 3 --random-max-segment 8192 --heads 64/8"
w+="|--random-tree 14 --random-requests 512 --random-max-segment 512 --heads 16/8"
w+="|--tree 1,64_4096,256 --model qwen2.5-32b"
w+="|--hetero 1 --model qwen2.5-7b"
w+="|--tree 4,256_8192,512 --heads 32/8"
w+="|--tree 1,128_16384,256 --model qwen2.5-7b"
w+="|--tree 16_8192 --heads 32/8"
w+="|--hetero 3 --hetero-requests 512 --hetero-prefix 4096 --heads 32/8"
w+="|--hetero 5 --hetero-requests 128 --heads 32/8 --kv-dtype fp8"
w+="|--tree 1,16,32,64,128,1024_256,128,64,32,32,32 --heads 64/8"
IFS='|' read -r -a workloads <<< "${WORKLOADS:-$w}"
read -r -a modes <<< "${MODES:-gates chain}"
reversed=()
for (( i = ${#modes[@]} - 1; i >= 0; i-- )); do reversed+=("${modes[i]}"); done
for pass in 1 2; do
  order=("${modes[@]}")
  (( pass == 2 )) && order=("${reversed[@]}")
  for wl in "${workloads[@]}"; do
    name=$(slug "$wl")
    for mode in "${order[@]}"; do
      if (( $(left) < 15 )); then echo "stopped for time before pass $pass $name $mode"; exit 0; fi
      # shellcheck disable=SC2086
      timeout "$(cap 60)" /tmp/ab/patlab bench $wl --stage $stages --bucket-launch "$mode" --repeats 20 --no-check \
        --format jsonl > "$out/$name-$mode-p$pass.jsonl" 2> "$out/$name-$mode-p$pass.err"
      echo "exit $? at $SECONDS s: pass $pass $name $mode"
    done
  done
done
exit 0
