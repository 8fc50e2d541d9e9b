#!/usr/bin/env bash
# The checks the pack loader (287e85c) and pool_slot (f7c64e6) still owed, and fp8 against fp16
# on the large batches, in H200 calls (steps chosen by STEPS):
#  1. build this tree into build-gpu (a warm machine keeps it: then ninja has nothing to do);
#  2. every GPU test (PATLAB_REQUIRE_GPU=1: a skip fails; TESTS="name ...": those only), four at a time;
#  3. patlab bench of stages packed, pat and packinfer (TWIN_STAGES) on the fp8 / fp16 twins
#     below, --no-check (step 2 checked every stage on its grids), --no-graph, 20 timed runs, cold
#     L2; with BINARIES, each twin by each binary in turn (A/B in one call; AUTO_BINARIES: those
#     that run the fp16 twin, where the code did not change);
#  4. compute-sanitizer memcheck, racecheck and synccheck on the stages whose code changed:
#     naive, gqa, splitkv (pool_slot), pat and packinfer (the loader), one fp8 and two 16-bit
#     workloads (SAN_STAGES and SAN_WORKLOADS, '|'-separated, replace them);
#  5. Nsight Compute (speed of light, warp states, instruction counts, launch, occupancy) on
#     stage 7's kernel, --tree 16_8192 --heads 32/8, fp8 and fp16;
#  6. the long no-sharing batches (../2026-12-02-h200-stage7-baseline/nosharing.txt) through
#     tools/peers/suite.py with the peer sdpa-cudnn (torch is on the GPU machine; FlashInfer is not
#     carried in this run).
# Everything lands in OUT/checks.tar.gz. No step starts after SECONDS (default 560).
#   docs/results/2026-12-03-h200-loader-checks/run.sh OUT [SECONDS]
# STEPS="1 3" runs only those steps (1 is needed by the others on a fresh machine); PICK="1 2"
# runs those twins of step 3 only.
set -uo pipefail
final=$1
budget=${2:-560}
here=$(cd "$(dirname "$0")" && pwd)
cd "$here/../../.."
out=/tmp/checks
steps=${STEPS:-1 2 4 5}
mkdir -p "$out" "$final"
trap 'tar -C /tmp -czf "$final/checks.tar.gz" checks' EXIT
export PATH=/usr/local/cuda/bin:$PATH
left() { echo $(( budget - SECONDS )); }
cap() { local l; l=$(left); echo $(( l > $1 ? $1 : (l > 1 ? l : 1) )); }
has() { [[ " $steps " == *" $1 "* ]]; }
commit=${PATLAB_COMMIT:-unknown}

# 1. build
# shellcheck source=tools/nvcc_env.sh
source tools/nvcc_env.sh
if has 1; then
  # shellcheck disable=SC2046
  { [[ -d build-gpu ]] || meson setup build-gpu $(nvcc_native_file build-gpu) --buildtype=release -Dgpu_arch=90 \
      -Ddocs=disabled -Dcommit="$commit"; ninja -C build-gpu; } >> "$out/build.log" 2>&1
  echo "build exit $? at $SECONDS s"
fi
patlab=build-gpu/tools/patlab
{ nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv; date -u; ncu --version | tail -1
  $patlab --version 2>&1 | head -1; } >> "$out/env.txt"
cat "$out/env.txt"

# 2. tests
if has 2; then
  # shellcheck disable=SC2086
  PATLAB_REQUIRE_GPU=1 timeout "$(cap 240)" meson test -C build-gpu ${TESTS:---suite gpu} --num-processes 4 --print-errorlogs \
    > "$out/tests.log" 2>&1
  echo "tests exit $? at $SECONDS s"
  grep -E "^ *[0-9]+/[0-9]+ |^(Ok|Fail|Skipped|Timeout):" "$out/tests.log"
fi

