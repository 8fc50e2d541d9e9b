#!/usr/bin/env bash
# A third ring stage on the 32-token span tiles, and the merged default on an H200 where one
# comes (README.md, run r1), one call:
#  1. test_sparse_gpu of main (build-ab/test_sparse_gpu-m.xz) into RUN/test-test_sparse_gpu-m.log;
#  2. on an H200 only: `patlab sparse W --method fsa --format json` of main (build-ab/patlab-m.xz)
#     at groups 1 and 2 on 256 requests into RUN/ring2/r-N.jsonl (issue 17's numbers, the card
#     it names);
#  3. groups 4, 8 and 16 on 256 requests (64-row packs, 32-token tiles by default) with the
#     default two-stage ring into RUN/ring2/r4-N.jsonl, then with `--span-stages 3` into
#     RUN/ring3/r4-N.jsonl, while time is left.
# Each folder is read by ../2026-12-07-fsa-span-rows/table.py (it keys on the workload).
# Writes OUT/RUN.tar.gz (RUN/; default r1).
#   [RUN=r1] docs/results/2026-12-07-fsa-narrow-ring/run.sh OUT [SECONDS]
# shellcheck source=../../../tools/results_steps.sh
source "$(dirname "$0")/../../../tools/results_steps.sh"
results_args "$0" "$@"
results_begin "${RUN:-r1}" "$final" patlab-m test_sparse_gpu-m || exit 1
run_tests test_sparse_gpu-m
w="--tree 1,256_16384,512"
fsa=(/tmp/ab/patlab-m sparse --method fsa --quiet --format json)
tall="$w --heads 32/8|$w --heads 64/8|$w --heads 128/8"
mkdir -p "$out/ring2" "$out/ring3"
if on_h200; then out=$out/ring2 bench_each "$w --heads 8/8|$w --heads 16/8" r 40 90 "${fsa[@]}"; fi
out=$out/ring2 bench_each "$tall" r4 40 90 "${fsa[@]}"
out=$out/ring3 bench_each "$tall" r4 40 90 "${fsa[@]}" --span-stages 3
exit 0
