#!/usr/bin/env bash
# Time against shared-prefix length for stage 3 (splitkv), stage 7 (pat) and the peers, on the GPU
# machine: tools/run_suite.sh (patlab compare, patlab export and tools/peers/run_peers.py per
# workload, every stage and peer checked against the oracle first) on the workloads of
# tools/figures/prefix_sweep.txt, then the figure.
#
#   tools/figures/prefix_sweep.sh OUTDIR [run_suite.sh options: --repeats N, --peers LIST, --build DIR...]
#
# Writes OUTDIR/patlab.jsonl, OUTDIR/peers.jsonl (and the rest of a suite run) and
# OUTDIR/prefix_sweep.png. Carry .wheels and .flashinfer-cache as for the suite
# (tools/peers/README.md). Commit the folder under docs/results/ and the figure as
# docs/figures/prefix_sweep.png.
set -uo pipefail
[[ $# -ge 1 && $1 != -* ]] || { sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'; exit 2; }
out=$1; shift
here=$(cd "$(dirname "$0")/../.." && pwd)
cd "$here"
tools/run_suite.sh "$out" --suite tools/figures/prefix_sweep.txt "$@" || exit $?
python3 tools/figures/prefix_sweep.py "$out" "$out/prefix_sweep.png"
