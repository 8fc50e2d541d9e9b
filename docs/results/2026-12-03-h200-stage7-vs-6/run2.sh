#!/usr/bin/env bash
# The KV split's class check (065f6d2) against the split before it, on the H200, in one call:
#  1. the GPU tests of the new build (build-ab/TEST-new.xz for TEST in TESTS, default
#     test_07_pat), PATLAB_REQUIRE_GPU=1;
#  2. the stages of STAGES (default "multistream pat": 6 and 7) of each binary
#     (build-ab/patlab-NAME.xz for NAME in BINARIES, default "base new") on each of WORKLOADS
#     ('|'-separated), one bench per workload and binary (every stage on one pool), eager and
#     graph, 20 repeats, cold L2, with the plans.
# Everything lands in OUT/s76b.tar.gz. No step starts after SECONDS (default 560).
#   docs/results/2026-12-03-h200-stage7-vs-6/run2.sh OUT [SECONDS]
set -uo pipefail
final=$1
budget=${2:-560}
here=$(cd "$(dirname "$0")" && pwd)
cd "$here/../../.." || exit 1
out=/tmp/s76b
mkdir -p "$out" "$final"
trap 'tar -C /tmp -czf "$final/s76b.tar.gz" s76b' EXIT
left() { echo $(( budget - SECONDS )); }
cap() { local l; l=$(left); echo $(( l > $1 ? $1 : (l > 1 ? l : 1) )); }
slug() { echo "$1" | tr -c 'a-z0-9' '_' | tr -s '_'; }
default_w="--tree 1,4,16,512_1024,256,128,32 --model gemma-2-9b|--tree 1,2,64_1024,256,256 --heads 64/8"
default_w+="|--tree 1,4,8,256_32,256,256,32 --heads 16/8|--tree 1,64_4096,256 --model gemma-2-9b"
default_w+="|--tree 16_8192 --model gemma-2-9b|sysprompt|--tree 1,128_16384,256 --heads 32/8"
IFS='|' read -r -a workloads <<< "${WORKLOADS:-$default_w}"
read -r -a binaries <<< "${BINARIES:-base new}"
read -r -a tests <<< "${TESTS:-test_07_pat}"
read -r -a stages <<< "${STAGES:-multistream pat}"
mkdir -p /tmp/ab
for f in build-ab/*.xz; do xz -dc "$f" > "/tmp/ab/$(basename "$f" .xz)" && chmod +x "/tmp/ab/$(basename "$f" .xz)"; done
{ nvidia-smi --query-gpu=name,driver_version --format=csv; date -u
  for b in "${binaries[@]}"; do echo "$b: $("/tmp/ab/patlab-$b" --version | head -1)"; done; } > "$out/env.txt"
cat "$out/env.txt"
for t in "${tests[@]}"; do
  [[ -x /tmp/ab/$t-new ]] || continue
  PATLAB_REQUIRE_GPU=1 timeout "$(cap 120)" "/tmp/ab/$t-new" > "$out/test-$t-new.log" 2>&1
  echo "test $t-new exit $? at $SECONDS s: $(grep -E 'cases passed|test cases' "$out/test-$t-new.log" | tail -2 | tr '\n' ' ')"
done
for w in "${workloads[@]}"; do
  for b in "${binaries[@]}"; do
    name="$(slug "$w")-$b"
    if (( $(left) < 30 )); then echo "stopped for time before $name"; break 2; fi
    # shellcheck disable=SC2086
    timeout "$(cap 60)" "/tmp/ab/patlab-$b" bench $w --stage "${stages[@]}" --repeats 20 --no-check --format jsonl \
      > "$out/b-$name.jsonl" 2> "$out/b-$name.err"
    echo "bench exit $? at $SECONDS s: $name"
  done
done
