#!/usr/bin/env bash
# Main's head on the GPU machine, in one or more calls: with BUILD=1 (default) build-gpu from this
# checkout (meson, -Dgpu_arch=90, docs off; kept on a warm machine, so a later call skips it), with
# TESTS=1 (default) every GPU test (PATLAB_REQUIRE_GPU=1, a skip fails), then the suite (every line
# of tools/suite.txt then tools/suite-categories.txt, from line FIRST, default 1): `patlab bench W
# --stage multistream pat hopper --repeats 20 --no-check --format jsonl` (cold L2, eager and graph,
# the stages' defaults) into RUN/suite/N.jsonl, while time is left. Writes OUT/RUN.tar.gz (RUN/,
# default r1). No run starts after SECONDS (default 540).
#   [RUN=r1] [BUILD=0|1] [TESTS=0|1] [FIRST=N] docs/results/2026-12-05-head-suite/run.sh OUT [SECONDS]
# shellcheck source=../../../tools/results_steps.sh
source "$(dirname "$0")/../../../tools/results_steps.sh"
results_args "$0" "$@"
run=${RUN:-r1}
out=/tmp/$run
mkdir -p "$out/suite" "$final"
trap 'tar -C /tmp -czf "$final/$run.tar.gz" "$run"' EXIT
export PATH=/usr/local/cuda/bin:$PATH
commit=${PATLAB_COMMIT:-$(git rev-parse --short=12 HEAD 2>/dev/null || echo unknown)}
if [[ ${BUILD:-1} == 1 && ! -x build-gpu/tools/patlab ]]; then
  { meson setup build-gpu --buildtype=release -Dgpu_arch=90 -Ddocs=disabled -Dcommit="$commit" &&
    ninja -C build-gpu; } > "$out/build.log" 2>&1 || { tail -30 "$out/build.log"; exit 1; }
  echo "built at $SECONDS s"
fi
{ nvidia-smi --query-gpu=name,driver_version,clocks.max.sm --format=csv; date -u; nvcc --version | tail -1
  build-gpu/tools/patlab --version | head -1; } > "$out/env.txt"
cat "$out/env.txt"
if [[ ${TESTS:-1} == 1 ]]; then
  PATLAB_REQUIRE_GPU=1 timeout "$(cap 400)" meson test -C build-gpu --suite gpu --num-processes 1 > "$out/tests.log" 2>&1
  echo "gpu tests exit $? at $SECONDS s: $(grep -E '^(Ok|Fail|Skipped|Timeout):' "$out/tests.log" | tr -s ' ' | tr '\n' ' ')"
fi
while read -r n wl; do
  (( n < ${FIRST:-1} )) && continue
  if (( $(left) < 20 )); then echo "suite: stopped for time before line $n ($wl)"; break; fi
  # shellcheck disable=SC2086
  timeout "$(cap 60)" build-gpu/tools/patlab bench $wl --stage multistream pat hopper --repeats 20 \
    --no-check --format jsonl > "$out/suite/$n.jsonl" 2> "$out/suite/$n.err"
  echo "suite $n exit $? at $SECONDS s: $wl"
done < <(suite_workloads)
exit 0
