#!/usr/bin/env bash
# Issue 15 on the H200: build, every GPU test (nothing may skip), then the incremental planner's
# decode step against one layer's stage-7 kernel on 256-request batches.
#   PATLAB_COMMIT=<hash> docs/results/2026-12-01-h200-incremental/run.sh OUTDIR
set -uo pipefail
out=$1; mkdir -p "$out"
export PATH=/usr/local/cuda/bin:$PATH
{ nvidia-smi --query-gpu=name,driver_version,clocks.max.sm,clocks.max.mem --format=csv; nvcc --version | tail -2;
  echo "commit: ${PATLAB_COMMIT:-unknown}"; date -u; } > "$out/env.txt" 2>&1
meson setup build-gpu --buildtype=release -Dgpu_arch=90 -Ddocs=disabled -Dcommit="${PATLAB_COMMIT:-unknown}" > "$out/build.log" 2>&1 &&
  ninja -C build-gpu >> "$out/build.log" 2>&1 || { tail -40 "$out/build.log"; exit 1; }
PATLAB_REQUIRE_GPU=1 meson test -C build-gpu --print-errorlogs --num-processes 1 > "$out/tests.log" 2>&1
tail -15 "$out/tests.log"
P=build-gpu/tools/patlab
for t in 1,4,256_1024,256,32 256_1024 1,8,1024_2048,512,64; do
  echo "== plan --tree $t --incremental 1000"; $P plan --tree $t --incremental 1000
  echo "== bench --tree $t --stage pat"; $P bench --tree $t --stage pat --repeats 30
done > "$out/incremental.txt" 2>&1
T=gen:requests=256,rate=0,prompt=128,output=512,sigma=0.01,system=2048x1,seed=1
for L in 1 32; do
  echo "== serve --layers $L"; $P serve $T --stage pat --layers $L --steps 300 --compare-scratch --series "$out/L$L.csv"
done > "$out/serve256.txt" 2>&1
grep -E "incremental|scratch|kernel|plan|path" "$out/incremental.txt" "$out/serve256.txt" | head -80
