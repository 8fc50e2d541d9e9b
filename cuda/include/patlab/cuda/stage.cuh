/// @file stage.cuh
/// @brief What every GPU stage implements, and the batch it runs on.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "patlab/cuda/buffer.cuh"
#include "patlab/gpu.hpp"
#include "patlab/model/kv_cache.hpp"
#include "patlab/model/traffic.hpp"
#include "patlab/planner/plan.hpp"
#include "patlab/planner/planner.hpp"

namespace patlab::cuda {

/// The batch as it lies on the GPU (device pointers), plus the host copy for planning.
struct DeviceBatch {
  /// The batch's shape: heads, head dim, page size, dtypes.
  Shape shape;
  /// Requests in the batch (rows of q, block_table, lengths and out).
  int requests = 0;
  int table_stride = 0;                 ///< entries per row of block_table (the longest table)
  const void* q = nullptr;              ///< [requests, Hq, d]
  const void* k_pool = nullptr;         ///< [blocks, page, Hkv, d] in shape.kv_dtype
  const void* v_pool = nullptr;         ///< [blocks, page, Hkv, d] in shape.kv_dtype
  float k_scale = 1.0f;                 ///< per-tensor K scale (fp8 KV cache; 1 otherwise)
  float v_scale = 1.0f;                 ///< per-tensor V scale (fp8 KV cache; 1 otherwise)
  const int32_t* block_table = nullptr; ///< [requests, table_stride], padded with -1
  const int32_t* lengths = nullptr;     ///< [requests]
  void* out = nullptr;                  ///< [requests, Hq, d]
  const Workload* host = nullptr;       ///< the same batch on the host (block tables, lengths)
  /// The GPU the batch runs on (SM count, shared memory, compute capability).
  const gpu::DeviceInfo* device = nullptr;
  int max_kv_tile = 0;                  ///< planner's cap on KV tiles for stages 5-7 (0: default)
  int fill_window_waves = 0;            ///< waves within which stages 7-8 price wave-fill cuts (0: default)
  int max_cluster = kStagesMaxCluster;  ///< stage 9's largest cluster size (PlannerOptions::max_cluster)
  gpu::ClusterMerge cluster_merge = gpu::kDefaultClusterMerge;  ///< stage 9: where it merges
  HopperRouting hopper = kStage8Routing;  ///< stage 8: PlannerOptions::hopper
  gpu::BucketLaunch bucket_launch = gpu::BucketLaunch::chain;  ///< stages 7-8: how the buckets start
  bool take_leaves = kStagesTakeLeaves;  ///< stages 7-8: PlannerOptions::take_leaves (leaf tails; false: --no-take-leaves)
  int leaf_tail_rows = kLeafTailRows;           ///< stages 7-8: PlannerOptions::leaf_tail_rows
  double leaf_tail_min_cut = kTailMinCtaCut;    ///< stages 7-8: PlannerOptions::leaf_tail_min_cut
  int group_rows = 0;  ///< stage 10: its kernel instance's row cap (16 or 64; 0: its model chooses)
  /// stages 4-9: partials' o stored in the output's 16-bit type (DevicePlan; the default), or
  /// fp32 (`--fp32-partials`)
  bool half_partials = traffic::kStagesHalfPartials;
};

/// What the device and the command line set in a planning stage's options: the SM count, the KV
/// tile cap and wave-fill window where the batch overrides them (non-zero), and stage 9's largest
/// cluster size (kStagesMaxCluster unless set).
inline void apply_batch_planner(const DeviceBatch& batch, PlannerOptions& options) {
  options.sms = batch.device->sm_count;
  if (batch.max_kv_tile > 0) options.max_kv_tile = batch.max_kv_tile;
  if (batch.fill_window_waves > 0) options.fill_window_waves = batch.fill_window_waves;
  options.max_cluster = batch.max_cluster;
}

/// One stage of the tutorial: a way to compute decode attention on the GPU.
class Stage {
 public:
  virtual ~Stage() = default;
  /// Why this stage cannot run `shape`, or empty. Shapes that fail Shape::validate() never get here.
  virtual std::string unsupported(const Shape& shape) const {
    (void)shape;
    return {};
  }
  /// Plans the launch for `batch` (host work, uploads, workspace). Called once per workload.
  virtual void prepare(const DeviceBatch& batch) = 0;
  /// The planner options this stage plans `batch` with into `options`; false for stages that
  /// execute no plan (then prepare_with_plan() ignores the plan).
  virtual bool planner_options(const DeviceBatch& batch, PlannerOptions& options) const {
    (void)batch;
    (void)options;
    return false;
  }
  /// Prepares for `batch` with a plan made elsewhere (the serve loop's incremental planner)
  /// instead of planning; `plan` must be valid for batch.host->layout. Stages without a plan
  /// just prepare().
  virtual void prepare_with_plan(const DeviceBatch& batch, Plan plan) {
    (void)plan;
    prepare(batch);
  }
  /// Points the prepared launch at other K/V pools of the same geometry (another layer's).
  virtual void set_pools(const void* k_pool, const void* v_pool) = 0;
  /// Enqueues the whole computation on `stream`, writing batch.out. Never allocates or
  /// synchronises, so that it can be captured in a CUDA graph.
  virtual void run(cudaStream_t stream) = 0;
  /// Bytes this stage moves through HBM by its access pattern (its traffic model).
  virtual int64_t model_bytes() const = 0;
  /// One line about the launch (grid, splits, buckets).
  virtual std::string notes() const { return {}; }
  /// The workspace a run writes before it reads it (partial o and lse): poisoned with NaN
  /// before every checked run, so a slot no kernel writes reaches the merge as NaN instead of
  /// last run's finite data. Memory a stage needs in a given state when a run starts (a counter
  /// it expects zeroed) must not be listed here. Empty for stages without a workspace.
  virtual std::vector<DeviceSpan> workspace() const { return {}; }
  /// A stage that stores its partials in 16 bits (DeviceBatch::half_partials): per request, the
  /// keys of each partial (plan_partial_split() of its plan), which the check's emulation rounds
  /// as the stage does (reference_for_partials()). Empty for fp32 partials or none.
  virtual PartialSplit half_partial_split() const { return {}; }

 protected:
  /// prepare() of a stage that plans: its planner_options(), the plan of the batch's layout under
  /// them, and prepare_with_plan() of that plan.
  void prepare_planned(const DeviceBatch& batch) {
    PlannerOptions options;
    planner_options(batch, options);
    prepare_with_plan(batch, make_plan(batch.host->layout, options));
  }
};

/// Poisons the stage's workspace (Stage::workspace()) on `stream`.
inline void poison_workspace(const Stage& stage, cudaStream_t stream) {
  for (const DeviceSpan& span : stage.workspace()) poison(span, stream);
}

/// A new stage object for `slug`, or nullptr if the registry has no GPU stage of that name.
std::unique_ptr<Stage> make_stage(const std::string& slug);

}  // namespace patlab::cuda
