#!/usr/bin/env bash
# Main's GPU tests and where FSA's loop order spends its time (issue 17), in H200 calls (steps
# chosen by STEPS, default "1 2 3 4"; step 5 on request):
#  1. build this tree into build-gpu (a warm machine keeps it);
#  2. every GPU test (meson's gpu suite, PATLAB_REQUIRE_GPU=1: a skip fails; TESTS picks tests);
#  3. Nsight Compute, one line per kernel launch (duration, DRAM, L2 hits, occupancy, grid), over
#     NCU_LAUNCHES (14) launches of the NCU_KERNELS (the pack kernel, the merge, the empty
#     partials) of `patlab sparse --method fsa --warmup 1 --repeats 20` after the first NCU_SKIP
#     (0) of them (NSA's order runs first, 43 pack launches, then the split's, then FSA's) with
#     NCU_BIN (this tree's build) on SPARSE_WORKLOADS (default: the small batch of chapter 22 at
#     groups 1 and 4);
#  4. patlab sparse --method fsa (NSA's and FSA's orders timed in one run) on the small batch at
#     groups 1, 2, 4 and the large one at groups 1 and 4, with BINARIES (default "patlab": this
#     tree's build; others: build-ab/NAME.xz) in turn.
#  5. FSA's span shape swept (SWEEP: '|'-separated options, default --span-blocks 0 2 3 4 6 8;
#     0: automatic) with SWEEP_BIN (this tree's build) on the large batch at groups 1 and 4 and
#     the small one at 4;
#  6. the sparse GPU test (TEST_BIN, default build-gpu/tests/test_sparse_gpu; PATLAB_REQUIRE_GPU=1),
#     then compute-sanitizer (SAN_TOOLS, default "memcheck racecheck synccheck") on `patlab sparse
#     --method fsa` (SAN_BIN, this tree's build) over two small shared-prefix workloads;
#  7. the merge of stages 3-7 A/B: patlab bench --stage splitkv pat on batches of few long
#     requests (many partials per query), MERGE_BINARIES (default "patlab-79a48e7 patlab") in turn.
# Everything lands in OUT/fsa.tar.gz. No step starts after SECONDS (default 560).
#   PATLAB_COMMIT=<hash> docs/results/2026-12-03-h200-fsa/run.sh OUT [SECONDS]
set -uo pipefail
final=$1
budget=${2:-560}
here=$(cd "$(dirname "$0")" && pwd)
cd "$here/../../.."
out=/tmp/fsa
steps=${STEPS:-1 2 3 4}
mkdir -p "$out" "$final"
trap 'tar -C /tmp -czf "$final/fsa.tar.gz" fsa' EXIT
export PATH=/usr/local/cuda/bin:$PATH
left() { echo $(( budget - SECONDS )); }
cap() { local l; l=$(left); echo $(( l > $1 ? $1 : (l > 1 ? l : 1) )); }
has() { [[ " $steps " == *" $1 "* ]]; }
commit=${PATLAB_COMMIT:-unknown}

# shellcheck source=tools/nvcc_env.sh
source tools/nvcc_env.sh
if has 1; then
  # shellcheck disable=SC2046
  { [[ -d build-gpu/meson-info ]] || meson setup build-gpu $(nvcc_native_file build-gpu) --buildtype=release \
      -Dgpu_arch=90 -Ddocs=disabled -Dcommit="$commit"; ninja -C build-gpu; } >> "$out/build.log" 2>&1
  echo "build exit $? at $SECONDS s"
fi
patlab=build-gpu/tools/patlab
{ nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv; date -u; ncu --version | tail -1
  $patlab --version 2>&1 | head -1; } >> "$out/env.txt"
