#!/usr/bin/env bash
# Sourced by tools/run_suite.sh and tools/peers/profile_peers.sh (run from the repository root):
# install_peer_wheels NAME LOG installs the carried FlashInfer and tvm-ffi wheels of .wheels/ into
# /tmp/site unless FlashInfer already imports from there (the GPU machine has no network), pip's
# output in LOG, and puts /tmp/site first on PYTHONPATH. NAME prefixes its messages.
install_peer_wheels() {
  local name=$1 log=$2 site=/tmp/site
  if ! PYTHONPATH=$site python3 -c 'import flashinfer' > /dev/null 2>&1; then
    if ls .wheels/*.whl > /dev/null 2>&1; then
      python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$site" .wheels/*.whl \
        > "$log" 2>&1 || echo "$name: pip install of .wheels failed (see $log)"
    else
      echo "$name: no .wheels/ here: the FlashInfer peers will say they could not run"
    fi
  fi
  export PYTHONPATH=$site${PYTHONPATH:+:$PYTHONPATH}
}
