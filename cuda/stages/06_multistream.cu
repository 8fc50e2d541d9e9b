/// @file 06_multistream.cu
/// @brief Stage 6, `multistream`: every tile bucket on its own stream, so kernels of different
/// CTA sizes and shared memory fill the SMs together instead of one after another.
///
/// The streams are created once, when the stage is prepared, and reused by every run. A run
/// forks them from the caller's stream with an event, launches one bucket per stream, and
/// joins them back with events before the merge. Nothing touches the legacy default stream,
/// so the whole forward + merge can be captured into a CUDA graph (the benchmark times graph
/// replays too). PAT's public code creates and destroys streams on every call and joins through
/// the default stream, which a graph capture cannot contain.
#include <memory>

#include "patlab/cuda/plan_stage.cuh"

namespace patlab::cuda {

namespace {

// [multistream-config]
/// Stage 5's plan, with every bucket on its own stream (created once, joined with events).
PlanStageConfig multistream_config() {
  PlanStageConfig c;
  c.planner.tiles = TilePolicy::table;
  c.planner.split_kv = false;
  c.streams = true;
  return c;
}
// [multistream-config]

}  // namespace

/// Stage 6 `multistream` for the registry (stages.def): a PlanStage of multistream_config().
std::unique_ptr<Stage> make_stage_multistream() { return std::make_unique<PlanStage>(multistream_config()); }

}  // namespace patlab::cuda
