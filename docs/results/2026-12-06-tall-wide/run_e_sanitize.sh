#!/usr/bin/env bash
# Run 3 of this folder: what E (wide-e2.patch, build-ab/patlab-e.xz) still owes before it lands,
# one call: compute-sanitizer memcheck, racecheck and synccheck on E's stage 8 over
# tools/sanitize.sh's five workloads and one whose prefix runs on 128-row packs only (routing off,
# --hopper-rows 128) into RUN/sanitize.log.
# Writes OUT/RUN.tar.gz (RUN/; default r3).
#   [RUN=r3] docs/results/2026-12-06-tall-wide/run_e_sanitize.sh OUT [SECONDS]
source "$(dirname "$0")/../../../tools/results_steps.sh"
results_args "$0" "$@"
results_begin "${RUN:-r3}" "$final" patlab-e || exit 1
sanitize_prep patlab-e
SANITIZE_STAGES=hopper SANITIZE_EXTRA_WORKLOADS="--tree 1,40_300,17 --heads 32/4 --hopper-min-kv 0 --hopper-wide-kv 0 --hopper-rows 128" \
  timeout "$(cap 400)" tools/sanitize.sh /tmp/sb > "$out/sanitize.log" 2>&1
echo "sanitize exit $? at $SECONDS s: $(tail -1 "$out/sanitize.log")"
exit 0
