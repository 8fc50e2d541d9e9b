#!/usr/bin/env bash
# Stage 8's pipelined consumer, measured on binaries whose every object was compiled from the
# commit they name (a build directory whose CUDA objects track their headers: tools/nvcc-depfile),
# in one H200 call:
#  1. the GPU tests of this commit carried in build-ab/ (gpu_07_pat: the softmax both kernels
#     share changed; gpu_08_hopper, gpu_09_cluster), in parallel;
#  2. A/B/C, patlab bench of stages 7, 8 and 9, one workload at a time, the binaries in turn:
#     patlab-597fbab (the serial consumer), patlab (this commit: the pipelined consumer, the
#     fused softmax), patlab-w6 (this commit with a 6-stage ring for 128-row tiles, built with
#     only kHopperWideStages changed: it reports "-dirty");
#  3. compute-sanitizer memcheck, racecheck and synccheck on stages 8 and 9, two workloads;
#  4. Nsight Compute (--set full) on stage 8's 128-row kernel of this commit, qwen2.5-7b's 16K
#     prefix: raw metrics as CSV.
# Everything lands in OUT/pipeline.tar.gz. No step starts after SECONDS (default 480).
#   docs/results/2026-12-02-h200-stage8-pipeline/run.sh OUT [SECONDS]
# BINARIES="patlab-597fbab patlab" runs step 2 with those binaries of build-ab/ only; NCU=0 skips
# step 4; SANITIZE_WORKLOADS (tools/sanitize.sh) replaces step 3's two workloads.
set -uo pipefail
final=$1
budget=${2:-480}
here=$(cd "$(dirname "$0")" && pwd)
cd "$here/../../.."
out=/tmp/pipeline
bin=/tmp/ab
mkdir -p "$out" "$final" "$bin/tools" "$bin/tests"
trap 'tar -C /tmp -czf "$final/pipeline.tar.gz" pipeline' EXIT
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
for t in $(cd build-ab && ls test_*.xz | sed "s/.xz$//"); do
  ( PATLAB_REQUIRE_GPU=1 timeout "$(cap 150)" "$bin/tests/$t" --durations yes > "$out/$t.log" 2>&1
    echo "$t exit $?" >> "$out/tests.txt" ) &
done
wait
echo "tests done at $SECONDS s"; cat "$out/tests.txt"
for t in "$out"/test_*.log; do echo "$(basename "$t"): $(grep -E 'test cases|assertions' "$t" | tail -1)"; done

# 2. A/B/C
workloads=(
  "--tree 1,128_16384,256 --model qwen2.5-7b"
  "--tree 1,1024_2048,32 --heads 64/8"
  "--tree 1,128_16384,256 --model qwen2.5-32b"
  "--tree 1,4,16,512_1024,256,128,32 --heads 64/8"
  "--tree 4,256_8192,512 --heads 32/8"
  "--random-tree 7 --random-requests 48 --random-depth 6 --heads 32/8"
  "--tree 64_16384 --heads 32/8"
)
n=0
for w in "${workloads[@]}"; do
  n=$((n + 1))
  for b in ${BINARIES:-patlab-597fbab patlab patlab-w6}; do
    if (( $(left) < 130 )); then echo "stopped for time before: $b $w" >> "$out/bench.log"; break 2; fi
    # shellcheck disable=SC2086
    timeout "$(cap 40)" "$bin/tools/$b" bench $w --stage pat hopper cluster --repeats 20 --no-graph \
      > "$out/bench-w$n-$b.txt" 2>&1
    echo "exit $? at $SECONDS s: w$n $b: $w" >> "$out/bench.log"
  done
done
cat "$out/bench.log"
grep -h -E "^(tree|random) .* (pat|hopper|cluster) " "$out"/bench-*.txt | cut -c1-150

# 3. sanitizers
SANITIZE_STAGES="hopper cluster" SANITIZE_WORKLOADS="${SANITIZE_WORKLOADS:-tiny|--tree 1,40_300,17 --heads 32/4}" \
  timeout "$(cap 100)" tools/sanitize.sh "$bin" > "$out/sanitize.log" 2>&1
echo "sanitize exit $? at $SECONDS s"
grep -E "^(memcheck|racecheck|synccheck) |sanitize:" "$out/sanitize.log"

# 4. Nsight Compute
if [[ ${NCU:-1} != 0 ]] && (( $(left) > 30 )); then
  timeout "$(cap 60)" ncu --clock-control none --set full -k regex:hopper_pack --launch-skip 2 --launch-count 1 \
    -o /tmp/ncu-new "$bin/tools/patlab" bench --tree 1,128_16384,256 --model qwen2.5-7b --stage hopper \
    --no-check --repeats 20 --warmup 1 --no-graph > "$out/ncu.log" 2>&1
  echo "ncu exit $? at $SECONDS s"
  ncu --import /tmp/ncu-new.ncu-rep --page raw --csv > "$out/ncu-raw.csv" 2>> "$out/ncu.log"
  ncu --import /tmp/ncu-new.ncu-rep --page details > "$out/ncu-details.txt" 2>> "$out/ncu.log"
fi
