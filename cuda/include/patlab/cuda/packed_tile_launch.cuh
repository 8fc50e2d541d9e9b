/// @file packed_tile_launch.cuh
/// @brief The host side of the pack kernel (packed_tile.cuh): its shared-memory setup and its
/// launch for a tile shape, over the instances compiled once in cuda/packed_tile.cu.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

#include "patlab/cuda/packed_tile.cuh"
#include "patlab/planner/plan.hpp"
#include "patlab/model/workload.hpp"

namespace patlab::cuda {

/// Raises the dynamic shared-memory limit of the kernel for (shape, tile); throws
/// Error(unsupported) if the device cannot give a CTA that much.
void configure_pack_tile(const Shape& shape, TileShape tile, int64_t smem_optin);

/// CTAs of the pack kernel for (shape, tile) that one SM holds at once (the occupancy
/// calculator, after configure_pack_tile()): the wave fill's slots per SM.
int pack_tile_ctas_per_sm(const Shape& shape, TileShape tile, int64_t smem_optin);

/// Launches the pack kernel for (shape, tile) over the `count` packs listed at `bucket`.
void launch_pack_tile(const Shape& shape, TileShape tile, const PackKernelArgs& args, const int32_t* bucket, int count,
                      cudaStream_t stream);

}  // namespace patlab::cuda
