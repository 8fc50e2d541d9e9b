#!/usr/bin/env bash
# Stage 8's minimum piece per 128 rows (branch piece-rows) against main on the GPU machine, one
# call: B's test_08_hopper (PATLAB_REQUIRE_GPU=1), then per workload of AB ('|'-separated, default
# below: 15 whose stage-8 plan B changes, the first the suite's line 102, and one it does not)
# `patlab bench --stage pat hopper --repeats 20` with A (main's patlab, unchecked), B (patlab-b,
# checked), A, B (unchecked) into ab-N-SIDE-K.jsonl (the table:
# ../2026-12-05-h200-suite-defaults/ab_table.py r1). Binaries from build-ab/bundle.tar.xz
# (build-ab/COMMIT). Writes OUT/r1.tar.gz (r1/).
#   docs/results/2026-12-05-piece-rows/run.sh OUT [SECONDS]
source "$(dirname "$0")/../../../tools/results_steps.sh"
results_args "$0" "$@"
tests=(test_08_hopper-b)
results_begin r1 "$final" patlab patlab-b "${tests[@]}" || exit 1
ab="--tree 1,64_4096,256 --model qwen2.5-32b"
ab+="|--tree 1,32_4096,200 --model qwen2.5-32b"
ab+="|--tree 1,96_2048,200 --model qwen2.5-32b"
ab+="|--tree 1,64_8192,200 --model qwen2.5-32b"
ab+="|--tree 1,48_3072,200 --model qwen2.5-7b"
ab+="|--tree 1,64_4096,200 --model qwen2.5-7b"
ab+="|--tree 1,128_2048,200 --model qwen2.5-7b"
ab+="|--tree 1,96_8192,200 --model qwen2.5-7b"
ab+="|--tree 1,48_4096,200 --model llama3-70b"
ab+="|--tree 1,96_2048,200 --model llama3-70b"
ab+="|--tree 1,48_8192,200 --heads 32/8"
ab+="|--tree 1,128_2048,200 --heads 32/8"
ab+="|--tree 1,96_4096,200 --heads 16/8"
ab+="|--tree 1,64_2048,200 --heads 64/8"
ab+="|--tree 1,48_4096,200 --heads 64/8"
ab+="|--tree 1,128_16384,256 --model qwen2.5-7b"
IFS='|' read -r -a abw <<< "${AB:-$ab}"
ab_runs 120 "${abw[@]}"
run_tests "${tests[@]}"
exit 0
