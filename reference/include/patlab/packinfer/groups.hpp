/// @file groups.hpp
/// @brief PackInfer's execution groups on the host (issue 16, the CPU half): the batch's work
/// bin-packed into one group per CTA slot, each group a list of work items with a balanced cost,
/// items that read the same blocks co-located.
///
/// **Units and items.** A *unit* is a Pack (plan.hpp): a set of queries over one KV token range
/// read through the same physical blocks. With Units::packs the units are the packs of PAT's tree
/// walk (make_plan() without the KV split): they already share prefixes. With Units::requests
/// every request is one unit of its whole table (PackInfer without PAT). A *work item* is a unit
/// at one KV head over a run of its blocks; a group is one CTA that runs its items one after the
/// other over their packed query-key regions (variable rows and KV lengths, no padding).
///
/// **Cost (bytes the group's CTA moves, plus a fixed cost per CTA).**
///
///     cost(group) = kCtaFixedBytes                                (the CTA's prologue, waves.hpp units)
///                 + sum over items  queries x extra_partial_bytes(group, d)   (q gathered, partial round trip)
///                 + sum over distinct (block, KV head) of the group  tokens x K+V bytes of one head
///
/// A block that two items of a group read is counted once: the group kernel reads it once for
/// all the group's queries (this is what co-location buys). kCtaFixedBytes is the wave fill's
/// constant (planner_steps.hpp), so groups and stage 7's CTAs are priced in the same units.
///
/// **Algorithm.** G = the CTA slots (SMs x resident CTAs per SM: split_slots() of the walk's
/// packs, or GroupOptions::ctas_per_sm), one group per slot, so the groups run in one wave.
/// 1. Items: every unit at every KV head, whole.
/// 2. Target T = ceil((G x kCtaFixedBytes + sum of item costs) / G); the item cap is
///    T - kCtaFixedBytes, what one group holds beside its fixed cost.
/// 3. Families: the items of units whose requests share their first physical block, at one KV
///    head (a root subtree of the radix tree). A family whose cost (shared blocks once) is within
///    the cap is *co-located*: placed whole into one group. Every other item longer than the cap
///    is cut into ceil(cost / cap) pieces of equal blocks (as the KV split cuts; never shorter
///    than min_piece_blocks blocks).
/// 4. Longest first (LPT): co-located families and loose items, by decreasing cost, each into
///    the group where it *ends first*: the least loaded group, or a group that already holds
///    some of its blocks when its load plus the marginal cost (the blocks it lacks) is no larger
///    (ties go to the group that shares).
///
/// **Guarantee.** The group chosen ends no later than the least loaded group plus the unit's full
/// cost, and the least loaded group is at most the mean of the final group costs, so
///
///     max group cost <= ceil(sum of final group costs / G) + largest placed unit (family or item).
///
/// The bound follows for any order; longest first makes the largest placed unit small beside
/// the mean when there is enough work (the 4/3 bound of LPT for additive costs).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "patlab/model/kv_cache.hpp"
#include "patlab/planner/plan.hpp"
#include "patlab/planner/planner.hpp"

