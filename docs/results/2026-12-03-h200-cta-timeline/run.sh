#!/usr/bin/env bash
# The CTA timeline of stages 6 and 7 on the H200, in one call:
#  1. each of WORKLOADS ('|'-separated) with the default build (build-ab/patlab-default.xz):
#     stages STAGES (default "multistream pat"), eager and graph, 20 repeats, cold L2, checked;
#  2. the same with the trace build (build-ab/patlab-trace.xz, -Dcta_trace=true): checked, timed,
#     then three traced runs of each stage, written to OUT/t-<workload>.csv.
# Files land in OUT directly. No step starts after SECONDS (default 540).
#   docs/results/2026-12-03-h200-cta-timeline/run.sh OUT [SECONDS]
set -uo pipefail
out=$1
budget=${2:-540}
here=$(cd "$(dirname "$0")" && pwd)
cd "$here/../../.." || exit 1
mkdir -p "$out"
# shellcheck source=../../../tools/results_steps.sh
source tools/results_steps.sh
default_w="--tree 1,2,64_1024,256,256 --heads 64/8|--tree 1,4,8,256_32,256,256,32 --heads 16/8"
default_w+="|--tree 1,256_256,32 --heads 16/8|sysprompt|--tree 16_32768 --heads 32/8"
IFS='|' read -r -a workloads <<< "${WORKLOADS:-$default_w}"
read -r -a stages <<< "${STAGES:-multistream pat}"
mkdir -p /tmp/ab
for b in default trace; do
  xz -dc "build-ab/patlab-$b.xz" > "/tmp/ab/patlab-$b" && chmod +x "/tmp/ab/patlab-$b"
done
{ nvidia-smi --query-gpu=name,driver_version,clocks.max.sm --format=csv; date -u
  for b in default trace; do echo "$b: $("/tmp/ab/patlab-$b" --version | head -1)"; done; } > "$out/env.txt"
cat "$out/env.txt"
for w in "${workloads[@]}"; do
  name=$(slug "$w")
  if (( $(left) < 40 )); then echo "stopped for time before $name"; break; fi
  # shellcheck disable=SC2086
  timeout "$(cap 90)" /tmp/ab/patlab-default bench $w --stage "${stages[@]}" --repeats 20 --format jsonl \
    > "$out/b-$name.jsonl" 2> "$out/b-$name.err"
  echo "default bench exit $? at $SECONDS s: $name"
  # shellcheck disable=SC2086
  timeout "$(cap 90)" /tmp/ab/patlab-trace bench $w --stage "${stages[@]}" --repeats 20 --no-graph --format jsonl \
    --cta-trace "$out/t-$name.csv" > "$out/tb-$name.jsonl" 2> "$out/tb-$name.err"
  rc=$?
  lines=0
  [[ -f $out/t-$name.csv ]] && lines=$(wc -l < "$out/t-$name.csv")
  echo "trace bench exit $rc at $SECONDS s: $name ($lines lines)"
done
