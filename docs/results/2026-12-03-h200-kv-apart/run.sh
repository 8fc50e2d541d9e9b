#!/usr/bin/env bash
# K and V waited for apart in the pack kernel (PATLAB_KV_WAIT_APART, packed_tile.cuh) against the
# default, on the H200, in one call (steps chosen by STEPS, default "1 2 3 4 5"):
#  1. the GPU tests built with each binary's flags (build-ab/TEST-NAME.xz, where carried, for each
#     NAME of BINARIES and each TEST of TESTS, default "test_04_packed test_07_pat test_sparse_gpu"),
#     PATLAB_REQUIRE_GPU=1 (a skip fails);
#  2. stage 7 (pat) of each binary (build-ab/patlab-NAME.xz; BINARIES, default "base apart") in
#     turn on each workload of WORKLOADS ('|'-separated), with each of TILES ('|'-separated extra
#     options, default one empty entry: the planner's tiles), eager and graph, 20 repeats, cold L2;
#  3. Nsight Compute on the pack kernel of every binary on the first NCU_W workloads (default 1)
#     with NCU_OPTS (default --max-kv-tile 128): duration, DRAM throughput and bytes, registers;
#  4. cuDNN's SDPA timed on the first CUDNN_N workloads (default all; tools/peers/suite.py
#     --no-patlab), in the same call;
#  5. the binaries' versions and the device;
#  6. compute-sanitizer memcheck, racecheck and synccheck (tools/sanitize.sh) on stage 7 of the
#     last binary of BINARIES over SAN_WORKLOADS ('|'-separated; default an fp8, a 16-bit no-sharing
#     and a 16-bit shared-prefix workload).
# Everything lands in OUT/apart.tar.gz. No step starts after SECONDS (default 560).
#   docs/results/2026-12-03-h200-kv-apart/run.sh OUT [SECONDS]
set -uo pipefail
final=$1
budget=${2:-560}
here=$(cd "$(dirname "$0")" && pwd)
cd "$here/../../.." || exit 1
out=/tmp/apart
steps=${STEPS:-1 2 3 4 5 6}
mkdir -p "$out" "$final"
trap 'tar -C /tmp -czf "$final/apart.tar.gz" apart' EXIT
export PATH=/usr/local/cuda/bin:$PATH
left() { echo $(( budget - SECONDS )); }
cap() { local l; l=$(left); echo $(( l > $1 ? $1 : (l > 1 ? l : 1) )); }
has() { [[ " $steps " == *" $1 "* ]]; }
slug() { echo "$1" | tr -c 'a-z0-9' '_' | tr -s '_'; }
default_w="--tree 16_32768 --heads 32/8|--tree 8_32768 --heads 64/8|--tree 100_12000 --heads 32/8"
default_w+="|--tree 32_16384 --heads 32/8|--tree 128_8192 --heads 32/8|--tree 64_16384 --heads 32/8"
default_w+="|--tree 48_8192 --heads 32/8|--tree 24_16384 --heads 64/8"
IFS='|' read -r -a workloads <<< "${WORKLOADS:-$default_w}"
read -r -a binaries <<< "${BINARIES:-base apart}"
read -r -a tests <<< "${TESTS:-test_04_packed test_07_pat test_sparse_gpu}"
IFS='|' read -r -a tiles <<< "${TILES:-}"
[[ ${#tiles[@]} -gt 0 ]] || tiles=("")

mkdir -p /tmp/ab
for f in build-ab/*.xz; do [[ -e $f ]] && xz -dc "$f" > "/tmp/ab/$(basename "$f" .xz)" && chmod +x "/tmp/ab/$(basename "$f" .xz)"; done
if has 5; then
  { nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv; date -u; ncu --version | tail -1
    for b in "${binaries[@]}"; do echo "$b: $("/tmp/ab/patlab-$b" --version 2>&1 | head -1)"; done; } >> "$out/env.txt"
  cat "$out/env.txt"
fi

# 1. the tests of each binary's build
if has 1; then
  for b in "${binaries[@]}"; do
    for t in "${tests[@]}"; do
      [[ -x /tmp/ab/$t-$b ]] || continue
      if (( $(left) < 60 )); then echo "tests stopped for time before $t-$b"; break 2; fi
      PATLAB_REQUIRE_GPU=1 timeout "$(cap 150)" "/tmp/ab/$t-$b" > "$out/test-$t-$b.log" 2>&1
      echo "test $t-$b exit $? at $SECONDS s: $(grep -E 'test cases|cases passed' "$out/test-$t-$b.log" | tail -2 | tr '\n' ' ')"
    done
  done
fi

# 2. stage 7 of every binary, workload by workload
if has 2; then
  for w in "${workloads[@]}"; do
    for x in "${tiles[@]}"; do
      for b in "${binaries[@]}"; do
        name="w-$(slug "$w $x")-$b"
        if (( $(left) < ${RESERVE:-60} )); then echo "stopped for time before $name" >> "$out/bench.log"; continue; fi
        # shellcheck disable=SC2086
        timeout "$(cap 90)" "/tmp/ab/patlab-$b" bench $w $x --stage pat --repeats 20 --no-check --format jsonl \
          > "$out/$name.jsonl" 2> "$out/$name.err"
        echo "exit $? at $SECONDS s: $name: $w $x" >> "$out/bench.log"
      done
    done
  done
  tail -n 60 "$out/bench.log"
fi

# 3. Nsight Compute on the pack kernel
metrics=gpu__time_duration.sum,dram__throughput.avg.pct_of_peak_sustained_elapsed,dram__bytes_read.sum
metrics+=,launch__grid_size,launch__block_size,launch__registers_per_thread,launch__occupancy_limit_shared_mem
if has 3; then
  n=0
  for w in "${workloads[@]}"; do
    n=$((n + 1))
    for b in "${binaries[@]}"; do
      if (( $(left) < 60 )); then echo "ncu stopped for time before $w"; break 2; fi
      # shellcheck disable=SC2086
      timeout "$(cap 75)" ncu --clock-control none --metrics "$metrics" -k regex:pack_attention --launch-skip 2 \
        --launch-count 1 "/tmp/ab/patlab-$b" bench $w ${NCU_OPTS---max-kv-tile 128} --stage pat --no-check \
        --repeats 20 --warmup 1 --no-graph > "$out/ncu-w$n-$b.txt" 2>&1
      echo "ncu w$n $b exit $? at $SECONDS s"
    done
    [[ $n -lt ${NCU_W:-1} ]] || break
  done
fi

# 4. cuDNN timed
if has 4 && (( $(left) > 90 )); then
  printf '%s\n' "${workloads[@]:0:${CUDNN_N:-${#workloads[@]}}}" > "$out/cudnn-list.txt"
  timeout "$(cap 300)" python3 tools/peers/suite.py --patlab "/tmp/ab/patlab-${binaries[0]}" --no-patlab \
    --out "$out/cudnn" --suite "$out/cudnn-list.txt" --repeats 20 --peers sdpa-cudnn \
    --budget "$(( $(left) - 20 ))" > "$out/cudnn.log" 2>&1
  echo "cudnn exit $? at $SECONDS s"
  grep -E "sdpa-cudnn" "$out/cudnn.log"
fi

# 6. sanitizers on stage 7 of the last binary
if has 6 && (( $(left) > 60 )); then
  mkdir -p /tmp/san/tools && cp "/tmp/ab/patlab-${binaries[-1]}" /tmp/san/tools/patlab
  SANITIZE_STAGES=pat \
    SANITIZE_WORKLOADS=${SAN_WORKLOADS:-tiny --kv-dtype fp8|--tree 3_700 --heads 32/8|--tree 1,40_300,17 --heads 32/4} \
    timeout "$(cap 150)" tools/sanitize.sh /tmp/san > "$out/sanitize.log" 2>&1
  echo "sanitize exit $? at $SECONDS s"
  grep -h -E "^(memcheck|racecheck|synccheck) |sanitize:" "$out/sanitize.log"
fi
