#!/usr/bin/env bash
# Stage 9 (`cluster`, issue 13) measured, one H200 call:
#  1. build (build-gpu) and gpu_09_cluster (every grid, eager, again and graph replay), with a
#     deadline: the solo items' per-CTA queue is new in this commit;
#  2. compute-sanitizer on stage 9 (tools/sanitize.sh): memcheck, racecheck and synccheck on a
#     no-sharing batch (all items solo), and racecheck and synccheck on the four workloads of the
#     first run (the last forms clusters of 4), which its time limit cut;
#  3. patlab compare, every stage (checked first, 20 repeats, cold L2, eager and graph; `x floor`
#     is time over unique bytes / the copy bandwidth measured in the same process) on chapter
#     18's section 5 workloads, a long prefix, the default workload, a long no-sharing batch, a
#     small one and a heterogeneous batch; after each, the same workload with OLD_PATLAB (a
#     binary of the commit before the solo queue, carried in) `bench --stage cluster`, for the
#     before/after of the change.
# Everything lands in OUT/stage9.tar.gz. No step starts after SECONDS (default 430) of this script.
#   PATLAB_COMMIT=<hash> OLD_PATLAB=build-old/patlab-061c686 docs/results/2026-12-02-h200-stage9-bench/run.sh OUT [SECONDS]
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
cap() { local l; l=$(left); echo $(( l > $1 ? $1 : (l > 1 ? l : 1) )); }
{ nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv; date -u; echo "commit ${PATLAB_COMMIT:-unknown}"
  echo "old binary ${OLD_PATLAB:-none}"; } > "$out/env.txt"
if [[ ! -f build-gpu/build.ninja ]]; then
  meson setup build-gpu --buildtype=release -Dgpu_arch=90 -Ddocs=disabled -Dcommit="${PATLAB_COMMIT:-unknown}" > "$out/build.log" 2>&1 || exit 1
fi
ninja -C build-gpu tools/patlab tests/test_09_cluster >> "$out/build.log" 2>&1 || { tail -30 "$out/build.log"; exit 1; }
echo "build ok at $SECONDS s"
PATLAB_REQUIRE_GPU=1 timeout "$(cap 120)" build-gpu/tests/test_09_cluster --durations yes > "$out/test_09_cluster.log" 2>&1
echo "test_09_cluster exit $? at $SECONDS s: $(grep -E 'test cases|assertions' "$out/test_09_cluster.log" | tr '\n' ' ')"
grep -E "FAILED|DIFFERENT|NaN|trap|error" "$out/test_09_cluster.log" | head -5
SANITIZE_STAGES=cluster SANITIZE_WORKLOADS="--tree 12_333 --heads 16/4" \
  timeout "$(cap 60)" tools/sanitize.sh build-gpu > "$out/sanitize.log" 2>&1
echo "sanitize (no sharing) exit $? at $SECONDS s"
SANITIZE_TOOLS="racecheck synccheck" SANITIZE_STAGES=cluster \
  SANITIZE_WORKLOADS="tiny|asymmetric --heads 8/2 --head-dim 64|--tree 1,40_300,17 --heads 32/4|--tree 1,256_1024,3 --heads 32/8" \
  timeout "$(cap 100)" tools/sanitize.sh build-gpu >> "$out/sanitize.log" 2>&1
echo "sanitize (first run's workloads) exit $? at $SECONDS s"
grep -E "^(memcheck|racecheck|synccheck) " "$out/sanitize.log"
for w in "--tree 1,1024_2048,32 --heads 64/8" "--tree 1,1024_2048,32 --heads 32/8" "--tree 1,128_16384,256 --model qwen2.5-7b" \
         "--tree 64_16384 --heads 32/8" "sysprompt" "--tree 1,64_32768,512 --heads 32/8" "--tree 1,16_1024,64 --heads 32/8" \
         "--hetero 3 --hetero-requests 512 --hetero-prefix 4096 --heads 32/8" "asymmetric"; do
  if (( $(left) < 25 )); then echo "stopped for time before: $w" >> "$out/bench.log"; break; fi
  name=$(echo "$w" | tr -c 'a-zA-Z0-9' '_')
  # shellcheck disable=SC2086
  timeout "$(cap 60)" build-gpu/tools/patlab compare $w --repeats 20 > "$out/compare-$name.txt" 2>&1
  echo "compare exit $? at $SECONDS s: $w" >> "$out/bench.log"
  if [[ -n ${OLD_PATLAB:-} ]] && (( $(left) > 10 )); then
    # shellcheck disable=SC2086
    timeout "$(cap 30)" "$OLD_PATLAB" bench $w --stage cluster --repeats 20 > "$out/old-$name.txt" 2>&1
    echo "old bench exit $? at $SECONDS s: $w" >> "$out/bench.log"
  fi
done
cat "$out/bench.log"
