#!/usr/bin/env bash
# Stage 8 with the 192-row ring of five stages (tall-ring) and the 128-row tile on 128-token KV
# stages (wide-tile), branch tall-wide (B, its pipelined 128-row consumer) and the same with the
# serial 128-row consumer (C, built with -DPATLAB_WIDE_SERIAL), each against main (A), one call:
#  1. test_08_hopper of B with PATLAB_REQUIRE_GPU=1;
#  2. A/B: `bench W --stage pat hopper --repeats 20` with patlab (A) and patlab-b (B) in the order
#     A, B, A, B per workload of AB ('|'-separated; default: five with 128-row packs, four with
#     192-row ones, one with both, a control), only B's first run checked, into RUN/ab-N-SIDE-K.jsonl;
#  3. compute-sanitizer synccheck and racecheck on stage 8 of B (tools/sanitize.sh) over a
#     192-row and a 128-row pack;
#  4. the same A/B with patlab-c as B on the first CN workloads (default 3) into RUN/c/.
# Writes OUT/RUN.tar.gz (RUN/; default r1).
#   [RUN=r1] [AB="W|W"] [CN=3] docs/results/2026-12-06-tall-wide/run.sh OUT [SECONDS]
source "$(dirname "$0")/../../../tools/results_steps.sh"
results_args "$0" "$@"
results_begin "${RUN:-r1}" "$final" patlab patlab-b patlab-c test_08_hopper || exit 1
tests_while 420 test_08_hopper
ab="--tree 1,64_32768,512 --heads 32/8|--tree 4,256_8192,512 --heads 32/8"
ab+="|--tree 1,1024_2048,32 --heads 32/8 --hopper-rows 128|--tree 1,32_32768,512 --heads 32/8"
ab+="|--tree 1,16_16384,128 --heads 64/8"
ab+="|--tree 1,128_16384,256 --model qwen2.5-7b|--tree 1,1024_2048,32 --heads 64/8"
ab+="|--tree 1,96_12000,200 --heads 40/8|--hetero 3 --hetero-requests 512 --hetero-prefix 4096 --heads 32/8"
ab+="|--tree 1,128_16384,256 --model qwen2.5-32b|--tree 1,256_256,32 --heads 32/32"
IFS='|' read -r -a wls <<< "${AB-$ab}"
ab_runs 200 "${wls[@]}"
if (( $(left) > 110 )); then
  sanitize_prep patlab-b
  SANITIZE_STAGES=hopper SANITIZE_TOOLS="synccheck racecheck" \
    SANITIZE_WORKLOADS="--tree 1,40_300,17 --heads 48/4 --hopper-min-kv 0 --hopper-wide-kv 0|--tree 1,10_300,17 --heads 48/4 --hopper-min-kv 0 --hopper-wide-kv 0" \
    timeout "$(cap 110)" tools/sanitize.sh /tmp/sb > "$out/sanitize.log" 2>&1
  echo "sanitize exit $? at $SECONDS s: $(tail -1 "$out/sanitize.log")"
fi
cp /tmp/ab/patlab-c /tmp/ab/patlab-b
top=$out
out=$top/c
mkdir -p "$out"
ab_runs 15 "${wls[@]:0:${CN:-3}}"
exit 0
