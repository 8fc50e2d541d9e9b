/// @file 08_hopper.cu
/// @brief Stage 8, `hopper`: stage 7's plan on Hopper's own engines (sm_90a). Packs of more
/// than 32 rows, up to `--hopper-rows` (TilePolicy::hopper: 64-, 128- or 192-row tiles), run
/// hopper_pack_kernel (hopper_tile.cuh): a producer warp streams the K/V pages by tensor-map
/// copies into an mbarrier ring, one to three consumer warpgroups compute with wgmma. Packs of up
/// to 32 rows keep stage 7's pack kernel and its 16- and 32-row tiles, where a 64-row wgmma tile
/// would compute padding and its larger CTA cost more than it saves (hopper_policy_tile()).
///
/// What is new against stage 7:
///  - rows: a pack holds up to 192 rows (`--hopper-rows`; two or three consumer warpgroups share
///    every K/V stage), so a prefix shared by S queries of group g is read ceil(S g / 192) times
///    instead of ceil(S g / 64);
///  - the copies: the producer warp's lanes each issue a cp.async.bulk.tensor per (page box,
///    64-wide panel); the consumers never compute addresses or wait on their own loads;
///  - the math: wgmma m64n64k16 (QK^T) and m64n{d}k16 (PV, P from registers);
///  - the KV split's wave fill counts the slots of these kernels (occupancy calculator).
/// The rest is stage 7's: direct output, longest pack first, the largest CTAs launched first (its
/// own 128-row tiles one per SM) and gated (LaunchGates), one stream per bucket, the merge.
/// With `--hopper-small-loader tma` (or `tma-kv`: K and V on barriers of their own), packs of up
/// to 16 rows on KV tiles of 64 tokens run tma_pack_kernel (tma_pack_tile.cuh): stage 7's 16-row
/// CTA, its K/V tiles copied by tensor map (the default, `cp.async`, keeps stage 7's pack kernel
/// for them until the H200 has measured them). The shapes its wgmma kernels are not built for, an
/// fp8 KV cache (wgmma's e4m3 would need V K-major) and d = 256 (the register budget), take stage
/// 7's plan and tiles, their 16-row packs on the loader chosen (hopper_pack_plan()). An fp8 cache
/// at d = 64 (half a 128-byte panel a row) is refused by unsupported(), and any GPU but sm_90 by
/// prepare() ("skipped: needs sm_90").
#include <cuda.h>

#include <algorithm>
#include <memory>
#include <string>
#include <type_traits>

#include "patlab/cuda/check.cuh"
#include "patlab/cuda/device_plan.cuh"
#include "patlab/cuda/dispatch.cuh"
#include "patlab/cuda/hopper_stage.cuh"
#include "patlab/cuda/hopper_tile.cuh"
#include "patlab/cuda/kernel_smem.cuh"
#include "patlab/cuda/packed_tile_launch.cuh"
#include "patlab/cuda/plan_stage.cuh"
#include "patlab/cuda/stage.cuh"
#include "patlab/cuda/streams.cuh"
#include "patlab/cuda/tma_pack_tile.cuh"
#include "patlab/error.hpp"
#include "patlab/planner/planner.hpp"

