#!/usr/bin/env bash
# The lazy 16-bit partials' split (branch lazy-split), on the GPU machine, one call:
#  1. the GPU tests TESTS (default: stages 4-9 and the serve loop, every stage that uploads a plan)
#     from build-ab/bundle.tar.xz (build-ab/COMMIT) with PATLAB_REQUIRE_GPU=1 (a skip fails);
#  2. `patlab bench W --stage 4 5 6 7 8 9 --repeats 20 --no-graph` checked against the oracle at
#     the defaults per workload of CHECK ('|'-separated) into bench-N.jsonl;
#  3. with build-ab/patlab-trace.xz (a build with -Dcta_trace=true of the same commit): per workload
#     of TRACE ('|'-separated), `patlab-trace bench W --stage hopper --repeats 20 --no-graph
#     --cta-trace trace-N.csv` (stage 8's CTAs: SM, start, end) and tb-N.jsonl;
#  4. on an H200 only (or with ANY_GPU=1): issue 12's shared-prefix lines at main's defaults
#     (16-bit partials, leaf tails), `patlab bench W --stage pat hopper --repeats 20 --no-check`
#     (cold L2, eager and graph) per line of LINES (default: issue12_lines, the 67) from line FIRST
#     on, while time is left, into suite/N.jsonl. Summary: ../2026-12-04-h200-tall-tiles/issue12.py RUN.
# Writes OUT/RUN.tar.gz (RUN/; default t1).
#   [RUN=t1] [TESTS="..."] [CHECK="W|W"] [TRACE="W|W"] [FIRST=N] [LINES="1 5 ..."] [ANY_GPU=1]
#   docs/results/2026-12-06-lazy-split/run.sh OUT [SECONDS]
source "$(dirname "$0")/../../../tools/results_steps.sh"
results_args "$0" "$@"
tests=(test_04_packed test_05_multitile test_06_multistream test_07_pat test_08_hopper test_09_cluster test_serve)
[[ -n ${TESTS+x} ]] && read -r -a tests <<< "$TESTS"
results_begin "${RUN:-t1}" "$final" patlab "${tests[@]}" || exit 1
tests_while 90 "${tests[@]}"
chk="--tree 1,16,32,64,256,1024_256,128,64,32,32,32 --heads 64/8"
chk+="|--tree 1,12_700,130 --heads 16/4 --dtype bf16 --page 32"
chk+="|--random-tree 7 --random-requests 64 --heads 24/8"
bench_each "${CHECK-$chk}" bench 30 90 /tmp/ab/patlab bench --stage 4 5 6 7 8 9 --repeats 20 --no-graph --format jsonl
if [[ -f build-ab/patlab-trace.xz ]] && unpack patlab-trace; then
  tr="--tree 1,1024_2048,32 --heads 32/8|--tree 1,1024_2048,32 --heads 64/8"
  bench_each "${TRACE-$tr}" tb 30 60 /tmp/ab/patlab-trace bench --stage hopper --repeats 20 --no-graph --format jsonl \
    --cta-trace "$out/trace-{n}.csv"
fi
if [[ -z ${ANY_GPU:-} ]] && ! on_h200; then
  echo "suite: not an H200, skipped"
  exit 0
fi
suite_bench patlab "${LINES:-$(issue12_lines)}" "${FIRST:-1}" --stage pat hopper
exit 0
