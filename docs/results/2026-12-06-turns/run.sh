#!/usr/bin/env bash
# Stage 8's consumer warpgroups taking turns (branch pingpong) against main, on the GPU machine, one call:
#  1. test_08_hopper of the branch (build-ab/bundle.tar.xz member test_08_hopper) with
#     PATLAB_REQUIRE_GPU=1 (a skip fails);
#  2. A/B: main's patlab (A) and the branch's (patlab-b, B), `bench W --stage pat hopper --repeats 20`
#     in the order A, B, A, B per workload of AB ('|'-separated; default: the workloads whose stage-8
#     plans have 128- or 192-row packs, and a control without), only B's first run checked;
#  3. compute-sanitizer synccheck and racecheck on stage 8 of the branch over the sanitizer's
#     128/192-row workload (tools/sanitize.sh).
# Writes OUT/RUN.tar.gz (RUN/; default t1).
#   [RUN=t1] [AB="W|W"] [SKIP_TESTS=1] docs/results/2026-12-06-turns/run.sh OUT [SECONDS]
source "$(dirname "$0")/../../../tools/results_steps.sh"
results_args "$0" "$@"
results_begin "${RUN:-t1}" "$final" patlab patlab-b test_08_hopper || exit 1
[[ -z ${SKIP_TESTS:-} ]] && tests_while 200 test_08_hopper
ab="--tree 1,1024_2048,32 --heads 32/8|--tree 1,1024_2048,32 --heads 64/8"
ab+="|--tree 1,128_16384,256 --heads 32/8|--tree 1,64_32768,512 --heads 32/8"
ab+="|--tree 4,256_8192,512 --heads 32/8|--tree 1,8,512_32,2048,256 --heads 64/8"
ab+="|--random-tree 13 --random-requests 64 --random-depth 3 --random-max-segment 8192 --heads 64/8"
ab+="|--tree 1,96_12000,200 --heads 40/8|--tree 1,256_256,32 --heads 32/32"
IFS='|' read -r -a wls <<< "${AB-$ab}"
ab_runs 80 "${wls[@]}"
if (( $(left) > 60 )); then
  sanitize_prep patlab-b
  SANITIZE_STAGES=hopper SANITIZE_TOOLS="synccheck racecheck" \
    SANITIZE_WORKLOADS="--tree 1,40_300,17 --heads 32/4 --hopper-min-kv 0 --hopper-wide-kv 0|--tree 1,40_300,17 --heads 48/4 --hopper-min-kv 0 --hopper-wide-kv 0" \
    timeout "$(cap 200)" tools/sanitize.sh /tmp/sb > "$out/sanitize.log" 2>&1
  echo "sanitize exit $? at $SECONDS s: $(tail -1 "$out/sanitize.log")"
fi
exit 0
