#include "patlab/sparse/fsa.hpp"

#include <algorithm>
#include <map>
#include <numeric>
#include <utility>

#include "patlab/error.hpp"
#include "patlab/model/traffic.hpp"

namespace patlab::sparse {

namespace {

/// `rows` rounded up to whole tiles of kTileRows.
int64_t padded(int64_t rows) { return (rows + kTileRows - 1) / kTileRows * kTileRows; }

/// K plus V bytes of one token at one KV head.
int64_t kv_bytes_per_head_token(const Shape& s) { return traffic::kv_bytes_per_token(1, s.head_dim, s.kv_element_bytes()); }

}  // namespace

int64_t FsaView::total_rows() const {
  int64_t n = 0;
  for (const FsaBlock& b : blocks) n += static_cast<int64_t>(b.rows.size());
  return n;
}

int64_t FsaView::max_rows() const {
  int64_t n = 0;
  for (const FsaBlock& b : blocks) n = std::max<int64_t>(n, static_cast<int64_t>(b.rows.size()));
  return n;
}

// [fsa-view]
FsaView fsa_view(const PagedLayout& layout, const Selection& sel, const SparseOptions& o) {
  const int page = layout.shape.page_size;
  require(o.sel_block % page == 0, "l' = " + std::to_string(o.sel_block) + " is not a multiple of the page (" +
                                       std::to_string(page) + " tokens)");
  const int pages_per_block = o.sel_block / page;
  FsaView view;
  for (int kvh = 0; kvh < sel.num_kv_heads; ++kvh) {
    std::map<std::vector<int32_t>, size_t> index;  // page list -> its block in view.blocks
    for (int r = 0; r < layout.num_requests(); ++r) {
      const std::vector<int32_t>& table = layout.block_tables[static_cast<size_t>(r)];
      const int64_t len = layout.lengths[static_cast<size_t>(r)];
      for (int32_t b : sel.of(r, kvh)) {
        const size_t first = static_cast<size_t>(b) * static_cast<size_t>(pages_per_block);
        const size_t last = std::min(table.size(), first + static_cast<size_t>(pages_per_block));
        std::vector<int32_t> pages(table.begin() + static_cast<std::ptrdiff_t>(first),
                                   table.begin() + static_cast<std::ptrdiff_t>(last));
        auto [it, fresh] = index.emplace(pages, view.blocks.size());
        if (fresh) view.blocks.push_back({std::move(pages), selection_block_tokens(len, b, o), kvh, {}});
        view.blocks[it->second].rows.push_back({r, b});
      }
    }
  }
  return view;
}
// [fsa-view]

double LoopOrderCost::tile_utilisation() const {
  return padded_rows == 0 ? 0.0 : static_cast<double>(useful_rows) / static_cast<double>(padded_rows);
}

// [loop-order-cost]
LoopOrderCost nsa_order_cost(const PagedLayout& layout, const Selection& sel, const SparseOptions& o) {
  const Shape& s = layout.shape;
  LoopOrderCost c;
  for (int r = 0; r < layout.num_requests(); ++r) {
    const int64_t len = layout.lengths[static_cast<size_t>(r)];
    for (int kvh = 0; kvh < s.num_kv_heads; ++kvh) {
      for (int32_t b : sel.of(r, kvh)) c.kv_bytes += selection_block_tokens(len, b, o) * kv_bytes_per_head_token(s);
      const int64_t chosen = static_cast<int64_t>(sel.of(r, kvh).size());
      c.useful_rows += chosen * s.group();
      c.padded_rows += chosen * padded(s.group());
    }
  }
  c.q_bytes = int64_t{layout.num_requests()} * traffic::query_bytes(s.num_q_heads, s.head_dim);
  c.out_bytes = c.q_bytes;
  return c;
}

LoopOrderCost fsa_order_cost(const PagedLayout& layout, const FsaView& view) {
  const Shape& s = layout.shape;
  LoopOrderCost c;
  for (const FsaBlock& b : view.blocks) {
    const int64_t rows = static_cast<int64_t>(b.rows.size());
    c.kv_bytes += b.tokens * kv_bytes_per_head_token(s);
    c.q_bytes += rows * traffic::query_bytes(s.group(), s.head_dim);
    c.partial_bytes += traffic::partials_round_trip_bytes(s.group(), s.head_dim, rows);
    c.useful_rows += rows * s.group();
    c.padded_rows += padded(rows * s.group());
  }
  c.out_bytes = int64_t{layout.num_requests()} * traffic::query_bytes(s.num_q_heads, s.head_dim);
  return c;
}
// [loop-order-cost]

int span_cap(size_t physical_blocks, int sm_count) {
  const int64_t ctas = int64_t{kSpanCtasPerSm} * std::max(1, sm_count);
  const int64_t cap = (static_cast<int64_t>(physical_blocks) + ctas - 1) / ctas;
  return static_cast<int>(std::clamp<int64_t>(cap, 1, kMaxSpanBlocks));
}

// [fsa-spans]
std::vector<FsaSpan> fsa_spans(const FsaView& view, int sel_block, int cap, size_t per_tile) {
  std::vector<size_t> order(view.blocks.size());
  std::iota(order.begin(), order.end(), size_t{0});
  auto by_request = [](const FsaRow& a, const FsaRow& b) { return a.request < b.request; };
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    const FsaBlock& x = view.blocks[a];
    const FsaBlock& y = view.blocks[b];
    if (x.kv_head != y.kv_head) return x.kv_head < y.kv_head;
    return std::lexicographical_compare(x.rows.begin(), x.rows.end(), y.rows.begin(), y.rows.end(), by_request);
  });
  auto tiles = [&](size_t requests) { return (requests + per_tile - 1) / per_tile; };
  std::vector<FsaSpan> spans;
  for (size_t id : order) {
    const FsaBlock& blk = view.blocks[id];
    bool join = !spans.empty() && spans.back().kv_head == blk.kv_head &&
                static_cast<int>(spans.back().blocks.size()) < cap &&
                view.blocks[spans.back().blocks.back()].tokens == sel_block;
    if (join) {
      const FsaSpan& cur = spans.back();
      size_t fresh = 0;
      for (const FsaRow& row : blk.rows) fresh += cur.masks.count(row.request) == 0 ? 1 : 0;
      join = tiles(cur.masks.size() + fresh) <= tiles(cur.masks.size());
    }
    if (!join) spans.push_back({blk.kv_head, {}, {}});
    FsaSpan& cur = spans.back();
    const uint32_t bit = uint32_t{1} << cur.blocks.size();
    cur.blocks.push_back(id);
    for (const FsaRow& row : blk.rows) cur.masks[row.request] |= bit;
  }
  return spans;
}
// [fsa-spans]

