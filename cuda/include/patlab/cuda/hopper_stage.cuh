/// @file hopper_stage.cuh
/// @brief What stages 8 and 9 share on the host: the shapes their sm_90a kernels are built for,
/// the device they run on, the planner options they start from, and the pools' tensor maps.
#pragma once

#include <cuda.h>

#include <algorithm>
#include <cstdint>
#include <string>
#include <type_traits>

#include "patlab/cuda/dispatch.cuh"
#include "patlab/cuda/hopper/tma.cuh"
#include "patlab/cuda/stage.cuh"
#include "patlab/error.hpp"
#include "patlab/planner/plan.hpp"
#include "patlab/planner/planner.hpp"
#include "patlab/planner/tile_budget.hpp"

namespace patlab::cuda {

/// Compute capability of the sm_90a machine code.
inline constexpr int kHopperMajor = 9;
/// Minor version of that compute capability: the machine code runs on 9.0 only (require_sm90()).
inline constexpr int kHopperMinor = 0;

/// Why stage `stage` (8 or 9) cannot run `shape`, or empty: stage 9's copies feed wgmma a 16-bit
/// KV cache at d = 64 or 128 directly; stage 8 runs those on its wgmma kernels and the others
/// stage 7 runs (d = 256, an fp8 cache at d = 128 or 256) on stage 7's plan (hopper_pack_plan());
/// an fp8 row at d = 64 is half a 128-byte panel, which a tensor-map copy of its 16-row kernel
/// does not move. A copy moves whole swizzle atoms.
inline std::string hopper_unsupported(const Shape& shape, int stage) {
  const std::string s = "stage " + std::to_string(stage);
  if (stage != 8 && shape.kv_fp8()) return s + " reads a 16-bit KV cache only (its copies feed wgmma directly)";
  if (stage != 8 && shape.head_dim != 64 && shape.head_dim != 128) return s + " is built for d = 64 and 128 only";
  if (shape.head_dim != 64 && shape.head_dim != 128 && shape.head_dim != 256)
    return s + " is built for d = 64, 128 and 256 only";
  if (shape.kv_fp8() && shape.head_dim == 64)
    return s + " reads an fp8 KV cache at d = 128 and 256 only (rows of whole 128-byte panels per tensor-map copy)";
  if (shape.page_size < kSwizzleRows) return s + " copies whole 8-row swizzle atoms: pages of 8 tokens or more";
  return {};
}

/// Calls `f(TypeTag<T>{}, std::integral_constant<int, D>{})` for the batch's 16-bit dtype and
/// head dim D of 64 or 128: the instances stages 8 and 9 build (hopper_unsupported() refuses the
/// rest).
/// @tparam F callable as `f(tag, dim)` with a TypeTag<T> and a std::integral_constant<int, D>
template <typename F>
void dispatch_hopper_dims(const Shape& shape, F&& f) {
  dispatch_dtype(shape.dtype, [&](auto tag) {
    if (shape.head_dim == 64)
      f(tag, std::integral_constant<int, 64>{});
    else
      f(tag, std::integral_constant<int, 128>{});
  });
}

/// Throws the stages' skip reason on any GPU but sm_90.
inline void require_sm90(const DeviceBatch& batch) {
  if (batch.device->cc_major != kHopperMajor || batch.device->cc_minor != kHopperMinor)
    throw Error(ErrorKind::unsupported, "skipped: needs sm_90");
}

/// The planner options both start from: Hopper tiles, the KV split, the batch's SM count and
/// overrides (each stage then sets the CTAs per SM of its kernels).
inline PlannerOptions hopper_planner_options(const DeviceBatch& batch) {
  PlannerOptions options;
  options.tiles = TilePolicy::hopper;
  options.split_kv = true;
  apply_batch_planner(batch, options);
  return options;
}

/// The tensor maps over the K and V pools (hopper/tma.cuh) in the cache's value size: one copy per
/// page, or per KV tile when pages are longer.
class PoolMaps {
 public:
  /// Maps `k_pool` and `v_pool` of `blocks` physical blocks of `shape`'s geometry.
  void set(const void* k_pool, const void* v_pool, int64_t blocks, const Shape& shape) {
    box_rows_ = std::min(shape.page_size, kHopperKvTile);
    const hopper::PoolMapShape s{blocks,    shape.page_size, shape.num_kv_heads, shape.head_dim,
                                 box_rows_, shape.kv_element_bytes()};
    k_ = hopper::make_pool_tensor_map(k_pool, s);
    v_ = hopper::make_pool_tensor_map(v_pool, s);
  }
  /// The tensor map over the K pool.
  const CUtensorMap& k() const { return k_; }
  /// The tensor map over the V pool.
  const CUtensorMap& v() const { return v_; }
  /// Token rows per copy.
  int box_rows() const { return box_rows_; }

 private:
  CUtensorMap k_{};
  CUtensorMap v_{};
  int box_rows_ = 0;
};

}  // namespace patlab::cuda
