#!/usr/bin/env bash
# FSA's order against NSA's as the requests over one shared prefix grow (README.md), one call on
# any H100 or H200, main's patlab (build-ab/patlab-c.xz): per workload below, `patlab sparse W
# --method fsa --format json` (NSA's, the split's and FSA's orders, each checked against the
# float64 oracle, then timed eager and replayed from a CUDA graph), one process each, in rounds
# (round 1 over all nine, round 2 while time is left) into RUN/K-<workload>.json.
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
for k in 1 2; do
  for wl in "${workloads[@]}"; do
    if (( $(left) < 40 )); then echo "stopped for time before round $k: $wl"; break 2; fi
    file=$out/$k-$(slug "$wl")
    # shellcheck disable=SC2086  # a workload is several options, on purpose
    timeout "$(cap 90)" /tmp/ab/patlab-c sparse $wl --method fsa --quiet --format json > "$file.json" 2> "$file.err"
    echo "round $k exit $? at $SECONDS s: $wl"
  done
done
exit 0
