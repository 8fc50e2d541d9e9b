#!/usr/bin/env bash
# Issue 12's 67 shared-prefix lines on an H200 at main's defaults (16-bit partials, leaf tails), one
# call: `patlab bench W --stage pat hopper --repeats 20 --no-check` (cold L2, eager and graph) per
# line of issue12_lines from line FIRST on, while time is left, into RUN/suite/N.jsonl, with main's
# patlab (build-ab/bundle.tar.xz member patlab; build-ab/COMMIT). On another GPU it stops at once.
# Summary: python3 ../2026-12-04-h200-tall-tiles/issue12.py RUN.
#   [RUN=t1] [FIRST=N] docs/results/2026-12-06-h200-defaults/run.sh OUT [SECONDS]
source "$(dirname "$0")/../../../tools/results_steps.sh"
results_args "$0" "$@"
results_begin "${RUN:-t1}" "$final" patlab || exit 1
if ! on_h200; then
  echo "not an H200: nothing run"
  exit 0
fi
suite_bench patlab "$(issue12_lines)" "${FIRST:-1}" --stage pat hopper
exit 0
