/// @file packed_tile_launch.cuh
/// @brief The host side of the pack kernel (packed_tile.cuh): its shared-memory setup and its
/// launch for a tile shape, over the instances compiled once in cuda/packed_tile.cu.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>
#include <vector>

#include "patlab/cuda/buffer.cuh"
#include "patlab/cuda/packed_tile.cuh"
#include "patlab/cuda/streams.cuh"
#include "patlab/planner/plan.hpp"
#include "patlab/planner/tile_budget.hpp"
#include "patlab/model/workload.hpp"

namespace patlab::cuda {

/// The packs as the pack kernel reads them (PackKernelArgs' pack arrays), built on the host:
/// pack p has queries [query_begin[p], query_begin[p + 1]) of `queries`, each with its partial
/// slot in `slots` (-1: written directly), and physical blocks [block_begin[p], block_begin[p + 1])
/// of `blocks` holding kv_len[p] tokens.
struct HostPackArrays {
  /// @var HostPackArrays::query_begin
  /// [packs + 1]: pack p's entries in `queries` and `slots` are [query_begin[p], query_begin[p + 1]).
  /// @var HostPackArrays::queries
  /// Request of each (pack, query) entry.
  /// @var HostPackArrays::slots
  /// Global partial slot of each (pack, query) entry; -1: the pack writes the output directly.
  /// @var HostPackArrays::block_begin
  /// [packs + 1]: pack p's entries in `blocks` are [block_begin[p], block_begin[p + 1]).
  /// @var HostPackArrays::blocks
  /// Physical blocks of each pack's KV range, in token order.
  /// @var HostPackArrays::kv_len
  /// [packs]: tokens of each pack's KV range (with leaf tails: its pack space, Pack::space_len()).
  std::vector<int32_t> query_begin{0}, queries, slots, block_begin{0}, blocks, kv_len;
  /// Leaf tails (PlannerOptions::take_leaves; empty for plans without): [packs], the tokens of each
  /// pack's own range (PackKernelArgs::own_len).
  std::vector<int32_t> own_len;
  /// Leaf tails: [entries], each entry's tail as pack-space tokens [x, y), {0, 0} for none
  /// (PackKernelArgs::entry_tail).
  std::vector<int2> entry_tail;
};

/// HostPackArrays on the device.
struct DevicePackArrays {
  /// @var DevicePackArrays::query_begin
  /// HostPackArrays::query_begin on the device.
  /// @var DevicePackArrays::queries
  /// HostPackArrays::queries on the device.
  /// @var DevicePackArrays::slots
  /// HostPackArrays::slots on the device.
  /// @var DevicePackArrays::block_begin
  /// HostPackArrays::block_begin on the device.
  /// @var DevicePackArrays::blocks
  /// HostPackArrays::blocks on the device.
  /// @var DevicePackArrays::kv_len
  /// HostPackArrays::kv_len on the device.
  /// @var DevicePackArrays::own_len
  /// HostPackArrays::own_len on the device (nothing allocated for a plan without leaf tails).
  DeviceBuffer<int32_t> query_begin, queries, slots, block_begin, blocks, kv_len, own_len;
  /// HostPackArrays::entry_tail on the device (nothing allocated for a plan without leaf tails).
  DeviceBuffer<int2> entry_tail;

  DevicePackArrays() = default;
  /// Uploads `h`.
  explicit DevicePackArrays(const HostPackArrays& h)
      : query_begin(h.query_begin), queries(h.queries), slots(h.slots), block_begin(h.block_begin),
        blocks(h.blocks), kv_len(h.kv_len), own_len(h.own_len), entry_tail(h.entry_tail) {}
  /// Points the pack arrays of `args` at these buffers.
  void point(PackKernelArgs& args) const {
    args.query_begin = query_begin.get();
    args.queries = queries.get();
    args.slots = slots.get();
    args.block_begin = block_begin.get();
    args.blocks = blocks.get();
    args.kv_len = kv_len.get();
    args.own_len = own_len.get();
    args.entry_tail = entry_tail.get();
  }
};

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
/// per (pack, KV head), or per pack when args.pack_kv_head names each pack's KV head, tied to the
/// launches around it as `link` says (a launch completion event for the launches that must not
/// start before all its CTAs have begun, or a start behind the kernel ahead of it: LaunchLink).
void launch_pack_tile(const Shape& shape, TileShape tile, const PackKernelArgs& args, const int32_t* bucket, int count,
                      cudaStream_t stream, LaunchLink link = {});

/// configure_pack_tile(), pack_tile_ctas_per_sm() and launch_pack_tile() of the tails kernel of
/// stages 7-8's leaf tails (cuda/tail_tile.cu; TileKernel::tail tiles, 16-bit K and V, KV tiles
/// of up to kTailMaxKvTile tokens): the plain ones call these for a tile of that kernel.
void configure_tail_tile(const Shape& shape, TileShape tile, int64_t smem_optin);
/// pack_tile_ctas_per_sm() of the tails kernel (configure_tail_tile()).
int tail_tile_ctas_per_sm(const Shape& shape, TileShape tile, int64_t smem_optin);
/// launch_pack_tile() of the tails kernel (configure_tail_tile()).
void launch_tail_tile(const Shape& shape, TileShape tile, const PackKernelArgs& args, const int32_t* bucket, int count,
                      cudaStream_t stream, LaunchLink link = {});

/// configure_pack_tile() for the masked kernel of FSA's spans (cuda/sparse/span_tile.cu; 16-bit
/// K and V, KV tiles of kSpanKvTile or kSpanNarrowKvTile tokens) on a ring of `stages`
/// (kKvStages or kSpanKvStages, tile_budget.hpp). Throws Error(unsupported) where that ring does
/// not fit the tile.
void configure_span_tile(const Shape& shape, TileShape tile, int stages, int64_t smem_optin);

/// pack_tile_ctas_per_sm() of the masked kernel on a ring of `stages` (configure_span_tile()).
int span_tile_ctas_per_sm(const Shape& shape, TileShape tile, int stages, int64_t smem_optin);

/// launch_pack_tile() of the masked kernel on a ring of `stages` (configured by
/// configure_span_tile()): args.entry_mask and args.mask_block_tokens are read.
void launch_span_tile(const Shape& shape, TileShape tile, int stages, const PackKernelArgs& args, const int32_t* bucket,
                      int count, cudaStream_t stream);

}  // namespace patlab::cuda
