#!/usr/bin/env bash
# Run 8 on the H200, one call: Nsight Compute on stage 8's kernel at --hopper-rows 128 and 192 on
# `--tree 1,960_2048,32 --heads 64/8` (7680 prefix rows per KV head: 60 packs of 128 or 40 of 192,
# so one Hopper instance each), the third launch of the kernel, with build-ab/patlab.xz.
# Writes OUT/r8.tar.gz (r8/ncu-ROWS.txt, env.txt).
#   docs/results/2026-12-04-h200-tall-tiles/prof8.sh OUT [SECONDS]
set -uo pipefail
final=$1
budget=${2:-200}
here=$(cd "$(dirname "$0")" && pwd)
cd "$here/../../.." || exit 1
# shellcheck source=../../../tools/results_steps.sh
source tools/results_steps.sh
results_begin r8 "$final" patlab || exit 1
export PATH=/usr/local/cuda/bin:$PATH
sec="--section SpeedOfLight --section ComputeWorkloadAnalysis --section Occupancy --section WarpStateStats"
sec+=" --metrics sm__pipe_tensor_cycles_active_realtime.avg.pct_of_peak_sustained_elapsed"
for rows in 128 192; do
  if (( $(left) < 30 )); then echo "stopped for time before $rows"; exit 0; fi
  # shellcheck disable=SC2086
  timeout "$(cap 80)" ncu --clock-control none -k regex:hopper_pack --launch-skip 2 --launch-count 1 $sec \
    /tmp/ab/patlab bench --tree 1,960_2048,32 --heads 64/8 --hopper-rows "$rows" --stage hopper --no-check \
    --repeats 20 --warmup 1 --no-graph > "$out/ncu-$rows.txt" 2>&1
  echo "ncu rows $rows exit $? at $SECONDS s"
  grep -E "hopper_pack|Duration|DRAM Throughput|Compute \(SM\) Throughput|pipe_tensor|Issue Slots Busy|Warp Cycles Per Issued|Registers Per|Achieved Occupancy" "$out/ncu-$rows.txt" | head -20
done
exit 0
