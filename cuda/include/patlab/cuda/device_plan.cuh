/// @file device_plan.cuh
/// @brief A plan on the GPU: the packs flattened into arrays, one pack list per tile bucket,
/// the partial slots, and the launches that execute it (stages 4-7).
#pragma once

#include <cuda_runtime.h>

#include <cstdint>
#include <string>
#include <vector>

#include "patlab/cuda/buffer.cuh"
#include "patlab/cuda/merge.cuh"
#include "patlab/cuda/packed_tile.cuh"
#include "patlab/cuda/stage.cuh"
#include "patlab/plan.hpp"

namespace patlab::cuda {

/// How a plan is laid out for the kernels.
struct UploadOptions {
  bool direct_output = false;  ///< a query with a single partial is written by its pack, not merged
  bool longest_first = false;  ///< each bucket lists its packs by decreasing KV length
};

/// A plan uploaded for one batch.
class DevicePlan {
 public:
  /// Packs of one tile shape, launched together.
  struct Bucket {
    TileShape tile;
    int offset = 0;      ///< first entry in the bucket pack list
    int count = 0;       ///< packs in the bucket
    int64_t tokens = 0;  ///< KV tokens over the bucket's packs
  };

  /// Validates `plan` against the batch (a fault is an internal error), uploads it, and raises
  /// the shared-memory limit of every tile it uses.
  void upload(const Plan& plan, const DeviceBatch& batch, const UploadOptions& options);
  const std::vector<Bucket>& buckets() const { return buckets_; }
  /// Points the pack kernels at other K/V pools of the same geometry.
  void set_pools(const void* k_pool, const void* v_pool) {
    args_.k_pool = k_pool;
    args_.v_pool = v_pool;
  }
  /// Launches the kernel of bucket `b` on `stream`.
  void launch(size_t b, cudaStream_t stream) const;
  /// Merges the partials of every query that has any into the output.
  void merge(cudaStream_t stream) const;
  /// The partial buffers (o and lse), which every run writes before the merge reads them.
  std::vector<DeviceSpan> partials() const { return {partial_o_.span(), partial_lse_.span()}; }
  /// HBM bytes of this plan: each pack's K/V once per KV head, q gathered per pack, partials
  /// written and read back, output written.
  int64_t traffic_bytes() const { return traffic_bytes_; }
  /// e.g. "412 packs x 8 KV heads in 3 buckets (64x128: 40, 16x32: 370, ...), 1300 partials".
  std::string describe() const;

 private:
  Shape shape_;
  PackKernelArgs args_;
  std::vector<Bucket> buckets_;
  DeviceBuffer<int32_t> query_begin_, queries_, slots_, block_begin_, blocks_, kv_len_, bucket_packs_;
  DeviceBuffer<int32_t> offsets_, merge_queries_;
  DeviceBuffer<float> partial_o_, partial_lse_;
  int merge_count_ = 0;
  int64_t partials_ = 0;
  int64_t packs_ = 0;
  int64_t traffic_bytes_ = 0;
};

}  // namespace patlab::cuda

#include <memory>

#include "patlab/cuda/streams.cuh"
#include "patlab/planner.hpp"

namespace patlab::cuda {

/// How a plan-executing stage (4-7) plans, lays out and launches its work.
struct PlanStageConfig {
  PlannerOptions planner;   ///< tiles and KV split; `sms` is filled from the device
  UploadOptions upload;     ///< direct output, pack order
  bool streams = false;     ///< one stream per bucket (else the buckets run in sequence)
};

/// A stage that plans the batch on the host, uploads the plan and executes it: its pack
/// kernels (one launch per tile bucket), then the merge.
class PlanStage final : public Stage {
 public:
  explicit PlanStage(const PlanStageConfig& config) : config_(config) {}

  // [plan-stage-prepare]
  void prepare(const DeviceBatch& batch) override {
    PlannerOptions options;
    planner_options(batch, options);
    prepare_with_plan(batch, make_plan(batch.host->layout, options));
  }

  bool planner_options(const DeviceBatch& batch, PlannerOptions& options) const override {
    options = config_.planner;
    options.sms = batch.device->sm_count;
    if (batch.max_kv_tile > 0) options.max_kv_tile = batch.max_kv_tile;
    return true;
  }

  void prepare_with_plan(const DeviceBatch& batch, const Plan& plan) override {
    plan_.upload(plan, batch, config_.upload);
    // Streams are made once and kept while they suffice (a serve loop prepares every step).
    const int buckets = static_cast<int>(plan_.buckets().size());
    if (config_.streams && (!streams_ || streams_->size() < buckets)) streams_ = std::make_unique<StreamFork>(buckets);
  }
  // [plan-stage-prepare]

  void set_pools(const void* k_pool, const void* v_pool) override { plan_.set_pools(k_pool, v_pool); }

  // [plan-stage-run]
  void run(cudaStream_t stream) override {
    if (streams_) {
      streams_->fork(stream);
      for (size_t b = 0; b < plan_.buckets().size(); ++b) plan_.launch(b, streams_->stream(static_cast<int>(b)));
      streams_->join(stream);
    } else {
      for (size_t b = 0; b < plan_.buckets().size(); ++b) plan_.launch(b, stream);
    }
    plan_.merge(stream);  // launches nothing when every query was written directly
  }
  // [plan-stage-run]

  int64_t model_bytes() const override { return plan_.traffic_bytes(); }
  std::string notes() const override { return plan_.describe() + (streams_ ? ", one stream per bucket" : ""); }
  std::vector<DeviceSpan> workspace() const override { return plan_.partials(); }

 private:
  PlanStageConfig config_;
  DevicePlan plan_;
  std::unique_ptr<StreamFork> streams_;
};

}  // namespace patlab::cuda