cat "$out/env.txt"
mkdir -p /tmp/ab
for f in build-ab/*.xz; do [[ -e $f ]] && xz -dc "$f" > "/tmp/ab/$(basename "$f" .xz)" && chmod +x "/tmp/ab/$(basename "$f" .xz)"; done

# 2. GPU tests
if has 2; then
  # shellcheck disable=SC2086
  PATLAB_REQUIRE_GPU=1 timeout "$(cap 300)" meson test -C build-gpu ${TESTS:---suite gpu} --num-processes 4 \
    --print-errorlogs > "$out/tests.log" 2>&1
  echo "tests exit $? at $SECONDS s"
  grep -E "^ *[0-9]+/[0-9]+ |^(Ok|Fail|Skipped|Timeout):" "$out/tests.log"
fi

# 3. Nsight Compute on the sparse branch's launches
if has 3; then
  n=0
  IFS='|' read -r -a ws <<< "${SPARSE_WORKLOADS:---tree 1,16_4096,256 --heads 8/8|--tree 1,16_4096,256 --heads 32/8}"
  for w in "${ws[@]}"; do
    n=$((n + 1))
    (( $(left) < 60 )) && { echo "stopped for time before ncu $n"; break; }
    # shellcheck disable=SC2086
    timeout "$(cap 120)" ncu --clock-control none --kernel-name-base function --launch-skip "${NCU_SKIP:-0}" \
      --launch-count "${NCU_LAUNCHES:-14}" \
      --kernel-name "regex:${NCU_KERNELS:-pack_attention|merge_partials|empty_partials}" \
      --section SpeedOfLight --section Occupancy --section LaunchStats --section MemoryWorkloadAnalysis \
      "${NCU_BIN:-$patlab}" sparse $w --method fsa --repeats 20 --warmup 1 --quiet > "$out/ncu-w$n.log" 2>&1
    echo "ncu exit $? at $SECONDS s: $w" | tee -a "$out/ncu.txt"
    grep -E "^  [A-Za-z_].*\(|Duration|DRAM Throughput|L2 Hit Rate|Achieved Occupancy|Theoretical Occupancy|Registers Per|Grid Size|Block Size" \
      "$out/ncu-w$n.log" >> "$out/ncu.txt"
  done
fi

# 4. FSA against NSA, timed
if has 4; then
  for b in ${BINARIES:-patlab}; do
    bin=$patlab
    [[ $b != patlab ]] && bin=/tmp/ab/$b
    for w in "--tree 1,16_4096,256 --heads 8/8" "--tree 1,16_4096,256 --heads 16/8" "--tree 1,16_4096,256 --heads 32/8" \
             "--tree 1,64_16384,512 --heads 8/8" "--tree 1,64_16384,512 --heads 32/8"; do
      (( $(left) < 30 )) && { echo "stopped for time before $b $w" >> "$out/sparse.log"; break; }
      name="sparse-$b-$(echo "$w" | tr -c 'a-z0-9' '_' | tr -s '_')"
      # shellcheck disable=SC2086
      timeout "$(cap 60)" "$bin" sparse $w --method fsa --quiet --format json > "$out/$name.json" 2> "$out/$name.err"
      echo "exit $? at $SECONDS s: $b $w" >> "$out/sparse.log"
    done
  done
  cat "$out/sparse.log"
fi

# 5. FSA's span shape swept, binary SWEEP_BIN (default this tree's)
if has 5; then
  bin=${SWEEP_BIN:-$patlab}
  IFS='|' read -r -a variants <<< "${SWEEP:---span-blocks 0|--span-blocks 2|--span-blocks 3|--span-blocks 4|--span-blocks 6|--span-blocks 8}"
  for w in "--tree 1,64_16384,512 --heads 8/8" "--tree 1,64_16384,512 --heads 32/8" "--tree 1,16_4096,256 --heads 32/8"; do
    for v in "${variants[@]}"; do
      (( $(left) < 20 )) && { echo "stopped for time before $w $v" >> "$out/sweep.log"; break 2; }
      name="sweep-$(echo "$v" | tr -c 'a-z0-9' '_' | tr -s '_')-$(echo "$w" | tr -c 'a-z0-9' '_' | tr -s '_')"
      # shellcheck disable=SC2086
      timeout "$(cap 40)" "$bin" sparse $w --method fsa $v --quiet --format json > "$out/$name.json" 2> "$out/$name.err"
      echo "exit $? at $SECONDS s: $w $v" >> "$out/sweep.log"
    done
  done
  cat "$out/sweep.log"
fi

# 6. the sparse GPU test and compute-sanitizer on FSA's order
if has 6; then
  PATLAB_REQUIRE_GPU=1 timeout "$(cap 120)" "${TEST_BIN:-build-gpu/tests/test_sparse_gpu}" > "$out/test_sparse_gpu.log" 2>&1
  echo "test_sparse_gpu exit $? at $SECONDS s"
  tail -3 "$out/test_sparse_gpu.log"
  for tool in ${SAN_TOOLS:-memcheck racecheck synccheck}; do
    for w in "--tree 1,4_300,100 --heads 8/2 --head-dim 64 --clamp" "--tree 1,12_700,130 --heads 16/4 --top-n 8 --window 128"; do
      (( $(left) < 30 )) && { echo "stopped for time before $tool $w"; break 2; }
      timeout "$(cap 120)" compute-sanitizer --tool "$tool" --error-exitcode 9 "${SAN_BIN:-$patlab}" sparse $w --method fsa \
        --repeats 20 --warmup 0 --quiet --format json > "$out/san-$tool.json" 2>> "$out/sanitize.log"
      echo "$tool exit $? at $SECONDS s: $w" | tee -a "$out/sanitize.log"
    done
  done
  grep -E "ERROR SUMMARY|RACECHECK SUMMARY|exit" "$out/sanitize.log"
fi

# 7. stages 3 and 7 on batches that split into many partials, A/B of the merge
if has 7; then
  for w in "--tree 4_32768 --heads 32/8" "--tree 2_131072 --heads 8/8" "--tree 8_16384 --heads 32/8"; do
    for b in ${MERGE_BINARIES:-patlab-79a48e7 patlab}; do
      bin=$patlab
      [[ $b != patlab ]] && bin=/tmp/ab/$b
      (( $(left) < 30 )) && { echo "stopped for time before $b $w" >> "$out/merge.log"; break 2; }
      name="merge-$b-$(echo "$w" | tr -c 'a-z0-9' '_' | tr -s '_')"
      # shellcheck disable=SC2086
      timeout "$(cap 60)" "$bin" bench $w --stage splitkv pat --repeats 20 --format jsonl > "$out/$name.jsonl" 2> "$out/$name.err"
      echo "exit $? at $SECONDS s: $b $w" >> "$out/merge.log"
    done
  done
  cat "$out/merge.log"
fi
