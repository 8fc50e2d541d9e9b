#!/usr/bin/env bash
# --hopper-min-kv (and, from run 3, --hopper-wide-kv) on the H200, one call: per workload of
# WORKLOADS ('|'-separated, default below), stages 7 and 8 of build-ab/patlab.xz with each setting
# of VALUES in turn ("N" = --hopper-min-kv N; "N:M" = --hopper-min-kv N --hopper-wide-kv M; default
# "0 256 512 1024"), eager and graph, 20 repeats, cold L2; the oracle check on every setting but
# 0 (0 is the default, measured checked before). With TESTS="test_08_hopper ..." those test
# binaries (build-ab/NAME.xz) run first, PATLAB_REQUIRE_GPU=1. Writes OUT/RUN.tar.gz (RUN/, default
# r1: <w>-<setting>.jsonl, .err, test logs, env.txt). With SUITE=1 the workloads are instead every
# line of tools/suite.txt then tools/suite-categories.txt, at the binary's defaults, unchecked
# (suite/N.jsonl: the N-th line), on the stages of STAGES (default "pat hopper"). No run starts
# after SECONDS (default 540).
#   [RUN=r1] [WORKLOADS=...] [VALUES=...] [TESTS=...] [SUITE=1 [STAGES=...]]
#     docs/results/2026-12-04-h200-hopper-min-kv/run.sh OUT [SECONDS]
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
    PATLAB_REQUIRE_GPU=1 timeout "$(cap 150)" "/tmp/ab/$t" > "$out/test-$t.log" 2>&1
    echo "$t exit $? at $SECONDS s: $(grep -E 'passed|failed' "$out/test-$t.log" | tail -1)"
  done
fi
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
    timeout "$(cap 60)" /tmp/ab/patlab bench $wl --stage ${STAGES:-pat hopper} --repeats 20 --no-check --format jsonl \
      > "$out/suite/$n.jsonl" 2> "$out/suite/$n.err"
    echo "suite $n exit $? at $SECONDS s: $wl"
  done < <(cat tools/suite.txt tools/suite-categories.txt)
  exit 0
fi
IFS='|' read -r -a workloads <<< "${WORKLOADS:-$w}"
read -r -a values <<< "${VALUES:-0 256 512 1024}"
for wl in "${workloads[@]}"; do
  name=$(slug "$wl")
  for v in "${values[@]}"; do
    if (( $(left) < 20 )); then echo "stopped for time before $name $v"; exit 0; fi
    check=()
    [[ $v == 0 ]] && check=(--no-check)
    knobs=(--hopper-min-kv "${v%%:*}")
    [[ $v == *:* ]] && knobs+=(--hopper-wide-kv "${v#*:}")
    tag=${v/:/_}
    # shellcheck disable=SC2086
    timeout "$(cap 60)" /tmp/ab/patlab bench $wl --stage pat hopper "${knobs[@]}" --repeats 20 \
      "${check[@]}" --format jsonl > "$out/$name-$tag.jsonl" 2> "$out/$name-$tag.err"
    echo "exit $? at $SECONDS s: $name $v"
  done
done
exit 0
