#!/usr/bin/env bash
# 16-bit partials as the default of stages 4-9 (branch partials-default), on the GPU machine, one
# call: the GPU tests of stages 4-9 and of the serve loop from build-ab/bundle.tar.xz
# (build-ab/COMMIT) with PATLAB_REQUIRE_GPU=1 (a skip fails): their default grids now store the
# partials in 16 bits and their extra grids in fp32 (--fp32-partials); test_serve's layer-0 check
# is now held to the step's partials' emulation. Then `patlab bench W --stage 4 5 6 7 8 9
# --repeats 20 --no-graph` checked against the oracle, with the default and with --fp32-partials,
# per workload of CHECK ('|'-separated), into bench-N-SIDE.jsonl (side h: default, f: fp32).
# Writes OUT/RUN.tar.gz (RUN/; default t1).
#   [RUN=t1] [TESTS="..."] [CHECK="W|W"] docs/results/2026-12-06-partials-default/run.sh OUT [SECONDS]
source "$(dirname "$0")/../../../tools/results_steps.sh"
results_args "$0" "$@"
tests=(test_04_packed test_05_multitile test_06_multistream test_07_pat test_08_hopper test_09_cluster test_serve)
[[ -n ${TESTS:-} ]] && read -r -a tests <<< "$TESTS"
results_begin "${RUN:-t1}" "$final" patlab "${tests[@]}" || exit 1
for t in "${tests[@]}"; do
  if (( $(left) < 90 )); then echo "tests: stopped for time before $t"; break; fi
  run_tests "$t"
done
chk="--tree 1,16,32,64,256,1024_256,128,64,32,32,32 --heads 64/8"
chk+="|--tree 1,12_700,130 --heads 16/4 --dtype bf16 --page 32"
chk+="|--random-tree 7 --random-requests 64 --heads 24/8"
IFS='|' read -r -a chkw <<< "${CHECK:-$chk}"
n=0
for wl in "${chkw[@]}"; do
  n=$((n + 1))
  for side in h f; do
    if (( $(left) < 30 )); then echo "bench: stopped for time before $n $side"; break 2; fi
    extra=; [[ $side == f ]] && extra=--fp32-partials
    # shellcheck disable=SC2086  # a workload is several options, on purpose
    timeout "$(cap 90)" /tmp/ab/patlab bench $wl $extra --stage 4 5 6 7 8 9 --repeats 20 --no-graph --format jsonl \
      > "$out/bench-$n-$side.jsonl" 2> "$out/bench-$n-$side.err"
    echo "bench $n $side exit $? at $SECONDS s: $wl $extra"
  done
done
exit 0
