#!/usr/bin/env bash
# The deeper fp8 K/V ring of the pack kernel (kKvStagesFp8 = 4, tile_budget.hpp) on the GPU machine:
#  1. build; every GPU test (all stages, with the fp8 cases of the shapes grid), PATLAB_REQUIRE_GPU=1;
#  2. the fp8 category of tools/suite-categories.txt (three fp8 workloads, each followed by its fp16
#     twin): stages 4-7 with patlab bench (checked against the oracle first, 20 repeats);
#  3. summarize.py: fp16 / fp8 time per stage, against the two-stage ring of
#     ../2026-12-02-h200-fp8-categories (commit 0f47d27).
#   PATLAB_COMMIT=<hash> docs/results/2026-12-02-h200-fp8-ring/run.sh OUT [SECONDS]
set -uo pipefail
out=$1
budget=${2:-540}
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
PATLAB_REQUIRE_GPU=1 timeout 200 meson test -C build-gpu --suite gpu --print-errorlogs --num-processes 4 > "$out/tests.log" 2>&1
echo "tests exit $?"
grep -E "^ *[0-9]+/[0-9]+ |Ok:|Fail:|Skipped:" "$out/tests.log" | tail -12
echo "tests done at $((SECONDS - start)) s"
# The fp8 category: its lines up to the next category header.
sed -n '/^# category: fp8 KV/,/^# category:/p' tools/suite-categories.txt | sed 's/ *#.*//' | grep -v '^$' > "$out/twins.txt"
while read -r line; do
  if (( SECONDS - start > budget )); then echo "stopped for time before: $line" >> "$out/twins.log"; break; fi
  # shellcheck disable=SC2086
  build-gpu/tools/patlab bench $line --stage 4 5 6 7 --repeats 20 --quiet --format jsonl > /tmp/one.jsonl 2>> "$out/twins.log"
  echo "exit $? $line" >> "$out/twins.log"
  python3 -c 'import json,sys
for row in open(sys.argv[2]):
    r = json.loads(row); r["workload"] = sys.argv[1]; print(json.dumps(r))' "$line" /tmp/one.jsonl >> "$out/twins.jsonl"
done < "$out/twins.txt"
cat "$out/twins.log"
python3 "$here/summarize.py" "$out/twins.jsonl" | tee "$out/summary.md"
echo "twins done at $((SECONDS - start)) s"
