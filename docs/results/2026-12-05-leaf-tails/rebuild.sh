#!/usr/bin/env bash
# Rebuilds build-ab/bundle.tar.xz for run 2 on the workstation (no GPU needed): a worktree of
# 1295153 (the main the patch was taken against; later commits of main changed docs only) in WT
# (default /tmp/leaf-tails-wt) with leaf-tails-rule.patch applied and committed there (a
# local commit, so the binaries' --version names it), built with -Dgpu_arch=90 (release, no docs),
# then patlab, test_07_pat and test_08_hopper stripped and bundled as patlab-tails,
# test_07_pat-tails and test_08_hopper-tails, the names run.sh takes; build-ab/COMMIT says what
# they were built from. About 10 minutes on two cores.
#   docs/results/2026-12-05-leaf-tails/rebuild.sh
set -euo pipefail
cd "$(dirname "$0")/../../.."
root=$PWD
wt=${WT:-/tmp/leaf-tails-wt}
base=$(git rev-parse --short=12 1295153)
git worktree remove --force "$wt" 2> /dev/null || rm -rf "$wt"
git worktree prune
git worktree add -q --detach "$wt" "$base"
git -C "$wt" apply "$root/docs/results/2026-12-05-leaf-tails/leaf-tails-rule.patch"
git -C "$wt" add -A
git -C "$wt" -c user.name=patlab -c user.email=patlab@localhost commit -q \
  -m "leaf-tails-rule.patch on $base (local, for run 2 of docs/results/2026-12-05-leaf-tails)"
command -v nvcc > /dev/null 2>&1 || export PATH=/usr/local/cuda/bin:$PATH
(
  cd "$wt"
  # shellcheck source=../../../tools/nvcc_env.sh
  source tools/nvcc_env.sh
  # shellcheck disable=SC2046
  meson setup build-ab $(nvcc_native_file build-ab) --buildtype=release -Dgpu_arch=90 -Ddocs=disabled > /dev/null
  ninja -C build-ab tools/patlab tests/test_07_pat tests/test_08_hopper
)
stage=$(mktemp -d)
cp "$wt/build-ab/tools/patlab" "$stage/patlab-tails"
cp "$wt/build-ab/tests/test_07_pat" "$stage/test_07_pat-tails"
cp "$wt/build-ab/tests/test_08_hopper" "$stage/test_08_hopper-tails"
strip "$stage"/*
mkdir -p build-ab
tar -C "$stage" -cf - patlab-tails test_07_pat-tails test_08_hopper-tails |
  xz -T2 --lzma2=preset=6,dict=256MiB > build-ab/bundle.tar.xz
built=$(git -C "$wt" rev-parse --short=12 HEAD)
echo "bundle.tar.xz: patlab-tails test_07_pat-tails test_08_hopper-tails of $built (leaf-tails-rule.patch on $base), nvcc $(nvcc --version | tail -1), -Dgpu_arch=90, stripped, $(date -u +%F)" > build-ab/COMMIT
rm -rf "$stage"
cat build-ab/COMMIT
