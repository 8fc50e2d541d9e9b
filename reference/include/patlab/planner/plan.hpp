/// @file plan.hpp
/// @brief Packs and plans: the work list that the packed oracle and the GPU stages 4-7 execute.
///
/// A *pack* is a set of queries that read the same KV token range through the same physical
/// blocks; on the GPU it is one CTA per KV head whose tile rows are the pack's queries times the
/// GQA group. Every pack writes, for each of its queries, one *partial* (output normalised by its
/// own softmax sum, and its lse) into that query's *slot*; a query's partials are merged.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "patlab/model/kv_cache.hpp"

namespace patlab {

/// Tile rows (m) a pack kernel is built for: one warp per 16 rows (mma.m16n8k16), 1 to 4 warps.
inline constexpr int kTileRowOptions[] = {16, 32, 64};
/// KV tokens per tile (n) a pack kernel is built for.
inline constexpr int kTileKvOptions[] = {16, 32, 64, 128};
/// Most rows (queries x group size) one pack may have: the largest tile's m.
inline constexpr int kMaxTileRows = kTileRowOptions[2];
/// Smallest n a 64-row (4-warp) tile runs with (PAT's table: m = 64 needs n >= 32).
inline constexpr int kMinKvForMaxRows = 32;
/// Rows of the stage-8 (Hopper) tiles: one, two or three consumer warpgroups of 64 rows.
inline constexpr int kHopperTileRows[] = {64, 128, 192};
/// Most rows of a stage-8 pack: three consumer warpgroups.
inline constexpr int kHopperMaxRows = kHopperTileRows[2];
/// Stage 8's default HopperRouting::max_rows (`--hopper-rows`): three consumer
/// warpgroups. On the H200 (docs/results/2026-12-04-h200-tall-tiles, run 1) 192-row packs took
/// 0.952x the time of 128-row ones (geometric mean over the 16 suite lines where they differ),
/// more than 3% faster on 10, more than 3% slower on none.
inline constexpr int kDefaultHopperMaxRows = kHopperTileRows[2];
/// Rows of stage 9's slices (two consumer warpgroups, the rows its kernel is built for), and
/// HopperRouting's own default max_rows.
inline constexpr int kClusterSliceRows = kHopperTileRows[1];
/// KV tokens per K/V stage of the ring of stage 8's 64- and 192-row CTAs and of its 16-row
/// tensor-map packs (the 128-row CTA's: hopper_kv_tile() in tile_budget.hpp).
inline constexpr int kHopperKvTile = 64;
/// KV tokens per K/V stage of stage 9's ring and of stage 8's 128-row CTA: twice kHopperKvTile,
/// so that a cluster's lock step (a stage refilled only when every member released it), the
/// full-barrier waits and the releases come once per 128 tokens. Measured against 64 on the H100
/// (docs/results/2026-12-06-stage9-wide): stage 9 0.79-0.95x the time where clusters run, 0.92x
/// at `--max-cluster 1`, 1.01x without sharing.
inline constexpr int kClusterKvTile = 2 * kHopperKvTile;
/// Fewest rows a stage-8 tile has (one consumer warpgroup): smaller packs run the pack kernel.
inline constexpr int kHopperMinRows = kHopperTileRows[0];
/// Stage 8's default HopperRouting::min_kv (`--hopper-min-kv`): a 64-row pack over fewer KV tokens runs the
/// pack kernel. Measured on the H200 (docs/results/2026-12-04-h200-hopper-min-kv, run 3): with
/// 512, `1,10_4096,416` at 32/8 ran 1.036x stage 7 eager, with 0 1.076x; elsewhere the two tied.
inline constexpr int kDefaultHopperMinKv = 512;
/// Stage 8's default HopperRouting::wide_kv (`--hopper-wide-kv`): no 128-row pack over fewer KV tokens. On the
/// H200 (same run) 128-row packs over 256-1500-token ranges lost to two 64-row ones by up to 31%
/// (`2,8,16,256_256,256,32,32`); over 2048 tokens and more they win (0.76x on `1,1024_2048,32`).
/// 1024 with kDefaultHopperMinPiece won on single 1-3K prefixes but lost up to 23% on deep trees
/// (docs/results/2026-12-05-h200-stage8-defaults, run 1), so 2048 stays.
inline constexpr int kDefaultHopperWideKv = 2048;
/// Stage 8's default HopperRouting::min_piece (`--hopper-min-piece`): the KV split leaves a 128- or
/// 192-row pack no piece shorter than 512 tokens. On the H200, against no minimum
/// (docs/results/2026-12-05-h200-stage8-defaults, run 2): 0.80-0.86x stage 8's time on
/// `1,10_4096,416` at 64/8 and the 2K and 3K prefixes of `1,64_L,128`, the only lines whose plan
/// it changed; the other 17 plans are the same.
inline constexpr int kDefaultHopperMinPiece = 512;
/// How stage 8 loads the K/V tiles of its packs of up to 16 rows (`--hopper-small-loader`).
enum class SmallLoader {
  cp_async,  ///< `cp.async`: stage 7's pack kernel, 16-byte copies from every thread
  tma,       ///< `tma`: the tensor-map pack kernel (tma_pack_tile.cuh), one mbarrier per stage
  tma_kv,    ///< `tma-kv`: the same, K and V on mbarriers of their own (S = Q K^T once K has landed)
};
/// Every SmallLoader, in the order `--hopper-small-loader` lists them.
inline constexpr SmallLoader kSmallLoaders[] = {SmallLoader::cp_async, SmallLoader::tma, SmallLoader::tma_kv};
/// The command-line name of `loader`: cp.async, tma or tma-kv.
const char* small_loader_name(SmallLoader loader);
/// The SmallLoader of command-line name `name`; throws Error(usage), one line, for any other.
SmallLoader parse_small_loader(const std::string& name);

/// Whether stage 8 runs `shape` on stage 7's plan and tile table (TilePolicy::table) rather than its
/// wgmma tiles (TilePolicy::hopper), which are built for a 16-bit cache at d = 64 and 128 only: an
/// fp8 cache, or d = 256. The stage (cuda/stages/08_hopper.cu), the host's byte model
/// (plan_stage_config()) and `patlab plan --hopper-tiles` read this one rule.
inline bool hopper_pack_plan(const Shape& shape) { return shape.kv_fp8() || shape.head_dim == 256; }

/// Stage 8's routing of packs (TilePolicy::hopper): which KV ranges are packed at most
/// kHopperTileRows[0] rows at a time and which of those packs keep the pack kernel, and the most
/// rows of a pack over the rest. One value carried whole from the command line (`--hopper-min-kv`,
/// `--hopper-wide-kv`, `--hopper-rows`) through PlannerOptions, the host's byte model, the GPU
/// runner and the tests. The default value is stage 9's (no routing, kClusterSliceRows rows: every
/// pack on its kernel); kStage8Routing is stage 8's.
struct HopperRouting {
  /// A node's KV range shorter than this many tokens is packed at most kHopperTileRows[0] rows at
  /// a time (CostModel::short_range_tokens), and a pack (or KV piece) of 33-64 rows shorter than it
  /// keeps the pack kernel and stage 7's tile (hopper_policy_tile()); 0: never.
  int min_kv = 0;
  /// A node's KV range shorter than this many tokens is packed at most kHopperTileRows[0] rows at
  /// a time, on stage 8's 64-row kernel where min_kv lets it: no 128-row pack over it; 0: never.
  int wide_kv = 0;
  /// Most rows of a pack (one of kHopperTileRows: 64, 128 or 192) over ranges of at least
  /// narrow_kv() tokens.
  int max_rows = kClusterSliceRows;
  /// Fewest KV tokens the KV split leaves in a piece of a pack of more than kHopperMinRows rows
  /// (plan_steps::min_piece_blocks(), whole pages; the split's min_split_blocks still holds): a
  /// 128- or 192-row CTA streams its piece through a ring of 64- or 128-token stages, and a
  /// piece of a few tiles pays the ring's fill for little (docs/results/2026-12-04-h200-hopper-min-kv,
  /// run 6: pieces of 192 tokens 18% slower than 64-row packs, 384 tokens 5-8% faster). 0: no
  /// minimum beyond min_split_blocks (stage 9's); stage 8's default is kDefaultHopperMinPiece.
  int min_piece = 0;
  /// How stage 8 loads the K/V tiles of its packs of up to 16 rows on KV tiles of kHopperKvTile
  /// tokens: stage 7's pack kernel and its cp.async loader (the default until the tensor-map
  /// kernel has been measured on the H200: docs/results/2026-12-05-h200-tma-small-packs), or the
  /// tensor-map pack kernel (tma_pack_tile.cuh) with one barrier per stage or one each for K and V.
  /// The plan is the same either way.
  SmallLoader small_loader = SmallLoader::cp_async;

