// The masked instances of the pack kernel (pack_attention_kernel<..., kSpanStages>: step 4b,
// mask_entries), for FSA's spans (selected_attention.cu): 16-bit K and V, KV tiles of
// kSpanKvTile tokens (the default) and kSpanNarrowKvTile (`patlab sparse --span-kv-tile 32`),
// every row tile and head dim, on rings of two stages (the default) and three (`patlab sparse
// --span-stages 3`, tile_budget.hpp's kSpanKvStages), compiled here apart from the plain
// instances of cuda/packed_tile.cu, which stay as they were.
#include "patlab/cuda/packed_tile_instances.cuh"
#include "patlab/cuda/packed_tile_launch.cuh"

namespace patlab::cuda {

namespace {

// [span-rings]
/// Calls `f(std::integral_constant<int, S>{})` for a built span ring of `stages`.
template <typename F>
void dispatch_span_stages(int stages, F&& f) {
  switch (stages) {
    case kKvStages: f(std::integral_constant<int, kKvStages>{}); return;
    case kSpanKvStages: f(std::integral_constant<int, kSpanKvStages>{}); return;
    default: throw Error(ErrorKind::unsupported, "no span ring of " + std::to_string(stages) + " stages is built");
  }
}

}  // namespace

void configure_span_tile(const Shape& shape, TileShape tile, int stages, int64_t smem_optin) {
  dispatch_span_stages(stages, [&](auto s) { pack_instances::configure<decltype(s)::value>(shape, tile, smem_optin); });
}

int span_tile_ctas_per_sm(const Shape& shape, TileShape tile, int stages, int64_t smem_optin) {
  int ctas = 0;
  dispatch_span_stages(stages, [&](auto s) {
    ctas = pack_instances::ctas_per_sm<decltype(s)::value>(shape, tile, smem_optin);
  });
  return ctas;
}

void launch_span_tile(const Shape& shape, TileShape tile, int stages, const PackKernelArgs& args, const int32_t* bucket,
                      int count, cudaStream_t stream) {
  dispatch_span_stages(stages, [&](auto s) {
    pack_instances::launch<decltype(s)::value>(shape, tile, args, bucket, count, stream);
  });
}
// [span-rings]

}  // namespace patlab::cuda
