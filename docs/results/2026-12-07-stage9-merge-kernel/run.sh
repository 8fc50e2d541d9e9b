#!/usr/bin/env bash
# Runs k1 and k3 of this folder (README.md), one call each on any H100 or H200, patlab and
# test_09_cluster of the commit each names (build-ab/*.xz): k1 of the commit that made stage 9 run
# at --max-cluster 1 and added --cluster-merge, k3 of the one that made the merge kernel its default:
#  1. test_09_cluster (k1: its default grids at cap 1 with the folded merge, the stress, boundary
#     and tree grids at cap 4, and the boundary, tree and stress grids with the merge kernel; k3: the
#     default grids with the merge kernel, the same three with the folded merge) into
#     RUN/test-test_09_cluster.log;
#  2. on an H200 only: issue 17's FSA and NSA orders at groups 1 and 2 (fsa_h200_groups) into
#     RUN/ring2/r-N.jsonl;
#  3. A/B per workload of the run's list below: `bench W --stage hopper cluster --repeats 20` at the
#     defaults (A) and with the other merge (B: k1 `--cluster-merge kernel`, k3 `--cluster-merge
#     folded`), in the order A, B, A, B, B's first run checked against the oracle, into
#     RUN/ab-N-SIDE-K.jsonl, while 20 seconds are left.
# Writes OUT/RUN.tar.gz (RUN/; default k1).
#   [RUN=k1|k3] docs/results/2026-12-07-stage9-merge-kernel/run.sh OUT [SECONDS]
# shellcheck source=../../../tools/results_steps.sh
source "$(dirname "$0")/../../../tools/results_steps.sh"
results_args "$0" "$@"
run=${RUN:-k1}
results_begin "$run" "$final" patlab test_09_cluster || exit 1
run_tests test_09_cluster
fsa_h200_groups patlab 120
if [[ $run == k3 ]]; then  # batches k1 did not run
  other="--cluster-merge folded"
  workloads=("--tree 1,128_16384,256 --model qwen2.5-32b" "--tree 1,1024_2048,32 --heads 32/8"
    "--tree 1,512_4096,128 --heads 32/8" "--tree 1,16_1024,64 --heads 32/8"
    "--random-tree 7 --random-requests 48 --random-depth 6 --heads 32/8"
    "--tree 1,4,16,64,256,1024_256,32,256,64,32,256 --heads 32/32" "--hetero 2 --model llama-3-8b")
else
  other="--cluster-merge kernel"
  workloads=("--tree 1,128_16384,256 --model qwen2.5-7b" "--tree 1,1024_2048,32 --heads 64/8"
    "--tree 4,256_8192,512 --heads 32/8" "--tree 1,64_32768,512 --heads 32/8" "--tree 1,256_8192,64 --model llama3-70b"
    "--tree 1,16_16384,128 --heads 64/8" "--tree 1,32_32768,512 --heads 32/8" "--hetero 1 --model qwen2.5-7b"
    "--tree 64_4096 --heads 32/8")
fi
AB_STAGES="hopper cluster" AB_B=patlab AB_B_ARGS="$other" ab_runs 20 "${workloads[@]}"
exit 0
