/// @file plan_stage.cuh
/// @brief PlanStage: the Stage of stages 4-7, which plans the batch on the host, uploads the
/// plan (DevicePlan) and executes it; each of those stages is one PlanStageConfig.
#pragma once

#include <iterator>
#include <memory>
#include <string>
#include <vector>

#include "patlab/cuda/device_plan.cuh"
#include "patlab/cuda/packed_tile_launch.cuh"
#include "patlab/cuda/stage.cuh"
#include "patlab/cuda/streams.cuh"
#include "patlab/planner/planner.hpp"

namespace patlab::cuda {

/// Compute capability major from which a launch completion event fires when a grid's CTAs have
/// all begun (cudaLaunchAttributeLaunchCompletionEvent): sm_90.
inline constexpr int kLaunchGateMajor = 9;

/// How a plan-executing stage (4-7) plans, lays out and launches its work.
struct PlanStageConfig {
  PlannerOptions planner;   ///< tiles and KV split; `sms` is filled from the device
  UploadOptions upload;     ///< direct output, pack order
  bool streams = false;     ///< one stream per bucket (else the buckets run in sequence)
  bool ordered = false;     ///< the buckets start largest CTAs first on sm_90, gated or chained as
                            ///< DeviceBatch::bucket_launch says (BucketLauncher; needs streams)
  bool leaf_tails = false;  ///< takes leaf tails when the batch asks (DeviceBatch::take_leaves; stage 7)
};

// [plan-stage-gate]
/// With `gates`: makes stream `s` of bucket `b` wait until every earlier bucket of larger CTAs
/// (fewer per SM, DevicePlan::Bucket::ctas_per_sm) has begun all its CTAs, and returns the event
/// bucket `b`'s launch is to fire for the later buckets of smaller CTAs (nullptr if none waits
/// on it, or in a capture, where the gates stand aside: LaunchGates). Stages 7 and 8.
inline cudaEvent_t gate_bucket(LaunchGates& gates, const std::vector<DevicePlan::Bucket>& buckets, int b,
                               cudaStream_t s) {
  const size_t i = static_cast<size_t>(b);
  bool waited_on = false;
  for (size_t j = 0; j < buckets.size(); ++j) {
    if (j < i && buckets[j].ctas_per_sm < buckets[i].ctas_per_sm) gates.wait(s, static_cast<int>(j));
    if (j > i && buckets[i].ctas_per_sm < buckets[j].ctas_per_sm) waited_on = true;
  }
  return gates.fires(b, waited_on);
}
// [plan-stage-gate]

// [bucket-launcher]
/// How a plan-executing stage starts its tile buckets: in sequence on the caller's stream
/// (stages 4-5), a stream each (stage 6), and for the stages that order their buckets (7-8) as
/// DeviceBatch::bucket_launch says: a stream each with launch gates (BucketLaunch::gates), or
/// chained on the caller's stream (BucketLaunch::chain, the buckets in BucketOrder::chain). Both
/// need sm_90 (kLaunchGateMajor); before it the ordered stages take a stream each, ungated. Streams
/// and gates are made once and kept while they suffice (a serve loop prepares every step).
class BucketLauncher {
 public:
  /// True when a stage that orders its buckets (`ordered`) chains them for `batch`; its upload
  /// then lays them out in BucketOrder::chain.
  static bool chains(const DeviceBatch& batch, bool ordered) {
    return ordered && batch.bucket_launch == gpu::BucketLaunch::chain && batch.device->cc_major >= kLaunchGateMajor;
  }

  /// The bucket order a stage's upload lays its buckets out in: BucketOrder::chain where the
  /// stage chains them for `batch` (chains()), else `order`, the stage's own.
  static BucketOrder upload_order(const DeviceBatch& batch, bool ordered, BucketOrder order) {
    return chains(batch, ordered) ? BucketOrder::chain : order;
  }

  /// For a plan of `buckets` buckets: `streams` asks for a stream per bucket, `ordered` marks a
  /// stage that orders its buckets (gates or chain, from `batch`).
  void prepare(const DeviceBatch& batch, int buckets, bool streams, bool ordered) {
    chain_ = chains(batch, ordered) && buckets > 1;
    streams_wanted_ = streams && !chain_;
    if (streams_wanted_ && (!streams_ || streams_->size() < buckets)) streams_ = std::make_unique<StreamFork>(buckets);
    const bool gated = ordered && streams_wanted_ && batch.device->cc_major >= kLaunchGateMajor && buckets > 1;
    if (!gated)
      gates_.reset();
    else if (!gates_ || gates_->size() < buckets)
      gates_ = std::make_unique<LaunchGates>(buckets);
  }

