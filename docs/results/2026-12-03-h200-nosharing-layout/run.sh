#!/usr/bin/env bash
# Where stage 7 loses read bandwidth to cuDNN's SDPA on no-sharing batches, and the fork/join a
# one-bucket plan paid, in H200 calls (steps chosen by STEPS, default "1 2 3 4 5 6"):
#  1. build this tree into build-gpu (a warm machine keeps it; skipped when build-gpu holds only a
#     carried tools/patlab.xz, built on the workstation from the same commit: then that is unpacked);
#  2. layout: stage 7 (pat) on the same bytes in two layouts of a KV head's tokens (32/8 heads: a
#     head's 256 B per token strided by Hkv x 256 B in the [blocks, page, Hkv, D] pool; 4/1: a
#     head's tokens contiguous within a page), shuffled and in-order block ids, pages 16 and 64;
#  3. A/B of the one-bucket fork skip: BINARIES (default "patlab-824cf71 patlab": build-ab/NAME.xz
#     unpacked, or this tree's build) in turn on one-bucket and multi-bucket plans, eager and graph;
#  4. Nsight Compute (speed of light, memory workload) on stage 7's pack kernel, 16_32768 at 32/8
#     against 128_32768 at 4/1;
#  5. cuDNN's SDPA (tools/peers/suite.py, torch is on the GPU machine) on cudnn.txt;
#  6. compute-sanitizer on stage 9 (SAN_STAGES, default cluster) over tiny and three small
#     workloads (SAN_TOOLS, default racecheck);
#  7. the GPU tests of stage 9 and the Hopper primitives (TESTS replaces them; PATLAB_REQUIRE_GPU=1:
#     a skip fails);
#  8. A/B of stage 9's solo hand-off (BINARIES as in step 3) on batches of many solo items (and
#     two shared-prefix trees for stage 8's producer, which the same binaries time);
#  9. stage 7 with the default flush (writes) and with --clean-l2 (writes, then a read pass), the
#     fp16 and fp8 twins of 16_8192 and 32_16384;
# 10. A/B of the pack kernel's ring (BINARIES as in step 3) on no-sharing and sharing batches,
#     stages 4 (packed) and 7 (pat).
# Step 5 reads CUDNN_LIST (default cudnn.txt in this folder).
# Everything lands in OUT/layout.tar.gz. No step starts after SECONDS (default 560).
#   docs/results/2026-12-03-h200-nosharing-layout/run.sh OUT [SECONDS]
set -uo pipefail
final=$1
budget=${2:-560}
here=$(cd "$(dirname "$0")" && pwd)
cd "$here/../../.."
out=/tmp/layout
steps=${STEPS:-1 2 3 4 5 6}
mkdir -p "$out" "$final"
trap 'tar -C /tmp -czf "$final/layout.tar.gz" layout' EXIT
export PATH=/usr/local/cuda/bin:$PATH
left() { echo $(( budget - SECONDS )); }
cap() { local l; l=$(left); echo $(( l > $1 ? $1 : (l > 1 ? l : 1) )); }
has() { [[ " $steps " == *" $1 "* ]]; }
commit=${PATLAB_COMMIT:-unknown}

# shellcheck source=tools/nvcc_env.sh
source tools/nvcc_env.sh
if [[ -e build-gpu/tools/patlab.xz && ! -d build-gpu/meson-info ]]; then
  xz -dc build-gpu/tools/patlab.xz > build-gpu/tools/patlab && chmod +x build-gpu/tools/patlab
  echo "carried binary unpacked"
elif has 1; then
  # shellcheck disable=SC2046
  { [[ -d build-gpu ]] || meson setup build-gpu $(nvcc_native_file build-gpu) --buildtype=release -Dgpu_arch=90 \
      -Ddocs=disabled -Dcommit="$commit"; ninja -C build-gpu; } >> "$out/build.log" 2>&1
  echo "build exit $? at $SECONDS s"
fi
patlab=build-gpu/tools/patlab
{ nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv; date -u; ncu --version | tail -1
  $patlab --version 2>&1 | head -1; } >> "$out/env.txt"
