#!/usr/bin/env bash
# The pack kernel's ring, measured in one H200 call:
#  1. build this tree into build-gpu, then (run 1, BUILD_B=1) in the background a copy with
#     kMaxKvStages = 2 (B: the new pipeline on two stages everywhere, the old depth), tools/patlab
#     only;
#  2. every GPU test of C (PATLAB_REQUIRE_GPU=1: a skip fails), four at a time;
#  3. patlab bench of stages packed, pat and hopper on each workload below, the binaries of
#     BINARIES in turn (default: patlab-cf622a7, the commit before, carried in build-ab/ as xz;
#     patlab-B; patlab, this tree);
#     --no-check (step 2 checked every stage on its grids), --no-graph, 20 timed runs, cold L2;
#  4. compute-sanitizer memcheck, racecheck and synccheck: stages 7 and 10 on two fp8 workloads,
#     stages 7-10 on a 16-bit one (run 1: stages 7-10 on both, 8 and 9 skipping the fp8 one);
#  5. Nsight Compute (launch, occupancy, speed of light, warp states, instruction counts) on
#     stage 7's kernel of patlab-cf622a7 and this tree, --tree 16_8192 --heads 32/8, fp8 and (NCU_FP16=1)
#     fp16.
# Everything lands in OUT/ring.tar.gz. No step starts after SECONDS (default 560).
#   docs/results/2026-12-03-h200-pack-ring/run.sh OUT [SECONDS]
# WORKLOADS_FROM=N starts step 3 at workload N (a later call), PICK="1 2 7" runs those workloads
# only; SANITIZE_FP16=0 skips step 4's 16-bit pass; NCU_BINARIES="patlab" profiles only this tree;
# STEPS="3" runs only those steps
# (1 is always needed for 2-4: without it, build-gpu and /tmp/varb must exist).
set -uo pipefail
final=$1
budget=${2:-560}
here=$(cd "$(dirname "$0")" && pwd)
cd "$here/../../.."
out=/tmp/ring
bin=/tmp/ab
steps=${STEPS:-1 2 3 4 5}
mkdir -p "$out" "$final" "$bin"
trap 'tar -C /tmp -czf "$final/ring.tar.gz" ring' EXIT
export PATH=/usr/local/cuda/bin:$PATH
left() { echo $(( budget - SECONDS )); }
cap() { local l; l=$(left); echo $(( l > $1 ? $1 : (l > 1 ? l : 1) )); }
has() { [[ " $steps " == *" $1 "* ]]; }
commit=${PATLAB_COMMIT:-unknown}
for f in build-ab/*.xz; do xz -dc "$f" > "$bin/$(basename "$f" .xz)" && chmod +x "$bin/$(basename "$f" .xz)"; done

# 1. builds
# shellcheck source=tools/nvcc_env.sh
source tools/nvcc_env.sh
binaries=${BINARIES:-patlab-cf622a7 patlab-B patlab}
if has 1; then
  # shellcheck disable=SC2046
  { meson setup build-gpu $(nvcc_native_file build-gpu) --buildtype=release -Dgpu_arch=90 -Ddocs=disabled \
      -Dcommit="$commit" && ninja -C build-gpu; } > "$out/build.log" 2>&1
  echo "build exit $? at $SECONDS s"
fi
if has 1 && [[ ${BUILD_B:-1} == 1 ]]; then
  rm -rf /tmp/varb && mkdir -p /tmp/varb
  tar --exclude=./build-gpu --exclude=./build-ab -cf - . | tar -C /tmp/varb -xf -
  sed -i 's/^inline constexpr int kMaxKvStages = 4;/inline constexpr int kMaxKvStages = 2;/' \
    /tmp/varb/reference/include/patlab/planner/tile_budget.hpp
  grep -n "kMaxKvStages = " /tmp/varb/reference/include/patlab/planner/tile_budget.hpp > "$out/varb.txt"
  # shellcheck disable=SC2046
  ( cd /tmp/varb && meson setup build $(nvcc_native_file build) --buildtype=release -Dgpu_arch=90 -Ddocs=disabled \
      -Dcommit="$commit-B" && ninja -C build tools/patlab ) > "$out/build-B.log" 2>&1 &
  varb=$!
fi
cp build-gpu/tools/patlab "$bin/patlab"
{ nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv; date -u; ncu --version | tail -1
  for p in "$bin"/patlab*; do echo "$(basename "$p"): $("$p" --version 2>&1 | head -1)"; done; } > "$out/env.txt"
cat "$out/env.txt" "$out/varb.txt" 2>/dev/null

# 2. tests
if has 2; then
  PATLAB_REQUIRE_GPU=1 timeout "$(cap 200)" meson test -C build-gpu --suite gpu --num-processes 4 --print-errorlogs \
    > "$out/tests.log" 2>&1
  echo "tests exit $? at $SECONDS s"
  grep -E "^ *[0-9]+/[0-9]+ |^(Ok|Fail|Skipped|Timeout):" "$out/tests.log"
fi
if has 1 && [[ ${BUILD_B:-1} == 1 ]]; then
  wait "$varb"; echo "build B exit $? at $SECONDS s"
  cp /tmp/varb/build/tools/patlab "$bin/patlab-B"
  echo "patlab-B: $("$bin/patlab-B" --version 2>&1 | head -1)" >> "$out/env.txt"
fi

# 3. A/B/C
workloads=(
  "--tree 16_8192 --heads 32/8 --kv-dtype fp8"
  "--tree 16_8192 --heads 32/8"
  "--tree 4,256_8192,512 --heads 32/8 --kv-dtype fp8"
  "--tree 4,256_8192,512 --heads 32/8"
  "--hetero 5 --hetero-requests 128 --heads 32/8 --kv-dtype fp8"
  "--hetero 5 --hetero-requests 128 --heads 32/8"
  "--tree 256_1024 --heads 32/8"
  "--tree 256_4096 --heads 32/8"
  "--tree 4_32768 --heads 32/8"
  "--tree 64_16384 --heads 32/8"
  "--tree 1,128_16384,256 --heads 32/8"
  "--tree 1,4,16,512_1024,256,128,32 --heads 64/8"
  "--random-tree 7 --random-requests 48 --random-depth 6 --heads 32/8"
  "--tree 16_8192 --model gemma-2-9b"
)
if has 3; then
  n=0
  for w in "${workloads[@]}"; do
    n=$((n + 1))
    (( n < ${WORKLOADS_FROM:-1} )) && continue
    [[ -n ${PICK:-} && " $PICK " != *" $n "* ]] && continue
    for b in $binaries; do
      if (( $(left) < ${RESERVE:-150} )); then echo "stopped for time before: w$n $b $w" >> "$out/bench.log"; break 2; fi
      # shellcheck disable=SC2086
      timeout "$(cap 60)" "$bin/$b" bench $w --stage packed pat hopper --repeats 20 --no-graph --no-check \
        --format jsonl > "$out/bench-w$n-$b.jsonl" 2> "$out/bench-w$n-$b.err"
      echo "exit $? at $SECONDS s: w$n $b: $w" >> "$out/bench.log"
    done
  done
  cat "$out/bench.log"
fi

# 4. sanitizers: the stages on the pack kernel with an fp8 cache, then with a 16-bit one
if has 4 && (( $(left) > 60 )); then
  SANITIZE_STAGES="pat packinfer" SANITIZE_WORKLOADS="tiny --kv-dtype fp8|--tree 1,40_300,17 --heads 32/4 --kv-dtype fp8" \
    timeout "$(cap 60)" tools/sanitize.sh build-gpu > "$out/sanitize-fp8.log" 2>&1
  echo "sanitize fp8 exit $? at $SECONDS s"
  if [[ ${SANITIZE_FP16:-1} == 1 ]]; then
    SANITIZE_STAGES="pat hopper cluster packinfer" SANITIZE_WORKLOADS="--tree 1,40_300,17 --heads 32/4" \
      timeout "$(cap 60)" tools/sanitize.sh build-gpu > "$out/sanitize.log" 2>&1
    echo "sanitize exit $? at $SECONDS s"
  fi
  grep -h -E "^(memcheck|racecheck|synccheck) |sanitize:" "$out"/sanitize*.log
fi

# 5. Nsight Compute
if has 5; then
  kvs=(--kv-dtype=fp8)
  [[ ${NCU_FP16:-0} == 1 ]] && kvs+=(--kv-dtype=auto)
  for kv in "${kvs[@]}"; do
    for b in ${NCU_BINARIES:-patlab-cf622a7 patlab}; do
      if (( $(left) < 25 )); then echo "ncu stopped for time before $b $kv"; break 2; fi
      timeout "$(cap 40)" ncu --clock-control none --section LaunchStats --section Occupancy --section SpeedOfLight \
        --section WarpStateStats --section MemoryWorkloadAnalysis --section InstructionStats -k regex:pack_attention \
        --launch-skip 2 --launch-count 1 "$bin/$b" bench --tree 16_8192 --heads 32/8 "$kv" --stage pat --no-check \
        --repeats 20 --warmup 1 --no-graph > "$out/ncu-$b${kv#--kv-dtype=}.txt" 2>&1
      echo "ncu $b $kv exit $? at $SECONDS s"
    done
  done
fi
