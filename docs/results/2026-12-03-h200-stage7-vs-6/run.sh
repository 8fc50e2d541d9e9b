#!/usr/bin/env bash
# Where stage 7 is slower than stage 6 (issue 11: never more than 3%), in one H200 call:
#  1. stages 6 (multistream) and 7 (pat) benched on each of WORKLOADS ('|'-separated), eager and
#     graph, 20 repeats, cold L2, with their plan notes (jsonl);
#  2. a timeline of each stage's eager bench on each workload with Nsight Systems (every kernel's
#     start, end and stream: nsys stats' cuda_gpu_trace as CSV), where nsys exists;
#  3. else Nsight Compute's duration of every kernel of the same benches (serialised).
# The binary: build-ab/patlab-base.xz (carried). Everything lands in OUT/s76.tar.gz. No step
# starts after SECONDS (default 560).
#   docs/results/2026-12-03-h200-stage7-vs-6/run.sh OUT [SECONDS]
set -uo pipefail
final=$1
budget=${2:-560}
here=$(cd "$(dirname "$0")" && pwd)
cd "$here/../../.." || exit 1
out=/tmp/s76
mkdir -p "$out" "$final"
trap 'tar -C /tmp -czf "$final/s76.tar.gz" s76' EXIT
export PATH=/usr/local/cuda/bin:$PATH:/usr/local/cuda/nsight-systems/bin
for d in /opt/nvidia/nsight-systems/*/bin /usr/local/cuda/nsight-systems*/bin; do [[ -d $d ]] && PATH=$PATH:$d; done
left() { echo $(( budget - SECONDS )); }
cap() { local l; l=$(left); echo $(( l > $1 ? $1 : (l > 1 ? l : 1) )); }
slug() { echo "$1" | tr -c 'a-z0-9' '_' | tr -s '_'; }
default_w="--tree 1,2,64_1024,256,256 --heads 64/8|--tree 1,4,16,512_1024,256,128,32 --model gemma-2-9b"
default_w+="|--tree 1,4,8,256_32,256,256,32 --heads 16/8|--tree 1,256_256,32 --heads 16/8"
IFS='|' read -r -a workloads <<< "${WORKLOADS:-$default_w}"
xz -dc build-ab/patlab-base.xz > /tmp/patlab && chmod +x /tmp/patlab
p=/tmp/patlab
{ nvidia-smi --query-gpu=name,driver_version --format=csv; date -u; "$p" --version | head -1
  echo "nsys: $(command -v nsys || echo none) $(nsys --version 2>/dev/null)"; } > "$out/env.txt"
cat "$out/env.txt"

for w in "${workloads[@]}"; do
  for s in multistream pat; do
    name="$(slug "$w")-$s"
    if (( $(left) < 40 )); then echo "stopped for time before $name"; break 2; fi
    # shellcheck disable=SC2086
    timeout "$(cap 60)" "$p" bench $w --stage "$s" --repeats 20 --no-check --format jsonl > "$out/b-$name.jsonl" 2> "$out/b-$name.err"
    echo "bench exit $? at $SECONDS s: $name"
    if command -v nsys > /dev/null; then
      # shellcheck disable=SC2086
      timeout "$(cap 90)" nsys profile --trace cuda -o "/tmp/n-$name" --force-overwrite true \
        "$p" bench $w --stage "$s" --repeats 20 --warmup 2 --no-check --no-graph --quiet > "$out/n-$name.log" 2>&1
      timeout "$(cap 60)" nsys stats -r cuda_gpu_trace -f csv -o "$out/t-$name" "/tmp/n-$name.nsys-rep" >> "$out/n-$name.log" 2>&1
      echo "nsys exit $? at $SECONDS s: $name"
    else
      # shellcheck disable=SC2086
      timeout "$(cap 90)" ncu --clock-control none --metrics gpu__time_duration.sum --csv --launch-count 40 \
        "$p" bench $w --stage "$s" --no-check --repeats 20 --warmup 1 --no-graph > "$out/ncu-$name.csv" 2>&1
      echo "ncu exit $? at $SECONDS s: $name"
    fi
  done
done
