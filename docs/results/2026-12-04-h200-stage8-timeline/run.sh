#!/usr/bin/env bash
# Stage 8 against stage 7 where stage 8 loses, on the H200, in one call; everything lands in
# OUT/r1.tar.gz (r1/):
#  1. per workload of WORKLOADS ('|'-separated): stages 7 and 8 (`pat hopper`) of the default
#     build (build-ab/patlab.xz), eager and graph, 20 repeats, cold L2, checked (b-<w>.jsonl);
#  2. the same at --page 64 (p64-<w>.jsonl): a Hopper CTA's K/V boxes are one page long;
#  3. the trace build (build-ab/patlab-trace.xz, -Dcta_trace=true, whose stage-8 kernel records its
#     CTAs too): checked, timed, then three traced runs of each stage (t-<w>.csv).
# No step starts after SECONDS (default 420).
#   docs/results/2026-12-04-h200-stage8-timeline/run.sh OUT [SECONDS]
set -uo pipefail
final=$1
budget=${2:-420}
here=$(cd "$(dirname "$0")" && pwd)
cd "$here/../../.." || exit 1
# shellcheck source=../../../tools/results_steps.sh
source tools/results_steps.sh
out=/tmp/r1
mkdir -p "$out" "$final"
trap 'tar -C /tmp -czf "$final/r1.tar.gz" r1' EXIT
unpack patlab patlab-trace || exit 1
device_env patlab patlab-trace > "$out/env.txt"
cat "$out/env.txt"
default_w="--random-tree 11 --random-requests 128 --random-max-segment 2048 --heads 32/8"
default_w+="|--random-tree 13 --random-requests 64 --random-depth 3 --random-max-segment 8192 --heads 64/8"
default_w+="|--tree 8,16,32,256_512,512,256,32 --heads 32/8|--tree 1,128_16384,256 --model qwen2.5-7b"
IFS='|' read -r -a workloads <<< "${WORKLOADS:-$default_w}"
for w in "${workloads[@]}"; do
  name=$(slug "$w")
  if (( $(left) < 60 )); then echo "stopped for time before $name"; break; fi
  # shellcheck disable=SC2086
  timeout "$(cap 90)" /tmp/ab/patlab bench $w --stage pat hopper --repeats 20 --format jsonl \
    > "$out/b-$name.jsonl" 2> "$out/b-$name.err"
  echo "bench exit $? at $SECONDS s: $name"
  # shellcheck disable=SC2086
  timeout "$(cap 90)" /tmp/ab/patlab bench $w --page 64 --stage pat hopper --repeats 20 --format jsonl \
    > "$out/p64-$name.jsonl" 2> "$out/p64-$name.err"
  echo "page-64 bench exit $? at $SECONDS s: $name"
  # shellcheck disable=SC2086
  timeout "$(cap 90)" /tmp/ab/patlab-trace bench $w --stage pat hopper --repeats 20 --no-graph --format jsonl \
    --cta-trace "$out/t-$name.csv" > "$out/tb-$name.jsonl" 2> "$out/tb-$name.err"
  rc=$?
  lines=0
  [[ -f $out/t-$name.csv ]] && lines=$(wc -l < "$out/t-$name.csv")
  echo "trace bench exit $rc at $SECONDS s: $name ($lines lines)"
done
