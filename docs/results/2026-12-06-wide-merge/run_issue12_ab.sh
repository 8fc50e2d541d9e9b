#!/usr/bin/env bash
# Run 2 of this folder, on any H100 or H200: issue 12's 67 lines, first with main before the
# 128-token 128-row CTA (A, build-ab/patlab.xz, `--stage hopper`) into RUN/a/suite/N.jsonl, then
# with main after it (N, build-ab/patlab-n.xz, `--stage pat hopper`) into RUN/n/suite/N.jsonl
# (`bench W ... --repeats 20 --no-check`, cold L2, eager and graph), while time is left.
# Summary: stage8_ab.py RUN (stage 8 N / A per line and overall), and
# python3 ../2026-12-04-h200-tall-tiles/issue12.py RUN/n (N's median and stage 7 / stage 8).
#   [RUN=w2] docs/results/2026-12-06-wide-merge/run_issue12_ab.sh OUT [SECONDS]
source "$(dirname "$0")/../../../tools/results_steps.sh"
results_args "$0" "$@"
results_begin "${RUN:-w2}" "$final" patlab patlab-n || exit 1
full=$budget
budget=$(( full * 2 / 5 ))
# shellcheck disable=SC2030,SC2031  # each half writes into a folder of its own, on purpose
(out=$out/a; mkdir -p "$out"; suite_bench patlab "$(issue12_lines)" 1 --stage hopper)
budget=$full
# shellcheck disable=SC2031  # as above
(out=$out/n; mkdir -p "$out"; suite_bench patlab-n "$(issue12_lines)" 1 --stage pat hopper)
exit 0
