#!/usr/bin/env bash
# The four peers of issue 14 (FastTree, DeFT, vLLM FA3, vLLM cascade) on the GPU for the first time,
# beside FlashInfer, torch SDPA and every patlab stage, eager and under CUDA graphs, on four
# workloads (one call); then Nsight Compute on stage 8 (../2026-12-02-h200-stage8-profiles/prof.sh)
# while time is left. Carry .peers, .wheels (tools/peers/README.md).
#   PATLAB_COMMIT=<hash> docs/results/2026-12-02-h200-peers-first/run.sh OUT [--no-prof]
set -uo pipefail
final=$1
start=$SECONDS
here=$(cd "$(dirname "$0")" && pwd)
cd "$here/../../.."
out=/tmp/peers-first
mkdir -p "$out" "$final"
trap 'tar -C /tmp -czf "$final/peers-first.tar.gz" peers-first' EXIT
export PATH=/usr/local/cuda/bin:$PATH
{ nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv; date -u; echo "commit ${PATLAB_COMMIT:-unknown}"; } > "$out/env.txt"
timeout 420 tools/run_suite.sh "$out/suite" --graph --repeats 20 \
  --workload sysprompt --workload asymmetric \
  --workload "--tree 1,128_16384,256 --model qwen2.5-7b" --workload "--tree 32_8192 --heads 32/8" \
  > "$out/suite.log" 2>&1
echo "suite exit $? at $((SECONDS - start)) s"
grep -E "^\[|FAIL|skipped|error|Error" "$out/suite.log" | head -60
rm -rf "$out/suite/exports"
if [[ ${2:-} != --no-prof ]] && (( SECONDS - start < 470 )); then
  timeout $((560 - (SECONDS - start))) docs/results/2026-12-02-h200-stage8-profiles/prof.sh "$out" > "$out/prof.log" 2>&1
  echo "prof exit $? at $((SECONDS - start)) s"
fi
