/// @file 08_hopper.cu
/// @brief DRAFT stage 8, `hopper` (not in stages.def; not yet run on a GPU): the planner's
/// packs on sm_90a, with tensor-map copies of the K/V pages into an mbarrier ring, a producer
/// warpgroup and wgmma consumer warpgroups (hopper_tile.cuh).
///
/// The plan is stage 4's (one fixed 64 x 64 tile per pack, no KV split, every query merged),
/// so the draft is checked against the kernel it should match first; the 128- and 192-row tiles
/// need the planner's row options (planner/tile_budget.hpp) to grow past 64, which is the next
/// step of issue 12. The kernel has the pack kernel's arguments and output contract, so
/// DevicePlan uploads the plan and runs the merge unchanged.
///
/// The stage is made known to make_stage() only by its test (tests/gpu/test_hopper_stage.cpp,
/// suite hopper-draft) through register_draft_stage(); it joins the registry when that passes.
#include <cuda.h>

#include <algorithm>
#include <memory>
#include <string>

#include "patlab/cuda/check.cuh"
#include "patlab/cuda/device_plan.cuh"
#include "patlab/cuda/dispatch.cuh"
#include "patlab/cuda/hopper/tma.cuh"
#include "patlab/cuda/hopper_tile.cuh"
#include "patlab/cuda/stage.cuh"
#include "patlab/error.hpp"

namespace patlab::cuda {

namespace {

/// KV tokens per tile of the draft, and its rows (one consumer warpgroup).
constexpr int kDraftTileTokens = 64;
constexpr int kDraftConsumers = 1;
/// Compute capability of the sm_90a machine code.
constexpr int kHopperMajor = 9;

/// Calls `f(TypeTag<T>{}, D)` for the draft's instances: 16-bit KV, d 64 or 128.
template <typename F>
void dispatch_hopper(const Shape& shape, F&& f) {
  dispatch_dtype(shape.dtype, [&](auto tag) {
    if (shape.head_dim == 64)
      f(tag, std::integral_constant<int, 64>{});
    else
      f(tag, std::integral_constant<int, 128>{});
  });
}

// [hopper-stage]
/// Plans like stage 4, launches hopper_pack_kernel per bucket with the pools' tensor maps.
class HopperStage final : public Stage {
 public:
  std::string unsupported(const Shape& shape) const override {
    if (shape.kv_fp8()) return "the draft reads a 16-bit KV cache only";
    if (shape.head_dim != 64 && shape.head_dim != 128) return "the draft is built for d = 64 and 128 only";
    if (shape.page_size < kSwizzleRows) return "the draft copies whole 8-row swizzle atoms: pages of 8 tokens or more";
    return {};
  }

  void prepare(const DeviceBatch& batch) override {
    if (batch.device->cc_major != kHopperMajor || batch.device->cc_minor != 0)
      throw Error(ErrorKind::unsupported, "skipped: needs sm_90");
    PlannerOptions options;
    planner_options(batch, options);
    prepare_with_plan(batch, make_plan(batch.host->layout, options));
  }

  bool planner_options(const DeviceBatch& batch, PlannerOptions& options) const override {
    options.tiles = TilePolicy::fixed;
    options.fixed_tile = TileShape{kHopperGroupRows * kDraftConsumers, kDraftTileTokens};
    options.split_kv = false;
    options.sms = batch.device->sm_count;
    if (batch.max_kv_tile > 0) options.max_kv_tile = batch.max_kv_tile;
    return true;
  }

  void prepare_with_plan(const DeviceBatch& batch, const Plan& plan) override {
    shape_ = batch.shape;
    pool_blocks_ = batch.host->layout.num_blocks;
    plan_.upload(plan, batch, UploadOptions{});
    set_pools(batch.k_pool, batch.v_pool);
    dispatch_hopper(shape_, [&](auto tag, auto dim) {
      using T = typename decltype(tag)::type;
      constexpr int D = decltype(dim)::value;
      using L = HopperLayout<D, kDraftConsumers, kDraftTileTokens>;
      if (L::kSmemBytes > batch.device->smem_per_block_optin)
        throw Error(ErrorKind::unsupported,
                    "the draft needs " + std::to_string(L::kSmemBytes) + " bytes of shared memory");
      PATLAB_CUDA_CHECK(cudaFuncSetAttribute(hopper_pack_kernel<T, D, kDraftConsumers, kDraftTileTokens>,
                                             cudaFuncAttributeMaxDynamicSharedMemorySize, L::kSmemBytes));
    });
  }

  void set_pools(const void* k_pool, const void* v_pool) override {
    plan_.set_pools(k_pool, v_pool);
    const hopper::PoolMapShape s{pool_blocks_, shape_.page_size, shape_.num_kv_heads, shape_.head_dim, box_rows()};
    k_map_ = hopper::make_pool_tensor_map(k_pool, s);
    v_map_ = hopper::make_pool_tensor_map(v_pool, s);
  }

  void run(cudaStream_t stream) override {
    for (size_t b = 0; b < plan_.buckets().size(); ++b) {
      const int count = plan_.buckets()[b].count;
      if (count == 0) continue;
      const unsigned ctas = static_cast<unsigned>(int64_t{count} * shape_.num_kv_heads);
      dispatch_hopper(shape_, [&](auto tag, auto dim) {
        using T = typename decltype(tag)::type;
        constexpr int D = decltype(dim)::value;
        using L = HopperLayout<D, kDraftConsumers, kDraftTileTokens>;
        hopper_pack_kernel<T, D, kDraftConsumers, kDraftTileTokens><<<ctas, L::kThreads, L::kSmemBytes, stream>>>(
            plan_.kernel_args(), plan_.bucket_packs(b), k_map_, v_map_, box_rows());
        PATLAB_CUDA_CHECK_LAUNCH();
      });
    }
    plan_.merge(stream);
  }

  int64_t model_bytes() const override { return plan_.traffic_bytes(); }
  std::string notes() const override { return plan_.describe() + ", DRAFT sm_90a kernel (TMA ring, wgmma)"; }
  std::vector<DeviceSpan> workspace() const override { return plan_.partials(); }

 private:
  /// Token rows per tensor-map copy: a page, or a tile when pages are longer.
  int box_rows() const { return std::min(shape_.page_size, kDraftTileTokens); }

  Shape shape_;
  int64_t pool_blocks_ = 0;
  DevicePlan plan_;
  CUtensorMap k_map_{};
  CUtensorMap v_map_{};
};
// [hopper-stage]

}  // namespace

std::unique_ptr<Stage> make_stage_hopper() { return std::make_unique<HopperStage>(); }

}  // namespace patlab::cuda
