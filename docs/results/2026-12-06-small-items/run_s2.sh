#!/usr/bin/env bash
# Run 2 of this folder: A/B as run 1 (A main deea786, S patlab-s) on four more shared-prefix
# workloads, into RUN/ab-N-SIDE-K.jsonl. Writes OUT/RUN.tar.gz (RUN/; default s2).
#   [RUN=s2] docs/results/2026-12-06-small-items/run_s2.sh OUT [SECONDS]
source "$(dirname "$0")/../../../tools/results_steps.sh"
results_args "$0" "$@"
results_begin "${RUN:-s2}" "$final" patlab patlab-s || exit 1
AB_STAGES="hopper cluster" AB_B=patlab-s ab_runs 15 \
  "--tree 1,64_32768,512 --heads 32/8" "--tree 1,128_16384,256 --model qwen2.5-32b" \
  "--random-tree 12 --random-requests 256 --random-depth 6 --random-max-segment 1024 --heads 32/8" \
  "--hetero 1 --model qwen2.5-7b"
exit 0
