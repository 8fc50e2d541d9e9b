#!/usr/bin/env bash
# Profile evidence for chapter 20 (issue 14): Nsight Compute over the peers and patlab's stages
# on three workloads that show where each peer wins or loses (tools/peers/profile_peers.sh, one
# folder per workload). Run it after run.sh in the same device call (run.sh builds build-gpu and
# installs the peers' wheels). Carry .peers, .wheels and .flashinfer-cache.
# Everything lands in OUT/profiles.tar.gz. DEADLINE (default 300) is a hard stop in seconds of
# this script; a workload not started by then is left out, and says so in profiles.log.
#   PATLAB_COMMIT=<hash> docs/results/2026-12-02-h200-suite/profile.sh OUT [DEADLINE] [SET]
# SET: "all" (default) or "nofi" (leave out the FlashInfer peers, when .flashinfer-cache is not carried)
set -uo pipefail
final=$1 deadline=${2:-300} set=${3:-all}
here=$(cd "$(dirname "$0")" && pwd)
cd "$here/../../.."
out=/tmp/suite-profiles
rm -rf "$out"
mkdir -p "$out" "$final"
trap 'tar -C /tmp -czf "$final/profiles.tar.gz" suite-profiles' EXIT
{ nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv; date -u; echo "commit ${PATLAB_COMMIT:-unknown}"
  ncu --version | tail -1; } > "$out/env.txt" 2>&1
fi_peers() { [[ $set == nofi ]] && return; echo ",$1"; }
one() {  # NAME WORKLOAD PEERS STAGES
  local left=$((deadline - SECONDS))
  if (( left < 40 )); then echo "$1: not started ($left s left)" | tee -a "$out/profiles.log"; return; fi
  timeout -s TERM "$left" tools/peers/profile_peers.sh "$out/$1" "$2" "$3" "$4" 40 >> "$out/profiles.log" 2>&1
  echo "$1: exit $? after $SECONDS s" | tee -a "$out/profiles.log"
}
# FastTree's wins: group 1 on a deep tree (part 2's worst workload for patlab).
one deep-tree-g1 "--tree 4,16,256,512_512,32,128,32 --heads 32/32" fasttree,deft hopper,pat
# A long shared prefix: the cascades against stage 8's 128-row packs.
one long-prefix "--tree 1,128_16384,256 --heads 32/8" "vllm-fa3,vllm-cascade$(fi_peers fi-cascade-fa2)" hopper,pat
# No sharing: FA3's split-KV decode and cuDNN against stage 7.
one no-sharing "--tree 256_4096 --heads 32/8" "vllm-fa3,sdpa-cudnn$(fi_peers fi-decode-tc)" pat
