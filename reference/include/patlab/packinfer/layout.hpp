/// @file layout.hpp
/// @brief Group-contiguous KV (issue 16, the CPU half): each group's blocks copied into one
/// contiguous region, the byte model of a decode step on the paged and on the contiguous layout,
/// the re-layout's cost amortised over decode steps, and the policy that decides.
///
/// **Region.** A group's region is a run of *slots*, one slot per distinct (physical block, KV
/// head) its items read, in the order the group's items (sorted by family, unit, head, first
/// block) first read them: a block two items share is stored once. A slot holds one head's K
/// and V of one block (page x d elements each). New tokens go to the group's *tail*: after the
/// copied slots, each (request, KV head) whose last token is in the group gets the blocks its
/// next `reserve_steps` tokens need, in the order of its items.
///
/// **Step model.** Decode attention is memory-bound; a step's cost is bytes plus fixed costs, in
/// the bytes the GPU could have streamed meanwhile (the units of waves.hpp):
///
///     step = sum over groups [ kCtaFixedBytes + item overheads + distinct block bytes ]
///          + runs x kRunFixedBytes + table bytes
///
/// The bytes are the same on both layouts (the group kernel reads a shared block once either
/// way). What differs is the *runs*, one copy descriptor (a TMA box on Hopper) each: on the paged
/// layout one per distinct (block, head) and tensor (K, V), since a box cannot cross blocks that
/// are not adjacent; on the region one per kTmaBoxTokens tokens of each maximal run of adjacent
/// slots an item reads. The paged kernel also reads one block-table entry (kTableEntryBytes) per
/// block of each item; the region kernel one offset per item.
///
/// **Amortisation.** The re-layout reads the copied tokens from the pool (one run per slot and
/// tensor) and writes them to the regions:
///
///     relayout = 2 x copied bytes + paged runs of the copy x kRunFixedBytes
///     N = ceil(relayout / (paged step - contiguous step))     (never when the saving is <= 0)
///
/// **Policy** (decide()). Form groups when their largest cost is below stage 7's model makespan
/// (its CTAs, each priced as a group of one item, in lpt_schedule() over the same slots) by more
/// than kFillTieFraction. Re-layout when groups are formed, the saving per step is positive, and
/// N is at most the horizon: the decode steps before the batch changes (a request finishes or
/// joins and the groups are re-formed). It does not pay on short batches (few runs to save),
/// when requests finish soon (short horizon), and when kRunFixedBytes is small.
#pragma once

#include <cstdint>
#include <string>
#include <tuple>
#include <map>
#include <vector>

#include "patlab/packinfer/groups.hpp"

