#!/usr/bin/env bash
# FSA's span packs on 32-token KV tiles (README.md, run k1), one call, an H200 asked first (issue
# 17 names it):
#  1. test_sparse_gpu of this commit (build-ab/test_sparse_gpu.xz) into RUN/test-test_sparse_gpu.log,
#     and cuobjdump's resource usage of the pack kernel's instances into RUN/resources.txt.gz;
#  2. per workload below, `patlab sparse W --method fsa --format json` (build-ab/patlab.xz) with
#     `--span-kv-tile 32` into RUN/narrow/rN-1.jsonl and then without it (64-token tiles, the
#     default) into RUN/wide/rN-1.jsonl, while time is left;
#  3. compute-sanitizer memcheck of the narrow tile on the two small FSA cases (RUN/sanitize.log).
# Writes OUT/RUN.tar.gz (RUN/; default k1).
#   [RUN=k1] docs/results/2026-12-07-fsa-kv-tile/run.sh OUT [SECONDS]
# shellcheck source=../../../tools/results_steps.sh
source "$(dirname "$0")/../../../tools/results_steps.sh"
results_args "$0" "$@"
results_begin "${RUN:-k1}" "$final" patlab test_sparse_gpu || exit 1
run_tests test_sparse_gpu
# registers and shared memory of every masked span instance (mangled names; README.md reads them)
/usr/local/cuda/bin/cuobjdump --dump-resource-usage /tmp/ab/patlab 2>&1 | grep -A1 "pack_attention_kernel" \
  | gzip > "$out/resources.txt.gz"
# in order of need: issue 17's groups 4, 2, 1 on the large batch (automatic pack rows), group 8,
# then group 4 on 128 requests
w="--tree 1,256_16384,512"
steps=("$w --heads 32/8" "$w --heads 16/8" "$w --heads 8/8" "$w --heads 64/8" "--tree 1,128_16384,512 --heads 32/8")
base=$out
mkdir -p "$base/narrow" "$base/wide"
n=0
for step in "${steps[@]}"; do
  n=$((n + 1))
  out=$base/narrow bench_each "$step --span-kv-tile 32" "r$n" 75 90 /tmp/ab/patlab sparse --method fsa --quiet --format json
  out=$base/wide bench_each "$step" "r$n" 60 90 /tmp/ab/patlab sparse --method fsa --quiet --format json
done
out=$base
sanitize_prep patlab
sparse_memcheck patlab --span-kv-tile 32
exit 0
