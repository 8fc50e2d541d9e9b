/// @file incremental_planner.hpp
/// @brief The pack step of a decode loop: the plan of the previous step, updated for this one.
///
/// In serving, each decode step appends one token to every running request (a new block every
/// `page` steps), and requests arrive, finish and fork. make_plan() would rebuild the radix tree
/// and re-walk it every step; IncrementalPlanner keeps the previous step's walk packs, split and
/// plan, and redoes only what changed:
///
/// - **Tail growth** (the common case): a request alone in its leaf of the radix tree whose old
///   blocks are all still in its table, and which has more tokens. No key at or above the point
///   where it left the other requests changes, so the tree keeps its shape, every inherit-or-split
///   decision stays, and only the request's last pack grows (its length, maybe a new block).
///   The exception is a leaf that is a single partial block: its key (id and token count) changes
///   with every token, so that case is handled as a change of the tree.
/// - **Changes of the tree** (arrivals, finishes, forks, copy-on-write, a request that was a
///   prefix of another growing past it): the root subtrees that hold a changed request are built
///   and walked again, from the same functions as make_plan() (planner_steps.hpp); the others
///   keep their packs (their request indices renumbered when requests came or went).
/// - **KV split**: it depends on every pack's length (the fair share of one CTA slot grows with
///   each token), so it is decided again every step, on integers only (O(packs + cuts log cuts));
///   only the packs whose pieces changed are rebuilt, the others are kept.
///
/// The result is the plan make_plan() makes for the same layout, pack for pack, slot for slot
/// (so validate_plan() passes and the modelled bytes are identical): tests/cpu/test_incremental_planner.cpp
/// compares them on every step of random serving sequences.
///
/// **Request ids.** The serve loop passes, with each layout, one stable id per request (its
/// position in the layout may change as others come and go). A request with a new id is an
/// arrival; an id that is gone has finished. When the survivors' relative order changes, or the
/// shape does, everything is planned again.
#pragma once

#include <cstdint>
#include <unordered_map>
#include <vector>

#include "patlab/model/kv_cache.hpp"
#include "patlab/planner/plan.hpp"
#include "patlab/planner/planner.hpp"
#include "patlab/planner_steps.hpp"

namespace patlab {

/// What one IncrementalPlanner::update() reused and what it rebuilt.
struct UpdateStats {
  int32_t requests = 0;       ///< requests in the layout
  int32_t unchanged = 0;      ///< same table and length as the previous step
  int32_t grown = 0;          ///< tail growth: their last pack was extended in place
  int32_t restructured = 0;   ///< changed otherwise (copy-on-write, a shared node left, ...): subtree re-planned
  int32_t arrived = 0;        ///< new ids (0 on a first step or a new shape: nothing to compare with)
  int32_t finished = 0;       ///< ids of the previous step that are gone (0 there too)
  int32_t subtrees = 0;       ///< root subtrees of the radix tree
  int32_t subtrees_rebuilt = 0;   ///< built and walked again
  int32_t walk_packs = 0;         ///< packs before the KV split
  int32_t walk_packs_rebuilt = 0; ///< made by the walks of rebuilt subtrees
  int32_t walk_packs_grown = 0;   ///< extended in place
  int32_t split_changed = 0;      ///< kept walk packs whose KV-split pieces changed
  int32_t packs = 0;              ///< packs of the plan
  int32_t packs_written = 0;      ///< plan packs written this step (the rest were kept as they were)
  bool full_rebuild = false;      ///< everything planned again (first step, new shape, reordered requests)
  double seconds = 0;             ///< wall time of update()
};

/// make_plan(), step by step: each update() returns the plan of a layout, reusing what it can of
/// the previous step's (see the file comment). Not thread-safe; one per serve loop.
class IncrementalPlanner {
 public:
  /// Throws Error(usage) on bad options (as make_plan()).
  explicit IncrementalPlanner(const PlannerOptions& options);

  /// The plan of `layout`, equal to make_plan(layout, options). `request_ids[r]` is the stable id
  /// of request r (unique). Throws Error(usage) on a layout make_plan() refuses or ids that do
  /// not match it (wrong count, a duplicate), before changing any state. The reference stays
  /// valid until the next update().
  const Plan& update(const PagedLayout& layout, const std::vector<int64_t>& request_ids, UpdateStats* stats = nullptr);

  /// The plan of the last update() (empty before the first).
  const Plan& plan() const { return plan_; }
  /// Forgets every step: the next update() plans from scratch.
  void reset();

 private:
  /// What the planner remembers of one request.
  struct Request {
    int32_t length = 0;
    std::vector<int32_t> table;  ///< its block table at the last step
    int32_t subtree = -1;        ///< index into subtrees_
    int32_t leaf_block = -1;     ///< alone in a leaf of the tree: the leaf's first block; else -1
    int32_t leaf_pack = -1;      ///< alone in a leaf: index into walk_ of its last pack; else -1
  };
  /// A root subtree: its packs are walk_[walk_begin, walk_begin + walk_count).
  struct Subtree {
    int64_t key = 0;  ///< block_key() of its first block
    int32_t members = 0;
    int32_t walk_begin = 0;
    int32_t walk_count = 0;
  };
  /// How a request changed since the last step.
  enum class Change : uint8_t { unchanged, grown, restructured, arrived };

  /// Throws unless `ids` match the layout; when they differ from the last step's, returns their
  /// positions by id in `positions`.
  void check_ids(const PagedLayout& layout, const std::vector<int64_t>& ids, bool same_ids,
                 std::unordered_map<int64_t, int32_t>& positions) const;
  Change classify(const Request& old, const PagedLayout& layout, int32_t r) const;
  void grow(Request& request, const PagedLayout& layout, int32_t r);
  void rebuild(const PagedLayout& layout, const std::vector<int32_t>& old_position, const std::vector<Change>& change,
               bool everything, UpdateStats& stats);
  void write_plan(const PagedLayout& layout, bool structural, UpdateStats& stats);

  PlannerOptions options_;
  Shape shape_;
  CostModel model_;
  bool planned_ = false;
  std::vector<Request> requests_;            ///< by position in the last layout
  std::vector<int64_t> ids_;                 ///< ids of the last layout, by position
  std::unordered_map<int64_t, int32_t> position_of_;  ///< id -> position in the last layout
  std::vector<Subtree> subtrees_;            ///< in plan order (by smallest request index)
  std::vector<Pack> walk_;                   ///< packs of the tree walk, no tiles or slots
  std::vector<char> walk_dirty_;             ///< per walk pack: grown since the plan was written
  std::vector<plan_steps::Piece> pieces_;    ///< the KV split of walk_: plan_.packs[k] is pieces_[k]
  Plan plan_;
};

}  // namespace patlab
