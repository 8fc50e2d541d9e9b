#!/usr/bin/env bash
# Follow-up to run.sh after the stage 2/3 fix (no per-head branch in the token loop): the GPU
# tests of stages 2 and 3, and before/after `patlab bench --stage gqa splitkv` on run.sh's two
# workloads, before = f682b91 carried in .before/src as for run.sh.
#   PATLAB_COMMIT=<hash> docs/results/2026-12-02-h200-final/run_gqa.sh OUTDIR
set -uo pipefail
# meson 1.0 does not track .cu header dependencies: a warm machine's CUDA objects are rebuilt.
find build-gpu -name '*.cu.o' -delete 2>/dev/null
out=$1; mkdir -p "$out"
export PATH=/usr/local/cuda/bin:$PATH
echo "commit: ${PATLAB_COMMIT:-unknown} (before: f682b91); $(date -u)" > "$out/env_gqa.txt"
( { [[ -f build-gpu/build.ninja ]] || meson setup build-gpu --buildtype=release -Dgpu_arch=90 -Ddocs=disabled -Dcommit="${PATLAB_COMMIT:-unknown}"; } &&
  ninja -C build-gpu tools/patlab tests/test_02_gqa tests/test_03_splitkv ) > "$out/build_gqa.log" 2>&1 &
new=$!
( cd .before/src && { [[ -f build-gpu/build.ninja ]] || meson setup build-gpu --buildtype=release -Dgpu_arch=90 -Ddocs=disabled -Dcommit=f682b91; } &&
  ninja -C build-gpu tools/patlab ) > "$out/build_gqa_before.log" 2>&1 &
old=$!
wait $new || { tail -30 "$out/build_gqa.log"; exit 1; }
for t in 02_gqa 03_splitkv; do PATLAB_REQUIRE_GPU=1 build-gpu/tests/test_$t 2>&1 | tail -4; done > "$out/tests_gqa.log"
cat "$out/tests_gqa.log"
wait $old || { tail -30 "$out/build_gqa_before.log"; exit 1; }
for w in "--tree 1,4,256_1024,256,32 --heads 32/8" "--tree 1,64_4096,256 --heads 32/8"; do
  for run in before after before after; do
    if [[ $run == before ]]; then P=.before/src/build-gpu/tools/patlab; c=f682b91; else P=build-gpu/tools/patlab; c=${PATLAB_COMMIT:-unknown}; fi
    echo "== $run: patlab bench $w --stage gqa splitkv --repeats 30"
    PATLAB_COMMIT=$c $P bench $w --stage gqa splitkv --repeats 30 --format markdown
  done
done > "$out/before_after_gqa.md" 2>&1
grep -E "^==|^\| tree" "$out/before_after_gqa.md" | cut -c1-140
