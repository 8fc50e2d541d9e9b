#!/usr/bin/env bash
# Where the joined 192-row pieces win (prepared; see README.md): stage 8 of main (A, patlab) and of
# the branch piece-rows (B, patlab-b), both from build-ab/bundle.tar.xz (build-ab/COMMIT), one
# call. First the A/B again on the workloads of W ('|'-separated, default below; ab_runs: A, B, A,
# B, stages 7 and 8), then per workload and side Nsight Compute on stage 8's kernels of one timed
# run (the 16-row pack kernel, the 192-row Hopper kernel, the merge: --launch-skip 3 skips the
# warm-up run's three): duration, DRAM and L2 throughput, occupancy, launch statistics.
# Writes OUT/r1.tar.gz (r1/).
#   docs/results/2026-12-05-piece-profile/run.sh OUT [SECONDS]
source "$(dirname "$0")/../../../tools/results_steps.sh"
results_args "$0" "$@"
results_begin r1 "$final" patlab patlab-b || exit 1
w="--tree 1,48_4096,200 --heads 64/8"
w+="|--tree 1,64_4096,256 --model qwen2.5-32b"
w+="|--tree 1,32_4096,200 --model qwen2.5-32b"
IFS='|' read -r -a workloads <<< "${W:-$w}"
ab_runs 200 "${workloads[@]}"
export PATH=/usr/local/cuda/bin:$PATH
sec="--section SpeedOfLight --section Occupancy --section LaunchStats --section MemoryWorkloadAnalysis"
for wl in "${workloads[@]}"; do
  name=$(slug "$wl")
  for side in a b; do
    if (( $(left) < 30 )); then echo "stopped for time before ncu $name $side"; exit 0; fi
    bin=/tmp/ab/patlab; [[ $side == b ]] && bin=/tmp/ab/patlab-b
    # shellcheck disable=SC2086
    timeout "$(cap 90)" ncu --clock-control none -k 'regex:pack_attention|hopper_pack|merge_partials' \
      --launch-skip 3 --launch-count 3 $sec "$bin" bench $wl --stage hopper --no-check --repeats 20 \
      --warmup 1 --no-graph > "$out/ncu-$name-$side.txt" 2>&1
    echo "ncu $name $side exit $? at $SECONDS s"
  done
done
exit 0
