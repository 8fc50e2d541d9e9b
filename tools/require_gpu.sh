#!/usr/bin/env bash
# Fails unless this machine runs patlab's GPU stages: stage naive must run on the tiny workload
# and pass its check. tools/gpu_run.sh and tools/sanitize.sh call it first, so that a host
# without a device or with a broken CUDA (driver too old, runtime error) fails at once instead
# of skipping green.
#   tools/require_gpu.sh PATLAB    (the patlab binary): prints the device and exits 0, or prints
#                                  why not and exits 1.
set -uo pipefail
patlab=${1:?usage: tools/require_gpu.sh PATLAB}
[[ -x $patlab ]] || { echo "require_gpu.sh: $patlab not built" >&2; exit 1; }
log=$("$patlab" bench tiny --stage naive --repeats 20 --warmup 0 --no-graph --warm-l2 --format csv 2>&1)
rc=$?
# The verdict is in the results and checks rows of the CSV: "...,naive,PASS..." (maybe quoted).
if [[ $rc -ne 0 ]] || ! grep -qE '(^|,)naive,"?PASS' <<< "$log"; then
  echo "require_gpu.sh: the GPU stages did not run here (patlab bench exit $rc); its last lines:" >&2
  tail -5 <<< "$log" >&2
  exit 1
fi
echo "gpu: $(grep -m1 -E '^device,' <<< "$log")"
