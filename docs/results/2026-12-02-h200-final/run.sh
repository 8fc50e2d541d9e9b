#!/usr/bin/env bash
# The session's last code on the H200: every test (nothing may skip), and a before/after
# `patlab compare` of every stage against the session's first commit on two workloads (issue 9:
# no stage slower than before). The "before" tree is carried in .before/src
# (git archive f682b91 | tar -x -C .before/src --exclude=docs/results).
#   PATLAB_COMMIT=<hash> docs/results/2026-12-02-h200-final/run.sh OUTDIR
set -uo pipefail
out=$1; mkdir -p "$out"
export PATH=/usr/local/cuda/bin:$PATH
{ nvidia-smi --query-gpu=name,driver_version,clocks.max.sm,clocks.max.mem --format=csv; nvcc --version | tail -2;
  echo "commit: ${PATLAB_COMMIT:-unknown} (before: f682b91)"; date -u; } > "$out/env.txt" 2>&1
meson setup build-gpu --buildtype=release -Dgpu_arch=90 -Ddocs=disabled -Dcommit="${PATLAB_COMMIT:-unknown}" > "$out/build.log" 2>&1 &&
  ninja -C build-gpu >> "$out/build.log" 2>&1 || { tail -40 "$out/build.log"; exit 1; }
( cd .before/src && meson setup build-gpu --buildtype=release -Dgpu_arch=90 -Ddocs=disabled -Dcommit=f682b91 &&
  ninja -C build-gpu ) > "$out/build-before.log" 2>&1 &
before_build=$!
PATLAB_REQUIRE_GPU=1 meson test -C build-gpu --print-errorlogs --num-processes 1 > "$out/tests.log" 2>&1
grep -E "^ *[0-9]+/[0-9]+ |^(Ok|Fail|Skipped|Timeout):" "$out/tests.log"
grep -h -E "cases passed" build-gpu/meson-logs/testlog.txt >> "$out/tests.log" 2>/dev/null
wait $before_build || { tail -20 "$out/build-before.log"; exit 1; }
for w in "--tree 1,4,256_1024,256,32 --heads 32/8" "--tree 1,64_4096,256 --heads 32/8"; do
  for run in before after before after; do
    if [[ $run == before ]]; then P=.before/src/build-gpu/tools/patlab; else P=build-gpu/tools/patlab; fi
    echo "== $run: patlab compare $w --repeats 30"
    $P compare $w --repeats 30 --format markdown
  done
done > "$out/before_after.md" 2>&1
grep -E "^==|^\| (naive|gqa|splitkv|packed|multitile|multistream|pat) " "$out/before_after.md" | head -80
