#!/usr/bin/env bash
# Stage 10 (packinfer, issue 16), first H200 run of the draft (branch packinfer-gpu):
#  1. build; every GPU test (meson's gpu suite: stage 10, the stages whose pack kernel it
#     refactored (4-8), the serve loop (stage 10 re-lays out every layer's pools there) and the
#     sparse kernels, which share the pipeline), PATLAB_REQUIRE_GPU=1, four at a time; compute-sanitizer memcheck, racecheck and synccheck on
#     stage 10 (tools/sanitize.sh); the kernels' registers and spills (cuobjdump);
#  2. patlab bench of stages 7 and 10 (checked against the oracle first, 20 repeats) on hetero96
#     and on the heterogeneous workloads of tools/suite-categories.txt (every line with --hetero);
#     stage 10's notes carry its groups, the re-layout's bytes and time, the step on the paged
#     pools and on the regions, N and the share at 16 steps;
#  3. summary.txt: per workload, both times, % of copy bandwidth and stage 10 over stage 7.
# Everything lands in OUT/packinfer.tar.gz (the device returns few files). Under 8 minutes on an
# H200: no bench starts after SECONDS (390 by default), each at most 60 s.
#   PATLAB_COMMIT=<hash> docs/results/2026-12-02-h200-packinfer/run.sh OUT [SECONDS]
set -uo pipefail
final=$1
budget=${2:-390}
start=$SECONDS
here=$(cd "$(dirname "$0")" && pwd)
cd "$here/../../.."
out=/tmp/packinfer
mkdir -p "$out" "$final"
trap 'tar -C /tmp -czf "$final/packinfer.tar.gz" packinfer' EXIT
export PATH=/usr/local/cuda/bin:$PATH
{ nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv; date -u; echo "commit ${PATLAB_COMMIT:-unknown}"; } > "$out/env.txt"
if [[ ! -f build-gpu/build.ninja ]]; then
  meson setup build-gpu --buildtype=release -Dgpu_arch=90 -Ddocs=disabled -Dcommit="${PATLAB_COMMIT:-unknown}" > "$out/build.log" 2>&1 || exit 1
fi
ninja -C build-gpu >> "$out/build.log" 2>&1 || { tail -30 "$out/build.log"; exit 1; }
echo "build ok at $((SECONDS - start)) s"
cuobjdump --dump-resource-usage build-gpu/cuda/libpatlab_cuda.a 2>&1 | grep -A1 -E "group_attention|relayout|pack_attention" > "$out/resources.txt"
PATLAB_REQUIRE_GPU=1 timeout 220 meson test -C build-gpu --suite gpu --print-errorlogs --num-processes 4 \
  > "$out/tests.log" 2>&1
echo "tests exit $?"
cp build-gpu/meson-logs/testlog.txt "$out/testlog.txt" 2>/dev/null
grep -E "^ *[0-9]+/[0-9]+ |Ok:|Fail:" "$out/tests.log" | tail -10
grep -E "cases passed|cases not run" "$out/testlog.txt" | sort | uniq -c | head -20
echo "tests done at $((SECONDS - start)) s"
SANITIZE_STAGES="packinfer" timeout 90 tools/sanitize.sh build-gpu > "$out/sanitize.log" 2>&1
echo "sanitize exit $?: $(tail -1 "$out/sanitize.log")"
echo "sanitize done at $((SECONDS - start)) s"
# hetero96 is the preset of "--hetero 1 --heads 32/8" (the first line), run once under its name.
{ echo "hetero96"; sed 's/ *#.*//' tools/suite-categories.txt | grep -e '--hetero' | grep -vx -e '--hetero 1 --heads 32/8'; } \
  > "$out/workloads.txt"
while read -r line; do
  if (( SECONDS - start > budget )); then echo "stopped for time before: $line" >> "$out/bench.log"; break; fi
  # shellcheck disable=SC2086
  timeout 60 build-gpu/tools/patlab bench $line --stage pat packinfer --repeats 20 --quiet --format jsonl \
    > /tmp/one.jsonl 2>> "$out/bench.log"
  echo "exit $? $line" >> "$out/bench.log"
  python3 -c 'import json,sys
for row in open(sys.argv[2]):
    r = json.loads(row); r["workload"] = sys.argv[1]; print(json.dumps(r))' "$line" /tmp/one.jsonl >> "$out/bench.jsonl"
done < "$out/workloads.txt"
echo "bench done at $((SECONDS - start)) s; $(grep -c '^exit 0' "$out/bench.log") of $(grep -c '^exit' "$out/bench.log") exit 0"
python3 - "$out/bench.jsonl" > "$out/summary.txt" <<'PY'
import json, sys
rows = {}
for line in open(sys.argv[1]):
    r = json.loads(line)
    if r.get("table") == "results":
        rows.setdefault(r["workload"], {})[r["stage"]] = r
print(f"{'workload':70} {'pat us':>9} {'pi us':>9} {'pat %copy':>9} {'pi %copy':>9} {'pi/pat':>7}  check")
for w, s in rows.items():
    p, g = s.get("pat", {}), s.get("packinfer", {})
    tp, tg = p.get("time_us"), g.get("time_us")
    ratio = f"{tp / tg:7.2f}" if tp and tg else "      -"
    fmt = lambda v, f: format(v, f) if isinstance(v, (int, float)) else "-"
    print(f"{w:70} {fmt(tp, '9.1f')} {fmt(tg, '9.1f')} {fmt(p.get('pct_copy'), '9.1f')} {fmt(g.get('pct_copy'), '9.1f')} {ratio}  {p.get('check')}/{g.get('check')}")
print()
for w, s in rows.items():
    print(w, "\n  packinfer:", s.get("packinfer", {}).get("notes"))
PY
cat "$out/summary.txt" | head -14
