#!/usr/bin/env bash
# The wave fill (issue 11) on the GPU machine, against the baseline of 2026-12-02-h200-stage7-baseline:
#  1. build; the GPU test of stage 7 (every grid, device bytes == host bytes with the occupancy);
#  2. stages 6 and 7 on every workload of tools/suite.txt (patlab bench --no-check, 20 repeats);
#  3. the long no-sharing batches of ../2026-12-02-h200-stage7-baseline/nosharing.txt: every stage
#     and the peers fi-decode-tc and sdpa-cudnn (tools/run_suite.sh).
#   PATLAB_COMMIT=<hash> docs/results/2026-12-02-h200-wave-fill/run.sh OUT
set -uo pipefail
out=$1
here=$(cd "$(dirname "$0")" && pwd)
cd "$here/../../.."
mkdir -p "$out"
export PATH=/usr/local/cuda/bin:$PATH
{ nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv; date -u; echo "commit ${PATLAB_COMMIT:-unknown}"; } > "$out/env.txt"
if [[ ! -f build-gpu/build.ninja ]]; then
  meson setup build-gpu --buildtype=release -Dgpu_arch=90 -Ddocs=disabled -Dcommit="${PATLAB_COMMIT:-unknown}" > "$out/build.log" 2>&1 || exit 1
fi
ninja -C build-gpu >> "$out/build.log" 2>&1 || { tail -30 "$out/build.log"; exit 1; }
echo "build ok $(date -u +%T)"
PATLAB_REQUIRE_GPU=1 timeout 200 meson test -C build-gpu gpu_07_pat --print-errorlogs > "$out/tests.log" 2>&1
grep -E "^ *[0-9]+/[0-9]+ |Ok:|Fail:|Skipped:" "$out/tests.log" | tail -4
echo "tests done $(date -u +%T)"
grep -v '^#' tools/suite.txt | sed 's/ *#.*//' | grep -v '^$' > /tmp/suite_lines.txt
while read -r line; do
  # shellcheck disable=SC2086
  build-gpu/tools/patlab bench $line --stage 6 7 --no-check --repeats 20 --quiet --format jsonl > /tmp/one.jsonl 2>> "$out/stages67.log"
  python3 -c 'import json,sys
for row in open(sys.argv[2]):
    r = json.loads(row); r["workload"] = sys.argv[1]; print(json.dumps(r))' "$line" /tmp/one.jsonl >> "$out/stages67.jsonl"
done < /tmp/suite_lines.txt
echo "suite stages 6-7 done $(date -u +%T)"
tools/run_suite.sh "$out/nosharing" --build build-gpu --suite "$here/../2026-12-02-h200-stage7-baseline/nosharing.txt" \
  --repeats 20 --peers fi-decode-tc,sdpa-cudnn > "$out/nosharing.log" 2>&1
rm -rf "$out/nosharing/exports"
grep -E "^best" "$out/nosharing/suite_tables.txt"
echo "done $(date -u +%T)"
