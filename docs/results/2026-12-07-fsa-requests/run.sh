#!/usr/bin/env bash
# FSA's order against NSA's as the requests over one shared prefix grow (README.md), one call on
# any H100 or H200, main's patlab (build-ab/patlab-c.xz): per workload below, `patlab sparse W
# --method fsa --format json` (NSA's, the split's and FSA's orders, each checked against the
# float64 oracle, then timed eager and replayed from a CUDA graph), one process each (results_steps.sh's
# bench_each), in rounds (round 1 over all nine, round 2 while time is left) into RUN/rK-N.jsonl
# (one JSON document each; N the workload's place in the list).
# Writes OUT/RUN.tar.gz (RUN/; default f1).
#   [RUN=f1] docs/results/2026-12-07-fsa-requests/run.sh OUT [SECONDS]
# shellcheck source=../../../tools/results_steps.sh
source "$(dirname "$0")/../../../tools/results_steps.sh"
results_args "$0" "$@"
results_begin "${RUN:-f1}" "$final" patlab-c || exit 1
workloads=()
for n in 64 128 256; do
  for heads in 8/8 16/8 32/8; do workloads+=("--tree 1,${n}_16384,512 --heads $heads"); done
done
list=$(IFS='|'; echo "${workloads[*]}")
bench_each "$list" r1 40 90 /tmp/ab/patlab-c sparse --method fsa --quiet --format json
bench_each "$list" r2 40 90 /tmp/ab/patlab-c sparse --method fsa --quiet --format json
exit 0
