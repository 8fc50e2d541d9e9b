/// @file planner.hpp
/// @brief The pack step on the host: block tables -> radix tree -> packs -> tiles -> KV split ->
/// slots, the validator every plan must pass, and the HBM traffic model of the strategies.
///
/// **Radix tree.** Requests are inserted by their *physical block ids* (a partial last block is
/// keyed by its id and its token count, so it can only end a path). A node is a run of blocks
/// that the same set of requests reads; it ends where their tables diverge or some of them end.
///
/// **Inherit or split (the byte cost model).** Walking the tree from the roots, every node holds
/// a *pending* KV range: its own blocks plus whatever its ancestors handed down. At a node with
/// children, each child either *inherits* the pending range (the child's packs re-read it; no
/// extra partial) or *splits* (the node packs the child's queries with the queries that end here
/// and reads the range once for all of them; each of the child's queries gets one more partial).
/// With T pending tokens, e queries ending at the node, split children of s_i queries (m = e +
/// sum s_i) and inherited children of s_j queries, the node's range costs
///
///     bytes = T * kv_bytes_per_token * (ceil(m / Q) + sum_j ceil(s_j / Q))   (KV loads)
///           + extra_partial_bytes * sum_i s_i                                  (one more partial each)
///
/// where Q is the most queries per pack (max tile rows / group size), kv_bytes_per_token is K and
/// V of one token over all KV heads (a pack is one CTA per KV head), and extra_partial_bytes is
/// what one more partial costs a query over all its query heads: q gathered once more by the
/// extra pack, the fp32 partial (o and lse) written, and read back by the merge. An inherited
/// child is charged ceil(s_j / Q) loads of the range: its queries, packed, read it at least that
/// often. make_plan() picks the set of inherited children that minimises this, ties going to
/// inherit (fewer partials): exactly on every node of practical size, greedily beyond (see
/// choose_inherit()). The model counts bytes only: decode attention is memory-bound, and the
/// math of a token is the same whichever pack reads it.
///
/// **KV split (stage 7).** A pack is one CTA per KV head, so CTAs = packs x Hkv. The target is
/// kSplitCtasPerSm CTAs per SM (`sms` is a parameter; 132 for H100): the CTA slots. The planner
/// cuts the longest pack in two at a block boundary while it is longer than one CTA slot's fair
/// share of all CTAs' KV tokens (sum kv_len x Hkv / (kSplitCtasPerSm x sms): a CTA longer than
/// that is a tail no schedule can hide). While CTAs are below the target the longest pack is
/// always longer than that share, so the rule also brings the CTAs up to the target. It never
/// makes a piece shorter than min_split_blocks blocks and never adds more than
/// max_splits_per_query pieces to any query. PAT hard-codes 54/27/13/6/4 packs (about 216 CTAs)
/// for its 108-SM A100, the same 2 CTAs per SM, and cuts packs longer than 5x the mean first;
/// the fair-share rule takes the place of that step. Then each row class's cuts must shorten its
/// own kernel: the longest-first schedule of the class's CTAs on its own slots (SMs x its CTAs
/// per SM; waves.hpp's lpt_schedule(), its rate cap for 16-row CTAs only) must end earlier cut
/// than whole by more than the wave fill's tie fraction, else that class's packs stay whole (the
/// wave fill's cuts too; plan_steps::split_kv, "split class check"). Halving equal packs whose
/// CTAs already fill their slots' waves only doubles the waves: on the H200, 16 prefix packs of
/// 64 rows at d = 256 (one such CTA per SM) ran 77.5 us whole and 86.5 us halved
/// (docs/results/2026-12-03-h200-stage7-vs-6).
///
/// **Wave fill (stage 7, step 3b).** Halving cannot make three pieces, and a fair share counted
/// against 2 CTAs per SM does not see waves: 64 requests of 16K tokens at 32/8 are 512 CTAs, 1.3
/// waves of an H200's 396 slots, and no piece is longer than the share. The slots are the SM count
/// times the CTAs one SM holds of the tile most packs use (`ctas_per_sm`: the occupancy
/// calculator on the GPU). When the walk's CTAs are within fill_window_waves waves of the slots, the
/// planner prices cuts with a wave model (waves.hpp: the busiest slot of a longest-first schedule,
/// a fixed cost per round of CTAs, one for an added merge): no cut, the fair-share cuts, and for
/// each number of leading waves kept whole, the remaining packs cut into k equal parts with k
/// chosen so that they fill 1..kMaxFillWaves more waves. The cheapest wins (ties: fewer pieces),
/// so stage 7 never takes a cut its model prices above no cut. Beyond fill_window_waves waves the
/// fair-share cuts stand (a tail is then a small part of the time). The default window
/// (kDefaultFillWindowWaves, 8) is the one measured: it prices 256 requests without sharing (5.2
/// waves, the last 17% full), which a window of 4 left uncut; `--fill-window` of `patlab plan` and
/// `patlab bench` moves it.
///
/// **Leaf tails (take_leaves, off in these options, on in stages 7 and 8's; step 3c).** After the split, a query's last pack
/// of at most kLeafTailMaxTokens tokens (its request's own tokens, one query) may become a *tail*
/// of the query's previous pack, the one whose range ends where the leaf begins: that pack reads
/// the leaf after its own range (PackTail) and only the query's rows see it (a per-row mask on the
/// GPU), so the query has one partial fewer, the leaf's CTAs and, where no query keeps two
/// partials, the merge are gone. The K/V bytes are the same; what is saved is a CTA per leaf and
/// KV head and the partials' round trip. A pack takes at most kLeafTailMaxTails tails (so its
/// pack space grows by at most 8 x 64 tokens), with at most one tail ending inside a page
/// (streamed last: the kernels never read a page's empty slots), and only if it has at most
/// leaf_tail_rows rows (kLeafTailRows, 64: the pack kernel's tails instance and stage 8's 64-row
/// wgmma one; up to stage 8's rows reach its 128- and 192-row tails tiles), with a 16-bit cache
/// (the instances built). The plan keeps its tails only if they remove at least
/// leaf_tail_min_cut (kTailMinCtaCut) of its CTAs, add no tile bucket (a tails tile of a shape
/// whose plain tile stays is a bucket, so a launch, more) and leave no query with two packs (the
/// merge goes: where it stayed, short batches ran up to 1.08x slower, docs/results/
/// 2026-12-05-leaf-tails run 7); otherwise it is the plan without them (a leaf_tail_min_cut of 0
/// keeps every tail the rules allow: the tests' grids).
/// docs/results/2026-12-05-cpu-leaf-tails sizes it on the suite; docs/results/2026-12-05-leaf-tails
/// measured it (why the row cap, the gates and the most tails a pack takes).
///
/// **Slots.** After the split, each query numbers its own packs 0..k-1 in token order (the plan
/// lists every query's packs in token order: the walk is preorder and a cut pack's pieces stay in
/// its place). A slot is never copied from another query of the pack.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "patlab/model/kv_cache.hpp"
#include "patlab/planner/plan.hpp"
#include "patlab/planner/tile_budget.hpp"

