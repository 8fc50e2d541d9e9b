#!/usr/bin/env bash
# Stage 9's split slices (two consumer warpgroups on alternate tiles of a small solo slice, a
# five-stage ring) against main's stage 9, on the H200, in one call (steps chosen by STEPS,
# default "1 2 3 4"):
#  1. build this tree into build-gpu (gpu_arch 90);
#  2. the GPU tests of stages 8 and 9 and the Hopper primitives (TESTS replaces them;
#     PATLAB_REQUIRE_GPU=1: a skip fails);
#  3. compute-sanitizer (SAN_TOOLS, default memcheck racecheck synccheck) on stage 9 over tiny and
#     three small workloads;
#  4. A/B: STAGES (default "hopper cluster": stages 8 and 9) of each of BINARIES (default
#     "patlab-34d5e28 patlab": build-ab/NAME.xz unpacked, or this tree's build) on WORKLOADS
#     ('|'-separated), eager and graph replay, 20 repeats, cold L2.
# Everything lands in OUT/split.tar.gz. No step starts after SECONDS (default 560).
#   PATLAB_COMMIT=<hash> docs/results/2026-12-03-h200-stage9-split/run.sh OUT [SECONDS]
set -uo pipefail
final=$1
budget=${2:-560}
here=$(cd "$(dirname "$0")" && pwd)
cd "$here/../../.." || exit 1
out=/tmp/split
steps=${STEPS:-1 2 3 4}
mkdir -p "$out" "$final"
trap 'tar -C /tmp -czf "$final/split.tar.gz" split' EXIT
export PATH=/usr/local/cuda/bin:$PATH
left() { echo $(( budget - SECONDS )); }
cap() { local l; l=$(left); echo $(( l > $1 ? $1 : (l > 1 ? l : 1) )); }
has() { [[ " $steps " == *" $1 "* ]]; }
commit=${PATLAB_COMMIT:-unknown}

# shellcheck source=tools/nvcc_env.sh
source tools/nvcc_env.sh
if has 1; then
  # shellcheck disable=SC2046
  { [[ -d build-gpu ]] || meson setup build-gpu $(nvcc_native_file build-gpu) --buildtype=release -Dgpu_arch=90 \
      -Ddocs=disabled -Dcommit="$commit"; ninja -C build-gpu; } >> "$out/build.log" 2>&1
  echo "build exit $? at $SECONDS s"
fi
patlab=build-gpu/tools/patlab
mkdir -p /tmp/ab
for f in build-ab/*.xz; do [[ -e $f ]] && xz -dc "$f" > "/tmp/ab/$(basename "$f" .xz)" && chmod +x "/tmp/ab/$(basename "$f" .xz)"; done
{ nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv; date -u
  $patlab --version 2>&1 | head -1
  for f in /tmp/ab/*; do echo "$(basename "$f"): $(env -u PATLAB_COMMIT "$f" --version 2>&1 | head -1)"; done
} >> "$out/env.txt"
cat "$out/env.txt"

# 2. GPU tests
if has 2; then
  # shellcheck disable=SC2086
  PATLAB_REQUIRE_GPU=1 timeout "$(cap 240)" meson test -C build-gpu ${TESTS:-gpu_09_cluster gpu_08_hopper gpu_hopper_primitives} \
    --num-processes 3 --print-errorlogs > "$out/tests.log" 2>&1
  echo "tests exit $? at $SECONDS s"
  grep -E "^ *[0-9]+/[0-9]+ |^(Ok|Fail|Skipped|Timeout):" "$out/tests.log"
fi

# 3. sanitizers on stage 9
if has 3 && (( $(left) > 60 )); then
  SANITIZE_STAGES=cluster SANITIZE_TOOLS=${SAN_TOOLS:-memcheck racecheck synccheck} \
    SANITIZE_WORKLOADS="tiny|--tree 12_333 --heads 16/4|--tree 1,40_300,17 --heads 32/4|--tree 64_300 --heads 8/1" \
    timeout "$(cap 200)" tools/sanitize.sh build-gpu > "$out/sanitize.log" 2>&1
  echo "sanitize exit $? at $SECONDS s"
  grep -h -E "^(memcheck|racecheck|synccheck) |sanitize:" "$out"/sanitize.log
fi

# 4. A/B
if has 4; then
  default_w="--tree 64_16384 --heads 32/8|--tree 128_2048 --heads 32/8|--tree 64_300 --heads 8/1"
  default_w+="|--tree 1,128_16384,256 --model qwen2.5-7b|--tree 1,128_16384,256 --model qwen2.5-7b --max-cluster 1"
  default_w+="|--tree 1,1024_2048,32 --heads 64/8|--tree 1,64_32768,512 --heads 32/8|--tree 4,256_8192,512 --heads 32/8"
  default_w+="|--random-tree 7 --random-requests 48 --random-depth 6 --heads 32/8|--tree 1,16_1024,64 --heads 32/8"
  IFS='|' read -r -a workloads <<< "${WORKLOADS:-$default_w}"
  n=0
  for w in "${workloads[@]}"; do
    n=$((n + 1))
    for b in ${BINARIES:-patlab-34d5e28 patlab}; do
      bin=$patlab
      [[ $b != patlab ]] && bin=/tmp/ab/$b
      if (( $(left) < 30 )); then echo "stopped for time before w$n-$b"; break 2; fi
      # shellcheck disable=SC2086
      timeout "$(cap 90)" "$bin" bench $w --stage ${STAGES:-hopper cluster} --repeats 20 --no-check --format jsonl \
        > "$out/ab-w$n-$b.jsonl" 2> "$out/ab-w$n-$b.err"
      echo "exit $? at $SECONDS s: w$n-$b: $w" | tee -a "$out/bench.log"
    done
  done
fi
