#!/usr/bin/env bash
# Run 1 of this folder: stage 9 with its small solo packs on stage 7's pack kernel before the
# persistent grid (S: build-ab/patlab-s.xz, main deea786 plus small-items.patch) against main's
# stage 9 (A: build-ab/patlab.xz, deea786), one call:
#  1. test_09_cluster of S with PATLAB_REQUIRE_GPU=1 (its stress grid: bf16 cases with
#     --no-first-packs' list);
#  2. A/B with patlab-s as B (`bench W --stage hopper cluster --repeats 20`, A, S, A, S per
#     workload, S's first run checked) into RUN/ab-N-SIDE-K.jsonl (N counts the list below);
#  3. compute-sanitizer memcheck, racecheck and synccheck on S's stage 9 (tools/sanitize.sh's five
#     workloads, two of them again with --no-first-packs) into RUN/sanitize.log;
#  4. with A and S, qwen2.5-7b's batch in two parts at `--max-cluster 1` (the prefix with
#     one-page leaves, the leaves alone) into RUN/part-{a,s}-N.jsonl.
# Writes OUT/RUN.tar.gz (RUN/; default s1).
#   [RUN=s1] docs/results/2026-12-06-small-items/run.sh OUT [SECONDS]
source "$(dirname "$0")/../../../tools/results_steps.sh"
results_args "$0" "$@"
results_begin "${RUN:-s1}" "$final" patlab patlab-s test_09_cluster-s || exit 1
tests_while 400 test_09_cluster-s
AB_STAGES="hopper cluster" AB_B=patlab-s ab_runs 200 \
  "--tree 1,128_16384,256 --model qwen2.5-7b --max-cluster 1" "--tree 1,128_16384,256 --model qwen2.5-7b" \
  "--tree 1,1024_2048,32 --heads 64/8" "--tree 4,256_8192,512 --heads 32/8" "--tree 64_16384 --heads 32/8" \
  "--tree 1,16_1024,64 --heads 32/8" "--hetero 3 --heads 32/8"
if (( $(left) > 60 )); then
  sanitize_prep patlab-s
  SANITIZE_STAGES=cluster SANITIZE_WORKLOADS="tiny|asymmetric --heads 8/2 --head-dim 64|--tree 1,3,6_40,17,9 --heads 4/4 --dtype bf16 --page 32|--random-tree 5 --random-requests 9 --random-max-segment 150 --heads 16/2 --page 64|--tree 1,40_300,17 --heads 32/4|tiny --no-first-packs|--tree 1,40_300,17 --heads 32/4 --no-first-packs" \
    timeout "$(cap 200)" tools/sanitize.sh /tmp/sb > "$out/sanitize.log" 2>&1
  echo "sanitize exit $? at $SECONDS s: $(tail -1 "$out/sanitize.log")"
fi
for side in a s; do
  bin=patlab; [[ $side == s ]] && bin=patlab-s
  bench_each "--tree 1,128_16384,16 --model qwen2.5-7b --max-cluster 1|--tree 128_256 --model qwen2.5-7b --max-cluster 1" \
    "part-$side" 10 30 "/tmp/ab/$bin" bench --stage hopper cluster --repeats 20 --no-check --format jsonl
done
exit 0
