"""FlashInfer environment for patlab's peers: JIT settings and the prebuilt-module cache.

FlashInfer (the ``flashinfer-python`` wheel) compiles its kernels with nvcc the first time they
are used. Two things make that cheap on the GPU machine:

* ``FLASHINFER_CUDA_ARCH_LIST`` limits the build to the H100's architecture (``9.0a``, which is
  also what FlashInfer picks by itself on an H100), and ``FLASHINFER_WORKSPACE_BASE`` puts the
  JIT cache in a folder we choose (``<repo>/.flashinfer-cache/jit`` by default), so a second run
  in the same folder reuses it.
* Modules prebuilt on a machine without a GPU (``tools/peers/prebuild_jit.py``) are handed to
  FlashInfer through its own hook for ahead-of-time builds: when a package called
  ``flashinfer_jit_cache`` is importable, FlashInfer loads ``<its dir>/<module>/<module>.so``
  as it is, with no compiler and no staleness check. ``install_prebuilt`` writes a two-line
  package of that name in a temporary folder that points at the prebuilt folder.

Call ``configure()`` before the first ``import flashinfer``: FlashInfer reads these settings
when it is imported. Nothing here imports torch or flashinfer.
"""

from __future__ import annotations

import json
import os
import pathlib
import sys
import tempfile

#: The FlashInfer version the wheels in .wheels/ and the prebuilt cache are for.
FLASHINFER_VERSION = "0.6.6"
#: The H100's architecture as FlashInfer spells it (sm_90a: wgmma/TMA kernels allowed).
DEFAULT_ARCH = "9.0a"

REPO = pathlib.Path(__file__).resolve().parents[2]
DEFAULT_CACHE = REPO / ".flashinfer-cache"


def configure(cache_dir: pathlib.Path = DEFAULT_CACHE, arch: str = DEFAULT_ARCH, jobs: int | None = None) -> dict:
    """Sets FlashInfer's JIT environment variables (keeping any the caller already set).

    Returns the settings in force, for the results file.
    """
    cache_dir = pathlib.Path(cache_dir).resolve()
    os.environ.setdefault("FLASHINFER_CUDA_ARCH_LIST", arch)
    os.environ.setdefault("FLASHINFER_WORKSPACE_BASE", str(cache_dir / "jit"))
    if jobs is not None:
        os.environ.setdefault("MAX_JOBS", str(jobs))
    if "CUDA_HOME" not in os.environ and pathlib.Path("/usr/local/cuda/bin/nvcc").exists():
        os.environ["CUDA_HOME"] = "/usr/local/cuda"
    cuda_bin = os.path.join(os.environ.get("CUDA_HOME", "/usr/local/cuda"), "bin")
    if cuda_bin not in os.environ.get("PATH", "").split(os.pathsep):
        os.environ["PATH"] = cuda_bin + os.pathsep + os.environ.get("PATH", "")
    return {
        "FLASHINFER_CUDA_ARCH_LIST": os.environ["FLASHINFER_CUDA_ARCH_LIST"],
        "FLASHINFER_WORKSPACE_BASE": os.environ["FLASHINFER_WORKSPACE_BASE"],
        "CUDA_HOME": os.environ.get("CUDA_HOME", ""),
    }


def prebuilt_dir(cache_dir: pathlib.Path = DEFAULT_CACHE) -> pathlib.Path:
    """Where prebuild_jit.py puts its modules: ``<cache>/aot/<module>/<module>.so``."""
    return pathlib.Path(cache_dir).resolve() / "aot"


def read_manifest(aot_dir: pathlib.Path) -> dict | None:
    """The manifest prebuild_jit.py wrote next to its modules, or None."""
    path = pathlib.Path(aot_dir) / "manifest.json"
    if not path.exists():
        return None
    with open(path) as f:
        return json.load(f)


def install_prebuilt(aot_dir: pathlib.Path) -> str:
    """Makes FlashInfer load the modules in `aot_dir` without compiling them.

    Must run before ``import flashinfer``. Returns a one-line note of what was done (or why not).
    """
    aot_dir = pathlib.Path(aot_dir).resolve()
    manifest = read_manifest(aot_dir)
    if manifest is None:
        return f"no prebuilt modules ({aot_dir / 'manifest.json'} not found): everything is JIT-compiled here"
    if "flashinfer" in sys.modules:
        return "prebuilt modules not used: flashinfer was imported before install_prebuilt()"
    arch = os.environ.get("FLASHINFER_CUDA_ARCH_LIST", DEFAULT_ARCH)
    if manifest.get("flashinfer") != FLASHINFER_VERSION or manifest.get("arch") != arch:
        return (f"prebuilt modules not used: they are for flashinfer {manifest.get('flashinfer')} arch "
                f"{manifest.get('arch')}, this run wants {FLASHINFER_VERSION} arch {arch}")
    shim = pathlib.Path(tempfile.mkdtemp(prefix="patlab-fi-shim-")) / "flashinfer_jit_cache"
    shim.mkdir()
    (shim / "__init__.py").write_text(
        '"""Points FlashInfer at patlab\'s prebuilt modules (written by tools/peers/fi_env.py)."""\n'
        f"__version__ = {FLASHINFER_VERSION!r}\n\n\n"
        "def get_jit_cache_dir():\n"
        f"    return {str(aot_dir)!r}\n")
    sys.path.insert(0, str(shim.parent))
    modules = manifest.get("modules", [])
    present = [m for m in modules if (aot_dir / m["name"] / f"{m['name']}.so").exists()]
    return f"{len(present)} prebuilt FlashInfer modules from {aot_dir} (built {manifest.get('date', '?')})"
