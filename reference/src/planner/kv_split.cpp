// The planner, step 3: the KV split that cuts long packs until the CTAs fill the GPU (stage 7;
// tutorial chapter 02, section 4, tutorial/02-pack-step.md, and chapter 16, tutorial/16-pat.md).
#include "patlab/planner/planner.hpp"

#include <algorithm>
#include <queue>

#include "patlab/planner/planner_steps.hpp"
#include "planner_detail.hpp"

namespace patlab::plan_steps {

using planner_detail::ceil_div;

std::vector<Piece> split_kv(const std::vector<Pack>& packs, const Shape& shape, const PlannerOptions& o,
                            int num_requests, int32_t& cuts) {
  const int page = shape.page_size;
  const int64_t hkv = shape.num_kv_heads;
  // [split target]
  const int64_t target_ctas = split_target_ctas(o);
  std::vector<Piece> pieces;
  pieces.reserve(packs.size());
  int64_t cta_tokens = 0;  // sum of kv_len x Hkv: the KV tokens all CTAs read
  for (size_t p = 0; p < packs.size(); ++p) {
    const Pack& pk = packs[p];
    pieces.push_back({static_cast<int32_t>(p), pk.token_begin / page, static_cast<int32_t>(ceil_div(pk.token_begin + pk.kv_len, page)),
                      pk.token_begin + pk.kv_len});
    cta_tokens += int64_t{pk.kv_len} * hkv;
  }
  // [split target]
  cuts = 0;
  // A cut keeps the tokens of all CTAs, so a piece no longer than one slot's share now never will
  // be cut: only the longer ones enter the queue (in piece order, so ties break as before).
  std::vector<int32_t> candidates;
  for (int32_t i = 0; i < static_cast<int32_t>(pieces.size()); ++i)
    if (longer_than_share(pieces[static_cast<size_t>(i)].tokens(page), target_ctas, cta_tokens)) candidates.push_back(i);
  if (candidates.empty()) return pieces;
  auto shorter = [&](int32_t a, int32_t b) {
    const int32_t ta = pieces[static_cast<size_t>(a)].tokens(page), tb = pieces[static_cast<size_t>(b)].tokens(page);
    return ta != tb ? ta < tb : a > b;  // longest first; among equals, the earliest piece
  };
  std::priority_queue<int32_t, std::vector<int32_t>, decltype(shorter)> longest(shorter, std::move(candidates));
  std::vector<int32_t> added(static_cast<size_t>(num_requests), 0);  // pieces the split added per query
  // [split rule]
  while (!longest.empty()) {
    const int32_t i = longest.top();
    const Piece cur = pieces[static_cast<size_t>(i)];
    // Longer than one CTA slot's share? (While CTAs < target, the longest piece always is.)
    if (!longer_than_share(cur.tokens(page), target_ctas, cta_tokens)) break;
    longest.pop();
    const std::vector<int32_t>& qs = packs[static_cast<size_t>(cur.pack)].queries;
    const bool room = std::all_of(qs.begin(), qs.end(), [&](int32_t r) {
      return added[static_cast<size_t>(r)] < o.max_splits_per_query;
    });
    if (!long_enough_to_cut(cur.block_end - cur.block_begin, o) || !room) continue;  // final: too short, or a query is at its cap
    const int32_t mid = halving_block(cur.block_begin, cur.block_end);
    pieces[static_cast<size_t>(i)] = {cur.pack, cur.block_begin, mid, mid * page};
    pieces.push_back({cur.pack, mid, cur.block_end, cur.token_end});
    for (int32_t r : qs) ++added[static_cast<size_t>(r)];
    ++cuts;
    longest.push(i);
    longest.push(static_cast<int32_t>(pieces.size()) - 1);
  }
  // [split rule]
  // The first pieces are each pack's first piece, in pack order; the cut-off ones follow.
  auto in_order = [](const Piece& a, const Piece& b) {
    return a.pack != b.pack ? a.pack < b.pack : a.block_begin < b.block_begin;
  };
  const auto cut_off = pieces.begin() + static_cast<std::ptrdiff_t>(packs.size());
  std::sort(cut_off, pieces.end(), in_order);
  std::inplace_merge(pieces.begin(), cut_off, pieces.end(), in_order);
  return pieces;
}

void piece_to_pack(const Pack& whole, const Piece& piece, int page, Pack& out) {
  out.queries.assign(whole.queries.begin(), whole.queries.end());
  out.token_begin = piece.block_begin * page;
  out.kv_len = piece.tokens(page);
  const int32_t first = whole.token_begin / page;
  out.blocks.assign(whole.blocks.begin() + (piece.block_begin - first), whole.blocks.begin() + (piece.block_end - first));
}

}  // namespace patlab::plan_steps
