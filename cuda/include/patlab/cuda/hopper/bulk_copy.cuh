/// @file bulk_copy.cuh
/// @brief cp.async.bulk: the copy engine's plain (non-tensor) bulk copies between global and
/// shared memory, completing on an mbarrier (loads) or in bulk groups (stores).
///
/// PTX ISA, section "Data Movement and Conversion Instructions: cp.async.bulk"
/// and its "cp.async.bulk.commit_group" and "cp.async.bulk.wait_group" (sm_90, PTX 8.0). One thread
/// issues a copy of `bytes` contiguous bytes (a multiple of 16, both addresses 16-byte
/// aligned); a load subtracts its bytes from the transaction count of the mbarrier it names
/// when it lands (mbarrier.cuh: arrive_expect_tx announces them first).
///
/// What a plain bulk copy can move from the pools [blocks, page, Hkv, D]: a contiguous run,
/// i.e. one token row of one KV head (D values), or a whole page of all KV heads. A page of one
/// KV head is `page` runs at a stride of Hkv x D values (contiguous only when Hkv = 1), and it
/// lands unswizzled: row after row. wgmma reads its shared-memory operands in a swizzled layout
/// (wgmma.cuh: Panel128B; an unswizzled row-major tile with 128-byte rows has no descriptor),
/// so the stage-8 kernel loads K/V through a tensor map (tma.cuh) instead, which writes the
/// 128-byte swizzle itself and moves a page of one head (per 64-wide panel) in one instruction
/// with the physical block as a coordinate. The plain copy stays for contiguous data (the test
/// of the mbarrier ring, and stores of whole tiles).
#pragma once

#include <cstdint>

#include "patlab/cuda/hopper/arch.cuh"
#include "patlab/cuda/hopper/mbarrier.cuh"
#include "patlab/cuda/mma.cuh"

namespace patlab::cuda::hopper {

/// Alignment and size granule of a bulk copy.
inline constexpr int kBulkAlign = 16;

// [bulk-load]
/// `cp.async.bulk.shared::cluster.global.mbarrier::complete_tx::bytes`: copies `bytes`
/// (multiple of 16) from `src` (global) to `dst` (this CTA's shared memory); completion
/// subtracts `bytes` from `bar`'s transaction count.
__device__ __forceinline__ void bulk_load(void* dst, const void* src, uint32_t bytes, Mbarrier* bar) {
#if PATLAB_HOPPER_SM90
  asm volatile("cp.async.bulk.shared::cluster.global.mbarrier::complete_tx::bytes [%0], [%1], %2, [%3];\n" ::"r"(
                   smem_u32(dst)),
               "l"(src), "r"(bytes), "r"(smem_u32(bar))
               : "memory");
#else
  __trap();
#endif
}
// [bulk-load]

// [bulk-store]
/// `cp.async.bulk.global.shared::cta.bulk_group`: copies `bytes` (multiple of 16) from `src`
/// (shared) to `dst` (global), in this thread's current bulk group. Shared memory written by
/// ordinary stores needs fence_proxy_async_shared() (fence.cuh) in the writing threads first.
__device__ __forceinline__ void bulk_store(void* dst, const void* src, uint32_t bytes) {
#if PATLAB_HOPPER_SM90
  asm volatile("cp.async.bulk.global.shared::cta.bulk_group [%0], [%1], %2;\n" ::"l"(dst), "r"(smem_u32(src)),
               "r"(bytes)
               : "memory");
#else
  __trap();
#endif
}

/// `cp.async.bulk.commit_group`: closes this thread's bulk group of stores.
__device__ __forceinline__ void bulk_commit() {
#if PATLAB_HOPPER_SM90
  asm volatile("cp.async.bulk.commit_group;\n" ::: "memory");
#else
  __trap();
#endif
}

/// `cp.async.bulk.wait_group N`: waits until at most kPending of this thread's bulk groups are
/// incomplete (their writes done, not only their shared-memory reads).
/// @tparam kPending bulk-copy groups allowed to stay in flight (cp.async.bulk.wait_group's N)
template <int kPending>
__device__ __forceinline__ void bulk_wait() {
#if PATLAB_HOPPER_SM90
  asm volatile("cp.async.bulk.wait_group %0;\n" ::"n"(kPending) : "memory");
#else
  __trap();
#endif
}
// [bulk-store]

}  // namespace patlab::cuda::hopper
