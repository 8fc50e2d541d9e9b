#!/usr/bin/env bash
# Run 7 on the H200, one call: the bench's stage order. Per workload of WORKLOADS ('|'-separated,
# default below), build-ab/patlab.xz benches stages 6 and 7 in the order multistream, pat and in
# the order pat, multistream (one process each), twice, eager and graph, 20 repeats, cold L2,
# unchecked. Writes OUT/r7.tar.gz (r7/<workload>-<ms|sm>-<pass>.jsonl, .err, env.txt, cmd.txt).
#   [WORKLOADS=...] docs/results/2026-12-04-h200-bucket-chain/run7.sh OUT [SECONDS]
set -uo pipefail
final=$1
budget=${2:-300}
here=$(cd "$(dirname "$0")" && pwd)
cd "$here/../../.." || exit 1
# shellcheck source=../../../tools/results_steps.sh
source tools/results_steps.sh
out=/tmp/r7
mkdir -p "$out" "$final"
trap 'tar -C /tmp -czf "$final/r7.tar.gz" r7' EXIT
unpack patlab || exit 1
device_env patlab > "$out/env.txt"
cat "$out/env.txt"
w="--tree 1,4,8,256_32,256,256,32 --heads 16/8|--tree 1,256_256,32 --heads 16/8"
w+="|--tree 1,4,256_32,256,32 --heads 16/8|--tree 1,10_4096,416 --heads 32/8"
IFS='|' read -r -a workloads <<< "${WORKLOADS:-$w}"
for pass in 1 2; do
  for tag in ms sm; do
    order="multistream pat"
    [[ $tag == sm ]] && order="pat multistream"
    for wl in "${workloads[@]}"; do
      name=$(slug "$wl")
      if (( $(left) < 10 )); then echo "stopped for time"; exit 0; fi
      echo "patlab bench $wl --stage $order --repeats 20 --no-check --format jsonl" >> "$out/cmd.txt"
      # shellcheck disable=SC2086
      timeout "$(cap 60)" /tmp/ab/patlab bench $wl --stage $order --repeats 20 --no-check --format jsonl \
        > "$out/$name-$tag-$pass.jsonl" 2> "$out/$name-$tag-$pass.err"
      echo "exit $? at $SECONDS s: $name $tag pass $pass"
    done
  done
done
exit 0
