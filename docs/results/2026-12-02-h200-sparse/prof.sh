#!/usr/bin/env bash
# Where FSA's span order spends its time (run 2: about 1 TB/s on its byte model, NSA's order 3.5):
# Nsight Compute over the first launches of `patlab sparse --method fsa` (its checks run NSA's,
# the split and FSA's order once each before any timing), one line per kernel and its averages
# (--print-summary per-kernel): the masked pack kernel, the plain one, the empty-partials fill and
# the merge. Needs a build in build-gpu (run.sh makes one).
#   PATLAB_COMMIT=<hash> docs/results/2026-12-02-h200-sparse/prof.sh OUT
set -u
out=$1
here=$(cd "$(dirname "$0")" && pwd)
cd "$here/../../.."
export PATH=/usr/local/cuda/bin:$PATH
mkdir -p "$out"
{ nvidia-smi --query-gpu=name,driver_version --format=csv,noheader; date -u; echo "commit ${PATLAB_COMMIT:-unknown}"; } > "$out/ncu_fsa.txt"
for w in "--tree 1,64_16384,512 --heads 8/8" "--tree 1,64_16384,512 --heads 32/8" "--tree 1,16_4096,256 --heads 32/8"; do
  echo "== patlab sparse $w --method fsa" >> "$out/ncu_fsa.txt"
  # shellcheck disable=SC2086
  timeout 120 ncu --clock-control none --kernel-name-base demangled --launch-count 40 --print-summary per-kernel \
    --section SpeedOfLight --section Occupancy --section LaunchStats \
    build-gpu/tools/patlab sparse $w --method fsa --repeats 20 --warmup 1 --quiet > /tmp/ncu_fsa.log 2>&1
  echo "exit $?" >> "$out/ncu_fsa.txt"
  grep -E "^  [a-z_].*\(|Duration|DRAM Throughput|Memory Throughput|Compute \(SM\) Throughput|Achieved Occupancy|Theoretical Occupancy|Registers Per|Grid Size|Block Size|invocations" \
    /tmp/ncu_fsa.log >> "$out/ncu_fsa.txt"
done