namespace patlab::cuda {

namespace {

/// Calls `f(TypeTag<T>{}, D, kConsumers)` for the stage-8 instance of `rows`-row tiles: 16-bit KV,
/// d 64 or 128, one consumer warpgroup per 64 rows (kHopperTileRows).
/// @tparam F callable as `f(tag, dim, consumers)` with a TypeTag<T>, std::integral_constant<int, D> and
///         std::integral_constant<int, kConsumers>
template <typename F>
void dispatch_hopper(const Shape& shape, int rows, F&& f) {
  static_assert(std::size(kHopperTileRows) == 3, "an instance per tile of kHopperTileRows");
  dispatch_hopper_dims(shape, [&](auto tag, auto dim) {
    if (rows == kHopperTileRows[0])
      f(tag, dim, std::integral_constant<int, 1>{});
    else if (rows == kHopperTileRows[1])
      f(tag, dim, std::integral_constant<int, 2>{});
    else
      f(tag, dim, std::integral_constant<int, 3>{});
  });
}

/// Calls `f(TypeTag<T, KV>{}, std::integral_constant<int, D>{}, std::bool_constant<kSplitKV>{})` for
/// the batch's tma_pack_kernel instance: 16-bit K/V at d 64, 128 or 256, fp8 K/V at d 128 or 256
/// (unsupported() refuses the rest), K and V on barriers of their own with SmallLoader::tma_kv.
/// @tparam F callable as `f(tag, dim, split)` with a TypeTag<T, KV>, a std::integral_constant<int, D>
///         and a std::bool_constant
template <typename F>
void dispatch_tma_pack(const Shape& shape, SmallLoader loader, F&& f) {
  const auto with_split = [&](auto tag, auto dim) {
    if (loader == SmallLoader::tma_kv)
      f(tag, dim, std::true_type{});
    else
      f(tag, dim, std::false_type{});
  };
  dispatch_dtype_kv(shape, [&](auto tag) {
    if (shape.head_dim == 256)
      with_split(tag, std::integral_constant<int, 256>{});
    else if constexpr (sizeof(typename decltype(tag)::kv_type) == 1)
      with_split(tag, std::integral_constant<int, 128>{});
    else if (shape.head_dim == 64)
      with_split(tag, std::integral_constant<int, 64>{});
    else
      with_split(tag, std::integral_constant<int, 128>{});
  });
}

/// The layout of stage 8's CTA of kConsumers consumer warpgroups at head dim D: its stages hold
/// hopper_kv_tile(rows) tokens (128 for the 128-row CTA, 64 for the others).
/// @tparam D head dimension (64 or 128)
/// @tparam kConsumers consumer warpgroups (1, 2 or 3)
template <int D, int kConsumers>
using Stage8Layout = HopperLayout<D, kConsumers, hopper_kv_tile(kHopperGroupRows * kConsumers)>;

/// The kernel instance of a dispatch.
/// @tparam Tag the dispatch's TypeTag<T>: T = Tag::type, the storage type (__half or __nv_bfloat16)
/// @tparam Dim std::integral_constant<int, D>: the head dimension (64 or 128)
/// @tparam Consumers std::integral_constant<int, kConsumers>: consumer warpgroups (1, 2 or 3)
/// @tparam kTails true: the tails instance (packs with leaf tails, TileKernel::hopper_tail)
template <typename Tag, typename Dim, typename Consumers, bool kTails = false>
auto hopper_instance() {
  using T = typename Tag::type;
  using L = Stage8Layout<Dim::value, Consumers::value>;
  return hopper_pack_kernel<T, Dim::value, Consumers::value, L::kKvTile, kTails>;
}

// [hopper-stage]
/// Plans like stage 7 with Hopper tiles, launches hopper_pack_kernel per bucket of 64-, 128- or
/// 192-row tiles with the pools' tensor maps and the pack kernel per bucket of smaller tiles, on
/// one stream per bucket, then the merge.
class HopperStage final : public Stage {
 public:
  std::string unsupported(const Shape& shape) const override { return hopper_unsupported(shape, 8); }

  void prepare(const DeviceBatch& batch) override { prepare_planned(batch); }

  bool planner_options(const DeviceBatch& batch, PlannerOptions& options) const override {
    require_sm90(batch);
    options = hopper_planner_options(batch);
    options.hopper = batch.hopper;  // stage 8's own: stage 9 runs every pack on its kernel
    options.take_leaves = batch.take_leaves;  // unless --no-take-leaves: on the tails instances of both kernels
    options.leaf_tail_rows = batch.leaf_tail_rows;
    options.leaf_tail_min_cut = batch.leaf_tail_min_cut;
    // An fp8 cache or d = 256: stage 7's tiles (hopper_pack_plan()), its 16-row packs on the
    // loader --hopper-small-loader chose.
    const bool pack_plan = hopper_pack_plan(batch.shape);
    if (pack_plan) options.tiles = TilePolicy::table;
    // The wave fill's slots: CTAs per SM of the pack kernel's 16- and 32-row tiles, then of the
    // 64-, 128- and 192-row stage-8 instances (kRowClasses; stage 7's 64-row tile with fp8).
    static_assert(std::size(kRowClasses) == 2 + std::size(kHopperTileRows), "two pack-kernel classes, then stage 8's");
    const int pack_classes = pack_plan ? 3 : 2;
    for (int i = 0; i < pack_classes; ++i)
      options.ctas_per_sm[static_cast<size_t>(i)] = pack_rows_ctas_per_sm(
          batch.shape, kRowClasses[i], options.max_kv_tile, batch.device->smem_per_block_optin);
    const TileShape small =
        fit_tile({kTmaPackRows, options.max_kv_tile}, batch.shape.head_dim, batch.shape.kv_element_bytes());
    if (uses_tma_pack(batch.hopper.small_loader, small))
      options.ctas_per_sm[0] = std::max(configure_tma_pack(batch), 1);
    if (!pack_plan)
      for (size_t i = 0; i < std::size(kHopperTileRows); ++i)
        options.ctas_per_sm[2 + i] = std::max(configure_hopper(batch, kHopperTileRows[i]), 1);
    return true;
  }

