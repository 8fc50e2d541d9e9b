#!/usr/bin/env bash
# Leaf tails as the default of stages 7-8 (branch tails-default), on the GPU machine, one call:
#  1. the GPU tests TESTS (default: stages 7 and 8, whose default grids now take tails where rule 5
#     keeps them, and the serve loop, which plans without them) from build-ab/bundle.tar.xz
#     (build-ab/COMMIT) with PATLAB_REQUIRE_GPU=1 (a skip fails);
#  2. the A/B: per workload of AB ('|'-separated; default: the nine suite lines whose stage-7 or
#     stage-8 plan keeps tails under rule 5, five held-out trees that keep them and two that do
#     not), `patlab bench W --stage pat hopper --repeats 20 --format jsonl` in the order a, b, a,
#     b (a = --no-take-leaves, b = the default; only b's first run checked against the oracle)
#     into ab-N-SIDE-K.jsonl; the table: ab_table.py RUN.
# Writes OUT/RUN.tar.gz (RUN/; default r1).
#   [RUN=r1] [TESTS="..."] [AB="W|W"] docs/results/2026-12-06-tails-default/run.sh OUT [SECONDS]
source "$(dirname "$0")/../../../tools/results_steps.sh"
results_args "$0" "$@"
tests=(test_07_pat test_08_hopper test_serve)
[[ -n ${TESTS:-} ]] && read -r -a tests <<< "$TESTS"
results_begin "${RUN:-r1}" "$final" patlab "${tests[@]}" || exit 1
for t in "${tests[@]}"; do
  if (( $(left) < 120 )); then echo "tests: stopped for time before $t"; break; fi
  run_tests "$t"
done
ab="--tree 1,256_256,32 --heads 64/8|--tree 1,1024_2048,32 --heads 64/8|--tree 1,4,256_32,256,32 --heads 64/8"
ab+="|--tree 1,4,8,256_32,256,256,32 --heads 64/8|--tree 1,4,16,512_1024,256,128,32 --heads 64/8"
ab+="|--tree 1,16,32,64,128,1024_256,128,64,32,32,32 --heads 64/8"
ab+="|--tree 1,8,16,32,64,128,1024_256,128,64,32,32,32,32 --heads 64/8"
ab+="|--tree 2,8,16,256_256,256,32,32 --heads 64/8|--tree 8,16,32,256_512,512,256,32 --heads 64/8"
ab+="|--tree 1,256_512,32 --heads 64/8|--tree 1,2,128_1024,256,32 --heads 64/8|--tree 1,512_1024,16 --heads 64/8"
ab+="|--tree 2,16,256_256,512,32 --model llama3-70b|--tree 4,32,256_128,1024,32 --heads 64/8"
ab+="|--tree 1,8,256_128,256,48 --model qwen2.5-7b|--tree 1,64,256_512,128,32 --heads 32/8"
IFS='|' read -r -a wls <<< "${AB:-$ab}"
n=0
for wl in "${wls[@]}"; do
  n=$((n + 1))
  for k in 1 2; do
    for side in a b; do
      if (( $(left) < 10 )); then echo "ab: stopped for time before $n $side$k"; exit 0; fi
      extra=; [[ $side == a ]] && extra="--no-take-leaves --no-check"; [[ $side$k == b2 ]] && extra=--no-check
      # shellcheck disable=SC2086  # a workload is several options, on purpose
      timeout "$(cap 60)" /tmp/ab/patlab bench $wl $extra --stage pat hopper --repeats 20 --format jsonl \
        > "$out/ab-$n-$side-$k.jsonl" 2> "$out/ab-$n-$side-$k.err"
      echo "ab $n $side$k exit $? at $SECONDS s: $wl"
    done
  done
done
exit 0
