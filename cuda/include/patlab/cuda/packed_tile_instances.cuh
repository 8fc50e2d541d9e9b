/// @file packed_tile_instances.cuh
/// @brief How a translation unit compiles and launches instances of the pack kernel
/// (packed_tile.cuh): the choice of instance for (shape, tile) and its shared-memory setup,
/// occupancy and launch, for the plain kernel (cuda/packed_tile.cu, stages 4-8 and NSA's sparse
/// order), the masked one on a ring of 2 or 3 stages (cuda/sparse/span_tile.cu, FSA's spans,
/// KV tiles of kSpanKvTile or kSpanNarrowKvTile tokens) or the tails one (cuda/tail_tile.cu,
/// stages 7-8's leaf tails, KV tiles of up to kTailMaxKvTile tokens). Include it from one .cu per
/// kind only: each includer compiles every instance it may launch.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>
#include <string>
#include <type_traits>

#include "patlab/cuda/check.cuh"
#include "patlab/cuda/dispatch.cuh"
#include "patlab/cuda/kernel_smem.cuh"
#include "patlab/cuda/packed_tile.cuh"
#include "patlab/cuda/streams.cuh"
#include "patlab/error.hpp"
#include "patlab/model/workload.hpp"
#include "patlab/planner/plan.hpp"
#include "patlab/planner/tile_budget.hpp"

