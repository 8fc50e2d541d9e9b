/// @file relayout.cuh
/// @brief PackInfer's re-layout on the GPU (stage 10, issue 16): copies each group's (block, KV
/// head) slots from the paged pools into its contiguous region (packinfer/layout.hpp's map).
///
/// The pools are `[blocks, page, Hkv, D]`: one KV head of one token is a row of D elements, and
/// the rows of one head's page lie Hkv rows apart. A region is `[slots, page, D]`: one slot is
/// one head's page, its rows adjacent, and the slots of a group follow each other, so an item
/// reads its KV as long runs of contiguous bytes (a TMA box could take 256 tokens at once). Only
/// the tokens that hold data are copied (a partial last block copies its used tokens); the rest
/// of a slot, and the tail slots reserved for new tokens, are left as allocated.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

#include "patlab/packinfer/layout.hpp"

namespace patlab::cuda {

/// One slot of the re-layout (packinfer::flatten_groups() makes the list on the host).
using RelayoutCopy = packinfer::RegionCopy;

/// What the re-layout reads and writes.
struct RelayoutArgs {
  const void* k_pool = nullptr;  ///< [blocks, page, Hkv, D] in the KV storage type
  /// [blocks, page, Hkv, D] in the KV storage type: the V pool, laid out as k_pool.
  const void* v_pool = nullptr;
  void* k_region = nullptr;      ///< [slots, page, D] in the KV storage type
  /// [slots, page, D] in the KV storage type: the V regions, laid out as k_region.
  void* v_region = nullptr;
  const RelayoutCopy* copies = nullptr;  ///< device array of `count` copies
  /// Number of copies (slots to re-lay out); 0 launches nothing.
  int64_t count = 0;
  int page_shift = 4;    ///< log2(tokens per block)
  int num_kv_heads = 1;  ///< Hkv of the pools
  int row_bytes = 0;     ///< bytes of one head's row: D x the KV element size (a multiple of 16)
};

/// Enqueues the re-layout on `stream`: CTAs take the copies in turn (at most a fixed number per
/// SM of `sms`), their threads the copy's 16-byte chunks of K and V. Nothing is launched for zero
/// copies.
void launch_relayout(const RelayoutArgs& args, int sms, cudaStream_t stream);

}  // namespace patlab::cuda
