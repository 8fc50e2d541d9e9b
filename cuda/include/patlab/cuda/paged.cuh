/// @file paged.cuh
/// @brief Paged KV addressing: from (block table, token) to the element offset in a pool.
#pragma once

#include <cstdint>

#include "patlab/model/workload.hpp"

namespace patlab::cuda {

/// Geometry of the K/V pools `[blocks, page, Hkv, D]`. Pages are powers of two, so a token
/// index splits into (block, offset) with a shift and a mask instead of a division.
struct PoolGeometry {
  int page_shift = 4;    ///< log2(tokens per block)
  int num_kv_heads = 1;  ///< Hkv
};

/// The geometry of `shape`'s pools.
inline PoolGeometry pool_geometry(const Shape& shape) {
  int shift = 0;
  while ((1 << shift) < shape.page_size) ++shift;
  return PoolGeometry{shift, shape.num_kv_heads};
}

// [token-offset]
/// Pool slot (block x page + offset in the block) of token `t` of a sequence whose blocks are
/// `blocks` (block i holds tokens [i * page, (i + 1) * page)): one block-table load, a shift and
/// a mask. 32 bits hold it: a pool of 2^32 tokens is far beyond any device memory.
__device__ __forceinline__ uint32_t pool_slot(const int32_t* blocks, uint32_t t, uint32_t page_shift) {
  return (static_cast<uint32_t>(__ldg(blocks + (t >> page_shift))) << page_shift) | (t & ((1u << page_shift) - 1));
}

/// Element offset of token `t` of a sequence whose blocks are `blocks`, KV head `kv_head`, in a
/// pool with head dimension D.
/// @tparam D head dimension: elements of one token's row at one KV head
template <int D>
__device__ __forceinline__ int64_t token_offset(const PoolGeometry& g, const int32_t* blocks, int t, int kv_head) {
  const int64_t slot = pool_slot(blocks, static_cast<uint32_t>(t), static_cast<uint32_t>(g.page_shift));
  return (slot * g.num_kv_heads + kv_head) * D;
}
// [token-offset]

}  // namespace patlab::cuda
