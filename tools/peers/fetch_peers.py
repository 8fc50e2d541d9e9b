#!/usr/bin/env python3
"""Fetches the peers that are not wheels into the git-ignored folder .peers/ (dev machine, with
network), pinned, and prints what to carry to the GPU machine and how large it is.

* .peers/pat-benchmark/: FastTree.py and DeFT.py from flashserve/PAT's benchmark/ folder at a
  pinned commit (the Triton kernels PAT runs as its own baselines), with their LICENSE.
* .peers/vllm-fa3/: from the vllm 0.26.0 wheel (`pip download vllm==0.26.0 --no-deps`, 304 MB,
  kept outside the repository), only vllm/vllm_flash_attn/_vllm_fa3_C.abi3.so (153 MB, stored
  xz-compressed: about 8 MB) and the two Python files that call it: flash_attn_interface.py
  (vLLM's wrapper around torch.ops._vllm_fa3_C) and triton_merge_attn_states.py (the merge of
  vLLM's cascade). vllm_peers.py unpacks the extension on the GPU machine on first use.
* .peers/MANIFEST.json: versions, commit, sha256 of every file, sizes.

    python3 tools/peers/fetch_peers.py                          # everything
    python3 tools/peers/fetch_peers.py --pat-git /path/to/PAT.git --wheel /tmp/vllm-0.26.0-...whl

Nothing here is copied into tracked files; the folder is named in .gitignore.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import lzma
import pathlib
import shutil
import subprocess
import sys
import tempfile
import zipfile

ROOT = pathlib.Path(__file__).resolve().parents[2]
PEERS_DIR = ROOT / ".peers"
#: flashserve/PAT, the commit whose benchmark/ kernels are used (2025-12-17).
PAT_URL = "https://github.com/flashserve/PAT.git"
PAT_COMMIT = "a76087a0c7efaf0012bb5d6b491f7b031eab5d19"
PAT_FILES = ["benchmark/FastTree.py", "benchmark/DeFT.py", "LICENSE"]
VLLM_VERSION = "0.26.0"
VLLM_WHEEL = f"vllm-{VLLM_VERSION}-cp38-abi3-manylinux_2_28_x86_64.whl"
#: wheel member -> file name in .peers/vllm-fa3 (the extension is stored xz-compressed).
VLLM_MEMBERS = {
    "vllm/vllm_flash_attn/_vllm_fa3_C.abi3.so": "_vllm_fa3_C.abi3.so.xz",
    "vllm/vllm_flash_attn/flash_attn_interface.py": "flash_attn_interface.py",
    "vllm/v1/attention/ops/triton_merge_attn_states.py": "triton_merge_attn_states.py",
}
CARRY_LIMIT = 64 << 20


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def git_show(git_dir: pathlib.Path, commit: str, path: str) -> bytes:
    return subprocess.run(["git", "--git-dir", str(git_dir), "show", f"{commit}:{path}"], check=True,
                          capture_output=True).stdout


def pat_git_dir(given: str | None, tmp: pathlib.Path) -> pathlib.Path:
    """A git directory holding PAT_COMMIT: the one given (a bare mirror or a clone's .git), or a
    fresh blobless clone."""
    if given:
        return pathlib.Path(given)
    dest = tmp / "PAT.git"
    subprocess.run(["git", "clone", "--quiet", "--bare", "--filter=blob:none", PAT_URL, str(dest)], check=True)
    return dest


def fetch_pat(git_dir: pathlib.Path, out: pathlib.Path) -> dict:
    out.mkdir(parents=True, exist_ok=True)
    files = {}
    for path in PAT_FILES:
        data = git_show(git_dir, PAT_COMMIT, path)
        (out / pathlib.Path(path).name).write_bytes(data)
        files[pathlib.Path(path).name] = {"from": path, "bytes": len(data), "sha256": sha256(data)}
    return {"repository": PAT_URL, "commit": PAT_COMMIT, "files": files}


def vllm_wheel(given: str | None, tmp: pathlib.Path) -> pathlib.Path:
    if given:
        return pathlib.Path(given)
    subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary=:all:",
                    "--python-version", "3.12", "--implementation", "cp", "--platform", "manylinux_2_28_x86_64",
                    "-d", str(tmp), f"vllm=={VLLM_VERSION}"], check=True)
    return tmp / VLLM_WHEEL


def fetch_vllm(wheel: pathlib.Path, out: pathlib.Path) -> dict:
    out.mkdir(parents=True, exist_ok=True)
    files = {}
    with zipfile.ZipFile(wheel) as z:
        for member, name in VLLM_MEMBERS.items():
            data = z.read(member)
            entry = {"from": member, "bytes": len(data), "sha256": sha256(data)}
            if name.endswith(".xz"):
                print(f"fetch_peers: compressing {member} ({len(data) / 1e6:.0f} MB, about a minute)", file=sys.stderr)
                packed = lzma.compress(data, preset=9)
                (out / name).write_bytes(packed)
                entry["stored_bytes"] = len(packed)
            else:
                (out / name).write_bytes(data)
            files[name] = entry
    return {"package": f"vllm=={VLLM_VERSION}", "wheel": wheel.name, "wheel_sha256": sha256(wheel.read_bytes()),
            "files": files}


def folder_bytes(path: pathlib.Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) if path.exists() else 0


def print_sizes() -> None:
    parts = {".peers": PEERS_DIR, ".wheels": ROOT / ".wheels", ".flashinfer-cache/aot": ROOT / ".flashinfer-cache" / "aot"}
    total = 0
    for name, p in parts.items():
        b = folder_bytes(p)
        total += b
        print(f"{name:24s} {b / 2**20:8.1f} MiB{'' if p.exists() else '  (missing)'}")
    # The device call sends the checkout's tracked files too, and they count against the same limit.
    try:
        listed = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True).stdout
        tracked = sum((ROOT / f).stat().st_size for f in listed.decode().split("\0") if f and (ROOT / f).is_file())
        print(f"{'tracked files':24s} {tracked / 2**20:8.1f} MiB")
        total += tracked
    except (OSError, subprocess.CalledProcessError):
        print(f"{'tracked files':24s}        ? (not a git checkout: add them)")
    print(f"{'carry in one call':24s} {total / 2**20:8.1f} MiB of {CARRY_LIMIT >> 20} MiB: "
          f"{'fits' if total <= CARRY_LIMIT else 'too large: carry .peers in a call of its own'}")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description="Fetch FastTree/DeFT (PAT's benchmark kernels) and vLLM's FA3 extension "
                                            "into .peers/ (git-ignored) and print the carry sizes.")
    p.add_argument("--pat-git", help="an existing git directory of flashserve/PAT (else: clone from GitHub)")
    p.add_argument("--wheel", help=f"an already downloaded {VLLM_WHEEL} (else: pip download)")
    p.add_argument("--skip-vllm", action="store_true", help="fetch PAT's kernels only")
    p.add_argument("--sizes", action="store_true", help="only print the carry sizes")
    a = p.parse_args(argv)
    if a.sizes:
        print_sizes()
        return 0
    for given in (a.pat_git, a.wheel):
        if given and not pathlib.Path(given).exists():
            print(f"fetch_peers: {given} does not exist", file=sys.stderr)
            return 2
    manifest_path = PEERS_DIR / "MANIFEST.json"
    manifest = json.loads(manifest_path.read_text()) if manifest_path.is_file() else {}
    with tempfile.TemporaryDirectory() as t:
        tmp = pathlib.Path(t)
        manifest["pat-benchmark"] = fetch_pat(pat_git_dir(a.pat_git, tmp), PEERS_DIR / "pat-benchmark")
        if not a.skip_vllm:
            shutil.rmtree(PEERS_DIR / "vllm-fa3", ignore_errors=True)
            manifest["vllm-fa3"] = fetch_vllm(vllm_wheel(a.wheel, tmp), PEERS_DIR / "vllm-fa3")
    manifest_path.write_text(json.dumps(manifest, indent=1) + "\n")
    print(f"fetch_peers: wrote {manifest_path}", file=sys.stderr)
    print_sizes()
    return 0


if __name__ == "__main__":
    sys.exit(main())
