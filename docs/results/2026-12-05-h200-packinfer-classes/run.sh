#!/usr/bin/env bash
# Stage 10's second attempt (branch packinfer-classes) on the H200, one call, with
# build-ab/patlab.xz, build-ab/test_10_packinfer.xz and build-ab/test_serve.xz built on the
# workstation from the branch: (1) test_10_packinfer (every grid, and the boundary, tree and
# shapes grids on each kernel instance) and test_serve; (2) compute-sanitizer memcheck, racecheck
# and synccheck on stage 10 on each instance over three small workloads; (3) per batch of
# workloads.txt stage 7 and stage 10 on the 16-row instance, then stage 10 on the 64-row one, one
# process each, eager and graph, 20 repeats, cold L2, checked against the oracle first. Writes
# OUT/RUN.tar.gz (RUN/, default r1). No step starts after SECONDS (default 540).
# TESTS (default "test_10_packinfer test_serve") names the test binaries of step 1 (all of them
# and patlab travel in build-ab/, 64 MiB with the tree: a call may carry fewer).
#   [RUN=r1] [STEPS="1 2 3"] [TESTS=...] docs/results/2026-12-05-h200-packinfer-classes/run.sh OUT [SECONDS]
# shellcheck source=../../../tools/results_steps.sh
source "$(dirname "$0")/../../../tools/results_steps.sh"
results_args "$0" "$@"
steps=${STEPS:-1 2 3}
tests=${TESTS:-test_10_packinfer test_serve}
# shellcheck disable=SC2086  # a list of names
results_begin "${RUN:-r1}" "$final" patlab $tests || exit 1
# shellcheck disable=SC2086
[[ $steps == *1* ]] && run_tests $tests
if [[ $steps == *2* ]]; then
  export PATH=/usr/local/cuda/bin:$PATH
  mkdir -p /tmp/sbuild/tools && cp /tmp/ab/patlab /tmp/sbuild/tools/patlab
  for rows in 16 64; do
    w="--tree 1,40_300,17 --heads 32/4 --group-rows $rows"
    w+="|--hetero 2 --hetero-requests 12 --heads 16/8 --kv-dtype fp8 --group-rows $rows"
    w+="|--tree 3,6_700,129 --heads 28/4 --head-dim 64 --dtype bf16 --page 32 --group-rows $rows"
    SANITIZE_STAGES=packinfer SANITIZE_WORKLOADS="$w" timeout "$(cap 120)" tools/sanitize.sh /tmp/sbuild \
      > "$out/sanitize-$rows.log" 2>&1
    echo "sanitize ($rows rows) exit $? at $SECONDS s"
    tail -4 "$out/sanitize-$rows.log"
  done
fi
if [[ $steps == *3* ]]; then
  n=0
  while IFS= read -r line; do
    wl=${line%%#*}
    wl=$(echo "$wl" | xargs)
    [[ -z $wl ]] && continue
    n=$((n + 1))
    for run in "16 pat packinfer" "64 packinfer"; do
      read -r rows stages <<< "$run"
      if (( $(left) < 20 )); then echo "stopped for time before line $n rows $rows"; exit 0; fi
      # shellcheck disable=SC2086
      timeout "$(cap 90)" /tmp/ab/patlab bench $wl --group-rows "$rows" --stage $stages --repeats 20 \
        --format jsonl > "$out/$n-$rows.jsonl" 2> "$out/$n-$rows.err"
      echo "exit $? at $SECONDS s: line $n rows $rows ($wl)"
    done
  done < docs/results/2026-12-05-h200-packinfer-classes/workloads.txt
fi
exit 0
