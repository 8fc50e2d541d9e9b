#!/usr/bin/env bash
# The automatic KV tile of branch fsa-kv-auto (README.md, run a1), in the same call as run k1, after
# it: test_sparse_gpu of the branch (build-ab/test_sparse_gpu-a.xz; it runs the automatic, the
# narrow and the wide tile against the oracle) into RUN/test-test_sparse_gpu-a.log, then k1's
# workloads with `patlab sparse W --method fsa --format json` of the branch (build-ab/patlab-a.xz)
# and no --span-kv-tile (automatic) into RUN/auto/rN-1.jsonl, while time is left.
# Writes OUT/RUN.tar.gz (RUN/; default a1).
#   [RUN=a1] docs/results/2026-12-07-fsa-kv-tile/run-a.sh OUT [SECONDS]
# shellcheck source=../../../tools/results_steps.sh
source "$(dirname "$0")/../../../tools/results_steps.sh"
results_args "$0" "$@"
results_begin "${RUN:-a1}" "$final" patlab-a test_sparse_gpu-a || exit 1
run_tests test_sparse_gpu-a
w="--tree 1,256_16384,512"
steps=("$w --heads 32/8" "$w --heads 16/8" "$w --heads 8/8" "$w --heads 64/8" "--tree 1,128_16384,512 --heads 32/8")
base=$out
mkdir -p "$base/auto"
n=0
for step in "${steps[@]}"; do
  n=$((n + 1))
  out=$base/auto bench_each "$step" "r$n" 20 90 /tmp/ab/patlab-a sparse --method fsa --quiet --format json
done
exit 0
