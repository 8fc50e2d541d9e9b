#!/usr/bin/env bash
# Stage 9's 128-row CTA on 128-token KV stages (branch wide-cluster, D: patlab-d and
# test_09_cluster) against main (A: patlab), and stage 9's per-tile cost profiled, one call:
#  1. test_09_cluster of D with PATLAB_REQUIRE_GPU=1;
#  2. A/D: `bench W --stage hopper cluster --repeats 20` with patlab (A) and patlab-d (D) in the
#     order A, D, A, D per workload of AB ('|'-separated), only D's first run checked, into
#     RUN/ad-N-SIDE-K.jsonl;
#  3. Nsight Compute (`--set full`, clocks not locked) with A on `--tree 1,128_16384,256 --model
#     qwen2.5-7b`, the second launch of each: stage 8's 128-row hopper_pack_kernel at
#     --hopper-rows 128 (s8) and stage 9's cluster_pack_kernel at --max-cluster 1 (c1), into
#     ncu-NAME.txt (details page) and ncu-NAME-raw.csv (every metric).
# Writes OUT/RUN.tar.gz (RUN/; default p1).
#   [RUN=p1] [AB="W|W"] docs/results/2026-12-06-stage9-wide/run.sh OUT [SECONDS]
source "$(dirname "$0")/../../../tools/results_steps.sh"
results_args "$0" "$@"
results_begin "${RUN:-p1}" "$final" patlab patlab-d test_09_cluster || exit 1
export PATH=/usr/local/cuda/bin:$PATH
ncu --version | tail -1 >> "$out/env.txt"
tests_while 300 test_09_cluster
ab="--tree 1,128_16384,256 --model qwen2.5-7b|--tree 1,128_16384,256 --model qwen2.5-7b --max-cluster 1"
ab+="|--tree 64_16384 --heads 32/8|--tree 1,1024_2048,32 --heads 64/8|--tree 4,256_8192,512 --heads 32/8"
IFS='|' read -r -a wls <<< "${AB-$ab}"
n=0
for wl in "${wls[@]}"; do
  n=$((n + 1))
  for k in 1 2; do
    for side in a d; do
      if (( $(left) < 120 )); then echo "ad: stopped for time before $n $side$k"; break 3; fi
      bin=/tmp/ab/patlab; [[ $side == d ]] && bin=/tmp/ab/patlab-d
      check=--no-check; [[ $side$k == d1 ]] && check=
      # shellcheck disable=SC2086  # a workload is several options, on purpose
      timeout "$(cap 60)" "$bin" bench $wl --stage hopper cluster --repeats 20 $check --format jsonl \
        > "$out/ad-$n-$side-$k.jsonl" 2> "$out/ad-$n-$side-$k.err"
      echo "ad $n $side$k exit $? at $SECONDS s: $wl"
    done
  done
done
w=(--tree 1,128_16384,256 --model qwen2.5-7b)
profile() {  # NAME STAGE KERNEL_REGEX OPTS...
  local name=$1 stage=$2 regex=$3
  shift 3
  if (( $(left) < 30 )); then echo "ncu: stopped for time before $name"; return 0; fi
  timeout "$(cap 90)" ncu --clock-control none --set full --kernel-name-base demangled \
    -k "regex:$regex" --launch-skip 1 --launch-count 1 -f -o "/tmp/ncu-$name" \
    /tmp/ab/patlab bench "${w[@]}" --stage "$stage" "$@" --no-check --repeats 20 --warmup 1 \
    --no-graph > "$out/ncu-$name.log" 2>&1
  echo "ncu $name exit $? at $SECONDS s"
  ncu --import "/tmp/ncu-$name.ncu-rep" --page details > "$out/ncu-$name.txt" 2>> "$out/ncu-$name.log"
  ncu --import "/tmp/ncu-$name.ncu-rep" --page raw --csv > "$out/ncu-$name-raw.csv" 2>> "$out/ncu-$name.log"
}
profile s8 hopper 'hopper_pack_kernel<__half, .int.128, .int.2, .int.64, .bool.0>' --hopper-rows 128
profile c1 cluster 'cluster_pack_kernel' --max-cluster 1
exit 0
