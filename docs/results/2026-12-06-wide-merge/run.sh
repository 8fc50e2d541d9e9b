#!/usr/bin/env bash
# Run 1 of this folder: main after the two changes of 2026-12-06 late (N: stage 8's 128-row CTA on
# 128-token stages, 4476d9f, and stage 9's folded merge per (query, KV head)) against main before
# them (A, 79e0f2c), one call:
#  1. test_08_hopper and test_09_cluster of N with PATLAB_REQUIRE_GPU=1;
#  2. compute-sanitizer memcheck, racecheck and synccheck on N's stages 8 and 9 (tools/sanitize.sh's
#     five workloads and one whose prefix runs on 128-row packs only) into RUN/sanitize.log;
#  3. A/B, N as B (`bench W --stage hopper cluster --repeats 20`, A, N, A, N per workload, N's first
#     run checked) into RUN/ab-N-SIDE-K.jsonl;
#  4. on an H200 only: issue 12's 67 lines with N (`--stage pat hopper`) into RUN/suite/N.jsonl.
# Binaries: build-ab/patlab.xz (A), patlab-n.xz, test_08_hopper-n.xz, test_09_cluster-n.xz.
# Writes OUT/RUN.tar.gz (RUN/; default w1).
#   [RUN=w1] docs/results/2026-12-06-wide-merge/run.sh OUT [SECONDS]
source "$(dirname "$0")/../../../tools/results_steps.sh"
results_args "$0" "$@"
results_begin "${RUN:-w1}" "$final" patlab patlab-n test_08_hopper-n test_09_cluster-n || exit 1
tests_while 420 test_08_hopper-n test_09_cluster-n
if (( $(left) > 330 )); then
  sanitize_prep patlab-n
  SANITIZE_STAGES="hopper cluster" SANITIZE_EXTRA_WORKLOADS="--tree 1,40_300,17 --heads 32/4 --hopper-min-kv 0 --hopper-wide-kv 0 --hopper-rows 128" \
    timeout "$(cap 150)" tools/sanitize.sh /tmp/sb > "$out/sanitize.log" 2>&1
  echo "sanitize exit $? at $SECONDS s: $(tail -1 "$out/sanitize.log")"
fi
workloads=("--tree 1,128_16384,256 --model qwen2.5-7b --max-cluster 1" "--tree 1,128_16384,256 --model qwen2.5-7b"
  "--tree 1,1024_2048,32 --heads 64/8" "--tree 4,256_8192,512 --heads 32/8" "--tree 1,64_32768,512 --heads 32/8"
  "--tree 64_16384 --heads 32/8" "--tree 1,16_1024,64 --heads 32/8" "--hetero 1 --model qwen2.5-7b"
  "--tree 1,32_32768,512 --heads 32/8" "--tree 1,16_16384,128 --heads 64/8"
  "--random-tree 7 --random-requests 48 --random-depth 6 --heads 32/8")
on_h200 && stop=120 || stop=10
AB_STAGES="hopper cluster" AB_B=patlab-n ab_runs "$stop" "${workloads[@]}"
if on_h200; then
  suite_bench patlab-n "$(issue12_lines)" 1 --stage pat hopper
fi
exit 0
