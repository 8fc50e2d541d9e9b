#!/usr/bin/env bash
# Nsight Compute on stage 8's kernel and stage 7's pack kernel, two shared-prefix workloads where
# stage 8 runs at 17-21% of the copy bandwidth (../2026-12-02-h200-stage8-routed):
#   PATLAB_COMMIT=<hash> docs/results/2026-12-02-h200-stage8-profiles/prof.sh OUT
set -u
out=$1
here=$(cd "$(dirname "$0")" && pwd)
cd "$here/../../.."
export PATH=/usr/local/cuda/bin:$PATH
start=$SECONDS
if [[ ! -f build-gpu/build.ninja ]]; then
  meson setup build-gpu --buildtype=release -Dgpu_arch=90 -Ddocs=disabled -Dcommit="${PATLAB_COMMIT:-unknown}" > /dev/null 2>&1 || exit 1
fi
ninja -C build-gpu tools/patlab > /dev/null 2>&1 || { echo "build failed"; exit 1; }
echo "build ok at $((SECONDS - start)) s"
{ nvidia-smi --query-gpu=name,driver_version --format=csv,noheader; date -u; echo "commit ${PATLAB_COMMIT:-unknown}"; } > "$out/ncu.txt"
sec="--section SpeedOfLight --section MemoryWorkloadAnalysis --section ComputeWorkloadAnalysis --section Occupancy --section LaunchStats --section WarpStateStats"
prof() {  # name, stage, kernel regex, workload args...
  local name=$1 st=$2 k=$3; shift 3
  timeout 45 ncu --clock-control none -k regex:$k --launch-skip 2 --launch-count 1 $sec build-gpu/tools/patlab bench "$@" \
    --stage $st --no-check --repeats 20 --warmup 1 --no-graph > /tmp/ncu_$name.txt 2>&1
  echo "== $name: patlab bench $* --stage $st (kernels matching $k), exit $?" >> "$out/ncu.txt"
  grep -E "^  [a-z_].*\(|Duration|DRAM Throughput|Memory Throughput|L2 Hit Rate|L1/TEX Hit Rate|Achieved Occupancy|Theoretical Occupancy|Registers Per|Block Limit (Registers|Shared)|Dynamic Shared|Compute \(SM\) Throughput|Warp Cycles Per Issued|Issue Slots Busy|Executed Ipc Active|One or More Eligible|Stall" /tmp/ncu_$name.txt >> "$out/ncu.txt"
  echo "$name done at $((SECONDS - start)) s"
}
prof hopper_qwen7b hopper hopper_pack --tree 1,128_16384,256 --model qwen2.5-7b
prof pat_qwen7b pat pack_attention --tree 1,128_16384,256 --model qwen2.5-7b
prof hopper_1024 hopper hopper_pack --tree 1,1024_2048,32 --heads 32/8
prof pat_1024 pat pack_attention --tree 1,1024_2048,32 --heads 32/8
