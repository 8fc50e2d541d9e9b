"""Reads a ``patlab export`` folder (docs/export-format.md) with numpy, and judges outputs the way
patlab's check.hpp does. No torch needed.

    ex = load_export("exports/sysprompt")
    k, v = ex.dense_kv(r)                 # request r's keys and values, [length, Hkv, d] float32
    res = check(ex, output)               # output: [R, Hq, d] array-like of floats
    print(res.summary())                  # "PASS max|err| ..., rel L2 ... (bound ...), 0 out of bound"
"""

from __future__ import annotations

import json
import math
import pathlib
from dataclasses import dataclass

import numpy as np

FORMAT = "patlab-export"
VERSION = 1
_NUMPY_DTYPES = {"fp16": "<u2", "bf16": "<u2", "int32": "<i4", "float32": "<f4"}


class ExportError(Exception):
    """An export folder that is missing, incomplete or of another format."""


def bits_to_float32(bits: np.ndarray, dtype: str) -> np.ndarray:
    """16-bit patterns of `dtype` ("fp16" or "bf16") as float32 values."""
    bits = np.asarray(bits, dtype=np.uint16)
    if dtype == "fp16":
        return bits.view(np.float16).astype(np.float32)
    if dtype == "bf16":
        return (bits.astype(np.uint32) << 16).view(np.float32)
    raise ExportError(f"unknown 16-bit dtype '{dtype}'")


@dataclass
class Export:
    """A loaded export: its metadata and its arrays (16-bit data as raw uint16 patterns)."""

    path: pathlib.Path
    meta: dict
    q_bits: np.ndarray        # [R, Hq, d] uint16
    k_bits: np.ndarray        # [num_blocks, page, Hkv, d] uint16 (memory-mapped)
    v_bits: np.ndarray
    block_tables: np.ndarray  # [R, max_blocks] int32, -1 padded
    lengths: np.ndarray       # [R] int32
    oracle_o: np.ndarray      # [R, Hq, d] float32
    oracle_lse: np.ndarray    # [R, Hq] float32, natural log

    @property
    def dtype(self) -> str:
        return self.meta["dtype"]

    @property
    def shape(self) -> dict:
        return self.meta["shape"]

    @property
    def requests(self) -> int:
        return int(self.meta["requests"])

    @property
    def page_size(self) -> int:
        return int(self.meta["page_size"])

    @property
    def description(self) -> str:
        return self.meta["description"]

    @property
    def unique_bytes(self) -> int:
        """Unique KV bytes + q + output: what patlab's eff_GBs divides by."""
        return int(self.meta["bytes"]["unique"])

    def table(self, r: int) -> list[int]:
        """Physical blocks of request r, in token order (padding removed)."""
        n = (int(self.lengths[r]) + self.page_size - 1) // self.page_size
        return [int(b) for b in self.block_tables[r, :n]]

    def tables(self) -> list[list[int]]:
        return [self.table(r) for r in range(self.requests)]

    def paths(self) -> list[list[int]]:
        return [list(p) for p in self.meta["paths"]]

    def segments(self) -> tuple[list[int], list[int], list[str]]:
        """Per segment: parent, tokens, name."""
        segs = self.meta["tree"]["segments"]
        return [s["parent"] for s in segs], [s["tokens"] for s in segs], [s["name"] for s in segs]

    def dense_kv_bits(self, r: int) -> tuple[np.ndarray, np.ndarray]:
        """Request r's K and V gathered through its block table: [length, Hkv, d] uint16."""
        n = int(self.lengths[r])
        idx = np.asarray(self.table(r), dtype=np.int64)
        s = self.shape
        k = self.k_bits[idx].reshape(-1, s["num_kv_heads"], s["head_dim"])[:n]
        v = self.v_bits[idx].reshape(-1, s["num_kv_heads"], s["head_dim"])[:n]
        return k, v

    def dense_kv(self, r: int) -> tuple[np.ndarray, np.ndarray]:
        """Request r's K and V as float32, [length, Hkv, d]."""
        k, v = self.dense_kv_bits(r)
        return bits_to_float32(k, self.dtype), bits_to_float32(v, self.dtype)

    def q(self) -> np.ndarray:
        """q as float32, [R, Hq, d]."""
        return bits_to_float32(self.q_bits, self.dtype)