cat "$out/env.txt"
mkdir -p /tmp/ab  # the A binaries of steps 3 and 8
for f in build-ab/*.xz; do [[ -e $f ]] && xz -dc "$f" > "/tmp/ab/$(basename "$f" .xz)" && chmod +x "/tmp/ab/$(basename "$f" .xz)"; done

bench() {  # NAME BINARY ARGS...: one patlab bench, jsonl into OUT/NAME.jsonl
  local name=$1 bin=$2; shift 2
  if (( $(left) < ${RESERVE:-40} )); then echo "stopped for time before $name" >> "$out/bench.log"; return; fi
  timeout "$(cap 90)" "$bin" bench "$@" --repeats 20 --no-check --format jsonl > "$out/$name.jsonl" 2> "$out/$name.err"
  echo "exit $? at $SECONDS s: $name: $*" >> "$out/bench.log"
}

# 2. layouts
if has 2; then
  n=0
  for w in "--tree 16_32768 --heads 32/8" "--tree 128_32768 --heads 4/1" \
           "--tree 100_12000 --heads 32/8" "--tree 800_12000 --heads 4/1"; do
    n=$((n + 1))
    for v in "" "--no-shuffle" "--page 64"; do
      # shellcheck disable=SC2086
      bench "layout-w$n$(echo "$v" | tr -d ' -')" $patlab $w $v --stage pat --no-graph
    done
  done
fi

# 3. fork skip, A/B
if has 3; then
  n=0
  for w in "--tree 16_8192 --heads 32/8" "--tree 16_8192 --heads 32/8 --kv-dtype fp8" \
           "--tree 16_8192 --model gemma-2-9b --kv-dtype fp8" "--tree 48_8192 --heads 32/8" \
           "--tree 4,256_8192,512 --heads 32/8" "--tree 1,128_16384,256 --model qwen2.5-7b"; do
    n=$((n + 1))
    for b in ${BINARIES:-patlab-824cf71 patlab}; do
      bin=$patlab
      [[ $b != patlab ]] && bin=/tmp/ab/$b
      # shellcheck disable=SC2086
      bench "fork-w$n-$b" "$bin" $w --stage pat hopper
    done
  done
fi
cat "$out/bench.log" 2>/dev/null

# 4. Nsight Compute
if has 4; then
  n=0
  for w in "--tree 16_32768 --heads 32/8" "--tree 128_32768 --heads 4/1"; do
    n=$((n + 1))
    if (( $(left) < 60 )); then echo "ncu stopped for time before $w"; break; fi
    # shellcheck disable=SC2086
    timeout "$(cap 75)" ncu --clock-control none --section SpeedOfLight --section MemoryWorkloadAnalysis \
      --section LaunchStats --section Occupancy -k regex:pack_attention --launch-skip 2 --launch-count 1 \
      $patlab bench $w --stage pat --no-check --repeats 20 --warmup 1 --no-graph > "$out/ncu-w$n.txt" 2>&1
    echo "ncu w$n exit $? at $SECONDS s"
  done
fi

# 5. cuDNN on the same bytes in both layouts
if has 5 && (( $(left) > 90 )); then
  timeout "$(cap 240)" python3 tools/peers/suite.py --patlab "$patlab" --out "$out/cudnn" --suite "$here/${CUDNN_LIST:-cudnn.txt}" \
    --repeats 20 --peers sdpa-cudnn --budget "$(( $(left) - 20 ))" > "$out/cudnn.log" 2>&1
  echo "cudnn exit $? at $SECONDS s"
  grep -E "^best patlab" "$out/cudnn.log"
fi

# 6. racecheck on stage 9
if has 6 && (( $(left) > 60 )); then
  SANITIZE_STAGES=${SAN_STAGES:-cluster} SANITIZE_TOOLS=${SAN_TOOLS:-racecheck} \
    SANITIZE_WORKLOADS="tiny|--tree 12_333 --heads 16/4|--tree 1,40_300,17 --heads 32/4|--tree 64_300 --heads 8/1" \
    timeout "$(cap 150)" tools/sanitize.sh build-gpu > "$out/sanitize.log" 2>&1
  echo "sanitize exit $? at $SECONDS s"
  grep -h -E "^(memcheck|racecheck|synccheck) |sanitize:" "$out"/sanitize.log
fi

# 7. GPU tests
if has 7; then
  # shellcheck disable=SC2086
  PATLAB_REQUIRE_GPU=1 timeout "$(cap 240)" meson test -C build-gpu ${TESTS:-gpu_09_cluster gpu_hopper_primitives} \
    --num-processes 2 --print-errorlogs > "$out/tests.log" 2>&1
  echo "tests exit $? at $SECONDS s"
  grep -E "^ *[0-9]+/[0-9]+ |^(Ok|Fail|Skipped|Timeout):" "$out/tests.log"
fi

# 8. stage 9's solo hand-off, A/B
if has 8; then
  n=0
  for w in "--tree 64_300 --heads 8/1" "--tree 1,128_16384,256 --model qwen2.5-7b" \
           "--random-tree 7 --random-requests 48 --random-depth 6 --heads 32/8" "--tree 128_2048 --heads 32/8" \
           "--tree 1,1024_2048,32 --heads 64/8" "--tree 4,256_8192,512 --heads 32/8"; do
    n=$((n + 1))
    for b in ${BINARIES:-patlab-824cf71 patlab}; do
      bin=$patlab
      [[ $b != patlab ]] && bin=/tmp/ab/$b
      # shellcheck disable=SC2086
      bench "solo-w$n-$b" "$bin" $w --stage hopper cluster
    done
  done
  cat "$out/bench.log"
fi

# 9. the flush's dirty lines
if has 9; then
  n=0
  for w in "--tree 16_8192 --heads 32/8" "--tree 32_16384 --heads 32/8"; do
    n=$((n + 1))
    for kv in auto fp8; do
      for l2 in "" "--clean-l2"; do
        # shellcheck disable=SC2086
        bench "l2-w$n-$kv$(echo "$l2" | tr -d ' -')" $patlab $w --kv-dtype $kv $l2 --stage pat --no-graph
      done
    done
  done
  cat "$out/bench.log"
fi

# 10. the pack kernel's ring, A/B
if has 10; then
  n=0
  for w in "--tree 16_32768 --heads 32/8" "--tree 8_32768 --heads 64/8" "--tree 100_12000 --heads 32/8" \
           "--tree 16_8192 --heads 32/8" "--tree 64_16384 --heads 32/8" "--tree 16_8192 --model gemma-2-9b" \
           "--hetero 5 --hetero-requests 128 --heads 32/8" "--tree 4,256_8192,512 --heads 32/8" \
           "--tree 16_8192 --heads 32/8 --kv-dtype fp8"; do
    n=$((n + 1))
    for b in ${BINARIES:-patlab-2ba06cc patlab}; do
      bin=$patlab
      [[ $b != patlab ]] && bin=/tmp/ab/$b
      # shellcheck disable=SC2086
      bench "ring-w$n-$b" "$bin" $w --stage packed pat --no-graph
    done
  done
  cat "$out/bench.log"
fi
