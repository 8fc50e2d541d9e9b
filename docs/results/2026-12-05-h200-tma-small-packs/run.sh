#!/usr/bin/env bash
# One call, from a checkout with build-ab/patlab.xz and build-ab/test_08_hopper.xz built on the
# workstation (sm_90a). Steps (STEPS, default "1 2 3"):
#  1. test_08_hopper (PATLAB_REQUIRE_GPU=1): every grid of stage 8, its 16-row packs on the
#     tensor-map kernel (the default) and, in one test case, on stage 7's cp.async loader;
#  2. per line of workloads.txt, `patlab bench --stage pat hopper` with --hopper-small-loader tma,
#     then cp.async, one process each, 20 timed runs, cold L2, --no-check (step 1 checks);
#  3. tools/peers/suite.py on issue 11's eight no-sharing batches (lines 1-8) with cuDNN's SDPA:
#     `patlab compare` (every stage checked against the oracle; stage 8 with the default loader,
#     cp.async: `patlab export` takes no stage-8 option, so tma's time comes from step 2, in the
#     same call) and the peer.
# Writes OUT/RUN.tar.gz.
#   [RUN=r1] [STEPS="1 2 3"] docs/results/2026-12-05-h200-tma-small-packs/run.sh OUT [SECONDS]
# shellcheck source=../../../tools/results_steps.sh
source "$(dirname "$0")/../../../tools/results_steps.sh"
results_args "$0" "$@"
steps=${STEPS:-1 2 3}
here=docs/results/2026-12-05-h200-tma-small-packs
results_begin "${RUN:-r1}" "$final" patlab test_08_hopper || exit 1
lines() { grep -v '^ *#' "$1" | sed 's/#.*//' | grep -v '^ *$'; }
[[ $steps == *1* ]] && run_tests test_08_hopper
if [[ $steps == *2* ]]; then
  n=0
  while IFS= read -r wl; do
    n=$((n + 1))
    for loader in tma cp.async; do
      if (( $(left) < 200 )); then echo "stopped for time before line $n"; break 2; fi
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
exit 0
