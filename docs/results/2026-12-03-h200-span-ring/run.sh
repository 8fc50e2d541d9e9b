#!/usr/bin/env bash
# FSA's spans on a three-stage K/V ring against the two-stage one (issue 17), in H200 calls
# (steps chosen by STEPS, default "1 3 5"):
#  1. build this tree into build-gpu (a warm machine keeps it);
#  2. every GPU test (meson's gpu suite, PATLAB_REQUIRE_GPU=1: a skip fails; TESTS picks tests);
#  3. patlab sparse --method fsa (NSA's and FSA's orders timed in one run, eager and from a CUDA
#     graph where the binary has it) on SPARSE_WORKLOADS ('|'-separated; default chapter 22's
#     small batch at groups 1, 2, 4 and the large one at groups 1 and 4), with VARIANTS
#     ('|'-separated extra options, default --span-stages 0 (automatic), 2 and 3) in turn;
#  4. Nsight Compute, kernel durations only, of every launch of `patlab sparse --method fsa
#     --warmup 1 --repeats 20` on NCU_WORKLOADS ('|'-separated; default: the large batch at
#     groups 1 and 4): the last launches are FSA's branch (empty partials, span packs, merge);
#  5. compute-sanitizer (SAN_TOOLS, default "memcheck racecheck synccheck") on `patlab sparse
#     --method fsa` over two small shared-prefix workloads.
# Everything lands in OUT/span-ring.tar.gz. No step starts after SECONDS (default 560).
#   PATLAB_COMMIT=<hash> docs/results/2026-12-03-h200-span-ring/run.sh OUT [SECONDS]
set -uo pipefail
final=$1
budget=${2:-560}
here=$(cd "$(dirname "$0")" && pwd)
cd "$here/../../.."
out=/tmp/span-ring
steps=${STEPS:-1 3 5}
mkdir -p "$out" "$final"
trap 'tar -C /tmp -czf "$final/span-ring.tar.gz" span-ring' EXIT
export PATH=/usr/local/cuda/bin:$PATH
left() { echo $(( budget - SECONDS )); }
cap() { local l; l=$(left); echo $(( l > $1 ? $1 : (l > 1 ? l : 1) )); }
has() { [[ " $steps " == *" $1 "* ]]; }
commit=${PATLAB_COMMIT:-unknown}
slug() { echo "$1" | tr -c 'a-z0-9' '_' | tr -s '_'; }

# shellcheck source=tools/nvcc_env.sh
source tools/nvcc_env.sh
if has 1; then
  # shellcheck disable=SC2046
  { [[ -d build-gpu/meson-info ]] || meson setup build-gpu $(nvcc_native_file build-gpu) --buildtype=release \
      -Dgpu_arch=90 -Ddocs=disabled -Dcommit="$commit"; ninja -C build-gpu; } >> "$out/build.log" 2>&1
  echo "build exit $? at $SECONDS s"
  tail -3 "$out/build.log"
fi
patlab=build-gpu/tools/patlab
{ nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv; date -u; ncu --version | tail -1
  $patlab --version 2>&1 | head -1; } >> "$out/env.txt"
cat "$out/env.txt"

# 2. GPU tests
if has 2; then
  # shellcheck disable=SC2086
  PATLAB_REQUIRE_GPU=1 timeout "$(cap 300)" meson test -C build-gpu ${TESTS:---suite gpu} --num-processes 4 \
    --print-errorlogs > "$out/tests.log" 2>&1
  echo "tests exit $? at $SECONDS s"
  grep -E "^ *[0-9]+/[0-9]+ |^(Ok|Fail|Skipped|Timeout):" "$out/tests.log"
fi

# 3. FSA against NSA, two rings in turn
if has 3; then
  IFS='|' read -r -a variants <<< "${VARIANTS:---span-stages 0|--span-stages 2|--span-stages 3}"
  small="--tree 1,16_4096,256 --heads"
  large="--tree 1,64_16384,512 --heads"
  IFS='|' read -r -a sws <<< "${SPARSE_WORKLOADS:-$small 8/8|$small 16/8|$small 32/8|$large 8/8|$large 32/8}"
  for w in "${sws[@]}"; do
    for v in "${variants[@]}"; do
      (( $(left) < 30 )) && { echo "stopped for time before $w $v" >> "$out/sparse.log"; break 2; }
      name="sparse-$(slug "$v")-$(slug "$w")"
      # shellcheck disable=SC2086
      timeout "$(cap 60)" $patlab sparse $w --method fsa $v --quiet --format json > "$out/$name.json" 2> "$out/$name.err"
      echo "exit $? at $SECONDS s: $w $v" >> "$out/sparse.log"
    done
  done
  cat "$out/sparse.log"
fi

# 4. Nsight Compute: every launch's duration
if has 4; then
  n=0
  IFS='|' read -r -a ws <<< "${NCU_WORKLOADS:---tree 1,64_16384,512 --heads 8/8|--tree 1,64_16384,512 --heads 32/8}"
  for w in "${ws[@]}"; do
    n=$((n + 1))
    (( $(left) < 60 )) && { echo "stopped for time before ncu $n"; break; }
    # shellcheck disable=SC2086
    timeout "$(cap 150)" ncu --csv --clock-control none --kernel-name-base function \
      --metrics gpu__time_duration.sum,launch__grid_size $patlab sparse $w --method fsa --repeats 20 --warmup 1 --quiet \
      > "$out/ncu-w$n.csv" 2> "$out/ncu-w$n.err"
    echo "ncu exit $? at $SECONDS s: $w" | tee -a "$out/ncu.txt"
  done
fi

# 5. compute-sanitizer on FSA's order
if has 5; then
  for tool in ${SAN_TOOLS:-memcheck racecheck synccheck}; do
    for w in "--tree 1,4_300,100 --heads 8/2 --head-dim 64 --clamp" "--tree 1,12_700,130 --heads 16/4 --top-n 8 --window 128"; do
      (( $(left) < 30 )) && { echo "stopped for time before $tool $w"; break 2; }
      timeout "$(cap 120)" compute-sanitizer --tool "$tool" --error-exitcode 9 $patlab sparse $w --method fsa \
        --repeats 20 --warmup 0 --quiet --format json > "$out/san-$tool-$(slug "$w").json" 2>> "$out/sanitize.log"
      echo "$tool exit $? at $SECONDS s: $w" | tee -a "$out/sanitize.log"
    done
  done
  grep -E "ERROR SUMMARY|RACECHECK SUMMARY|exit" "$out/sanitize.log"
fi
