#!/usr/bin/env bash
# Issue 14's suite on the H200 in parts, one device call each: every patlab stage and every peer,
# eager and under CUDA graphs, on lines A:B of a suite file, starting no workload after SECONDS
# of suite time (tools/run_suite.sh --budget; the rows of each workload are written as it ends).
# Carry .peers, .wheels and .flashinfer-cache.
# Everything lands in OUT/suite-part.tar.gz (the device returns few files). DEADLINE (default 480)
# is a hard stop, in seconds of this script, for the build and the suite together: a call killed
# at the device's limit returns a cut archive (part 2's first try lost everything that way), so
# run_suite.sh is terminated in time for the archive; the rows of the finished workloads are in
# patlab.jsonl and peers.jsonl, and tools/peers/report.py rebuilds the tables from them.
# PEERS (optional) is a comma-separated subset of the peers (tools/run_suite.sh --peers).
#   PATLAB_COMMIT=<hash> [PEERS=a,b] docs/results/2026-12-02-h200-suite/run.sh OUT SUITE_FILE A:B [SECONDS [DEADLINE]]
set -uo pipefail
final=$1 suite=$2 lines=$3 budget=${4:-420} deadline=${5:-480}
here=$(cd "$(dirname "$0")" && pwd)
cd "$here/../../.."
out=/tmp/suite-part
rm -rf "$out"  # a second part in the same call starts clean
mkdir -p "$out" "$final"
trap 'rm -rf "$out/suite/exports"; tar -C /tmp -czf "$final/suite-part.tar.gz" suite-part' EXIT
{ nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv; date -u; echo "commit ${PATLAB_COMMIT:-unknown}"
  echo "suite $suite lines $lines${PEERS:+ peers $PEERS}"; } > "$out/env.txt"
timeout -s TERM $((deadline - SECONDS)) tools/run_suite.sh "$out/suite" --suite "$suite" --lines "$lines" --graph --repeats 20 --budget "$budget" ${PEERS:+--peers "$PEERS"} \
  > "$out/suite.log" 2>&1
echo "run_suite exit $? after $SECONDS s"
grep -E "^\[[0-9]+/" "$out/suite.log" | tail -3
grep -c '"peer"' "$out/suite/peers.jsonl" 2>/dev/null
