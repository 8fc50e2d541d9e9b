// Sparse decode, step 3 (tutorial chapter 22): attention over the chosen selection blocks, in
// NSA's loop order, in FSA's, and in NSA's split into balanced chunks for PSA's uneven budgets.
// All three are packs of the pack kernel (packed_tile.cuh: mma.sync m16n8k16 tiles, the paged
// KV loader, the online softmax, partials) with one KV head each (PackKernelArgs::pack_kv_head),
// built here on the host from the selection:
//  - NSA: one pack per (request, KV head): one query (its g heads: a 16-row tile, g of them
//    useful), its chosen blocks' pages one after the other (only a request's last block can be
//    partial, and it is always chosen, as a forced recent block, and last: so the blocks make one
//    range of whole pages). The output is written directly.
//  - FSA, by spans (cut on the host by fsa.hpp's fsa_spans()): per KV head, the chosen physical
//    blocks (fsa.hpp's index) sorted by the list of requests that chose them, so that blocks chosen
//    by the same requests are neighbours, then cut into *spans* of consecutive blocks. A span grows
//    while it stays under its length cap (sparse::span_cap(): sparse::kMaxSpanBlocks, lowered so
//    that the spans number about sparse::kSpanCtasPerSm per SM), while the union of its requests
//    needs no more row tiles (of the height sparse::plan_fsa_spans() chose, 32 or 64 rows by the
//    two cuts' byte models, or SpanOptions::rows) than it did (so no block is read more often
//    than its own rows need), and while its last block is whole (a request's short last block
//    ends a span, so that block i of a span is tokens [i l', (i + 1) l')). One pack per row tile
//    of the span's requests (sparse::fsa_packs(), kept in the plan: the requests ordered by the
//    blocks they chose, so that a pack's requests chose alike): it streams the span's blocks that
//    its requests chose once through the online softmax, each request's g rows masked to its own
//    blocks (PackKernelArgs::entry_mask, in the masked instances of span_tile.cu), and
//    writes one partial per (request, span); merge.cuh's kernel merges each request's partials.
//    Per block (a span of one) this is FSA's original order: every block read once per row tile,
//    but one CTA, one Q gather and one partial per (row, block), which made it latency-bound;
//    spans keep the reads and cut the rest.
//  - split (PSA): NSA's packs cut into chunks of at most k blocks, k chosen so that the chunks
//    number about kSplitCtasPerSm per SM, launched longest first; partials merged as FSA's.
// A request's slots number the most any of its KV heads writes; the (slot, KV head) pairs a
// KV head leaves unwritten (it chose fewer blocks) get the empty state (lse -inf, o 0), which the
// merge weighs zero, so a NaN-poisoned partial can only survive where a pack failed to write.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <iomanip>
#include <map>
#include <numeric>
#include <sstream>
#include <string>
#include <vector>

#include "patlab/cuda/check.cuh"
#include "patlab/cuda/dispatch.cuh"
#include "patlab/cuda/merge.cuh"
#include "patlab/cuda/packed_tile_launch.cuh"
#include "patlab/cuda/sparse_kernels.cuh"
#include "patlab/error.hpp"
#include "patlab/model/traffic.hpp"
#include "patlab/planner/tile_budget.hpp"
#include "patlab/sparse/fsa.hpp"

namespace patlab::cuda {

namespace {

/// Threads of the empty-partials kernel.
constexpr int kEmptyThreads = 128;

// [empty-partials]
/// Writes the empty state (o = 0, lse = -inf) into the g heads of KV head `pairs[2i + 1]` of
/// slot `pairs[2i]`: one CTA per pair. With `half`, o holds 16-bit values, whose zero (fp16's and
/// bf16's alike) is the 16-bit pattern 0.
__global__ void __launch_bounds__(kEmptyThreads)
    empty_partials_kernel(const int32_t* __restrict__ pairs, int group, int num_q_heads, int head_dim, void* o,
                          bool half, float* lse) {
  const int slot = pairs[2 * blockIdx.x], kv_head = pairs[2 * blockIdx.x + 1];
  const int64_t row0 = static_cast<int64_t>(slot) * num_q_heads + kv_head * group;
  for (int i = threadIdx.x; i < group * head_dim; i += kEmptyThreads) {
    if (half)
      static_cast<uint16_t*>(o)[row0 * head_dim + i] = 0;
    else
      static_cast<float*>(o)[row0 * head_dim + i] = 0.f;
  }
  for (int h = threadIdx.x; h < group; h += kEmptyThreads) lse[row0 + h] = -INFINITY;
}
// [empty-partials]

/// The packs of one order on the host, in PackKernelArgs' flattened form.
struct HostPacks : HostPackArrays {
  std::vector<int32_t> kv_head;  ///< per pack, its one KV head (PackKernelArgs::pack_kv_head)
  std::vector<uint32_t> masks;   ///< per entry, FSA spans only: PackKernelArgs::entry_mask
  std::vector<int32_t> rows;     ///< tile rows of each pack (queries x g)

