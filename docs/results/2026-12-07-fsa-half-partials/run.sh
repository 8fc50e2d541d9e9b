#!/usr/bin/env bash
# FSA's and the split's partials in 16 bits against fp32 (README.md), one call on any H100 or H200,
# the patlab of this folder's commit (build-ab/patlab-h.xz, its GPU test build-ab/test_sparse_gpu-h.xz):
#  1. test_sparse_gpu (every order against the float64 oracle, FSA and the split with 16-bit and
#     fp32 partials) into RUN/test-test_sparse_gpu-h.log;
#  2. per workload below, `patlab sparse W --method fsa --format json` with the default 16-bit
#     partials (RUN/half/rK-N.jsonl) and with --fp32-partials (RUN/fp32/rK-N.jsonl), one process
#     each (results_steps.sh's bench_each), round 1 over both, then round 2 while time is left.
# Writes OUT/RUN.tar.gz (RUN/; default h1).
#   [RUN=h1] docs/results/2026-12-07-fsa-half-partials/run.sh OUT [SECONDS]
# shellcheck source=../../../tools/results_steps.sh
source "$(dirname "$0")/../../../tools/results_steps.sh"
results_args "$0" "$@"
results_begin "${RUN:-h1}" "$final" patlab-h test_sparse_gpu-h || exit 1
run_tests test_sparse_gpu-h
workloads=()
for n in 64 256; do
  for heads in 8/8 16/8 32/8; do workloads+=("--tree 1,${n}_16384,512 --heads $heads"); done
done
list=$(IFS='|'; echo "${workloads[*]}")
base=$out
mkdir -p "$base/half" "$base/fp32"
for k in 1 2; do
  out=$base/half bench_each "$list" "r$k" 30 90 /tmp/ab/patlab-h sparse --method fsa --quiet --format json
  out=$base/fp32 bench_each "$list" "r$k" 30 90 /tmp/ab/patlab-h sparse --method fsa --fp32-partials --quiet --format json
done
exit 0