namespace patlab::packinfer {

/// Fixed cost of one copy descriptor (a run of contiguous bytes, a TMA box), in bytes the GPU
/// could have streamed meanwhile. An assumption, not a measurement: about 60 ns of one slot's
/// 10.6 GB/s share (waves.hpp) for the address computation and the request that opens a run.
/// The GPU session is to fit it (`patlab packinfer --run-cost` moves it).
inline constexpr int64_t kRunFixedBytes = 640;
/// Most tokens one descriptor covers on the region: a TMA box is at most 256 elements per
/// dimension (cuTensorMapEncodeTiled's boxDim limit).
inline constexpr int kTmaBoxTokens = 256;
/// Bytes of one block-table entry (int32) or one region offset.
inline constexpr int64_t kTableEntryBytes = 4;
/// Default horizon of the policy in decode steps: an assumption (the amortisation target
/// is stated at 16 steps; 64 leaves room for four of those between batch changes).
inline constexpr int kDefaultHorizonSteps = 64;
/// Default steps of new tokens a region reserves at its tail (the 16 steps).
inline constexpr int kDefaultReserveSteps = 16;
/// Most new blocks all regions' tails may reserve together (requests x KV heads x the reserve's
/// blocks): each is an entry of GroupRegion::tail, so this bounds build_regions()' memory and time
/// (the default reserve of 16 steps on 65536 requests at 16 KV heads needs 2^20).
inline constexpr int64_t kMaxTailBlocks = int64_t{1} << 22;

/// Key of a region map: (request, KV head, logical block of the request).
using BlockKey = std::tuple<int32_t, int32_t, int32_t>;

/// One group's contiguous region.
struct GroupRegion {
  /// Copied slots in region order: (physical block, KV head) each, distinct.
  std::vector<std::pair<int32_t, int32_t>> copied;
  /// Per item of the group, in its order: the slot in [0, copied.size()) of each block the item
  /// reads, in block order (the same slots serve every query of the item: region_positions()).
  std::vector<std::vector<int32_t>> item_slots;
  /// New blocks at the tail: (request, head, logical block) -> slot >= copied.size(), in order.
  std::map<BlockKey, int32_t> tail;
  int64_t copied_tokens = 0;  ///< tokens of the copied slots (a partial last block counts its tokens)
  /// Slots of the region, copied and tail.
  int64_t slots() const { return static_cast<int64_t>(copied.size() + tail.size()); }
};

/// Throws Error(usage) unless `reserve_steps` >= 0 and the tails of `layout`'s regions reserving
/// that many decode steps hold at most kMaxTailBlocks new blocks.
void check_reserve(const PagedLayout& layout, int reserve_steps);

/// The regions of every group of `plan`, each reserving `reserve_steps` decode steps of new
/// tokens at its tail (check_reserve() first).
std::vector<GroupRegion> build_regions(const PagedLayout& layout, const GroupPlan& plan, int reserve_steps);

/// The region's map: every (request, head, logical block) that `group`'s items read and its slot,
/// sorted by key, derived from region.item_slots (`region` is `group`'s, from build_regions()).
std::vector<std::pair<BlockKey, int32_t>> region_positions(const PagedLayout& layout, const GroupPlan& plan,
                                                           const Group& group, const GroupRegion& region);

/// A decode step's cost on one layout (see the file comment).
struct StepModel {
  int64_t bytes = 0;         ///< fixed CTA costs, item overheads and distinct block bytes
  int64_t runs = 0;          ///< copy descriptors
  int64_t table_bytes = 0;   ///< block-table entries or region offsets read
  int64_t max_group = 0;     ///< the costliest group's share (bytes + its runs and table)
  /// bytes + runs x run_cost + table_bytes.
  int64_t cost(int64_t run_cost) const { return bytes + runs * run_cost + table_bytes; }
};

/// The step on the paged layout, with `run_cost` bytes per descriptor.
StepModel paged_step(const PagedLayout& layout, const GroupPlan& plan, int64_t run_cost = kRunFixedBytes);
/// The step on the regions.
StepModel contiguous_step(const PagedLayout& layout, const GroupPlan& plan, const std::vector<GroupRegion>& regions,
                          int64_t run_cost = kRunFixedBytes);

/// What the re-layout costs and when it pays.
struct Amortisation {
  int64_t copied_bytes = 0;    ///< K+V bytes of every region's copied slots
  int64_t duplicate_bytes = 0; ///< of those, bytes of blocks stored in more than one region
  int64_t relayout_cost = 0;   ///< 2 x copied bytes + the copy's paged runs x run cost
  int64_t paged_cost = 0;      ///< one step on the paged layout
  int64_t contiguous_cost = 0; ///< one step on the regions
  int64_t payoff_steps = -1;   ///< N; -1 when the saving per step is <= 0 (never pays)
  /// relayout / (steps x contiguous step): the re-layout's share of `steps` steps.
  double amortised_fraction(int64_t steps) const;
};

/// The amortisation of re-laying out `regions` with `run_cost` bytes per descriptor. Throws
/// Error(usage) unless run_cost >= 0.
Amortisation amortise(const PagedLayout& layout, const GroupPlan& plan, const std::vector<GroupRegion>& regions,
                      int64_t run_cost = kRunFixedBytes);

/// Stage 7's model makespan: make_plan() with the KV split, every pack x KV head a CTA priced as
/// a group of one item (kCtaFixedBytes + overhead + its block bytes), scheduled longest first by
/// lpt_schedule() on the same slots as `plan`.
int64_t stage7_makespan(const PagedLayout& layout, const GroupPlan& plan, const GroupOptions& options);

/// The policy's inputs beyond the models.
struct PolicyOptions {
  int horizon_steps = kDefaultHorizonSteps;  ///< decode steps before the batch changes
  int64_t run_cost = kRunFixedBytes;         ///< bytes per descriptor
  /// Throws Error(usage) naming the first bad knob.
  void validate() const;
};

/// The policy's verdict and its reasons.
struct Verdict {
  bool form_groups = false;     ///< the largest group cost is below stage 7's makespan by more than kFillTieFraction
  bool relayout = false;        ///< form_groups and 0 <= payoff_steps <= horizon_steps: the re-layout pays in time
  std::string groups_reason;    ///< one line on form_groups: the verdict and both costs in KiB
  std::string relayout_reason;  ///< one line on relayout: the payoff steps against the horizon, or why not
};

/// The policy (file comment) on the models: `groups_max` the largest group cost, `stage7` stage
/// 7's makespan, `a` the amortisation.
Verdict decide(int64_t groups_max, int64_t stage7, const Amortisation& a, const PolicyOptions& options);

/// One slot of the re-layout: `tokens` tokens of (physical block, KV head) into global region
/// slot `slot` (the GPU's re-layout kernel takes an array of them, cuda/relayout.cuh).
struct RegionCopy {
  int32_t block = 0;   ///< physical block in the pools
  int32_t kv_head = 0; ///< the KV head whose K and V are copied
  int32_t slot = 0;    ///< global slot of the region pools (the group's base + its slot)
  int32_t tokens = 0;  ///< tokens of the block that hold data
};

/// The groups' work items flattened for the GPU's group kernel (stage 10), every item as a pack
/// with its own KV head: the arrays the kernel reads, the partial slots, and the re-layout.
/// Groups without items are left out (one CTA per entry of group_begin but the last).
struct FlatGroups {
  std::vector<int32_t> group_begin{0};   ///< [launched groups + 1]: each group's first item
  std::vector<int32_t> query_begin{0};   ///< [items + 1]: each item's entries in queries/slots
  std::vector<int32_t> queries;          ///< request of each (item, query)
  std::vector<int32_t> slots;            ///< its global partial slot, -1: the item writes the output
  std::vector<int32_t> block_begin{0};   ///< [items + 1]: each item's entries in the block lists
  std::vector<int32_t> paged_blocks;     ///< the item's physical blocks
  std::vector<int32_t> region_blocks;    ///< the item's global region slots, in the same order
  std::vector<int32_t> kv_len;           ///< [items]: tokens of the item
  std::vector<int32_t> kv_head;          ///< [items]: its KV head
  std::vector<int32_t> offsets;          ///< [requests + 1]: partial slots of each request (none if direct)
  std::vector<int32_t> merge_queries;    ///< requests with partials, for the merge
  std::vector<RegionCopy> copies;        ///< the re-layout: every region's copied slots
  int64_t region_slots = 0;              ///< slots of the region pools, copied and tail
  /// Work items.
  int64_t items() const { return static_cast<int64_t>(kv_len.size()); }
};

/// Flattens `plan` over `regions` (build_regions() of the same plan): group by group, item by
/// item; a request covered by one item per KV head (partials_per_request()) has no partial slot,
/// the others get one per item, the same slot index at every KV head. Throws std::logic_error
/// for an item of more than `max_rows` rows (the kernel's largest tile) or regions that do not
/// match the plan.
FlatGroups flatten_groups(const PagedLayout& layout, const GroupPlan& plan, const std::vector<GroupRegion>& regions,
                          int max_rows);

}  // namespace patlab::packinfer
