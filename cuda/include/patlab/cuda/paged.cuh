/// @file paged.cuh
/// @brief Paged KV addressing: from (block table, token) to the element offset in a pool.
#pragma once

#include <cstdint>

namespace patlab::cuda {

/// Geometry of the K/V pools `[blocks, page, Hkv, D]`.
struct PoolGeometry {
  int page;          ///< tokens per block
  int num_kv_heads;  ///< Hkv
};

/// Element offset of token `offset` of physical block `block`, KV head `kv_head`, in a pool
/// with head dimension D.
template <int D>
__device__ __forceinline__ int64_t pool_offset(const PoolGeometry& g, int32_t block, int offset, int kv_head) {
  return ((static_cast<int64_t>(block) * g.page + offset) * g.num_kv_heads + kv_head) * D;
}

/// Element offset of token `t` of a sequence whose blocks are `blocks` (block i holds tokens
/// [i * page, (i + 1) * page)).
template <int D>
__device__ __forceinline__ int64_t token_offset(const PoolGeometry& g, const int32_t* blocks, int t, int kv_head) {
  return pool_offset<D>(g, blocks[t / g.page], t % g.page, kv_head);
}

}  // namespace patlab::cuda
