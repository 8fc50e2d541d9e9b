#!/usr/bin/env bash
# Run k1 of this folder (README.md), one call on any H100 or H200, patlab and test_09_cluster of
# the commit that made stage 9 run at --max-cluster 1 and added --cluster-merge (build-ab/*.xz):
#  1. test_09_cluster (its default grids at cap 1, the stress, boundary and tree grids at cap 4,
#     and the boundary, tree and stress grids with the merge kernel) into RUN/test-test_09_cluster.log;
#  2. on an H200 only: issue 17's FSA and NSA orders at groups 1 and 2 on 256 requests over a 16K
#     prefix (../2026-12-07-fsa-narrow-ring's step 2, the same sparse code) into RUN/ring2/r-N.jsonl;
#  3. A/B per workload below: `bench W --stage hopper cluster --repeats 20` at the defaults (A,
#     the folded merge) and with `--cluster-merge kernel` (B), in the order A, B, A, B, B's first
#     run checked against the oracle, into RUN/ab-N-SIDE-K.jsonl, while 20 seconds are left.
# Writes OUT/RUN.tar.gz (RUN/; default k1).
#   [RUN=k1] docs/results/2026-12-07-stage9-merge-kernel/run.sh OUT [SECONDS]
# shellcheck source=../../../tools/results_steps.sh
source "$(dirname "$0")/../../../tools/results_steps.sh"
results_args "$0" "$@"
results_begin "${RUN:-k1}" "$final" patlab test_09_cluster || exit 1
run_tests test_09_cluster
if on_h200; then
  mkdir -p "$out/ring2"
  w="--tree 1,256_16384,512"
  out=$out/ring2 bench_each "$w --heads 8/8|$w --heads 16/8" r 120 90 /tmp/ab/patlab sparse --method fsa --quiet \
    --format json
fi
AB_STAGES="hopper cluster" AB_B=patlab AB_B_ARGS="--cluster-merge kernel" ab_runs 20 \
  "--tree 1,128_16384,256 --model qwen2.5-7b" "--tree 1,1024_2048,32 --heads 64/8" \
  "--tree 4,256_8192,512 --heads 32/8" "--tree 1,64_32768,512 --heads 32/8" "--tree 1,256_8192,64 --model llama3-70b" \
  "--tree 1,16_16384,128 --heads 64/8" "--tree 1,32_32768,512 --heads 32/8" "--hetero 1 --model qwen2.5-7b" \
  "--tree 64_4096 --heads 32/8"
exit 0
