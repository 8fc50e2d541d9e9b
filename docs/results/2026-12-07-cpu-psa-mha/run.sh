#!/usr/bin/env bash
# PSA against top-n over seeds 1-20 on MHA streaming data (README.md): the dense sweep of
# ../2026-12-05-cpu-psa-seeds at 32/32 heads (Llama-2-7B's), CPU only.
# Usage: run.sh PATLAB OUT_DIR (writes OUT_DIR/csv/<workload>_s<seed>.csv).
set -euo pipefail
patlab=${1:?usage: run.sh PATLAB OUT_DIR}
out=${2:?usage: run.sh PATLAB OUT_DIR}/csv
mkdir -p "$out"
# shellcheck disable=SC2054  # the commas are inside option values
sweep=(--heads 32/32 --method psa --data streaming --quiet --curves
       --curve-n 3,4,6,8,12,16,20,22,24,26,28,30,32,36,40,48,68
       --curve-tau 0.3,0.5,0.7,0.8,0.85,0.9,0.95,0.99,1 --format csv)
for seed in $(seq 1 20); do
  for tree in 1,16_4096,256 16_4352; do
    name=$(echo "$tree" | tr ',' '-')_s$seed
    "$patlab" sparse --tree "$tree" "${sweep[@]}" --seed "$seed" > "$out/$name.csv"
    echo "seed $seed, --tree $tree: $out/$name.csv"
  done
done
