#!/usr/bin/env bash
# The pack kernel's leaner K/V loader, measured in H200 calls (steps chosen by STEPS):
#  1. build this tree into build-gpu;
#  2. every GPU test (PATLAB_REQUIRE_GPU=1: a skip fails), four at a time;
#  3. patlab bench of stages packed, pat, hopper and packinfer on each workload below, the
#     binaries of BINARIES in turn (default: patlab-e34f5b2, the commit before, carried in
#     build-ab/ as xz; patlab, this tree); --no-check (step 2 checked every stage on its grids),
#     --no-graph, 20 timed runs, cold L2;
#  4. compute-sanitizer memcheck, racecheck and synccheck on stages 7 (pat) and 10 (packinfer),
#     one fp8 and one 16-bit workload;
#  5. Nsight Compute (speed of light, warp states, instruction counts) on stage 7's kernel of
#     both binaries, --tree 16_8192 --heads 32/8, fp8 and fp16;
#  6. the long no-sharing batches (../2026-12-02-h200-stage7-baseline/nosharing.txt) through
#     tools/peers/suite.py with the peer sdpa-cudnn (torch is on the GPU machine; FlashInfer is not
#     carried in this run).
# Everything lands in OUT/loader.tar.gz. No step starts after SECONDS (default 560).
#   docs/results/2026-12-03-h200-pack-loader/run.sh OUT [SECONDS]
# PICK="1 2 7" runs those workloads of step 3 only; STEPS="1 3" runs only those steps (1 is
# needed by the others on a fresh machine).
set -uo pipefail
final=$1
budget=${2:-560}
here=$(cd "$(dirname "$0")" && pwd)
cd "$here/../../.."
out=/tmp/loader
bin=/tmp/ab
steps=${STEPS:-1 2 3 4 5}
mkdir -p "$out" "$final" "$bin"
trap 'tar -C /tmp -czf "$final/loader.tar.gz" loader' EXIT
export PATH=/usr/local/cuda/bin:$PATH
left() { echo $(( budget - SECONDS )); }
cap() { local l; l=$(left); echo $(( l > $1 ? $1 : (l > 1 ? l : 1) )); }
has() { [[ " $steps " == *" $1 "* ]]; }
commit=${PATLAB_COMMIT:-unknown}
for f in build-ab/*.xz; do xz -dc "$f" > "$bin/$(basename "$f" .xz)" && chmod +x "$bin/$(basename "$f" .xz)"; done
binaries=${BINARIES:-patlab-e34f5b2 patlab}

# 1. build
# shellcheck source=tools/nvcc_env.sh
source tools/nvcc_env.sh
if has 1; then
  # shellcheck disable=SC2046
  { meson setup build-gpu $(nvcc_native_file build-gpu) --buildtype=release -Dgpu_arch=90 -Ddocs=disabled \
      -Dcommit="$commit" && ninja -C build-gpu; } > "$out/build.log" 2>&1
  echo "build exit $? at $SECONDS s"
fi
cp build-gpu/tools/patlab "$bin/patlab"
{ nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv; date -u; ncu --version | tail -1
  for p in "$bin"/patlab*; do echo "$(basename "$p"): $("$p" --version 2>&1 | head -1)"; done; } > "$out/env.txt"
cat "$out/env.txt"

# 2. tests
if has 2; then
  PATLAB_REQUIRE_GPU=1 timeout "$(cap 220)" meson test -C build-gpu --suite gpu --num-processes 4 --print-errorlogs \
    > "$out/tests.log" 2>&1
  echo "tests exit $? at $SECONDS s"
  grep -E "^ *[0-9]+/[0-9]+ |^(Ok|Fail|Skipped|Timeout):" "$out/tests.log"
fi

# 3. A/B
workloads=(
  "--tree 16_8192 --heads 32/8 --kv-dtype fp8"
  "--tree 16_8192 --heads 32/8"
  "--tree 4,256_8192,512 --heads 32/8 --kv-dtype fp8"
  "--tree 4,256_8192,512 --heads 32/8"
  "--hetero 5 --hetero-requests 128 --heads 32/8 --kv-dtype fp8"
  "--hetero 5 --hetero-requests 128 --heads 32/8"
  "--tree 64_16384 --heads 32/8"
  "--tree 100_12000 --heads 32/8"
  "--tree 24_16384 --heads 64/8"
  "--tree 256_1024 --heads 32/8"
  "--tree 1,128_16384,256 --heads 32/8"
  "--random-tree 7 --random-requests 48 --random-depth 6 --heads 32/8"
  "--tree 16_8192 --model gemma-2-9b"
  "--tree 64_16384 --heads 32/8 --kv-dtype fp8"
)
if has 3; then
  n=0
  for w in "${workloads[@]}"; do
    n=$((n + 1))
    [[ -n ${PICK:-} && " $PICK " != *" $n "* ]] && continue
    for b in $binaries; do
      if (( $(left) < ${RESERVE:-60} )); then echo "stopped for time before: w$n $b $w" >> "$out/bench.log"; break 2; fi
      # shellcheck disable=SC2086
      timeout "$(cap 60)" "$bin/$b" bench $w --stage packed pat hopper packinfer --repeats 20 --no-graph --no-check \
        --format jsonl > "$out/bench-w$n-$b.jsonl" 2> "$out/bench-w$n-$b.err"
      echo "exit $? at $SECONDS s: w$n $b: $w" >> "$out/bench.log"
    done
  done
  cat "$out/bench.log"
fi

# 4. sanitizers
if has 4 && (( $(left) > 60 )); then
  SANITIZE_STAGES="pat packinfer" \
    SANITIZE_WORKLOADS="tiny --kv-dtype fp8|--tree 1,40_300,17 --heads 32/4 --kv-dtype fp8|--tree 1,40_300,17 --heads 32/4" \
    timeout "$(cap 90)" tools/sanitize.sh build-gpu > "$out/sanitize.log" 2>&1
  echo "sanitize exit $? at $SECONDS s"
  grep -h -E "^(memcheck|racecheck|synccheck) |sanitize:" "$out"/sanitize.log
fi

# 5. Nsight Compute
if has 5; then
  for kv in --kv-dtype=fp8 --kv-dtype=auto; do
    for b in $binaries; do
      if (( $(left) < 25 )); then echo "ncu stopped for time before $b $kv"; break 2; fi
      timeout "$(cap 40)" ncu --clock-control none --section LaunchStats --section Occupancy --section SpeedOfLight \
        --section WarpStateStats --section InstructionStats -k regex:pack_attention \
        --launch-skip 2 --launch-count 1 "$bin/$b" bench --tree 16_8192 --heads 32/8 "$kv" --stage pat --no-check \
        --repeats 20 --warmup 1 --no-graph > "$out/ncu-$b${kv#--kv-dtype=}.txt" 2>&1
      echo "ncu $b $kv exit $? at $SECONDS s"
    done
  done
fi

# 6. no-sharing batches against cuDNN's SDPA
if has 6 && (( $(left) > 60 )); then
  timeout "$(cap 400)" python3 tools/peers/suite.py --patlab "$bin/patlab" --out "$out/nosharing" \
    --suite "$here/../2026-12-02-h200-stage7-baseline/nosharing.txt" --repeats 20 --peers sdpa-cudnn \
    --budget "$(( $(left) - 20 ))" > "$out/nosharing.log" 2>&1
  echo "nosharing exit $? at $SECONDS s"
  grep -E "^best patlab" "$out/nosharing.log"
fi
