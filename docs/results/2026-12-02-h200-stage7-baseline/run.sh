#!/usr/bin/env bash
# Baseline before the wave-counting KV split (issue 11), on the GPU machine:
#  1. build; the register/shared-memory use of every kernel instance (cuobjdump --dump-resource-usage);
#  2. stages 5, 6 and 7 on every workload of tools/suite.txt (patlab bench --no-check, 20 repeats);
#  3. the long no-sharing workloads of nosharing.txt: every stage and the peers
#     fi-decode-tc and sdpa-cudnn (tools/run_suite.sh).
#   PATLAB_COMMIT=<hash> docs/results/2026-12-02-h200-stage7-baseline/run.sh OUT
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
for f in $(find build-gpu -name '*.so' -o -name '*.a' | grep -i patlab); do
  echo "== $f"; cuobjdump --dump-resource-usage "$f" 2>/dev/null | grep -E 'Function|REG' ; done > "$out/resource_usage.txt"
grep -v '^#' tools/suite.txt | grep -v '^$' > /tmp/suite_lines.txt
n=0
while read -r line; do
  n=$((n+1))
  echo "== $line" >> "$out/stages567.jsonl.log"
  # shellcheck disable=SC2086
  build-gpu/tools/patlab bench $line --stage 5 6 7 --no-check --repeats 20 --quiet --format jsonl > "$out/tmp.jsonl" 2>> "$out/stages567.jsonl.log"
  python3 - "$line" "$out/tmp.jsonl" >> "$out/stages567.jsonl" <<'PY'
import json, sys
line, path = sys.argv[1], sys.argv[2]
for row in open(path):
    r = json.loads(row); r["workload"] = line; print(json.dumps(r))
PY
done < /tmp/suite_lines.txt
echo "suite stages 5-7 done ($n workloads) $(date -u +%T)"
tools/run_suite.sh "$out/nosharing" --build build-gpu --suite "$here/nosharing.txt" --repeats 20 --peers fi-decode-tc,sdpa-cudnn > "$out/nosharing.log" 2>&1
tail -5 "$out/nosharing.log"
echo "done $(date -u +%T)"
