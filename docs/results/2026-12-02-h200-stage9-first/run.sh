#!/usr/bin/env bash
# Stage 9 (`cluster`, issue 13) on a GPU for the first time, one H200 call:
#  1. build (build-gpu); the stage's test alone (gpu_09_cluster: the four grids and the stress
#     grid of its persistent scheduler, each case eager, again and under graph replay), with a
#     deadline, the merge's users (stages 3 and 7: merge.cuh's warp code moved into
#     merge_query_head()) and stage 8 (its host code and shared-memory carve moved into
#     hopper_stage.cuh and carve_hopper_smem());
#  2. compute-sanitizer memcheck, racecheck and synccheck on stage 9 (tools/sanitize.sh, its five
#     small workloads plus one that forms clusters of 4);
#  3. patlab bench of stages 7, 8 and 9 (checked first, 20 repeats) on chapter 18's predicted
#     workloads, a long prefix, a no-sharing batch and a small one, eager and graph.
# Everything lands in OUT/stage9.tar.gz. No step starts after SECONDS (default 430) of this script.
#   PATLAB_COMMIT=<hash> docs/results/2026-12-02-h200-stage9-first/run.sh OUT [SECONDS]
set -uo pipefail
final=$1
budget=${2:-430}
here=$(cd "$(dirname "$0")" && pwd)
cd "$here/../../.."
out=/tmp/stage9
mkdir -p "$out" "$final"
trap 'tar -C /tmp -czf "$final/stage9.tar.gz" stage9' EXIT
export PATH=/usr/local/cuda/bin:$PATH
left() { echo $(( budget - SECONDS )); }
{ nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv; date -u; echo "commit ${PATLAB_COMMIT:-unknown}"; } > "$out/env.txt"
if [[ ! -f build-gpu/build.ninja ]]; then
  meson setup build-gpu --buildtype=release -Dgpu_arch=90 -Ddocs=disabled -Dcommit="${PATLAB_COMMIT:-unknown}" > "$out/build.log" 2>&1 || exit 1
fi
ninja -C build-gpu >> "$out/build.log" 2>&1 || { tail -30 "$out/build.log"; exit 1; }
echo "build ok at $SECONDS s"
PATLAB_REQUIRE_GPU=1 timeout $(( $(left) > 200 ? 200 : $(left) )) build-gpu/tests/test_09_cluster --durations yes > "$out/test_09_cluster.log" 2>&1
echo "test_09_cluster exit $? at $SECONDS s: $(grep -E 'cases passed|test cases|assertions' "$out/test_09_cluster.log" | tr '\n' ' ')"
grep -E "FAIL|DIFFERENT|NaN" "$out/test_09_cluster.log" | head -5
(( $(left) > 90 )) && PATLAB_REQUIRE_GPU=1 timeout 90 meson test -C build-gpu gpu_03_splitkv gpu_07_pat gpu_08_hopper --num-processes 3 > "$out/tests-merge.log" 2>&1
echo "merge users exit $? at $SECONDS s"; grep -E "^ *[0-9]+/[0-9]+ " "$out/tests-merge.log"
if (( $(left) > 60 )); then
  SANITIZE_STAGES="cluster" SANITIZE_WORKLOADS="tiny|asymmetric --heads 8/2 --head-dim 64|--tree 1,40_300,17 --heads 32/4|--tree 1,256_1024,3 --heads 32/8" \
    timeout $(( $(left) > 120 ? 120 : $(left) )) tools/sanitize.sh build-gpu > "$out/sanitize.log" 2>&1
  echo "sanitize exit $? at $SECONDS s: $(tail -1 "$out/sanitize.log")"
fi
for w in "--tree 1,1024_2048,32 --heads 64/8" "--tree 1,1024_2048,32 --heads 32/8" "--tree 1,128_16384,256 --model qwen2.5-7b" \
         "--tree 1,64_32768,512 --heads 32/8" "sysprompt" "--tree 64_16384 --heads 32/8" "asymmetric"; do
  if (( $(left) < 20 )); then echo "stopped for time before: $w" >> "$out/bench.log"; break; fi
  # shellcheck disable=SC2086
  timeout $(( $(left) > 60 ? 60 : $(left) )) build-gpu/tools/patlab bench $w --stage pat hopper cluster --repeats 20 \
    > "$out/bench-$(echo "$w" | tr -c 'a-zA-Z0-9' '_').txt" 2>&1
  echo "exit $? $w" >> "$out/bench.log"
done
cat "$out/bench.log"
grep -h -E "^(pat|hopper|cluster) " "$out"/bench-*.txt | head -30
