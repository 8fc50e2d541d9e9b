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
///   with every token, and could come to equal a sibling's that holds the same block with more
///   tokens; that case is handled as a change of the tree unless no sibling holds the block
///   (after copy-on-write, the usual case, it grows in place too).
/// - **Finding what changed**: without a hint every block table is compared with the last step's,
///   entry by entry (O(blocks)). A caller that keeps tables append-only (the block manager does:
///   a running sequence's table only gains blocks at its end, and copy-on-write replaces only its
///   last block) passes TableHint::append_only, and each request costs O(1): its length, its
///   table size and its last old block.
/// - **KV split, fast path**: the split depends on every pack's length (the fair share of one CTA
///   slot grows with each token), but its result is a set of cuts that stays valid while (a) every
///   piece it cut is still longer than the share, (b) every piece it left whole that is long
///   enough to cut is still no longer than the share, (c) no cut pack gained a block (the halving
///   points would move), and (d) the last full split refused no cut for the per-query cap (so
///   its cuts do not depend on the order it visits pieces in). The planner keeps the shortest
///   cut piece that ends inside its pack, each cut pack's deepest cut piece that ends with it,
///   and the longest cuttable whole piece, so a decode step checks (a)-(c) in O(grown packs +
///   cut packs) while it patches each grown pack's last piece in place (its length, a new
///   block, its tile when the length crosses a tile size): no piece, slot or partial count
///   moves. Otherwise the split is decided again (O(packs + cuts log cuts)) and only the packs
///   whose pieces changed are rewritten. Within the wave fill's reach (a walk of at most
///   PlannerOptions::fill_window_waves waves of CTAs) the cuts are the fill's choice, which the
///   fill memo keeps while the fair split and every walk pack's block count stand: (a)-(d) are
///   then checked on the memo's fair split, and (e) no walk pack may gain a block. A row class
///   that the split's class check kept whole (plan_steps::split_kv()) is left out of (b), and (f)
///   no pack of such a class may grow: its verdict weighs that class's lengths.
/// - **Changes of the tree** (arrivals, finishes, forks, copy-on-write, a request that was a
///   prefix of another growing past it): the root subtrees that hold a changed request are built
///   and walked again, from the same functions as make_plan() (planner_steps.hpp); the others
///   keep their packs (their request indices renumbered when requests came or went).
///
/// UpdateStats::path says which of these a step took (UpdatePath).
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

#include <array>
#include <chrono>
#include <cstdint>
#include <string>
#include <unordered_map>
#include <vector>

#include "patlab/model/kv_cache.hpp"
#include "patlab/planner/plan.hpp"
#include "patlab/planner/planner.hpp"
#include "patlab/planner/planner_steps.hpp"

namespace patlab {

/// What the caller promises about the block tables of the requests that were in the last
/// update() too.
enum class TableHint : uint8_t {
  /// No promise: each table is compared with the last step's, entry by entry.
  compare,
  /// Each table changed only at its end since the last update(): blocks appended, and its last
  /// old block possibly replaced (copy-on-write); every other entry is where it was. What
  /// serving::BlockManager does for a sequence that stays running. update() then looks at O(1)
  /// entries per request; a broken promise gives a wrong plan (the serve loop's validator and
  /// tests/cpu/test_incremental_planner.cpp are the checks).
  append_only,
};

/// Which way one update() went, cheapest first.
enum class UpdatePath : uint8_t {
  fast,      ///< only tail growth, the KV split still holds: grown packs patched in place
  resplit,   ///< only tail growth, but the KV split was decided again (a threshold crossed, a cut pack gained a block, or the per-query cap binds)
  subtrees,  ///< the tree changed: the root subtrees holding changed requests built and walked again
  full,      ///< everything planned again (first step, new shape, reordered requests)
};

/// Number of UpdatePath values (for counting steps by path).
inline constexpr int kUpdatePaths = 4;

/// Short name of an update path, as reports print it ("fast", "resplit", "subtrees", "full").
const char* update_path_name(UpdatePath path);

/// Steps counted by update path (index = the UpdatePath's value).
using UpdatePathCounts = std::array<int64_t, kUpdatePaths>;

/// "fast 990, resplit 9, subtrees 0, full 1", as reports print the counts.
std::string describe_paths(const UpdatePathCounts& counts);

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
  UpdatePath path = UpdatePath::full;  ///< which way the update went
  double seconds = 0;             ///< wall time of update()
};

