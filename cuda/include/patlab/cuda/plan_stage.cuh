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
  bool gated = false;       ///< eager: a bucket starts once every bucket of larger CTAs launched before it
                            ///< has begun all its CTAs (sm_90 launch completion events; needs streams)
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

/// Keeps `gates` for a plan of `buckets` buckets on streams of their own when the stage gates
/// them (`wanted`) and they apply: launch completion needs sm_90 (kLaunchGateMajor), and one bucket
/// has nothing to wait for. Otherwise drops them (the buckets are launched ungated). Made once and
/// kept while they suffice, as the streams (a serve loop prepares every step). Stages 7 and 8.
inline void keep_gates(std::unique_ptr<LaunchGates>& gates, bool wanted, const gpu::DeviceInfo& device,
                       int buckets) {
  if (!wanted || device.cc_major < kLaunchGateMajor || buckets < 2)
    gates.reset();
  else if (!gates || gates->size() < buckets)
    gates = std::make_unique<LaunchGates>(buckets);
}

/// A stage that plans the batch on the host, uploads the plan and executes it: its pack
/// kernels (one launch per tile bucket), then the merge.
class PlanStage final : public Stage {
 public:
  explicit PlanStage(const PlanStageConfig& config) : config_(config) {}

  // [plan-stage-prepare]
  void prepare(const DeviceBatch& batch) override { prepare_planned(batch); }

  bool planner_options(const DeviceBatch& batch, PlannerOptions& options) const override {
    options = config_.planner;
    apply_batch_planner(batch, options);
    // [plan-stage-occupancy]
    // The wave fill's slots: CTAs per SM of the instance that runs long packs of each row count.
    if (options.split_kv && options.fill_waves)
      for (size_t i = 0; i < std::size(kTileRowOptions); ++i)
        options.ctas_per_sm[i] = pack_rows_ctas_per_sm(batch.shape, kTileRowOptions[i], options.max_kv_tile,
                                                       batch.device->smem_per_block_optin);
    // [plan-stage-occupancy]
    return true;
  }

  void prepare_with_plan(const DeviceBatch& batch, const Plan& plan) override {
    plan_.upload(plan, batch, config_.upload);
    // Streams are made once and kept while they suffice (a serve loop prepares every step).
    const int buckets = static_cast<int>(plan_.buckets().size());
    if (config_.streams && (!streams_ || streams_->size() < buckets)) streams_ = std::make_unique<StreamFork>(buckets);
    keep_gates(gates_, config_.gated && config_.streams, *batch.device, buckets);
  }
  // [plan-stage-prepare]

  void set_pools(const void* k_pool, const void* v_pool) override { plan_.set_pools(k_pool, v_pool); }

  // [plan-stage-run]
  void run(cudaStream_t stream) override {
    // one stream per bucket (stages 6-7), else the buckets in sequence on the caller's stream
    // (stage 7: gated, so the buckets of larger CTAs place theirs first)
    if (gates_) gates_->begin(stream);
    run_on_streams(streams_.get(), stream, static_cast<int>(plan_.buckets().size()), [&](int b, cudaStream_t s) {
      plan_.launch(static_cast<size_t>(b), s, gates_ ? gate_bucket(*gates_, plan_.buckets(), b, s) : nullptr);
    });
    plan_.merge(stream);  // launches nothing when every query was written directly
  }
  // [plan-stage-run]

  int64_t model_bytes() const override { return plan_.traffic_bytes(); }

  std::string notes() const override {
    return plan_.describe() + (streams_ ? ", one stream per bucket" : "") + (gates_ ? ", gated" : "");
  }
  std::vector<DeviceSpan> workspace() const override { return plan_.partials(); }

 private:
  PlanStageConfig config_;
  DevicePlan plan_;
  std::unique_ptr<StreamFork> streams_;
  std::unique_ptr<LaunchGates> gates_;
};

}  // namespace patlab::cuda
