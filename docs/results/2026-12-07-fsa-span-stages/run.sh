#!/usr/bin/env bash
# FSA's 64-row span packs on a ring of three stages (README.md, run t1), one call on any H100 or
# H200 (an H200 is what issue 17 names): per step below, `patlab sparse W --method fsa --format
# json` with main bd78004f (build-ab/patlab-d.xz; its kernels are main's after the revert of
# f767d56b) into RUN/steps/r1-N-1.jsonl (N the step), the three-stage run and its two-stage twin
# next to each other, while time is left. Writes OUT/RUN.tar.gz (RUN/; default t1).
#   [RUN=t1] docs/results/2026-12-07-fsa-span-stages/run.sh OUT [SECONDS]
# shellcheck source=../../../tools/results_steps.sh
source "$(dirname "$0")/../../../tools/results_steps.sh"
results_args "$0" "$@"
results_begin "${RUN:-t1}" "$final" patlab-d || exit 1
# in order of need: group 4 on 256 requests (64-row packs), group 8, then 64-row packs at groups
# 2 and 1 and on 128 requests, each with three stages and then with the default two
w="--tree 1,256_16384,512"
steps=("$w --heads 32/8 --span-stages 3" "$w --heads 32/8"
  "$w --heads 64/8 --span-stages 3" "$w --heads 64/8"
  "$w --heads 16/8 --span-rows 64 --span-stages 3" "$w --heads 16/8 --span-rows 64" "$w --heads 16/8"
  "$w --heads 8/8 --span-rows 64 --span-stages 3" "$w --heads 8/8 --span-rows 64"
  "--tree 1,128_16384,512 --heads 32/8 --span-rows 64 --span-stages 3"
  "--tree 1,128_16384,512 --heads 32/8 --span-rows 64" "--tree 1,128_16384,512 --heads 32/8")
base=$out
mkdir -p "$base/steps"
n=0
for step in "${steps[@]}"; do
  n=$((n + 1))
  out=$base/steps bench_each "$step" "r1-$n" 30 90 /tmp/ab/patlab-d sparse --method fsa --quiet --format json
done
exit 0
