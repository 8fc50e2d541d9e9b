// The instances of the pack kernel: every tile shape the planner may choose, for both storage
// types and both head dims, compiled once here and launched through launch_pack_tile().
#include <string>

#include "patlab/cuda/check.cuh"
#include "patlab/cuda/dispatch.cuh"
#include "patlab/cuda/packed_tile_launch.cuh"
#include "patlab/error.hpp"

namespace patlab::cuda {

namespace {

/// Calls `f(std::integral_constant<int, M>{}, std::integral_constant<int, N>{})` for a built tile.
template <typename F>
bool dispatch_tile(TileShape tile, F&& f) {
  auto with_n = [&](auto m) {
    switch (tile.n) {
      case 16: f(m, std::integral_constant<int, 16>{}); return true;
      case 32: f(m, std::integral_constant<int, 32>{}); return true;
      case 64: f(m, std::integral_constant<int, 64>{}); return true;
      case 128: f(m, std::integral_constant<int, 128>{}); return true;
      default: return false;
    }
  };
  switch (tile.m) {
    case 16: return with_n(std::integral_constant<int, 16>{});
    case 32: return with_n(std::integral_constant<int, 32>{});
    case 64: return with_n(std::integral_constant<int, 64>{});
    default: return false;
  }
}

}  // namespace

void configure_pack_tile(const Shape& shape, TileShape tile, int64_t smem_optin) {
  bool built = false;
  dispatch_dtype_head_dim(shape, [&](auto tag, auto dim) {
    built = dispatch_tile(tile, [&](auto m, auto n) {
      using T = typename decltype(tag)::type;
      constexpr int D = decltype(dim)::value, M = decltype(m)::value, N = decltype(n)::value;
      constexpr int bytes = pack_smem_bytes<D, M, N>();
      if (bytes > smem_optin)
        throw Error(ErrorKind::unsupported, "tile " + tile.name() + " at d=" + std::to_string(D) + " needs " +
                                                std::to_string(bytes) + " bytes of shared memory, the device gives " +
                                                std::to_string(smem_optin));
      PATLAB_CUDA_CHECK(
          cudaFuncSetAttribute(pack_attention_kernel<T, D, M, N>, cudaFuncAttributeMaxDynamicSharedMemorySize, bytes));
    });
  });
  if (!built) throw Error(ErrorKind::unsupported, "no pack kernel is built for tile " + tile.name());
}

void launch_pack_tile(const Shape& shape, TileShape tile, const PackKernelArgs& args, const int32_t* bucket, int count,
                      cudaStream_t stream) {
  if (count == 0) return;
  dispatch_dtype_head_dim(shape, [&](auto tag, auto dim) {
    dispatch_tile(tile, [&](auto m, auto n) {
      using T = typename decltype(tag)::type;
      constexpr int D = decltype(dim)::value, M = decltype(m)::value, N = decltype(n)::value;
      pack_attention_kernel<T, D, M, N><<<dim3(count, shape.num_kv_heads), PackWarpLayout<M, N>::kThreads,
                                          pack_smem_bytes<D, M, N>(), stream>>>(args, bucket);
      PATLAB_CUDA_CHECK_LAUNCH();
    });
  });
}

}  // namespace patlab::cuda
