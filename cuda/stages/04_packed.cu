/// @file 04_packed.cu
/// @brief Stage 4, `packed`: the planner's packs on tensor cores, one fixed 64 x 64 tile.
///
/// Queries that share a prefix are packed by the planner into one pack per shared KV range, so
/// the range is read once per KV head for all of them instead of once per request. A pack's
/// rows are its queries x the group's query heads; with up to 64 rows against 64-token KV
/// tiles, decode becomes a small GEMM (about rows FLOP per byte of KV), which the tensor cores
/// run (pack_attention_kernel in packed_tile.cuh). Every query's partials are merged by the
/// merge kernel of stage 3. One tile shape for every pack: small packs waste most of it, which
/// stage 5 fixes.
#include <memory>

#include "patlab/cuda/plan_stage.cuh"

namespace patlab::cuda {

namespace {

// [packed-config]
/// Every pack gets one fixed tile: 64 rows (4 warps) x 64 KV tokens; no KV split; every query's
/// partials are merged.
PlanStageConfig packed_config() {
  PlanStageConfig c;
  c.planner.tiles = TilePolicy::fixed;
  c.planner.fixed_tile = TileShape{64, 64};
  c.planner.split_kv = false;
  return c;
}
// [packed-config]

}  // namespace

/// Stage 4 `packed` for the registry (stages.def): a PlanStage of packed_config() (one fixed 64x64 tile).
std::unique_ptr<Stage> make_stage_packed() { return std::make_unique<PlanStage>(packed_config()); }

}  // namespace patlab::cuda
