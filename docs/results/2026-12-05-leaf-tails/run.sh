#!/usr/bin/env bash
# Leaf tails (branch leaf-tails: `--take-leaves`, the tails instances of both kernels) on the GPU
# machine, one call: B's test_07_pat and test_08_hopper (PATLAB_REQUIRE_GPU=1: the leaf tails grid
# and the boundary and tree grids with leaf tails among their cases), then per workload of AB
# ('|'-separated, default below: issue 12's lines whose plan the tails change, first those the
# CPU study put lowest, then a control whose plan they do not change and a held-out random tree)
# `patlab bench --stage pat hopper --repeats 20` with the branch's patlab in the order A (without
# --take-leaves, unchecked), B (with it, checked against the oracle), A, B (unchecked) into
# ab-N-SIDE-K.jsonl (the table: ../2026-12-05-h200-suite-defaults/ab_table.py r1). One binary for
# both sides: without the option its plans are main's (a CPU test says so) and its plain kernel
# instances main's code. Binaries from build-ab/bundle.tar.xz (build-ab/COMMIT). Writes
# OUT/RUN.tar.gz (RUN/; RUN=r1 unless set).
# STEPS="ncu" (not in the default): Nsight Compute on stage 8's kernels of one timed run of each
# workload of NCU ('|'-separated; default the 64/8 deep tree and 1,1024_2048,32 at 64/8),
# without and with --take-leaves (--launch-skip 4 --launch-count 4: past the warm-up run, each kernel
# of a timed run at least once: three launches a run without tails, one with), into
# ncu-N-SIDE.txt: where the leaf kernel's and the merge's time goes, and what the tails add.
#   [RUN=r1] [STEPS="tests ab ncu"] docs/results/2026-12-05-leaf-tails/run.sh OUT [SECONDS]
source "$(dirname "$0")/../../../tools/results_steps.sh"
results_args "$0" "$@"
tests=(test_07_pat-tails test_08_hopper-tails)
results_begin "${RUN:-r1}" "$final" patlab-tails "${tests[@]}" || exit 1
steps=${STEPS:-tests ab}
[[ $steps == *tests* ]] && run_tests "${tests[@]}"
ab="--tree 1,16,32,64,128,1024_256,128,64,32,32,32 --heads 64/8"
ab+="|--tree 1,1024_2048,32 --heads 64/8"
ab+="|--tree 1,16,32,64,128,1024_256,128,64,32,32,32 --heads 32/8"
ab+="|--tree 1,16,32,64,128,1024_256,128,64,32,32,32 --heads 16/8"
ab+="|--tree 1,16,32,64,256,1024_256,128,64,32,32,32 --heads 64/8"
ab+="|--tree 1,1024_2048,32 --heads 32/8"
ab+="|--tree 4,16,256,512_512,32,128,32 --heads 64/8"
ab+="|--tree 1,16,32,64,128,1024_256,128,64,32,32,32 --heads 32/32"
ab+="|--tree 2,8,16,256_256,256,32,32 --heads 32/32"
ab+="|--tree 1,128_16384,256 --model qwen2.5-7b"
ab+="|--random-tree 21 --random-requests 256 --random-depth 5 --random-max-segment 200 --heads 32/8"
IFS='|' read -r -a abw <<< "${AB:-$ab}"
if [[ $steps == *ab* ]]; then
  n=0
  for wl in "${abw[@]}"; do
    n=$((n + 1))
    for k in 1 2; do
      for side in a b; do
        if (( $(left) < 20 )); then echo "ab: stopped for time before $n $side$k"; exit 0; fi
        extra=--no-check; [[ $side == b ]] && extra="--take-leaves"; [[ $side$k == b2 ]] && extra+=" --no-check"
        # shellcheck disable=SC2086  # a workload is several options, on purpose
        timeout "$(cap 60)" /tmp/ab/patlab-tails bench $wl $extra --stage pat hopper --repeats 20 --format jsonl \
          > "$out/ab-$n-$side-$k.jsonl" 2> "$out/ab-$n-$side-$k.err"
        echo "ab $n $side$k exit $? at $SECONDS s: $wl"
      done
    done
  done
fi
if [[ $steps == *ncu* ]]; then
  export PATH=/usr/local/cuda/bin:$PATH
  ncu_w="--tree 1,16,32,64,128,1024_256,128,64,32,32,32 --heads 64/8|--tree 1,1024_2048,32 --heads 64/8"
  IFS='|' read -r -a ncuw <<< "${NCU:-$ncu_w}"
  sec="--section SpeedOfLight --section Occupancy --section LaunchStats --section MemoryWorkloadAnalysis"
  n=0
  for wl in "${ncuw[@]}"; do
    n=$((n + 1))
    for side in a b; do
      if (( $(left) < 30 )); then echo "ncu: stopped for time before $n $side"; exit 0; fi
      extra=; [[ $side == b ]] && extra=--take-leaves
      # shellcheck disable=SC2086
      timeout "$(cap 120)" ncu --clock-control none -k 'regex:pack_attention|hopper_pack|merge_partials' \
        --launch-skip 4 --launch-count 4 $sec /tmp/ab/patlab-tails bench $wl $extra --stage hopper --no-check \
        --repeats 20 --warmup 1 --no-graph > "$out/ncu-$n-$side.txt" 2>&1
      echo "ncu $n $side exit $? at $SECONDS s: $wl $extra"
    done
  done
fi
exit 0