  /// Adds a pack of `requests` (with their `slots`, and their span `entry_masks` or none) over
  /// `pages` (`tokens` tokens) at `head`.
  void add(const std::vector<int32_t>& requests, const std::vector<int32_t>& pack_slots,
           const std::vector<int32_t>& pages, int64_t tokens, int head, int group,
           const std::vector<uint32_t>& entry_masks = {}) {
    queries.insert(queries.end(), requests.begin(), requests.end());
    slots.insert(slots.end(), pack_slots.begin(), pack_slots.end());
    masks.insert(masks.end(), entry_masks.begin(), entry_masks.end());
    query_begin.push_back(static_cast<int32_t>(queries.size()));
    blocks.insert(blocks.end(), pages.begin(), pages.end());
    block_begin.push_back(static_cast<int32_t>(blocks.size()));
    kv_len.push_back(static_cast<int32_t>(tokens));
    kv_head.push_back(head);
    rows.push_back(static_cast<int32_t>(requests.size()) * group);
  }
  int count() const { return static_cast<int>(kv_len.size()); }
};

/// The pages of selection block `b` of request `r`.
std::vector<int32_t> block_pages(const PagedLayout& layout, int r, int b, int pages_per_block) {
  const std::vector<int32_t>& table = layout.block_tables[static_cast<size_t>(r)];
  const size_t first = static_cast<size_t>(b) * static_cast<size_t>(pages_per_block);
  const size_t last = std::min(table.size(), first + static_cast<size_t>(pages_per_block));
  return {table.begin() + static_cast<std::ptrdiff_t>(first), table.begin() + static_cast<std::ptrdiff_t>(last)};
}

/// The tile rows of a pack of `rows` rows: 16, 32 or 64.
int tile_rows(int rows) { return rows <= 16 ? 16 : rows <= 32 ? 32 : kSparseMaxTileRows; }

/// Blocks per chunk of the split: the chosen blocks over about kSplitCtasPerSm CTAs per SM.
int split_chunk(const sparse::Selection& sel, int sm_count) {
  const int64_t total = sel.total_blocks();
  const int64_t ctas = int64_t{kSplitCtasPerSm} * std::max(1, sm_count);
  return static_cast<int>(std::max<int64_t>(1, (total + ctas - 1) / ctas));
}

// [span-kv-tile]
/// Warps of an m x n span tile's CTAs that the occupancy calculator puts on one SM.
int span_resident_warps(const Shape& s, TileShape tile, int stages, int64_t smem_optin) {
  return span_tile_ctas_per_sm(s, tile, stages, smem_optin) * pack_threads(s.head_dim, tile.m, tile.n) / 32;
}

/// The KV tile of FSA's `m`-row span packs where SpanOptions::kv_tile leaves it to the branch:
/// kSpanNarrowKvTile where more of its warps are resident on an SM than of kSpanKvTile's (more
/// warps to hide each other's chains of dependent math), else kSpanKvTile. Warps, not CTAs: a
/// 16-row CTA has half the warps on the narrow tile (pack_warp_cols()), so more of them can be
/// fewer warps. At d = 128 the rule takes the narrow tile for the 64-row packs only (run k1 of
/// docs/results/2026-12-07-fsa-kv-tile: twelve warps per SM instead of eight).
int auto_span_kv_tile(const Shape& s, int m, int stages, int64_t smem_optin) {
  const TileShape wide = fit_tile({m, kSpanKvTile}, s.head_dim, s.kv_element_bytes());
  const TileShape narrow = fit_tile({m, kSpanNarrowKvTile}, s.head_dim, s.kv_element_bytes());
  return span_resident_warps(s, narrow, stages, smem_optin) > span_resident_warps(s, wide, stages, smem_optin)
             ? narrow.n
             : wide.n;
}
// [span-kv-tile]

}  // namespace

SelectedBranch::SelectedBranch(gpu::SparseOrder order, const PagedLayout& layout, const sparse::Selection& sel,
                               const sparse::SparseOptions& o, int sm_count, int64_t smem_optin,
                               gpu::SpanOptions span_shape)
    : order_(order), requests_(layout.num_requests()) {
  const Shape& s = layout.shape;
  const int g = s.group(), hkv = s.num_kv_heads, page = s.page_size;
  require(o.sel_block % page == 0, "l' is not a multiple of the page");
  const int pages_per_block = o.sel_block / page;
  const int chunk = order == gpu::SparseOrder::split ? split_chunk(sel, sm_count) : 0;
  HostPacks packs;
  // FSA's spans, first: they decide how many partials each (request, KV head) writes.
  sparse::FsaView view;
  sparse::FsaSpanPlan plan;
  std::vector<int32_t> writes(static_cast<size_t>(requests_) * static_cast<size_t>(hkv), 0);
  if (order == gpu::SparseOrder::fsa) {
    view = sparse::fsa_view(layout, sel, o);
    plan = sparse::plan_fsa_spans(layout, view, o.sel_block, span_shape.blocks, span_shape.rows, sm_count,
                                  traffic::partial_out_elem_bytes(span_shape.half_partials));
    for (const sparse::FsaSpan& span : plan.spans)
      for (const auto& entry : span.masks) ++writes[static_cast<size_t>(entry.first) * hkv + span.kv_head];
  }
  // Slots per request: the most partials one of its KV heads writes (none for NSA's order).
  std::vector<int32_t> per_request(static_cast<size_t>(requests_), 0);
  auto slots_of = [&](int r, int kvh) -> int32_t {
    const int32_t n = static_cast<int32_t>(sel.of(r, kvh).size());
    return order == gpu::SparseOrder::fsa     ? writes[static_cast<size_t>(r) * hkv + kvh]
           : order == gpu::SparseOrder::split ? (n + chunk - 1) / chunk
                                              : 0;
  };
  for (int r = 0; r < requests_; ++r)
    for (int kvh = 0; kvh < hkv; ++kvh) per_request[r] = std::max(per_request[r], slots_of(r, kvh));
  std::vector<int32_t> offsets(static_cast<size_t>(requests_) + 1, 0);
  std::partial_sum(per_request.begin(), per_request.end(), offsets.begin() + 1);
  std::vector<int32_t> empty;
  for (int r = 0; r < requests_; ++r)
    for (int kvh = 0; kvh < hkv; ++kvh)
      for (int32_t i = slots_of(r, kvh); i < per_request[r]; ++i) {
        empty.push_back(offsets[r] + i);
        empty.push_back(kvh);
      }

  // The length each pack is launched by, longest first: its own, or for FSA its span's longest
  // pack's, so that a span's packs launch next to each other and the blocks they share are read
  // from DRAM once and from L2 by the others.
  std::vector<int64_t> launch_len;
  if (order == gpu::SparseOrder::fsa) {
    // [fsa-packs]
    std::vector<int32_t> written(writes.size(), 0);  // partials each (request, KV head) has so far
    for (size_t i = 0; i < plan.spans.size(); ++i) {
      const sparse::FsaSpan& span = plan.spans[i];
      const std::vector<sparse::FsaPack>& span_packs = plan.packs[i];  // the packs the plan costed
      int64_t longest = 0;
      for (const sparse::FsaPack& pack : span_packs) {
        std::vector<int32_t> pages, pack_slots;
        for (size_t id : pack.blocks) pages.insert(pages.end(), view.blocks[id].pages.begin(), view.blocks[id].pages.end());
        for (int32_t r : pack.requests)
          pack_slots.push_back(offsets[static_cast<size_t>(r)] + written[static_cast<size_t>(r) * hkv + span.kv_head]++);
        packs.add(pack.requests, pack_slots, pages, pack.tokens, span.kv_head, g, pack.masks);
        longest = std::max(longest, pack.tokens);
      }
      launch_len.insert(launch_len.end(), span_packs.size(), longest);
    }
    // The spans' byte model (fsa.hpp's span_plan_cost(): what these packs read and write)
    const sparse::SpanPlanCost& cost = plan.cost;
    std::ostringstream line;
    line << std::setprecision(3) << cost.spans << " spans of " << view.blocks.size() << " physical blocks (mean "
         << static_cast<double>(view.blocks.size()) / static_cast<double>(std::max<int64_t>(1, cost.spans))
         << ", at most " << cost.longest << " blocks), " << cost.entries << " (request, span) partials, span model "
         << static_cast<double>(cost.total_bytes()) / 1e6 << " MB (KV " << static_cast<double>(cost.kv_bytes) / 1e6
         << ", partials " << static_cast<double>(cost.partial_bytes) / 1e6 << "), packs of at most " << plan.rows
         << " rows";
    if (plan.tall_over_narrow > 0)
      line << " (automatic: the 64-row cut's span model " << plan.tall_over_narrow << "x the 32-row cut's in "
           << plan.tall_packs << " CTAs)";
    line << "; " << packs.count() << " CTAs: ";
    notes_ = line.str();
    // [fsa-packs]
  } else {
    // [nsa-packs]
    for (int r = 0; r < requests_; ++r) {
      const int64_t len = layout.lengths[static_cast<size_t>(r)];
      for (int kvh = 0; kvh < hkv; ++kvh) {
        const std::vector<int32_t>& chosen = sel.of(r, kvh);
        const size_t step = chunk > 0 ? static_cast<size_t>(chunk) : std::max<size_t>(1, chosen.size());
        for (size_t at = 0; at < chosen.size(); at += step) {
          std::vector<int32_t> pages;
          int64_t tokens = 0;
          for (size_t i = at; i < std::min(chosen.size(), at + step); ++i) {
            const std::vector<int32_t> p = block_pages(layout, r, chosen[i], pages_per_block);
            pages.insert(pages.end(), p.begin(), p.end());
            tokens += sparse::selection_block_tokens(len, chosen[i], o);
          }
          const int32_t slot = chunk > 0 ? offsets[static_cast<size_t>(r)] + static_cast<int32_t>(at / step) : -1;
          packs.add({r}, {slot}, pages, tokens, kvh, g);
        }
      }
    }
    // [nsa-packs]
    launch_len.assign(packs.kv_len.begin(), packs.kv_len.end());
  }

  // One launch per tile shape, each listing its packs longest first (by launch_len; stable, so a
  // span's packs stay together).
  std::vector<int32_t> bucket;
  for (int m : {16, 32, kSparseMaxTileRows}) {
    std::vector<int32_t> ids;
    for (int i = 0; i < packs.count(); ++i)
      if (tile_rows(packs.rows[i]) == m) ids.push_back(i);
    if (ids.empty()) continue;
    std::stable_sort(ids.begin(), ids.end(), [&](int32_t a, int32_t b) { return launch_len[a] > launch_len[b]; });
    // FSA's spans: the ring SpanOptions::stages asks for, else the plain ring's kKvStages
    const int stages = order != gpu::SparseOrder::fsa ? 0 : span_shape.stages > 0 ? span_shape.stages : kKvStages;
    // FSA's spans: the KV tile SpanOptions::kv_tile asks for, else auto_span_kv_tile()'s
    const int kv_tile = order != gpu::SparseOrder::fsa ? kSparseKvTile
                        : span_shape.kv_tile > 0       ? span_shape.kv_tile
                                                       : auto_span_kv_tile(s, m, stages, smem_optin);
    const TileShape tile = fit_tile({m, kv_tile}, s.head_dim, s.kv_element_bytes());
    if (order == gpu::SparseOrder::fsa)
      configure_span_tile(s, tile, stages, smem_optin);
    else
      configure_pack_tile(s, tile, smem_optin);
    int64_t useful = 0;
    for (int32_t i : ids) useful += packs.rows[i];
    std::ostringstream line;
    line << (launches_.empty() ? "" : ", ") << ids.size() << " CTAs of " << tile.name() << " (" << std::setprecision(3)
         << static_cast<double>(useful) / static_cast<double>(ids.size()) << " useful rows each"
         << (stages > 0 ? ", a ring of " + std::to_string(stages) + " stages)" : ")");
    launches_.push_back({tile, static_cast<int>(bucket.size()), static_cast<int>(ids.size()), stages});
    bucket.insert(bucket.end(), ids.begin(), ids.end());
    notes_ += line.str();
  }
  if (chunk > 0) notes_ += "; chunks of at most " + std::to_string(chunk) + " blocks";
  if (order != gpu::SparseOrder::nsa)
    notes_ += "; " + std::to_string(offsets.back()) + (span_shape.half_partials ? " 16-bit" : " fp32") +
              " partial slots, " + std::to_string(empty.size() / 2) + " empty";

  arrays_ = DevicePackArrays(packs);
  kv_head_ = DeviceBuffer<int32_t>(packs.kv_head);
  bucket_ = DeviceBuffer<int32_t>(bucket);
  if (!packs.masks.empty()) masks_ = DeviceBuffer<uint32_t>(packs.masks);
  sel_block_ = o.sel_block;
  slot_offsets_ = DeviceBuffer<int32_t>(offsets);
  empty_ = DeviceBuffer<int32_t>(empty);
  empty_count_ = static_cast<int>(empty.size() / 2);
  const size_t slots = static_cast<size_t>(offsets.back());
  half_partials_ = span_shape.half_partials;
  partial_o_ = DeviceBuffer<float>(partial_o_floats(slots, s.num_q_heads, s.head_dim, half_partials_));
  partial_lse_ = DeviceBuffer<float>(slots * static_cast<size_t>(s.num_q_heads));
  if (launches_.size() > 1) {
    streams_ = std::make_unique<StreamFork>(static_cast<int>(launches_.size()));
    notes_ += ", one stream per tile shape";
  }
}

void SelectedBranch::run(const Shape& shape, const SparseBatch& b, void* sel_out, cudaStream_t stream) const {
  if (empty_count_ > 0) {
    empty_partials_kernel<<<empty_count_, kEmptyThreads, 0, stream>>>(empty_.get(), b.group, b.num_q_heads,
                                                                     shape.head_dim, partial_o_.get(), half_partials_,
                                                                     partial_lse_.get());
    PATLAB_CUDA_CHECK_LAUNCH();
  }
  PackKernelArgs args;
  args.q = b.q;
  args.k_pool = b.k_pool;
  args.v_pool = b.v_pool;
  args.out = sel_out;
  args.partial_o = partial_o_.get();
  args.partial_lse = partial_lse_.get();
  args.partial_half = half_partials_;
  arrays_.point(args);
  args.pack_kv_head = kv_head_.get();
  args.entry_mask = masks_.get();  // read by FSA's masked instances only
  args.mask_block_tokens = sel_block_;
  args.geo = b.geo;
  args.group = b.group;
  args.num_q_heads = b.num_q_heads;
  auto launch = [&](const Bucket& l, cudaStream_t on) {
    if (order_ == gpu::SparseOrder::fsa)
      launch_span_tile(shape, l.tile, l.stages, args, bucket_.get() + l.offset, l.count, on);
    else
      launch_pack_tile(shape, l.tile, args, bucket_.get() + l.offset, l.count, on);
  };
  run_on_streams(streams_.get(), stream, static_cast<int>(launches_.size()),
                 [&](int i, cudaStream_t s) { launch(launches_[static_cast<size_t>(i)], s); });
  if (order_ == gpu::SparseOrder::nsa) return;
  // [sparse-merge]
  dispatch_dtype_head_dim(shape, [&](auto tag, auto dim) {
    using T = typename decltype(tag)::type;
    launch_merge<T, decltype(dim)::value>(PartialsView{partial_o_.get(), partial_lse_.get(), slot_offsets_.get(), half_partials_},
                                          nullptr, requests_, b.num_q_heads, sel_out, stream);
  });
  // [sparse-merge]
}

}  // namespace patlab::cuda
