"""Reads a ``patlab export`` folder (docs/export-format.md) with numpy, and judges outputs the way
patlab's check.hpp does. No torch needed.

    ex = load_export("exports/sysprompt")
    k, v = ex.dense_kv(r)                 # request r's keys and values, [length, Hkv, d] float32
    res = check(ex, output)               # output: [R, Hq, d] array-like of floats
    print(res.summary())                  # "PASS max|err| ..., worst row (request r, head h) rel L2 ..."
"""

from __future__ import annotations

import json
import math
import pathlib
from dataclasses import dataclass

import numpy as np

FORMAT = "patlab-export"
VERSION = 3
_NUMPY_DTYPES = {"fp16": "<u2", "bf16": "<u2", "fp8_e4m3": "u1", "int32": "<i4", "float32": "<f4"}


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


def fp8_e4m3_to_float32(codes: np.ndarray) -> np.ndarray:
    """fp8 e4m3 codes (1 sign, 4 exponent bits of bias 7, 3 mantissa bits; 0x7F/0xFF NaN) as float32."""
    c = np.arange(256, dtype=np.int64)
    e, m = (c >> 3) & 0xF, c & 7
    mag = np.where(e == 0, m / 8.0 * 2.0 ** -6, (1 + m / 8.0) * 2.0 ** (e - 7))
    table = np.where(c & 0x80, -mag, mag)
    table[(c & 0x7F) == 0x7F] = np.nan
    return table.astype(np.float32)[np.asarray(codes, dtype=np.uint8)]


def kv_to_float32(codes: np.ndarray, kv_dtype: str, scale: float) -> np.ndarray:
    """Stored K or V elements as float32 values: 16-bit patterns, or fp8 codes times the tensor's scale."""
    if kv_dtype == "fp8_e4m3":
        return fp8_e4m3_to_float32(codes) * np.float32(scale)
    return bits_to_float32(codes, kv_dtype)


@dataclass
class Export:
    """A loaded export: its metadata and its arrays (16-bit data as raw uint16 patterns)."""

    path: pathlib.Path
    meta: dict
    q_bits: np.ndarray        # [R, Hq, d] uint16
    k_bits: np.ndarray        # [num_blocks, page, Hkv, d] uint16, or uint8 fp8 codes (memory-mapped)
    v_bits: np.ndarray
    block_tables: np.ndarray  # [R, max_blocks] int32, -1 padded
    lengths: np.ndarray       # [R] int32
    oracle_o: np.ndarray      # [R, Hq, d] float32
    oracle_lse: np.ndarray    # [R, Hq] float32, natural log
    emulated_row_error: np.ndarray  # [R, Hq] float32: relative L2 error of each row of patlab's emulation

    @property
    def dtype(self) -> str:
        return self.meta["dtype"]

    @property
    def kv_dtype(self) -> str:
        """How K and V are stored: the dtype's name, or "fp8_e4m3" (codes times k_scale / v_scale)."""
        return self.meta["kv_dtype"]

    @property
    def k_scale(self) -> float:
        return float(self.meta["k_scale"])

    @property
    def v_scale(self) -> float:
        return float(self.meta["v_scale"])

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
        """Request r's K and V gathered through its block table: [length, Hkv, d] stored codes."""
        n = int(self.lengths[r])
        idx = np.asarray(self.table(r), dtype=np.int64)
        s = self.shape
        k = self.k_bits[idx].reshape(-1, s["num_kv_heads"], s["head_dim"])[:n]
        v = self.v_bits[idx].reshape(-1, s["num_kv_heads"], s["head_dim"])[:n]
        return k, v

    def dense_kv(self, r: int) -> tuple[np.ndarray, np.ndarray]:
        """Request r's K and V as float32 values (fp8 codes times their tensor's scale), [length, Hkv, d]."""
        k, v = self.dense_kv_bits(r)
        return kv_to_float32(k, self.kv_dtype, self.k_scale), kv_to_float32(v, self.kv_dtype, self.v_scale)

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
    for name in ("q", "k_pool", "v_pool", "block_tables", "lengths", "oracle_o", "oracle_lse", "emulated_row_error"):
        if name not in arrays:
            raise ExportError(f"{meta_path}: file '{name}' is not listed")
    return Export(path=path, meta=meta, q_bits=arrays["q"], k_bits=arrays["k_pool"], v_bits=arrays["v_pool"],
                  block_tables=np.asarray(arrays["block_tables"]), lengths=np.asarray(arrays["lengths"]),
                  oracle_o=np.asarray(arrays["oracle_o"]), oracle_lse=np.asarray(arrays["oracle_lse"]),
                  emulated_row_error=np.asarray(arrays["emulated_row_error"]))


