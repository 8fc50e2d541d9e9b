/// @file planner_steps.hpp
/// @brief The steps of make_plan() as functions, for planners that reuse them (the incremental
/// planner of incremental_planner.hpp): the checks, the radix tree over a set of requests, the
/// walk that emits packs, the KV split, and tiles and slots. make_plan() is these steps in order;
/// planner.hpp explains what each one decides.
#pragma once

#include <algorithm>
#include <array>
#include <cstdint>
#include <iterator>
#include <vector>

#include "patlab/model/kv_cache.hpp"
#include "patlab/planner/plan.hpp"
#include "patlab/planner/planner.hpp"

namespace patlab::plan_steps {

/// Throws Error(usage) unless the layout's shape is supported and its tables match its lengths.
void check_layout(const PagedLayout& layout);
/// check_layout() without the shape: the tables against the lengths. Messages are built only on
/// a fault, so the check is cheap enough to run every decode step.
void check_tables(const PagedLayout& layout);
/// Throws Error(usage) naming the first bad knob of `options`.
void check_options(const PlannerOptions& options);

/// Block `i` of request `r` as a radix-tree key: its physical id and the tokens it holds, so
/// that a partial block only matches the same partial block.
int64_t block_key(const PagedLayout& layout, int32_t r, int32_t i);

/// A node of the radix tree: a run of blocks that the same queries read.
struct TreeNode {
  int32_t block_begin = 0;  ///< blocks [block_begin, block_end) of every query's table
  int32_t block_end = 0;    ///< one past the node's last block
  int32_t token_end = 0;    ///< tokens of the queries up to the end of the node
  int32_t query_begin = 0;  ///< the node's queries are order[query_begin, query_end)
  int32_t query_end = 0;    ///< one past the node's last query in order
  int32_t ended = 0;        ///< order[query_begin, query_begin + ended) end at the node
  int32_t first_child = -1; ///< children are nodes[first_child, first_child + children)
  int32_t children = 0;     ///< child nodes (0 for a leaf)
  /// Queries that read the node.
  int32_t queries() const { return query_end - query_begin; }
};

/// The radix tree over physical block ids, built by partitioning the queries at each point where
/// their tables diverge. Node 0 is a virtual root (no blocks) over the queries; its children are
/// the root subtrees, in the order of their smallest request index. Within a node the queries are
/// in increasing request order. Keeps a reference to the layout: it must outlive the tree.
class RadixTree {
 public:
  /// The tree over every request of `layout`.
  explicit RadixTree(const PagedLayout& layout);
  /// The tree over `requests` only (request indices of `layout`, increasing). Over the requests
  /// of one root subtree it is that subtree of the whole tree, node for node.
  RadixTree(const PagedLayout& layout, std::vector<int32_t> requests);
  /// The nodes: node 0 is the virtual root, and a node's children come after it.
  const std::vector<TreeNode>& nodes() const { return nodes_; }
  /// The tree's request indices, ordered so that a node's queries are order()[query_begin, query_end).
  const std::vector<int32_t>& order() const { return order_; }

 private:
  int32_t blocks(int32_t r) const;
  void build();
  void grow(int32_t v);