# 3. fp8 / fp16 twins (the fp16 one of each pair first)
twins=(
  "--tree 16_8192 --heads 32/8"
  "--tree 32_16384 --heads 32/8"
  "--tree 64_16384 --heads 32/8"
  "--tree 100_12000 --heads 32/8"
  "--tree 24_16384 --heads 64/8"
  "--tree 4,256_8192,512 --heads 32/8"
  "--hetero 5 --hetero-requests 128 --heads 32/8"
  "--tree 16_8192 --model gemma-2-9b"
  "--tree 32_16384 --model gemma-2-9b"
  "--tree 64_4096 --model gemma-2-9b"
  "--tree 4,64_4096,256 --model gemma-2-9b"
)
# BINARIES="patlab-388d914 patlab": each twin by each binary in turn (build-ab/NAME.xz unpacked,
# or `patlab`: this tree's build), into OUT/NAME/; unset: this tree's build, into OUT/.
if has 3; then
  mkdir -p /tmp/ab
  for f in build-ab/*.xz; do [[ -e $f ]] && xz -dc "$f" > "/tmp/ab/$(basename "$f" .xz)" && chmod +x "/tmp/ab/$(basename "$f" .xz)"; done
  n=0
  for w in "${twins[@]}"; do
    n=$((n + 1))
    [[ -n ${PICK:-} && " $PICK " != *" $n "* ]] && continue
    for kv in auto fp8; do
      bins=${BINARIES:--}
      [[ $kv == auto ]] && bins=${AUTO_BINARIES:-$bins}
      for b in $bins; do
        if (( $(left) < ${RESERVE:-40} )); then echo "stopped for time before: t$n $kv $b $w" >> "$out/bench.log"; break 3; fi
        bin=$patlab dir=$out
        [[ $b != - ]] && dir=$out/$b && mkdir -p "$dir"
        [[ $b != - && $b != patlab ]] && bin=/tmp/ab/$b
        # shellcheck disable=SC2086
        timeout "$(cap 90)" "$bin" bench $w --kv-dtype $kv --stage ${TWIN_STAGES:-packed pat packinfer} --repeats 20 \
          --no-graph --no-check --format jsonl > "$dir/bench-t$n-$kv.jsonl" 2> "$dir/bench-t$n-$kv.err"
        echo "exit $? at $SECONDS s: t$n $kv $b: $w" >> "$out/bench.log"
      done
    done
  done
  cat "$out/bench.log"
fi

# 4. sanitizers
if has 4 && (( $(left) > 60 )); then
  SANITIZE_STAGES=${SAN_STAGES:-naive gqa splitkv pat packinfer} \
    SANITIZE_WORKLOADS=${SAN_WORKLOADS:-tiny --kv-dtype fp8|--tree 1,40_300,17 --heads 32/4|--tree 1,3,6_40,17,9 --heads 4/4 --dtype bf16 --page 32} \
    timeout "$(cap 150)" tools/sanitize.sh build-gpu > "$out/sanitize.log" 2>&1
  echo "sanitize exit $? at $SECONDS s"
  grep -h -E "^(memcheck|racecheck|synccheck) |sanitize:" "$out"/sanitize.log
fi

# 5. Nsight Compute
if has 5; then
  for kv in fp8 auto; do
    if (( $(left) < 25 )); then echo "ncu stopped for time before $kv"; break; fi
    timeout "$(cap 45)" ncu --clock-control none --section LaunchStats --section Occupancy --section SpeedOfLight \
      --section WarpStateStats --section InstructionStats -k regex:pack_attention \
      --launch-skip 2 --launch-count 1 $patlab bench --tree 16_8192 --heads 32/8 --kv-dtype $kv --stage pat --no-check \
      --repeats 20 --warmup 1 --no-graph > "$out/ncu-$kv.txt" 2>&1
    echo "ncu $kv exit $? at $SECONDS s"
  done
fi

# 6. no-sharing batches against cuDNN's SDPA
if has 6 && (( $(left) > 60 )); then
  timeout "$(cap 480)" python3 tools/peers/suite.py --patlab "$patlab" --out "$out/nosharing" \
    --suite "$here/../2026-12-02-h200-stage7-baseline/nosharing.txt" --repeats 20 --peers sdpa-cudnn \
    --budget "$(( $(left) - 20 ))" > "$out/nosharing.log" 2>&1
  echo "nosharing exit $? at $SECONDS s"
  grep -E "^best patlab" "$out/nosharing.log"
fi
