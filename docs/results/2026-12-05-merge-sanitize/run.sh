#!/usr/bin/env bash
# compute-sanitizer on the stages whose merge changed with the early loads (merge.cuh's
# merge_query_head(): stage 3's and every later stage's merge kernel, and stage 9's folded
# merge), one call, build-ab/patlab.xz (a binary of main built on the workstation). Per step of
# STEPS ('|'-separated "TOOL STAGE...", default below, in that order) tools/sanitize.sh with
# SANITIZE_TOOLS=TOOL SANITIZE_STAGES="STAGE..." over its five small workloads, each step under
# the time left; then, while time is left, `patlab bench` of the two suite lines with group-5 and
# group-7 prefixes under stage 8's routing settings of ROUTES (stages 7 and 8, checked).
# Writes OUT/RUN.tar.gz (RUN/, default r1). No step starts after SECONDS (default 540).
#   [RUN=r1] [STEPS=...] docs/results/2026-12-05-merge-sanitize/run.sh OUT [SECONDS]
# shellcheck source=../../../tools/results_steps.sh
source "$(dirname "$0")/../../../tools/results_steps.sh"
results_args "$0" "$@"
results_begin "${RUN:-r1}" "$final" patlab || exit 1
export PATH=/usr/local/cuda/bin:$PATH
compute-sanitizer --version | tail -1 >> "$out/env.txt"
mkdir -p /tmp/sb/tools && cp /tmp/ab/patlab /tmp/sb/tools/patlab
steps="memcheck splitkv pat hopper cluster|racecheck cluster hopper|synccheck cluster hopper"
steps+="|memcheck multistream packinfer|racecheck pat splitkv"
IFS='|' read -r -a list <<< "${STEPS:-$steps}"
n=0
for step in "${list[@]}"; do
  n=$((n + 1))
  read -r tool stages <<< "$step"
  if (( $(left) < 40 )); then echo "stopped for time before step $n ($step)"; break; fi
  SANITIZE_TOOLS=$tool SANITIZE_STAGES=$stages timeout "$(cap 300)" tools/sanitize.sh /tmp/sb > "$out/sanitize-$n.log" 2>&1
  echo "step $n ($step) exit $? at $SECONDS s: $(tail -1 "$out/sanitize-$n.log")"
done
routes=("" "--hopper-rows 128" "--hopper-wide-kv 8192" "--hopper-min-piece 1024")
for w in "--tree 1,64_4096,256 --model qwen2.5-32b" "--tree 1,128_16384,256 --model qwen2.5-7b"; do
  for r in "${routes[@]}"; do
    if (( $(left) < 15 )); then echo "stopped for time before bench $w $r"; exit 0; fi
    # shellcheck disable=SC2086
    timeout "$(cap 60)" /tmp/ab/patlab bench $w $r --stage pat hopper --repeats 20 --format jsonl \
      > "$out/route-$(slug "$w $r").jsonl" 2> "$out/route-$(slug "$w $r").err"
    echo "bench exit $? at $SECONDS s: $w $r"
  done
done
exit 0
