#!/usr/bin/env bash
# The GPU tests and compute-sanitizer for --half-partials as an option (one call): the GPU test
# binaries of build-ab/bundle.tar.xz (build-ab/COMMIT) with PATLAB_REQUIRE_GPU=1 (a skip fails),
# stages 4-9 first (their new case: the boundary, tree and shapes grids with 16-bit partials),
# then the other stages whose partials' code changed type (3, 10, sparse, serving, 1-2); then
# compute-sanitizer memcheck and racecheck (tools/sanitize.sh) on stages packed, pat, hopper and
# cluster over three small workloads with --half-partials. Writes OUT/RUN.tar.gz (RUN/; default t1).
# TESTS="test_04_packed ..." runs those alone; SANITIZE=0 leaves compute-sanitizer out.
#   [RUN=t1] [TESTS="..."] [SANITIZE=0] docs/results/2026-12-06-half-partials/tests.sh OUT [SECONDS]
source "$(dirname "$0")/../../../tools/results_steps.sh"
results_args "$0" "$@"
tests=(test_04_packed test_05_multitile test_06_multistream test_07_pat test_08_hopper test_09_cluster
       test_03_splitkv test_10_packinfer test_sparse_gpu test_serve test_01_naive test_02_gqa)
[[ -n ${TESTS:-} ]] && read -r -a tests <<< "$TESTS"
results_begin "${RUN:-t1}" "$final" patlab "${tests[@]}" || exit 1
for t in "${tests[@]}"; do
  if (( $(left) < 90 )); then echo "tests: stopped for time before $t"; break; fi
  run_tests "$t"
done
[[ ${SANITIZE:-1} == 0 ]] && exit 0
sanitize_prep
SANITIZE_STAGES="packed pat hopper cluster" SANITIZE_TOOLS="memcheck racecheck" \
  SANITIZE_WORKLOADS="tiny --half-partials|--tree 1,40_300,17 --heads 32/4 --hopper-min-kv 0 --hopper-wide-kv 0 --half-partials|--random-tree 5 --random-requests 9 --random-max-segment 150 --heads 16/2 --page 64 --dtype bf16 --half-partials" \
  timeout "$(cap 400)" tools/sanitize.sh /tmp/sb > "$out/sanitize.log" 2>&1
echo "sanitize exit $? at $SECONDS s: $(tail -1 "$out/sanitize.log")"
exit 0
