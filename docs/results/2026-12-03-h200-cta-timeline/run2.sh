#!/usr/bin/env bash
# One carveout for every kernel (kernel_smem.cuh) against the build before it, on the H200, in
# one call; everything lands in OUT/r2.tar.gz:
#  1. the GPU tests TESTS of the new build (build-ab/TEST-carve.xz; default test_06_multistream
#     test_07_pat test_08_hopper), PATLAB_REQUIRE_GPU=1;
#  2. stages STAGES (default "multistream pat hopper") of each binary (build-ab/patlab-NAME.xz for
#     NAME in BINARIES, default "base carve") on each of WORKLOADS ('|'-separated), eager and graph,
#     20 repeats, cold L2; the new binary checks every stage against the oracle first;
#  3. the new trace build (build-ab/patlab-trace.xz) on TRACED ('|'-separated), stages 6 and 7.
# No step starts after SECONDS (default 540).
#   docs/results/2026-12-03-h200-cta-timeline/run2.sh OUT [SECONDS]
set -uo pipefail
final=$1
budget=${2:-540}
here=$(cd "$(dirname "$0")" && pwd)
cd "$here/../../.." || exit 1
# shellcheck source=../../../tools/results_steps.sh
source tools/results_steps.sh
out=/tmp/r2
mkdir -p "$out" "$final"
trap 'tar -C /tmp -czf "$final/r2.tar.gz" r2' EXIT
default_w="--tree 1,2,64_1024,256,256 --heads 64/8|--tree 1,4,8,256_32,256,256,32 --heads 16/8"
default_w+="|--tree 1,256_256,32 --heads 16/8|sysprompt|--tree 16_32768 --heads 32/8"
default_w+="|--tree 1,4,16,512_1024,256,128,32 --model gemma-2-9b|--random-tree 7 --random-requests 48 --random-depth 6 --heads 32/8"
default_w+="|--hetero 1|--hetero 1 --kv-dtype fp8|--tree 1,128_16384,256 --model qwen2.5-7b|--tree 4,256_8192,512 --heads 32/8"
default_w+="|--tree 1,1024_2048,32 --heads 64/8|--tree 1,64_4096,256 --model gemma-2-9b"
traced_w="--tree 1,2,64_1024,256,256 --heads 64/8|--tree 1,4,8,256_32,256,256,32 --heads 16/8|sysprompt"
IFS='|' read -r -a workloads <<< "${WORKLOADS:-$default_w}"
IFS='|' read -r -a traced <<< "${TRACED:-$traced_w}"
read -r -a binaries <<< "${BINARIES:-base carve}"
read -r -a tests <<< "${TESTS:-test_06_multistream test_07_pat test_08_hopper}"
read -r -a stages <<< "${STAGES:-multistream pat hopper}"
mkdir -p /tmp/ab
for f in build-ab/*.xz; do xz -dc "$f" > "/tmp/ab/$(basename "$f" .xz)" && chmod +x "/tmp/ab/$(basename "$f" .xz)"; done
{ nvidia-smi --query-gpu=name,driver_version,clocks.max.sm --format=csv; date -u
  for b in "${binaries[@]}" trace; do echo "$b: $("/tmp/ab/patlab-$b" --version | head -1)"; done; } > "$out/env.txt"
cat "$out/env.txt"
for t in "${tests[@]}"; do
  [[ -x /tmp/ab/$t-carve ]] || continue
  PATLAB_REQUIRE_GPU=1 timeout "$(cap 150)" "/tmp/ab/$t-carve" > "$out/test-$t.log" 2>&1
  echo "test $t exit $? at $SECONDS s: $(grep -E 'passed|failed' "$out/test-$t.log" | tail -1)"
done
for w in "${workloads[@]}"; do
  for b in "${binaries[@]}"; do
    name="$(slug "$w")-$b"
    if (( $(left) < 30 )); then echo "stopped for time before $name"; break 2; fi
    check=--no-check
    [[ $b == carve ]] && check=
    # shellcheck disable=SC2086
    timeout "$(cap 90)" "/tmp/ab/patlab-$b" bench $w --stage "${stages[@]}" --repeats 20 $check --format jsonl \
      > "$out/b-$name.jsonl" 2> "$out/b-$name.err"
    echo "bench exit $? at $SECONDS s: $name"
  done
done
for w in "${traced[@]}"; do
  name=$(slug "$w")
  if (( $(left) < 30 )); then echo "stopped for time before trace $name"; break; fi
  # shellcheck disable=SC2086
  timeout "$(cap 90)" /tmp/ab/patlab-trace bench $w --stage multistream pat --repeats 20 --no-graph --format jsonl \
    --cta-trace "$out/t-$name.csv" > "$out/tb-$name.jsonl" 2> "$out/tb-$name.err"
  echo "trace bench exit $? at $SECONDS s: $name"
done
