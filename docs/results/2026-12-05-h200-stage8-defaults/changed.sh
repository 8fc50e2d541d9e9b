#!/usr/bin/env bash
# The lines of suite files whose stage-8 plan (`patlab plan --hopper-tiles --packs`, the host's
# estimate of the GPU's CTA slots) differs between the old routing (--hopper-wide-kv 2048
# --hopper-min-piece 0) and run 1's candidate default (1024, 512): the only workloads where that
# change of defaults can change stage 8's kernels. CPU only.
#   docs/results/2026-12-05-h200-stage8-defaults/changed.sh PATLAB SUITE_FILE... > workloads.txt
set -uo pipefail
patlab=${1:?usage: changed.sh PATLAB SUITE_FILE...}
shift
packs() { "$patlab" plan "$@" --hopper-tiles --quiet --packs 2>&1 | sed -n '/^pack /,$p' | md5sum; }
for f in "$@"; do
  grep -v '^ *#' "$f" | sed 's/ *#.*//' | grep -v '^ *$' | while IFS= read -r wl; do
    # shellcheck disable=SC2086
    [[ $(packs $wl --hopper-wide-kv 2048 --hopper-min-piece 0) != $(packs $wl --hopper-wide-kv 1024 --hopper-min-piece 512) ]] &&
      echo "$wl"
  done
done
exit 0
