#!/usr/bin/env bash
# The default of cf322f52 as landed in bd78004f (README.md, run d1), one call on any H100 or H200 (an H200 is what
# issue 17 names):
#  1. test_sparse_gpu of commit bd78004f (build-ab/test_sparse_gpu-d.xz) into RUN/test-test_sparse_gpu-d.log;
#  2. per step below, `patlab sparse W --method fsa --format json` with commit bd78004f
#     (build-ab/patlab-d.xz), automatic pack height, into RUN/new/r1-N-1.jsonl while time is left;
#  3. compute-sanitizer memcheck on two small FSA cases while time is left (RUN/sanitize.log).
# Writes OUT/RUN.tar.gz (RUN/; default d1).
#   [RUN=d1] docs/results/2026-12-07-fsa-compact-packs/run-d.sh OUT [SECONDS]
# shellcheck source=../../../tools/results_steps.sh
source "$(dirname "$0")/../../../tools/results_steps.sh"
results_args "$0" "$@"
results_begin "${RUN:-d1}" "$final" patlab-d test_sparse_gpu-d || exit 1
run_tests test_sparse_gpu-d
# in order of need: issue 17's groups 1-4 on the large batch, then group 8 and the smaller batches
w="--tree 1,256_16384,512"
steps=("$w --heads 32/8" "$w --heads 16/8" "$w --heads 8/8" "$w --heads 64/8"
  "--tree 1,128_16384,512 --heads 32/8" "--tree 1,64_16384,512 --heads 32/8"
  "--tree 1,16_4096,256 --heads 32/8" "--tree 1,16_4096,256 --heads 64/8")
base=$out
mkdir -p "$base/new"
n=0
for step in "${steps[@]}"; do
  n=$((n + 1))
  out=$base/new bench_each "$step" "r1-$n" 35 90 /tmp/ab/patlab-d sparse --method fsa --quiet --format json
done
out=$base
for wl in "--tree 1,4_300,100 --heads 8/2 --head-dim 64 --clamp" "--tree 1,40_2048,64 --heads 32/8 --top-n 8"; do
  if (( $(left) < 30 )); then echo "stopped for time before memcheck $wl"; break; fi
  # shellcheck disable=SC2086  # a workload is several words, on purpose
  timeout "$(cap 60)" compute-sanitizer --tool memcheck --error-exitcode 9 /tmp/ab/patlab-d sparse $wl \
    --method fsa --repeats 20 --warmup 0 --quiet --format json > /dev/null 2>> "$out/sanitize.log"
  echo "memcheck exit $? at $SECONDS s: $wl" | tee -a "$out/sanitize.log"
done
exit 0