  /// KV tokens under which a range is packed at most kHopperTileRows[0] rows at a time: the larger
  /// of min_kv and wide_kv (0: never).
  constexpr int narrow_kv() const { return min_kv > wide_kv ? min_kv : wide_kv; }
  /// The knobs as command-line options, e.g. `--hopper-min-kv 512 --hopper-wide-kv 2048 --hopper-rows 192
  /// --hopper-min-piece 0 --hopper-small-loader tma`.
  std::string flags() const;
};
/// Stage 8's default routing: kDefaultHopperMinKv, kDefaultHopperWideKv, kDefaultHopperMaxRows,
/// kDefaultHopperMinPiece.
inline constexpr HopperRouting kStage8Routing{kDefaultHopperMinKv, kDefaultHopperWideKv, kDefaultHopperMaxRows,
                                              kDefaultHopperMinPiece};
/// Stage 9's routing, HopperRouting's default: none (every pack on its kernel), kClusterSliceRows-row
/// slices.
inline constexpr HopperRouting kClusterRouting{};
/// Throws Error(usage), one line naming the knob by its command-line option, unless `routing`'s
/// token counts (min_kv, wide_kv, min_piece) are >= 0 and its rows one of kHopperTileRows.
void check_hopper_routing(const HopperRouting& routing);

/// Row classes of packs for the wave fill's slots: the pack kernel's 16, 32, 64 rows and stage
/// 8's 128 and 192 (PlannerOptions::ctas_per_sm).
inline constexpr int kRowClasses[] = {16, 32, 64, 128, 192};
/// Most rows any pack may have, under any tile policy: the largest tile's m.
inline constexpr int kMaxPackRows = kHopperMaxRows;
/// Default cap on n. A 128-token K/V tile, double-buffered at d=128, takes 128 KB of shared
/// memory, which leaves room for one CTA per SM: too few bytes in flight for a streaming
/// kernel. With n <= 64 two or three CTAs fit (tutorial/14-multitile.md has the measurement;
/// `--max-kv-tile 128` restores PAT's table).
inline constexpr int kDefaultMaxKvTile = 64;
/// Waves of uncut CTAs within which stage 7's wave fill prices cuts, by default: the window
/// measured on the H200 (tutorial/16-pat.md, "The wave fill": 8 against 4 took 4-6% off stage 7
/// on 256 requests without sharing, 5.2 waves, and changed nothing else measured). Beyond it the
/// tail of the last wave is at most a ninth of the time.
inline constexpr int kDefaultFillWindowWaves = 8;
/// Widest window `--fill-window` accepts: the fill prices about three cuts per wave of the window.
inline constexpr int kMaxFillWindowWaves = 16;

static_assert(kTileRowOptions[0] == 16 && kTileRowOptions[0] < kTileRowOptions[1] && kTileRowOptions[1] < kTileRowOptions[2],
              "tile rows are increasing multiples of the 16 rows of one mma fragment");
static_assert(kTileRowOptions[1] % 16 == 0 && kTileRowOptions[2] % 16 == 0, "tile rows are multiples of 16");
static_assert(kTileKvOptions[0] % 16 == 0 && kTileKvOptions[0] < kTileKvOptions[1] && kTileKvOptions[1] < kTileKvOptions[2] &&
                  kTileKvOptions[2] < kTileKvOptions[3],
              "KV tiles are increasing multiples of 16 tokens");
static_assert(kMaxTileRows % 16 == 0 && kMaxTileRows >= 16, "a pack holds at least one query of the largest group (16)");

/// The kernel that runs a tile: the pack kernel of stages 4-7, or stage 8's Hopper kernel (TMA
/// ring, wgmma). Both run 64 x 64 tiles, so the shape alone does not say which.
enum class TileKernel : uint8_t {
  pack,    ///< the pack kernel (mma.sync), every stage's
  hopper,  ///< stage 8's hopper_pack_kernel (also the tiles stage 9 clusters)
  /// the pack kernel's instance for packs with leaf tails (Pack::tails; PlannerOptions::take_leaves):
  /// each row sees the pack's own range and its own query's tail only
  tail,
  /// stage 8's hopper_pack_kernel's instance for packs with leaf tails (the same mask)
  hopper_tail,
};

/// Tile shape of a pack on the GPU: rows of the Q tile (m), tokens per K/V tile (n), and the
/// kernel that runs it.
struct TileShape {
  int m = 0;  ///< tile rows: 16, 32 or 64 (the pack kernel); 64 or 128 (stage 8)
  int n = 0;  ///< KV tokens per tile: 16, 32, 64 or 128
  TileKernel kernel = TileKernel::pack;  ///< which kernel runs it
  /// True when m, n and the kernel are all the same.
  bool operator==(const TileShape& o) const { return m == o.m && n == o.n && kernel == o.kernel; }
  /// True when m, n or the kernel differs.
  bool operator!=(const TileShape& o) const { return !(*this == o); }
  /// "m x n" as in reports, e.g. "64x64"; stage 8's kernel's tiles end in "h" ("128x128h"), the
  /// instances for packs with leaf tails in "t" ("64x64t": the pack kernel's, "128x128ht": stage 8's).
  std::string name() const {
    const char* suffix[] = {"", "h", "t", "ht"};
    return std::to_string(m) + "x" + std::to_string(n) + suffix[static_cast<int>(kernel)];
  }
};

/// True for the tiles of the instances that run packs with leaf tails (TileKernel::tail and
/// hopper_tail).
inline bool tails_tile(TileShape tile) {
  return tile.kernel == TileKernel::tail || tile.kernel == TileKernel::hopper_tail;
}

/// A leaf tail: the last tokens of one query of a pack, which the pack reads after its own range
/// and only that query's rows see (PlannerOptions::take_leaves; tutorial chapter 17). In the
/// query's sequence it follows the pack's range: tokens [token_begin + kv_len, + tail kv_len) of
/// the pack. In the pack's own token space ("pack space", what its CTA streams) each tail begins
/// at a page boundary after the range and the tails before it (tail_offset()); only the last tail
/// may end inside a page, so no token of the space lies between two tails (a kernel reads no
/// block slot that holds no token: those past the space are zero-filled).
struct PackTail {
  int32_t entry = 0;            ///< the query's index in Pack::queries (and Pack::slots)
  int32_t kv_len = 0;           ///< tokens of the tail (>= 1): up to the end of the query's request
  std::vector<int32_t> blocks;  ///< physical blocks of those tokens, in order
};

/// One unit of work: queries x one KV token range read through shared physical blocks.
struct Pack {
  std::vector<int32_t> queries;  ///< request index of each query, in row order
  std::vector<int32_t> slots;    ///< per query, the partial slot this pack writes
  int32_t token_begin = 0;       ///< first token of the range in each query's sequence (page-aligned)
  int32_t kv_len = 0;            ///< tokens in the range (>= 1)
  std::vector<int32_t> blocks;   ///< physical blocks covering [token_begin, token_begin + kv_len)
  TileShape tile;                ///< tile the GPU runs this pack with (unset for CPU-only plans)
  /// Leaf tails read after the range, at most one per query, in pack-space order, whole pages but
  /// the last (empty unless the plan was made with PlannerOptions::take_leaves); with any, kv_len
  /// is whole pages.
  std::vector<PackTail> tails;

