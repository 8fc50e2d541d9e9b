#!/usr/bin/env bash
# The merged default (README.md, run m1), one call, an H200 asked first (issue 17 names it):
#  1. test_sparse_gpu of main (build-ab/test_sparse_gpu-m.xz) into RUN/test-test_sparse_gpu-m.log;
#  2. per workload below, `patlab sparse W --method fsa --format json` of main (build-ab/patlab-m.xz),
#     the automatic KV tile, into RUN/auto/rN-1.jsonl, and at groups 4 and 8 the 64-token twin
#     (`--span-kv-tile 64`) into RUN/wide/rN-1.jsonl next to it, while time is left;
#  3. compute-sanitizer memcheck of the default on the two small FSA cases (RUN/sanitize.log);
#  4. the 32-row batches of step 2 with `--span-rows 64` (now on 32-token tiles) into
#     RUN/rows64/rN-1.jsonl, while time is left.
# Writes OUT/RUN.tar.gz (RUN/; default m1).
#   [RUN=m1] docs/results/2026-12-07-fsa-kv-tile/run-m.sh OUT [SECONDS]
# shellcheck source=../../../tools/results_steps.sh
source "$(dirname "$0")/../../../tools/results_steps.sh"
results_args "$0" "$@"
results_begin "${RUN:-m1}" "$final" patlab-m test_sparse_gpu-m || exit 1
run_tests test_sparse_gpu-m
w="--tree 1,256_16384,512"
steps=("$w --heads 32/8" "$w --heads 16/8" "$w --heads 8/8" "$w --heads 64/8" "--tree 1,128_16384,512 --heads 32/8")
base=$out
mkdir -p "$base/auto" "$base/wide"
n=0
for step in "${steps[@]}"; do
  n=$((n + 1))
  out=$base/auto bench_each "$step" "r$n" 40 90 /tmp/ab/patlab-m sparse --method fsa --quiet --format json
  if [[ $step == *" 32/8" || $step == *" 64/8" ]]; then
    out=$base/wide bench_each "$step --span-kv-tile 64" "r$n" 40 90 /tmp/ab/patlab-m sparse --method fsa --quiet --format json
  fi
done
out=$base
sanitize_prep patlab-m
sparse_memcheck patlab-m
# is the automatic pack height's threshold (kTallPackBytes, set on 64-token tiles) now too strict?
mkdir -p "$base/rows64"
n=0
for step in "${steps[@]}"; do
  n=$((n + 1))
  [[ $step == *" 32/8" && $step == *"256_"* || $step == *" 64/8" ]] && continue  # 64 rows already
  out=$base/rows64 bench_each "$step --span-rows 64" "r$n" 30 90 /tmp/ab/patlab-m sparse --method fsa --quiet --format json
done
exit 0
