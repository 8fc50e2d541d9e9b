#!/usr/bin/env bash
# Run 2 of this folder, on an H200 only (elsewhere it stops at once): issue 12's 67 lines with
# main N (build-ab/patlab-n.xz), `bench W --stage pat hopper --repeats 20 --no-check` per line
# (cold L2, eager and graph) into RUN/suite/N.jsonl, then while time is left the A/B of run.sh on
# its first five workloads (A = build-ab/patlab.xz) into RUN/ab-N-SIDE-K.jsonl.
# Summary: python3 ../2026-12-04-h200-tall-tiles/issue12.py RUN.
#   [RUN=w2] docs/results/2026-12-06-wide-merge/run_issue12.sh OUT [SECONDS]
source "$(dirname "$0")/../../../tools/results_steps.sh"
results_args "$0" "$@"
results_begin "${RUN:-w2}" "$final" patlab patlab-n || exit 1
if ! on_h200; then
  echo "not an H200: nothing run"
  exit 0
fi
suite_bench patlab-n "$(issue12_lines)" 1 --stage pat hopper
AB_STAGES="hopper cluster" AB_B=patlab-n ab_runs 10 "--tree 1,128_16384,256 --model qwen2.5-7b --max-cluster 1" \
  "--tree 1,128_16384,256 --model qwen2.5-7b" "--tree 1,1024_2048,32 --heads 64/8" \
  "--tree 4,256_8192,512 --heads 32/8" "--tree 1,64_32768,512 --heads 32/8"
exit 0
