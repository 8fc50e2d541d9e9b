#!/usr/bin/env bash
# 16-bit partials (branch partials16: `--half-partials`, stages 4-9 store each partial's o in the
# output's 16-bit type; lse stays fp32) on the GPU machine, one call. One binary for both sides:
# without the option its partials are fp32 and its kernels main's.
#  1. check (STEPS has "check"): per workload of CHECK ('|'-separated; default below: small
#     batches over both 16-bit dtypes, head dims 64/128/256, groups 1-8, an fp8 cache, pages of
#     16/32/64 tokens and a deep tree of many partials) `patlab bench W --stage 4 5 6 7 8 9
#     --repeats 20 --no-graph`, checked against the float64 oracle, without (side a) and with
#     --half-partials (side b), into check-N-SIDE.jsonl: every stage's verdict and its worst row's
#     error and bound on both sides.
#  2. ab (STEPS has "ab"): per workload line N of LINES (tools/suite.txt then
#     tools/suite-categories.txt, as suite_workloads numbers them; default: issue 12's 23 lines
#     below 50% of the copy bandwidth on the H200, lowest first, then four control lines) and then
#     each workload of EXTRA ('|'-separated; default a held-out random tree), `patlab bench W
#     --stage pat hopper --repeats 20 --format jsonl` in the order a, b, a, b (b = --half-partials;
#     only b's first run checked) into ab-N-SIDE-K.jsonl (N: the suite line, or 901, 902, ... for
#     EXTRA); the table: ../2026-12-05-h200-suite-defaults/ab_table.py RUN.
# Binary from build-ab/bundle.tar.xz (build-ab/COMMIT). Writes OUT/RUN.tar.gz (RUN/; default r1).
#   [RUN=r1] [STEPS="check ab"] [LINES="12 11 ..."] [EXTRA="W|W"] [CHECK="W|W"] \
#     docs/results/2026-12-06-half-partials/run.sh OUT [SECONDS]
source "$(dirname "$0")/../../../tools/results_steps.sh"
results_args "$0" "$@"
results_begin "${RUN:-r1}" "$final" patlab-half || exit 1
steps=${STEPS:-check ab}
bin=/tmp/ab/patlab-half
if [[ $steps == *check* ]]; then
  chk="--tree 1,40_300,17 --heads 32/4"
  chk+="|--tree 1,12_700,130 --heads 16/4 --dtype bf16 --page 32"
  chk+="|--tree 2,8_333,77 --heads 8/1 --head-dim 64 --page 64"
  chk+="|--tree 1,16_1024,64 --heads 28/4 --head-dim 256"
  chk+="|--tree 1,16_1024,64 --heads 32/8 --kv-dtype fp8"
  chk+="|--tree 1,4,16,64_256,64,32,17 --heads 40/8 --dtype bf16"
  chk+="|--random-tree 7 --random-requests 64 --heads 24/8"
  IFS='|' read -r -a chkw <<< "${CHECK:-$chk}"
  n=0
  for wl in "${chkw[@]}"; do
    n=$((n + 1))
    for side in a b; do
      if (( $(left) < 60 )); then echo "check: stopped for time before $n $side"; break 2; fi
      extra=; [[ $side == b ]] && extra=--half-partials
      # shellcheck disable=SC2086  # a workload is several options, on purpose
      timeout "$(cap 90)" "$bin" bench $wl $extra --stage 4 5 6 7 8 9 --repeats 20 --no-graph --format jsonl \
        > "$out/check-$n-$side.jsonl" 2> "$out/check-$n-$side.err"
      echo "check $n $side exit $? at $SECONDS s: $wl $extra"
    done
  done
fi
if [[ $steps == *ab* ]]; then
  lines=" ${LINES:-12 11 52 112 103 108 60 56 48 81 47 10 107 51 55 68 82 59 54 58 46 50 67 1 93 45 61} "
  declare -A wl_of
  while read -r n wl; do wl_of[$n]=$wl; done < <(suite_workloads)
  keys=() wls=()
  for n in $lines; do keys+=("$n"); wls+=("${wl_of[$n]}"); done
  IFS='|' read -r -a xw <<< "${EXTRA:---random-tree 31 --random-requests 256 --random-depth 5 --random-max-segment 200 --heads 32/8}"
  i=0
  for wl in "${xw[@]}"; do i=$((i + 1)); keys+=("$((900 + i))"); wls+=("$wl"); done
  for j in "${!keys[@]}"; do
    key=${keys[$j]} wl=${wls[$j]}
    for k in 1 2; do
      for side in a b; do
        if (( $(left) < 15 )); then echo "ab: stopped for time before $key $side$k"; exit 0; fi
        extra=--no-check; [[ $side == b ]] && extra="--half-partials"; [[ $side$k == b2 ]] && extra+=" --no-check"
        # shellcheck disable=SC2086  # a workload is several options, on purpose
        timeout "$(cap 60)" "$bin" bench $wl $extra --stage pat hopper --repeats 20 --format jsonl \
          > "$out/ab-$key-$side-$k.jsonl" 2> "$out/ab-$key-$side-$k.err"
        echo "ab $key $side$k exit $? at $SECONDS s: $wl"
      done
    done
  done
fi
exit 0
