#!/usr/bin/env bash
# Run 1 of this folder: stage 9 with its small solo packs on stage 7's pack kernel before the
# persistent grid (S: build-ab/patlab-s.xz, main deea786 plus small-items.patch) against main's
# stage 9 (A: build-ab/patlab.xz, deea786), one call:
#  1. test_09_cluster of S with PATLAB_REQUIRE_GPU=1;
#  2. A/B with patlab-s as B (`bench W --stage hopper cluster --repeats 20`, A, S, A, S per
#     workload, S's first run checked) into RUN/ab-N-SIDE-K.jsonl (N counts the list below);
#  3. with A and S, qwen2.5-7b's batch in two parts at `--max-cluster 1` (the prefix with
#     one-page leaves, the leaves alone) into RUN/part-N-{a,s}.jsonl.
# Writes OUT/RUN.tar.gz (RUN/; default s1).
#   [RUN=s1] docs/results/2026-12-06-small-items/run.sh OUT [SECONDS]
source "$(dirname "$0")/../../../tools/results_steps.sh"
results_args "$0" "$@"
results_begin "${RUN:-s1}" "$final" patlab patlab-s test_09_cluster-s || exit 1
tests_while 300 test_09_cluster-s
AB_STAGES="hopper cluster" AB_B=patlab-s ab_runs 60 \
  "--tree 1,128_16384,256 --model qwen2.5-7b --max-cluster 1" "--tree 1,128_16384,256 --model qwen2.5-7b" \
  "--tree 4,256_8192,512 --heads 32/8" "--tree 1,1024_2048,32 --heads 64/8" "--tree 64_16384 --heads 32/8" \
  "--tree 1,16_1024,64 --heads 32/8" "--hetero 3 --heads 32/8"
for side in a s; do
  bin=patlab; [[ $side == s ]] && bin=patlab-s
  bench_each "--tree 1,128_16384,16 --model qwen2.5-7b --max-cluster 1|--tree 128_256 --model qwen2.5-7b --max-cluster 1" \
    "part-$side" 15 40 "/tmp/ab/$bin" bench --stage hopper cluster --repeats 20 --no-check --format jsonl
done
exit 0