/// make_plan(), step by step: each update() returns the plan of a layout, reusing what it can of
/// the previous step's (see the file comment). Not thread-safe; one per serve loop.
class IncrementalPlanner {
 public:
  /// Throws Error(usage) on bad options (as make_plan()).
  explicit IncrementalPlanner(const PlannerOptions& options);

  /// The plan of `layout`, equal to make_plan(layout, options). `request_ids[r]` is the stable id
  /// of request r (unique). `hint` says how the tables of requests already seen may have changed
  /// (TableHint). Throws Error(usage) on a layout make_plan() refuses or ids that do not match it
  /// (wrong count, a duplicate), before changing any state. The reference stays valid until the
  /// next update().
  const Plan& update(const PagedLayout& layout, const std::vector<int64_t>& request_ids, UpdateStats* stats = nullptr,
                     TableHint hint = TableHint::compare);

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
    bool leaf_unique = false;    ///< alone in a leaf whose first block no sibling of the leaf holds
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
  /// What the fast path of the KV split keeps (see the file comment): valid for pieces_ and the
  /// KV tokens of all CTAs (cta_tokens).
  struct SplitBounds {
    /// A cut pack's deepest cut piece that ends where the pack ends: the shortest of its cut
    /// pieces that grow with the pack.
    struct Spine {
      int32_t pack = 0;         ///< walk pack
      int32_t block_begin = 0;  ///< first block of that piece
    };
    bool certified = false;       ///< the last full split refused no cut and its pieces are a halving of each pack
    int64_t cta_tokens = 0;       ///< sum of walk pack lengths x KV heads
    int32_t fixed_cuts = 0;       ///< cut pieces that end before their pack ends (they never grow)
    int64_t min_fixed_cut_tokens = 0;  ///< fewest tokens of those, if any
    std::vector<Spine> spines;    ///< one per cut pack
    int64_t max_open_tokens = 0;  ///< most tokens of a piece left whole that is long enough to cut
    /// The wave fill applies: the bounds are the fill memo's fair split's, and a walk pack that
    /// gains a block decides the split again (condition (e) of the file comment).
    bool fill = false;
    std::vector<int32_t> fair_last_block;  ///< with `fill`: first block of each walk pack's last fair piece
  };

