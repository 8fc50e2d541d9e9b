#!/usr/bin/env bash
# Stage 9 at its new defaults (no multicast, the merge kernel after the grid) against stage 8 over
# the suite, one call on any H100 or H200, patlab of build-ab/patlab.xz (build-ab/COMMIT):
# `patlab bench W --stage hopper cluster --repeats 20 --no-check` (cold L2, eager and graph) per
# line of issue 12's shared-prefix lines first, then every other line of tools/suite.txt and
# tools/suite-categories.txt, while time is left, into RUN/suite/N.jsonl.
# Summary: python3 docs/results/2026-12-07-stage9-defaults-suite/table.py RUN [--lines].
#   [RUN=s1] docs/results/2026-12-07-stage9-defaults-suite/run.sh OUT [SECONDS]
# shellcheck source=../../../tools/results_steps.sh
source "$(dirname "$0")/../../../tools/results_steps.sh"
results_args "$0" "$@"
results_begin "${RUN:-s1}" "$final" patlab || exit 1
shared=" $(issue12_lines) "
others=$(suite_workloads | while read -r n _; do [[ $shared == *" $n "* ]] || printf '%s ' "$n"; done)
suite_bench patlab "$shared" 1 --stage hopper cluster
suite_bench patlab "$others" 1 --stage hopper cluster
exit 0
