/// @file 07_pat.cu
/// @brief Stage 7, `pat`: the full design. The planner also cuts long packs so the CTAs fill
/// the GPU (target from the device's SM count), each bucket is ordered longest pack first, the
/// buckets of the largest CTAs are launched first, queries with a single partial are written by
/// their pack, and the rest are merged.
///
/// What is new against stage 6 is only in how the plan is made and laid out:
///  - KV split: a batch whose packs are few and long (one shared prefix, a few requests) gives
///    fewer CTAs than the GPU has SMs; the planner halves the longest packs until the CTA count
///    (packs x Hkv) reaches its target, never below its minimum piece and within its cap on
///    pieces per query (planner.hpp states the rule);
///  - longest first: within a bucket, the CTAs that take longest start first, so the last wave
///    is made of short ones (the classic LPT order);
///  - footprint first: across buckets, the one whose CTAs fit fewest per SM is launched first,
///    so its large CTAs are not left to start after a bucket of small ones has filled the GPU;
///    on sm_90 the buckets are chained on one stream, each beginning once the one before it has
///    begun all its CTAs (programmatic dependent launch; --bucket-launch gates for streams);
///  - direct output: a query covered by a single pack needs no merge; its pack writes the
///    output row in the storage type, which saves the fp32 partial's write and read and, when
///    no query has more than one partial, the merge launch.
#include <memory>

#include "patlab/cuda/plan_stage.cuh"

namespace patlab::cuda {

namespace {

// [pat-config]
/// Stage 6 plus the planner's KV split, longest pack first in each bucket, the buckets of the
/// largest CTAs launched first, and direct output for queries with a single partial.
PlanStageConfig pat_config() {
  PlanStageConfig c;
  c.planner.tiles = TilePolicy::table;
  c.planner.split_kv = true;
  c.upload.direct_output = true;
  c.upload.longest_first = true;
  c.upload.bucket_order = BucketOrder::footprint;
  c.streams = true;
  c.ordered = true;
  c.leaf_tails = true;  // unless --no-take-leaves
  return c;
}
// [pat-config]

}  // namespace

/// Stage 7 `pat` for the registry (stages.def): a PlanStage of pat_config().
std::unique_ptr<Stage> make_stage_pat() { return std::make_unique<PlanStage>(pat_config()); }

}  // namespace patlab::cuda
