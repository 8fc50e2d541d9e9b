#!/usr/bin/env python3
"""Run the peers (what a user would pick instead of patlab) on `patlab export` folders.

For each export: FlashInfer BatchDecodeWithPagedKVCacheWrapper (CUDA cores and tensor cores) on
the same paged pools and block tables; FlashInfer MultiLevelCascadeAttentionWrapper with levels
taken from the token tree (levels.py; FlashInfer's automatic prefill backend, FA3 on an H100,
and FA2); torch scaled_dot_product_attention with the cuDNN and the flash backends on dense
per-request K/V. Every peer's output is checked against the exported oracle first, with
patlab's rule (export_io.check); only a peer that passes is timed.

Timing protocol (docs/peers.md, the same as `patlab bench`): warm-up runs, then >= 20 runs timed
with CUDA events, L2 flushed before each (a write of 2x the L2 size; --warm-l2 skips it);
median, min and max of the kernel time. plan() is timed separately (wall clock, median of 5).
The device-to-device copy bandwidth (1 GiB, read + write counted, median of 20) is measured in
the same process; effective bandwidth is the export's unique bytes (unique KV blocks + q +
output, patlab's definition) over the time. FlashInfer's JIT (or the loading of prebuilt
modules, see fi_env.py) happens in a warm-up before anything is timed and is reported apart.

    PYTHONPATH=/tmp/site python3 tools/peers/run_peers.py exports/* --out peers.json
"""

from __future__ import annotations

import argparse
import datetime
import gc
import json
import math
import os
import pathlib
import platform
import statistics
import subprocess
import sys
import time
import traceback

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import export_io  # noqa: E402
import fi_env  # noqa: E402
import levels  # noqa: E402
import tree_peers  # noqa: E402

#: Peers in the order they run and are reported: name -> one-line description.
PEERS = {
    "fi-decode": "FlashInfer BatchDecodeWithPagedKVCacheWrapper, CUDA cores (use_tensor_cores=False)",
    "fi-decode-tc": "FlashInfer BatchDecodeWithPagedKVCacheWrapper, tensor cores (use_tensor_cores=True)",
    "fi-cascade": "FlashInfer MultiLevelCascadeAttentionWrapper, levels from the tree, prefill backend 'auto' (FA3 on sm90)",
    "fi-cascade-fa2": "FlashInfer MultiLevelCascadeAttentionWrapper, levels from the tree, prefill backend forced to FA2",
    "sdpa-cudnn": "torch scaled_dot_product_attention, cuDNN backend, dense per-request K/V",
    "sdpa-flash": "torch scaled_dot_product_attention, flash backend, dense per-request K/V",
    **tree_peers.PEERS,
}
MIN_REPEATS = 20
COPY_BYTES = 1 << 30
WORKSPACE_BYTES = 512 << 20
PLAN_REPEATS = 5


Unsupported = tree_peers.Unsupported
def peers_versions() -> str:
    """The fetched peers' versions from .peers/MANIFEST.json, in one line (or why there are none)."""
    m = tree_peers.manifest()
    if not m:
        return "none (.peers/MANIFEST.json not found: run tools/peers/fetch_peers.py)"
    parts = []
    pat, fa3 = m.get("pat-benchmark"), m.get("vllm-fa3")
    if pat:
        parts.append(f"FastTree and DeFT from {pat.get('repository')} at {pat.get('commit')}")
    if fa3:
        parts.append(f"vLLM FA3 from {fa3.get('package')} ({fa3.get('wheel')}, sha256 {fa3.get('wheel_sha256')})")
    return "; ".join(parts)


# The GQA groups FlashInfer 0.6.6's CUDA-core decode kernel dispatches on (DISPATCH_GQA_GROUP_SIZE in
# include/flashinfer/utils.cuh of the wheel); any other group raises "Unsupported group_size".
FI_DECODE_GROUPS = (1, 2, 3, 4, 8)


def utc_now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


def git_commit() -> str:
    """PATLAB_COMMIT when set (a copy of the tree whose .git may be stale), else git's."""
    if os.environ.get("PATLAB_COMMIT"):
        return os.environ["PATLAB_COMMIT"]
    try:
        r = subprocess.run(["git", "-C", str(HERE), "describe", "--always", "--dirty", "--abbrev=12"],
                           capture_output=True, text=True, timeout=20)
        return r.stdout.strip() or os.environ.get("PATLAB_COMMIT", "unknown")
    except (OSError, subprocess.SubprocessError):
        return os.environ.get("PATLAB_COMMIT", "unknown")


def first_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return f"{type(e).__name__}: {text[0] if text else ''}"[:300]


