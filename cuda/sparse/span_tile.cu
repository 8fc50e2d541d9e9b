// The masked instances of the pack kernel (pack_attention_kernel<..., kMasked = true>: step 4b,
// mask_entries), for FSA's spans (selected_attention.cu): 16-bit K and V, every tile shape and
// head dim, compiled here apart from the plain instances of cuda/packed_tile.cu, which stay as
// they were.
#include "patlab/cuda/packed_tile_instances.cuh"
#include "patlab/cuda/packed_tile_launch.cuh"

namespace patlab::cuda {

void configure_span_tile(const Shape& shape, TileShape tile, int64_t smem_optin) {
  pack_instances::configure<true>(shape, tile, smem_optin);
}

void launch_span_tile(const Shape& shape, TileShape tile, const PackKernelArgs& args, const int32_t* bucket, int count,
                      cudaStream_t stream) {
  pack_instances::launch<true>(shape, tile, args, bucket, count, stream);
}

}  // namespace patlab::cuda
