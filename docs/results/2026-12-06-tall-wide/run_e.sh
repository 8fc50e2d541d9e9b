#!/usr/bin/env bash
# Run 2 of this folder: E (wide-e2.patch on main deea786: the 128-row tile on 128-token stages with the serial
# consumer; stage 9 unchanged) against main deea786 (A), one call:
#  1. test_08_hopper of E with PATLAB_REQUIRE_GPU=1;
#  2. A/B with patlab-e as B (AB_B; `bench W --stage pat hopper --repeats 20`, A, E, A, E per workload,
#     E's first run checked) on run 1's workloads 4, 5 (128-row packs over 1024- and 512-token
#     pieces, where run 1's pipelined B lost), 1, 2, 3, 10 and 11, into RUN/ab-N-SIDE-K.jsonl (N
#     counts this list).
# Writes OUT/RUN.tar.gz (RUN/; default r2).
#   [RUN=r2] docs/results/2026-12-06-tall-wide/run_e.sh OUT [SECONDS]
source "$(dirname "$0")/../../../tools/results_steps.sh"
results_args "$0" "$@"
results_begin "${RUN:-r2}" "$final" patlab patlab-e test_08_hopper-e || exit 1
tests_while 150 test_08_hopper-e
AB_B=patlab-e ab_runs 10 "--tree 1,32_32768,512 --heads 32/8" "--tree 1,16_16384,128 --heads 64/8" \
  "--tree 1,64_32768,512 --heads 32/8" "--tree 4,256_8192,512 --heads 32/8" \
  "--tree 1,1024_2048,32 --heads 32/8 --hopper-rows 128" "--tree 1,128_16384,256 --model qwen2.5-32b" \
  "--tree 1,256_256,32 --heads 32/32"
exit 0
