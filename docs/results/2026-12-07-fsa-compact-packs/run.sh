#!/usr/bin/env bash
# FSA's packs that read only their requests' blocks (README.md), one call on any H100 or H200:
#  1. test_sparse_gpu of main d1d05ca2 (build-ab/test_sparse_gpu-f.xz) into RUN/test-test_sparse_gpu-f.log;
#  2. per workload below, `patlab sparse W --method fsa --format json` with main d1d05ca2
#     (build-ab/patlab-f.xz) into RUN/new/rK-N.jsonl, and on the first two with main 057f7db6
#     (build-ab/patlab-a.xz, every pack streams its whole span) into RUN/old/rK-N.jsonl;
#  3. compute-sanitizer memcheck on two small FSA cases while time is left (RUN/sanitize.log).
# Writes OUT/RUN.tar.gz (RUN/; default c1).
#   [RUN=c1] docs/results/2026-12-07-fsa-compact-packs/run.sh OUT [SECONDS]
# shellcheck source=../../../tools/results_steps.sh
source "$(dirname "$0")/../../../tools/results_steps.sh"
results_args "$0" "$@"
results_begin "${RUN:-c1}" "$final" patlab-f test_sparse_gpu-f patlab-a || exit 1
run_tests test_sparse_gpu-f
new=("--tree 1,256_16384,512 --heads 32/8" "--tree 1,256_16384,512 --heads 8/8" "--tree 1,256_16384,512 --heads 16/8"
  "--tree 1,256_16384,512 --heads 32/8 --span-rows 64" "--tree 1,256_16384,512 --heads 64/8"
  "--tree 1,128_16384,512 --heads 32/8" "--tree 1,64_16384,512 --heads 32/8")
old=("--tree 1,256_16384,512 --heads 32/8" "--tree 1,256_16384,512 --heads 8/8")
base=$out
mkdir -p "$base/new" "$base/old"
out=$base/old bench_each "$(IFS='|'; echo "${old[*]}")" r1 60 90 /tmp/ab/patlab-a sparse --method fsa --quiet --format json
out=$base/new bench_each "$(IFS='|'; echo "${new[*]}")" r1 40 90 /tmp/ab/patlab-f sparse --method fsa --quiet --format json
out=$base
for wl in "--tree 1,4_300,100 --heads 8/2 --head-dim 64 --clamp" "--tree 1,40_2048,64 --heads 32/8 --top-n 8"; do
  if (( $(left) < 30 )); then echo "stopped for time before memcheck $wl"; break; fi
  # shellcheck disable=SC2086  # a workload is several words, on purpose
  timeout "$(cap 60)" compute-sanitizer --tool memcheck --error-exitcode 9 /tmp/ab/patlab-f sparse $wl \
    --method fsa --repeats 20 --warmup 0 --quiet --format json > /dev/null 2>> "$out/sanitize.log"
  echo "memcheck exit $? at $SECONDS s: $wl" | tee -a "$out/sanitize.log"
done
exit 0
