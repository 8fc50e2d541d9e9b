#!/usr/bin/env bash
# Where stage 8's 128-row CTA loses its time, and stage 9's merge without a shared list, in one
# H200 call:
#  1. gpu_09_cluster and gpu_08_hopper of this commit, in parallel;
#  2. A/B/C of the ring's depth for the 128-row CTA (kHopperWideStages, tile_budget.hpp): this
#     commit (3 stages) against two binaries of the same commit with 4 and 6 (built on the CPU
#     machine with only that constant changed: they report the commit "-dirty"), stage 8 only;
#  3. Nsight Compute, every section (--set full), on stage 8's 128-row kernel on qwen2.5-7b's 16K
#     prefix with 3 and with 6 stages: raw metrics as CSV (stall reasons, tensor pipe, L2);
#  4. compute-sanitizer racecheck (every hazard) and synccheck on stage 9, memcheck on one.
# The binaries are carried, xz-compressed, in build-ab/. Everything lands in OUT/ring.tar.gz. No
# step starts after SECONDS (default 500) of this script.
#   docs/results/2026-12-02-h200-stage8-ring/run.sh OUT [SECONDS]
set -uo pipefail
final=$1
budget=${2:-500}
here=$(cd "$(dirname "$0")" && pwd)
cd "$here/../../.."
out=/tmp/ring
bin=/tmp/ab
mkdir -p "$out" "$final" "$bin/tools" "$bin/tests"
trap 'tar -C /tmp -czf "$final/ring.tar.gz" ring' EXIT
export PATH=/usr/local/cuda/bin:$PATH
left() { echo $(( budget - SECONDS )); }
cap() { local l; l=$(left); echo $(( l > $1 ? $1 : (l > 1 ? l : 1) )); }
for f in build-ab/*.xz; do
  name=$(basename "$f" .xz)
  case $name in test_*) dst=$bin/tests/$name ;; *) dst=$bin/tools/$name ;; esac
  xz -dc "$f" > "$dst" && chmod +x "$dst"
done
{ nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv; date -u; ncu --version | tail -1
  for p in "$bin"/tools/patlab*; do echo "$(basename "$p"): $("$p" --version 2>&1 | head -1)"; done; } > "$out/env.txt"
cat "$out/env.txt"

# 1. tests
for t in test_09_cluster test_08_hopper; do
  ( PATLAB_REQUIRE_GPU=1 timeout "$(cap 150)" "$bin/tests/$t" --durations yes > "$out/$t.log" 2>&1
    echo "$t exit $?" >> "$out/tests.txt" ) &
done
wait
echo "tests done at $SECONDS s"; cat "$out/tests.txt"
for t in "$out"/test_*.log; do echo "$(basename "$t"): $(grep -E 'test cases|assertions' "$t" | tail -1)"; done

# 2. ring depth
workloads=(
  "--tree 1,128_16384,256 --model qwen2.5-7b"
  "--tree 1,1024_2048,32 --heads 64/8"
  "--tree 1,128_16384,256 --model qwen2.5-32b"
  "--tree 1,4,16,512_1024,256,128,32 --heads 64/8"
  "--tree 4,256_8192,512 --heads 32/8"
)
n=0
for w in "${workloads[@]}"; do
  n=$((n + 1))
  for b in patlab patlab-w4 patlab-w6; do
    if (( $(left) < 200 )); then echo "stopped for time before: $b $w" >> "$out/bench.log"; break 2; fi
    # shellcheck disable=SC2086
    timeout "$(cap 40)" "$bin/tools/$b" bench $w --stage hopper --repeats 20 --no-graph > "$out/bench-w$n-$b.txt" 2>&1
    echo "exit $? at $SECONDS s: w$n $b: $w" >> "$out/bench.log"
  done
done
cat "$out/bench.log"
grep -h -E "^(tree|random) .* hopper " "$out"/bench-*.txt | cut -c1-150

# 3. Nsight Compute, full set, one launch of the 128-row kernel
for b in patlab patlab-w6; do
  if (( $(left) < 110 )); then echo "stopped for time before ncu $b"; break; fi
  timeout "$(cap 80)" ncu --clock-control none --set full -k regex:hopper_pack --launch-skip 2 \
    --launch-count 1 -o "/tmp/ncu-$b" "$bin/tools/$b" bench --tree 1,128_16384,256 --model qwen2.5-7b --stage hopper \
    --no-check --repeats 20 --warmup 1 --no-graph > "$out/ncu-$b.log" 2>&1
  echo "ncu $b exit $? at $SECONDS s"
  ncu --import "/tmp/ncu-$b.ncu-rep" --page raw --csv > "$out/ncu-raw-$b.csv" 2>> "$out/ncu-$b.log"
  ncu --import "/tmp/ncu-$b.ncu-rep" --page details > "$out/ncu-details-$b.txt" 2>> "$out/ncu-$b.log"
done

# 4. stage 9 under the sanitizers
SANITIZE_TOOLS="racecheck synccheck" SANITIZE_STAGES=cluster SANITIZE_ARGS="--racecheck-report hazard --print-limit 40" \
  SANITIZE_WORKLOADS="--tree 12_333 --heads 16/4|tiny|--tree 1,256_1024,3 --heads 32/8" \
  timeout "$(cap 100)" tools/sanitize.sh "$bin" > "$out/sanitize-cluster.log" 2>&1
echo "sanitize cluster exit $? at $SECONDS s"
grep -E "^(racecheck|synccheck) |sanitize:" "$out/sanitize-cluster.log"
