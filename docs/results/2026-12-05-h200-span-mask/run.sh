#!/usr/bin/env bash
# The span packs' mask on the H200, one call, from a checkout with build-ab/patlab.xz (the mask
# loaded once per CTA, one division a tile), build-ab/patlab-before.xz (the commit before it) and
# build-ab/test_sparse_gpu.xz, built on the workstation (-Dgpu_arch=90). Steps (STEPS, default
# "1 2 3"):
#  1. test_sparse_gpu (PATLAB_REQUIRE_GPU=1): every order, FSA's masked spans included, against
#     the float64 oracle;
#  2. `patlab sparse W --method fsa --format json` (NSA's, the split's and FSA's orders, eager and
#     from a CUDA graph, each checked) per workload below, the before and after binaries in turn,
#     twice (before, after, before, after), one process each;
#  3. compute-sanitizer memcheck and racecheck on FSA's order with the new binary, two workloads.
# Writes OUT/RUN.tar.gz (RUN/, default r1: <bin>-<k>-<workload>.json, test and sanitizer logs).
# Carry build-ab/patlab.xz with build-ab/test_sparse_gpu.xz for step 1, with patlab-before.xz for
# steps 2 and 3 (two calls: STEPS=1, then STEPS="2 3" RUN=r2).
#   [RUN=r1] [STEPS="1 2 3"] docs/results/2026-12-05-h200-span-mask/run.sh OUT [SECONDS]
# shellcheck source=../../../tools/results_steps.sh
source "$(dirname "$0")/../../../tools/results_steps.sh"
results_args "$0" "$@"
steps=${STEPS:-1 2 3}
# Each step unpacks only what it runs, so that a call carries at most two of the three binaries
# (the tree and three would pass the 64 MiB limit): step 1 test_sparse_gpu, step 2 both patlabs.
results_begin "${RUN:-r1}" "$final" patlab || exit 1
if [[ $steps == *1* ]]; then
  unpack test_sparse_gpu && run_tests test_sparse_gpu
fi
if [[ $steps == *2* ]]; then
  unpack patlab-before || exit 1
  small="--tree 1,16_4096,256 --heads"
  large="--tree 1,64_16384,512 --heads"
  third="--tree 1,32_8192,256 --heads"
  w="$large 8/8|$large 16/8|$large 32/8|$small 16/8|$small 32/8|$third 16/8|$third 32/8"
  IFS='|' read -r -a workloads <<< "${WORKLOADS:-$w}"
  for k in 1 2; do
    for wl in "${workloads[@]}"; do
      for bin in patlab-before patlab; do
        if (( $(left) < 30 )); then echo "stopped for time before $bin $k $wl"; break 3; fi
        file=$out/$bin-$k-$(slug "$wl")
        # shellcheck disable=SC2086
        timeout "$(cap 60)" "/tmp/ab/$bin" sparse $wl --method fsa --quiet --format json > "$file.json" 2> "$file.err"
        echo "exit $? at $SECONDS s: $bin $k $wl"
      done
    done
  done
fi
if [[ $steps == *3* ]]; then
  for tool in memcheck racecheck; do
    for wl in "--tree 1,4_300,100 --heads 8/2 --head-dim 64 --clamp" "--tree 1,12_700,130 --heads 16/4 --top-n 8"; do
      if (( $(left) < 30 )); then echo "stopped for time before $tool $wl"; break 2; fi
      # shellcheck disable=SC2086
      timeout "$(cap 120)" compute-sanitizer --tool "$tool" --error-exitcode 9 /tmp/ab/patlab sparse $wl \
        --method fsa --repeats 20 --warmup 0 --quiet --format json > /dev/null 2>> "$out/sanitize.log"
      echo "$tool exit $? at $SECONDS s: $wl" | tee -a "$out/sanitize.log"
    done
  done
fi
exit 0
