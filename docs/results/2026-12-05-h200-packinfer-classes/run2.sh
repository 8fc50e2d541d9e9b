#!/usr/bin/env bash
# Run 2, one call, from a checkout of main with this folder copied in, build-ab/patlab.xz and
# build-ab/test_10_packinfer.xz built on the workstation from the branch. Main is built here
# (build-gpu) first; then (3) per batch of workloads.txt, main's stage 7 and stage 10, then the
# branch's stage 7 and stage 10 (its model's instance); (4) per batch of heldout.txt the branch's
# stages 7 and 10 with the model's instance, then stage 10 at --group-rows 16 and 64. One process
# per line and binary, eager and graph, 20 repeats, cold L2, checked first; then (2) the branch's
# test_10_packinfer and (1) main's GPU tests (meson's gpu suite, PATLAB_REQUIRE_GPU=1). Writes
# OUT/RUN.tar.gz. MAIN_COMMIT is the commit main's build records (the call has no .git).
#   [RUN=r2] [STEPS="1 2 3 4"] [MAIN_COMMIT=...] docs/results/2026-12-05-h200-packinfer-classes/run2.sh OUT [SECONDS]
# shellcheck source=../../../tools/results_steps.sh
source "$(dirname "$0")/../../../tools/results_steps.sh"
results_args "$0" "$@"
steps=${STEPS:-1 2 3 4}
here=docs/results/2026-12-05-h200-packinfer-classes
results_begin "${RUN:-r2}" "$final" patlab test_10_packinfer || exit 1
export PATH=/usr/local/cuda/bin:$PATH
{ meson setup build-gpu --buildtype=release -Dgpu_arch=90 -Ddocs=disabled -Dcommit="${MAIN_COMMIT:-unknown}" &&
  ninja -C build-gpu; } \
  > "$out/main-build.log" 2>&1
echo "main build exit $? at $SECONDS s: $(build-gpu/tools/patlab --version | head -1)" | tee -a "$out/env.txt"
bench() {  # bench NAME BINARY WORKLOAD ARGS...: one line's results as out/NAME.jsonl
  local name=$1 bin=$2 wl=$3
  shift 3
  if (( $(left) < 20 )); then echo "stopped for time before $name"; return 1; fi
  # shellcheck disable=SC2086
  timeout "$(cap 90)" "$bin" bench $wl "$@" --repeats 20 --format jsonl > "$out/$name.jsonl" 2> "$out/$name.err"
  echo "exit $? at $SECONDS s: $name ($wl $*)"
}
lines() { grep -v '^ *#' "$1" | sed 's/#.*//' | grep -v '^ *$'; }
if [[ $steps == *3* ]]; then
  n=0
  while IFS= read -r wl; do
    n=$((n + 1))
    bench "main-$n" build-gpu/tools/patlab "$wl" --stage pat packinfer || break
    bench "branch-$n" /tmp/ab/patlab "$wl" --stage pat packinfer || break
  done < <(lines "$here/workloads.txt")
fi
if [[ $steps == *4* ]]; then
  n=0
  while IFS= read -r wl; do
    n=$((n + 1))
    bench "held-$n" /tmp/ab/patlab "$wl" --stage pat packinfer || break
    bench "held-$n-16" /tmp/ab/patlab "$wl" --stage packinfer --group-rows 16 || break
    bench "held-$n-64" /tmp/ab/patlab "$wl" --stage packinfer --group-rows 64 || break
  done < <(lines "$here/heldout.txt")
fi
[[ $steps == *2* ]] && run_tests test_10_packinfer
if [[ $steps == *1* ]]; then
  PATLAB_REQUIRE_GPU=1 timeout "$(cap 260)" meson test -C build-gpu --suite gpu --num-processes 1 \
    > "$out/main-gpu-tests.log" 2>&1
  echo "main gpu tests exit $? at $SECONDS s"
  grep -E "^ *[0-9]+/[0-9]+ |^Ok|^Fail|^Skipped" "$out/main-gpu-tests.log"
fi
exit 0