// [fsa-packs]
std::vector<FsaPack> fsa_packs(const FsaView& view, const FsaSpan& span, size_t per_tile) {
  std::vector<std::pair<uint32_t, int32_t>> order;  // (mask, request): requests of one mask together
  for (const auto& [request, mask] : span.masks) order.emplace_back(mask, request);
  std::sort(order.begin(), order.end());
  std::vector<FsaPack> packs;
  for (size_t first = 0; first < order.size(); first += per_tile) {
    const size_t last = std::min(order.size(), first + per_tile);
    uint32_t chosen = 0;  // the span's blocks this pack's requests chose
    for (size_t i = first; i < last; ++i) chosen |= order[i].first;
    FsaPack pack;
    std::vector<int> renumber(span.blocks.size(), -1);
    for (size_t b = 0; b < span.blocks.size(); ++b)
      if (chosen >> b & 1u) {
        renumber[b] = static_cast<int>(pack.blocks.size());
        pack.blocks.push_back(span.blocks[b]);
        pack.tokens += view.blocks[span.blocks[b]].tokens;
      }
    for (size_t i = first; i < last; ++i) {
      uint32_t mask = 0;
      for (size_t b = 0; b < span.blocks.size(); ++b)
        if (order[i].first >> b & 1u) mask |= uint32_t{1} << renumber[b];
      pack.requests.push_back(order[i].second);
      pack.masks.push_back(mask);
    }
    packs.push_back(std::move(pack));
  }
  return packs;
}
// [fsa-packs]

