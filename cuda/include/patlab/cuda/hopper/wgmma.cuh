/// @file wgmma.cuh
/// @brief wgmma: warpgroup-wide asynchronous matrix multiply-accumulate (sm_90a), the shared
/// memory matrix descriptors it reads its operands through, and the 128-byte-swizzled tile
/// layout those descriptors describe.
///
/// PTX ISA, section "Asynchronous Warpgroup Level Matrix Multiply-Accumulate Instructions":
/// wgmma.mma_async, wgmma.fence, wgmma.commit_group, wgmma.wait_group, and its subsections
/// "Shared Memory Matrix Layout" and "Matrix Descriptor Format".
///
/// One instruction: D (64 x N, fp32) += A (64 x 16) * B (16 x N), issued by the 4 warps of a
/// warpgroup (128 consecutive threads starting at a multiple of 128). Fragments:
///  - D: warp w of the warpgroup holds rows 16w..16w+15; its n8 block i is d[4i..4i+3] in the
///    C layout of mma.m16n8k16 (d[4i], d[4i+1]: row lane/4, cols 8i + 2(lane%4) + {0,1};
///    d[4i+2], d[4i+3]: row lane/4 + 8). So d viewed as float[N/8][4] is exactly the score /
///    accumulator layout of packed_tile.cuh, per warp.
///  - A from registers: warp w's rows 16w.., 4 registers in the A layout of mma.m16n8k16
///    (the C layout of two neighbouring n8 blocks, so P goes from S to A in registers).
///  - A and B from shared memory: a 64-bit descriptor (make_desc_128b) over the Panel128B layout.
///
/// The asynchrony: wgmma_fence() before the first wgmma that reads registers written by other
/// instructions (accumulators, A fragments); commit_group() closes the batch; wait_group<k>()
/// waits until at most k batches are pending. Until then the accumulators must not be touched,
/// which fence_operands() makes the compiler respect.
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <cstdint>
#include <type_traits>

#include "patlab/cuda/hopper/arch.cuh"
#include "patlab/cuda/mma.cuh"

