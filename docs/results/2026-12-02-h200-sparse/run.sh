#!/usr/bin/env bash
# Sparse decode on the GPU (issue 17), first H200 run:
#  1. build tools/patlab and the sparse GPU test only (ninja -j16), the test with PATLAB_REQUIRE_GPU=1;
#  2. patlab sparse, FSA's loop order (by spans) against NSA's (both in one run: --method fsa runs
#     both) at groups 1, 2, 4, 8 and 16 (8 KV heads) on two shared-prefix batches, to find the
#     crossover; the summary prints FSA's spans and CTAs per tile shape (the notes column);
#  3. PSA against top-n on peaked data: the CPU's error-vs-blocks curves (--curves) and the GPU
#     times of psa at tau 0.9 / 0.99 and of nsa at n = 8, 16, 32.
# Everything lands in OUT/results.tar.gz (the device returns few files); a summary on stdout.
#   PATLAB_COMMIT=<hash> docs/results/2026-12-02-h200-sparse/run.sh OUT [SECONDS]
set -uo pipefail
final=$1
budget=${2:-300}
start=$SECONDS
here=$(cd "$(dirname "$0")" && pwd)
cd "$here/../../.."
out=/tmp/sparse-results
rm -rf "$out"
mkdir -p "$out" "$final"
trap 'tar -C /tmp -czf "$final/results.tar.gz" sparse-results' EXIT
export PATH=/usr/local/cuda/bin:$PATH
{ nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv; date -u; echo "commit ${PATLAB_COMMIT:-unknown}"; } > "$out/env.txt"
if [[ ! -f build-gpu/build.ninja ]]; then
  meson setup build-gpu --buildtype=release -Dgpu_arch=90 -Ddocs=disabled -Dcommit="${PATLAB_COMMIT:-unknown}" > "$out/build.log" 2>&1 || { tail -30 "$out/build.log"; exit 1; }
fi
ninja -C build-gpu -j16 tools/patlab tests/test_sparse_gpu >> "$out/build.log" 2>&1 || { tail -40 "$out/build.log"; exit 1; }
echo "build ok at $((SECONDS - start)) s"
cuobjdump --dump-resource-usage build-gpu/cuda/libpatlab_cuda.a 2>&1 | grep -A2 -E "select_kernel|compress_kernel|window_kernel|empty_partials|Lb1EEEv" > "$out/resources.txt"
PATLAB_REQUIRE_GPU=1 timeout 40 build-gpu/tests/test_sparse_gpu > "$out/test_sparse_gpu.log" 2>&1
echo "gpu test exit $? at $((SECONDS - start)) s"
tail -4 "$out/test_sparse_gpu.log"

P=build-gpu/tools/patlab
run() {  # NAME ARGS...: one patlab sparse run while time is left, JSON and exit code kept
  local name=$1; shift
  if (( SECONDS - start > budget )); then echo "stopped for time before $name" | tee -a "$out/runs.log"; return; fi
  timeout 20 "$P" sparse "$@" --quiet --format json > "$out/$name.json" 2> "$out/$name.err"
  echo "exit $? $name: $*" >> "$out/runs.log"
}
# FSA vs NSA, groups 1..16 on 8 KV heads: 16 requests on a 4096-token prefix (64 on 16384 below).
for g in 1 2 4 8 16; do
  run "fsa_16x4096_g$g" --tree 1,16_4096,256 --heads $((8 * g))/8 --method fsa
done
# The larger batch next (the target is on shared-prefix batches at groups <= 4).
for g in 1 2 4 8 16; do
  run "fsa_64x16384_g$g" --tree 1,64_16384,512 --heads $((8 * g))/8 --method fsa
done
# PSA on clustered keys (its curves are CPU results: ../2026-12-02-cpu-sparse-clustered): GPU times, last.
run psa_tau09 --tree 1,16_4096,256 --heads 32/8 --method psa --tau 0.9 --data clustered
for n in 8 16 32; do
  run "nsa_n$n" --tree 1,16_4096,256 --heads 32/8 --method nsa --top-n $n
done
echo "runs done at $((SECONDS - start)) s; $(grep -c '^exit 0' "$out/runs.log") of $(grep -c '^exit' "$out/runs.log") exit 0"
python3 - "$out" <<'PY'
import json, pathlib, sys
out = pathlib.Path(sys.argv[1])
for f in sorted(out.glob("*.json")):
    try:
        doc = json.loads(f.read_text())
    except Exception:
        print(f"{f.stem}: no JSON ({(out / (f.stem + '.err')).read_text().strip()[-200:]})")
        continue
    sel = doc.get("selection", {})
    for r in doc.get("gpu", []):
        print(f"{f.stem:22s} {r['order']:5s} sel {r['selected us']:9.1f} us step {r['step us']:9.1f} us "
              f"selection {r['selection us']:8.1f} us x_vs_nsa {r['x vs nsa order']} blocks {r['blocks read']} "
              f"phys {r['physical blocks']} "
              f"{'PASS' if r['check (gated output)'].startswith('PASS') and r['check (selected branch)'].startswith('PASS') else 'FAIL'}")
        if r['order'] != 'nsa':
            print(f"{'':22s}   {r['notes']}")
    if not doc.get("gpu"):
        print(f"{f.stem}: {doc.get('sparse run', {}).get('GPU')}")
    for p in doc.get("curves", []):
        print(f"  curve {p['budget']:11s} {p['parameter']:6} blocks {p['blocks read']:7} max err {p['max abs error']}")
PY
