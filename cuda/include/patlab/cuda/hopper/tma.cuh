/// @file tma.cuh
/// @brief Tensor-map copies (TMA): cp.async.bulk.tensor over a 4-D tensor map of a KV pool
/// [blocks, page, Hkv, D], with the physical block as a coordinate, writing the 128-byte
/// swizzled layout that wgmma reads (wgmma.cuh: panel_offset).
///
/// PTX ISA, section "Data Movement and Conversion Instructions: cp.async.bulk.tensor"
/// (sm_90) and "Tensor Maps" (in "State Spaces, Types, and Variables"); the map itself is made on the host by the
/// driver's cuTensorMapEncodeTiled (CUDA driver API, "Tensor Map Object Management"), reached
/// through cudaGetDriverEntryPointByVersion so that nothing links libcuda directly.
///
/// The map's dimensions, innermost first: (D, Hkv, page, blocks) with byte strides
/// (D, Hkv x D, page x Hkv x D) x element size. Its box is (128 bytes of values, 1, box_rows, 1):
/// one panel (64 16-bit values or 128 fp8 ones; 128 bytes, the widest box the 128-byte swizzle
/// allows) of box_rows token rows of one KV head of one block. A copy at coordinates (first value
/// of a panel, head, row0, block) lands as box_rows rows of 128 bytes, each row's 16-byte chunks
/// XOR-swizzled by (smem address / 128) % 8, which is Panel128B when the destination is 1024-byte
/// aligned. A block index past the pool is out of bounds: the copy writes zeros there, and still
/// counts the box's full bytes.
#pragma once

#include <cuda.h>
#include <cuda_runtime.h>

#include <cstdint>
#include <string>

#include "patlab/cuda/hopper/arch.cuh"
#include "patlab/cuda/hopper/mbarrier.cuh"
#include "patlab/cuda/mma.cuh"
#include "patlab/error.hpp"

