// The instances of the pack kernel: every tile shape the planner may choose, for both storage
// types of q, both KV cache types (16-bit and fp8) and every head dim, compiled once here and launched through launch_pack_tile(). A tile
// that does not fit a head dim's budget (pack_tile_fits(), tile_budget.hpp) is not built for it:
// the planner never picks one. The masked instances (FSA's spans) are compiled apart, in
// cuda/sparse/span_tile.cu, and so are the tails instances (stages 7-8's leaf tails), in
// cuda/tail_tile.cu: a tile of TileKernel::tail goes there.
#include "patlab/cuda/packed_tile_instances.cuh"
#include "patlab/cuda/packed_tile_launch.cuh"

namespace patlab::cuda {

void configure_pack_tile(const Shape& shape, TileShape tile, int64_t smem_optin) {
  if (tile.kernel == TileKernel::tail) return configure_tail_tile(shape, tile, smem_optin);
  pack_instances::configure<0>(shape, tile, smem_optin);
}

int pack_tile_ctas_per_sm(const Shape& shape, TileShape tile, int64_t smem_optin) {
  if (tile.kernel == TileKernel::tail) return tail_tile_ctas_per_sm(shape, tile, smem_optin);
  return pack_instances::ctas_per_sm<0>(shape, tile, smem_optin);
}

void launch_pack_tile(const Shape& shape, TileShape tile, const PackKernelArgs& args, const int32_t* bucket, int count,
                      cudaStream_t stream, LaunchLink link) {
  if (tile.kernel == TileKernel::tail) return launch_tail_tile(shape, tile, args, bucket, count, stream, link);
  pack_instances::launch<0>(shape, tile, args, bucket, count, stream, link);
}

}  // namespace patlab::cuda
