#!/usr/bin/env bash
# The merge warp's early loads (branch merge-prefetch) on the H200, one call: B's GPU tests of
# every stage that merges (test_03_splitkv-b, test_07_pat-b, test_08_hopper-b, test_09_cluster-b,
# test_10_packinfer-b, test_sparse_gpu-b; PATLAB_REQUIRE_GPU=1), then per workload of AB
# ('|'-separated, default below) `patlab bench --stage pat hopper --repeats 20` with A (main's
# patlab, unchecked), B (patlab-b, checked), A, B (unchecked) into ab-N-SIDE-K.jsonl (the table:
# ../2026-12-05-h200-suite-defaults/ab_table.py r1), then Nsight Compute on the merge kernel of
# each side on the first workload. All binaries from build-ab/bundle.tar.xz (build-ab/COMMIT).
# Writes OUT/r1.tar.gz (r1/).
#   docs/results/2026-12-05-h100-merge-prefetch/run.sh OUT [SECONDS]
source "$(dirname "$0")/../../../tools/results_steps.sh"
results_args "$0" "$@"
tests=(test_03_splitkv-b test_07_pat-b test_08_hopper-b test_09_cluster-b test_10_packinfer-b test_sparse_gpu-b)
results_begin r1 "$final" patlab patlab-b "${tests[@]}" || exit 1
ab="--tree 1,16,32,64,128,1024_256,128,64,32,32,32 --heads 64/8"
ab+="|--tree 1,8,16,32,64,128,1024_256,128,64,32,32,32,32 --heads 32/8"
ab+="|--tree 1,4,16,512_1024,256,128,32 --heads 32/32"
ab+="|--tree 1,128_16384,256 --model qwen2.5-7b"
ab+="|--hetero 1 --heads 32/8"
ab+="|--tree 16_8192 --heads 32/8"
ab+="|--tree 16_8192 --model gemma-2-9b"
IFS='|' read -r -a abw <<< "${AB:-$ab}"
ab_runs 300 "${abw[@]}"
run_tests "${tests[@]}"
export PATH=/usr/local/cuda/bin:$PATH
sec="--section SpeedOfLight --section Occupancy --section LaunchStats"
read -r -a first <<< "${abw[0]}"
for side in a b; do
  if (( $(left) < 30 )); then echo "stopped for time before ncu $side"; exit 0; fi
  bin=/tmp/ab/patlab; [[ $side == b ]] && bin=/tmp/ab/patlab-b
  timeout "$(cap 90)" ncu --clock-control none -k regex:merge_partials --launch-skip 1 --launch-count 1 $sec \
    "$bin" bench "${first[@]}" --stage hopper --no-check --repeats 20 --warmup 1 --no-graph > "$out/ncu-$side.txt" 2>&1
  echo "ncu $side exit $? at $SECONDS s"
done
exit 0