namespace patlab::cuda::hopper {

// [tma-load]
/// `cp.async.bulk.tensor.4d` (global to shared memory, tile mode, completing on an mbarrier by
/// bytes): one box of `map` at coordinates (c0, c1, c2, c3), innermost first, into `dst` (shared, 128-byte
/// aligned; 1024 for the 128-byte swizzle to match panel_offset), completing on `bar`. `map`
/// must live in global, constant or kernel-parameter memory (a `const __grid_constant__
/// CUtensorMap` parameter).
__device__ __forceinline__ void tma_load_4d(void* dst, const CUtensorMap* map, int c0, int c1, int c2, int c3,
                                            Mbarrier* bar) {
#if PATLAB_HOPPER_SM90
  asm volatile(
      "cp.async.bulk.tensor.4d.shared::cluster.global.tile.mbarrier::complete_tx::bytes [%0], [%1, {%2, %3, %4, %5}], "
      "[%6];\n" ::"r"(smem_u32(dst)),
      "l"(reinterpret_cast<uint64_t>(map)), "r"(c0), "r"(c1), "r"(c2), "r"(c3), "r"(smem_u32(bar))
      : "memory");
#else
  __trap();
#endif
}

/// `prefetch.tensormap`: brings the map's 128 bytes into the descriptor cache ahead of the
/// first copy (one thread, once per CTA).
__device__ __forceinline__ void prefetch_tensor_map(const CUtensorMap* map) {
#if PATLAB_HOPPER_SM90
  asm volatile("prefetch.tensormap [%0];\n" ::"l"(reinterpret_cast<uint64_t>(map)) : "memory");
#else
  __trap();
#endif
}
// [tma-load]

/// tma_load_4d() for a cluster (sm_90, clusters: cluster.cuh): the box is fetched from global
/// memory once and written to the same shared offset `dst` in every CTA of the cluster whose
/// rank has its bit set in `cta_mask`, and each of those CTAs' barrier at offset `bar` counts
/// the box's bytes. Every receiving CTA must have initialised that barrier (and announced the
/// bytes with arrive_expect_tx) before any CTA issues the copy: a cluster_sync() between the
/// two orders it. Stage 9 reads a shared prefix once per cluster this way.
__device__ __forceinline__ void tma_load_4d_multicast(void* dst, const CUtensorMap* map, int c0, int c1, int c2,
                                                      int c3, Mbarrier* bar, uint16_t cta_mask) {
#if PATLAB_HOPPER_SM90
  asm volatile(
      "cp.async.bulk.tensor.4d.shared::cluster.global.tile.mbarrier::complete_tx::bytes.multicast::cluster [%0], [%1, "
      "{%2, %3, %4, %5}], [%6], %7;\n" ::"r"(smem_u32(dst)),
      "l"(reinterpret_cast<uint64_t>(map)), "r"(c0), "r"(c1), "r"(c2), "r"(c3), "r"(smem_u32(bar)), "h"(cta_mask)
      : "memory");
#else
  __trap();
#endif
}

// [tma-pool-map]
/// What a pool tensor map covers.
struct PoolMapShape {
  int64_t blocks = 0;   ///< physical blocks of the pool
  int page = 16;        ///< tokens per block
  int kv_heads = 1;     ///< Hkv
  int head_dim = 64;    ///< D, a multiple of 64
  int box_rows = 16;    ///< token rows per copy (<= page, <= 256)
  int elem_bytes = 2;   ///< bytes per value: 2 (fp16, bf16) or 1 (an fp8 e4m3 cache)
};

/// Bytes of one row of a pool map's box: the widest the 128-byte swizzle allows.
inline constexpr int kMapRowBytes = 128;

/// Bytes one copy of a pool map moves: box_rows rows of one 128-byte panel.
inline constexpr int64_t pool_box_bytes(int box_rows) { return int64_t{box_rows} * kMapRowBytes; }

/// Encodes the 4-D tensor map of a pool of 16-bit or 8-bit values at `pool` (fp16 and bf16 alike,
/// or fp8: the copy moves bits), 128-byte swizzle, zeros out of bounds. Throws Error(device) when
/// the driver refuses it (with the driver's code), Error(unsupported) for a shape it cannot map.
inline CUtensorMap make_pool_tensor_map(const void* pool, const PoolMapShape& s) {
  if ((s.elem_bytes != 1 && s.elem_bytes != 2) || s.head_dim * s.elem_bytes % kMapRowBytes != 0 ||
      s.box_rows < 1 || s.box_rows > 256 || s.box_rows > s.page)
    throw Error(ErrorKind::unsupported,
                "a pool tensor map needs 1- or 2-byte values, rows of whole 128-byte panels and 1 <= box rows <= "
                "min(page, 256)");
  using Encode = CUresult (*)(CUtensorMap*, CUtensorMapDataType, cuuint32_t, void*, const cuuint64_t*,
                              const cuuint64_t*, const cuuint32_t*, const cuuint32_t*, CUtensorMapInterleave,
                              CUtensorMapSwizzle, CUtensorMapL2promotion, CUtensorMapFloatOOBfill);
  void* fn = nullptr;
  cudaDriverEntryPointQueryResult found{};
  constexpr unsigned kDriverApiVersion = 12000;  // the cuTensorMapEncodeTiled of CUDA 12.0
  if (cudaGetDriverEntryPointByVersion("cuTensorMapEncodeTiled", &fn, kDriverApiVersion, cudaEnableDefault, &found) !=
          cudaSuccess ||
      found != cudaDriverEntryPointSuccess || fn == nullptr)
    throw Error(ErrorKind::device, "the driver has no cuTensorMapEncodeTiled (a tensor map needs CUDA 12 and sm_90)");
  const uint64_t kElem = static_cast<uint64_t>(s.elem_bytes);
  const cuuint64_t dims[4] = {static_cast<cuuint64_t>(s.head_dim), static_cast<cuuint64_t>(s.kv_heads),
                              static_cast<cuuint64_t>(s.page), static_cast<cuuint64_t>(s.blocks)};
  const cuuint64_t strides[3] = {dims[0] * kElem, dims[0] * dims[1] * kElem, dims[0] * dims[1] * dims[2] * kElem};
  const cuuint32_t box[4] = {static_cast<cuuint32_t>(kMapRowBytes / s.elem_bytes), 1,
                             static_cast<cuuint32_t>(s.box_rows), 1};
  const cuuint32_t element_strides[4] = {1, 1, 1, 1};
  CUtensorMap map{};
  const CUresult r = reinterpret_cast<Encode>(fn)(
      &map, s.elem_bytes == 2 ? CU_TENSOR_MAP_DATA_TYPE_UINT16 : CU_TENSOR_MAP_DATA_TYPE_UINT8, 4,
      const_cast<void*>(pool), dims, strides, box, element_strides,
      CU_TENSOR_MAP_INTERLEAVE_NONE, CU_TENSOR_MAP_SWIZZLE_128B, CU_TENSOR_MAP_L2_PROMOTION_L2_256B,
      CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE);
  if (r != CUDA_SUCCESS)
    throw Error(ErrorKind::device, "cuTensorMapEncodeTiled refused the pool map (CUresult " + std::to_string(r) + ")");
  return map;
}
// [tma-pool-map]

}  // namespace patlab::cuda::hopper