  void prepare_with_plan(const DeviceBatch& batch, Plan plan) override {
    require_sm90(batch);
    shape_ = batch.shape;
    pool_blocks_ = batch.host->layout.num_blocks;
    UploadOptions upload;
    upload.direct_output = true;
    upload.longest_first = true;
    upload.bucket_order = BucketLauncher::upload_order(batch, true, BucketOrder::footprint);
    upload.tile_policy = hopper_pack_plan(batch.shape) ? TilePolicy::table : TilePolicy::hopper;
    upload.pack_kernel = false;
    plan_.upload(std::move(plan), batch, upload);
    occupancy_.clear();
    small_loader_ = batch.hopper.small_loader;
    for (const DevicePlan::Bucket& b : plan_.buckets()) {
      if (uses_tma_pack(small_loader_, b.tile)) {
        const int ctas = configure_tma_pack(batch);
        occupancy_ += ", " + b.tile.name() + " (tensor map): " + std::to_string(ctas) + " CTA" +
                      (ctas == 1 ? "" : "s") + "/SM";
        continue;
      }
      if (!is_hopper_tile(b.tile)) {
        configure_pack_tile(shape_, b.tile, batch.device->smem_per_block_optin);
        continue;
      }
      const int ctas = configure_hopper(batch, b.tile.m, b.tile.kernel == TileKernel::hopper_tail);
      occupancy_ += ", " + b.tile.name() + ": " + std::to_string(ctas) + " CTA" + (ctas == 1 ? "" : "s") + "/SM";
    }
    launcher_.prepare(batch, static_cast<int>(plan_.buckets().size()), true, true);
    set_pools(batch.k_pool, batch.v_pool);
  }

  void set_pools(const void* k_pool, const void* v_pool) override {
    plan_.set_pools(k_pool, v_pool);
    // The tensor maps serve the wgmma kernels and the tensor-map 16-row kernel; stage 7's plan on
    // the cp.async loader (hopper_pack_plan() shapes) copies nothing by tensor map.
    if (!hopper_pack_plan(shape_) || small_loader_ != SmallLoader::cp_async)
      maps_.set(k_pool, v_pool, pool_blocks_, shape_);
  }

  void run(cudaStream_t stream) override {
    // Gated or chained as stage 7's buckets (plan_stage.cuh): the 128-row CTAs place theirs first.
    launcher_.run(stream, plan_.buckets(), [&](int i, cudaStream_t s, LaunchLink link) {
      const size_t b = static_cast<size_t>(i);
      const DevicePlan::Bucket& bucket = plan_.buckets()[b];
      const unsigned ctas = static_cast<unsigned>(int64_t{bucket.count} * shape_.num_kv_heads);
      if (uses_tma_pack(small_loader_, bucket.tile)) {
        dispatch_tma_pack(shape_, small_loader_, [&](auto tag, auto dim, auto split) {
          using T = typename decltype(tag)::type;
          using KV = typename decltype(tag)::kv_type;
          constexpr int D = decltype(dim)::value;
          constexpr bool kSplit = decltype(split)::value;
          using L = TmaPackLayout<T, KV, D, kHopperKvTile, kSplit>;
          launch_kernel(tma_pack_kernel<T, KV, D, kHopperKvTile, kSplit>, ctas, L::Warps::kThreads, L::kSmemBytes, s,
                        link, plan_.kernel_args(), plan_.bucket_packs(b), maps_.k(), maps_.v(), maps_.box_rows());
        });
      } else if (!is_hopper_tile(bucket.tile)) {
        plan_.launch(b, s, link);  // the pack kernel (stage 7's): packs of up to 32 rows, short ones of 64
                                   // with --hopper-min-kv
      } else {
        dispatch_hopper(shape_, bucket.tile.m, [&](auto tag, auto dim, auto consumers) {
          using L = Stage8Layout<decltype(dim)::value, decltype(consumers)::value>;
          const auto kernel = bucket.tile.kernel == TileKernel::hopper_tail
                                  ? hopper_instance<decltype(tag), decltype(dim), decltype(consumers), true>()
                                  : hopper_instance<decltype(tag), decltype(dim), decltype(consumers)>();
          launch_kernel(kernel, ctas, L::kThreads, L::kSmemBytes, s, link, plan_.kernel_args(), plan_.bucket_packs(b),
                        maps_.k(), maps_.v(), maps_.box_rows());
        });
      }
    });
    plan_.merge(stream);  // launches nothing when every query was written directly
  }

