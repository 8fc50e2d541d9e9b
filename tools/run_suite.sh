#!/usr/bin/env bash
# The standard suite on the GPU machine, patlab and its peers side by side in one run:
# installs the carried FlashInfer wheels, builds patlab, then tools/peers/suite.py runs, per
# workload, `patlab compare`, `patlab export` and the peers (FlashInfer decode and cascade,
# torch SDPA cuDNN/flash), and writes one table per workload plus CSV, JSON and plots to OUTDIR.
#
#   tools/run_suite.sh OUTDIR [--suite FILE] [--lines A:B] [--workload W]... [--repeats N]
#                             [--warmup N] [--warm-l2] [--build DIR] [--peers LIST] [--no-patlab]
#                             [--graph] [--timeout S] [--budget S]
#
# Needs: .wheels/ (tools/peers/README.md says how it is filled on the dev machine), and for no JIT
# at run time .flashinfer-cache/aot (tools/peers/prebuild_jit.py); both are git-ignored, so carry
# them along. FlashInfer modules compiled here land in .flashinfer-cache/jit and are copied to
# OUTDIR/flashinfer-jit so they can be carried back and reused.
set -uo pipefail

usage() { sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'; exit 2; }
[[ $# -ge 1 && $1 != -* ]] || usage
out=$1; shift
build=build-gpu
suite_args=()
while [[ $# -gt 0 ]]; do
  case $1 in
    --build) build=$2; shift ;;
    --suite|--lines|--workload|--repeats|--warmup|--peers|--timeout|--budget) suite_args+=("$1" "$2"); shift ;;
    --warm-l2|--no-patlab|--keep-exports|--no-prebuilt|--graph) suite_args+=("$1") ;;
    -h|--help) usage ;;
    *) echo "run_suite.sh: unknown option $1" >&2; exit 2 ;;
  esac
  shift
done
here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here"
mkdir -p "$out"
out=$(cd "$out" && pwd)
export PATH=/usr/local/cuda/bin:$PATH

# FlashInfer and tvm-ffi from the carried wheels (no network there).
# shellcheck source=tools/peers/wheels_env.sh
source tools/peers/wheels_env.sh
install_peer_wheels run_suite.sh "$out/pip.log"
python3 -c 'import flashinfer, torch; print("flashinfer", flashinfer.__version__, "torch", torch.__version__)' 2>&1 | tail -1

if [[ ! -f $build/build.ninja ]]; then
  # The commit patlab records: PATLAB_COMMIT when set (a copy whose .git may be stale), else git's.
  commit=${PATLAB_COMMIT:-$(git describe --always --dirty --abbrev=12 2>/dev/null || echo unknown)}
  meson setup "$build" --buildtype=release -Dgpu_arch=90 -Dcommit="$commit" > "$out/build.log" 2>&1 || { tail -30 "$out/build.log"; exit 1; }
fi
# The suite calls the patlab binary alone: its target is all that is built.
ninja -C "$build" tools/patlab >> "$out/build.log" 2>&1 || { tail -50 "$out/build.log"; exit 1; }
echo "build: ok ($build)"

python3 tools/peers/suite.py --patlab "$build/tools/patlab" --out "$out" "${suite_args[@]}"
status=$?

# Keep what FlashInfer compiled here, for the next run (carry it back into .flashinfer-cache/jit).
if [[ -d .flashinfer-cache/jit ]] && find .flashinfer-cache/jit -name '*.so' | grep -q .; then
  mkdir -p "$out/flashinfer-jit"
  find .flashinfer-cache/jit -name '*.so' -exec cp {} "$out/flashinfer-jit/" \;
  echo "FlashInfer modules compiled in this run: $out/flashinfer-jit (see tools/peers/README.md to reuse them)"
fi
exit $status
