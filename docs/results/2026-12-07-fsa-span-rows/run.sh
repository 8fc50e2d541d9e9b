#!/usr/bin/env bash
# FSA's span packs of 64 rows where a prefix block's requests outgrow 32 (README.md), one call on
# any H100 or H200, the patlab of this folder's commit (build-ab/patlab-r.xz): per workload below,
# `patlab sparse W --method fsa --format json` (NSA's, the split's and FSA's orders, each checked
# against the float64 oracle, then timed eager and replayed from a CUDA graph), one process each
# (results_steps.sh's bench_each), round 1 over all, then round 2 while time is left, into
# RUN/rK-N.jsonl (N the workload's place in the list).
# Writes OUT/RUN.tar.gz (RUN/; default s1).
#   [RUN=s1] docs/results/2026-12-07-fsa-span-rows/run.sh OUT [SECONDS]
# shellcheck source=../../../tools/results_steps.sh
source "$(dirname "$0")/../../../tools/results_steps.sh"
results_args "$0" "$@"
results_begin "${RUN:-s1}" "$final" patlab-r || exit 1
workloads=()
for wl in "128_16384,512 --heads 32/8" "256_16384,512 --heads 16/8" "256_16384,512 --heads 32/8" \
  "256_16384,512 --heads 64/8"; do
  for rows in 0 64; do workloads+=("--tree 1,$wl --span-rows $rows"); done
done
workloads+=("--tree 1,256_16384,512 --heads 64/8 --span-rows 32")
list=$(IFS='|'; echo "${workloads[*]}")
bench_each "$list" r1 40 90 /tmp/ab/patlab-r sparse --method fsa --quiet --format json
bench_each "$list" r2 40 90 /tmp/ab/patlab-r sparse --method fsa --quiet --format json
exit 0
