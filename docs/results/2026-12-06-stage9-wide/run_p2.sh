#!/usr/bin/env bash
# Run 2 of this folder: the landed stage 9 (main a655fdc: 128-token stages) checked on the GPU,
# one call:
#  1. test_09_cluster with PATLAB_REQUIRE_GPU=1;
#  2. compute-sanitizer memcheck, racecheck and synccheck on stage 9 (tools/sanitize.sh, its five
#     default workloads, clusters among them) with patlab-s9;
#  3. on an H200 only, while time is left: `bench W --stage hopper cluster --repeats 20` with
#     patlab-s9 on chapter 18's five table workloads into RUN/h200-N.jsonl.
# Writes OUT/RUN.tar.gz (RUN/; default p2).
#   [RUN=p2] docs/results/2026-12-06-stage9-wide/run_p2.sh OUT [SECONDS]
source "$(dirname "$0")/../../../tools/results_steps.sh"
results_args "$0" "$@"
results_begin "${RUN:-p2}" "$final" patlab-s9 test_09_cluster || exit 1
tests_while 200 test_09_cluster
if (( $(left) > 60 )); then
  sanitize_prep patlab-s9
  SANITIZE_STAGES=cluster timeout "$(cap 240)" tools/sanitize.sh /tmp/sb > "$out/sanitize.log" 2>&1
  echo "sanitize exit $? at $SECONDS s: $(tail -1 "$out/sanitize.log")"
fi
if on_h200; then
  bench_each "--tree 1,1024_2048,32 --heads 64/8|--tree 1,128_16384,256 --model qwen2.5-7b|--tree 1,64_32768,512 --heads 32/8|--tree 64_16384 --heads 32/8|--tree 1,16_1024,64 --heads 32/8" \
    h200 15 60 /tmp/ab/patlab-s9 bench --stage hopper cluster --repeats 20 --format jsonl
fi
exit 0
