/// @file stage_traffic.hpp
/// @brief The bytes each GPU stage of the registry moves on a layout, computed on the host from
/// the traffic model (model/traffic.hpp): what `patlab bench` and `patlab compare` print, with a
/// predicted time, when there is no CUDA device.
///
/// Stages 1-2 read per request or per query head; stage 3 cuts requests into chunks by
/// chunk_tokens(); stage 10 forms PackInfer's groups (packinfer/groups.hpp) on the SMs x its
/// group kernel's estimated CTAs per SM (packinfer/group_kernel.hpp); stage 9 plans as stage 8
/// on its 128-row CTA's slots and reads each pack group's range once per cluster
/// (planner/cluster.hpp); stages 4-8 run make_plan() with their kernel file's planner configuration
/// (cuda/stages/04_packed.cu ... 07_pat.cu; plan_stage_config() repeats it on the host, and the
/// GPU tests check that the device's `model_bytes` equals stage_traffic() for every stage whose
/// plan does not depend on the occupancy calculator).
#pragma once

#include <array>
#include <cstdint>
#include <string>

#include "patlab/model/kv_cache.hpp"
#include "patlab/model/traffic.hpp"
#include "patlab/planner/planner.hpp"

namespace patlab {

/// What the host assumes about the GPU that the stages would run on.
struct StageTrafficOptions {
  int sms = kDefaultSms;                      ///< SMs: stage 3's CTA slots and stage 7's split target
  int resident_ctas_per_sm = kSplitCtasPerSm; ///< stage 3's decode CTAs per SM (on the GPU: the occupancy calculator)
  int max_kv_tile = kDefaultMaxKvTile;        ///< the planner's KV tile cap (stages 5-7)
  /// Stage 7's wave fill: CTAs per SM of the pack kernel by tile rows (PlannerOptions::ctas_per_sm;
  /// 0 = the host's estimate; on the GPU: the occupancy calculator).
  std::array<int, std::size(kRowClasses)> pack_ctas_per_sm{};
  int fill_window_waves = kDefaultFillWindowWaves;  ///< stages 7-8: PlannerOptions::fill_window_waves
  int max_cluster = kStagesMaxCluster;              ///< stage 9: PlannerOptions::max_cluster (`--max-cluster`)
  HopperRouting hopper = kStage8Routing;            ///< stage 8: PlannerOptions::hopper
  int group_rows = 0;  ///< stage 10: its kernel instance's row cap (16 or 64; 0: its model chooses)
  bool take_leaves = kStagesTakeLeaves;  ///< stages 7-8: PlannerOptions::take_leaves (leaf tails; false: --no-take-leaves)
  int leaf_tail_rows = kLeafTailRows;         ///< stages 7-8: PlannerOptions::leaf_tail_rows
  double leaf_tail_min_cut = kTailMinCtaCut;  ///< stages 7-8: PlannerOptions::leaf_tail_min_cut
  /// stages 4-9: partials' o in 16 bits (the default; false: `--fp32-partials`): their bytes,
  /// not their plans
  bool half_partials = traffic::kStagesHalfPartials;
};

/// A stage's plan configuration (stages 4-8): the planner's options and whether queries with a
/// single partial write the output directly.
struct StagePlanConfig {
  PlannerOptions planner;       ///< the options the stage runs make_plan() with
  bool direct_output = false;   ///< a query with a single pack is written by that pack and has no partial
  /// bytes of one element of a partial's o: traffic::kHalfPartialOutElemBytes (the default,
  /// StageTrafficOptions::half_partials), or kPartialOutElemBytes with `--fp32-partials` (the
  /// planner prices partials at fp32 either way, so the option changes the bytes, not the plan)
  int partial_o_bytes = traffic::partial_out_elem_bytes(traffic::kStagesHalfPartials);
};

/// The planner configuration of plan stage `slug` (packed, multitile, multistream, pat, hopper) on
/// `shape` under `options`; false for a stage that does not run a plan. Stage 8 plans a shape its
/// wgmma tiles are not built for on stage 7's tile table (hopper_pack_plan()).
bool plan_stage_config(const std::string& slug, const Shape& shape, const StageTrafficOptions& options,
                       StagePlanConfig& config);

/// One stage's model bytes on a layout, and how it cuts the work.
struct StageTraffic {
  int64_t bytes = 0;  ///< HBM bytes by the traffic model (the stage's `model_bytes` on the GPU)
  std::string notes;  ///< CTAs, chunks or packs, as the stage's notes say them
};

/// The model bytes of GPU stage `slug` on `layout`. Throws Error(usage) for a slug that is not a
/// GPU stage of the registry or has no byte model here (a new stage adds one).
StageTraffic stage_traffic(const std::string& slug, const PagedLayout& layout, const StageTrafficOptions& options);

}  // namespace patlab
