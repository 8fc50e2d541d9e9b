#!/usr/bin/env bash
# Run 4 on the H200, one call: the producer warp (each lane issues one of a tile's copies) against
# the producer thread (ff691b1), stages 8 and 9. Per workload below and binary (A =
# build-ab/patlab-ff691b1.xz, B = build-ab/patlab.xz; A first, then B, one process each), stages
# hopper and cluster at the default page of 16 tokens and, for the workloads marked, at --page 64;
# eager and graph, 20 repeats, cold L2, unchecked (the tests check the kernels). Writes
# OUT/RUN.tar.gz (RUN/NAME-PAGE-A|B.jsonl, .err, env.txt). Then compute-sanitizer memcheck,
# racecheck and synccheck on B's stages 8 and 9 over three small workloads (RUN/sanitize.log).
# No run starts after SECONDS (default 540).
#   [RUN=r4] docs/results/2026-12-04-h200-tall-tiles/run4.sh OUT [SECONDS]
set -uo pipefail
final=$1
budget=${2:-540}
here=$(cd "$(dirname "$0")" && pwd)
cd "$here/../../.." || exit 1
# shellcheck source=../../../tools/results_steps.sh
source tools/results_steps.sh
results_begin "${RUN:-r4}" "$final" patlab-ff691b1 patlab || exit 1
w="--tree 64_16384 --heads 32/8;64"
w+="|--tree 128_2048 --heads 32/8;"
w+="|--tree 1,128_16384,256 --model qwen2.5-7b;64"
w+="|--tree 1,1024_2048,32 --heads 64/8;"
w+="|--tree 1,128_16384,256 --heads 32/8;"
w+="|--hetero 1 --heads 32/8;"
IFS='|' read -r -a workloads <<< "$w"
for entry in "${workloads[@]}"; do
  wl=${entry%;*}
  name=$(slug "$wl")
  for page in 16 ${entry#*;}; do
    for bin in patlab-ff691b1 patlab; do
      tag=$([[ $bin == patlab ]] && echo B || echo A)
      if (( $(left) < 15 )); then echo "stopped for time before $name page $page $tag"; exit 0; fi
      # shellcheck disable=SC2086
      timeout "$(cap 90)" "/tmp/ab/$bin" bench $wl --page "$page" --stage hopper cluster --repeats 20 --no-check \
        --format jsonl > "$out/$name-$page-$tag.jsonl" 2> "$out/$name-$page-$tag.err"
      echo "exit $? at $SECONDS s: $name page $page $tag"
    done
  done
done
export PATH=/usr/local/cuda/bin:$PATH
mkdir -p /tmp/sbuild/tools && cp /tmp/ab/patlab /tmp/sbuild/tools/patlab
w="tiny|--tree 1,40_300,17 --heads 32/4 --hopper-min-kv 0 --hopper-wide-kv 0|--tree 12_333 --heads 16/4 --page 32"
SANITIZE_STAGES="hopper cluster" SANITIZE_WORKLOADS="$w" timeout "$(cap 400)" tools/sanitize.sh /tmp/sbuild \
  > "$out/sanitize.log" 2>&1
echo "sanitize exit $? at $SECONDS s"
tail -20 "$out/sanitize.log"
exit 0
