"""Adapters of the peers fetched into .peers/ by fetch_peers.py (see README.md):

* fasttree, deft: the Triton kernels of flashserve/PAT's benchmark/ (FastTree.py, DeFT.py) with
  the tuning PAT's benchmark_kernel.py publishes, on the radix tree of the export's block tables
  (tree_meta.kv_tree); their KV entries are mapped to the export's pool slots after their own
  preparation, so they read the same paged pools as every other peer.
* vllm-fa3: vLLM 0.26.0's FA3 extension through torch.ops._vllm_fa3_C (vLLM's own wrapper
  flash_attn_interface.py): paged varlen decode with a block table and AOT scheduler metadata
  (FA3 chooses pack-GQA and the KV splits, as vLLM does).
* vllm-cascade: vLLM's cascade_attention: one prefix pass of all queries over the blocks every
  request shares, one suffix pass per request, merged by vLLM's Triton merge kernel.

Every prepare_* returns {"plan", "run", "collect", "notes"} like run_peers.PeerRunner's, or
raises Unsupported (the peer's row says 'skipped: ...'): missing files, missing torch/triton,
or a shape the peer does not take.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import json
import lzma
import os
import pathlib
import shutil
import sys
import types

import tree_meta

ROOT = pathlib.Path(__file__).resolve().parents[2]
#: Where fetch_peers.py put the peers (carried to the GPU machine).
PEERS_DIR = pathlib.Path(os.environ.get("PATLAB_PEERS_DIR", ROOT / ".peers"))
#: Where the FA3 extension is unpacked on first use (153 MB).
UNPACK_DIR = pathlib.Path(os.environ.get("PATLAB_PEERS_UNPACK", "/tmp/patlab-peers"))

PEERS = {
    "fasttree": "FastTree (radix-tree attention), Triton kernels of flashserve/PAT benchmark/, PAT's published tuning",
    "deft": "DeFT (tree attention, flattened-tree splits), Triton kernels of flashserve/PAT benchmark/",
    "vllm-fa3": "vLLM 0.26.0 FA3 paged varlen decode (torch.ops._vllm_fa3_C, AOT scheduler metadata)",
    "vllm-cascade": "vLLM 0.26.0 cascade_attention: FA3 prefix pass + suffix pass + vLLM's Triton merge",
}

#: FastTree's tuning in PAT's benchmark_kernel.py (ft_benchmark), by GQA group size.
FASTTREE_Q_TILES = {1: [64, 16], 4: [16, 4], 16: [4, 1]}
FASTTREE_KV_TILES = [32, 32]
FASTTREE_KV_SPLITS = [1024, 128]
FASTTREE_PARA_THRESHS1 = [132, 528]
FASTTREE_PARA_THRESHS2 = [132, 132]
FASTTREE_COSTS = (0.66, 0.33, 0.1)  # alpha, beta, gamma
#: DeFT's tuning in PAT's benchmark_kernel.py (DeFT_benchmark: "the tile config in the official DeFT repo").
DEFT_SUBTREE_LEN, DEFT_MASK_LEN, DEFT_Q_TILE, DEFT_KV_TILE = 128, 64, 32, 16
#: Recursion depth DeFT's _group_subtree may need (one level per node and per 128-token split).
DEFT_RECURSION = 100000


class Unsupported(Exception):
    """A peer that cannot run a workload; the message says why."""


def manifest() -> dict:
    path = PEERS_DIR / "MANIFEST.json"
    return json.loads(path.read_text()) if path.is_file() else {}


def require_triton():
    try:
        import triton  # noqa: F401
    except Exception as e:
        raise Unsupported(f"triton not importable ({type(e).__name__}: {e})")


def load_pat_module(name: str):
    """FastTree.py or DeFT.py from .peers/pat-benchmark, imported under a private name."""
    path = PEERS_DIR / "pat-benchmark" / f"{name}.py"
    if not path.is_file():
        raise Unsupported(f"{path} missing: run tools/peers/fetch_peers.py and carry .peers")
    require_triton()
    key = f"pat_benchmark_{name}"
    if key not in sys.modules:
        spec = importlib.util.spec_from_file_location(key, path)
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
        sys.modules[key] = mod
    return sys.modules[key]


def unpack_fa3() -> pathlib.Path:
    """Unpacks the FA3 extension (checked against the manifest's sha256) and vLLM's wrapper into
    UNPACK_DIR/vllm_flash_attn (a package of its own: the wrapper imports the extension relatively)."""
    src = PEERS_DIR / "vllm-fa3"
    packed = src / "_vllm_fa3_C.abi3.so.xz"
    if not packed.is_file():
        raise Unsupported(f"{packed} missing: run tools/peers/fetch_peers.py and carry .peers")
    pkg = UNPACK_DIR / "vllm_flash_attn"
    so = pkg / "_vllm_fa3_C.abi3.so"
    want = manifest().get("vllm-fa3", {}).get("files", {}).get(packed.name, {}).get("sha256")
    if not so.is_file():
        pkg.mkdir(parents=True, exist_ok=True)
        data = lzma.decompress(packed.read_bytes())
        if want and hashlib.sha256(data).hexdigest() != want:
            raise Unsupported(f"{packed}: sha256 differs from .peers/MANIFEST.json")
        tmp = so.with_suffix(".part")
        tmp.write_bytes(data)
        tmp.replace(so)
    for name in ("flash_attn_interface.py", "triton_merge_attn_states.py"):
        shutil.copyfile(src / name, pkg / name)
    (pkg / "__init__.py").write_text("")
    return pkg


def load_fa3():
    """vLLM's flash_attn_interface with its FA3 extension loaded (torch must be imported first)."""
    pkg = unpack_fa3()
    if str(pkg.parent) not in sys.path:
        sys.path.insert(0, str(pkg.parent))
    fai = importlib.import_module("vllm_flash_attn.flash_attn_interface")
    if not fai.FA3_AVAILABLE:
        raise Unsupported(f"vLLM's FA3 extension does not load ({fai.FA3_UNAVAILABLE_REASON})"[:300])
    return fai


def load_vllm_merge():
    """merge_attn_states from vLLM's triton_merge_attn_states.py. Its two vLLM imports
    (current_platform.fp8_dtype, triton_utils' tl/triton) are given as stand-ins while it loads;
    vLLM's CUDA merge kernel lives in its 300 MB _C extension, which is not carried."""
    key = "vllm_flash_attn.triton_merge_attn_states"
    if key in sys.modules:
        return sys.modules[key].merge_attn_states
    require_triton()
    import torch
    import triton
    import triton.language as tl
    stubs = {"vllm": types.ModuleType("vllm"), "vllm.platforms": types.ModuleType("vllm.platforms"),
             "vllm.triton_utils": types.ModuleType("vllm.triton_utils")}
    stubs["vllm.platforms"].current_platform = types.SimpleNamespace(fp8_dtype=lambda: torch.float8_e4m3fn)
    stubs["vllm.triton_utils"].tl, stubs["vllm.triton_utils"].triton = tl, triton
    saved = {k: sys.modules.get(k) for k in stubs}
    sys.modules.update(stubs)
    try:
        spec = importlib.util.spec_from_file_location(key, unpack_fa3() / "triton_merge_attn_states.py")
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
    finally:
        for k, v in saved.items():
            if v is None:
                sys.modules.pop(k, None)
            else:
                sys.modules[k] = v
    sys.modules[key] = mod
    return mod.merge_attn_states


def _shape(ex):
    s = ex.shape
    return s["num_q_heads"], s["num_kv_heads"], s["head_dim"]


def _tree(ex, data):
    try:
        return tree_meta.kv_tree(data["tables"], data["lengths"], ex.page_size)
    except ValueError as e:
        raise Unsupported(f"no radix tree for this batch: {e}")


def _int32(runner, array):
    import numpy as np
    return runner.torch.from_numpy(np.ascontiguousarray(array, dtype=np.int32)).to(runner.dev)


def prepare_fasttree(runner, ex, data) -> dict:
    hq, hkv, d = _shape(ex)
    group = hq // hkv
    if ex.dtype != "fp16":
        raise Unsupported("FastTree's kernels store fp16 only")
    if group not in FASTTREE_Q_TILES:
        raise Unsupported(f"PAT's FastTree tuning covers GQA groups {sorted(FASTTREE_Q_TILES)}, not {group}")
    ft = load_pat_module("FastTree")
    torch = runner.torch
    tree = _tree(ex, data)
    params = ft.FastTreeParams()
    params.set_values(*FASTTREE_COSTS)
    params.set_q_tile_sizes(list(FASTTREE_Q_TILES[group]))
    params.set_kv_tile_sizes(list(FASTTREE_KV_TILES))
    params.set_kv_group_num(group)
    state = {}

    def plan():
        aux, _ = ft.fasttree_preparation(tree.node_objects(ft.KVTreeNode), tree.kv_ptrs, ex.requests, hq, hkv, d,
                                         FASTTREE_KV_SPLITS, FASTTREE_PARA_THRESHS1, FASTTREE_PARA_THRESHS2, params,
                                         runner.dev)
        aux = list(aux)
        aux[0] = _int32(runner, tree_meta.remap(aux[0].cpu().numpy(), tree.virtual_to_slot))
        state["aux"] = aux

    kbuf = data["k"].view(-1, hkv, d)
    vbuf = data["v"].view(-1, hkv, d)
    out = torch.full_like(data["q"], float("nan"))
    scale = float(ex.meta["softmax_scale"])

    def run():
        # The tile sizes fasttree_preparation settled on (it may change them in params).
        ft.fasttree_decode(data["q"], kbuf, vbuf, out, *state["aux"], params.TSQs, params.TSKs, scale)
        return out

    notes = (f"{len(tree.seqlens)} radix nodes{' (root of 0 tokens: no token shared by all)' if tree.virtual_root else ''}; "
             f"tiles Q {FASTTREE_Q_TILES[group]}, KV {FASTTREE_KV_TILES}, splits {FASTTREE_KV_SPLITS}")
    return {"plan": plan, "run": run, "collect": runner._collect, "notes": notes}


def prepare_deft(runner, ex, data) -> dict:
    hq, hkv, d = _shape(ex)
    group = hq // hkv
    if ex.dtype != "fp16":
        raise Unsupported("DeFT's kernels store fp16 only")
    if group & (group - 1):
        raise Unsupported(f"DeFT's kernel needs a power-of-two GQA group, not {group}")
    deft = load_pat_module("DeFT")
    torch = runner.torch
    tree = _tree(ex, data)
    sys.setrecursionlimit(max(sys.getrecursionlimit(), DEFT_RECURSION))
    dense_shape = types.SimpleNamespace(shape=(ex.requests, tree.max_len))  # DeFT_preparation reads only the shape
    state = {}

    def plan():
        deft.cur_length = 0  # DeFT.py keeps the subtree grouping's running length in a module global
        aux = list(deft.DeFT_preparation(tree.node_objects(deft.KVTreeNode), dense_shape, DEFT_SUBTREE_LEN,
                                         DEFT_MASK_LEN, hq, d))
        aux[0] = _int32(runner, tree_meta.remap(aux[0].cpu().numpy(), tree.dense_to_slot))
        state["aux"] = aux

    kbuf = data["k"].view(-1, hkv, d)
    vbuf = data["v"].view(-1, hkv, d)
    out = torch.full_like(data["q"], float("nan"))
    scale = float(ex.meta["softmax_scale"])

    def run():
        deft.DeFT_decode(data["q"], kbuf, vbuf, out, *state["aux"], DEFT_Q_TILE, DEFT_KV_TILE, scale, DEFT_MASK_LEN)
        return out

    notes = (f"{len(tree.seqlens)} radix nodes{' (root of 0 tokens)' if tree.virtual_root else ''}; subtree "
             f"{DEFT_SUBTREE_LEN} tokens, mask {DEFT_MASK_LEN}, tiles Q {DEFT_Q_TILE} KV {DEFT_KV_TILE}")
    return {"plan": plan, "run": run, "collect": runner._collect, "notes": notes}


def _lse_note(ex, lse) -> str:
    """Largest |LSE - oracle LSE| (FA3's lse is [Hq, R], natural log)."""
    import numpy as np
    got = lse.float().cpu().numpy().T
    return f"max |lse err| {float(np.max(np.abs(got - ex.oracle_lse))):.2e}"


def prepare_vllm_fa3(runner, ex, data) -> dict:
    fai = load_fa3()
    torch = runner.torch
    hq, hkv, d = _shape(ex)
    pd = tree_meta.paged_decode(data["tables"], data["lengths"])
    cu_q, seqused, bt = _int32(runner, pd.cu_seqlens_q), _int32(runner, pd.seqused_k), _int32(runner, pd.block_table)
    out = torch.full_like(data["q"], float("nan"))
    scale = float(ex.meta["softmax_scale"])
    state = {}

    def plan():
        state["sched"] = fai.get_scheduler_metadata(
            batch_size=ex.requests, max_seqlen_q=1, max_seqlen_k=pd.max_seqlen_k, num_heads_q=hq, num_heads_kv=hkv,
            headdim=d, cache_seqlens=seqused, qkv_dtype=data["tdt"], cu_seqlens_q=cu_q, page_size=ex.page_size,
            causal=True)

    def run():
        return fai.flash_attn_varlen_func(data["q"], data["k"], data["v"], max_seqlen_q=1, cu_seqlens_q=cu_q,
                                          max_seqlen_k=pd.max_seqlen_k, seqused_k=seqused, softmax_scale=scale,
                                          causal=True, block_table=bt, return_softmax_lse=True, out=out,
                                          scheduler_metadata=state["sched"], fa_version=3)

    def collect(res):
        state["lse_note"] = _lse_note(ex, res[1])
        return res[0].float().cpu().numpy()

    return {"plan": plan, "run": run, "collect": collect, "state": state,
            "notes": f"block table [{ex.requests}, {pd.block_table.shape[1]}], page {ex.page_size}, "
                     "num_splits 0 and pack_gqa None (FA3's heuristics, as vLLM)"}


def prepare_vllm_cascade(runner, ex, data) -> dict:
    fai = load_fa3()
    merge = load_vllm_merge()
    torch = runner.torch
    hq, hkv, d = _shape(ex)
    try:
        cs = tree_meta.cascade_split(data["tables"], data["lengths"], ex.page_size)
    except ValueError as e:
        raise Unsupported(str(e))
    R = ex.requests
    pd = tree_meta.paged_decode(data["tables"], data["lengths"])
    bt = _int32(runner, pd.block_table)
    cu_q, seq_lens = _int32(runner, pd.cu_seqlens_q), _int32(runner, pd.seqused_k)
    cu_prefix = _int32(runner, [0, R])
    prefix_lens = _int32(runner, [cs.common_prefix_len])
    suffix_lens = seq_lens - cs.common_prefix_len  # as vLLM: seq_lens - common_prefix_len on the GPU
    max_suffix = pd.max_seqlen_k - cs.common_prefix_len
    out = torch.full_like(data["q"], float("nan"))
    scale = float(ex.meta["softmax_scale"])
    state = {}

    def plan():
        state["prefix"] = fai.get_scheduler_metadata(
            batch_size=1, max_seqlen_q=R, max_seqlen_k=cs.common_prefix_len, num_heads_q=hq, num_heads_kv=hkv,
            headdim=d, cache_seqlens=prefix_lens, qkv_dtype=data["tdt"], cu_seqlens_q=cu_prefix,
            page_size=ex.page_size, causal=False)
        state["suffix"] = fai.get_scheduler_metadata(
            batch_size=R, max_seqlen_q=1, max_seqlen_k=max_suffix, num_heads_q=hq, num_heads_kv=hkv, headdim=d,
            cache_seqlens=suffix_lens, qkv_dtype=data["tdt"], cu_seqlens_q=cu_q, page_size=ex.page_size, causal=True)

    def run():
        p_out, p_lse = fai.flash_attn_varlen_func(
            q=data["q"], k=data["k"], v=data["v"], cu_seqlens_q=cu_prefix, seqused_k=prefix_lens, max_seqlen_q=R,
            max_seqlen_k=cs.common_prefix_len, softmax_scale=scale, causal=False, block_table=bt[:1],
            return_softmax_lse=True, scheduler_metadata=state["prefix"], fa_version=3)
        s_out, s_lse = fai.flash_attn_varlen_func(
            q=data["q"], k=data["k"], v=data["v"], cu_seqlens_q=cu_q, seqused_k=suffix_lens, max_seqlen_q=1,
            max_seqlen_k=max_suffix, softmax_scale=scale, causal=True, block_table=bt[:, cs.common_blocks:],
            return_softmax_lse=True, scheduler_metadata=state["suffix"], fa_version=3)
        merge(out, p_out, p_lse, s_out, s_lse)
        return out

    notes = (f"common prefix {cs.common_blocks} blocks ({cs.common_prefix_len} tokens) in one pass of all {R} queries; "
             f"suffix pass per request; merge: vLLM's Triton merge_attn_states")
    return {"plan": plan, "run": run, "collect": runner._collect, "notes": notes}


PREPARE = {"fasttree": prepare_fasttree, "deft": prepare_deft, "vllm-fa3": prepare_vllm_fa3,
           "vllm-cascade": prepare_vllm_cascade}


def prepare(runner, peer: str, ex, data) -> dict:
    """The adapter of `peer`; Unsupported when its files or modules are missing."""
    try:
        return PREPARE[peer](runner, ex, data)
    except ImportError as e:
        raise Unsupported(f"{peer}: {type(e).__name__}: {e}"[:300])
