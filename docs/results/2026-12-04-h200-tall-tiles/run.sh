#!/usr/bin/env bash
# Stage 8's 192-row tiles on the H200, one call, with build-ab/patlab.xz and build-ab/test_08_hopper.xz
# (built on the workstation): (1) test_08_hopper (every grid, the tall grid with 192-row packs among
# them); (2) compute-sanitizer memcheck, racecheck and synccheck on stage 8 at --hopper-rows 192
# over the workloads below; (3) per workload of workloads.txt (16 suite lines and one of issue 12's
# held-out shapes whose stage-8 plan has 192-row packs at --hopper-rows 192) stages 7 and 8 once per
# --hopper-rows of ROWS (default "128 192"), one process each, eager and graph, 20 repeats, cold L2,
# unchecked (step 1 checks the kernels). Writes OUT/RUN.tar.gz (RUN/, default r1). No step starts
# after SECONDS (default 540).
#   [RUN=r1] [STEPS="1 2 3"] [ROWS="128 192"] docs/results/2026-12-04-h200-tall-tiles/run.sh OUT [SECONDS]
set -uo pipefail
final=$1
budget=${2:-540}
here=$(cd "$(dirname "$0")" && pwd)
cd "$here/../../.." || exit 1
# shellcheck source=../../../tools/results_steps.sh
source tools/results_steps.sh
steps=${STEPS:-1 2 3}
results_begin "${RUN:-r1}" "$final" patlab test_08_hopper || exit 1
[[ $steps == *1* ]] && run_tests test_08_hopper
if [[ $steps == *2* ]]; then
  export PATH=/usr/local/cuda/bin:$PATH
  mkdir -p /tmp/sbuild/tools && cp /tmp/ab/patlab /tmp/sbuild/tools/patlab
  w="--tree 1,40_300,17 --heads 32/4 --hopper-min-kv 0 --hopper-wide-kv 0 --hopper-rows 192"
  w+="|--tree 1,37_1000,33 --heads 64/8 --head-dim 64 --dtype bf16 --page 32 --hopper-rows 192 --hopper-wide-kv 0"
  w+="|--tree 1,12_777,5 --heads 16/1 --page 64 --hopper-rows 192 --hopper-wide-kv 0"
  SANITIZE_STAGES=hopper SANITIZE_WORKLOADS="$w" timeout "$(cap 200)" tools/sanitize.sh /tmp/sbuild \
    > "$out/sanitize.log" 2>&1
  echo "sanitize exit $? at $SECONDS s"
  tail -10 "$out/sanitize.log"
fi
if [[ $steps == *3* ]]; then
  n=0
  while IFS= read -r line; do
    wl=${line%%#*}
    wl=$(echo "$wl" | xargs)
    [[ -z $wl ]] && continue
    n=$((n + 1))
    for rows in ${ROWS:-128 192}; do
      if (( $(left) < 15 )); then echo "stopped for time before line $n rows $rows"; exit 0; fi
      # shellcheck disable=SC2086
      timeout "$(cap 60)" /tmp/ab/patlab bench $wl --hopper-rows "$rows" --stage pat hopper --repeats 20 --no-check \
        --format jsonl > "$out/$n-$rows.jsonl" 2> "$out/$n-$rows.err"
      echo "exit $? at $SECONDS s: line $n rows $rows ($wl)"
    done
  done < docs/results/2026-12-04-h200-tall-tiles/workloads.txt
fi
exit 0
