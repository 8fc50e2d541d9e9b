#!/usr/bin/env bash
# Stage 8's consumer pipeline (the softmax of tile i runs while the tensor cores add P V of tile
# i-1) and stage 9's CTA-scope release of 1-CTA items, on the H200, in one call:
#  1. the GPU tests carried in build-ab/ (gpu_08_hopper, gpu_09_cluster: the stages whose
#     kernel this commit changed; gpu_hopper_primitives: the wrappers), in parallel (stage 7, whose
#     host side 597fbab refactored, is checked against the oracle by every bench of step 2);
#  2. A/B/C: patlab bench of stages 7, 8 and 9 with three binaries, one workload at a time,
#     binaries in turn: c06e5cb (stage 8 serial, stage 9 with cluster-scope releases: the
#     measured state of chapters 17 and 18), 597fbab (stage 9's CTA-scope release of 1-CTA
#     items, 7382dcd, refactored) and this commit (stage 8 and 9's pipelined consumer);
#  3. stage 9 at --max-cluster 1 on two workloads, the three binaries;
#  4. compute-sanitizer on stage 8 (memcheck, racecheck, synccheck) and racecheck on stage 9
#     with every hazard's block and thread (--racecheck-report hazard).
# The binaries are carried, xz-compressed, in build-ab/ (built on the CPU machine with nvcc 13;
# patlab records its commit). Everything lands in OUT/overlap.tar.gz. No step starts after
# SECONDS (default 500) of this script.
#   docs/results/2026-12-02-h200-consumer-overlap/run.sh OUT [SECONDS]
set -uo pipefail
final=$1
budget=${2:-500}
here=$(cd "$(dirname "$0")" && pwd)
cd "$here/../../.."
out=/tmp/overlap
bin=/tmp/ab
mkdir -p "$out" "$final" "$bin/tools" "$bin/tests"
trap 'tar -C /tmp -czf "$final/overlap.tar.gz" overlap' EXIT
export PATH=/usr/local/cuda/bin:$PATH
left() { echo $(( budget - SECONDS )); }
cap() { local l; l=$(left); echo $(( l > $1 ? $1 : (l > 1 ? l : 1) )); }
for f in build-ab/*.xz; do
  name=$(basename "$f" .xz)
  case $name in test_*) dst=$bin/tests/$name ;; *) dst=$bin/tools/$name ;; esac
  xz -dc "$f" > "$dst" && chmod +x "$dst"
done
ls -la "$bin"/tools "$bin"/tests > "$out/binaries.txt"
{ nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv; date -u
  for p in "$bin"/tools/patlab*; do echo "$(basename "$p"): $("$p" --version 2>&1 | head -1)"; done; } > "$out/env.txt"
cat "$out/env.txt"

# 1. tests, in parallel
for t in $(cd build-ab && ls test_*.xz | sed "s/.xz$//"); do
  ( PATLAB_REQUIRE_GPU=1 timeout "$(cap 150)" "$bin/tests/$t" --durations yes > "$out/$t.log" 2>&1
    echo "$t exit $?" >> "$out/tests.txt" ) &
done
wait
echo "tests done at $SECONDS s"; cat "$out/tests.txt"
for t in "$out"/test_*.log; do echo "$(basename "$t"): $(grep -E 'test cases|assertions' "$t" | tail -1)"; done

# 2. A/B/C bench
workloads=(
  "--tree 1,128_16384,256 --model qwen2.5-7b"
  "--tree 1,1024_2048,32 --heads 64/8"
  "--tree 1,128_16384,256 --model qwen2.5-32b"
  "--tree 1,4,16,512_1024,256,128,32 --heads 64/8"
  "--tree 4,256_8192,512 --heads 32/8"
  "--random-tree 7 --random-requests 48 --random-depth 6 --heads 32/8"
  "--tree 64_16384 --heads 32/8"
)
binaries=(patlab-c06e5cb patlab-597fbab patlab)
n=0
for w in "${workloads[@]}"; do
  n=$((n + 1))
  for b in "${binaries[@]}"; do
    if (( $(left) < 140 )); then echo "stopped for time before: $b $w" >> "$out/bench.log"; break 2; fi
    # shellcheck disable=SC2086
    timeout "$(cap 40)" "$bin/tools/$b" bench $w --stage pat hopper cluster --repeats 20 --no-graph \
      > "$out/bench-w$n-$b.txt" 2>&1
    echo "exit $? at $SECONDS s: w$n $b: $w" >> "$out/bench.log"
  done
done
# 3. stage 9 without multicast
for w in "${workloads[0]}" "${workloads[1]}"; do
  n=$((n + 1))
  for b in "${binaries[@]}"; do
    if (( $(left) < 110 )); then echo "stopped for time before: $b $w --max-cluster 1" >> "$out/bench.log"; break 2; fi
    # shellcheck disable=SC2086
    timeout "$(cap 40)" "$bin/tools/$b" bench $w --stage hopper cluster --max-cluster 1 --repeats 20 --no-graph \
      > "$out/bench-w$n-c1-$b.txt" 2>&1
    echo "exit $? at $SECONDS s: w$n c1 $b: $w --max-cluster 1" >> "$out/bench.log"
  done
done
cat "$out/bench.log"
grep -h -E "^(tree|random) .* (pat|hopper|cluster) " "$out"/bench-*.txt | cut -c1-150

# 4. sanitizers: stage 8 on the default five workloads (memcheck, racecheck, synccheck), then
#    stage 9's racecheck with every hazard
mkdir -p "$out/san/tools"
ln -sf "$bin/tools/patlab" "$out/san/tools/patlab"
SANITIZE_STAGES=hopper timeout "$(cap 150)" tools/sanitize.sh "$out/san" > "$out/sanitize-hopper.log" 2>&1
echo "sanitize hopper exit $? at $SECONDS s"
grep -E "^(memcheck|racecheck|synccheck) |sanitize:" "$out/sanitize-hopper.log"
SANITIZE_TOOLS=racecheck SANITIZE_STAGES=cluster SANITIZE_ARGS="--racecheck-report hazard --print-limit 40" \
  SANITIZE_WORKLOADS="--tree 12_333 --heads 16/4" timeout "$(cap 60)" tools/sanitize.sh "$out/san" > "$out/racecheck-cluster.log" 2>&1
echo "racecheck cluster exit $? at $SECONDS s"
grep -E "^racecheck |sanitize:" "$out/racecheck-cluster.log"
rm -rf "$out/san"
