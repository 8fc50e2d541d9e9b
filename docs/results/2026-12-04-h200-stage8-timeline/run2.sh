#!/usr/bin/env bash
# Runs 2 and 3 (RUN=r3) on the H200, each in one call; everything lands in OUT/RUN.tar.gz (RUN/,
# default r2). Run 2: launch gates in graphs too, stage 8 gated, equal-footprint buckets fewer
# CTAs first; run 3: stage 8 gated when launched eagerly, the rest as in b1cd470.
#  1. test_07_pat and test_08_hopper of the new build (build-ab/test_*.xz), PATLAB_REQUIRE_GPU=1
#     (their grids check graph replay as well as eager runs);
#  2. per workload of WORKLOADS ('|'-separated): stages 6, 7 and 8 of build-ab/patlab-before.xz
#     (b1cd470) and build-ab/patlab.xz (new), in turn, eager and graph, 20 repeats, cold L2,
#     checked (ab-<binary>-<w>.jsonl);
#  3. stages 6, 7 and 8 of the new build over tools/suite.txt then tools/suite-categories.txt,
#     unchecked, until the time is up (suite/N.jsonl: the N-th workload line of the two files).
# STEPS (default "tests ab suite") picks the steps; each unpacks only the binaries it runs (run 3
# took two calls, the carried binaries of one being over the size a call may carry). No step
# starts after SECONDS (default 540).
#   [RUN=r3] [STEPS=...] docs/results/2026-12-04-h200-stage8-timeline/run2.sh OUT [SECONDS]
set -uo pipefail
final=$1
budget=${2:-540}
here=$(cd "$(dirname "$0")" && pwd)
cd "$here/../../.." || exit 1
# shellcheck source=../../../tools/results_steps.sh
source tools/results_steps.sh
run=${RUN:-r2}
out=/tmp/$run
mkdir -p "$out/suite" "$final"
trap 'tar -C /tmp -czf "$final/$run.tar.gz" "$run"' EXIT
steps=" ${STEPS:-tests ab suite} "
step() { [[ $steps == *" $1 "* ]]; }
bins=(patlab)
step ab && bins+=(patlab-before)
unpack "${bins[@]}" || exit 1
device_env "${bins[@]}" > "$out/env.txt"
cat "$out/env.txt"
if step tests; then
  unpack test_07_pat test_08_hopper || exit 1
  for t in test_07_pat test_08_hopper; do
    PATLAB_REQUIRE_GPU=1 timeout "$(cap 120)" "/tmp/ab/$t" > "$out/test-$t.log" 2>&1
    echo "$t exit $? at $SECONDS s: $(grep -E 'passed|failed' "$out/test-$t.log" | tail -1)"
  done
fi
default_w="--random-tree 11 --random-requests 128 --random-max-segment 2048 --heads 32/8"
default_w+="|--random-tree 13 --random-requests 64 --random-depth 3 --random-max-segment 8192 --heads 64/8"
default_w+="|--tree 8,16,32,256_512,512,256,32 --heads 32/8|--tree 8,16,32,256_512,512,256,32 --heads 16/8"
default_w+="|--tree 1,128_16384,256 --model qwen2.5-7b|--hetero 1 --model qwen2.5-7b"
default_w+="|--random-tree 14 --random-requests 512 --random-max-segment 512 --heads 16/8"
default_w+="|--tree 1,4,8,256_32,256,256,32 --heads 16/8|--tree 1,256_256,32 --heads 16/8"
IFS='|' read -r -a workloads <<< "${WORKLOADS:-$default_w}"
step ab && for w in "${workloads[@]}"; do
  name=$(slug "$w")
  for b in patlab-before patlab; do
    if (( $(left) < 60 )); then echo "stopped for time before $b $name"; break 2; fi
    # shellcheck disable=SC2086
    timeout "$(cap 60)" "/tmp/ab/$b" bench $w --stage multistream pat hopper --repeats 20 --format jsonl \
      > "$out/ab-$b-$name.jsonl" 2> "$out/ab-$b-$name.err"
    echo "$b exit $? at $SECONDS s: $name"
  done
done
n=0
step suite && while IFS= read -r line; do
  w=${line%%#*}
  w=$(echo "$w" | xargs)
  [[ -z $w ]] && continue
  n=$((n + 1))
  if (( $(left) < 25 )); then echo "suite: stopped for time before line $n ($w)"; break; fi
  # shellcheck disable=SC2086
  timeout "$(cap 60)" /tmp/ab/patlab bench $w --stage multistream pat hopper --repeats 20 --no-check --format jsonl \
    > "$out/suite/$n.jsonl" 2> "$out/suite/$n.err"
  echo "suite $n exit $? at $SECONDS s: $w"
done < <(cat tools/suite.txt tools/suite-categories.txt)
exit 0
