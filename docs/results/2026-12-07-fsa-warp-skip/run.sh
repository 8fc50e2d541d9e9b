#!/usr/bin/env bash
# A span warp skips the tiles none of its rows chose (README.md, run s1), one call on any H100 or
# H200 (an H200 is what issue 17 names):
#  1. test_sparse_gpu of commit f767d56b (build-ab/test_sparse_gpu-s.xz) into RUN/test-test_sparse_gpu-s.log;
#  2. per step below, `patlab sparse W --method fsa --format json` with commit f767d56b
#     (build-ab/patlab-s.xz) into RUN/new/r1-N-1.jsonl, and with main bd78004f before it
#     (build-ab/patlab-d.xz, no skip: run d1 of ../2026-12-07-fsa-compact-packs) into
#     RUN/old/r1-N-1.jsonl (N the step), new then old, while time is left;
#  3. compute-sanitizer memcheck of f767d56b on two small FSA cases while time is left (RUN/sanitize.log);
#  4. test_sparse_gpu of bd78004f (build-ab/test_sparse_gpu-d.xz) while time is left.
# Writes OUT/RUN.tar.gz (RUN/; default s1).
#   [RUN=s1] docs/results/2026-12-07-fsa-warp-skip/run.sh OUT [SECONDS]
# shellcheck source=../../../tools/results_steps.sh
source "$(dirname "$0")/../../../tools/results_steps.sh"
results_args "$0" "$@"
results_begin "${RUN:-s1}" "$final" patlab-s test_sparse_gpu-s patlab-d test_sparse_gpu-d || exit 1
run_tests test_sparse_gpu-s
# in order of need: issue 17's groups 4, 1, 2 on the large batch, then group 8, 32-row packs at
# group 4, the smaller batches
w="--tree 1,256_16384,512"
steps=("$w --heads 32/8" "$w --heads 8/8" "$w --heads 16/8" "$w --heads 64/8" "$w --heads 32/8 --span-rows 32"
  "--tree 1,128_16384,512 --heads 32/8" "--tree 1,64_16384,512 --heads 32/8"
  "--tree 1,16_4096,256 --heads 32/8" "--tree 1,16_4096,256 --heads 64/8")
base=$out
mkdir -p "$base/new" "$base/old"
n=0
for step in "${steps[@]}"; do
  n=$((n + 1))
  out=$base/new bench_each "$step" "r1-$n" 40 90 /tmp/ab/patlab-s sparse --method fsa --quiet --format json
  out=$base/old bench_each "$step" "r1-$n" 40 90 /tmp/ab/patlab-d sparse --method fsa --quiet --format json
done
out=$base
sparse_memcheck patlab-s
tests_while 40 test_sparse_gpu-d
exit 0