namespace patlab::packinfer {

/// What the groups are made of.
enum class Units {
  packs,     ///< PAT's tree-walk packs (make_plan() without the KV split): prefixes already shared
  requests,  ///< one unit per request, its whole block table (PackInfer without PAT)
};

/// "packs" or "requests".
const char* units_name(Units u);
/// The Units called `name`; throws Error(usage) naming the known ones.
Units parse_units(const std::string& name);

/// Knobs of make_groups().
struct GroupOptions {
  int sms = kDefaultSms;        ///< SMs of the target GPU
  int ctas_per_sm = 0;          ///< resident CTAs per SM; 0: the planner's estimate (split_slots())
  Units units = Units::packs;   ///< what the items are cut from
  int min_piece_blocks = kDefaultMinSplitBlocks;  ///< shortest piece a cut makes, in blocks
  /// Packs: the most rows of one (the walk's packs at most this many rows; one of
  /// kTileRowOptions). Stage 10 sets its kernel instance's row cap (group_kernel.hpp).
  int max_rows = kMaxTileRows;
  /// Throws Error(usage) naming the first bad knob.
  void validate() const;
};

/// One unit at one KV head over blocks [block_begin, block_end) of the unit's block list.
struct WorkItem {
  int32_t unit = 0;         ///< index into GroupPlan::unit_list
  int32_t kv_head = 0;      ///< the KV head it runs at
  int32_t block_begin = 0;  ///< first block, an index into units[unit].blocks
  int32_t block_end = 0;    ///< one past the last block
  int32_t token_begin = 0;  ///< first token in each query's sequence
  int32_t token_end = 0;    ///< one past the last token
  int32_t family = 0;       ///< the first physical block of the unit's first query (a root subtree)
  /// Tokens the item reads.
  int32_t tokens() const { return token_end - token_begin; }
};

/// One execution group: the items one CTA runs, and their cost (see the file comment).
struct Group {
  std::vector<WorkItem> items;  ///< the items its CTA runs, sorted by family, unit, KV head, first block
  int64_t cost = 0;        ///< kCtaFixedBytes + item overheads + distinct block bytes
  int64_t kv_bytes = 0;    ///< K+V bytes of the group's distinct (block, KV head) pairs
  /// kCtaFixedBytes + item overheads + every item's own K/V range: what the CTA reads, a block
  /// two of its items share counted twice (the second read hits L2 at best, which the H200 serves
  /// only about 1.8x faster than HBM: the stage-10 instance choice prices it as a read)
  int64_t charged_bytes = 0;
};

/// The groups of a batch and what the planner saw.
struct GroupPlan {
  Units units = Units::packs;      ///< what the units are (GroupOptions::units)
  std::vector<Pack> unit_list;     ///< the units the items index
  std::vector<Group> groups;       ///< G groups, some possibly empty (fewer items than slots)
  int64_t slots = 0;               ///< G: SMs x CTAs per SM
  int32_t max_rows = kMaxTileRows; ///< the most rows of one unit (GroupOptions::max_rows)
  int32_t ctas_per_sm = 0;         ///< the resident CTAs per SM used
  int64_t cap = 0;                 ///< the item cap of step 2 (T - kCtaFixedBytes)
  int64_t mean_cost = 0;           ///< ceil(sum of final group costs / G)
  int64_t largest_placed = 0;      ///< largest family or item placed (its full cost)
  int32_t cuts = 0;                ///< pieces the cuts added
  int32_t families_colocated = 0;  ///< families placed whole into one group
  int32_t families_spread = 0;     ///< families over the cap, placed item by item
  /// The guarantee's right-hand side: mean_cost + largest_placed.
  int64_t bound() const { return mean_cost + largest_placed; }
  /// The largest group cost.
  int64_t max_cost() const;
  /// The largest Group::charged_bytes.
  int64_t max_charged() const;
};

/// The per-item overhead of the cost: q of the item's queries gathered and their partial written
/// and read back by the merge, at one KV head (queries x extra_partial_bytes(group size, d)).
int64_t item_overhead_bytes(const Shape& shape, int64_t queries);
/// K+V bytes of `tokens` tokens at one KV head.
int64_t head_bytes(const Shape& shape, int64_t tokens);

/// Key of (physical block `block`, KV head `head`) among `hkv` KV heads: block x hkv + head, one
/// 64-bit integer for the hash maps and sorted lists that count distinct pairs.
inline int64_t block_head_key(int32_t block, int32_t head, int hkv) { return int64_t{block} * hkv + head; }

/// Tokens that `item` reads of block `i` (an index into its unit's blocks, in [block_begin,
/// block_end)): a page, or fewer in the unit's partial last block.
int32_t block_tokens(const WorkItem& item, int32_t i, int page);

/// The units of `layout` under `units`: PAT's walk packs of at most `max_rows` rows (one of
/// kTileRowOptions), or one pack per request.
std::vector<Pack> make_units(const PagedLayout& layout, Units units, int max_rows = kMaxTileRows);

/// Builds the groups (the algorithm of the file comment). Throws Error(usage) on bad options or
/// a layout whose tables do not match its lengths.
GroupPlan make_groups(const PagedLayout& layout, const GroupOptions& options);

/// Stage 10's groups: one plan per instance of the group kernel (a row cap of kGroupRowCaps, on
/// the SMs x that instance's estimated CTAs per SM), and the one whose last group ends first in
/// group_end_time()'s model (chapter 23), priced by GroupPlan::max_charged(): the groups are
/// formed by cost (a shared block once), the instance is chosen by what its CTAs read. `base`
/// gives the SMs and the other knobs; its max_rows and ctas_per_sm are set per instance.
struct GroupChoice {
  GroupPlan plan;  ///< the chosen instance's groups
  /// Per instance of kGroupRowCaps, in that order: group_end_time() of its groups, in bytes at a
  /// third of an SM's bandwidth (the 16-row instance's slot at d = 128).
  std::vector<double> scores;
};
/// Forms both instances' groups and chooses (see GroupChoice), or runs the instance of row cap
/// `rows` when it is not 0 (a command line's --group-rows; the scores are still both). Throws as
/// make_groups(), and Error(usage) unless `rows` is 0 or one of kGroupRowCaps.
GroupChoice choose_group_instance(const PagedLayout& layout, const GroupOptions& base, int rows = 0);

/// Throws Error(usage) unless `rows` is 0 (stage 10 chooses) or one of kGroupRowCaps.
void check_group_rows(int rows);

/// Recomputes a group's cost and distinct-block bytes from its items.
void price_group(const PagedLayout& layout, const std::vector<Pack>& units, Group& group);

/// Per request, the work items that cover it at each KV head (the same count at every head: the
/// cuts and the family decisions depend on an item's cost, which is the same at every head;
/// validate_groups() checks it): the partials the GPU's group kernel writes for it, or 1 when it
/// writes the output directly (stage 10, cuda/stages/10_packinfer.cu).
std::vector<int32_t> partials_per_request(const PagedLayout& layout, const GroupPlan& plan);

/// The HBM bytes of one decode step of stage 10's group kernel over `plan` (the traffic model of
/// model/traffic.hpp, as traffic::plan_bytes() counts a plan): the K/V of each item's token range
/// at its KV head, q of each item's queries at its KV head, the round trip of every partial (a
/// request with a single item per head writes the output directly and has none), and the output
/// written once. The kernel streams each item's range by itself, so a block that two items of a
/// group share is charged twice here, as the traffic model charges every re-read (an L2 hit
/// included); the group's *cost* (price_group()) counts it once, the bet that the second read,
/// by the next item of the same CTA, hits L2. With every item in one group this is
/// traffic::plan_bytes() of the walk's plan with direct output (a test).
int64_t group_plan_bytes(const PagedLayout& layout, const GroupPlan& plan);

/// Every fault of `plan` against `layout`, one line each (empty = valid): each (request, KV head,
/// token) covered by exactly one item, the same number of items covering a request at every KV
/// head, item blocks are the request's table entries for its tokens, the number of groups is the
/// slots, and each group's cost is what price_group() says. At most kMaxReportedFaults lines.
std::vector<std::string> validate_groups(const PagedLayout& layout, const GroupPlan& plan);

}  // namespace patlab::packinfer
