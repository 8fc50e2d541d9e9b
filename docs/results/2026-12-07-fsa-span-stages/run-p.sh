#!/usr/bin/env bash
# Nsight Compute on FSA's 64-row span kernel (README.md, run p1), one call on any H100 or H200:
# `ncu` (sections SpeedOfLight, MemoryWorkloadAnalysis, Occupancy, WarpStateStats, LaunchStats;
# clocks left alone) on the first launch of the masked 64x64 instance at d = 128 in `patlab
# sparse --tree 1,256_16384,512 --heads 32/8 --method fsa` of main bd78004f
# (build-ab/patlab-d.xz) into RUN/ncu.txt. Writes OUT/RUN.tar.gz (RUN/; default p1).
#   [RUN=p1] docs/results/2026-12-07-fsa-span-stages/run-p.sh OUT [SECONDS]
# shellcheck source=../../../tools/results_steps.sh
source "$(dirname "$0")/../../../tools/results_steps.sh"
results_args "$0" "$@"
results_begin "${RUN:-p1}" "$final" patlab-d || exit 1
timeout "$(cap 200)" ncu --clock-control none --kernel-name-base demangled \
  -k "regex:\(int\)128, \(int\)64, \(int\)64, \(int\)2," --launch-count 1 \
  --section SpeedOfLight --section MemoryWorkloadAnalysis --section Occupancy --section WarpStateStats \
  --section LaunchStats /tmp/ab/patlab-d sparse --tree 1,256_16384,512 --heads 32/8 --method fsa \
  --repeats 20 --warmup 0 --quiet --format json > "$out/ncu.txt" 2> "$out/ncu.err"
echo "ncu exit $? at $SECONDS s"
exit 0