  /// Enqueues `launch(b, stream, link)` for every bucket b of `buckets` (those without packs are
  /// skipped): joined back into `stream` when they run on streams of their own.
  /// @tparam Launch callable as launch(int b, cudaStream_t s, LaunchLink link): enqueues bucket b on s
  template <typename Launch>
  void run(cudaStream_t stream, const std::vector<DevicePlan::Bucket>& buckets, Launch&& launch) {
    const int count = static_cast<int>(buckets.size());
    if (chain_) {
      // Each bucket behind the one before it: it may begin once that one has begun all its CTAs.
      bool first = true;
      for (int b = 0; b < count; ++b) {
        if (buckets[static_cast<size_t>(b)].count == 0) continue;
        launch(b, stream, LaunchLink{nullptr, !first});
        first = false;
      }
      return;
    }
    if (gates_) gates_->begin(stream);
    run_on_streams(streams_wanted_ ? streams_.get() : nullptr, stream, count, [&](int b, cudaStream_t s) {
      if (buckets[static_cast<size_t>(b)].count == 0) return;
      launch(b, s, LaunchLink{gates_ ? gate_bucket(*gates_, buckets, b, s) : nullptr, false});
    });
  }

  /// ", chained", ", one stream per bucket, gated" and so on, for a stage's notes.
  std::string notes() const {
    if (chain_) return ", chained (programmatic dependent launch)";
    return std::string(streams_wanted_ ? ", one stream per bucket" : "") + (gates_ ? ", gated" : "");
  }

 private:
  bool chain_ = false;
  bool streams_wanted_ = false;
  std::unique_ptr<StreamFork> streams_;
  std::unique_ptr<LaunchGates> gates_;
};
// [bucket-launcher]

/// A stage that plans the batch on the host, uploads the plan and executes it: its pack
/// kernels (one launch per tile bucket), then the merge.
class PlanStage final : public Stage {
 public:
  /// A stage that plans, uploads and launches as `config` says (kept by copy).
  explicit PlanStage(const PlanStageConfig& config) : config_(config) {}

  // [plan-stage-prepare]
  void prepare(const DeviceBatch& batch) override { prepare_planned(batch); }

  bool planner_options(const DeviceBatch& batch, PlannerOptions& options) const override {
    options = config_.planner;
    apply_batch_planner(batch, options);
    options.take_leaves = config_.leaf_tails && batch.take_leaves;
    options.leaf_tail_rows = batch.leaf_tail_rows;
    options.leaf_tail_min_cut = batch.leaf_tail_min_cut;
    // [plan-stage-occupancy]
    // The wave fill's slots: CTAs per SM of the instance that runs long packs of each row count.
    if (options.split_kv && options.fill_waves)
      for (size_t i = 0; i < std::size(kTileRowOptions); ++i)
        options.ctas_per_sm[i] = pack_rows_ctas_per_sm(batch.shape, kTileRowOptions[i], options.max_kv_tile,
                                                       batch.device->smem_per_block_optin);
    // [plan-stage-occupancy]
    return true;
  }

  void prepare_with_plan(const DeviceBatch& batch, Plan plan) override {
    UploadOptions upload = config_.upload;
    upload.bucket_order = BucketLauncher::upload_order(batch, config_.ordered, upload.bucket_order);
    plan_.upload(std::move(plan), batch, upload);
    launcher_.prepare(batch, static_cast<int>(plan_.buckets().size()), config_.streams, config_.ordered);
  }
  // [plan-stage-prepare]

  void set_pools(const void* k_pool, const void* v_pool) override { plan_.set_pools(k_pool, v_pool); }

  // [plan-stage-run]
  void run(cudaStream_t stream) override {
    // in sequence (stages 4-5), one stream per bucket (stage 6), gated or chained (stage 7)
    launcher_.run(stream, plan_.buckets(),
                  [&](int b, cudaStream_t s, LaunchLink link) { plan_.launch(static_cast<size_t>(b), s, link); });
    plan_.merge(stream);  // launches nothing when every query was written directly
  }
  // [plan-stage-run]

  int64_t model_bytes() const override { return plan_.traffic_bytes(); }

  std::string notes() const override {
    return plan_.describe() + launcher_.notes();
  }
  std::vector<DeviceSpan> workspace() const override { return plan_.partials(); }
  PartialSplit half_partial_split() const override { return plan_.half_partial_split(); }

 private:
  PlanStageConfig config_;
  DevicePlan plan_;
  BucketLauncher launcher_;
};

}  // namespace patlab::cuda
