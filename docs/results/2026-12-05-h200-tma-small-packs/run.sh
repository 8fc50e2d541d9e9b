#!/usr/bin/env bash
# One call, from a checkout with build-ab/patlab.xz, build-ab/test_hopper_primitives.xz and
# build-ab/test_08_hopper.xz built on the workstation (sm_90a). Steps (STEPS, default "1 2 3 4 5"):
#  1. test_hopper_primitives (an 8-bit pool map read through fp8_swizzled<128> among them), then
#     test_08_hopper (PATLAB_REQUIRE_GPU=1): every grid of stage 8 on its default loader
#     (cp.async) and, in one test case, the boundary, tree and shapes grids on the tensor-map one;
#  2. per line of workloads.txt, `patlab bench --stage pat hopper` with --hopper-small-loader tma,
#     tma-kv, then cp.async, one process each, 20 timed runs, cold L2, --no-check (step 1 checks);
#     no new process with less than AB_RESERVE seconds left (default 30); FROM_LINE=N starts at
#     line N (a second call finishes what the first could not);
#  3. tools/peers/suite.py on issue 11's eight no-sharing batches (lines 1-8) with cuDNN's SDPA:
#     `patlab compare` (every stage checked against the oracle; stage 8 with the default loader,
#     cp.async: `patlab export` takes no stage-8 option, so tma's time comes from step 2, in the
#     same call) and the peer.
#  4. compute-sanitizer memcheck, racecheck and synccheck (tools/sanitize.sh) on stage 8 with
#     --hopper-small-loader tma and tma-kv over six small workloads each (d = 64, 128 and 256, two
#     of them fp8);
#  5. Nsight Compute on the 16-row kernel of each loader, `--tree 16_32768 --heads 32/8` (DRAM
#     throughput, bytes, SM activity, registers, occupancy), and on the fp8 twin `16_8192`.
# Writes OUT/RUN.tar.gz. TESTS names step 1's binaries (default both), so that a call whose tree
# and binaries would pass the 64 MiB carry limit can take fewer; steps 2-5 need build-ab/patlab.xz only.
#   [RUN=r1] [STEPS="1 2 3 4 5"] [TESTS=...] docs/results/2026-12-05-h200-tma-small-packs/run.sh OUT [SECONDS]
# shellcheck source=../../../tools/results_steps.sh
source "$(dirname "$0")/../../../tools/results_steps.sh"
results_args "$0" "$@"
steps=${STEPS:-1 2 3 4 5}
here=docs/results/2026-12-05-h200-tma-small-packs
read -r -a tests <<< "${TESTS:-test_hopper_primitives test_08_hopper}"  # step 1's binaries
[[ $steps == *1* ]] || tests=()
results_begin "${RUN:-r1}" "$final" patlab "${tests[@]}" || exit 1
lines() { grep -v '^ *#' "$1" | sed 's/#.*//' | grep -v '^ *$'; }
(( ${#tests[@]} )) && run_tests "${tests[@]}"
if [[ $steps == *2* ]]; then
  n=0
  while IFS= read -r wl; do
    n=$((n + 1))
    (( n < ${FROM_LINE:-1} )) && continue
    for loader in tma tma-kv cp.async; do
      if (( $(left) < ${AB_RESERVE:-30} )); then echo "stopped for time before line $n $loader"; break 2; fi
      # shellcheck disable=SC2086
      timeout "$(cap 60)" /tmp/ab/patlab bench $wl --stage pat hopper --hopper-small-loader "$loader" \
        --repeats 20 --no-check --format jsonl > "$out/ab-$n-$loader.jsonl" 2> "$out/ab-$n-$loader.err"
      echo "exit $? at $SECONDS s: line $n $loader ($wl)"
    done
  done < <(lines "$here/workloads.txt")
fi
if [[ $steps == *3* ]] && (( $(left) > 60 )); then
  lines "$here/workloads.txt" | head -8 > /tmp/nosharing.txt
  timeout "$(cap 300)" python3 tools/peers/suite.py --patlab /tmp/ab/patlab --out "$out/nosharing" \
    --suite /tmp/nosharing.txt --repeats 20 --peers sdpa-cudnn --budget "$(( $(left) - 40 ))" \
    > "$out/nosharing.log" 2>&1
  echo "nosharing exit $? at $SECONDS s"
  grep -E "^best patlab|so far" "$out/nosharing.log"
fi
if [[ $steps == *4* ]] && (( $(left) > 60 )); then
  mkdir -p /tmp/sanbuild/tools && ln -sf /tmp/ab/patlab /tmp/sanbuild/tools/patlab
  san=("tiny" "asymmetric --heads 8/2 --head-dim 64" "--tree 1,3,6_40,17,9 --heads 4/4 --dtype bf16 --page 32"
       "tiny --head-dim 128 --kv-dtype fp8" "--tree 1,3_70,45 --heads 8/4 --head-dim 256"
       "--tree 1,3_70,45 --heads 8/4 --head-dim 256 --kv-dtype fp8")
  for loader in tma tma-kv; do
    list=$(printf "%s --hopper-small-loader $loader|" "${san[@]}")
    SANITIZE_STAGES=hopper SANITIZE_WORKLOADS="${list%|}" timeout "$(cap 150)" tools/sanitize.sh /tmp/sanbuild \
      > "$out/sanitize-$loader.log" 2>&1
    echo "sanitize $loader exit $? at $SECONDS s"
    tail -3 "$out/sanitize-$loader.log"
  done
fi
if [[ $steps == *5* ]]; then
  metrics=gpu__time_duration.sum,dram__throughput.avg.pct_of_peak_sustained_elapsed,dram__bytes_read.sum
  metrics+=,sm__cycles_active.avg,sm__cycles_elapsed.max,smsp__inst_executed.sum,launch__grid_size
  metrics+=,launch__registers_per_thread,launch__occupancy_limit_shared_mem,launch__occupancy_limit_registers
  for w in "--tree 16_32768 --heads 32/8" "--tree 16_8192 --heads 32/8 --kv-dtype fp8"; do
    for loader in tma tma-kv cp.async; do
      if (( $(left) < 45 )); then echo "ncu stopped for time before $w $loader"; break 2; fi
      # shellcheck disable=SC2086
      timeout "$(cap 60)" ncu --clock-control none --metrics "$metrics" -k regex:"tma_pack|pack_attention" \
        --launch-skip 2 --launch-count 1 /tmp/ab/patlab bench $w --stage hopper --hopper-small-loader "$loader" \
        --no-check --repeats 20 --warmup 1 --no-graph > "$out/ncu-$(slug "$w")-$loader.txt" 2>&1
      echo "ncu $w $loader exit $? at $SECONDS s"
    done
  done
fi
exit 0
