#!/usr/bin/env bash
# Run k3 of this folder (README.md), one call on any H100 or H200, patlab and test_09_cluster of
# the commit that made the merge kernel stage 9's default (build-ab/*.xz):
#  1. test_09_cluster (its default grids now with the merge kernel, the cap-4 grids, and the
#     boundary, tree and stress grids with the folded merge) into RUN/test-test_09_cluster.log;
#  2. on an H200 only: issue 17's FSA and NSA orders at groups 1 and 2 on 256 requests over a 16K
#     prefix into RUN/ring2/r-N.jsonl;
#  3. A/B on batches k1 did not run: `bench W --stage hopper cluster --repeats 20` at the defaults
#     (A, now the merge kernel) and with `--cluster-merge folded` (B), in the order A, B, A, B,
#     B's first run checked, into RUN/ab-N-SIDE-K.jsonl, while 20 seconds are left.
# Writes OUT/RUN.tar.gz (RUN/; default k3).
#   [RUN=k3] docs/results/2026-12-07-stage9-merge-kernel/run-k3.sh OUT [SECONDS]
# shellcheck source=../../../tools/results_steps.sh
source "$(dirname "$0")/../../../tools/results_steps.sh"
results_args "$0" "$@"
results_begin "${RUN:-k3}" "$final" patlab test_09_cluster || exit 1
run_tests test_09_cluster
if on_h200; then
  mkdir -p "$out/ring2"
  w="--tree 1,256_16384,512"
  out=$out/ring2 bench_each "$w --heads 8/8|$w --heads 16/8" r 120 90 /tmp/ab/patlab sparse --method fsa --quiet \
    --format json
fi
AB_STAGES="hopper cluster" AB_B=patlab AB_B_ARGS="--cluster-merge folded" ab_runs 20 \
  "--tree 1,128_16384,256 --model qwen2.5-32b" "--tree 1,1024_2048,32 --heads 32/8" \
  "--tree 1,512_4096,128 --heads 32/8" "--tree 1,16_1024,64 --heads 32/8" \
  "--random-tree 7 --random-requests 48 --random-depth 6 --heads 32/8" \
  "--tree 1,4,16,64,256,1024_256,32,256,64,32,256 --heads 32/32" "--hetero 2 --model llama-3-8b"
exit 0
