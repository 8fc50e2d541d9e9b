#!/usr/bin/env bash
# The merged default (README.md, run m1), one call, an H200 asked first (issue 17 names it):
#  1. test_sparse_gpu of main (build-ab/test_sparse_gpu-m.xz) into RUN/test-test_sparse_gpu-m.log;
#  2. `patlab sparse W --method fsa --format json` of main (build-ab/patlab-m.xz) per workload W of
#     k1's list, the automatic KV tile, into RUN/auto/r-N.jsonl; then at groups 4 and 8 the
#     64-token twins (`--span-kv-tile 64`) into RUN/wide/r-N.jsonl, while time is left; group 16
#     (128/8 heads) on 256 requests last in RUN/auto (the crossover, added before the first run);
#  3. compute-sanitizer memcheck of the default on the two small FSA cases (RUN/sanitize.log);
#  4. the 32-row batches of step 2 with `--span-rows 64` (now on 32-token tiles) into
#     RUN/rows64/r-N.jsonl, while time is left.
# Each folder is read by ../2026-12-07-fsa-span-rows/table.py (it keys on the workload, not the file).
# Writes OUT/RUN.tar.gz (RUN/; default m1).
#   [RUN=m1] docs/results/2026-12-07-fsa-kv-tile/run-m.sh OUT [SECONDS]
# shellcheck source=../../../tools/results_steps.sh
source "$(dirname "$0")/../../../tools/results_steps.sh"
results_args "$0" "$@"
results_begin "${RUN:-m1}" "$final" patlab-m test_sparse_gpu-m || exit 1
run_tests test_sparse_gpu-m
w="--tree 1,256_16384,512"
fsa=(/tmp/ab/patlab-m sparse --method fsa --quiet --format json)
# 64-row packs by the automatic height: groups 4 and 8 on 256 requests; 32-row: the other three
tall="$w --heads 32/8|$w --heads 64/8"
narrow="$w --heads 16/8|$w --heads 8/8|--tree 1,128_16384,512 --heads 32/8"
mkdir -p "$out/auto" "$out/wide" "$out/rows64"
g16="$w --heads 128/8"
out=$out/auto bench_each "$tall|$narrow|$g16" r 40 90 "${fsa[@]}"
out=$out/wide bench_each "$tall" r 40 90 "${fsa[@]}" --span-kv-tile 64
sanitize_prep patlab-m
sparse_memcheck patlab-m
# is the automatic pack height's threshold (kTallPackBytes, set on 64-token tiles) now too strict?
out=$out/rows64 bench_each "$narrow" r 30 90 "${fsa[@]}" --span-rows 64
exit 0
