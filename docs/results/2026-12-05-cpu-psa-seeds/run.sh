#!/usr/bin/env bash
# PSA against top-n over seeds 1-20 (README.md): the streaming folder's dense sweep per seed and
# workload, CPU only. Usage: [HEADS=16/4] run.sh PATLAB OUT_DIR (writes
# OUT_DIR/csv/<workload>_s<seed>.csv); HEADS=32/32 is ../2026-12-07-cpu-psa-mha's sweep.
set -euo pipefail
patlab=${1:?usage: run.sh PATLAB OUT_DIR}
out=${2:?usage: run.sh PATLAB OUT_DIR}/csv
mkdir -p "$out"
# shellcheck disable=SC2054  # the commas are inside option values
sweep=(--heads "${HEADS:-16/4}" --method psa --data streaming --quiet --curves
       --curve-n 3,4,6,8,12,16,20,22,24,26,28,30,32,36,40,48,68
       --curve-tau 0.3,0.5,0.7,0.8,0.85,0.9,0.95,0.99,1 --format csv)
for seed in $(seq 1 20); do
  for tree in 1,16_4096,256 16_4352; do
    name=$(echo "$tree" | tr ',' '-')_s$seed
    "$patlab" sparse --tree "$tree" "${sweep[@]}" --seed "$seed" > "$out/$name.csv"
    echo "seed $seed, --tree $tree: $out/$name.csv"
  done
done
