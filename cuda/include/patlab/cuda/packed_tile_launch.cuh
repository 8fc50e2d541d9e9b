/// @file packed_tile_launch.cuh
/// @brief The host side of the pack kernel (packed_tile.cuh): its shared-memory setup and its
/// launch for a tile shape, over the instances compiled once in cuda/packed_tile.cu.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

#include "patlab/cuda/packed_tile.cuh"
#include "patlab/planner/plan.hpp"
#include "patlab/planner/tile_budget.hpp"
#include "patlab/model/workload.hpp"

namespace patlab::cuda {

/// Raises the dynamic shared-memory limit of the kernel for (shape, tile); throws
/// Error(unsupported) if the device cannot give a CTA that much.
void configure_pack_tile(const Shape& shape, TileShape tile, int64_t smem_optin);

/// CTAs of the pack kernel for (shape, tile) that one SM holds at once (the occupancy
/// calculator, after configure_pack_tile()): the wave fill's slots per SM.
int pack_tile_ctas_per_sm(const Shape& shape, TileShape tile, int64_t smem_optin);

/// pack_tile_ctas_per_sm() of the instance that runs long packs of `rows` rows: the tile of
/// `rows` x `max_kv_tile`, its n lowered to fit the head dim (fit_tile). The wave fill's slots of
/// a row class.
inline int pack_rows_ctas_per_sm(const Shape& shape, int rows, int max_kv_tile, int64_t smem_optin) {
  return pack_tile_ctas_per_sm(shape, fit_tile({rows, max_kv_tile}, shape.head_dim, shape.kv_element_bytes()),
                               smem_optin);
}

/// Launches the pack kernel for (shape, tile) over the `count` packs listed at `bucket`: one CTA
/// per (pack, KV head), or per pack when args.pack_kv_head names each pack's KV head.
void launch_pack_tile(const Shape& shape, TileShape tile, const PackKernelArgs& args, const int32_t* bucket, int count,
                      cudaStream_t stream);

/// configure_pack_tile() for the masked kernel of FSA's spans (cuda/sparse/span_tile.cu; 16-bit
/// K and V only).
void configure_span_tile(const Shape& shape, TileShape tile, int64_t smem_optin);

/// launch_pack_tile() of the masked kernel: args.entry_mask and args.mask_block_tokens are read.
void launch_span_tile(const Shape& shape, TileShape tile, const PackKernelArgs& args, const int32_t* bucket, int count,
                      cudaStream_t stream);

}  // namespace patlab::cuda
