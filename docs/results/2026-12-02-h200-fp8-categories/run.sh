#!/usr/bin/env bash
# fp8 KV, the flat longest-first grid and the new suite categories on the GPU machine (issue 11):
#  1. build; every GPU test (all stages, with the fp8 cases of the shapes grid), PATLAB_REQUIRE_GPU=1;
#  2. tools/suite-categories.txt: stages 4-7 with patlab bench (checked against the oracle first,
#     20 repeats); the fp8 lines and their fp16 twins are part of it;
#  3. as long as time is left: stages 6 and 7 on tools/suite.txt (--no-check, 20 repeats).
#   PATLAB_COMMIT=<hash> docs/results/2026-12-02-h200-fp8-categories/run.sh OUT [SECONDS]
set -uo pipefail
out=$1
budget=${2:-560}
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
PATLAB_REQUIRE_GPU=1 timeout 240 meson test -C build-gpu --suite gpu --print-errorlogs --num-processes 1 > "$out/tests.log" 2>&1
grep -E "^ *[0-9]+/[0-9]+ |Ok:|Fail:|Skipped:" "$out/tests.log" | tail -12
echo "tests done at $((SECONDS - start)) s"
run_lines() {  # FILE STAGES... : one bench per workload line while time is left
  local file=$1 dest=$2; shift 2
  sed 's/ *#.*//' "$file" | grep -v '^$' > /tmp/lines.txt
  while read -r line; do
    if (( SECONDS - start > budget )); then echo "stopped for time before: $line" >> "$dest.log"; break; fi
    # shellcheck disable=SC2086
    build-gpu/tools/patlab bench $line --stage "$@" --repeats 20 --quiet --format jsonl > /tmp/one.jsonl 2>> "$dest.log"
    echo "exit $? $line" >> "$dest.log"
    python3 -c 'import json,sys
for row in open(sys.argv[2]):
    r = json.loads(row); r["workload"] = sys.argv[1]; print(json.dumps(r))' "$line" /tmp/one.jsonl >> "$dest.jsonl"
  done < /tmp/lines.txt
}
run_lines tools/suite-categories.txt "$out/categories" 4 5 6 7
echo "categories done at $((SECONDS - start)) s"
run_lines tools/suite.txt "$out/suite67" 6 7 --no-check
echo "suite done at $((SECONDS - start)) s"
