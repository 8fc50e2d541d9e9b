#!/usr/bin/env bash
# Run f1 of this folder (README.md), one call on any H100 or H200: main's patlab (build-ab/patlab.xz,
# A) against the first-packs branch (build-ab/patlab-f.xz and test_09_cluster-f.xz, F: main +
# first-packs.patch):
#  1. test_09_cluster-f (F's default grids with the small packs first, the stress grid's bf16
#     cases without, the cap-4 and folded-merge grids) into RUN/test-test_09_cluster-f.log;
#  2. A/B per workload below: `bench W --stage hopper cluster --repeats 20` with A and with F at
#     their defaults, in the order A, F, A, F, F's first run checked against the oracle, into
#     RUN/ab-N-SIDE-K.jsonl (side b is F), while 15 seconds are left;
#  3. on an H200 only: issue 17's FSA and NSA orders at groups 1 and 2 with A (fsa_h200_groups)
#     into RUN/ring2/, while 15 seconds are left.
# Writes OUT/RUN.tar.gz (RUN/; default f1).
#   [RUN=f1] docs/results/2026-12-07-stage9-first-packs/run.sh OUT [SECONDS]
# shellcheck source=../../../tools/results_steps.sh
source "$(dirname "$0")/../../../tools/results_steps.sh"
results_args "$0" "$@"
results_begin "${RUN:-f1}" "$final" patlab patlab-f test_09_cluster-f || exit 1
run_tests test_09_cluster-f
AB_STAGES="hopper cluster" AB_B=patlab-f ab_runs 15 \
  "--tree 1,1024_2048,32 --heads 64/8" "--tree 1,128_16384,256 --model qwen2.5-7b" \
  "--tree 1,16_1024,64 --heads 32/8" "--tree 1,4,16,64,256,1024_256,32,256,64,32,256 --heads 32/32" \
  "--hetero 2 --model llama-3-8b" "--tree 64_4096 --heads 32/8" "--tree 1,512_4096,128 --heads 32/8"
fsa_h200_groups patlab 15
exit 0
