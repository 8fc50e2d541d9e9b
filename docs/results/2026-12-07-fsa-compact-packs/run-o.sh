#!/usr/bin/env bash
# A span's packs launched together (README.md, run o1), one call on any H100 or H200:
#  1. test_sparse_gpu of commit e7746f00 (build-ab/test_sparse_gpu-o.xz) into RUN/test-test_sparse_gpu-o.log;
#  2. per step below, `patlab sparse W --method fsa --format json` with commit e7746f00
#     (build-ab/patlab-o.xz) into RUN/new/r1-N-1.jsonl, or with commit d1d05ca2 (build-ab/patlab-f.xz,
#     a span's packs scattered over the launch) into RUN/old/r1-N-1.jsonl (N the step), while time is left;
#  3. compute-sanitizer memcheck on two small FSA cases while time is left (RUN/sanitize.log).
# Writes OUT/RUN.tar.gz (RUN/; default o1).
#   [RUN=o1] docs/results/2026-12-07-fsa-compact-packs/run-o.sh OUT [SECONDS]
# shellcheck source=../../../tools/results_steps.sh
source "$(dirname "$0")/../../../tools/results_steps.sh"
results_args "$0" "$@"
results_begin "${RUN:-o1}" "$final" patlab-o test_sparse_gpu-o patlab-f || exit 1
run_tests test_sparse_gpu-o
# in order of need: group 4 at both heights with both binaries, then the other groups
w="--tree 1,256_16384,512"
steps=("new $w --heads 32/8" "old $w --heads 32/8" "new $w --heads 32/8 --span-rows 64"
  "old $w --heads 32/8 --span-rows 64" "new $w --heads 8/8" "new $w --heads 16/8" "new $w --heads 64/8"
  "new $w --heads 64/8 --span-rows 64" "new $w --heads 16/8 --span-rows 64" "new $w --heads 8/8 --span-rows 64"
  "new --tree 1,128_16384,512 --heads 32/8 --span-rows 64" "new --tree 1,128_16384,512 --heads 32/8")
base=$out
mkdir -p "$base/new" "$base/old"
n=0
for step in "${steps[@]}"; do
  n=$((n + 1))
  side=${step%% *}
  bin=/tmp/ab/patlab-o
  [[ $side == old ]] && bin=/tmp/ab/patlab-f
  out=$base/$side bench_each "${step#* }" "r1-$n" 35 90 "$bin" sparse --method fsa --quiet --format json
done
out=$base
for wl in "--tree 1,4_300,100 --heads 8/2 --head-dim 64 --clamp" "--tree 1,40_2048,64 --heads 32/8 --top-n 8"; do
  if (( $(left) < 30 )); then echo "stopped for time before memcheck $wl"; break; fi
  # shellcheck disable=SC2086  # a workload is several words, on purpose
  timeout "$(cap 60)" compute-sanitizer --tool memcheck --error-exitcode 9 /tmp/ab/patlab-o sparse $wl \
    --method fsa --repeats 20 --warmup 0 --quiet --format json > /dev/null 2>> "$out/sanitize.log"
  echo "memcheck exit $? at $SECONDS s: $wl" | tee -a "$out/sanitize.log"
done
exit 0
