#!/usr/bin/env bash
# Stage 8's new routing defaults on the H200, one call, from a checkout with build-ab/bundle.tar.xz
# holding patlab and test_08_hopper built on the workstation (sm_90a) at the commit of the change:
#  1. test_08_hopper (PATLAB_REQUIRE_GPU=1) at the new defaults: every grid, the byte model of the
#     fp8 and d = 256 shapes included;
#  2. tools/bench_ab.py over workloads.txt, stages 7 and 8 (each run checked against the oracle),
#     A = the old routing (--hopper-wide-kv 2048 --hopper-min-piece 0), B = the new defaults
#     spelled out (--hopper-wide-kv 1024 --hopper-min-piece 512), 20 timed runs, cold L2.
# Writes OUT/RUN.tar.gz (RUN/, default r1: env.txt, the test log, ab/ab.jsonl and ab/ab.md).
#   [RUN=r1] docs/results/2026-12-05-h200-stage8-defaults/run.sh OUT [SECONDS]
# shellcheck source=../../../tools/results_steps.sh
source "$(dirname "$0")/../../../tools/results_steps.sh"
results_args "$0" "$@"
here=docs/results/2026-12-05-h200-stage8-defaults
results_begin "${RUN:-r1}" "$final" patlab test_08_hopper || exit 1
run_tests test_08_hopper
timeout "$(cap 400)" python3 tools/bench_ab.py --patlab /tmp/ab/patlab --suite "$here/workloads.txt" \
  --a "--hopper-wide-kv 2048 --hopper-min-piece 0" --b "--hopper-wide-kv 1024 --hopper-min-piece 512" \
  --stages pat,hopper --repeats 20 --out "$out/ab" > "$out/ab.log" 2>&1
echo "bench_ab exit $? at $SECONDS s"
tail -30 "$out/ab.log"
