#!/usr/bin/env bash
# Run 5 on the H200, one call: where stage 8 is still more than 3% slower than stage 7 (run 3),
# stages 7 and 8 of build-ab/patlab.xz (chained, the default) per workload of WORKLOADS and knob
# set of VARIANTS ('|'-separated each; defaults below: the defaults, then 64-row packs only, then
# stage 7's plan and tiles), once with the stages in the order pat, hopper and once hopper, pat
# (one process each), eager and graph, 20 repeats, cold L2, unchecked (the tests check every
# setting's kernels). Writes OUT/r5.tar.gz (r5/<workload>-<variant number>-<ph|hp>.jsonl, .err,
# env.txt).
# No run starts after SECONDS (default 540).
# RUN names the folder and tarball (default r5); ORDERS=ph runs the order pat, hopper alone.
#   [RUN=r5] [WORKLOADS=...] [VARIANTS=...] [ORDERS=...] docs/results/2026-12-04-h200-bucket-chain/run5.sh OUT [SECONDS]
set -uo pipefail
final=$1
budget=${2:-540}
here=$(cd "$(dirname "$0")" && pwd)
cd "$here/../../.." || exit 1
# shellcheck source=../../../tools/results_steps.sh
source tools/results_steps.sh
run=${RUN:-r5}
out=/tmp/$run
mkdir -p "$out" "$final"
trap 'tar -C /tmp -czf "$final/$run.tar.gz" "$run"' EXIT
unpack patlab || exit 1
device_env patlab > "$out/env.txt"
cat "$out/env.txt"
w="--tree 1,64_4096,256 --model qwen2.5-32b"
w+="|--tree 1,10_4096,416 --heads 16/8"
w+="|--tree 1,10_4096,416 --heads 32/8"
w+="|--tree 1,10_4096,416 --heads 64/8"
w+="|--tree 1,32_32768,256 --heads 64/8"
w+="|--tree 1,128_8192,256 --heads 32/8"
w+="|--tree 1,128_16384,256 --model qwen2.5-7b"
v=" |--hopper-wide-kv 1000000|--hopper-wide-kv 1000000 --hopper-min-kv 1000000"
IFS='|' read -r -a workloads <<< "${WORKLOADS:-$w}"
IFS='|' read -r -a variants <<< "${VARIANTS:-$v}"
for wl in "${workloads[@]}"; do
  name=$(slug "$wl")
  for i in "${!variants[@]}"; do
    for tag in ${ORDERS:-ph hp}; do
      order="pat hopper"
      [[ $tag == hp ]] && order="hopper pat"
      if (( $(left) < 15 )); then echo "stopped for time before $name variant $i $tag"; exit 0; fi
      # shellcheck disable=SC2086
      timeout "$(cap 60)" /tmp/ab/patlab bench $wl ${variants[$i]} --stage $order --repeats 20 --no-check \
        --format jsonl > "$out/$name-$i-$tag.jsonl" 2> "$out/$name-$i-$tag.err"
      echo "exit $? at $SECONDS s: $name variant $i $tag (${variants[$i]})"
    done
  done
done
exit 0
