#!/usr/bin/env bash
# Fills the git-ignored folders that a suite call carries to the GPU machine, on the dev machine
# (network, no GPU), in one go (tools/peers/README.md explains each step):
#   .wheels            FlashInfer 0.6.6 and apache-tvm-ffi wheels for Python 3.12 (pip download)
#   .peers             FastTree/DeFT from flashserve/PAT and vLLM 0.26.0's FA3 extension (fetch_peers.py)
#   .flashinfer-cache  FlashInfer's modules for sm_90a, fp16, d = 128 and 256 (prebuild_jit.py; about
#                      15 minutes on 2 cores, in a Python 3.12 venv with torch 2.11.0 at VENV)
#
#   tools/peers/setup_carry.sh [--pat-git DIR] [--venv DIR] [--python PY312]
#     --pat-git DIR  a local git directory of flashserve/PAT (e.g. the fetch tool's mirror) instead of a clone
#     --venv DIR     where the build venv lives (default /tmp/venv312; reused when it imports torch)
#     --python PY    a Python 3.12 interpreter for the venv (default: python3.12 on PATH)
# Steps whose result is already there are skipped; run it again after a failure. Exit 2 on a
# usage error, 1 when a step failed.
set -euo pipefail
usage() { sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'; exit 2; }
pat_git=() venv=/tmp/venv312 py=python3.12
while [[ $# -gt 0 ]]; do
  case $1 in
    --pat-git) [[ $# -ge 2 ]] || usage; pat_git=(--pat-git "$2"); shift ;;
    --venv) [[ $# -ge 2 ]] || usage; venv=$2; shift ;;
    --python) [[ $# -ge 2 ]] || usage; py=$2; shift ;;
    -h|--help) usage ;;
    *) echo "setup_carry.sh: unknown option $1" >&2; exit 2 ;;
  esac
  shift
done
cd "$(dirname "$0")/../.."
export PATH=/usr/local/cuda/bin:$PATH

if ! ls .wheels/flashinfer_python-0.6.6-*.whl .wheels/apache_tvm_ffi-0.1.15.post2-*.whl > /dev/null 2>&1; then
  echo "setup_carry: downloading the FlashInfer wheels into .wheels/"
  python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux_2_28_x86_64 -d .wheels flashinfer-python==0.6.6 apache-tvm-ffi==0.1.15.post2
fi
if [[ ! -f .peers/MANIFEST.json ]]; then
  echo "setup_carry: fetching FastTree, DeFT and vLLM's FA3 into .peers/"
  python3 tools/peers/fetch_peers.py "${pat_git[@]}"
fi
if ! "$venv/bin/python" -c "import torch" > /dev/null 2>&1; then
  command -v "$py" > /dev/null || { echo "setup_carry: no Python 3.12 ('$py'); pass --python" >&2; exit 1; }
  echo "setup_carry: creating $venv with torch 2.11.0 (a few GB of downloads)"
  "$py" -m venv "$venv"
  "$venv/bin/pip" install -q torch==2.11.0 "setuptools<82" numpy nvidia-ml-py einops click packaging requests \
    tabulate tqdm ninja filelock
fi
"$venv/bin/pip" install -q --no-index --no-deps --upgrade --target /tmp/site .wheels/*.whl
PYTHONPATH=/tmp/site PATH="$venv/bin:$PATH" "$venv/bin/python" tools/peers/prebuild_jit.py --head-dims 128,256 --jobs "$(nproc)"
python3 tools/peers/fetch_peers.py --sizes
