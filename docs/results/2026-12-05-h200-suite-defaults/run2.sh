#!/usr/bin/env bash
# Run 2 on the H200, one call: the two-tile rule (B: `patlab-b`, main's planner with
# two-tiles.diff) against main (A: `patlab`) on the workloads of AB ('|'-separated, default
# below): per workload `patlab bench --stage pat hopper --repeats 20` with A (unchecked), B
# (checked), A, B (unchecked), into ab-N-SIDE-K.jsonl; then the GPU tests of stages 7 and 8 built
# with B's planner (test_07_pat-b, test_08_hopper-b) and of stages 9 and 10 on main's
# (test_09_cluster, test_10_packinfer), all from build-ab/bundle.tar.xz with PATLAB_REQUIRE_GPU=1;
# then where the deep trees' time goes: per workload of WORKLOADS ('|'-separated, default the
# deep 1024-leaf trees), Nsight Compute on each stage's kernels of one timed run of A (pack,
# Hopper and merge kernels; the warmup run's skipped). Writes OUT/r2.tar.gz (r2/).
#   docs/results/2026-12-05-h200-suite-defaults/run2.sh OUT [SECONDS]
source "$(dirname "$0")/../../../tools/results_steps.sh"
results_args "$0" "$@"
results_begin r2 "$final" patlab patlab-b test_09_cluster test_10_packinfer test_07_pat-b test_08_hopper-b || exit 1
ab="--tree 1,16,32,64,128,1024_256,128,64,32,32,32 --heads 64/8"
ab+="|--tree 1,16,32,64,128,1024_256,128,64,32,32,32 --heads 16/8"
ab+="|--tree 1,8,16,32,64,128,1024_256,128,64,32,32,32,32 --heads 32/8"
ab+="|--tree 1,256_256,32 --heads 16/8"
ab+="|--tree 1,4,8,256_32,256,256,32 --heads 16/8"
ab+="|--tree 8,16,32,256_512,512,256,32 --heads 32/8"
ab+="|--tree 1,8,512_512,512,256 --heads 32/8"
ab+="|--random-tree 12 --random-requests 256 --random-depth 6 --random-max-segment 1024 --heads 32/8"
ab+="|--hetero 1 --heads 32/8"
ab+="|--tree 16_8192 --heads 32/8"
IFS='|' read -r -a abw <<< "${AB:-$ab}"
ab_runs 120 "${abw[@]}"
run_tests test_07_pat-b test_08_hopper-b test_09_cluster test_10_packinfer
export PATH=/usr/local/cuda/bin:$PATH
w="--tree 1,16,32,64,128,1024_256,128,64,32,32,32 --heads 64/8"
w+="|--tree 1,16,32,64,128,1024_256,128,64,32,32,32 --heads 16/8"
w+="|--tree 1,8,16,32,64,128,1024_256,128,64,32,32,32,32 --heads 32/8"
IFS='|' read -r -a workloads <<< "${WORKLOADS:-$w}"
sec="--section SpeedOfLight --section Occupancy --section LaunchStats --section MemoryWorkloadAnalysis"
for wl in "${workloads[@]}"; do
  name=$(slug "$wl")
  if (( $(left) < 30 )); then echo "stopped for time before $name"; exit 0; fi
  for stage in pat hopper; do
    if (( $(left) < 30 )); then echo "stopped for time before ncu $name $stage"; exit 0; fi
    # one warmup run and the first kernel of the first timed run skipped (a run launches 3 or 4 of the regex), then the next 4: every kind of the run once
    # shellcheck disable=SC2086
    timeout "$(cap 90)" ncu --clock-control none -k 'regex:pack_attention|hopper_pack|merge_partials' \
      --launch-skip 4 --launch-count 4 $sec /tmp/ab/patlab bench $wl --stage "$stage" --no-check \
      --repeats 20 --warmup 1 --no-graph > "$out/ncu-$name-$stage.txt" 2>&1
    echo "ncu $name $stage exit $? at $SECONDS s"
  done
done
exit 0