  /// Throws unless `ids` match the layout; when they differ from the last step's, returns their
  /// positions by id in `positions`.
  void check_ids(const PagedLayout& layout, const std::vector<int64_t>& ids, bool same_ids,
                 std::unordered_map<int64_t, int32_t>& positions) const;
  Change classify(const Request& old, const PagedLayout& layout, int32_t r, TableHint hint) const;
  void grow(Request& request, const PagedLayout& layout, int32_t r);
  /// Sets Request::leaf_unique of the requests alone in a leaf of `tree` below its root subtree.
  static void mark_unique_leaves(const PagedLayout& layout, const plan_steps::RadixTree& tree,
                                 std::vector<Request>& requests);
  void rebuild(const PagedLayout& layout, const std::vector<int32_t>& old_position, const std::vector<Change>& change,
               bool everything, UpdateStats& stats);
  /// The common decode step (same ids, TableHint::append_only): classifies and extends in one
  /// pass. Returns false, with split_.certified cleared, at the first request that changed
  /// otherwise (what it extended so far stays extended: update() then counts it as unchanged).
  bool steady_step(const PagedLayout& layout, UpdateStats& stats);
  /// Tail growth of request `q` (position `r`): its walk pack, its last plan pack and piece grow
  /// in place; `cuts_hold` is cleared when a cut pack gains a block.
  void extend(Request& q, const PagedLayout& layout, int32_t r, bool& cuts_hold);
  /// After extend() on every grown request: keeps the split when `cuts_hold` and the bounds
  /// still hold (UpdatePath::fast), else decides it again (UpdatePath::resplit).
  void finish_growth(const PagedLayout& layout, bool cuts_hold, UpdateStats& stats);
  /// Conditions (a) and (b) of the file comment under the current cta_tokens.
  bool cuts_still_hold() const;
  /// The stats and plan at the end of update().
  const Plan& finish(std::chrono::steady_clock::time_point start, UpdateStats& st, UpdateStats* stats);
  void write_plan(const PagedLayout& layout, bool structural, UpdateStats& stats);
  /// The KV split of walk_ as make_plan() cuts it (plan_steps::cut_packs()), reusing the wave
  /// fill's last choice while its inputs stand (fill_memo_).
  std::vector<plan_steps::Piece> cut_pieces(int num_requests);
  /// piece_begin_ and split_ for the pieces just written.
  void index_pieces();
  /// Walks the halving of `pieces` [i, last) of walk pack `w` over blocks [b, e) ending at
  /// `token_end` (`spine`: where the pack ends), recording its cut pieces in split_; false when
  /// the pieces are not such a halving.
  bool visit_halving(const std::vector<plan_steps::Piece>& pieces, int32_t w, int32_t b, int32_t e, int32_t token_end,
                     bool spine, int32_t& i, int32_t last);

  PlannerOptions options_;
  Shape shape_;
  CostModel model_;
  bool planned_ = false;
  std::vector<Request> requests_;            ///< by position in the last layout
  std::vector<int64_t> ids_;                 ///< ids of the last layout, by position
  std::unordered_map<int64_t, int32_t> position_of_;  ///< id -> position in the last layout
  std::vector<Subtree> subtrees_;            ///< in plan order (by smallest request index)
  std::vector<Pack> walk_;                   ///< packs of the tree walk, no tiles or slots
  std::vector<char> walk_dirty_;             ///< per walk pack: grown by grow() (in rebuild()) since the plan was written
  std::vector<int32_t> grown_;               ///< the walk packs with walk_dirty_ set
  std::vector<plan_steps::Piece> pieces_;    ///< the KV split of walk_: plan_.packs[k] is pieces_[k]
  std::vector<int32_t> piece_begin_;         ///< walk pack w's pieces are [piece_begin_[w], piece_begin_[w + 1])
  SplitBounds split_;
  /// The row classes the last split's class check kept whole (plan_steps::split_kv()).
  plan_steps::ClassVerdicts kept_whole_{};
  /// Whether walk pack `p`'s row class is one of kept_whole_.
  bool class_kept_whole(const Pack& p) const {
    return kept_whole_[static_cast<size_t>(plan_steps::row_class(p.rows(shape_.group())))];
  }
  /// The wave fill prices whole blocks only (kv_split.cpp), so its choice holds while the
  /// fair-share pieces it was given and every walk pack's block count stand: the choice is then
  /// reused, each pack's last piece ending with the pack, instead of priced again every step.
  struct FillMemo {
    bool valid = false;
    std::vector<plan_steps::Piece> fair;  ///< the fair-share pieces it was given
    std::vector<int32_t> walk_blocks;     ///< blocks of each walk pack then
    std::vector<plan_steps::Piece> chosen;
  };
  FillMemo fill_memo_;
  int32_t packs_patched_ = 0;                ///< plan packs extend() patched since finish_growth()
  Plan plan_;
  // Per-step scratch, kept to avoid allocating every step.
  std::vector<int32_t> old_position_;
  std::vector<Change> change_;
  std::unordered_map<int64_t, int32_t> positions_;
};

}  // namespace patlab
