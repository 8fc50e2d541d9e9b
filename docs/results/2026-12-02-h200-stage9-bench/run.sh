#!/usr/bin/env bash
# Stage 9 (`cluster`, issue 13) measured, one H200 call:
#  1. build (build-gpu);
#  2. what the first run's time limit cut: racecheck on the workload that forms clusters of 4,
#     synccheck on the four workloads of the first run (tools/sanitize.sh, SANITIZE_TOOLS);
#  3. patlab compare, every stage (checked first, 20 repeats, cold L2, eager and graph; `x floor`
#     is time over unique bytes / the copy bandwidth measured in the same process) on chapter
#     18's section 5 workloads, a long prefix, the default workload, a long no-sharing batch, a
#     small one and a heterogeneous batch.
# Everything lands in OUT/stage9.tar.gz. No step starts after SECONDS (default 430) of this script.
#   PATLAB_COMMIT=<hash> docs/results/2026-12-02-h200-stage9-bench/run.sh OUT [SECONDS]
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
SANITIZE_TOOLS=racecheck SANITIZE_STAGES=cluster SANITIZE_WORKLOADS="--tree 1,256_1024,3 --heads 32/8" \
  timeout 60 tools/sanitize.sh build-gpu > "$out/sanitize.log" 2>&1
echo "racecheck exit $? at $SECONDS s"
SANITIZE_TOOLS=synccheck SANITIZE_STAGES=cluster \
  SANITIZE_WORKLOADS="tiny|asymmetric --heads 8/2 --head-dim 64|--tree 1,40_300,17 --heads 32/4|--tree 1,256_1024,3 --heads 32/8" \
  timeout 90 tools/sanitize.sh build-gpu >> "$out/sanitize.log" 2>&1
echo "synccheck exit $? at $SECONDS s"
grep -E "^(racecheck|synccheck) " "$out/sanitize.log"
for w in "--tree 1,1024_2048,32 --heads 64/8" "--tree 1,1024_2048,32 --heads 32/8" "--tree 1,128_16384,256 --model qwen2.5-7b" \
         "--tree 1,64_32768,512 --heads 32/8" "sysprompt" "--tree 64_16384 --heads 32/8" "--tree 1,16_1024,64 --heads 32/8" \
         "--hetero 3 --hetero-requests 512 --hetero-prefix 4096 --heads 32/8" "asymmetric"; do
  if (( $(left) < 20 )); then echo "stopped for time before: $w" >> "$out/bench.log"; break; fi
  # shellcheck disable=SC2086
  timeout $(( $(left) > 60 ? 60 : $(left) )) build-gpu/tools/patlab compare $w --repeats 20 \
    > "$out/compare-$(echo "$w" | tr -c 'a-zA-Z0-9' '_').txt" 2>&1
  echo "exit $? at $SECONDS s: $w" >> "$out/bench.log"
done
cat "$out/bench.log"
