// The tails instances of the pack kernel (pack_attention_kernel<..., 0, true>: step 4b,
// mask_tails), for stages 7-8's leaf tails (PlannerOptions::take_leaves; a pack that reads its
// queries' last tokens after its own range, each row seeing only its own): 16-bit K and V, KV tiles
// of up to kTailMaxKvTile tokens, every row tile and head dim, on the plain ring, compiled here
// apart from the plain instances of cuda/packed_tile.cu, which stay as they were.
#include "patlab/cuda/packed_tile_instances.cuh"
#include "patlab/cuda/packed_tile_launch.cuh"

namespace patlab::cuda {

void configure_tail_tile(const Shape& shape, TileShape tile, int64_t smem_optin) {
  pack_instances::configure<0, true>(shape, tile, smem_optin);
}

int tail_tile_ctas_per_sm(const Shape& shape, TileShape tile, int64_t smem_optin) {
  return pack_instances::ctas_per_sm<0, true>(shape, tile, smem_optin);
}

void launch_tail_tile(const Shape& shape, TileShape tile, const PackKernelArgs& args, const int32_t* bucket, int count,
                      cudaStream_t stream, LaunchLink link) {
  pack_instances::launch<0, true>(shape, tile, args, bucket, count, stream, link);
}

}  // namespace patlab::cuda
