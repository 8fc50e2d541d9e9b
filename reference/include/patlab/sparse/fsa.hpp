/// @file fsa.hpp
/// @brief FSA's view of a selection (which rows chose each physical block) and the byte and
/// tile-row models of the selected branch in NSA's and FSA's loop orders.
///
/// NSA's loop order: one CTA per (request, KV head) loads the q of the group's query heads (one
/// MMA tile of kTileRows rows, the group padded) and loops over its chosen blocks. FSA's order:
/// one CTA per (physical selection block, KV head) loads the block once and loops over the
/// (request) rows that chose it, writing one fp32 partial per (row, block) that a reduction
/// merges (the merge of chapter 01). A *physical* block is a list of page ids: l' is a multiple
/// of the page, so selection block b of request r is pages [b l'/page, (b + 1) l'/page) of its
/// block table, and requests that share a prefix share those pages, and so the block.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <vector>

#include "patlab/sparse/selection.hpp"

namespace patlab::sparse {

/// Rows of one tensor-core tile (the M of the mma): a tile of fewer useful rows is padded.
inline constexpr int kTileRows = 16;

// [span-pack-rows]
/// The narrow FSA span pack: at most this many tile rows (two warp rows of kTileRows).
inline constexpr int kSpanNarrowRows = 32;
/// The tall FSA span pack: at most this many tile rows (four warp rows).
inline constexpr int kSpanTallRows = 64;
/// By default (`patlab sparse --span-rows 0`) FSA's spans are cut for both pack heights and the
/// tall packs are taken when their span model reads at most this fraction of the narrow packs'
/// bytes (and they fill the GPU: kTallMinCtasPerSm). A span CTA is limited by its warps' chains of
/// dependent math more than by its bytes (docs/results/2026-12-07-fsa-span-stages, run p1): a
/// span whose requests fill two narrow packs is read twice (partly from L2), while one tall pack
/// computes four warp rows per tile. Measured with the packs of
/// fsa_packs() (graph replay, the span model's ratio tall / narrow -> FSA's time tall / narrow,
/// H100, 128-256 requests at groups 1-8, docs/results/2026-12-07-fsa-compact-packs run o1):
/// 0.816 -> 0.933, 0.847 -> 0.961, 0.892 -> 0.984, 0.912 -> 1.002, 0.96 -> 1.013: even at about
/// 0.91; 0.87 keeps a margin below it.
inline constexpr double kTallPackBytes = 0.87;
/// The tall packs are taken only where they number at least this many per SM: they halve the
/// CTAs, and where the CTAs are few a halved count leaves SMs idle at the end. Measured before
/// fsa_packs() (every pack streamed its span): 16-64 requests at group 4, span models 0.88-0.97
/// apart, tall packs 1.13-1.19x the time (H200, docs/results/2026-12-03-h200-span-ring); 16
/// requests at group 8, 0.80 apart, 1.15x (H100, docs/results/2026-12-07-fsa-auto-rows); those
/// tall cuts had 1.8-3.0 CTAs per SM of 132, the measured wins of run o1 7.4 or more.
inline constexpr int kTallMinCtasPerSm = 4;
// [span-pack-rows]

/// Requests one FSA span pack of at most `rows` tile rows holds at group `group`: at least one.
constexpr int span_pack_requests(int group, int rows) {
  const int r = rows / group;
  return r > 1 ? r : 1;
}

/// A choice of a selection block by one (request, KV head): request and block index in it.
struct FsaRow {
  int32_t request = 0;  ///< the choosing request (index in the batch)
  int32_t block = 0;  ///< selection-block index within the request
};

/// One physical selection block at one KV head, and every row that chose it.
struct FsaBlock {
  std::vector<int32_t> pages;  ///< physical page ids, in token order
  int64_t tokens = 0;          ///< tokens the block holds (l', or fewer for a request's last block)
  int kv_head = 0;             ///< the KV head it is read at
  std::vector<FsaRow> rows;    ///< requests (each standing for its group of query heads), ascending
};

/// FSA's index: the chosen physical blocks, each with the rows that chose it. Blocks are ordered
/// by KV head, then by first choosing request and block index.
struct FsaView {
  /// The chosen physical blocks, each once per KV head: by KV head, then by first choosing request and block.
  std::vector<FsaBlock> blocks;
  /// Rows summed over the blocks (= Selection::total_blocks()).
  int64_t total_rows() const;
  /// The most rows one physical block has.
  int64_t max_rows() const;
};

/// Builds FSA's index of `sel` on `layout`. Throws Error(usage) if l' is not a multiple of the
/// page size.
FsaView fsa_view(const PagedLayout& layout, const Selection& sel, const SparseOptions& o);

/// The selected branch's traffic and tensor-core rows in one loop order.
struct LoopOrderCost {
  int64_t kv_bytes = 0;       ///< K and V of the chosen blocks, as read
  int64_t q_bytes = 0;        ///< q of the group's heads, per CTA row that loads it
  int64_t partial_bytes = 0;  ///< partials written and read back by the reduction (FSA only)
  int64_t out_bytes = 0;      ///< the output, written once
  int64_t useful_rows = 0;    ///< query-head rows times blocks: the work itself
  int64_t padded_rows = 0;    ///< the same, with each tile padded to kTileRows rows
  /// Every byte of the model.
  int64_t total_bytes() const { return kv_bytes + q_bytes + partial_bytes + out_bytes; }
  /// useful_rows / padded_rows: how full the tensor-core tiles are.
  double tile_utilisation() const;
};

/// NSA's order: each (request, KV head) reads its chosen blocks and the q of its group once
/// (traffic.hpp's conventions: all K and V bytes charged, metadata not), and writes its output;
/// each block is one tile of the group's rows padded to kTileRows.
LoopOrderCost nsa_order_cost(const PagedLayout& layout, const Selection& sel, const SparseOptions& o);
/// FSA's order: each physical block read once per KV head; q of each choosing row's group read
/// per block; one partial (fp32 o and lse per query head) written and read back per (row,
/// block); the output written once by the reduction; each block's rows (requests times group)
/// packed into tiles of kTileRows.
LoopOrderCost fsa_order_cost(const PagedLayout& layout, const FsaView& view);

/// Most selection blocks of one FSA span: the bits of one mask word per (pack entry), the GPU
/// kernel's PackKernelArgs::entry_mask.
inline constexpr int kMaxSpanBlocks = 32;
/// FSA's spans: their length is capped so that the span CTAs number at least about this many per
/// SM (a long span is one CTA's serial stream of KV tiles; too few of them leave SMs idle).
inline constexpr int kSpanCtasPerSm = 2;

/// One FSA span: consecutive physical blocks of one KV head (indices into FsaView::blocks) and,
/// per request that chose any of them, the mask of the ones it chose (bit i: the span's block i).
struct FsaSpan {
  int kv_head = 0;                    ///< the KV head its blocks are read at
  std::vector<size_t> blocks;         ///< its blocks, indices into FsaView::blocks, in span order
  std::map<int32_t, uint32_t> masks;  ///< request -> chosen blocks of the span, requests ascending
};

/// The longest span by default: kMaxSpanBlocks, or less so that `physical_blocks` make about
/// kSpanCtasPerSm spans per SM of `sm_count`.
int span_cap(size_t physical_blocks, int sm_count);

/// Cuts FSA's index into spans: blocks sorted by (KV head, the list of requests that chose them),
/// then grown greedily while the span is shorter than `cap`, its last block holds `sel_block`
/// tokens (a request's short last block ends a span, so that block i of a span is tokens [i l',
/// (i + 1) l')), and the union of its requests fits in as many packs of `per_tile` requests as
/// before the block joined (so no block is read more often than its own requests need).
std::vector<FsaSpan> fsa_spans(const FsaView& view, int sel_block, int cap, size_t per_tile);

/// One pack of a span: up to `per_tile` of its requests, and the span's blocks that at least one
/// of them chose (the pack reads only these).
struct FsaPack {
  std::vector<int32_t> requests;  ///< its requests
  std::vector<uint32_t> masks;    ///< per request, its chosen blocks as bits of `blocks` (bit i: blocks[i])
  std::vector<size_t> blocks;     ///< the blocks it reads: indices into FsaView::blocks, in span order
  int64_t tokens = 0;             ///< tokens of `blocks`
};

/// The packs of `span` with `per_tile` requests a pack: its requests ordered by their masks (then
/// by index), so that requests that chose the same blocks share a pack, cut into packs of
/// `per_tile`; each pack keeps only the blocks its requests chose, and its masks are renumbered
/// to them. The number of packs is the span's requests over `per_tile`, rounded up.
std::vector<FsaPack> fsa_packs(const FsaView& view, const FsaSpan& span, size_t per_tile);

/// What FSA's spans read and write on the GPU: the packs of fsa_packs(), each streaming the
/// blocks its requests chose; q per pack entry; a partial per (request, span) written and read
/// back (`partial_o_elem_bytes` per element of o: traffic::partial_out_elem_bytes()). The output
/// is not counted.
struct SpanPlanCost {
  int64_t spans = 0;          ///< spans
  int64_t packs = 0;          ///< packs (CTAs): spans times the packs of their requests
  int64_t entries = 0;        ///< (request, span) pairs: the partials written
  int64_t longest = 0;        ///< blocks of the longest span
  int64_t kv_bytes = 0;       ///< K and V as the packs read them (each its requests' blocks of the span)
  int64_t q_bytes = 0;        ///< q of the group per pack entry
  int64_t partial_bytes = 0;  ///< partials written and read back
  /// Every byte of the model.
  int64_t total_bytes() const { return kv_bytes + q_bytes + partial_bytes; }
};

/// The span model of `spans` (fsa_spans() of `view` on `layout`) with packs of `per_tile`
/// requests.
SpanPlanCost span_plan_cost(const PagedLayout& layout, const FsaView& view, const std::vector<FsaSpan>& spans,
                            size_t per_tile, int partial_o_elem_bytes);

/// FSA's spans as the GPU branch cuts them from its options: the cap, the pack height and the
/// spans, with the span models that chose the height.
struct FsaSpanPlan {
  int cap = 0;                 ///< the longest span allowed (blocks)
  int rows = 0;                ///< the most tile rows of a pack (kSpanNarrowRows or kSpanTallRows, or the option's)
  size_t per_tile = 0;         ///< requests one pack holds (span_pack_requests())
  std::vector<FsaSpan> spans;  ///< fsa_spans() with them
  /// fsa_packs() of each span (packs[i]: of spans[i]): the packs `cost` counts, which the GPU
  /// branch launches
  std::vector<std::vector<FsaPack>> packs;
  SpanPlanCost cost;  ///< span_plan_cost() of `spans`
  /// Automatic height only: the tall plan's span model bytes over the narrow plan's (0 where the
  /// height was given).
  double tall_over_narrow = 0.0;
  /// Automatic height only: the tall plan's packs (CTAs; 0 where the height was given).
  int64_t tall_packs = 0;
};

/// Cuts `view`'s spans (of `layout`) with at most `max_blocks` blocks a span (0: span_cap() on
/// `sm_count` SMs) and packs of at most `max_rows` tile rows (0: automatic, kSpanTallRows where the
/// tall plan's span model is at most kTallPackBytes of the narrow plan's and its packs number at
/// least kTallMinCtasPerSm per SM, else kSpanNarrowRows),
/// its partials' o of `partial_o_elem_bytes` a value.
FsaSpanPlan plan_fsa_spans(const PagedLayout& layout, const FsaView& view, int sel_block, int max_blocks, int max_rows,
                           int sm_count, int partial_o_elem_bytes);

}  // namespace patlab::sparse