def load_export(path) -> Export:
    """Loads an export folder; the pools are memory-mapped (copy-on-write), not read."""
    path = pathlib.Path(path)
    meta_path = path / "workload.json"
    if not meta_path.is_file():
        raise ExportError(f"{path}: no workload.json (not a patlab export folder)")
    with open(meta_path) as f:
        meta = json.load(f)
    if meta.get("format") != FORMAT:
        raise ExportError(f"{meta_path}: format is {meta.get('format')!r}, expected {FORMAT!r}")
    if meta.get("version") != VERSION:
        raise ExportError(f"{meta_path}: version {meta.get('version')}, this reader knows {VERSION}")
    if meta.get("endianness", "little") != "little":
        raise ExportError(f"{meta_path}: endianness {meta.get('endianness')!r} is not supported")
    arrays = {}
    for f in meta["files"]:
        fpath = path / f["file"]
        dt = _NUMPY_DTYPES.get(f["dtype"])
        if dt is None:
            raise ExportError(f"{meta_path}: file {f['file']} has unknown dtype {f['dtype']!r}")
        shape = tuple(int(d) for d in f["shape"])
        expect = int(np.prod(shape, dtype=np.int64)) * np.dtype(dt).itemsize
        if not fpath.is_file():
            raise ExportError(f"{path}: {f['file']} is missing")
        size = fpath.stat().st_size
        if size != expect:
            raise ExportError(f"{fpath}: {size} bytes, expected {expect} for {f['dtype']} {list(shape)}")
        if expect == 0:
            arrays[f["name"]] = np.zeros(shape, dtype=dt)
        else:
            arrays[f["name"]] = np.memmap(fpath, dtype=dt, mode="c", shape=shape)
    for name in ("q", "k_pool", "v_pool", "block_tables", "lengths", "oracle_o", "oracle_lse"):
        if name not in arrays:
            raise ExportError(f"{meta_path}: file '{name}' is not listed")
    return Export(path=path, meta=meta, q_bits=arrays["q"], k_bits=arrays["k_pool"], v_bits=arrays["v_pool"],
                  block_tables=np.asarray(arrays["block_tables"]), lengths=np.asarray(arrays["lengths"]),
                  oracle_o=np.asarray(arrays["oracle_o"]), oracle_lse=np.asarray(arrays["oracle_lse"]))


@dataclass
class CheckResult:
    """The verdict on one output, field for field as patlab's CheckResult."""

    passed: bool
    elements: int
    nonfinite: int
    out_of_bound: int
    max_abs_error: float
    rel_l2_error: float
    rel_l2_bound: float

    def summary(self) -> str:
        """One line, in the same words as check.hpp's CheckResult::summary()."""
        if self.nonfinite > 0:
            return f"FAIL {self.nonfinite} of {self.elements} elements are NaN/Inf or never written"
        return (f"{'PASS' if self.passed else 'FAIL'} max|err| {self.max_abs_error:.2e}, rel L2 "
                f"{self.rel_l2_error:.2e} (bound {self.rel_l2_bound:.2e}), {self.out_of_bound} out of bound")


def check(ex: Export, got) -> CheckResult:
    """Judges `got` ([R, Hq, d] floats) against the exported oracle with check.hpp's rule:
    every element finite; |got - ref| <= atol + rtol |ref| per element; relative L2 error
    (over the finite elements) <= emulation_factor * emulated_rel_l2 + l2_floor."""
    tol = ex.meta["tolerance"]
    ref = ex.oracle_o.astype(np.float64).reshape(-1)
    g = np.asarray(got, dtype=np.float64).reshape(-1)
    if g.size != ref.size:
        raise ValueError(f"output has {g.size} elements, oracle {ref.size}")
    finite = np.isfinite(g)
    nonfinite = int(g.size - np.count_nonzero(finite))
    e = np.abs(g[finite] - ref[finite])
    r = ref[finite]
    oob = int(np.count_nonzero(e > tol["atol"] + tol["rtol"] * np.abs(r)))
    err2 = float(np.sum(e * e))
    ref2 = float(np.sum(r * r))
    rel = math.sqrt(err2 / ref2) if ref2 > 0 else math.sqrt(err2)
    bound = tol["emulation_factor"] * tol["emulated_rel_l2"] + tol["l2_floor"]
    return CheckResult(passed=nonfinite == 0 and oob == 0 and rel <= bound, elements=int(g.size),
                       nonfinite=nonfinite, out_of_bound=oob, max_abs_error=float(e.max()) if e.size else 0.0,
                       rel_l2_error=rel, rel_l2_bound=bound)


def reference_attention(ex: Export) -> tuple[np.ndarray, np.ndarray]:
    """Decode attention in float64 from the dense per-request K/V (a check of the export itself):
    o [R, Hq, d] and lse [R, Hq] (natural log)."""
    s = ex.shape
    R, Hq, Hkv, d = ex.requests, s["num_q_heads"], s["num_kv_heads"], s["head_dim"]
    group = Hq // Hkv
    scale = float(ex.meta["softmax_scale"])
    q = ex.q().astype(np.float64)
    o = np.zeros((R, Hq, d))
    lse = np.zeros((R, Hq))
    for r in range(R):
        k, v = ex.dense_kv(r)
        k = k.astype(np.float64)
        v = v.astype(np.float64)
        for h in range(Hq):
            kv = h // group
            scores = k[:, kv, :] @ q[r, h] * scale
            m = scores.max()
            p = np.exp(scores - m)
            total = p.sum()
            o[r, h] = (p @ v[:, kv, :]) / total
            lse[r, h] = m + math.log(total)
    return o, lse
