#!/usr/bin/env bash
# Stage 8 with packs of up to 32 rows on the pack kernel, second H200 run (issue 12):
#  1. build; every GPU test (stages 1-8, the Hopper wrappers, serve), PATLAB_REQUIRE_GPU=1, four at
#     a time; compute-sanitizer memcheck, racecheck and synccheck on stages 8 and 7 (tools/sanitize.sh);
#  2. tools/suite-categories.txt: stages 7 and 8 with patlab bench (checked against the oracle
#     first, 20 repeats);
#  3. as long as time is left: stages 7 and 8 on tools/suite.txt (--no-check, 20 repeats).
# Everything lands in OUT/stage8r.tar.gz (the device returns few files).
#   PATLAB_COMMIT=<hash> docs/results/2026-12-02-h200-stage8-routed/run.sh OUT [SECONDS]
set -uo pipefail
final=$1
budget=${2:-540}
start=$SECONDS
here=$(cd "$(dirname "$0")" && pwd)
cd "$here/../../.."
out=/tmp/stage8r
mkdir -p "$out" "$final"
trap 'tar -C /tmp -czf "$final/stage8r.tar.gz" stage8r' EXIT
export PATH=/usr/local/cuda/bin:$PATH
{ nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv; date -u; echo "commit ${PATLAB_COMMIT:-unknown}"; } > "$out/env.txt"
if [[ ! -f build-gpu/build.ninja ]]; then
  meson setup build-gpu --buildtype=release -Dgpu_arch=90 -Ddocs=disabled -Dcommit="${PATLAB_COMMIT:-unknown}" > "$out/build.log" 2>&1 || exit 1
fi
ninja -C build-gpu >> "$out/build.log" 2>&1 || { tail -30 "$out/build.log"; exit 1; }
echo "build ok at $((SECONDS - start)) s"
cuobjdump --dump-resource-usage build-gpu/cuda/libpatlab_hopper.a > "$out/resources.txt" 2>&1
PATLAB_REQUIRE_GPU=1 timeout 200 meson test -C build-gpu --suite gpu --print-errorlogs --num-processes 4 \
  > "$out/tests.log" 2>&1
echo "tests exit $?"
cp build-gpu/meson-logs/testlog.txt "$out/testlog.txt" 2>/dev/null
grep -E "^ *[0-9]+/[0-9]+ |Ok:|Fail:" "$out/tests.log" | tail -12
grep -E "cases passed|cases not run" "$out/testlog.txt" | sort | uniq -c | head -20
echo "tests done at $((SECONDS - start)) s"
SANITIZE_STAGES="hopper pat" timeout 150 tools/sanitize.sh build-gpu > "$out/sanitize.log" 2>&1
echo "sanitize exit $?: $(tail -1 "$out/sanitize.log")"
echo "sanitize done at $((SECONDS - start)) s"
run_lines() {  # FILE DEST STAGES... : one bench per workload line while time is left
  local file=$1 dest=$2; shift 2
  sed 's/ *#.*//' "$file" | grep -v '^$' > /tmp/lines.txt
  while read -r line; do
    if (( SECONDS - start > budget )); then echo "stopped for time before: $line" >> "$dest.log"; break; fi
    # shellcheck disable=SC2086
    timeout 60 build-gpu/tools/patlab bench $line --stage "$@" --repeats 20 --quiet --format jsonl > /tmp/one.jsonl 2>> "$dest.log"
    echo "exit $? $line" >> "$dest.log"
    python3 -c 'import json,sys
for row in open(sys.argv[2]):
    r = json.loads(row); r["workload"] = sys.argv[1]; print(json.dumps(r))' "$line" /tmp/one.jsonl >> "$dest.jsonl"
  done < /tmp/lines.txt
}
run_lines tools/suite-categories.txt "$out/categories" 7 8
echo "categories done at $((SECONDS - start)) s; $(grep -c '^exit 0' "$out/categories.log") of $(grep -c '^exit' "$out/categories.log") exit 0"
run_lines tools/suite.txt "$out/suite" 7 8 --no-check
echo "suite done at $((SECONDS - start)) s; $(grep -c '^exit 0' "$out/suite.log") of $(grep -c '^exit' "$out/suite.log") exit 0"
