#!/usr/bin/env bash
# Nsight Compute on the peers beside patlab's stages, on one workload (issue 14: where each peer
# wins and why, with profile evidence). Per peer: ncu over run_peers.py on the workload's export,
# the first LAUNCHES kernel launches of the process (the oracle check's run and the warm-ups come
# first, so those are the kernels profiled), one summary line set per kernel name
# (--print-summary per-kernel). Per stage: the same over `patlab bench W --stage S --no-check`.
#
#   tools/peers/profile_peers.sh OUTDIR "WORKLOAD" PEERS [STAGES] [LAUNCHES]
#     WORKLOAD  patlab workload options, quoted: "--tree 4,16,256,512_512,32,128,32 --heads 32/32"
#     PEERS     comma-separated peer names of run_peers.py (fasttree,fi-decode-tc,...)
#     STAGES    comma-separated patlab stages (default: hopper,pat)
#     LAUNCHES  kernel launches profiled per process (default 40)
#
# Writes OUTDIR/NAME.txt per peer and stage (the summary lines: duration, DRAM and memory
# throughput, L2 hit rate, SM throughput, occupancy, registers, grid and block) and
# OUTDIR/NAME.log (ncu's whole output). Needs: build-gpu/tools/patlab, ncu on PATH
# (/usr/local/cuda/bin), and the peers' setup of run_suite.sh (.wheels installed into /tmp/site,
# .peers, .flashinfer-cache carried); run it after run_suite.sh in the same call, or let it
# install the wheels itself. Exit 2 on a usage error, 1 if a profile failed.
set -uo pipefail
usage() { sed -n '2,19p' "$0" | sed 's/^# \{0,1\}//'; exit 2; }
[[ $# -ge 3 && $1 != -* ]] || usage
out=$1 workload=$2 peers=$3 stages=${4:-hopper,pat} launches=${5:-40}
[[ $launches =~ ^[1-9][0-9]*$ ]] || { echo "profile_peers.sh: LAUNCHES must be a positive integer, not '$launches'" >&2; exit 2; }
here=$(cd "$(dirname "$0")/../.." && pwd)
cd "$here" || exit 1
export PATH=/usr/local/cuda/bin:$PATH
patlab=build-gpu/tools/patlab
[[ -x $patlab ]] || { echo "profile_peers.sh: $patlab not built (meson setup build-gpu -Dgpu_arch=90 && ninja -C build-gpu tools/patlab)" >&2; exit 2; }
command -v ncu > /dev/null || { echo "profile_peers.sh: ncu not found on PATH" >&2; exit 2; }
mkdir -p "$out"
# shellcheck source=tools/peers/wheels_env.sh
source tools/peers/wheels_env.sh
install_peer_wheels profile_peers.sh "$out/pip.log"

# The lines of ncu's per-kernel summary that the chapter quotes.
keep='^  [A-Za-z_].*\(|invocations|Duration|DRAM Throughput|Memory Throughput|L2 Hit Rate|Compute \(SM\) Throughput|Achieved Occupancy|Theoretical Occupancy|Registers Per Thread|Grid Size|Block Size'
ncu_args=(--clock-control none --kernel-name-base demangled --launch-count "$launches" --print-summary per-kernel
          --section SpeedOfLight --section MemoryWorkloadAnalysis --section Occupancy --section LaunchStats)
status=0
export_dir=$(mktemp -d /tmp/profile-export.XXXXXX)
trap 'rm -rf "$export_dir"' EXIT
# shellcheck disable=SC2086
if ! $patlab export $workload --out "$export_dir" --quiet > "$out/export.log" 2>&1; then
  echo "profile_peers.sh: patlab export failed: $(tail -1 "$out/export.log")" >&2
  exit 1
fi
profile() {  # NAME COMMAND...: one ncu run, its log and its summary lines
  local name=$1; shift
  { echo "# $*"; date -u; } > "$out/$name.txt"
  timeout 300 ncu "${ncu_args[@]}" --target-processes all "$@" > "$out/$name.log" 2>&1
  local rc=$?
  echo "exit $rc" >> "$out/$name.txt"
  grep -E "$keep" "$out/$name.log" >> "$out/$name.txt"
  if (( rc != 0 )); then status=1; fi
  echo "$name: exit $rc, $(grep -cE '^  [A-Za-z_].*\(' "$out/$name.log") kernel names"
}
for p in ${peers//,/ }; do
  profile "peer-$p" python3 tools/peers/run_peers.py "$export_dir" --out "$out/peer-$p.json" --peers "$p" \
    --warmup 1 --repeats 20
done
for s in ${stages//,/ }; do
  # shellcheck disable=SC2086
  profile "stage-$s" "$patlab" bench $workload --stage "$s" --no-check --repeats 20 --warmup 1 --no-graph --quiet
done
exit $status
