#!/usr/bin/env bash
# A third ring stage on the 32-token span tiles, and the merged default on an H200 where one
# comes (README.md, run r1), one call:
#  1. test_sparse_gpu of main (build-ab/test_sparse_gpu-m.xz) into RUN/test-test_sparse_gpu-m.log;
#  2. on an H200 only: `patlab sparse W --method fsa --format json` of main (build-ab/patlab-m.xz)
#     at groups 1 and 2 on 256 requests into RUN/ring2/r-N.jsonl (issue 17's numbers, the card
#     it names);
#  3. per group 4, 8 and 16 on 256 requests (64-row packs, 32-token tiles by default; the N-th
#     is group 4 x 2^(N-1)), the default two-stage ring into RUN/ring2/rN-1.jsonl and then
#     `--span-stages 3` into RUN/ring3/rN-1.jsonl, side by side, while time is left.
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
mkdir -p "$out/ring2" "$out/ring3"
fsa_h200_groups patlab-m 40
n=0
for h in 32 64 128; do
  n=$((n + 1))
  out=$out/ring2 bench_each "$w --heads $h/8" "r$n" 30 60 "${fsa[@]}"
  out=$out/ring3 bench_each "$w --heads $h/8" "r$n" 30 60 "${fsa[@]}" --span-stages 3
done
exit 0
