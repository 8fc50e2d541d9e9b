#!/usr/bin/env bash
# One H200 call for two open questions (issues 13 and 11):
#  1. build; the Hopper primitive tests alone first (the cluster tests of hopper/cluster.cuh and
#     the TMA multicast had never run on a GPU), then every GPU test (meson's gpu suite,
#     PATLAB_REQUIRE_GPU=1, four at a time: stages 4-8 now take the batch's planner overrides
#     through apply_batch_planner()); the kernels' registers (cuobjdump);
#  2. the --fill-window A/B that decides its default (tools/bench_ab.py, window 4 against 8,
#     stages 6 and 7, eager and graph): the suite's 256-request batches, its two no-sharing
#     controls and the two trees where stage 7 was slower than stage 6 under graphs.
# Everything lands in OUT/cluster-fill.tar.gz (the device returns few files). No A/B starts
# after SECONDS (450 by default).
#   PATLAB_COMMIT=<hash> docs/results/2026-12-02-h200-cluster-fill/run.sh OUT [SECONDS]
set -uo pipefail
final=$1
budget=${2:-450}
start=$SECONDS
here=$(cd "$(dirname "$0")" && pwd)
cd "$here/../../.."
out=/tmp/cluster-fill
mkdir -p "$out" "$final"
trap 'tar -C /tmp -czf "$final/cluster-fill.tar.gz" cluster-fill' EXIT
export PATH=/usr/local/cuda/bin:$PATH
{ nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv; date -u; echo "commit ${PATLAB_COMMIT:-unknown}"; } > "$out/env.txt"
if [[ ! -f build-gpu/build.ninja ]]; then
  meson setup build-gpu --buildtype=release -Dgpu_arch=90 -Ddocs=disabled -Dcommit="${PATLAB_COMMIT:-unknown}" > "$out/build.log" 2>&1 || exit 1
fi
ninja -C build-gpu >> "$out/build.log" 2>&1 || { tail -30 "$out/build.log"; exit 1; }
echo "build ok at $((SECONDS - start)) s"
cuobjdump --dump-resource-usage build-gpu/cuda/libpatlab_cuda.a > "$out/resources.txt" 2>&1
cuobjdump --dump-resource-usage build-gpu/tests/test_hopper_primitives > "$out/resources-primitives.txt" 2>&1
PATLAB_REQUIRE_GPU=1 timeout 60 build-gpu/tests/test_hopper_primitives --durations yes > "$out/primitives.log" 2>&1
echo "primitives exit $?: $(tail -2 "$out/primitives.log" | tr '\n' ' ')"
PATLAB_REQUIRE_GPU=1 timeout 240 meson test -C build-gpu --suite gpu --print-errorlogs --num-processes 4 \
  > "$out/tests.log" 2>&1
echo "tests exit $?"
cp build-gpu/meson-logs/testlog.txt "$out/testlog.txt" 2>/dev/null
grep -E "^ *[0-9]+/[0-9]+ |Ok:|Fail:" "$out/tests.log" | tail -16
echo "tests done at $((SECONDS - start)) s"
ab() {
  local name=$1; shift
  local left=$(( budget - (SECONDS - start) ))
  if (( left < 30 )); then echo "A/B $name not started: $left s left"; return; fi
  timeout "$left" python3 tools/bench_ab.py --a "--fill-window 4" --b "--fill-window 8" --stages multistream,pat \
    --no-check --out "$out/ab-$name" --patlab build-gpu/tools/patlab "$@" > "$out/ab-$name.log" 2>&1
  echo "A/B $name exit $? at $((SECONDS - start)) s"
}
ab wide "--tree 256_1024 --heads 32/8" "--tree 256_4096 --heads 32/8" "--tree 256_1024 --heads 16/8" \
  "--tree 256_4096 --heads 64/8" "--tree 4_32768 --heads 32/8" "--tree 16_8192 --heads 32/8"
ab rest "--tree 1,2,64_1024,256,256 --heads 64/8" "--tree 1,4,8,256_32,256,256,32 --heads 16/8" \
  "--tree 256_1024 --heads 32/32" "--tree 256_1024 --heads 64/8" "--tree 256_4096 --heads 16/8" "--tree 256_4096 --heads 32/32"
cat "$out"/ab-*/ab.md 2>/dev/null
