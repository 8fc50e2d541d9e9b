#!/usr/bin/env bash
# patlab plan --incremental on the CPU: plan time per decode step within the wave fill's reach,
# at fill windows 4 and 8 and without the fill, on the trees of 2026-12-02-cpu-fill-plan-time
# plus the 256-request trees that the window of 8 brings within reach.
#   docs/results/2026-12-02-cpu-fill-fast-path/run.sh [PATLAB] > plan_incremental.txt
set -euo pipefail
patlab=${1:-build-cpu/tools/patlab}
echo "# patlab plan --incremental (CPU: the 2-core development VM, shared with other builds; not the GPU host)"
echo "# commit $(git rev-parse --short HEAD), $(date -u '+%Y-%m-%d %H:%M UTC')"
for w in "--tree 1,16_2048,256 --heads 32/8 --incremental 200" "--tree 64_4096 --heads 32/8 --incremental 200" \
         "--tree 1,4,256_1024,256,32 --incremental 300" "--tree 256_1024 --heads 32/8 --incremental 300"; do
  for opt in "" "--fill-window 4" "--no-fill"; do
    echo
    echo "\$ patlab plan $w $opt"
    # shellcheck disable=SC2086
    "$patlab" plan $w $opt | grep -E "^(from scratch|incremental) ms|^speedup|^steps by update path|^wave fill"
  done
done