  /// Rows of the pack's tile that hold data: queries x group size.
  int rows(int group) const { return static_cast<int>(queries.size()) * group; }
  /// Pack-space token where tail `i` begins: the range, then each earlier tail in whole pages of
  /// `page` tokens.
  int32_t tail_offset(size_t i, int page) const {
    int32_t at = kv_len;
    for (size_t j = 0; j < i; ++j) at += (tails[j].kv_len + page - 1) / page * page;
    return at;
  }
  /// Tokens of the pack's space, what its CTA streams: kv_len, or to the end of the last tail.
  int32_t space_len(int page) const {
    return tails.empty() ? kv_len : tail_offset(tails.size() - 1, page) + tails.back().kv_len;
  }
};

/// A plan: packs plus, per request, how many partials it has to merge.
struct Plan {
  std::vector<Pack> packs;        ///< the work: each pack writes one partial per query into that query's slot
  std::vector<int32_t> partials;  ///< per request: partial slots (the packs that cover it)
  std::string strategy;           ///< how the plan was made, for reports

  /// Sum of partials over requests.
  int64_t total_partials() const;
};

/// Chunk of the simple splitter that `patlab check` runs, in pages (the host-memory estimate
/// counts the partials of this plan).
inline constexpr int kSelfCheckChunkPages = 4;

/// What a pack's CTA streams and which of it each of its queries sees, as the kernels read it
/// (the device upload and the packed oracle both take it from pack_space(), so the oracle checks
/// the layout the GPU runs).
struct PackSpace {
  std::vector<int32_t> blocks;  ///< the range's blocks, then each tail's: token t is in blocks[t / page]
  int32_t own_len = 0;          ///< tokens of the range, which every query sees
  int32_t len = 0;              ///< tokens of the space (Pack::space_len())
  /// Per entry (query of the pack), the tokens [first, second) of the space holding its tail,
  /// {0, 0} for none: the entry sees [0, own_len) and these.
  std::vector<std::pair<int32_t, int32_t>> tails;
};

/// The pack space of `pack` on pages of `page` tokens: its range, then its tails, each from a page
/// boundary (Pack::tail_offset()).
PackSpace pack_space(const Pack& pack, int page);

/// The keys of one partial of a query: token ranges [begin, end) of the query's sequence.
using PartialKeys = std::vector<std::pair<int32_t, int32_t>>;
/// Per request, per partial slot (in slot order), the keys that partial covers: how a plan cuts
/// each query's keys. The emulation of 16-bit partials (emulated_attention(w, split), oracle.hpp)
/// computes and rounds each partial as the stages do.
using PartialSplit = std::vector<std::vector<PartialKeys>>;

/// The cut `plan` makes of each request's keys on `layout`: slot s of request r covers the range
/// of the pack that writes it, and that pack's leaf tail of r where it has one (r's last
/// tail.kv_len tokens). Throws Error(usage) when a pack names a request or slot the plan does not
/// have.
PartialSplit plan_partial_split(const Plan& plan, const PagedLayout& layout);
/// The same from the requests' lengths alone (PagedLayout::lengths), all the cut needs.
PartialSplit plan_partial_split(const Plan& plan, const std::vector<int32_t>& lengths);

/// "" when `a` and `b` have the same packs (queries, slots, range, blocks, tile, in order) and
/// the same partial counts; else one line naming the first difference.
std::string plan_difference(const Plan& a, const Plan& b);

/// The simple splitter: every request alone, cut into chunks of `chunk_tokens` (a multiple of
/// the page size). Throws Error(usage) on a chunk size that is not a positive page multiple.
Plan chunked_plan(const PagedLayout& layout, int chunk_tokens);

}  // namespace patlab
