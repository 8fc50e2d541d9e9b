#!/usr/bin/env bash
# The GPU tests of every partial buffer whose size main a06355e8 now takes from merge.cuh's
# partial_o_floats() (README.md), one call on any H100 or H200: stage 3 (fp32 partials), stage 7
# (the device plan of stages 4-9, 16-bit and fp32 partials), stage 10 (fp32) and the sparse
# branches (16-bit and fp32), each against the oracle, into RUN/test-NAME.log.
# Writes OUT/RUN.tar.gz (RUN/; default t1).
#   [RUN=t1] docs/results/2026-12-07-partial-buffer/run.sh OUT [SECONDS]
# shellcheck source=../../../tools/results_steps.sh
source "$(dirname "$0")/../../../tools/results_steps.sh"
results_args "$0" "$@"
results_begin "${RUN:-t1}" "$final" patlab-p test_03_splitkv-p test_07_pat-p test_10_packinfer-p test_sparse_gpu-p || exit 1
run_tests test_03_splitkv-p test_07_pat-p test_10_packinfer-p test_sparse_gpu-p
exit 0
