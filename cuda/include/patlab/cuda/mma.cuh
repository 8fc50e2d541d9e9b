/// @file mma.cuh
/// @brief Tensor-core and async-copy primitives (sm_80+ PTX): cp.async, ldmatrix, mma.sync
/// m16n8k16 with fp32 accumulation, and the swizzled shared-memory layout they read.
///
/// Fragment layouts of mma.m16n8k16 (lane = threadIdx.x % 32, quad row = lane / 4,
/// quad col = 2 * (lane % 4)):
///  - A (16x16, row-major): a0a1 = (row, col..col+1), a2a3 = (row+8, col..), a4a5 = (row, col+8..),
///    a6a7 = (row+8, col+8..)
///  - B (16x8, k x n): b0b1 = (k = col..col+1, n = row), b2b3 = (k = col+8.., n = row)
///  - C (16x8, fp32): c0c1 = (row, col..col+1), c2c3 = (row+8, col..col+1)
/// The C layout of two neighbouring n8 tiles is the A layout of one k16 step, so scores
/// computed by one mma feed the next one straight from registers.
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <cstdint>

namespace patlab::cuda {

/// Bytes of one async copy / one ldmatrix row.
inline constexpr int kChunkBytes = 16;
/// 16-bit elements per chunk.
inline constexpr int kChunkElems = kChunkBytes / 2;
/// Rows over which the XOR swizzle repeats (8 rows x 16 bytes = the 128 bytes of 32 banks).
inline constexpr int kSwizzleRows = 8;

// [swizzle]
/// Element offset of (row, chunk) in a [rows][D] tile of 16-bit values whose 16-byte chunks
/// are XOR-swizzled by row: ldmatrix's 8 row reads of one column of chunks hit 8 different
/// bank groups, and so do the async copies that fill a row.
/// @tparam D 16-bit elements of a tile row: the head dimension (a multiple of 64)
template <int D>
__device__ __forceinline__ int swizzled(int row, int chunk) {
  static_assert(D % (kChunkElems * kSwizzleRows) == 0, "rows must hold a multiple of 8 chunks");
  return row * D + ((chunk ^ (row % kSwizzleRows)) * kChunkElems);
}
// [swizzle]

/// Shared-memory address as the 32-bit value PTX expects.
__device__ __forceinline__ uint32_t smem_u32(const void* p) {
  return static_cast<uint32_t>(__cvta_generic_to_shared(p));
}

// [cp-async]
/// 16-byte async copy global -> shared (a shared-window address, as smem_u32() gives); when
/// `valid` is false the destination is zero-filled and nothing is read.
__device__ __forceinline__ void cp_async_16(uint32_t smem, const void* gmem, bool valid) {
  const int src_bytes = valid ? kChunkBytes : 0;
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(smem), "l"(gmem), "r"(src_bytes));
}

/// Bytes the L2 fetches from DRAM around each K/V copy's 16 (the PTX ISA's cp.async, qualifier
/// `.level::prefetch_size` = `.L2::64B`, `.L2::128B` or `.L2::256B`; 0 names none, the L2 fetches
/// the sectors asked for). A build-time knob for the experiment of tutorial chapter 16 ("The last 5%"):
/// `meson setup ... -Dcuda_args=-DPATLAB_KV_L2_PREFETCH=256`.
#ifndef PATLAB_KV_L2_PREFETCH
#define PATLAB_KV_L2_PREFETCH 0
#endif
/// PATLAB_KV_L2_PREFETCH as a constant: 0 (no prefetch), 64, 128 or 256 bytes (cp_async_16_kv()).
inline constexpr int kKvL2Prefetch = PATLAB_KV_L2_PREFETCH;
static_assert(kKvL2Prefetch == 0 || kKvL2Prefetch == 64 || kKvL2Prefetch == 128 || kKvL2Prefetch == 256,
              "cp.async prefetches 64, 128 or 256 bytes into L2");

/// cp_async_16 for K/V tiles: with kKvL2Prefetch, the copy also asks the L2 to fetch that many
/// bytes around its 16 from DRAM.
__device__ __forceinline__ void cp_async_16_kv(uint32_t smem, const void* gmem, bool valid) {
  const int src_bytes = valid ? kChunkBytes : 0;
  if constexpr (kKvL2Prefetch == 64)
    asm volatile("cp.async.cg.shared.global.L2::64B [%0], [%1], 16, %2;\n" ::"r"(smem), "l"(gmem), "r"(src_bytes));
  else if constexpr (kKvL2Prefetch == 128)
    asm volatile("cp.async.cg.shared.global.L2::128B [%0], [%1], 16, %2;\n" ::"r"(smem), "l"(gmem), "r"(src_bytes));
  else if constexpr (kKvL2Prefetch == 256)
    asm volatile("cp.async.cg.shared.global.L2::256B [%0], [%1], 16, %2;\n" ::"r"(smem), "l"(gmem), "r"(src_bytes));
  else
    cp_async_16(smem, gmem, valid);
}

/// cp_async_16 to a generic pointer into shared memory.
__device__ __forceinline__ void cp_async_16(void* smem, const void* gmem, bool valid) {
  cp_async_16(smem_u32(smem), gmem, valid);
}

/// Closes the group of async copies issued so far by this thread.
__device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::); }

/// Waits until at most `N` of this thread's groups are still in flight.
/// @tparam N this thread's newest commit groups that may stay in flight (0: wait for all)
template <int N>
__device__ __forceinline__ void cp_async_wait() {
  asm volatile("cp.async.wait_group %0;\n" ::"n"(N));
}
// [cp-async]

/// Four 8x8 matrices of 16-bit values from shared memory; lane i gives the address of row
/// i % 8 of matrix i / 8.
__device__ __forceinline__ void ldmatrix_x4(uint32_t (&r)[4], const void* smem_row) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0, %1, %2, %3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(smem_u32(smem_row)));
}

/// As ldmatrix_x4, each matrix transposed.
__device__ __forceinline__ void ldmatrix_x4_trans(uint32_t (&r)[4], const void* smem_row) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0, %1, %2, %3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(smem_u32(smem_row)));
}

// [mma-16816]
/// c += a * b on tensor cores: m16n8k16, 16-bit inputs of type T, fp32 accumulators.
/// @tparam T type of the 16-bit inputs: __half or __nv_bfloat16 (the specialisations below)
template <typename T>
__device__ __forceinline__ void mma_16816(float (&c)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1);

/// mma_16816 for fp16 inputs (mma.sync ... .f16.f16).
template <>
__device__ __forceinline__ void mma_16816<__half>(float (&c)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1) {
  asm(
      "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, "
      "{%0, %1, %2, %3};\n"
      : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}
// [mma-16816]

/// mma_16816 for bf16 inputs (mma.sync ... .bf16.bf16).
template <>
__device__ __forceinline__ void mma_16816<__nv_bfloat16>(float (&c)[4], const uint32_t (&a)[4], uint32_t b0,
                                                         uint32_t b1) {
  asm(
      "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, "
      "{%0, %1, %2, %3};\n"
      : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

}  // namespace patlab::cuda