namespace patlab::cuda::hopper {

// [panel-layout]
/// Elements of a 16-bit type in one 128-byte swizzle row (the width of one panel).
inline constexpr int kPanelElems = 64;
/// Bytes of one panel row.
inline constexpr int kPanelRowBytes = 128;
/// Bytes of the 8-row group over which the 128-byte swizzle repeats (the descriptor's stride
/// byte offset between core-matrix groups); tiles start on this alignment.
inline constexpr int kSwizzleAtomBytes = kSwizzleRows * kPanelRowBytes;

/// Element offset of (row, col) in a `rows` x C tile of 16-bit values stored as C/64 panels of
/// rows x 64 elements, each 128-byte row's 16-byte chunks XOR-swizzled by row % 8: the
/// "128B swizzle" canonical layout of wgmma (and what a tensor-map copy with
/// CU_TENSOR_MAP_SWIZZLE_128B writes). Within one panel it is swizzled<64>() of mma.cuh.
/// The tile must start 1024-byte aligned: the hardware swizzles by address bits.
__host__ __device__ __forceinline__ int panel_offset(int rows, int row, int col) {
  const int panel = col / kPanelElems, c = col % kPanelElems;
  const int chunk = c / kChunkElems;
  return panel * rows * kPanelElems + row * kPanelElems + ((chunk ^ (row % kSwizzleRows)) * kChunkElems) +
         c % kChunkElems;
}
// [panel-layout]

// [wgmma-desc]
/// Swizzle-mode field (bits 62-63) of a descriptor: 1 = 128-byte swizzle.
inline constexpr uint64_t kDescSwizzle128B = 1;

/// The 64-bit shared-memory matrix descriptor (PTX ISA "Matrix Descriptor Format"): start address (bits 0-13),
/// leading-dimension byte offset (16-29), stride-dimension byte offset (32-45), all >> 4;
/// base offset (49-51) 0 since tiles are 1024-byte aligned; swizzle mode (62-63) 128B.
__device__ __forceinline__ uint64_t make_desc_128b(const void* smem, uint32_t lbo_bytes, uint32_t sbo_bytes) {
  const uint64_t addr = (smem_u32(smem) & 0x3FFFF) >> 4;
  return addr | (static_cast<uint64_t>((lbo_bytes >> 4) & 0x3FFF) << 16) |
         (static_cast<uint64_t>((sbo_bytes >> 4) & 0x3FFF) << 32) | (kDescSwizzle128B << 62);
}

/// Descriptor of k16 step `kk` of a K-major operand (A, or B = K^T with K stored [n][k]) in
/// Panel128B layout with `rows` rows: the k16 step is 32 bytes into a 128-byte panel row (the
/// hardware applies the swizzle to the advanced address). LBO is unused for swizzled K-major
/// layouts (set to 16 bytes); SBO = 1024 bytes between 8-row groups.
/// @tparam T 16-bit element type of the tile (__half or __nv_bfloat16)
template <typename T>
__device__ __forceinline__ uint64_t desc_k_major(const T* tile, int rows, int kk) {
  constexpr int kStepsPerPanel = kPanelElems / 16;
  const T* start = tile + (kk / kStepsPerPanel) * rows * kPanelElems + (kk % kStepsPerPanel) * 16;
  return make_desc_128b(start, 16, kSwizzleAtomBytes);
}

/// Descriptor of k16 step `kk` of an MN-major B operand (V stored [k = token][n = d]) in
/// Panel128B layout with `rows` k-rows: the step starts 16 rows down; LBO = the byte distance
/// between the 64-wide panels along N, SBO = 1024 bytes between 8-row groups along K. Use with
/// kBMajor = Major::MN (imm-trans-b = 1); N must be a multiple of 64.
/// @tparam T 16-bit element type of the tile (__half or __nv_bfloat16)
template <typename T>
__device__ __forceinline__ uint64_t desc_mn_major(const T* tile, int rows, int kk) {
  return make_desc_128b(tile + kk * 16 * kPanelElems, rows * kPanelRowBytes, kSwizzleAtomBytes);
}
// [wgmma-desc]

/// Which dimension of B is contiguous in shared memory: K (imm-trans-b = 0) or N (= 1,
/// "transposed"; 16-bit types only).
enum class Major : int { K = 0, MN = 1 };

// [wgmma-sync]
/// `wgmma.fence.sync.aligned`: orders this warpgroup's earlier register writes (accumulators,
/// A fragments) before the wgmma that read them.
__device__ __forceinline__ void wgmma_fence() {
#if PATLAB_HOPPER_SM90A
  asm volatile("wgmma.fence.sync.aligned;\n" ::: "memory");
#else
  __trap();
#endif
}

/// `wgmma.commit_group.sync.aligned`: closes the batch of wgmma issued since the last commit.
__device__ __forceinline__ void wgmma_commit() {
#if PATLAB_HOPPER_SM90A
  asm volatile("wgmma.commit_group.sync.aligned;\n" ::: "memory");
#else
  __trap();
#endif
}

/// `wgmma.wait_group.sync.aligned k`: waits until at most kPending batches are in flight.
/// @tparam kPending wgmma batches allowed to stay in flight (wgmma.wait_group's N)
template <int kPending>
__device__ __forceinline__ void wgmma_wait() {
#if PATLAB_HOPPER_SM90A
  asm volatile("wgmma.wait_group.sync.aligned %0;\n" ::"n"(kPending) : "memory");
#else
  __trap();
#endif
}

/// Tells the compiler that every register of `d` may change here: call it on the accumulators
/// around wgmma_fence() / wgmma_wait() so that no read or write of them is moved across.
/// @tparam K length of `d` (deduced): this thread's fp32 accumulator registers, N/2 for an m64nNk16
template <int K>
__device__ __forceinline__ void fence_operands(float (&d)[K]) {
#pragma unroll
  for (int i = 0; i < K; ++i) asm volatile("" : "+f"(d[i])::"memory");
}

/// fence_operands for A fragments in registers (wgmma_rs): keeps them live, unchanged, up to
/// here, so that nothing reuses their registers while a wgmma that reads them is in flight.
/// @tparam K length of `a` (deduced): this thread's A-fragment registers, 4 per k16 step
template <int K>
__device__ __forceinline__ void fence_operands(uint32_t (&a)[K]) {
#pragma unroll
  for (int i = 0; i < K; ++i) asm volatile("" : "+r"(a[i])::"memory");
}
// [wgmma-sync]

/// The accumulator operand lists of m64nNk16 (N/2 fp32 registers per thread), after 3 leading
/// operands (A and B descriptors, scale-d) for SS and 6 (4 A registers, B descriptor,
/// scale-d) for RS. PTX wants literal operand numbers, so each N is written out once here.
#define PATLAB_WGMMA_D4(d, i) "+f"(d[i]), "+f"(d[i + 1]), "+f"(d[i + 2]), "+f"(d[i + 3])
/// The accumulator operand list of an m64n8k16 wgmma, SS form: asm operands 3 to 6, 4 fp32 registers per thread.
#define PATLAB_WGMMA_ACC_SS_N8 \
  "{%3, %4, %5, %6" "}"
/// The accumulator operand list of an m64n8k16 wgmma, RS form: asm operands 6 to 9, 4 fp32 registers per thread.
#define PATLAB_WGMMA_ACC_RS_N8 \
  "{%6, %7, %8, %9" "}"
/// The in-out ("+f") asm operands of an m64n8k16 wgmma's accumulators: d[0] to d[3], in order.
#define PATLAB_WGMMA_D_N8(d) \
  PATLAB_WGMMA_D4(d, 0)
/// The accumulator operand list of an m64n16k16 wgmma, SS form: asm operands 3 to 10, 8 fp32 registers per thread.
#define PATLAB_WGMMA_ACC_SS_N16 \
  "{%3, %4, %5, %6, %7, %8, %9, %10" "}"
/// The accumulator operand list of an m64n16k16 wgmma, RS form: asm operands 6 to 13, 8 fp32 registers per thread.
#define PATLAB_WGMMA_ACC_RS_N16 \
  "{%6, %7, %8, %9, %10, %11, %12, %13" "}"
/// The in-out ("+f") asm operands of an m64n16k16 wgmma's accumulators: d[0] to d[7], in order.
#define PATLAB_WGMMA_D_N16(d) \
  PATLAB_WGMMA_D4(d, 0), PATLAB_WGMMA_D4(d, 4)
/// The accumulator operand list of an m64n32k16 wgmma, SS form: asm operands 3 to 18, 16 fp32 registers per thread.
#define PATLAB_WGMMA_ACC_SS_N32 \
  "{%3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, %16, %17, %18" "}"
/// The accumulator operand list of an m64n32k16 wgmma, RS form: asm operands 6 to 21, 16 fp32 registers per thread.
#define PATLAB_WGMMA_ACC_RS_N32 \
  "{%6, %7, %8, %9, %10, %11, %12, %13, %14, %15, %16, %17, %18, %19, %20, %21" "}"
/// The in-out ("+f") asm operands of an m64n32k16 wgmma's accumulators: d[0] to d[15], in order.
#define PATLAB_WGMMA_D_N32(d) \
  PATLAB_WGMMA_D4(d, 0), PATLAB_WGMMA_D4(d, 4), PATLAB_WGMMA_D4(d, 8), PATLAB_WGMMA_D4(d, 12)
/// The accumulator operand list of an m64n64k16 wgmma, SS form: asm operands 3 to 34, 32 fp32 registers per thread.
#define PATLAB_WGMMA_ACC_SS_N64 \
  "{%3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, %16, %17, %18, %19, %20, %21," \
  " %22, %23, %24, %25, %26, %27, %28, %29, %30, %31, %32, %33, %34" "}"
/// The accumulator operand list of an m64n64k16 wgmma, RS form: asm operands 6 to 37, 32 fp32 registers per thread.
#define PATLAB_WGMMA_ACC_RS_N64 \
  "{%6, %7, %8, %9, %10, %11, %12, %13, %14, %15, %16, %17, %18, %19, %20, %21, %22, %23, %24," \
  " %25, %26, %27, %28, %29, %30, %31, %32, %33, %34, %35, %36, %37" "}"
/// The in-out ("+f") asm operands of an m64n64k16 wgmma's accumulators: d[0] to d[31], in order.
#define PATLAB_WGMMA_D_N64(d) \
  PATLAB_WGMMA_D4(d, 0), PATLAB_WGMMA_D4(d, 4), PATLAB_WGMMA_D4(d, 8), PATLAB_WGMMA_D4(d, 12), \
  PATLAB_WGMMA_D4(d, 16), PATLAB_WGMMA_D4(d, 20), PATLAB_WGMMA_D4(d, 24), PATLAB_WGMMA_D4(d, 28)
/// The accumulator operand list of an m64n128k16 wgmma, SS form: asm operands 3 to 66, 64 fp32 registers per thread.
#define PATLAB_WGMMA_ACC_SS_N128 \
  "{%3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, %16, %17, %18, %19, %20, %21," \
  " %22, %23, %24, %25, %26, %27, %28, %29, %30, %31, %32, %33, %34, %35, %36, %37, %38, %39," \
  " %40, %41, %42, %43, %44, %45, %46, %47, %48, %49, %50, %51, %52, %53, %54, %55, %56, %57," \
  " %58, %59, %60, %61, %62, %63, %64, %65, %66" "}"
/// The accumulator operand list of an m64n128k16 wgmma, RS form: asm operands 6 to 69, 64 fp32 registers per thread.
#define PATLAB_WGMMA_ACC_RS_N128 \
  "{%6, %7, %8, %9, %10, %11, %12, %13, %14, %15, %16, %17, %18, %19, %20, %21, %22, %23, %24," \
  " %25, %26, %27, %28, %29, %30, %31, %32, %33, %34, %35, %36, %37, %38, %39, %40, %41, %42," \
  " %43, %44, %45, %46, %47, %48, %49, %50, %51, %52, %53, %54, %55, %56, %57, %58, %59, %60," \
  " %61, %62, %63, %64, %65, %66, %67, %68, %69" "}"
/// The in-out ("+f") asm operands of an m64n128k16 wgmma's accumulators: d[0] to d[63], in order.
#define PATLAB_WGMMA_D_N128(d) \
  PATLAB_WGMMA_D4(d, 0), PATLAB_WGMMA_D4(d, 4), PATLAB_WGMMA_D4(d, 8), PATLAB_WGMMA_D4(d, 12), \
  PATLAB_WGMMA_D4(d, 16), PATLAB_WGMMA_D4(d, 20), PATLAB_WGMMA_D4(d, 24), PATLAB_WGMMA_D4(d, 28), \
  PATLAB_WGMMA_D4(d, 32), PATLAB_WGMMA_D4(d, 36), PATLAB_WGMMA_D4(d, 40), PATLAB_WGMMA_D4(d, 44), \
  PATLAB_WGMMA_D4(d, 48), PATLAB_WGMMA_D4(d, 52), PATLAB_WGMMA_D4(d, 56), PATLAB_WGMMA_D4(d, 60)
/// The accumulator operand list of an m64n256k16 wgmma, SS form: asm operands 3 to 130, 128 fp32 registers per thread.
#define PATLAB_WGMMA_ACC_SS_N256 \
  "{%3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, %16, %17, %18, %19, %20, %21," \
  " %22, %23, %24, %25, %26, %27, %28, %29, %30, %31, %32, %33, %34, %35, %36, %37, %38, %39," \
  " %40, %41, %42, %43, %44, %45, %46, %47, %48, %49, %50, %51, %52, %53, %54, %55, %56, %57," \
  " %58, %59, %60, %61, %62, %63, %64, %65, %66, %67, %68, %69, %70, %71, %72, %73, %74, %75," \
  " %76, %77, %78, %79, %80, %81, %82, %83, %84, %85, %86, %87, %88, %89, %90, %91, %92, %93," \
  " %94, %95, %96, %97, %98, %99, %100, %101, %102, %103, %104, %105, %106, %107, %108, %109," \
  " %110, %111, %112, %113, %114, %115, %116, %117, %118, %119, %120, %121, %122, %123, %124," \
  " %125, %126, %127, %128, %129, %130" "}"
/// The accumulator operand list of an m64n256k16 wgmma, RS form: asm operands 6 to 133, 128 fp32 registers per thread.
#define PATLAB_WGMMA_ACC_RS_N256 \
  "{%6, %7, %8, %9, %10, %11, %12, %13, %14, %15, %16, %17, %18, %19, %20, %21, %22, %23, %24," \
  " %25, %26, %27, %28, %29, %30, %31, %32, %33, %34, %35, %36, %37, %38, %39, %40, %41, %42," \
  " %43, %44, %45, %46, %47, %48, %49, %50, %51, %52, %53, %54, %55, %56, %57, %58, %59, %60," \
  " %61, %62, %63, %64, %65, %66, %67, %68, %69, %70, %71, %72, %73, %74, %75, %76, %77, %78," \
  " %79, %80, %81, %82, %83, %84, %85, %86, %87, %88, %89, %90, %91, %92, %93, %94, %95, %96," \
  " %97, %98, %99, %100, %101, %102, %103, %104, %105, %106, %107, %108, %109, %110, %111," \
  " %112, %113, %114, %115, %116, %117, %118, %119, %120, %121, %122, %123, %124, %125, %126," \
  " %127, %128, %129, %130, %131, %132, %133" "}"
/// The in-out ("+f") asm operands of an m64n256k16 wgmma's accumulators: d[0] to d[127], in order.
#define PATLAB_WGMMA_D_N256(d) \
  PATLAB_WGMMA_D4(d, 0), PATLAB_WGMMA_D4(d, 4), PATLAB_WGMMA_D4(d, 8), PATLAB_WGMMA_D4(d, 12), \
  PATLAB_WGMMA_D4(d, 16), PATLAB_WGMMA_D4(d, 20), PATLAB_WGMMA_D4(d, 24), PATLAB_WGMMA_D4(d, 28), \
  PATLAB_WGMMA_D4(d, 32), PATLAB_WGMMA_D4(d, 36), PATLAB_WGMMA_D4(d, 40), PATLAB_WGMMA_D4(d, 44), \
  PATLAB_WGMMA_D4(d, 48), PATLAB_WGMMA_D4(d, 52), PATLAB_WGMMA_D4(d, 56), PATLAB_WGMMA_D4(d, 60), \
  PATLAB_WGMMA_D4(d, 64), PATLAB_WGMMA_D4(d, 68), PATLAB_WGMMA_D4(d, 72), PATLAB_WGMMA_D4(d, 76), \
  PATLAB_WGMMA_D4(d, 80), PATLAB_WGMMA_D4(d, 84), PATLAB_WGMMA_D4(d, 88), PATLAB_WGMMA_D4(d, 92), \
  PATLAB_WGMMA_D4(d, 96), PATLAB_WGMMA_D4(d, 100), PATLAB_WGMMA_D4(d, 104), PATLAB_WGMMA_D4(d, 108), \
  PATLAB_WGMMA_D4(d, 112), PATLAB_WGMMA_D4(d, 116), PATLAB_WGMMA_D4(d, 120), PATLAB_WGMMA_D4(d, 124)

/// One m64nNk16 with A and B from shared memory (descriptors); scale-d 0 overwrites D.
#define PATLAB_WGMMA_SS(N, AB, TB)                                                                          \
  asm volatile("{\n.reg .pred p;\nsetp.ne.b32 p, %2, 0;\nwgmma.mma_async.sync.aligned.m64n" #N "k16.f32." AB \
               "." AB " " PATLAB_WGMMA_ACC_SS_N##N ", %0, %1, p, 1, 1, 0, " #TB ";\n}\n"                   \
               : "+l"(desc_a), "+l"(desc_b), "+r"(scale_d), PATLAB_WGMMA_D_N##N(d))
/// One m64nNk16 with A from 4 registers per thread and B from shared memory.
#define PATLAB_WGMMA_RS(N, AB, TB)                                                                           \
  asm volatile("{\n.reg .pred p;\nsetp.ne.b32 p, %5, 0;\nwgmma.mma_async.sync.aligned.m64n" #N "k16.f32." AB  \
               "." AB " " PATLAB_WGMMA_ACC_RS_N##N ", {%0, %1, %2, %3}, %4, p, 1, 1, " #TB ";\n}\n"          \
               : "+r"(a0), "+r"(a1), "+r"(a2), "+r"(a3), "+l"(desc_b), "+r"(scale_d), PATLAB_WGMMA_D_N##N(d))
/// The instruction for the template's N.
#define PATLAB_WGMMA_FOR_N(FORM, AB, TB)                   \
  if constexpr (N == 8) {                                  \
    FORM(8, AB, TB);                                       \
  } else if constexpr (N == 16) {                          \
    FORM(16, AB, TB);                                      \
  } else if constexpr (N == 32) {                          \
    FORM(32, AB, TB);                                      \
  } else if constexpr (N == 64) {                          \
    FORM(64, AB, TB);                                      \
  } else if constexpr (N == 128) {                         \
    FORM(128, AB, TB);                                     \
  } else {                                                 \
    FORM(256, AB, TB);                                     \
  }
/// The instruction for the template's T and B major.
#define PATLAB_WGMMA_DISPATCH(FORM)                                      \
  if constexpr (std::is_same_v<T, __half>) {                             \
    if constexpr (kBMajor == Major::K) {                                 \
      PATLAB_WGMMA_FOR_N(FORM, "f16", 0)                                 \
    } else {                                                             \
      PATLAB_WGMMA_FOR_N(FORM, "f16", 1)                                 \
    }                                                                    \
  } else {                                                               \
    if constexpr (kBMajor == Major::K) {                                 \
      PATLAB_WGMMA_FOR_N(FORM, "bf16", 0)                                \
    } else {                                                             \
      PATLAB_WGMMA_FOR_N(FORM, "bf16", 1)                                \
    }                                                                    \
  }

// [wgmma-mma]
/// d (64 x N per warpgroup, N/2 floats per thread) = A * B (+ d when `accumulate`), one k16
/// step, A and B from shared memory through their descriptors. Asynchronous: see the file
/// comment for wgmma_fence / wgmma_commit / wgmma_wait.
/// @tparam T __half or __nv_bfloat16 (both operands), fp32 accumulators
/// @tparam N 8, 16, 32, 64, 128 or 256
/// @tparam kBMajor layout of B in shared memory (Major::MN needs N % 64 == 0)
template <typename T, int N, Major kBMajor>
__device__ __forceinline__ void wgmma_ss(float (&d)[N / 2], uint64_t desc_a, uint64_t desc_b, bool accumulate) {
  static_assert(std::is_same_v<T, __half> || std::is_same_v<T, __nv_bfloat16>, "16-bit inputs");
  static_assert(N == 8 || N == 16 || N == 32 || N == 64 || N == 128 || N == 256, "N: a power of two, 8..256");
#if PATLAB_HOPPER_SM90A
  uint32_t scale_d = accumulate ? 1u : 0u;
  PATLAB_WGMMA_DISPATCH(PATLAB_WGMMA_SS)
#else
  (void)d, (void)desc_a, (void)desc_b, (void)accumulate;
  __trap();
#endif
}

/// As wgmma_ss, A from registers: `a` holds this thread's A fragment of the k16 step (the
/// A layout of mma.m16n8k16 for rows 16 * warp-in-warpgroup..). The instruction names a's
/// own registers (read-write operands, left unchanged): a copy into temporaries would be a
/// register write between wgmma_fence() and the wgmma, for which ptxas injects a
/// warpgroup.arrive of its own (its message C7519).
/// @tparam T __half or __nv_bfloat16 (both operands), fp32 accumulators
/// @tparam N 8, 16, 32, 64, 128 or 256
/// @tparam kBMajor layout of B in shared memory (Major::MN needs N % 64 == 0)
template <typename T, int N, Major kBMajor>
__device__ __forceinline__ void wgmma_rs(float (&d)[N / 2], uint32_t (&a)[4], uint64_t desc_b, bool accumulate) {
  static_assert(std::is_same_v<T, __half> || std::is_same_v<T, __nv_bfloat16>, "16-bit inputs");
  static_assert(N == 8 || N == 16 || N == 32 || N == 64 || N == 128 || N == 256, "N: a power of two, 8..256");
#if PATLAB_HOPPER_SM90A
  uint32_t &a0 = a[0], &a1 = a[1], &a2 = a[2], &a3 = a[3];
  uint32_t scale_d = accumulate ? 1u : 0u;
  PATLAB_WGMMA_DISPATCH(PATLAB_WGMMA_RS)
#else
  (void)d, (void)a, (void)desc_b, (void)accumulate;
  __trap();
#endif
}
// [wgmma-mma]

}  // namespace patlab::cuda::hopper
