#!/usr/bin/env bash
# compute-sanitizer memcheck, racecheck and synccheck on every GPU stage over small workloads.
#   tools/sanitize.sh [BUILD_DIR]     (default build-gpu); exit 1 if any run reports an error,
#                                     exits non-zero or does not check the stage on the GPU
#                                     (a missing device or a broken CUDA is a failure here).
#   SANITIZE_STAGES="hopper pat" tools/sanitize.sh   only those stages (default: every GPU stage).
#   SANITIZE_WORKLOADS="tiny --kv-dtype fp8|asymmetric --kv-dtype fp8" tools/sanitize.sh
#                                     these workloads ('|'-separated) instead of the five below.
#   SANITIZE_EXTRA_WORKLOADS="tiny --no-first-packs" tools/sanitize.sh
#                                     these workloads ('|'-separated) after the others.
#   SANITIZE_TOOLS="racecheck synccheck" tools/sanitize.sh   only those tools (default: all three).
#   SANITIZE_ARGS="--racecheck-report hazard" tools/sanitize.sh   extra compute-sanitizer options
#                                     (e.g. every hazard with its block and thread indices).
set -uo pipefail
build=${1:-build-gpu}
patlab=$build/tools/patlab
[[ -x $patlab ]] || { echo "sanitize.sh: $patlab not built" >&2; exit 2; }
tools=${SANITIZE_TOOLS:-memcheck racecheck synccheck}
for tool in $tools; do
  [[ $tool =~ ^(memcheck|racecheck|synccheck)$ ]] || { echo "sanitize.sh: unknown tool '$tool' in SANITIZE_TOOLS (memcheck, racecheck, synccheck)" >&2; exit 2; }
done
stages=${SANITIZE_STAGES:-$("$patlab" list --format csv | awk -F, 'NR > 2 && $3 == "yes" {print $2}')}
[[ -n $stages ]] || { echo "sanitize.sh: $patlab list gave no GPU stages" >&2; exit 1; }
"$(dirname "$0")/require_gpu.sh" "$patlab" || exit 1
workloads=(
  "tiny"
  "asymmetric --heads 8/2 --head-dim 64"
  "--tree 1,3,6_40,17,9 --heads 4/4 --dtype bf16 --page 32"
  "--random-tree 5 --random-requests 9 --random-max-segment 150 --heads 16/2 --page 64"
  "--tree 1,40_300,17 --heads 32/4 --hopper-min-kv 0 --hopper-wide-kv 0"  # 320 prefix rows: stage 8's
  # 128-row tiles with its routing off (a 300-token range gets none by default), odd tails
)
if [[ -n ${SANITIZE_WORKLOADS:-} ]]; then
  IFS='|' read -r -a workloads <<< "$SANITIZE_WORKLOADS"
fi
if [[ -n ${SANITIZE_EXTRA_WORKLOADS:-} ]]; then
  IFS='|' read -r -a extra <<< "$SANITIZE_EXTRA_WORKLOADS"
  workloads+=("${extra[@]}")
fi
status=0
for tool in $tools; do
  for s in $stages; do
    for w in "${workloads[@]}"; do
      # shellcheck disable=SC2086
      log=$(compute-sanitizer --tool "$tool" --error-exitcode 9 ${SANITIZE_ARGS:-} "$patlab" bench $w --stage "$s" --repeats 20 --warmup 0 --no-graph --warm-l2 --format csv 2>&1)
      rc=$?
      summary=$(echo "$log" | grep -E "ERROR SUMMARY|RACECHECK SUMMARY" | tail -1)
      # The stage must have run and passed its check on the GPU: its verdict row says PASS.
      ran=$(echo "$log" | grep -cE "(^|,)$s,\"?PASS")
      printf '%-9s %-12s %-70s rc=%d %s%s\n' "$tool" "$s" "$w" "$rc" "$summary" \
        "$([[ $ran -gt 0 ]] || echo " (the stage did not run and pass on the GPU)")"
      if [[ $rc -ne 0 || -z $summary || $ran -eq 0 ]]; then
        status=1
        echo "$log" | head -40
      fi
    done
  done
done
echo "sanitize: $([[ $status == 0 ]] && echo clean || echo ERRORS)"
exit $status