namespace patlab::cuda::pack_instances {

/// Largest gridDim.x (2^31 - 1).
inline constexpr int64_t kMaxGridX = 2147483647;

/// Calls `f(std::integral_constant<int, M>{}, std::integral_constant<int, N>{})` for a built tile.
/// @tparam F callable as f(m, n): std::integral_constant<int, M> (16, 32 or 64) and
/// std::integral_constant<int, N> (16, 32, 64 or 128) of the tile
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

/// Calls `f(TypeTag<T, KV>, D, M, N)` for the pack kernel instance of (shape, tile); throws
/// Error(unsupported) when that tile is not built, or does not fit the shape's head dim. The
/// masked kernel is built for 16-bit K and V and KV tiles of kSpanKvTile or kSpanNarrowKvTile
/// tokens only (sparse decode refuses an fp8 cache), on rings that fit.
/// @tparam kSpanStages 0: the plain kernel; 2 or 3: the masked kernel on a ring of that many stages
/// @tparam kTails true: the tails kernel of stages 7-8's leaf tails (16-bit K and V, KV tiles of
/// at most kTailMaxKvTile tokens, the plain ring; cuda/tail_tile.cu)
/// @tparam F callable as f(tag, dim, m, n): a TypeTag<T, KV> and std::integral_constant<int, ...> of D, M and N
template <int kSpanStages, bool kTails = false, typename F>
void dispatch_pack_instance(const Shape& shape, TileShape tile, F&& f) {
  static_assert(kSpanStages == 0 || span_ring_built(kSpanStages), "the plain kernel, or a span ring that is built");
  static_assert(!(kTails && kSpanStages > 0), "the tails kernel runs on the plain ring");
  bool built = false;
  dispatch_dtype_head_dim(shape, [&](auto tag, auto dim) {
    built = dispatch_tile(tile, [&](auto m, auto n) {
      // decay: GCC 12 names a parameter of the enclosing generic lambda as a reference in here
      using T = typename std::decay_t<decltype(tag)>::type;
      using KV = typename std::decay_t<decltype(tag)>::kv_type;
      [[maybe_unused]] constexpr int D = decltype(dim)::value, M = decltype(m)::value, N = decltype(n)::value;
      if constexpr (kTails && !std::is_same_v<T, KV>)
        throw Error(ErrorKind::unsupported, "the leaf tails' pack kernel reads 16-bit K and V only");
      else if constexpr (kTails && N > kTailMaxKvTile)
        throw Error(ErrorKind::unsupported, "the leaf tails' pack kernel is built for KV tiles of up to " +
                                                std::to_string(kTailMaxKvTile) + " tokens, not " + tile.name());
      else if constexpr (kSpanStages > 0 && !std::is_same_v<T, KV>)
        throw Error(ErrorKind::unsupported, "the masked pack kernel reads 16-bit K and V only");
      else if constexpr (kSpanStages > 0 && !span_kv_tile_built(N))
        throw Error(ErrorKind::unsupported, "the masked pack kernel is built for KV tiles of " +
                                                std::to_string(kSpanKvTile) + " or " + std::to_string(kSpanNarrowKvTile) +
                                                " tokens only, not " + tile.name());
      else if constexpr (kSpanStages > 0 && !span_ring_fits(D, M, N, kSpanStages))
        throw Error(ErrorKind::unsupported, "a span ring of " + std::to_string(kSpanStages) +
                                                " stages does not fit tile " + tile.name() + " at head dim " +
                                                std::to_string(D));
      else if constexpr (pack_tile_fits(D, M, N, static_cast<int>(sizeof(KV))))
        f(tag, dim, m, n);
      else
        throw Error(ErrorKind::unsupported, "tile " + tile.name() + " does not fit head dim " + std::to_string(D) +
                                                " (shared memory or registers, see tile_budget.hpp)");
    });
  });
  if (!built) throw Error(ErrorKind::unsupported, "no pack kernel is built for tile " + tile.name());
}

/// configure_pack_tile() of the plain, masked or tails kernel.
/// @tparam kSpanStages 0: the plain kernel; 2 or 3: the masked kernel on a ring of that many stages
/// @tparam kTails true: the tails kernel (kSpanStages 0)
template <int kSpanStages, bool kTails = false>
void configure(const Shape& shape, TileShape tile, int64_t smem_optin) {
  dispatch_pack_instance<kSpanStages, kTails>(shape, tile, [&](auto tag, auto dim, auto m, auto n) {
    using T = typename decltype(tag)::type;
    using KV = typename decltype(tag)::kv_type;
    constexpr int D = decltype(dim)::value, M = decltype(m)::value, N = decltype(n)::value;
    constexpr int bytes = pack_smem_bytes<KV, D, M, N, kSpanStages>();
    if (bytes > smem_optin)
      throw Error(ErrorKind::unsupported, "tile " + tile.name() + " at d=" + std::to_string(D) + " needs " +
                                              std::to_string(bytes) + " bytes of shared memory, the device gives " +
                                              std::to_string(smem_optin));
    set_kernel_smem(pack_attention_kernel<T, KV, D, M, N, kSpanStages, kTails>, bytes);
  });
}

/// pack_tile_ctas_per_sm() of the plain, masked or tails kernel.
/// @tparam kSpanStages 0: the plain kernel; 2 or 3: the masked kernel on a ring of that many stages
/// @tparam kTails true: the tails kernel (kSpanStages 0)
template <int kSpanStages, bool kTails = false>
int ctas_per_sm(const Shape& shape, TileShape tile, int64_t smem_optin) {
  configure<kSpanStages, kTails>(shape, tile, smem_optin);
  int ctas = 0;
  dispatch_pack_instance<kSpanStages, kTails>(shape, tile, [&](auto tag, auto dim, auto m, auto n) {
    using T = typename decltype(tag)::type;
    using KV = typename decltype(tag)::kv_type;
    constexpr int D = decltype(dim)::value, M = decltype(m)::value, N = decltype(n)::value;
    PATLAB_CUDA_CHECK(cudaOccupancyMaxActiveBlocksPerMultiprocessor(
        &ctas, pack_attention_kernel<T, KV, D, M, N, kSpanStages, kTails>, PackWarpLayout<D, M, N>::kThreads,
        pack_smem_bytes<KV, D, M, N, kSpanStages>()));
  });
  return ctas;
}

/// launch_pack_tile() of the plain, masked or tails kernel.
/// @tparam kSpanStages 0: the plain kernel; 2 or 3: the masked kernel on a ring of that many stages
/// @tparam kTails true: the tails kernel (kSpanStages 0)
template <int kSpanStages, bool kTails = false>
void launch(const Shape& shape, TileShape tile, const PackKernelArgs& args, const int32_t* bucket, int count,
            cudaStream_t stream, LaunchLink link = {}) {
  if (count == 0) return;
  dispatch_pack_instance<kSpanStages, kTails>(shape, tile, [&](auto tag, auto dim, auto m, auto n) {
    using T = typename decltype(tag)::type;
    using KV = typename decltype(tag)::kv_type;
    constexpr int D = decltype(dim)::value, M = decltype(m)::value, N = decltype(n)::value;
    const int64_t ctas = int64_t{count} * (args.pack_kv_head ? 1 : shape.num_kv_heads);
    if (ctas > kMaxGridX)
      throw Error(ErrorKind::unsupported, "a bucket of " + std::to_string(ctas) + " CTAs is over the grid's limit");
    const auto kernel = pack_attention_kernel<T, KV, D, M, N, kSpanStages, kTails>;
    const unsigned threads = PackWarpLayout<D, M, N>::kThreads;
    const size_t smem = pack_smem_bytes<KV, D, M, N, kSpanStages>();
    launch_kernel(kernel, static_cast<unsigned>(ctas), threads, smem, stream, link, args, bucket);
  });
}

}  // namespace patlab::cuda::pack_instances