namespace patlab {

/// Default SM count (H100 SXM).
inline constexpr int kDefaultSms = 132;
/// Most SMs the command line lets a plan target (check_sm_slots()): far above any GPU's count
/// (132 on the H100 and H200), and low enough that the per-SM tables of the wave model and the
/// cluster schedule stay small. The library takes more (the tests model GPUs of 2000-4096 SMs).
inline constexpr int kMaxSms = 1024;

/// Throws Error(usage), naming the command line's --sms or --ctas-per-sm, unless `sms` is in
/// [1, kMaxSms] and `ctas_per_sm` in [0, kMaxCtasPerSm] (tile_budget.hpp; 0: estimated per tile).
void check_sm_slots(int sms, int ctas_per_sm);

/// KV-split target: CTAs per SM (PAT's A100 targets are about 216 CTAs on 108 SMs, also 2).
inline constexpr int kSplitCtasPerSm = 2;
/// Default shortest piece the KV split makes, in blocks (PAT: 8).
inline constexpr int kDefaultMinSplitBlocks = 8;
/// Default cap on pieces the KV split adds to one query (PAT: 32).
inline constexpr int kDefaultMaxSplitsPerQuery = 32;
/// PAT's credit for one partial fewer, in KV tokens per query (its inherit rule's `4 * s_c`).
inline constexpr int kPatPartialCreditTokens = 4;

/// Longest leaf (a query's last pack, its own tokens) that take_leaves lets a pack take as a tail:
/// one KV tile of the default table. The 1024-leaf trees' leaves are 32 tokens.
inline constexpr int kLeafTailMaxTokens = 64;
/// Most tails one pack takes. Each tail's tokens are scored by every row of the pack and used by
/// one query's rows, so a pack with T tails computes T times the tail tokens each row needs, and
/// its CTAs grow longer than the plan's others. On the H100 (docs/results/2026-12-05-leaf-tails,
/// runs 1-3) every workload whose packs took at most 8 tails gained or held (0.70-1.005x); the two
/// above 1.0x took 16 and 24 per pack (1.013x, 1.026x), their tails packs one long wave of CTAs
/// beside the others (Nsight Compute, run 3). It replaced a cap on the pack space's growth (twice
/// its own range or 1024 tokens), which at most 8 tails of at most 64 tokens never reach.
inline constexpr int kLeafTailMaxTails = 8;
/// Default PlannerOptions::leaf_tail_rows: most rows of a pack that takes tails. A 128- or 192-row
/// stage-8 CTA runs one per SM and is a long prefix's critical path; its tails lengthened it by
/// 37-75% and stage 8 by 1.08-1.46x on the `1,1024_2048,32` trees (H100, 2026-12-06), where stage
/// 7's 64-row packs with the same tails ran 0.92-0.98x.
inline constexpr int kLeafTailRows = 64;
/// Default PlannerOptions::leaf_tail_min_cut: the plan keeps its leaf tails only if they remove at
/// least this fraction of its CTAs: a few
/// tails save a few CTAs but add tails tile buckets (launches) and lengthen their parents (a
/// random tree where they removed 13% ran 1.06x, H100, 2026-12-06).
inline constexpr double kTailMinCtaCut = 0.25;
/// Whether stages 7-8 take leaf tails when nothing says otherwise (DeviceBatch::take_leaves, the
/// GPU tests' cases, bench and compare, whose `--no-take-leaves` turns them off). The planner's own
/// default (PlannerOptions::take_leaves, `patlab plan`) stays off: it plans what it is asked.
inline constexpr bool kStagesTakeLeaves = true;
/// Stage 9's largest cluster size when nothing says otherwise (DeviceBatch::max_cluster, the GPU
/// tests' cases, bench and compare, whose `--max-cluster 2|4` lets the model choose clusters): 1,
/// no multicast. Measured on thirteen shared-prefix batches (H100, docs/results/
/// 2026-12-07-cluster-sizes): no batch gained from clusters; where the model chose them, stage 9
/// took 1.18-1.96x its cap-1 time with clusters of 4 and 1.03-1.17x with clusters of 2, and 2.06x
/// on Qwen2.5-7B on the H200 (tutorial chapter 18, section 8). cluster_cost() prices one read per
/// cluster and no lock step, and the re-reads it saves are L2 hits. The planner's own default
/// (PlannerOptions::max_cluster, `patlab plan --cluster`) stays kMaxClusterSize: it shows the
/// model's choice.
inline constexpr int kStagesMaxCluster = 1;

/// How the planner picks each pack's tile: fixed (every pack fixed_tile), table (PAT's tile
/// table, choose_tile(), packs of up to kMaxTileRows rows) or hopper (stage 8: packs of up to
/// PlannerOptions::hopper.max_rows rows, the tile from hopper_policy_tile()).
enum class TilePolicy { fixed, table, hopper };

/// Knobs of make_plan().
struct PlannerOptions {
  int sms = kDefaultSms;                 ///< SMs of the target GPU: the KV-split target follows from it
  TilePolicy tiles = TilePolicy::table;  ///< fixed: every pack gets fixed_tile; table: choose_tile()
  TileShape fixed_tile{64, 64};          ///< fixed: the tile of every pack (m in kTileRowOptions, n in kTileKvOptions)
  int max_kv_tile = kDefaultMaxKvTile;   ///< table: cap on n (one of kTileKvOptions)
  bool split_kv = true;                  ///< cut long packs so the CTAs fill the GPU (stage 7); false for stages 4-6
  int min_split_blocks = kDefaultMinSplitBlocks;         ///< never cut a piece shorter than this many blocks
  int max_splits_per_query = kDefaultMaxSplitsPerQuery;  ///< cap on pieces a split may add per query
  /// Resident CTAs per SM of the kernel that runs packs of each row class (rows up to 16, 32,
  /// 64, 128, 192; kRowClasses), at the KV tile of long packs: the wave fill's CTA slots. Table
  /// and fixed policies: the pack kernel's 16-, 32- and 64-row tiles (the others unused);
  /// hopper: the pack kernel's 16 and 32 rows, then stage 8's 64-, 128- and 192-row kernels.
  /// 0 = estimated from shared memory on the host (tile_budget.hpp); the GPU stages fill it from
  /// the occupancy calculator of the kernel instances they launch.
  std::array<int, std::size(kRowClasses)> ctas_per_sm{};
  bool fill_waves = true;  ///< with split_kv: the wave fill (step 3b) may replace the fair-share cuts
  /// The wave fill prices cuts when the walk's CTAs are within this many waves of the slots
  /// (kDefaultFillWindowWaves; 1..kMaxFillWindowWaves).
  int fill_window_waves = kDefaultFillWindowWaves;
  /// Stage 9: the largest cluster size choose_clusters() may choose (1, 2 or 4, planner/cluster.hpp's
  /// kClusterSizes; 1: no multicast, every item solo).
  int max_cluster = 4;
  /// TilePolicy::hopper: stage 8's routing of packs and its row cap (HopperRouting). The default
  /// is stage 9's, kClusterRouting (no routing, 128 rows); stage 8 runs with kStage8Routing or the
  /// command line's (`--hopper-min-kv`, `--hopper-wide-kv`, `--hopper-rows`).
  HopperRouting hopper = kClusterRouting;
  /// Step 3c: a query's short last pack becomes a tail of the pack before it (see "Leaf tails"
  /// above); stages 7 and 8 set it unless `--no-take-leaves` (tutorial chapter 17), `patlab plan`
  /// with `--take-leaves`. Off by default here.
  bool take_leaves = false;
  /// With take_leaves: most rows of a pack that takes tails (1..hopper.max_rows; kLeafTailRows).
  /// Above 64 only stage 8's wgmma kernel runs such packs (its 128- and 192-row tails tiles).
  int leaf_tail_rows = kLeafTailRows;
  /// With take_leaves: the plan keeps its tails only if they remove at least this fraction of its
  /// packs, so of its CTAs, add no tile bucket and leave no query to merge ([0, 1]; kTailMinCtaCut;
  /// 0: whenever there are any, whatever buckets they add or merges they leave).
  double leaf_tail_min_cut = kTailMinCtaCut;
};

/// Most rows of one pack under `options`' tile policy: fixed_tile.m, kMaxTileRows (table) or
/// hopper.max_rows (hopper).
int max_pack_rows(const PlannerOptions& options);
/// KV tokens under which TilePolicy::hopper packs a range at most kHopperTileRows[0] rows at a
/// time: hopper.narrow_kv() (0: never; always 0 under other policies).
int hopper_narrow_kv(const PlannerOptions& options);

/// Stage 8's tile for a pack of `rows` rows and `kv_len` tokens (TilePolicy::hopper): packs of
/// at most kHopperMinRows / 2 rows keep the pack kernel's table tile (choose_tile(): 16 or 32
/// rows, n capped at max_kv_tile), where a 64-row wgmma tile would compute mostly padding and
/// its 256-thread CTA would cost more than the few rows gain; larger packs get stage 8's tiles,
/// m = the smallest of kHopperTileRows (64, 128, 192) that holds the rows, n = hopper_kv_tile(m)
/// (TileKernel::hopper: 128 tokens for 128 rows, else 64); but a pack of up to 64 rows and fewer
/// than `min_kv` tokens keeps the pack kernel and stage 7's tile for it (choose_tile()). Throws Error(usage) unless
/// 1 <= rows <= kHopperMaxRows and kv_len >= 1.
TileShape hopper_policy_tile(int rows, int kv_len, int max_kv_tile = kDefaultMaxKvTile, int min_kv = 0);
/// True for the tiles stage 8's own kernel runs (TileKernel::hopper); the others are the pack
/// kernel's.
bool is_hopper_tile(TileShape tile);

/// How the tile buckets of a plan (its packs of one tile shape: one kernel launch each, on side
/// streams that share the SMs) are ordered for launch.
enum class BucketOrder {
  appearance,    ///< the order in which the tiles first appear in the plan (stages 4-6)
  longest_pack,  ///< the bucket holding the longest pack first (stages 7 and 8 until 2026-12-04)
  footprint,     ///< fewest resident CTAs per SM first, ties longest pack first (stages 7 and 8, gated)
  /// fewest resident CTAs per SM first, ties the bucket of fewer packs first, then longest pack
  /// (stages 7 and 8 with chained buckets: a chained bucket waits until every CTA of the one before
  /// it has begun, so a small bucket ahead costs nothing, a bucket of several waves ahead holds the
  /// rest until its last wave)
  chain,
};

/// The host's estimate of the CTAs of `tile` one SM holds at `shape`: estimate_hopper_ctas_per_sm()
/// for stage 8's own tiles under TilePolicy::hopper (is_hopper_tile()), else the pack kernel's
/// estimate_ctas_per_sm(). Throws Error(usage) for a tile neither kernel runs.
int estimate_tile_ctas_per_sm(const Shape& shape, TileShape tile, TilePolicy tiles);

// [bucket launch order]
/// The distinct tiles of `plan`'s packs in launch order (the tiles of plan_buckets()).
/// `footprint` is first-fit decreasing by footprint: the bucket whose CTAs fit fewest per SM
/// (estimate_tile_ctas_per_sm() under `tiles`, the policy the plan was made with) goes first, so
/// its large CTAs take their places while the SMs are empty and the small CTAs of the other
/// buckets fill around them; launched after a bucket of small CTAs that fills every SM several
/// waves deep, they would start only as it drains and end as a tail. `chain` breaks ties between
/// buckets of one footprint by their packs, fewer first. Equal keys keep the order of appearance.
std::vector<TileShape> bucket_launch_order(const Plan& plan, const Shape& shape, BucketOrder order,
                                           TilePolicy tiles = TilePolicy::table);
// [bucket launch order]

/// The packs of one tile shape, launched together (one kernel launch on the GPU).
struct PlanBucket {
  TileShape tile;              ///< the tile of every pack in the bucket
  std::vector<int32_t> packs;  ///< indices into plan.packs, in the order of their CTAs
  int64_t tokens = 0;          ///< KV tokens over the bucket's packs
  int32_t longest = 0;         ///< KV tokens of its longest pack
  int ctas_per_sm = 0;         ///< with BucketOrder::footprint or chain: estimate_tile_ctas_per_sm(); 0 otherwise
};

/// The buckets of `plan` as a stage uploads them: one per tile, in bucket_launch_order(plan,
/// shape, order, tiles); within a bucket the packs in plan order, or with `longest_first` by
/// decreasing KV length, ties by first block (packs over one KV range side by side, so they read
/// it through L2 together). Every pack is in exactly one bucket.
std::vector<PlanBucket> plan_buckets(const Plan& plan, const Shape& shape, BucketOrder order, TilePolicy tiles,
                                     bool longest_first);

/// PAT's tile table with two changes: m = 64 if rows > 32, 32 if rows > 16, else 16; n = 16 if
/// kv_len <= 32, 32 if <= 64, 64 if <= 128, else 128 (PAT: the largest n not longer than the
/// range; ours the largest n *shorter* than it, so that a range of exactly one tile's length is
/// two tiles of half the length, both in flight, in a CTA of half the shared memory, and its
/// ring's second stage is not held idle); m = 64 needs n >= 32 (kMinKvForMaxRows). Then n is
/// capped at `max_kv_tile` (PAT's own table is max_kv_tile = 128; our default is 64, see
/// kDefaultMaxKvTile). Throws Error(usage) unless 1 <= rows <= kMaxTileRows, kv_len >= 1 and
/// max_kv_tile is one of kTileKvOptions.
TileShape choose_tile(int rows, int kv_len, int max_kv_tile = kDefaultMaxKvTile);

/// choose_tile()'s rule for n: a range of `kv_len` tokens may take the KV tile of `n` tokens only
/// when it is longer than one such tile (the largest n that passes is the range's, kTileKvOptions[0]
/// at least). The incremental planner asks it too, for the lengths at which a pack's tile changes.
constexpr bool kv_tile_below(int n, int kv_len) { return n < kv_len; }

/// The constants of the inherit-or-split cost model for one shape (see the file comment).
struct CostModel {
  int64_t kv_bytes_per_token = 0;   ///< K + V of one token over all KV heads
  int64_t extra_partial_bytes = 0;  ///< one more partial of one query: q re-gathered + partial written + read
  int queries_per_pack = 1;         ///< Q: max tile rows / group size
  /// hopper_narrow_kv() of the options: a node's pending range shorter than this many tokens is
  /// packed `short_queries_per_pack` queries at a time, and its inherit-or-split choice counts
  /// packs of that many (for_range()); 0: never.
  int short_range_tokens = 0;
  int short_queries_per_pack = 1;   ///< queries of at most kHopperTileRows[0] rows
  /// Queries of at most kHopperTileRows[1] rows when queries_per_pack allows 192-row packs
  /// (PlannerOptions::hopper.max_rows), else 0: see pack_queries().
  int narrower_queries_per_pack = 0;

