/// @file 05_multitile.cu
/// @brief Stage 5, `multitile`: each pack gets the tile the planner's table picks for its rows
/// and KV length; one launch per tile bucket, one after another.
///
/// A pack of one query at group 8 has 8 rows: a 64-row tile runs 4 warps of which 3.5 compute
/// padding, and a 40-token range in a 64-token tile loads 24 zero rows. Matching m to the rows
/// (16/32/64) and n to the KV length (16..64 by default, up to 128 with --max-kv-tile 128)
/// removes that waste. Packs of one tile shape form a bucket, launched as one grid; the buckets
/// run in sequence on one stream, so a bucket's tail (its last, partly filled wave) leaves SMs
/// idle until the next launch starts: stage 6's subject.
#include <memory>

#include "patlab/cuda/plan_stage.cuh"

namespace patlab::cuda {

namespace {

// [multitile-config]
/// Each pack gets the tile the planner's table picks for its rows and KV length; the buckets
/// run one after another on the caller's stream.
PlanStageConfig multitile_config() {
  PlanStageConfig c;
  c.planner.tiles = TilePolicy::table;
  c.planner.split_kv = false;
  return c;
}
// [multitile-config]

}  // namespace

/// Stage 5 `multitile` for the registry (stages.def): a PlanStage of multitile_config() (the tile table).
std::unique_ptr<Stage> make_stage_multitile() { return std::make_unique<PlanStage>(multitile_config()); }

}  // namespace patlab::cuda
