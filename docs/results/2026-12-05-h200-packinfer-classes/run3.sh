#!/usr/bin/env bash
# Run 3, one call, with build-ab/patlab.xz built from the branch: Nsight Compute on the 16-row
# group kernel (stage 10 at --group-rows 16) and on stage 7's pack kernel, one launch each, on an
# fp8 batch without sharing and its fp16 twin, then on run 1's fp8 batch: launch statistics,
# occupancy, memory workload (local memory included), warp states and source counters. Writes
# OUT/RUN.tar.gz.
#   [RUN=r3] docs/results/2026-12-05-h200-packinfer-classes/run3.sh OUT [SECONDS]
# shellcheck source=../../../tools/results_steps.sh
source "$(dirname "$0")/../../../tools/results_steps.sh"
results_args "$0" "$@"
results_begin "${RUN:-r3}" "$final" patlab || exit 1
export PATH=/usr/local/cuda/bin:$PATH
ncu --version | tail -1 >> "$out/env.txt"
sections=(--section LaunchStats --section Occupancy --section SpeedOfLight --section MemoryWorkloadAnalysis
  --section MemoryWorkloadAnalysis_Tables --section WarpStateStats --section SchedulerStats --section SourceCounters)
workloads=(
  "--hetero 24 --hetero-requests 160 --hetero-shared 0 --heads 32/8 --kv-dtype fp8"
  "--hetero 24 --hetero-requests 160 --hetero-shared 0 --heads 32/8"
  "--hetero 5 --hetero-requests 128 --heads 32/8 --kv-dtype fp8"
)
n=0
for w in "${workloads[@]}"; do
  n=$((n + 1))
  for k in "packinfer group_attention" "pat pack_attention"; do
    read -r stage kernel <<< "$k"
    if (( $(left) < 40 )); then echo "stopped for time before $n $stage"; break 2; fi
    # shellcheck disable=SC2086
    timeout "$(cap 120)" ncu --clock-control none "${sections[@]}" -k "regex:$kernel" --launch-skip 2 --launch-count 1 \
      /tmp/ab/patlab bench $w --stage "$stage" --group-rows 16 --no-check --repeats 20 --warmup 1 --no-graph \
      > "$out/ncu-$n-$stage.txt" 2>&1
    echo "ncu $n $stage exit $? at $SECONDS s ($w)"
    grep -E "Duration|Registers Per|Local Memory|Achieved Occupancy|DRAM Throughput|Stall Long" \
      "$out/ncu-$n-$stage.txt" | head -12
  done
done
exit 0
