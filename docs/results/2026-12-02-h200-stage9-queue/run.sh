#!/usr/bin/env bash
# Stage 9's solo queue on named barriers, and where its time goes (issue 13), after a suite part
# in the same call (build-gpu is then built):
#  1. gpu_09_cluster (every grid, eager, again and graph replay);
#  2. compute-sanitizer racecheck and synccheck on stage 9: a no-sharing batch (all items solo),
#     the preset tiny and a prefix that forms clusters of 4 (racecheck flagged the first solo
#     queue, on mbarriers, in docs/results/2026-12-02-h200-stage9-bench);
#  3. patlab bench of stages 8 and 9 with --max-cluster 1, 2 and 4 (1: no multicast, every item
#     solo) on a large prefix at page 16 and 64 and on qwen2.5-7b's 16K prefix: is stage 9's
#     multicast part or its per-CTA pipeline what costs it against stage 8?
# Everything lands in OUT/queue.tar.gz. No step starts after SECONDS (default 250) of this script.
#   PATLAB_COMMIT=<hash> docs/results/2026-12-02-h200-stage9-queue/run.sh OUT [SECONDS]
set -uo pipefail
final=$1
budget=${2:-250}
here=$(cd "$(dirname "$0")" && pwd)
cd "$here/../../.."
out=/tmp/queue
mkdir -p "$out" "$final"
trap 'tar -C /tmp -czf "$final/queue.tar.gz" queue' EXIT
export PATH=/usr/local/cuda/bin:$PATH
left() { echo $(( budget - SECONDS )); }
cap() { local l; l=$(left); echo $(( l > $1 ? $1 : (l > 1 ? l : 1) )); }
{ nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv; date -u; echo "commit ${PATLAB_COMMIT:-unknown}"; } > "$out/env.txt"
if [[ ! -f build-gpu/build.ninja ]]; then
  meson setup build-gpu --buildtype=release -Dgpu_arch=90 -Ddocs=disabled -Dcommit="${PATLAB_COMMIT:-unknown}" > "$out/build.log" 2>&1 || exit 1
fi
ninja -C build-gpu tools/patlab tests/test_09_cluster >> "$out/build.log" 2>&1 || { tail -30 "$out/build.log"; exit 1; }
echo "build ok at $SECONDS s"
PATLAB_REQUIRE_GPU=1 timeout "$(cap 90)" build-gpu/tests/test_09_cluster --durations yes > "$out/test_09_cluster.log" 2>&1
echo "test_09_cluster exit $? at $SECONDS s: $(grep -E 'test cases|assertions' "$out/test_09_cluster.log" | tr '\n' ' ')"
SANITIZE_TOOLS="racecheck synccheck" SANITIZE_STAGES=cluster \
  SANITIZE_WORKLOADS="--tree 12_333 --heads 16/4|tiny|--tree 1,256_1024,3 --heads 32/8" \
  timeout "$(cap 90)" tools/sanitize.sh build-gpu > "$out/sanitize.log" 2>&1
echo "sanitize exit $? at $SECONDS s"
grep -E "^(racecheck|synccheck) " "$out/sanitize.log"
for w in "--tree 1,1024_2048,32 --heads 64/8" "--tree 1,1024_2048,32 --heads 64/8 --page 64" "--tree 1,128_16384,256 --model qwen2.5-7b"; do
  for c in 4 2 1; do
    if (( $(left) < 12 )); then echo "stopped for time before: $w --max-cluster $c" >> "$out/bench.log"; break 2; fi
    # shellcheck disable=SC2086
    timeout "$(cap 30)" build-gpu/tools/patlab bench $w --stage hopper cluster --max-cluster $c --repeats 20 --no-graph \
      > "$out/bench-$(echo "$w" | tr -c 'a-zA-Z0-9' '_')-c$c.txt" 2>&1
    echo "exit $? at $SECONDS s: $w --max-cluster $c" >> "$out/bench.log"
  done
done
cat "$out/bench.log"
grep -h -E "^tree .* (hopper|cluster) " "$out"/bench-*.txt | awk '{print $0}' | cut -c1-140