@dataclass
class CheckResult:
    """The verdict on one output, field for field as patlab's CheckResult."""

    passed: bool
    elements: int
    nonfinite: int
    out_of_bound: int
    max_abs_error: float
    rows: int
    rows_over: int
    worst_request: int
    worst_head: int
    worst_row_error: float
    worst_row_bound: float
    rel_l2_error: float

    def summary(self) -> str:
        """One line, in the same words as check.hpp's CheckResult::summary()."""
        if self.nonfinite > 0:
            return f"FAIL {self.nonfinite} of {self.elements} elements are NaN/Inf or never written"
        return (f"{'PASS' if self.passed else 'FAIL'} max|err| {self.max_abs_error:.2e}, worst row (request "
                f"{self.worst_request}, head {self.worst_head}) rel L2 {self.worst_row_error:.2e} (bound "
                f"{self.worst_row_bound:.2e}), {self.rows_over} of {self.rows} rows over, {self.out_of_bound} out of bound")


def check(ex: Export, got) -> CheckResult:
    """Judges `got` ([R, Hq, d] floats) against the exported oracle with check.hpp's rule:
    every element finite; |got - ref| <= atol + rtol |ref| per element; and per (request, head)
    row, ||got_r - ref_r|| / ||ref_r|| <= emulation_factor * emulated_row_error[r] + row_floor."""
    tol = ex.meta["tolerance"]
    ref = ex.oracle_o.astype(np.float64)
    R, H, d = ref.shape
    g = np.asarray(got, dtype=np.float64)
    if g.size != ref.size:
        raise ValueError(f"output has {g.size} elements, oracle {ref.size}")
    g = g.reshape(R, H, d)
    finite = np.isfinite(g)
    nonfinite = int(g.size - np.count_nonzero(finite))
    e = np.where(finite, np.abs(g - ref), 0.0)
    oob = int(np.count_nonzero(finite & (e > tol["atol"] + tol["rtol"] * np.abs(ref))))
    err2 = np.sum(e * e, axis=2)
    ref2 = np.sum(ref * ref, axis=2)
    row_err = np.where(ref2 > 0, np.sqrt(err2 / np.where(ref2 > 0, ref2, 1.0)), np.sqrt(err2))
    bound = tol["emulation_factor"] * ex.emulated_row_error.astype(np.float64) + tol["row_floor"]
    row_finite = np.all(finite, axis=2)
    over = int(np.count_nonzero(row_finite & (row_err > bound)))
    ratio = np.where(row_finite, row_err / bound, -1.0)
    worst = np.unravel_index(int(np.argmax(ratio)), ratio.shape)
    total_ref2 = float(np.sum(ref2))
    rel = math.sqrt(float(np.sum(err2)) / total_ref2) if total_ref2 > 0 else math.sqrt(float(np.sum(err2)))
    return CheckResult(passed=nonfinite == 0 and oob == 0 and over == 0, elements=int(g.size), nonfinite=nonfinite,
                       out_of_bound=oob, max_abs_error=float(e.max()) if e.size else 0.0, rows=R * H, rows_over=over,
                       worst_request=int(worst[0]), worst_head=int(worst[1]), worst_row_error=float(row_err[worst]),
                       worst_row_bound=float(bound[worst]), rel_l2_error=rel)


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
