#!/usr/bin/env bash
# The first run of the Hopper wrappers and the stage-8 draft on an H200:
#  1. build (gpu_arch 90, which also builds the sm_90a code);
#  2. gpu_hopper_primitives: each wrapper against a CPU result;
#  3. the SASS of the draft: wgmma (HGMMA) and tensor-map copies (UTMALDG) present, registers;
#  4. the draft against the oracle on the boundary and tree grids (suite hopper-draft).
#   PATLAB_COMMIT=<hash> docs/results/2026-12-02-h200-hopper-draft/run.sh OUT
set -uo pipefail
out=$1
start=$SECONDS
here=$(cd "$(dirname "$0")" && pwd)
cd "$here/../../.."
mkdir -p "$out"
export PATH=/usr/local/cuda/bin:$PATH
{ nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv; date -u; echo "commit ${PATLAB_COMMIT:-unknown}"; } > "$out/env.txt"
if [[ ! -f build-gpu/build.ninja ]]; then
  meson setup build-gpu --buildtype=release -Dgpu_arch=90 -Ddocs=disabled -Dcommit="${PATLAB_COMMIT:-unknown}" > "$out/build.log" 2>&1 || exit 1
fi
ninja -C build-gpu >> "$out/build.log" 2>&1 || { tail -30 "$out/build.log"; exit 1; }
echo "build ok at $((SECONDS - start)) s"
timeout 120 build-gpu/tests/test_hopper_primitives > "$out/primitives.log" 2>&1
echo "primitives exit $?"
tail -4 "$out/primitives.log"
lib=build-gpu/cuda/libpatlab_hopper_draft.a
{
  echo "HGMMA instructions: $(cuobjdump --dump-sass "$lib" | grep -c HGMMA)"
  echo "UTMALDG instructions: $(cuobjdump --dump-sass "$lib" | grep -c UTMALDG)"
  cuobjdump --dump-resource-usage "$lib" | grep -E "Function|REG"
} > "$out/sass.txt" 2>&1
head -2 "$out/sass.txt"
PATLAB_REQUIRE_GPU=1 timeout 150 build-gpu/tests/test_hopper_stage > "$out/draft.log" 2>&1
echo "draft exit $?"
grep -E "FAILED|failed|passed|assertions" "$out/draft.log" | head -20
echo "done at $((SECONDS - start)) s"