  const PagedLayout& layout_;
  std::vector<int32_t> order_;
  std::vector<TreeNode> nodes_;
};

/// Step 2 of make_plan(): walks `tree` from the children of its virtual root (preorder, children
/// in order), decides inherit-or-split at every node with children by `model`, and appends the
/// packs (queries, range, blocks; no tile, no slots) to `packs`, every query's packs in token
/// order. Appends one Decision per node with children to `decisions` when it is not null.
void walk_tree(const PagedLayout& layout, const RadixTree& tree, const CostModel& model, std::vector<Pack>& packs,
               std::vector<Decision>* decisions);

/// A KV range of a walk pack while the KV split cuts it, in blocks.
struct Piece {
  int32_t pack = 0;         ///< the walk pack it belongs to
  int32_t block_begin = 0;  ///< first block
  int32_t block_end = 0;    ///< one past the last block
  int32_t token_end = 0;    ///< one past the last token (inside block_end - 1)
  /// Tokens of the piece.
  int32_t tokens(int page) const { return token_end - block_begin * page; }
};

/// Walk pack `pk` (index `pack`) uncut, as one piece over its whole blocks.
inline Piece whole_piece(int32_t pack, const Pack& pk, int page) {
  const int32_t end = pk.token_begin + pk.kv_len;
  return {pack, pk.token_begin / page, (end + page - 1) / page, end};
}

/// The KV split's rule in four pieces, shared by split_kv() and the incremental planner's check
/// that the last split still holds (so both always judge a piece the same way).
/// The split's CTA target: kSplitCtasPerSm CTA slots on each of `options.sms` SMs.
inline int64_t split_target_ctas(const PlannerOptions& options) { return int64_t{kSplitCtasPerSm} * options.sms; }
/// Whether a piece of `tokens` KV tokens is longer than one CTA slot's share of `cta_tokens` (the
/// KV tokens of all CTAs) when there are `target_ctas` slots.
inline bool longer_than_share(int64_t tokens, int64_t target_ctas, int64_t cta_tokens) {
  return tokens * target_ctas > cta_tokens;
}
/// Fewest blocks a piece of walk pack `pack` may keep after a cut: options.min_split_blocks, and
/// under TilePolicy::hopper, for a pack of more than kHopperMinRows rows (a 128- or 192-row CTA),
/// at least HopperRouting::min_piece tokens in whole pages of `shape`.
inline int32_t min_piece_blocks(const Pack& pack, const Shape& shape, const PlannerOptions& options) {
  const int32_t min_piece = options.hopper.min_piece;
  if (options.tiles != TilePolicy::hopper || pack.rows(shape.group()) <= kHopperMinRows || min_piece <= 0)
    return options.min_split_blocks;
  const int64_t pages = (int64_t{min_piece} + shape.page_size - 1) / shape.page_size;  // int64: no overflow
  return static_cast<int32_t>(std::max<int64_t>(options.min_split_blocks, pages));
}
/// Whether a piece of `blocks` blocks of walk pack `pack` is long enough to halve (each half at
/// least min_piece_blocks()).
inline bool long_enough_to_cut(int32_t blocks, const Pack& pack, const Shape& shape, const PlannerOptions& options) {
  return blocks / 2 >= min_piece_blocks(pack, shape, options);
}
/// The block where the split halves blocks [begin, end).
inline int32_t halving_block(int32_t begin, int32_t end) { return begin + (end - begin) / 2; }

/// Waves that the cut packs of one wave-fill candidate fill (1..kMaxFillWaves; planner.hpp,
/// "Wave fill"). How many waves of uncut CTAs the fill looks at is PlannerOptions::fill_window_waves.
inline constexpr int kMaxFillWaves = 4;
/// The wave fill's fixed cost of one round of CTAs on a slot, in KV bytes the slot could have
/// streamed meanwhile: a CTA's prologue (Q gather, first KV tile in flight) and epilogue, about
/// 1.5 us at the H200's 4.2 TB/s shared by 396 slots (10.6 GB/s each).
inline constexpr int64_t kCtaFixedBytes = 16 * 1024;
/// Cuts whose model cost is within this fraction of the cheapest count as ties, which go to the
/// fewest pieces: the model is not finer than that.
inline constexpr double kFillTieFraction = 0.03;
/// The wave fill's fixed cost of a merge launch that the cuts add (about 5 us), in the same units.
inline constexpr int64_t kMergeFixedBytes = 48 * 1024;

/// The CTA slots of the walk packs `packs`: options.sms x the resident CTAs per SM
/// (options.ctas_per_sm, or estimate_ctas_per_sm() where 0) of the tile rows most packs use
/// (ties: the smaller occupancy). Packs keep their rows when cut, so a split does not move it.
int64_t split_slots(const std::vector<Pack>& packs, const Shape& shape, const PlannerOptions& options);

/// The row class (index into kRowClasses: 16, 32, 64, 128, 192 rows) of a pack of `rows` tile rows.
int row_class(int rows);
/// The resident CTAs per SM of row class `cls`: options.ctas_per_sm[cls] (the occupancy calculator
/// on the GPU), or the estimate for the tile the class's long packs use (estimate_ctas_per_sm(),
/// or estimate_hopper_ctas_per_sm() for stage 8's tiles of 64 rows and more under TilePolicy::hopper).
int row_class_ctas_per_sm(const Shape& shape, const PlannerOptions& options, int cls);
/// Dynamic shared memory of one CTA of row class `cls` at the KV tile of long packs: the tile
/// row_class_ctas_per_sm() counts (the pack kernel's, or stage 8's for its 64-, 128- and 192-row classes).
int row_class_smem_bytes(const Shape& shape, const PlannerOptions& options, int cls);

/// Whether the wave fill prices cuts for walk packs making `ctas` CTAs on `slots` slots.
inline bool fill_applies(int64_t ctas, int64_t slots, const PlannerOptions& options) {
  return options.fill_waves && ctas <= int64_t{options.fill_window_waves} * slots;
}

/// Step 3b (stage 7): the wave fill. When fill_applies(), prices no cut, the fair-share cuts
/// `fair` (step 3a's pieces) and the equal cuts of the packs that come after the first few full
/// waves (planner.hpp, "Wave fill") by the wave model, and returns the cheapest pieces, sorted by
/// (pack, block_begin); `fair` unchanged otherwise. Never exceeds min_split_blocks or the
/// per-query cap. Reports what it saw and chose in `info` when not null.
std::vector<Piece> fill_waves(const std::vector<Pack>& packs, std::vector<Piece> fair, const Shape& shape,
                              const PlannerOptions& options, int num_requests, WaveFill* info);

/// Per row class (kRowClasses), whether the KV split's class check kept its packs whole.
using ClassVerdicts = std::array<bool, std::size(kRowClasses)>;

/// Step 3 (stage 7): cuts the longest piece in two while it is longer than one CTA slot's fair
/// share of all CTAs' tokens (see planner.hpp), within the minimum piece and the per-query cap,
/// then keeps whole the row classes whose cuts do not shorten their kernel (the class check).
/// Returns the pieces sorted by (pack, block_begin), the number of cuts in `cuts` and, when
/// `kept_whole` is not null, the classes the check kept whole. Only integers move:
/// O(packs + cuts x log cuts).
std::vector<Piece> split_kv(const std::vector<Pack>& packs, const Shape& shape, const PlannerOptions& options,
                            int num_requests, int32_t& cuts, ClassVerdicts* kept_whole = nullptr);

/// Step 3 in full (stage 7): split_kv() then fill_waves(); `cuts` = pieces added to the walk's
/// packs. Used by make_plan() and the incremental planner, so both cut alike.
std::vector<Piece> cut_packs(const std::vector<Pack>& packs, const Shape& shape, const PlannerOptions& options,
                             int num_requests, int32_t& cuts, WaveFill* info);

/// The pack that piece `piece` of `whole` becomes: the same queries over the piece's blocks
/// (no tile, no slots; `out`'s vectors are reused).
void piece_to_pack(const Pack& whole, const Piece& piece, int page, Pack& out);

/// Step 3c (PlannerOptions::take_leaves): moves every query's last pack that may become a tail
/// (planner.hpp, "Leaf tails") into the pack before it, as a PackTail, and drops it from `packs`.
/// Needs every query's packs in token order and no tiles or slots yet; a parent may have as many
/// rows as `options`' tiles run (kMaxTileRows, or stage 8's hopper.max_rows). Returns the tails made.
int32_t take_leaves(std::vector<Pack>& packs, const PagedLayout& layout, const PlannerOptions& options);

/// Step 4: the tile of pack `pack` under `options` (the fixed tile, or choose_tile()), with n
/// lowered until it fits the shape's head dim (fit_tile(), tile_budget.hpp).
TileShape tile_for(const Pack& pack, const PlannerOptions& options, const Shape& shape);

/// Step 5: each query numbers its packs 0..k-1 in plan order (token order), and
/// Plan::partials[r] = k.
void assign_slots(Plan& plan, int num_requests);

/// Plan::strategy of make_plan() under `options`.
std::string strategy_name(const PlannerOptions& options);

}  // namespace patlab::plan_steps