  int64_t model_bytes() const override { return plan_.traffic_bytes(); }
  std::string notes() const override {
    return plan_.describe() + ", sm_90a kernel (TMA ring, wgmma)" + occupancy_ + launcher_.notes();
  }
  std::vector<DeviceSpan> workspace() const override { return plan_.partials(); }
  PartialSplit half_partial_split() const override { return plan_.half_partial_split(); }

 private:
  /// Raises the shared-memory limit of the stage-8 instance for `rows`-row tiles (its tails
  /// instance with `tails`; or refuses a device that has too little) and returns the CTAs of it one
  /// SM holds (occupancy calculator).
  static int configure_hopper(const DeviceBatch& batch, int rows, bool tails = false) {
    int ctas = 0;
    dispatch_hopper(batch.shape, rows, [&](auto tag, auto dim, auto consumers) {
      using L = Stage8Layout<decltype(dim)::value, decltype(consumers)::value>;
      const auto kernel = tails ? hopper_instance<decltype(tag), decltype(dim), decltype(consumers), true>()
                                : hopper_instance<decltype(tag), decltype(dim), decltype(consumers)>();
      ctas = configure_instance(batch, kernel, L::kThreads, L::kSmemBytes, "stage 8");
    });
    return ctas;
  }

  /// Raises `kernel`'s shared-memory limit to `smem` bytes (or refuses, naming it `what`, a device
  /// that has too little) and returns the CTAs of `threads` threads one SM holds: the setup of
  /// every sm_90a kernel of the stage.
  /// @tparam Kernel a __global__ function pointer
  template <typename Kernel>
  static int configure_instance(const DeviceBatch& batch, Kernel kernel, int threads, int smem,
                                const std::string& what) {
    if (smem > batch.device->smem_per_block_optin)
      throw Error(ErrorKind::unsupported, what + " needs " + std::to_string(smem) + " bytes of shared memory per CTA");
    set_kernel_smem(kernel, smem);
    int ctas = 0;
    PATLAB_CUDA_CHECK(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&ctas, kernel, threads, smem));
    return ctas;
  }

  /// Whether `tile` is the one tma_pack_kernel is built for: 16 rows, kHopperKvTile tokens.
  static bool is_tma_pack_tile(TileShape tile) {
    return tile.kernel == TileKernel::pack && tile.m == kTmaPackRows && tile.n == kHopperKvTile;
  }

  /// Whether stage 8 runs a bucket of `tile` on tma_pack_kernel with `loader`.
  static bool uses_tma_pack(SmallLoader loader, TileShape tile) {
    return loader != SmallLoader::cp_async && is_tma_pack_tile(tile);
  }

  /// Raises the shared-memory limit of tma_pack_kernel for the batch's dtype, head dim and loader
  /// (or refuses a device that has too little) and returns the CTAs of it one SM holds.
  static int configure_tma_pack(const DeviceBatch& batch) {
    int ctas = 0;
    dispatch_tma_pack(batch.shape, batch.hopper.small_loader, [&](auto tag, auto dim, auto split) {
      using T = typename decltype(tag)::type;
      using KV = typename decltype(tag)::kv_type;
      constexpr int D = decltype(dim)::value;
      constexpr bool kSplit = decltype(split)::value;
      using L = TmaPackLayout<T, KV, D, kHopperKvTile, kSplit>;
      ctas = configure_instance(batch, tma_pack_kernel<T, KV, D, kHopperKvTile, kSplit>, L::Warps::kThreads,
                                L::kSmemBytes, "stage 8's 16-row kernel");
    });
    return ctas;
  }

  Shape shape_;
  SmallLoader small_loader_ = SmallLoader::cp_async;  ///< HopperRouting::small_loader of the prepared batch
  int64_t pool_blocks_ = 0;
  DevicePlan plan_;
  BucketLauncher launcher_;
  std::string occupancy_;  ///< ", 64x64: 2 CTAs/SM" per stage-8 bucket (the occupancy calculator)
  PoolMaps maps_;
};
// [hopper-stage]

}  // namespace

/// Stage 8 `hopper` for the registry (stages.def): a HopperStage (sm_90a, wgmma).
std::unique_ptr<Stage> make_stage_hopper() { return std::make_unique<HopperStage>(); }

}  // namespace patlab::cuda