class PeerRunner:
    """Holds the GPU state shared by all workloads of a run: device info, the L2 flush buffer,
    the copy bandwidth, FlashInfer's workspace, and the record of JIT warm-ups."""

    #: torch.nn.attention.SDPBackend member of each SDPA peer.
    SDPA_BACKENDS = {"cudnn": "CUDNN_ATTENTION", "flash": "FLASH_ATTENTION"}

    def __init__(self, warmup: int = 5, repeats: int = 30, warm_l2: bool = False, peers=None,
                 cache: pathlib.Path = fi_env.DEFAULT_CACHE, use_prebuilt: bool = True, log=print, graph: bool = False):
        if repeats < MIN_REPEATS:
            raise ValueError(f"--repeats must be at least {MIN_REPEATS}")
        if warmup < 0:
            raise ValueError("--warmup must be >= 0")
        self.warmup, self.repeats, self.warm_l2, self.graph = warmup, repeats, warm_l2, graph
        self.peers = list(peers or PEERS)
        for p in self.peers:
            if p not in PEERS:
                raise ValueError(f"unknown peer '{p}' (known: {', '.join(PEERS)})")
        self.log = log
        self.fi_settings = fi_env.configure(cache)
        self.prebuilt_note = (fi_env.install_prebuilt(fi_env.prebuilt_dir(cache)) if use_prebuilt
                              else "prebuilt modules not used (--no-prebuilt)")
        import torch  # after fi_env: FlashInfer reads its settings at import
        self.torch = torch
        if not torch.cuda.is_available():
            raise RuntimeError("torch sees no CUDA device")
        self.dev = torch.device("cuda")
        try:
            import flashinfer
            self.flashinfer = flashinfer
            self.flashinfer_error = None
        except Exception as e:  # the FlashInfer peers then say why they could not run
            self.flashinfer = None
            self.flashinfer_error = f"flashinfer not importable ({first_line(e)}); see tools/peers/README.md"
        props = torch.cuda.get_device_properties(self.dev)
        self.l2_bytes = int(getattr(props, "L2_cache_size", 0)) or (50 << 20)
        self.flush_buf = torch.empty(2 * self.l2_bytes, dtype=torch.uint8, device=self.dev)
        self.workspace = torch.zeros(WORKSPACE_BYTES, dtype=torch.uint8, device=self.dev)
        self.context_lost = None
        self.jit = []          # warm-up records
        self.warmed = set()
        self.copy_gbs = self.copy_bandwidth()
        self.run_info = self.describe_run(props)

    # ------------------------------------------------------------------ run information
    def describe_run(self, props) -> dict:
        torch = self.torch
        smi = {}
        try:
            r = subprocess.run(["nvidia-smi", "--query-gpu=name,driver_version,clocks.sm,clocks.mem,clocks.max.sm,"
                                "clocks.max.mem,power.limit", "--format=csv,noheader"],
                               capture_output=True, text=True, timeout=30)
            vals = [v.strip() for v in r.stdout.strip().splitlines()[0].split(",")]
            smi = dict(zip(["name", "driver", "sm_clock", "mem_clock", "max_sm_clock", "max_mem_clock", "power_limit"], vals))
        except (OSError, subprocess.SubprocessError, IndexError):
            pass
        return {
            "device": f"{props.name} ({props.multi_processor_count} SMs, {self.l2_bytes >> 20} MiB L2, "
                      f"{props.total_memory / 2**30:.0f} GiB)",
            "driver": smi.get("driver", "unknown"),
            "clocks seen (SM / memory, MHz)": f"{smi.get('sm_clock', '?')} / {smi.get('mem_clock', '?')} "
                                              f"(max {smi.get('max_sm_clock', '?')} / {smi.get('max_mem_clock', '?')})",
            "torch": torch.__version__,
            "CUDA (torch)": torch.version.cuda,
            "cuDNN": str(torch.backends.cudnn.version()),
            "flashinfer": getattr(self.flashinfer, "__version__", self.flashinfer_error),
            "FlashInfer modules": self.prebuilt_note,
            "FlashInfer JIT settings": self.fi_settings,
            "python": platform.python_version(),
            "copy GB/s": round(self.copy_gbs, 1),
            "L2": "warm (not flushed)" if self.warm_l2 else f"flushed before every timed run ({2 * self.l2_bytes >> 20} MiB write)",
            "timing": f"{self.warmup} warm-up runs, median of {self.repeats} CUDA-event timings (kernel time; plan time "
                      f"separate, wall clock median of {PLAN_REPEATS})",
            "check": "every peer against the exported float64 oracle first (patlab's check rule)",
            "CUDA graphs": ("each passing peer's run() also captured once and replayed (graph_us; the replay's "
                            "output checked too)") if self.graph else "not used (--graph not given)",
            "peers of .peers/": peers_versions(),
            "commit": git_commit(),
            "date": utc_now(),
            "host": platform.node(),
        }

    def copy_bandwidth(self) -> float:
        """Device-to-device copy of 1 GiB, read + write counted, median of 20 (GB/s)."""
        torch = self.torch
        src = torch.empty(COPY_BYTES, dtype=torch.uint8, device=self.dev)
        src.fill_(1)
        dst = torch.empty_like(src)
        for _ in range(3):
            dst.copy_(src)
        times = []
        for _ in range(20):
            s, e = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            s.record()
            dst.copy_(src)
            e.record()
            e.synchronize()
            times.append(s.elapsed_time(e) * 1e-3)
        del src, dst
        torch.cuda.empty_cache()
        return 2 * COPY_BYTES / statistics.median(times) / 1e9

    # ------------------------------------------------------------------ timing
    def time_op(self, fn) -> dict:
        torch = self.torch
        for _ in range(self.warmup):
            fn()
        torch.cuda.synchronize()
        starts = [torch.cuda.Event(enable_timing=True) for _ in range(self.repeats)]
        ends = [torch.cuda.Event(enable_timing=True) for _ in range(self.repeats)]
        for i in range(self.repeats):
            if not self.warm_l2:
                self.flush_buf.fill_(i & 0xFF)
            starts[i].record()
            fn()
            ends[i].record()
        torch.cuda.synchronize()
        us = [s.elapsed_time(e) * 1e3 for s, e in zip(starts, ends)]
        return {"time_us": statistics.median(us), "min_us": min(us), "max_us": max(us)}

    def time_graph(self, ex: export_io.Export, prep: dict) -> dict:
        """Captures prep's run() in a CUDA graph (its buffers, planned once, stay fixed), checks
        one replay's output against the oracle, then times replays with time_op's protocol.
        Returns graph_us etc., or {"graph": why} when the capture or the check fails."""
        torch = self.torch
        try:
            side = torch.cuda.Stream()
            side.wait_stream(torch.cuda.current_stream())
            with torch.cuda.stream(side):  # warm-up off the default stream, as torch's capture guide asks
                for _ in range(3):
                    prep["run"]()
            torch.cuda.current_stream().wait_stream(side)
            graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(graph):
                static_out = prep["run"]()
            graph.replay()
            torch.cuda.synchronize()
            res = export_io.check(ex, prep["collect"](static_out))
            if not res.passed:
                return {"graph": "FAIL " + res.summary()}
            t = self.time_op(graph.replay)
            return {"graph_us": round(t["time_us"], 2), "graph_min_us": round(t["min_us"], 2), "graph": "PASS"}
        except Exception as e:
            self.note_context(e)
            return {"graph": f"not captured: {first_line(e)[:200]}"}

    def time_plan(self, plan) -> float:
        torch = self.torch
        ms = []
        for _ in range(PLAN_REPEATS):
            torch.cuda.synchronize()
            t0 = time.perf_counter()
            plan()
            torch.cuda.synchronize()
            ms.append((time.perf_counter() - t0) * 1e3)
        return statistics.median(ms)

    # ------------------------------------------------------------------ JIT warm-up
    def warm(self, dtype: str, head_dim: int) -> None:
        """Loads (or JIT-compiles) every FlashInfer module the peers need for this dtype and head
        dim on a small synthetic batch, before anything is timed; records how long it took."""
        key = (dtype, head_dim)
        if key in self.warmed or self.flashinfer is None:
            return
        self.warmed.add(key)
        torch = self.torch
        tdt = torch.float16 if dtype == "fp16" else torch.bfloat16
        page, hkv, hq = 16, 1, 4
        k = torch.randn(8, page, hkv, head_dim, dtype=tdt, device=self.dev)
        v = torch.randn_like(k)
        q = torch.randn(2, hq, head_dim, dtype=tdt, device=self.dev)
        for peer in self.peers:
            if not peer.startswith("fi-"):
                continue
            t0 = time.perf_counter()
            try:
                if peer.startswith("fi-decode"):
                    w = self.flashinfer.BatchDecodeWithPagedKVCacheWrapper(self.workspace, "NHD",
                                                                          use_tensor_cores=peer == "fi-decode-tc")
                    w.plan(torch.tensor([0, 3, 6], dtype=torch.int32), torch.arange(6, dtype=torch.int32, device=self.dev),
                           torch.tensor([5, 16], dtype=torch.int32), hq, hkv, head_dim, page, q_data_type=tdt, kv_data_type=tdt)
                    w.run(q, (k, v))
                else:
                    w = self.flashinfer.MultiLevelCascadeAttentionWrapper(2, self.workspace, "NHD")
                    if peer == "fi-cascade-fa2":
                        for inner in w._batch_prefill_wrappers:
                            inner._backend = "fa2"
                    w.plan([torch.tensor([0, 2], dtype=torch.int32), torch.tensor([0, 1, 2], dtype=torch.int32)],
                           [torch.tensor([0, 2], dtype=torch.int32), torch.tensor([0, 1, 2], dtype=torch.int32)],
                           [torch.tensor([0, 1], dtype=torch.int32, device=self.dev),
                            torch.tensor([2, 3], dtype=torch.int32, device=self.dev)],
                           [torch.tensor([16], dtype=torch.int32), torch.tensor([7, 9], dtype=torch.int32)],
                           hq, hkv, head_dim, page, q_data_type=tdt, kv_data_type=tdt)
                    w.run(q, (k, v))
                torch.cuda.synchronize()
                status = "ok"
            except Exception as e:
                status = "failed: " + first_line(e)
                self.note_context(e)
            rec = {"peer": peer, "dtype": dtype, "head_dim": head_dim, "seconds": round(time.perf_counter() - t0, 2),
                   "status": status}
            self.jit.append(rec)
            self.log(f"  warm-up {peer} {dtype} d={head_dim}: {rec['seconds']:.1f} s ({status})")

    # ------------------------------------------------------------------ one export
    def run_export(self, ex: export_io.Export, key: str | None = None, on_row=None) -> list[dict]:
        """Runs every peer on one export; returns one row per peer (never raises for a peer).
        `on_row(row)` is called as each peer's row is done."""
        torch = self.torch
        s = ex.shape
        rows = []
        base = {"workload": ex.description, "shape": s.get("describe", ""), "key": key or ex.description,
                "export": str(ex.path), "unique_bytes": ex.unique_bytes}
        if self.context_lost:
            return [dict(base, peer=p, status="skipped", check=f"skipped: {self.context_lost}", notes="")
                    for p in self.peers]
        self.warm(ex.dtype, int(s["head_dim"]))
        try:
            data = self.upload(ex)
        except Exception as e:
            why = ("out of GPU memory for the paged pools" if isinstance(e, torch.cuda.OutOfMemoryError)
                   else first_line(e))
            self.note_context(e)
            return [dict(base, peer=p, status="skipped", check=f"skipped: {why}", notes="") for p in self.peers]
        for peer in self.peers:
            row = dict(base, peer=peer, status="", check="", notes="")
            prep = None
            try:
                if self.context_lost:
                    raise Unsupported(self.context_lost)
                prep = self.prepare(peer, ex, data)
                row["notes"] = prep.get("notes", "")
                t0 = time.perf_counter()
                prep["plan"]()
                torch.cuda.synchronize()
                row["first_plan_ms"] = round((time.perf_counter() - t0) * 1e3, 3)
                out = prep["run"]()
                torch.cuda.synchronize()
                got = prep["collect"](out)
                res = export_io.check(ex, got)
                row["check"] = res.summary()
                if not res.passed:
                    row["status"] = "FAIL"  # not timed
                else:
                    row["plan_ms"] = round(self.time_plan(prep["plan"]), 3)
                    t = self.time_op(prep["run"])
                    row.update({k: round(v, 2) for k, v in t.items()})
                    gbs = ex.unique_bytes / (t["time_us"] * 1e-6) / 1e9
                    row["eff_GBs"] = round(gbs, 1)
                    row["pct_copy"] = round(100.0 * gbs / self.copy_gbs, 1)
                    row["copy_GBs"] = round(self.copy_gbs, 1)
                    row["status"] = "PASS"
                    if prep.get("state", {}).get("lse_note"):
                        row["notes"] += "; " + prep["state"]["lse_note"]
                    if self.graph:
                        row.update(self.time_graph(ex, prep))
            except Unsupported as e:
                row["status"] = "skipped"
                row["check"] = f"skipped: {e}"
            except torch.cuda.OutOfMemoryError as e:
                row["status"] = "skipped"
                row["check"] = f"skipped: out of GPU memory ({first_line(e)[:120]})"
            except Exception as e:
                row["status"] = "error"
                row["check"] = f"error: {first_line(e)}"
                self.log(traceback.format_exc(limit=6))
                self.note_context(e)
            finally:
                prep = None
                gc.collect()
                if not self.context_lost:
                    torch.cuda.empty_cache()
            rows.append(row)
            if on_row is not None:
                on_row(row)
        del data
        gc.collect()
        if not self.context_lost:
            torch.cuda.empty_cache()
        return rows

    def release(self) -> None:
        """Returns cached GPU memory to the driver (before another process, e.g. patlab, runs)."""
        gc.collect()
        if not self.context_lost:
            self.torch.cuda.synchronize()
            self.torch.cuda.empty_cache()

    def note_context(self, e: BaseException) -> None:
        """After an error, checks that the CUDA context still works; if not, later peers are skipped."""
        try:
            self.torch.cuda.synchronize()
        except Exception as e2:
            self.context_lost = f"CUDA context lost after an earlier error ({first_line(e2)[:150]})"

    def upload(self, ex: export_io.Export) -> dict:
        """The export's q and pools on the GPU, as 16-bit tensors of its dtype."""
        torch = self.torch
        import numpy as np
        tdt = torch.float16 if ex.dtype == "fp16" else torch.bfloat16
        if ex.kv_dtype != ex.dtype:
            raise export_io.ExportError(f"{ex.path}: KV cache {ex.kv_dtype}: the peers run 16-bit KV caches only")

        def to_dev(bits):
            return torch.from_numpy(np.asarray(bits).view(np.int16)).to(self.dev).view(tdt)

        return {"tdt": tdt, "q": to_dev(ex.q_bits), "k": to_dev(ex.k_bits), "v": to_dev(ex.v_bits),
                "tables": ex.tables(), "lengths": [int(x) for x in ex.lengths]}

    # ------------------------------------------------------------------ the peers
    def prepare(self, peer: str, ex, data) -> dict:
        """Returns {"plan": fn, "run": fn -> output, "collect": output -> numpy [R,Hq,d], "notes": str}."""
        if peer in tree_peers.PEERS:
            return tree_peers.prepare(self, peer, ex, data)
        if peer.startswith("fi-") and self.flashinfer is None:
            raise Unsupported(self.flashinfer_error)
        if peer.startswith("fi-decode"):
            return self.prepare_decode(ex, data, use_tc=peer == "fi-decode-tc")
        if peer.startswith("fi-cascade"):
            return self.prepare_cascade(ex, data, fa2=peer == "fi-cascade-fa2")
        return self.prepare_sdpa(ex, data, backend=peer.split("-")[1])

    def _collect(self, out):
        return out.float().cpu().numpy()

    def prepare_decode(self, ex, data, use_tc: bool) -> dict:
        torch = self.torch
        s = ex.shape
        group = s["num_q_heads"] // s["num_kv_heads"]
        if not use_tc and group not in FI_DECODE_GROUPS:
            raise Unsupported(f"FlashInfer's CUDA-core decode is compiled for GQA groups "
                              f"{', '.join(map(str, FI_DECODE_GROUPS))} only, not {group}")
        tables, lengths, page = data["tables"], data["lengths"], ex.page_size
        indptr = [0]
        for t in tables:
            indptr.append(indptr[-1] + len(t))
        indptr_h = torch.tensor(indptr, dtype=torch.int32)  # host: plan() reads it there
        indices = torch.tensor([b for t in tables for b in t], dtype=torch.int32, device=self.dev)
        last = torch.tensor([n - (len(t) - 1) * page for n, t in zip(lengths, tables)], dtype=torch.int32)
        w = self.flashinfer.BatchDecodeWithPagedKVCacheWrapper(self.workspace, "NHD", use_tensor_cores=use_tc)
        kv = (data["k"], data["v"])
        out = torch.full_like(data["q"], float("nan"))  # poisoned: an unwritten element fails the check

        def plan():
            w.plan(indptr_h, indices, last, s["num_q_heads"], s["num_kv_heads"], s["head_dim"], page,
                   q_data_type=data["tdt"], kv_data_type=data["tdt"])

        def run():
            return w.run(data["q"], kv, out=out)

        return {"plan": plan, "run": run, "collect": self._collect,
                "notes": f"{len(indices)} block references, paged K/V tuple, NHD"}

    def prepare_cascade(self, ex, data, fa2: bool) -> dict:
        torch = self.torch
        s = ex.shape
        parents, tokens, names = ex.segments()
        try:
            c = levels.build_cascade(ex.paths(), parents, tokens, names, data["lengths"], data["tables"], ex.page_size)
            levels.check_cascade(c, data["lengths"], data["tables"])
        except ValueError as e:
            raise Unsupported(f"no cascade levels for this tree: {e}")
        order = torch.tensor(c.order, dtype=torch.long, device=self.dev)
        q_perm = data["q"].index_select(0, order).contiguous()  # groups need consecutive queries
        w = self.flashinfer.MultiLevelCascadeAttentionWrapper(len(c.levels), self.workspace, "NHD")
        if fa2:
            # MultiLevelCascadeAttentionWrapper takes no backend argument: set the private attribute
            # of its per-level prefill wrappers before plan() (FlashInfer 0.6.6).
            for inner in w._batch_prefill_wrappers:
                inner._backend = "fa2"
        qo = [torch.tensor(lv.qo_indptr, dtype=torch.int32) for lv in c.levels]
        kv_indptr = [torch.tensor(lv.kv_indptr, dtype=torch.int32) for lv in c.levels]
        kv_indices = [torch.tensor(lv.kv_indices or [0], dtype=torch.int32, device=self.dev)[:len(lv.kv_indices)]
                      for lv in c.levels]
        last = [torch.tensor(lv.last_page_len, dtype=torch.int32) for lv in c.levels]
        kv = (data["k"], data["v"])

        def plan():
            w.plan(qo, kv_indptr, kv_indices, last, s["num_q_heads"], s["num_kv_heads"], s["head_dim"], ex.page_size,
                   causal=False, q_data_type=data["tdt"], kv_data_type=data["tdt"])

        def run():
            return w.run(q_perm, kv)

        def collect(out):
            restored = torch.empty_like(out)
            restored[order] = out  # row i of the permuted batch is request order[i]
            return restored.float().cpu().numpy()

        empty = sum(lv.empty_groups for lv in c.levels)
        notes = c.describe() + f"; {c.pages_read()} pages read"
        if empty:
            notes += f"; {empty} empty groups planned with 0 pages (attention over no keys, merge identity)"
        if c.order != sorted(c.order):
            notes += "; queries permuted to tree order (outside the timed region)"
        return {"plan": plan, "run": run, "collect": collect, "notes": notes}

    def prepare_sdpa(self, ex, data, backend: str) -> dict:
        torch = self.torch
        import torch.nn.functional as F
        from torch.nn.attention import SDPBackend, sdpa_kernel
        s = ex.shape
        hq, hkv, d, page = s["num_q_heads"], s["num_kv_heads"], s["head_dim"], ex.page_size
        be = getattr(SDPBackend, self.SDPA_BACKENDS[backend])
        dense_bytes = int(ex.meta["bytes"]["total_kv"])
        free, _ = torch.cuda.mem_get_info()
        if dense_bytes * 1.05 + (256 << 20) > free:
            raise Unsupported(f"dense per-request K/V needs {dense_bytes / 1e9:.1f} GB, {free / 1e9:.1f} GB free on the GPU")
        # One batched call per distinct request length (SDPA wants one KV length per batch).
        by_len = {}
        for r, n in enumerate(data["lengths"]):
            by_len.setdefault(n, []).append(r)
        batches = []
        for n, reqs in sorted(by_len.items()):
            nb = (n + page - 1) // page
            idx = torch.tensor([data["tables"][r][:nb] for r in reqs], dtype=torch.long, device=self.dev)
            k = data["k"][idx].reshape(len(reqs), nb * page, hkv, d)[:, :n].contiguous().transpose(1, 2)
            v = data["v"][idx].reshape(len(reqs), nb * page, hkv, d)[:, :n].contiguous().transpose(1, 2)
            q = data["q"][torch.tensor(reqs, device=self.dev)].unsqueeze(2)  # [B, Hq, 1, d]
            batches.append((reqs, q, k, v))
        gqa = {"mode": "enable_gqa"}

        def call(q, k, v):
            if gqa["mode"] == "enable_gqa":
                return F.scaled_dot_product_attention(q, k, v, enable_gqa=hq != hkv)
            return F.scaled_dot_product_attention(q, k.repeat_interleave(hq // hkv, dim=1),
                                                  v.repeat_interleave(hq // hkv, dim=1))

        def run():
            with sdpa_kernel([be]):
                return [call(q, k, v) for _, q, k, v in batches]

        def plan():
            pass

        # Find out once whether this backend takes GQA as is; otherwise repeat the KV heads.
        try:
            run()
            torch.cuda.synchronize()
        except RuntimeError as e:
            if hq == hkv:
                raise Unsupported(f"the {backend} backend cannot run this shape ({first_line(e)[:160]})")
            gqa["mode"] = "repeat"
            try:
                run()
                torch.cuda.synchronize()
            except RuntimeError as e2:
                raise Unsupported(f"the {backend} backend cannot run this shape, with enable_gqa or with repeated "
                                  f"KV heads ({first_line(e2)[:160]})")

        R = ex.requests

        def collect(outs):
            full = torch.empty(R, hq, d, dtype=data["tdt"], device=self.dev)
            for (reqs, _, _, _), o in zip(batches, outs):
                full[torch.tensor(reqs, device=self.dev)] = o.squeeze(2)
            return full.float().cpu().numpy()

        notes = f"{len(batches)} SDPA call(s) (one per request length); dense K/V {dense_bytes / 1e6:.1f} MB"
        if hq != hkv:
            notes += "; GQA via enable_gqa=True" if gqa["mode"] == "enable_gqa" else \
                "; GQA via repeated KV heads inside the timed call (enable_gqa refused)"
        return {"plan": plan, "run": run, "collect": collect, "notes": notes}


# ---------------------------------------------------------------------- printing
def format_table(rows: list[dict], title: str) -> str:
    cols = [("peer", "peer"), ("check", "check"), ("time_us", "time us"), ("min_us", "min"), ("max_us", "max"),
            ("plan_ms", "plan ms"), ("graph_us", "graph us"), ("eff_GBs", "GB/s"), ("pct_copy", "% copy"),
            ("notes", "notes")]
    cells = []
    for r in rows:
        line = []
        for k, _ in cols:
            v = r.get(k, "-")
            if k == "check" and r.get("status") == "PASS":
                v = "PASS"
            line.append("-" if v is None or v == "" else str(v))
        cells.append(line)
    widths = [max(len(h), *(len(c[i]) for c in cells)) if cells else len(h) for i, (_, h) in enumerate(cols)]
    widths[-1] = len(cols[-1][1])  # notes: not padded
    out = [title, "-" * len(title)]
    out.append("  ".join(h.ljust(w) for (_, h), w in zip(cols, widths)).rstrip())
    for c in cells:
        out.append("  ".join(x.ljust(w) for x, w in zip(c, widths)).rstrip())
    fails = [r for r in rows if r.get("status") not in ("PASS",)]
    for r in fails:
        out.append(f"  {r['peer']}: {r['check']}")
    return "\n".join(out)


def _stderr(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def _skipped_rows(peers, key: str, why: str, status: str = "skipped") -> list[dict]:
    return [{"key": key, "workload": key, "shape": "", "peer": p, "status": status,
             "check": f"{status}: {why}" if status == "skipped" else f"error: {why}", "notes": ""} for p in peers]


def _worker_main(conn, settings: dict) -> None:
    """Body of the peer process: a PeerRunner serving requests from PeerProcess."""
    try:
        runner = PeerRunner(log=_stderr, **settings)
    except Exception as e:
        conn.send(("error", first_line(e)))
        return
    conn.send(("ready", runner.run_info))
    while True:
        try:
            msg = conn.recv()
        except EOFError:
            return
        if msg[0] == "stop":
            return
        if msg[0] == "release":
            runner.release()
            conn.send(("ok",))
        elif msg[0] == "export":
            _, path, key = msg
            try:
                runner.run_export(export_io.load_export(path), key, on_row=lambda row: conn.send(("row", row)))
            except export_io.ExportError as e:
                for row in _skipped_rows(runner.peers, key or str(path), str(e)):
                    conn.send(("row", row))
            conn.send(("done", runner.jit, runner.context_lost))
            if runner.context_lost:
                return


class PeerProcess:
    """A PeerRunner in a child process. A peer that breaks the CUDA context (or kills the process)
    costs the rest of that workload's peers, not the rest of the run: the next workload gets a
    fresh process (which measures the copy bandwidth again and reloads FlashInfer's modules)."""

    def __init__(self, settings: dict, timeout: int = 3600):
        self.settings, self.timeout = settings, timeout
        self.peers = list(settings.get("peers") or PEERS)
        self.proc = self.conn = None
        self.run_info = None      # of the first process
        self.jit: list = []
        self.restarts = 0

    def _start(self) -> None:
        import multiprocessing as mp
        ctx = mp.get_context("spawn")  # a fresh CUDA context; the parent never initialises CUDA
        self.conn, child = ctx.Pipe()
        self.proc = ctx.Process(target=_worker_main, args=(child, self.settings), daemon=True)
        self.proc.start()
        child.close()
        msg = self._recv(self.timeout)
        if msg is None or msg[0] != "ready":
            why = msg[1] if msg else f"the peer process exited (code {self.proc.exitcode}) while starting"
            self.stop()
            raise RuntimeError(why)
        if self.run_info is None:
            self.run_info = msg[1]
        else:
            self.restarts += 1
            self.run_info["peer process restarts"] = self.restarts

    def _recv(self, timeout):
        try:
            if not self.conn.poll(timeout):
                return None
            return self.conn.recv()
        except (EOFError, OSError):
            return None

    def start(self) -> dict:
        """Starts the process (if needed) and returns the run information."""
        if self.proc is None:
            self._start()
        return self.run_info

    def run_export(self, path, key: str) -> list[dict]:
        if self.proc is None:
            try:
                self._start()
            except RuntimeError as e:
                return _skipped_rows(self.peers, key, f"no peer process ({e})")
        self.conn.send(("export", str(path), key))
        rows = []
        while True:
            msg = self._recv(self.timeout)
            if msg is None:  # died or hung: the peers without a row get one that says so
                self.proc.join(5)
                code = self.proc.exitcode
                self.stop()
                why = (f"the peer process died (exit code {code}) during this workload" if code is not None
                       else f"the peer process did not answer within {self.timeout} s")
                done = {r["peer"] for r in rows}
                return rows + _skipped_rows([p for p in self.peers if p not in done], key, why, status="error")
            if msg[0] == "row":
                rows.append(msg[1])
                continue
            _, jit, lost = msg
            self.jit = self.jit + [j for j in jit if j not in self.jit]
            if lost:
                self.stop()
            return rows

    def release(self) -> None:
        """Has the process hand its cached GPU memory back (before patlab runs)."""
        if self.proc is not None:
            self.conn.send(("release",))
            if self._recv(120) is None:
                self.stop()

    def stop(self) -> None:
        if self.proc is None:
            return
        try:
            self.conn.send(("stop",))
        except (OSError, ValueError):
            pass
        self.proc.join(30)
        if self.proc.is_alive():
            self.proc.terminate()
            self.proc.join(10)
        self.proc = self.conn = None


def parse_args(argv=None):
    p = argparse.ArgumentParser(
        description="Run FlashInfer (decode, cascade) and torch SDPA (cuDNN, flash) on patlab export folders: check "
                    "each against the oracle, then time it (see tools/peers/README.md).",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("exports", nargs="+", type=pathlib.Path, help="folders written by `patlab export`")
    p.add_argument("--out", type=pathlib.Path, required=True, help="results JSON to write")
    p.add_argument("--warmup", type=int, default=5, help="untimed runs before timing")
    p.add_argument("--repeats", type=int, default=30, help=f"timed runs (median reported; at least {MIN_REPEATS})")
    p.add_argument("--warm-l2", action="store_true", help="do not flush L2 before each timed run")
    p.add_argument("--peers", default=",".join(PEERS), help="comma-separated subset of: " + ", ".join(PEERS))
    p.add_argument("--cache", type=pathlib.Path, default=fi_env.DEFAULT_CACHE,
                   help="FlashInfer cache folder: prebuilt modules in CACHE/aot, JIT builds in CACHE/jit")
    p.add_argument("--no-prebuilt", action="store_true", help="ignore CACHE/aot (JIT-compile everything here)")
    p.add_argument("--graph", action="store_true",
                   help="also capture each passing peer's run() in a CUDA graph and time its replay (graph_us)")
    return p.parse_args(argv)


def main(argv=None) -> int:
    a = parse_args(argv)
    if a.repeats < MIN_REPEATS:
        print(f"run_peers: --repeats must be at least {MIN_REPEATS}", file=sys.stderr)
        return 2
    exports = []
    for d in a.exports:
        try:
            exports.append(export_io.load_export(d))
        except export_io.ExportError as e:
            print(f"run_peers: {e}", file=sys.stderr)
            return 2
    settings = {"warmup": a.warmup, "repeats": a.repeats, "warm_l2": a.warm_l2,
                "peers": [p.strip() for p in a.peers.split(",") if p.strip()], "cache": a.cache,
                "use_prebuilt": not a.no_prebuilt, "graph": a.graph}
    for p in settings["peers"]:
        if p not in PEERS:
            print(f"run_peers: unknown peer '{p}' (known: {', '.join(PEERS)})", file=sys.stderr)
            return 2
    worker = PeerProcess(settings)
    try:
        run_info = worker.start()
    except RuntimeError as e:
        print(f"run_peers: {e}", file=sys.stderr)
        return 2
    print("run: " + json.dumps(run_info, indent=1), file=sys.stderr)
    results = []
    for i, ex in enumerate(exports):
        print(f"[{i + 1}/{len(exports)}] {ex.description}, {ex.shape.get('describe', '')}", file=sys.stderr, flush=True)
        rows = worker.run_export(ex.path, ex.description)
        results.extend(rows)
        print(format_table(rows, f"{ex.description} | {ex.shape.get('describe', '')} | unique bytes "
                                 f"{ex.unique_bytes / 1e6:.1f} MB"), flush=True)
        print(flush=True)
    worker.stop()
    doc = {"run": worker.run_info, "peers": PEERS, "jit": worker.jit, "results": results}
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps(doc, indent=1) + "\n")
    print(f"run_peers: wrote {a.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
