#!/usr/bin/env bash
# FSA's automatic span pack height (the two cuts' byte models, fsa.hpp's plan_fsa_spans()) and the
# crossover group on 256 requests (README.md), one call on any H100 or H200, the patlab of this
# folder's commit (build-ab/patlab-a.xz, its GPU test build-ab/test_sparse_gpu-a.xz):
#  1. test_sparse_gpu (every order against the float64 oracle) into RUN/test-test_sparse_gpu-a.log;
#  2. per workload below, `patlab sparse W --method fsa --format json` (NSA's, the split's and
#     FSA's orders, each checked, then timed eager and replayed from a CUDA graph), one process
#     each (results_steps.sh's bench_each), round 1 over all, then round 2 while time is left,
#     into RUN/rK-N.jsonl (N the workload's place in the list).
# Writes OUT/RUN.tar.gz (RUN/; default a1).
#   [RUN=a1] docs/results/2026-12-07-fsa-auto-rows/run.sh OUT [SECONDS]
# shellcheck source=../../../tools/results_steps.sh
source "$(dirname "$0")/../../../tools/results_steps.sh"
results_args "$0" "$@"
results_begin "${RUN:-a1}" "$final" patlab-a test_sparse_gpu-a || exit 1
run_tests test_sparse_gpu-a
workloads=()
for heads in 8/8 16/8 32/8 48/8 64/8; do workloads+=("--tree 1,256_16384,512 --heads $heads"); done
workloads+=("--tree 1,128_16384,512 --heads 32/8" "--tree 1,64_16384,512 --heads 32/8")
workloads+=("--tree 1,16_4096,256 --heads 64/8" "--tree 1,16_4096,256 --heads 64/8 --span-rows 64")
list=$(IFS='|'; echo "${workloads[*]}")
bench_each "$list" r1 40 90 /tmp/ab/patlab-a sparse --method fsa --quiet --format json
bench_each "$list" r2 40 90 /tmp/ab/patlab-a sparse --method fsa --quiet --format json
exit 0
