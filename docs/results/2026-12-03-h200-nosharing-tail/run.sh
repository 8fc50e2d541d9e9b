#!/usr/bin/env bash
# Where stage 7's pack kernel loses the last 5% of read bandwidth to cuDNN's SDPA on long
# no-sharing batches (issue 11), in H200 calls (steps chosen by STEPS, default "2 3 4 5"):
#  1. build this tree into build-gpu (a warm machine keeps it);
#  2. stage 7 (pat) with each binary of BINARIES (default "patlab-p0 patlab-p128 patlab-p256":
#     build-ab/NAME.xz, carried, built from one commit with -DPATLAB_KV_L2_PREFETCH=0/128/256;
#     "patlab" is build-gpu's) in turn on WORKLOADS ('|'-separated), eager and graph, then the
#     first binary with each of EXTRA ('|'-separated options, default --max-kv-tile 32; none: no
#     extra runs);
#  3. Nsight Compute on the pack kernel of the first binary (and of the second with NCU_SECOND=1)
#     on the first NCU_W workloads (default 3), with each of NCU_OPTS ('|'-separated options,
#     default none): duration, DRAM throughput and bytes, SM active cycles min / avg / max against
#     the elapsed cycles (how much of the kernel the SMs idle: its tail), L2 sectors;
#  4. Nsight Compute, the same metrics and launch statistics, on cuDNN's SDPA
#     (tools/peers/run_peers.py --peers sdpa-cudnn; torch is on the GPU machine) over NCU_PEER_W
#     ('|'-separated, default the second workload);
#  5. cuDNN's SDPA timed on WORKLOADS (tools/peers/suite.py --no-patlab), after the benches of
#     step 2 in the same call: the ratios;
#  6. every GPU test (meson's gpu suite, PATLAB_REQUIRE_GPU=1: a skip fails; TESTS picks tests);
#  7. Nsight Compute's duration of every kernel of stage 7's bench on WORKLOADS (the pack kernel,
#     the merge, and the L2 flush between timed runs).
# Everything lands in OUT/tail.tar.gz. No step starts after SECONDS (default 560).
#   PATLAB_COMMIT=<hash> docs/results/2026-12-03-h200-nosharing-tail/run.sh OUT [SECONDS]
set -uo pipefail
final=$1
budget=${2:-560}
here=$(cd "$(dirname "$0")" && pwd)
cd "$here/../../.." || exit 1
out=/tmp/tail
steps=${STEPS:-2 3 4 5}
mkdir -p "$out" "$final"
trap 'tar -C /tmp -czf "$final/tail.tar.gz" tail' EXIT
export PATH=/usr/local/cuda/bin:$PATH
left() { echo $(( budget - SECONDS )); }
cap() { local l; l=$(left); echo $(( l > $1 ? $1 : (l > 1 ? l : 1) )); }
has() { [[ " $steps " == *" $1 "* ]]; }
commit=${PATLAB_COMMIT:-unknown}
slug() { echo "$1" | tr -c 'a-z0-9' '_' | tr -s '_'; }
default_w="--tree 16_32768 --heads 32/8|--tree 8_32768 --heads 64/8|--tree 100_12000 --heads 32/8"
default_w+="|--tree 32_16384 --heads 32/8|--tree 128_8192 --heads 32/8"
IFS='|' read -r -a workloads <<< "${WORKLOADS:-$default_w}"
read -r -a binaries <<< "${BINARIES:-patlab-p0 patlab-p128 patlab-p256}"
IFS='|' read -r -a extras <<< "${EXTRA:---max-kv-tile 32}"
[[ ${EXTRA:-} != none ]] || extras=()
IFS='|' read -r -a ncu_opts <<< "${NCU_OPTS:-}"
[[ ${#ncu_opts[@]} -gt 0 ]] || ncu_opts=("")

# shellcheck source=tools/nvcc_env.sh
source tools/nvcc_env.sh
if has 1; then
  # shellcheck disable=SC2046
  { [[ -d build-gpu/meson-info ]] || meson setup build-gpu $(nvcc_native_file build-gpu) --buildtype=release \
      -Dgpu_arch=90 -Ddocs=disabled -Dcommit="$commit"; ninja -C build-gpu; } >> "$out/build.log" 2>&1
  echo "build exit $? at $SECONDS s"
  tail -3 "$out/build.log"
fi
mkdir -p /tmp/ab
for f in build-ab/*.xz; do [[ -e $f ]] && xz -dc "$f" > "/tmp/ab/$(basename "$f" .xz)" && chmod +x "/tmp/ab/$(basename "$f" .xz)"; done
bin() { if [[ $1 == patlab ]]; then echo build-gpu/tools/patlab; else echo "/tmp/ab/$1"; fi; }
{ nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv; date -u; ncu --version | tail -1
  for b in "${binaries[@]}"; do echo "$b: $("$(bin "$b")" --version 2>&1 | head -1)"; done; } >> "$out/env.txt"
cat "$out/env.txt"

bench() {  # NAME BINARY ARGS...: one patlab bench of stage 7, jsonl into OUT/NAME.jsonl
  local name=$1 b=$2; shift 2
  if (( $(left) < ${RESERVE:-40} )); then echo "stopped for time before $name" >> "$out/bench.log"; return; fi
  timeout "$(cap 90)" "$b" bench "$@" --stage pat --repeats 20 --no-check --format jsonl > "$out/$name.jsonl" 2> "$out/$name.err"
  echo "exit $? at $SECONDS s: $name: $*" >> "$out/bench.log"
}

# 2. the binaries in turn, then the extra options
if has 2; then
  for w in "${workloads[@]}"; do
    for b in "${binaries[@]}"; do
      # shellcheck disable=SC2086
      bench "w-$(slug "$w")-$b" "$(bin "$b")" $w
    done
    for x in "${extras[@]}"; do
      # shellcheck disable=SC2086
      bench "w-$(slug "$w")-$(slug "$x")" "$(bin "${binaries[0]}")" $w $x
    done
  done
  tail -n 40 "$out/bench.log"
fi

metrics=gpu__time_duration.sum,dram__throughput.avg.pct_of_peak_sustained_elapsed,dram__bytes_read.sum
metrics+=,dram__bytes_write.sum,sm__cycles_active.min,sm__cycles_active.avg,sm__cycles_active.max
metrics+=,sm__cycles_elapsed.max,lts__t_sectors_srcunit_tex_op_read.sum,lts__t_sector_hit_rate.pct
metrics+=,launch__grid_size,launch__block_size,launch__registers_per_thread,launch__occupancy_limit_shared_mem
metrics+=,launch__occupancy_limit_registers,sm__warps_active.avg.pct_of_peak_sustained_active

# 3. Nsight Compute on the pack kernel
if has 3; then
  n=0
  for w in "${workloads[@]}"; do
    n=$((n + 1))
    for b in "${binaries[0]}" ${NCU_SECOND:+"${binaries[1]}"}; do
      for x in "${ncu_opts[@]}"; do
        if (( $(left) < 60 )); then echo "ncu stopped for time before $w"; break 3; fi
        # shellcheck disable=SC2086
        timeout "$(cap 75)" ncu --clock-control none --metrics "$metrics" -k regex:pack_attention --launch-skip 2 \
          --launch-count 1 "$(bin "$b")" bench $w $x --stage pat --no-check --repeats 20 --warmup 1 --no-graph \
          > "$out/ncu-w$n-$b$(slug "$x").txt" 2>&1
        echo "ncu w$n $b $x exit $? at $SECONDS s"
      done
    done
    [[ $n -lt ${NCU_W:-3} ]] || break
  done
fi

# 4. Nsight Compute on cuDNN's SDPA
if has 4; then
  IFS='|' read -r -a peer_ws <<< "${NCU_PEER_W:-${workloads[1]}}"
  n=0
  for w in "${peer_ws[@]}"; do
    n=$((n + 1))
    if (( $(left) < 90 )); then echo "ncu cudnn stopped for time before $w"; break; fi
    exp=/tmp/tail-export
    # shellcheck disable=SC2086
    "$(bin "${binaries[0]}")" export $w --out "$exp" --quiet > "$out/export-$n.log" 2>&1
    echo "export $n exit $? at $SECONDS s"
    timeout "$(cap 150)" ncu --clock-control none --metrics "$metrics" --target-processes all --launch-count 30 \
      python3 tools/peers/run_peers.py "$exp" --out "$out/peer-cudnn-$n.json" --peers sdpa-cudnn --warmup 1 \
      --repeats 20 > "$out/ncu-cudnn-$n.txt" 2>&1
    echo "ncu cudnn $n ($w) exit $? at $SECONDS s"
    rm -rf "$exp"
  done
fi

# 5. cuDNN timed
if has 5 && (( $(left) > 90 )); then
  printf '%s\n' "${workloads[@]}" > "$out/cudnn-list.txt"
  timeout "$(cap 300)" python3 tools/peers/suite.py --patlab "$(bin "${binaries[0]}")" --no-patlab --out "$out/cudnn" \
    --suite "$out/cudnn-list.txt" \
    --repeats 20 --peers sdpa-cudnn --budget "$(( $(left) - 20 ))" > "$out/cudnn.log" 2>&1
  echo "cudnn exit $? at $SECONDS s"
  grep -E "sdpa-cudnn" "$out/cudnn.log"
fi

# 7. every kernel of stage 7's bench timed by Nsight Compute (pack kernel, merge; the flushes)
if has 7; then
  n=0
  for w in "${workloads[@]}"; do
    n=$((n + 1))
    if (( $(left) < 60 )); then echo "ncu durations stopped for time before $w"; break; fi
    # shellcheck disable=SC2086
    timeout "$(cap 90)" ncu --clock-control none --metrics gpu__time_duration.sum --csv --launch-count 24 \
      "$(bin "${binaries[0]}")" bench $w --stage pat --no-check --repeats 20 --warmup 1 --no-graph \
      > "$out/ncu-durations-w$n.csv" 2>&1
    echo "ncu durations w$n exit $? at $SECONDS s"
  done
fi

# 6. GPU tests
if has 6; then
  # shellcheck disable=SC2086
  PATLAB_REQUIRE_GPU=1 timeout "$(cap 300)" meson test -C build-gpu ${TESTS:---suite gpu} --num-processes 4 \
    --print-errorlogs > "$out/tests.log" 2>&1
  echo "tests exit $? at $SECONDS s"
  grep -E "^ *[0-9]+/[0-9]+ |^(Ok|Fail|Skipped|Timeout):" "$out/tests.log"
fi
