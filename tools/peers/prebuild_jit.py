#!/usr/bin/env python3
"""Compile the FlashInfer kernels that run_peers.py needs, on a machine without a GPU.

FlashInfer compiles each kernel module with nvcc the first time it is used; on the GPU machine
that costs minutes of device time per run (the machine starts bare). This script builds the same
modules here, for the H100 (sm_90a), and writes them to ``<cache>/aot/<module>/<module>.so`` with
a manifest. run_peers.py hands that folder to FlashInfer (see fi_env.install_prebuilt), which then
loads the modules without compiling.

Needs: Python 3.12 with torch importable (any build: only its version info is read; no GPU),
the carried wheels installed (``pip install --target /tmp/site .wheels/*.whl`` and
``PYTHONPATH=/tmp/site``), nvcc 13.0 (the same as on the GPU machine) and ninja.

Modules (per dtype and head dim): batch decode (CUDA cores), batch prefill with the FA2 backend
(BatchDecode with use_tensor_cores=True, and the cascade's levels when forced to fa2), batch
prefill with the FA3 backend (the cascade's levels: FlashInfer's "auto" choice on an H100), and
the merge ("cascade") module.

    PYTHONPATH=/tmp/site python3 tools/peers/prebuild_jit.py                 # fp16, d=128
    PYTHONPATH=/tmp/site python3 tools/peers/prebuild_jit.py --dtypes fp16,bf16 --head-dims 64,128
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import pathlib
import shutil
import subprocess
import sys
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import fi_env  # noqa: E402

KINDS = ("decode", "fa2", "fa3", "cascade")


def parse_args(argv=None):
    p = argparse.ArgumentParser(
        description="Prebuild FlashInfer's JIT modules for the H100 (sm_90a) without a GPU, into "
                    "<cache>/aot for run_peers.py.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--cache", type=pathlib.Path, default=fi_env.DEFAULT_CACHE,
                   help="cache folder (the modules go to CACHE/aot, the build tree to CACHE/build)")
    p.add_argument("--dtypes", default="fp16", help="comma-separated: fp16, bf16")
    p.add_argument("--head-dims", default="128", help="comma-separated: 64, 128")
    p.add_argument("--kinds", default=",".join(KINDS), help="comma-separated subset of " + ", ".join(KINDS))
    p.add_argument("--arch", default=fi_env.DEFAULT_ARCH, help="FLASHINFER_CUDA_ARCH_LIST")
    p.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="parallel nvcc jobs (MAX_JOBS)")
    p.add_argument("--keep-build", action="store_true", help="keep CACHE/build (the objects) afterwards")
    p.add_argument("--import-so", type=pathlib.Path, metavar="DIR",
                   help="instead of building: add the modules DIR/<module>.so (run_suite.sh's OUTDIR/flashinfer-jit, "
                        "compiled on the GPU machine) to CACHE/aot")
    return p.parse_args(argv)


def import_modules(src: pathlib.Path, cache: pathlib.Path, arch: str) -> int:
    """Adds FlashInfer modules compiled elsewhere (flat <module>.so files) to the prebuilt folder."""
    out_dir = fi_env.prebuilt_dir(cache)
    out_dir.mkdir(parents=True, exist_ok=True)
    manifest = fi_env.read_manifest(out_dir) or {"flashinfer": fi_env.FLASHINFER_VERSION, "arch": arch, "modules": []}
    if manifest.get("flashinfer") != fi_env.FLASHINFER_VERSION or manifest.get("arch") != arch:
        raise SystemExit(f"prebuild_jit: {out_dir} holds modules for flashinfer {manifest.get('flashinfer')} arch "
                         f"{manifest.get('arch')}, not {fi_env.FLASHINFER_VERSION} {arch}")
    modules = {m["name"]: m for m in manifest.get("modules", [])}
    files = sorted(src.glob("*.so"))
    for so in files:
        target = out_dir / so.stem / so.name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(so, target)
        modules[so.stem] = {"name": so.stem, "kind": "imported", "bytes": target.stat().st_size}
        print(f"  imported {so.name} ({target.stat().st_size / 1e6:.1f} MB)")
    manifest["modules"] = sorted(modules.values(), key=lambda m: m["name"])
    manifest.setdefault("date", datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"))
    (out_dir / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")
    print(f"prebuild_jit: {len(files)} modules imported into {out_dir}")
    return 0


def nvcc_version() -> str:
    nvcc = pathlib.Path(os.environ.get("CUDA_HOME", "/usr/local/cuda")) / "bin" / "nvcc"
    try:
        out = subprocess.run([str(nvcc), "--version"], capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError) as e:
        raise SystemExit(f"prebuild_jit: nvcc not usable at {nvcc}: {e}")
    return out.strip().splitlines()[-1]


def main(argv=None) -> int:
    a = parse_args(argv)
    if a.import_so:
        return import_modules(a.import_so, a.cache.resolve(), a.arch)
    dtypes = [d.strip() for d in a.dtypes.split(",") if d.strip()]
    head_dims = [int(h) for h in a.head_dims.split(",") if h.strip()]
    kinds = [k.strip() for k in a.kinds.split(",") if k.strip()]
    for k in kinds:
        if k not in KINDS:
            raise SystemExit(f"prebuild_jit: unknown kind '{k}' (known: {', '.join(KINDS)})")
    for d in dtypes:
        if d not in ("fp16", "bf16"):
            raise SystemExit(f"prebuild_jit: unknown dtype '{d}' (fp16 or bf16)")
    cache = a.cache.resolve()
    # The build tree is scratch: only the .so files are kept.
    os.environ["FLASHINFER_WORKSPACE_BASE"] = str(cache / "build")
    settings = fi_env.configure(cache, a.arch, a.jobs)
    nvcc = nvcc_version()

    try:
        import torch
        import flashinfer
        from flashinfer.jit.attention.modules import gen_batch_decode_module, gen_batch_prefill_module
        from flashinfer.jit.cascade import gen_cascade_module
    except ImportError as e:
        raise SystemExit(f"prebuild_jit: cannot import torch/flashinfer ({e}); install the wheels with "
                         "pip install --target /tmp/site .wheels/*.whl and set PYTHONPATH=/tmp/site")
    if flashinfer.__version__ != fi_env.FLASHINFER_VERSION:
        raise SystemExit(f"prebuild_jit: flashinfer {flashinfer.__version__} imported, "
                         f"{fi_env.FLASHINFER_VERSION} expected (see tools/peers/README.md)")

    tdt = {"fp16": torch.float16, "bf16": torch.bfloat16}
    specs = []
    for d in dtypes:
        for hd in head_dims:
            t = tdt[d]
            # Arguments as decode.py / prefill.py pass them for plain attention: int32 indices,
            # no positional encoding (0), no sliding window, no logits cap, no fp16 QK reduction.
            if "decode" in kinds:
                specs.append(("decode", d, hd, gen_batch_decode_module(t, t, t, torch.int32, hd, hd, 0, False, False)))
            for backend in ("fa2", "fa3"):
                if backend in kinds:
                    specs.append((backend, d, hd,
                                  gen_batch_prefill_module(backend, t, t, t, torch.int32, hd, hd, 0, False, False, False)))
    if "cascade" in kinds:
        specs.append(("cascade", "-", 0, gen_cascade_module()))

    out_dir = fi_env.prebuilt_dir(cache)
    out_dir.mkdir(parents=True, exist_ok=True)
    manifest_path = out_dir / "manifest.json"
    old = fi_env.read_manifest(out_dir) or {}
    modules = {m["name"]: m for m in old.get("modules", [])
               if old.get("flashinfer") == fi_env.FLASHINFER_VERSION and old.get("arch") == settings["FLASHINFER_CUDA_ARCH_LIST"]}
    print(f"prebuild_jit: flashinfer {flashinfer.__version__}, arch {settings['FLASHINFER_CUDA_ARCH_LIST']}, {nvcc}, "
          f"{len(specs)} modules, {a.jobs} jobs -> {out_dir}", flush=True)
    failed = 0
    for kind, d, hd, spec in specs:
        target = out_dir / spec.name / f"{spec.name}.so"
        if target.exists() and spec.name in modules:
            print(f"  {kind:8} {d:5} d={hd:<4} already built ({target.stat().st_size / 1e6:.1f} MB)", flush=True)
            continue
        t0 = time.time()
        try:
            spec.build(verbose=False)
        except Exception as e:  # report and go on with the next module
            failed += 1
            print(f"  {kind:8} {d:5} d={hd:<4} FAILED after {time.time() - t0:.0f} s: {str(e)[-2000:]}", flush=True)
            continue
        seconds = time.time() - t0
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(spec.jit_library_path, target)
        modules[spec.name] = {"name": spec.name, "kind": kind, "dtype": d, "head_dim": hd,
                              "bytes": target.stat().st_size, "build_seconds": round(seconds, 1)}
        print(f"  {kind:8} {d:5} d={hd:<4} built in {seconds:.0f} s ({target.stat().st_size / 1e6:.1f} MB)", flush=True)
        manifest = {"flashinfer": fi_env.FLASHINFER_VERSION, "arch": settings["FLASHINFER_CUDA_ARCH_LIST"],
                    "nvcc": nvcc, "torch_used_for_build": torch.__version__,
                    "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
                    "modules": sorted(modules.values(), key=lambda m: m["name"])}
        manifest_path.write_text(json.dumps(manifest, indent=1) + "\n")
    if not a.keep_build:
        shutil.rmtree(cache / "build", ignore_errors=True)
    total = sum(p.stat().st_size for p in out_dir.rglob("*.so"))
    print(f"prebuild_jit: {len(modules)} modules in {out_dir}, {total / 2**20:.1f} MiB; {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
