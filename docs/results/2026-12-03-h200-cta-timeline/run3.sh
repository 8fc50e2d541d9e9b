#!/usr/bin/env bash
# The class check's room for the smallest class (the new build, `room`) against 4e6275e (`carve`),
# on the H200, in one call; everything lands in OUT/r3.tar.gz:
#  1. stages 6 and 7 of both binaries (build-ab/patlab-NAME.xz) on WORKLOADS ('|'-separated),
#     eager and graph, 20 repeats, cold L2; `room` checks them against the oracle first;
#  2. the new build's test_07_pat (build-ab/test_07_pat-room.xz), PATLAB_REQUIRE_GPU=1;
#  3. stages 6 and 7 of `room` on every workload of tools/suite.txt and
#     tools/suite-categories.txt, unchecked, until the time is up.
# No step starts after SECONDS (default 560).
#   docs/results/2026-12-03-h200-cta-timeline/run3.sh OUT [SECONDS]
set -uo pipefail
final=$1
budget=${2:-560}
here=$(cd "$(dirname "$0")" && pwd)
cd "$here/../../.." || exit 1
# shellcheck source=../../../tools/results_steps.sh
source tools/results_steps.sh
out=/tmp/r3
mkdir -p "$out/suite" "$final"
trap 'tar -C /tmp -czf "$final/r3.tar.gz" r3' EXIT
default_w="--tree 4,256_8192,512 --heads 32/8|--tree 4,256_8192,512 --heads 32/8 --kv-dtype fp8"
default_w+="|--tree 1,4,16,512_1024,256,128,32 --heads 16/8|--tree 8,16,32,256_512,512,256,32 --heads 32/8"
default_w+="|--tree 1,2,64_1024,256,256 --heads 64/8|--tree 1,4,8,256_32,256,256,32 --heads 16/8|sysprompt"
IFS='|' read -r -a workloads <<< "${WORKLOADS:-$default_w}"
mkdir -p /tmp/ab
for f in build-ab/*.xz; do xz -dc "$f" > "/tmp/ab/$(basename "$f" .xz)" && chmod +x "/tmp/ab/$(basename "$f" .xz)"; done
{ nvidia-smi --query-gpu=name,driver_version,clocks.max.sm --format=csv; date -u
  for b in carve room; do echo "$b: $("/tmp/ab/patlab-$b" --version | head -1)"; done; } > "$out/env.txt"
cat "$out/env.txt"
for w in "${workloads[@]}"; do
  for b in carve room; do
    name="$(slug "$w")-$b"
    if (( $(left) < 30 )); then echo "stopped for time before $name"; break 2; fi
    check=--no-check
    [[ $b == room ]] && check=
    # shellcheck disable=SC2086
    timeout "$(cap 90)" "/tmp/ab/patlab-$b" bench $w --stage multistream pat --repeats 20 $check --format jsonl \
      > "$out/b-$name.jsonl" 2> "$out/b-$name.err"
    echo "bench exit $? at $SECONDS s: $name"
  done
done
PATLAB_REQUIRE_GPU=1 timeout "$(cap 120)" /tmp/ab/test_07_pat-room > "$out/test-test_07_pat.log" 2>&1
echo "test_07_pat exit $? at $SECONDS s: $(grep -E 'passed|failed' "$out/test-test_07_pat.log" | tail -1)"
n=0
while IFS= read -r line; do
  w=${line%%#*}
  w=$(echo "$w" | xargs)
  [[ -z $w ]] && continue
  n=$((n + 1))
  if (( $(left) < 25 )); then echo "suite: stopped for time before line $n ($w)"; break; fi
  # shellcheck disable=SC2086
  timeout "$(cap 60)" /tmp/ab/patlab-room bench $w --stage multistream pat --repeats 20 --no-check --format jsonl \
    > "$out/suite/$n.jsonl" 2> "$out/suite/$n.err"
  echo "suite $n exit $? at $SECONDS s: $w"
done < <(cat tools/suite.txt tools/suite-categories.txt)
