#!/usr/bin/env bash
# Run 1 of this folder: stage 9 with its folded merge counted per (query, KV head) and small packs
# first (M: merge-heads.patch on main, build-ab/patlab-m.xz and test_09_cluster-m.xz) against
# main (A: build-ab/patlab.xz), one call:
#  1. test_09_cluster of M with PATLAB_REQUIRE_GPU=1 (its stress grid: bf16 cases with
#     --no-first-packs' list);
#  2. compute-sanitizer memcheck, racecheck and synccheck on M's stage 9 (tools/sanitize.sh's five
#     workloads, two of them again with --no-first-packs) into RUN/sanitize.log;
#  3. A/B, M as B (`bench W --stage hopper cluster --repeats 20`, A, M, A, M per workload, M's first
#     run checked) into RUN/ab-N-SIDE-K.jsonl; then the same with M at --no-first-packs (the
#     per-head merge alone) into RUN/nofirst/ab-N-SIDE-K.jsonl.
# Writes OUT/RUN.tar.gz (RUN/; default m1).
#   [RUN=m1] docs/results/2026-12-06-merge-heads/run.sh OUT [SECONDS]
source "$(dirname "$0")/../../../tools/results_steps.sh"
results_args "$0" "$@"
results_begin "${RUN:-m1}" "$final" patlab patlab-m test_09_cluster-m || exit 1
tests_while 400 test_09_cluster-m
if (( $(left) > 300 )); then
  sanitize_prep patlab-m
  SANITIZE_STAGES=cluster SANITIZE_EXTRA_WORKLOADS="tiny --no-first-packs|--tree 1,40_300,17 --heads 32/4 --no-first-packs" \
    timeout "$(cap 200)" tools/sanitize.sh /tmp/sb > "$out/sanitize.log" 2>&1
  echo "sanitize exit $? at $SECONDS s: $(tail -1 "$out/sanitize.log")"
fi
workloads=("--tree 1,128_16384,256 --model qwen2.5-7b --max-cluster 1" "--tree 1,128_16384,256 --model qwen2.5-7b"
  "--tree 1,1024_2048,32 --heads 64/8" "--tree 4,256_8192,512 --heads 32/8" "--tree 1,64_32768,512 --heads 32/8"
  "--tree 64_16384 --heads 32/8" "--tree 1,16_1024,64 --heads 32/8" "--hetero 1 --model qwen2.5-7b")
AB_STAGES="hopper cluster" AB_B=patlab-m ab_runs 120 "${workloads[@]}"
(out=$out/nofirst; mkdir -p "$out"; AB_STAGES="hopper cluster" AB_B=patlab-m AB_B_ARGS=--no-first-packs ab_runs 10 "${workloads[@]}")
exit 0