namespace {

/// fsa_packs() of each of `spans`.
std::vector<std::vector<FsaPack>> packs_of(const FsaView& view, const std::vector<FsaSpan>& spans, size_t per_tile) {
  std::vector<std::vector<FsaPack>> packs;
  packs.reserve(spans.size());
  for (const FsaSpan& span : spans) packs.push_back(fsa_packs(view, span, per_tile));
  return packs;
}

/// span_plan_cost() of `spans` whose packs are `packs` (packs[i]: of spans[i]).
SpanPlanCost packs_cost(const PagedLayout& layout, const std::vector<FsaSpan>& spans,
                        const std::vector<std::vector<FsaPack>>& packs, int partial_o_elem_bytes) {
  const Shape& s = layout.shape;
  SpanPlanCost c;
  c.spans = static_cast<int64_t>(spans.size());
  for (size_t i = 0; i < spans.size(); ++i) {
    for (const FsaPack& pack : packs[i]) {
      c.packs += 1;
      c.kv_bytes += pack.tokens * kv_bytes_per_head_token(s);
    }
    c.entries += static_cast<int64_t>(spans[i].masks.size());
    c.longest = std::max<int64_t>(c.longest, static_cast<int64_t>(spans[i].blocks.size()));
  }
  c.q_bytes = c.entries * traffic::query_bytes(s.group(), s.head_dim);
  c.partial_bytes = traffic::partials_round_trip_bytes(s.group(), s.head_dim, c.entries, partial_o_elem_bytes);
  return c;
}

}  // namespace

SpanPlanCost span_plan_cost(const PagedLayout& layout, const FsaView& view, const std::vector<FsaSpan>& spans,
                            size_t per_tile, int partial_o_elem_bytes) {
  return packs_cost(layout, spans, packs_of(view, spans, per_tile), partial_o_elem_bytes);
}

// [plan-fsa-spans]
FsaSpanPlan plan_fsa_spans(const PagedLayout& layout, const FsaView& view, int sel_block, int max_blocks, int max_rows,
                           int sm_count, int partial_o_elem_bytes) {
  const int group = layout.shape.group();  // at most 16 (Shape's limit): a 32-row pack holds two requests
  auto plan = [&](int rows) {
    FsaSpanPlan p;
    p.cap = max_blocks > 0 ? max_blocks : span_cap(view.blocks.size(), sm_count);
    p.rows = rows;
    p.per_tile = static_cast<size_t>(span_pack_requests(group, rows));
    p.spans = fsa_spans(view, sel_block, p.cap, p.per_tile);
    p.packs = packs_of(view, p.spans, p.per_tile);
    p.cost = packs_cost(layout, p.spans, p.packs, partial_o_elem_bytes);
    return p;
  };
  if (max_rows > 0) return plan(max_rows);
  FsaSpanPlan narrow = plan(kSpanNarrowRows);
  FsaSpanPlan tall = plan(kSpanTallRows);
  const double ratio = static_cast<double>(tall.cost.total_bytes()) /
                       static_cast<double>(std::max<int64_t>(1, narrow.cost.total_bytes()));
  const bool fills = tall.cost.packs >= static_cast<int64_t>(kTallMinCtasPerSm) * sm_count;
  FsaSpanPlan& chosen = ratio <= kTallPackBytes && fills ? tall : narrow;
  chosen.tall_over_narrow = ratio;
  chosen.tall_packs = tall.cost.packs;
  return std::move(chosen);
}
// [plan-fsa-spans]

}  // namespace patlab::sparse
