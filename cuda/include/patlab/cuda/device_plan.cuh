/// @file device_plan.cuh
/// @brief A plan on the GPU: the packs flattened into arrays, one pack list per tile bucket,
/// the partial slots, and the launches that execute it (stages 4-7; plan_stage.cuh wraps it
/// into a Stage).
#pragma once

#include <cuda_runtime.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "patlab/cuda/buffer.cuh"
#include "patlab/cuda/merge.cuh"
#include "patlab/cuda/packed_tile_launch.cuh"
#include "patlab/cuda/stage.cuh"
#include "patlab/planner/plan.hpp"
#include "patlab/planner/planner.hpp"

namespace patlab::cuda {

/// How a plan is laid out for the kernels.
struct UploadOptions {
  bool direct_output = false;  ///< a query with a single partial is written by its pack, not merged
  bool longest_first = false;  ///< each bucket lists its packs by decreasing KV length
  BucketOrder bucket_order = BucketOrder::appearance;  ///< the buckets' launch order (bucket_launch_order())
  TilePolicy tile_policy = TilePolicy::table;  ///< the policy the plan's tiles come from (stage 8: hopper)
  bool pack_kernel = true;     ///< raise the pack kernel's shared-memory limit for each bucket's tile
                               ///< (false: a stage with a kernel of its own, stage 8)
};

/// A plan uploaded for one batch.
class DevicePlan {
 public:
  /// Packs of one tile shape, launched together.
  struct Bucket {
    /// The tile shape of every pack in the bucket.
    TileShape tile;
    int offset = 0;      ///< first entry in the bucket pack list
    int count = 0;       ///< packs in the bucket
    int64_t tokens = 0;  ///< KV tokens over the bucket's packs
    int ctas_per_sm = 0; ///< with the footprint or chain order: the host's estimate of its CTAs per SM
                         ///< (estimate_tile_ctas_per_sm()); 0 otherwise
  };

  /// Validates `plan` against the batch (a fault is an internal error), uploads it, raises the
  /// shared-memory limit of every tile it uses, and keeps it (plan()).
  void upload(Plan plan, const DeviceBatch& batch, const UploadOptions& options);
  /// The uploaded plan.
  const Plan& plan() const { return plan_; }
  /// The uploaded plan's buckets, one per tile shape, in launch order (UploadOptions::bucket_order).
  const std::vector<Bucket>& buckets() const { return buckets_; }
  /// Points the pack kernels at other K/V pools of the same geometry.
  void set_pools(const void* k_pool, const void* v_pool) {
    args_.k_pool = k_pool;
    args_.v_pool = v_pool;
  }
  /// The pack kernels' arguments, for a stage that launches a kernel of its own over the plan
  /// with the same contract (stage 8, hopper_tile.cuh).
  const PackKernelArgs& kernel_args() const { return args_; }
  /// The pack list of bucket `b` on the device (its count is buckets()[b].count).
  const int32_t* bucket_packs(size_t b) const { return bucket_packs_.get() + buckets_.at(b).offset; }
  /// Launches the kernel of bucket `b` on `stream`, tied to the launches around it as `link` says
  /// (launch_pack_tile()).
  void launch(size_t b, cudaStream_t stream, LaunchLink link = {}) const;
  /// Merges the partials of every query that has any into the output.
  void merge(cudaStream_t stream) const;
  /// Where the kernels write partials, with each request's first slot: what the merge reads
  /// (stage 9 merges inside its attention kernel from it).
  PartialsView partials_view() const { return {partial_o_.get(), partial_lse_.get(), offsets_.get(), half_partials_}; }
  /// The partial buffers (o and lse), which every run writes before the merge reads them.
  std::vector<DeviceSpan> partials() const { return {partial_o_.span(), partial_lse_.span()}; }
  /// With 16-bit partials, each request's partials' keys (plan_partial_split() of the uploaded
  /// plan: Stage::half_partial_split()), cut when first asked (only a checked run asks); empty
  /// with fp32 partials.
  const PartialSplit& half_partial_split() const;
  /// HBM bytes of this plan: each pack's K/V once per KV head, q gathered per pack, partials
  /// written and read back, output written.
  int64_t traffic_bytes() const { return traffic_bytes_; }
  /// e.g. "412 packs x 8 KV heads in 3 buckets (64x128: 40, 16x32: 370, ...), 1300 partials".
  std::string describe() const;

 private:
  Shape shape_;
  PackKernelArgs args_;
  std::vector<Bucket> buckets_;
  DevicePackArrays arrays_;
  DeviceBuffer<int32_t> bucket_packs_;
  DeviceBuffer<int32_t> offsets_, merge_queries_;
  DeviceBuffer<float> partial_o_, partial_lse_;
  int merge_count_ = 0;
  bool half_partials_ = false;  ///< partial o in the output's 16-bit type (DeviceBatch::half_partials)
  Plan plan_;                   ///< the uploaded plan
  std::vector<int32_t> lengths_;                ///< the batch's request lengths, for the cut
  mutable std::optional<PartialSplit> half_split_;  ///< the cut, once asked for (half_partial_split())
  int64_t partials_ = 0;
  int64_t packs_ = 0;
  int64_t traffic_bytes_ = 0;
};

}  // namespace patlab::cuda