  /// The model for `shape` when packs have at most `max_rows` rows.
  static CostModel of(const Shape& shape, int max_rows = kMaxTileRows);
  /// The model of make_plan() under `options`: max_pack_rows() rows, and the packs of ranges
  /// shorter than hopper_narrow_kv() capped at kHopperTileRows[0] rows.
  static CostModel of(const Shape& shape, const PlannerOptions& options);
  /// The model of a pending range of `tokens`: this one, or for a range shorter than
  /// short_range_tokens the same with Q = short_queries_per_pack (the walk packs such a range that
  /// many queries at a time, so its choice must count those packs).
  CostModel for_range(int64_t tokens) const;
  /// Packs that `queries` queries need (ceil(queries / Q)).
  int64_t packs_for(int64_t queries) const { return (queries + queries_per_pack - 1) / queries_per_pack; }
  /// Queries per pack the walk cuts `queries` queries of one range into: Q, or the 128-row cap
  /// (narrower_queries_per_pack) where it needs no more packs, so no more reads of the range.
  /// A 192-row pack is taken only where it saves a read: 256 rows are two 128-row packs, not a
  /// 192-row one beside a 64-row one.
  int64_t pack_queries(int64_t queries) const;
  /// Model bytes of a node's pending range of `tokens` with `ended` queries ending at the node,
  /// children of `child_queries` queries, and `inherit[i]` saying whether child i inherits.
  int64_t node_bytes(int64_t tokens, int64_t ended, const std::vector<int32_t>& child_queries,
                     const std::vector<bool>& inherit) const;
};

/// Most steps (children with a partial last pack x their spare rows) of the exact
/// inherit-or-split search at one node; a larger node is decided greedily.
inline constexpr int64_t kExactInheritWork = int64_t{1} << 20;

/// The inherit-or-split choice at one node: which children inherit the pending range of
/// `tokens`, given `ended` queries that end at the node. Minimises CostModel::node_bytes(),
/// ties going to fewer split children. A child whose queries fill whole packs (s % Q == 0)
/// inherits: same loads, fewer partials; a lone child with no query ending at the node too.
/// The rest is a knapsack over the children's remainder rows (s % Q), solved exactly by dynamic
/// programming within kExactInheritWork steps; beyond that, greedily (candidate sets of the
/// children that waste the fewest rows, then single flips until none lowers the bytes).
std::vector<bool> choose_inherit(const CostModel& model, int64_t tokens, int64_t ended,
                                 const std::vector<int32_t>& child_queries);

/// PAT's rule for one child, for comparison: inherit iff S == s_c or
/// (ceil(S/Q) - ceil((S-s_c)/Q) - ceil(s_c/Q)) * tokens + 4 * s_c >= 0 (a token count).
bool pat_inherits(int64_t node_queries, int64_t child_queries, int64_t tokens, int queries_per_pack);

/// One inherit-or-split decision, for reports and the tutorial.
struct Decision {
  int32_t token_begin = 0;  ///< pending range of the node
  int32_t token_end = 0;    ///< one past its last token (TreeNode::token_end)
  int32_t queries = 0;      ///< S: queries through the node
  int32_t ended = 0;        ///< queries whose request ends at the node
  int32_t children = 0;     ///< children of the node
  int32_t inherited = 0;      ///< children that inherit the pending range
  int32_t pat_inherited = 0;  ///< children PAT's rule would let inherit
  int64_t bytes = 0;              ///< model bytes of the choice
  int64_t bytes_pat = 0;          ///< model bytes of PAT's choice
  int64_t bytes_all_split = 0;    ///< model bytes if every child split
  int64_t bytes_all_inherit = 0;  ///< model bytes if every child inherited
};

/// What the wave fill (step 3b of the KV split, kv_split.cpp) saw and chose. Costs are the
/// model's per-slot bytes: the busiest CTA slot's KV bytes under a longest-first schedule, plus
/// kCtaFixedBytes per round of CTAs and kMergeFixedBytes when the cuts add a merge.
struct WaveFill {
  int64_t slots = 0;          ///< CTA slots: sms x resident CTAs per SM of the most common tile rows
  bool evaluated = false;     ///< the walk's CTAs were within fill_window_waves x slots
  int64_t ctas_whole = 0;     ///< CTAs of the walk's packs, uncut
  int64_t ctas_fair = 0;      ///< CTAs after the fair-share cuts (step 3a)
  int64_t ctas_chosen = 0;    ///< CTAs of the pieces chosen
  int64_t cost_whole = 0;     ///< model cost of no cut
  int64_t cost_fair = 0;      ///< model cost of the fair-share cuts
  int64_t cost_chosen = 0;    ///< model cost of the choice
  int candidates = 0;         ///< cuts evaluated
  std::string choice;         ///< "fair-share cuts", "no cut" or "W waves whole, the rest in k parts"
};

/// What make_plan() did, beyond the plan itself.
struct PlanInfo {
  int32_t tree_nodes = 0;          ///< radix tree nodes
  int32_t queries_per_pack = 0;    ///< Q
  int32_t packs_before_split = 0;  ///< packs the tree walk made
  int32_t kv_cuts = 0;             ///< cuts made by the KV split
  int32_t target_ctas = 0;         ///< kSplitCtasPerSm x sms (0 without KV split)
  int32_t leaf_tails = 0;          ///< leaves taken as tails (PlannerOptions::take_leaves)
  /// Leaves the rules allowed as tails, in a plan that then kept none: they would have removed
  /// fewer than PlannerOptions::leaf_tail_min_cut of its CTAs, added tile buckets, or left the
  /// merge in place.
  int32_t leaf_tails_declined = 0;
  /// With take_leaves and any tails allowed: the fraction of the CTAs they remove (kept or not).
  double leaf_tail_cut = 0;
  /// With leaf_tails_declined: the tile buckets (launches) the tails would have added (0: none).
  int32_t leaf_tail_buckets_added = 0;
  /// With leaf_tails_declined: the queries that would still have two or more packs with the tails,
  /// so partials to merge (0: none).
  int32_t leaf_tail_merged_left = 0;
  WaveFill fill;                   ///< the wave fill's decision (step 3b; empty without KV split)
  std::vector<Decision> decisions; ///< every node with children, in walk order
};

/// Builds the plan: radix tree over physical block ids, inherit-or-split by the byte cost model,
/// tiles, optional KV split, per-query slots. Plan::partials[r] = number of packs covering
/// request r. Plan::strategy = a short description. Throws Error(usage) on bad options or a
/// layout whose block tables do not match its lengths.
Plan make_plan(const PagedLayout& layout, const PlannerOptions& options);
/// make_plan(), also reporting what the planner did into `info` (when not null).
Plan make_plan(const PagedLayout& layout, const PlannerOptions& options, PlanInfo* info);

/// Every fault of `plan` against `layout`, one line each naming it (empty = valid): each query's
/// packs cover [0, len) exactly once in block order (no gap, no overlap), its slots are exactly
/// 0..k-1 with k = partials[r], every request is in some pack, rows <= kMaxPackRows and <= the
/// pack's tile m when set, tiles are built shapes, token_begin is page aligned, the pack's blocks
/// are the ones every query's table holds for its range, and only a query's last pack ends in a
/// partial block. At most kMaxReportedFaults lines, the last one counting the rest.
std::vector<std::string> validate_plan(const PagedLayout& layout, const Plan& plan);

/// Most fault lines validate_plan() returns.
inline constexpr int kMaxReportedFaults = 200;

/// HBM traffic of the strategies on this workload, in bytes; each includes reading q and writing
/// the output once.
struct Traffic {
  int64_t per_query_head;  ///< one CTA per (request, query head): every request's K/V read once per query head
  int64_t per_request;     ///< one CTA per (request, KV head): every request's K/V read once
  int64_t packed;          ///< the plan: each pack's KV once per KV head, plus its partials written and read back by the merge (queries with a single partial write the output directly)
  int64_t unique;          ///< the floor: unique KV blocks once
};
/// The traffic model (model/traffic.hpp) of the strategies: traffic::per_query_head_bytes(),
/// per_request_bytes(), plan_bytes() of `plan` with direct output, unique_bytes(). For `packed`,
/// q is counted once per pack that gathers it (once for a query in a single pack), as the pack
/// kernel reads it.
Traffic traffic_model(const PagedLayout& layout, const Plan& plan);

}  // namespace patlab
