// The planner, step 3: the KV split that cuts long packs until the CTAs fill the GPU (stage 7;
// tutorial chapter 02, section 4, tutorial/02-pack-step.md, and chapter 16, tutorial/16-pat.md).
#include "patlab/planner/planner.hpp"

#include <algorithm>
#include <array>
#include <iterator>
#include <numeric>
#include <queue>

#include "patlab/model/traffic.hpp"
#include "patlab/planner/planner_steps.hpp"
#include "patlab/planner/tile_budget.hpp"
#include "patlab/planner/waves.hpp"
#include "planner_detail.hpp"

namespace patlab::plan_steps {

using planner_detail::ceil_div;

namespace {

// [split class check]
/// CTAs of a class (`per_sm` at most, each `smem` bytes of shared memory) one SM may hold while a
/// CTA of `other_smem` bytes still fits beside them: at least 1.
int64_t per_sm_with_room(int64_t per_sm, int smem, int other_smem) {
  int64_t k = per_sm;
  while (k > 1 && k * (smem + kSmemReservedPerCta) + other_smem + kSmemReservedPerCta > kSmemPerSm) --k;
  return k;
}

/// The KV split's check per row class (planner.hpp, "KV split"): each class's cuts must shorten its
/// own kernel. The longest-first schedule of the class's CTAs on its own slots (SMs x its CTAs per
/// SM; lpt_schedule(), with the wave model's rate cap for 16-row CTAs alone on an SM) must end earlier
/// with `pieces` than with the packs whole, by more than the wave fill's tie fraction; else every
/// pack of that class becomes one whole piece again, in the place of its first piece (the others
/// are dropped, the order kept). Halving equal packs that already fill their slots' waves, one
/// CTA per SM, only doubles the waves. The buckets run side by side on streams, and the smallest
/// class's CTAs run beside a larger class's only where shared memory is left for one of them
/// (docs/results/2026-12-03-h200-cta-timeline): while the smallest class has a CTA for every SM, a
/// larger class's slots count only the CTAs per SM that leave that room (at d = 128 one 64x64 CTA
/// of 81 KB beside two 16x64 ones of 69 KB; two of them leave none), so a cut that would put two on
/// an SM buys nothing by this check.
ClassVerdicts keep_classes_whole(const std::vector<Pack>& packs, const Shape& shape, const PlannerOptions& o,
                                 std::vector<Piece>& pieces) {
  const int page = shape.page_size;
  const int64_t hkv = shape.num_kv_heads;
  constexpr size_t kClasses = std::size(kRowClasses);
  std::vector<int> class_of(packs.size());
  std::array<std::vector<CtaGroup>, kClasses> whole_ctas, cut_ctas;
  for (size_t p = 0; p < packs.size(); ++p) {
    const Pack& pk = packs[p];
    class_of[p] = row_class(static_cast<int>(pk.queries.size()) * shape.group());
    const int64_t tokens = whole_piece(static_cast<int32_t>(p), pk, page).tokens(page);
    whole_ctas[static_cast<size_t>(class_of[p])].push_back({tokens, hkv});
  }
  for (const Piece& q : pieces)
    cut_ctas[static_cast<size_t>(class_of[static_cast<size_t>(q.pack)])].push_back({q.tokens(page), hkv});
  size_t smallest = 0;  // the smallest class with CTAs
  while (smallest + 1 < kClasses && whole_ctas[smallest].empty()) ++smallest;
  const int64_t smallest_ctas = static_cast<int64_t>(whole_ctas[smallest].size()) * hkv;
  ClassVerdicts keep_whole{};
  for (size_t c = 0; c < kClasses; ++c) {
    if (cut_ctas[c].size() == whole_ctas[c].size()) continue;  // no cut in this class
    int64_t per_sm = row_class_ctas_per_sm(shape, o, static_cast<int>(c));
    if (c != smallest && smallest_ctas >= o.sms)
      per_sm = per_sm_with_room(per_sm, row_class_smem_bytes(shape, o, static_cast<int>(c)),
                                row_class_smem_bytes(shape, o, static_cast<int>(smallest)));
    // A 16-row CTA alone on its SM streams faster (waves.hpp's rate cap, measured on 16-row CTAs);
    // a larger one is bound by its own math: 64 CTAs of the 64x64 tile (1280 tokens, d = 128, one
    // per SM) took 34.9 us, 128 of half the length 21.5 us (docs/results/2026-12-03-h200-stage7-vs-6):
    // 1.6x from twice the CTAs, where a cap of 2 would have priced no gain. Their cap is taken as 1.
    const double rate_cap = kRowClasses[c] <= kWarpRows ? cta_rate_cap(shape.kv_element_bytes(), shape.head_dim) : 1.0;
    const double whole_time = lpt_schedule(whole_ctas[c], o.sms, per_sm, rate_cap).time;
    const double cut_time = lpt_schedule(cut_ctas[c], o.sms, per_sm, rate_cap).time;
    keep_whole[c] = cut_time >= whole_time * (1 - kFillTieFraction);
  }
  if (std::none_of(keep_whole.begin(), keep_whole.end(), [](bool k) { return k; })) return keep_whole;
  std::vector<bool> placed(packs.size(), false);
  size_t out = 0;
  for (size_t i = 0; i < pieces.size(); ++i) {
    const size_t p = static_cast<size_t>(pieces[i].pack);
    if (!keep_whole[static_cast<size_t>(class_of[p])]) {
      pieces[out++] = pieces[i];
    } else if (!placed[p]) {
      pieces[out++] = whole_piece(pieces[i].pack, packs[p], page);
      placed[p] = true;
    }
  }
  pieces.resize(out);
  return keep_whole;
}
// [split class check]

}  // namespace

std::vector<Piece> split_kv(const std::vector<Pack>& packs, const Shape& shape, const PlannerOptions& o,
                            int num_requests, int32_t& cuts, ClassVerdicts* kept_whole) {
  const int page = shape.page_size;
  const int64_t hkv = shape.num_kv_heads;
  // [split target]
  const int64_t target_ctas = split_target_ctas(o);
  std::vector<Piece> pieces;
  pieces.reserve(packs.size());
  int64_t cta_tokens = 0;  // sum of kv_len x Hkv: the KV tokens all CTAs read
  for (size_t p = 0; p < packs.size(); ++p) {
    const Pack& pk = packs[p];
    pieces.push_back(whole_piece(static_cast<int32_t>(p), pk, page));
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
    const Pack& whole_pack = packs[static_cast<size_t>(cur.pack)];
    const std::vector<int32_t>& qs = whole_pack.queries;
    const bool room = std::all_of(qs.begin(), qs.end(), [&](int32_t r) {
      return added[static_cast<size_t>(r)] < o.max_splits_per_query;
    });
    // final: too short to halve (min_piece_blocks()), or a query is at its cap
    if (!long_enough_to_cut(cur.block_end - cur.block_begin, whole_pack, shape, o) || !room) continue;
    const int32_t mid = halving_block(cur.block_begin, cur.block_end);
    pieces[static_cast<size_t>(i)] = {cur.pack, cur.block_begin, mid, mid * page};
    pieces.push_back({cur.pack, mid, cur.block_end, cur.token_end});
    for (int32_t r : qs) ++added[static_cast<size_t>(r)];
    longest.push(i);
    longest.push(static_cast<int32_t>(pieces.size()) - 1);
  }
  // [split rule]
  const ClassVerdicts verdicts = keep_classes_whole(packs, shape, o, pieces);
  if (kept_whole) *kept_whole = verdicts;
  cuts = static_cast<int32_t>(pieces.size() - packs.size());
  // The first pieces are each pack's first piece, in pack order; the cut-off ones follow.
  auto in_order = [](const Piece& a, const Piece& b) {
    return a.pack != b.pack ? a.pack < b.pack : a.block_begin < b.block_begin;
  };
  const auto cut_off = pieces.begin() + static_cast<std::ptrdiff_t>(packs.size());
  std::sort(cut_off, pieces.end(), in_order);
  std::inplace_merge(pieces.begin(), cut_off, pieces.end(), in_order);
  return pieces;
}

int row_class(int rows) {
  constexpr int kClasses = static_cast<int>(std::size(kRowClasses));
  int c = 0;
  while (c + 1 < kClasses && rows > kRowClasses[c]) ++c;
  return c;
}

namespace {

/// Whether row class `cls` runs on stage 8's own tiles (hopper_smem_bytes()) rather than the pack kernel's.
bool hopper_class(const PlannerOptions& o, int cls) {
  return o.tiles == TilePolicy::hopper && kRowClasses[static_cast<size_t>(cls)] >= kHopperMinRows;
}

/// The pack kernel's tile for the long packs of row class `cls` (its rows, the KV tile cap, fit to d).
TileShape row_class_tile(const Shape& shape, const PlannerOptions& o, int cls) {
  return fit_tile({std::min(kRowClasses[static_cast<size_t>(cls)], kMaxTileRows), o.max_kv_tile}, shape.head_dim,
                  shape.kv_element_bytes());
}

}  // namespace

int row_class_smem_bytes(const Shape& shape, const PlannerOptions& o, int cls) {
  if (hopper_class(o, cls)) {
    const int m = kRowClasses[static_cast<size_t>(cls)];
    return hopper_smem_bytes(shape.head_dim, m, hopper_kv_tile(m));
  }
  const TileShape t = row_class_tile(shape, o, cls);
  return pack_smem_bytes(shape.head_dim, t.m, t.n, shape.kv_element_bytes());
}

int row_class_ctas_per_sm(const Shape& shape, const PlannerOptions& o, int cls) {
  const size_t i = static_cast<size_t>(cls);
  if (o.ctas_per_sm[i] > 0) return o.ctas_per_sm[i];
  if (hopper_class(o, cls)) {
    const int m = kRowClasses[i];
    return estimate_hopper_ctas_per_sm(shape.head_dim, m, hopper_kv_tile(m));
  }
  const TileShape t = row_class_tile(shape, o, cls);
  return estimate_ctas_per_sm(shape.head_dim, t.m, t.n, shape.kv_element_bytes());
}

// [wave fill]
int64_t split_slots(const std::vector<Pack>& packs, const Shape& shape, const PlannerOptions& o) {
  // Walk packs per row class (kRowClasses): 16, 32, 64 rows, and 128 with stage 8's tiles.
  constexpr int kClasses = static_cast<int>(std::size(kRowClasses));
  std::array<int64_t, kClasses> packs_of{};
  for (const Pack& p : packs)
    ++packs_of[static_cast<size_t>(row_class(static_cast<int>(p.queries.size()) * shape.group()))];
  int best = 0;
  for (int i = 1; i < kClasses; ++i) {
    const size_t a = static_cast<size_t>(i), b = static_cast<size_t>(best);
    if (packs_of[a] > packs_of[b] ||
        (packs_of[a] == packs_of[b] && row_class_ctas_per_sm(shape, o, i) < row_class_ctas_per_sm(shape, o, best)))
      best = i;
  }
  return int64_t{o.sms} * row_class_ctas_per_sm(shape, o, best);
}

namespace {

/// Cuts blocks [begin, end) of pack `pack` (ending at token `token_end`) into `k` parts of equal
/// blocks (parts differ by at most one block when k does not divide them), appended to `out`.
void cut_equal(int32_t pack, int32_t begin, int32_t end, int32_t token_end, int32_t k, int page,
               std::vector<Piece>& out) {
  const int32_t blocks = end - begin;
  int32_t at = begin;
  for (int32_t i = 0; i < k; ++i) {
    const int32_t next = begin + static_cast<int32_t>(int64_t{blocks} * (i + 1) / k);
    out.push_back({pack, at, next, next == end ? token_end : next * page});
    at = next;
  }
}

/// The wave model's price of `pieces` (see WaveFill): the time of their longest-first schedule
/// (lpt_schedule(), in KV bytes one slot streams meanwhile), a fixed cost per round of CTAs, the
/// merge launch when the pieces need one and the whole packs did not, and the added partials'
/// traffic spread over the slots.
struct WavePrice {
  const Shape& shape;
  int64_t sms;
  int64_t slots;
  bool whole_merges;  ///< some query is in more than one walk pack: a merge runs anyway

  int64_t operator()(const std::vector<Piece>& pieces, const std::vector<Pack>& packs, int page) const {
    const int64_t hkv = shape.num_kv_heads;
    std::vector<CtaGroup> groups;
    groups.reserve(pieces.size());
    int64_t added_partials = 0;  // queries x added pieces
    for (size_t i = 0; i < pieces.size(); ++i) {
      // Whole blocks: the choice then moves only when a block count does (the incremental
      // planner reuses it until then).
      groups.push_back({int64_t{pieces[i].block_end - pieces[i].block_begin} * page, hkv});
      if (i > 0 && pieces[i].pack == pieces[i - 1].pack)
        added_partials += static_cast<int64_t>(packs[static_cast<size_t>(pieces[i].pack)].queries.size());
    }
    const int64_t ctas = static_cast<int64_t>(pieces.size()) * hkv;
    const double bytes_per_cta_token = static_cast<double>(shape.kv_bytes_per_token() / hkv);
    const double rate_cap = cta_rate_cap(shape.kv_element_bytes(), shape.head_dim);
    int64_t cost = static_cast<int64_t>(lpt_schedule(groups, sms, slots / sms, rate_cap).time * bytes_per_cta_token) +
                   ceil_div(ctas, slots) * kCtaFixedBytes;
    if (added_partials > 0 && !whole_merges) cost += kMergeFixedBytes;
    cost += added_partials * traffic::extra_partial_bytes(shape.num_q_heads, shape.head_dim) / slots;
    return cost;
  }
};

/// Every walk pack whole, as pieces.
std::vector<Piece> whole(const std::vector<Pack>& packs, int page) {
  std::vector<Piece> out;
  out.reserve(packs.size());
  for (size_t p = 0; p < packs.size(); ++p) out.push_back(whole_piece(static_cast<int32_t>(p), packs[p], page));
  return out;
}

/// A cut the wave fill prices: the walk packs after `kept` (by length) cut into `k` parts each.
struct FillCut {
  size_t kept = 0;
  int64_t kept_waves = 0;
  int32_t k = 1;
  int64_t cost = 0;
  size_t pieces = 0;
};

/// The pieces of cut `c`: packs by_length[c.kept..] in c.k parts (fewer where a part would be
/// shorter than min_piece_blocks()), the others whole, in pack order, then the check per row class
/// (keep_classes_whole()). False if a query would pass the per-query cap.
bool equal_cut(const std::vector<Pack>& packs, const std::vector<int32_t>& by_length, const FillCut& c,
               const Shape& shape, const PlannerOptions& o, int num_requests, std::vector<Piece>& pieces) {
  const int page = shape.page_size;
  std::vector<int32_t> parts(packs.size(), 1), added(static_cast<size_t>(num_requests), 0);
  for (size_t i = c.kept; i < by_length.size(); ++i) {
    const Pack& p = packs[static_cast<size_t>(by_length[i])];
    const int32_t blocks = static_cast<int32_t>(ceil_div(p.token_begin + p.kv_len, page)) - p.token_begin / page;
    const int32_t k_p = std::max(1, std::min(c.k, blocks / min_piece_blocks(p, shape, o)));
    parts[static_cast<size_t>(by_length[i])] = k_p;
    for (int32_t r : p.queries)
      if ((added[static_cast<size_t>(r)] += k_p - 1) > o.max_splits_per_query) return false;
  }
  pieces.clear();
  for (size_t p = 0; p < packs.size(); ++p) {
    const Pack& pk = packs[p];
    const int32_t end = pk.token_begin + pk.kv_len;
    cut_equal(static_cast<int32_t>(p), pk.token_begin / page, static_cast<int32_t>(ceil_div(end, page)), end, parts[p],
              page, pieces);
  }
  keep_classes_whole(packs, shape, o, pieces);
  return true;
}

}  // namespace

std::vector<Piece> fill_waves(const std::vector<Pack>& packs, std::vector<Piece> fair, const Shape& shape,
                              const PlannerOptions& o, int num_requests, WaveFill* info) {
  const int page = shape.page_size;
  const int64_t hkv = shape.num_kv_heads;
  const int64_t slots = split_slots(packs, shape, o);
  const int64_t ctas = static_cast<int64_t>(packs.size()) * hkv;
  WaveFill local;
  WaveFill& out = info ? *info : local;
  out = WaveFill{};
  out.slots = slots;
  out.ctas_whole = ctas;
  out.ctas_fair = out.ctas_chosen = static_cast<int64_t>(fair.size()) * hkv;
  out.choice = "fair-share cuts";
  if (!fill_applies(ctas, slots, o)) return fair;
  out.evaluated = true;

  int64_t entries = 0;
  for (const Pack& p : packs) entries += static_cast<int64_t>(p.queries.size());
  const WavePrice price{shape, o.sms, slots, entries > num_requests};
  std::vector<Piece> pieces = whole(packs, page);
  out.cost_whole = price(pieces, packs, page);
  out.cost_fair = price(fair, packs, page);

  // The longest packs fill the leading waves whole; the rest are cut into k equal parts, k chosen
  // so that their CTAs fill 1..kMaxFillWaves waves. Every cut is priced.
  std::vector<int32_t> by_length(packs.size());
  std::iota(by_length.begin(), by_length.end(), 0);
  auto blocks_of = [&](int32_t w) {
    const Pack& p = packs[static_cast<size_t>(w)];
    return ceil_div(p.token_begin + p.kv_len, page) - p.token_begin / page;
  };
  std::stable_sort(by_length.begin(), by_length.end(), [&](int32_t a, int32_t b) { return blocks_of(a) > blocks_of(b); });
  std::vector<FillCut> cuts;
  for (int64_t kept_waves = 0; kept_waves * slots <= ctas; ++kept_waves) {
    FillCut c;
    c.kept_waves = kept_waves;
    c.kept = static_cast<size_t>(std::min<int64_t>(static_cast<int64_t>(packs.size()), kept_waves * slots / hkv));
    const int64_t rest = (static_cast<int64_t>(packs.size()) - static_cast<int64_t>(c.kept)) * hkv;
    if (rest == 0) break;
    int32_t last_k = 1;
    for (int64_t waves = 1; waves <= kMaxFillWaves; ++waves) {
      c.k = static_cast<int32_t>(std::min<int64_t>(waves * slots / rest, int64_t{o.max_splits_per_query} + 1));
      if (c.k <= last_k) continue;
      last_k = c.k;
      if (!equal_cut(packs, by_length, c, shape, o, num_requests, pieces)) continue;
      c.cost = price(pieces, packs, page);
      c.pieces = pieces.size();
      cuts.push_back(c);
    }
  }
  out.candidates = static_cast<int>(cuts.size()) + 2;
  // The cheapest; among those within kFillTieFraction of it, the fewest pieces (no cut first, then
  // the fair-share cuts, then the equal cuts in the order priced).
  int64_t cheapest = std::min(out.cost_whole, out.cost_fair);
  for (const FillCut& c : cuts) cheapest = std::min(cheapest, c.cost);
  const auto near = [&](int64_t cost) { return static_cast<double>(cost) <= static_cast<double>(cheapest) * (1 + kFillTieFraction); };
  size_t best_pieces = SIZE_MAX;
  int choice = -3;  // -2: no cut, -1: fair-share cuts, >= 0: cuts[choice]
  if (near(out.cost_whole)) choice = -2, best_pieces = packs.size();
  if (near(out.cost_fair) && fair.size() < best_pieces) choice = -1, best_pieces = fair.size();
  for (size_t i = 0; i < cuts.size(); ++i)
    if (near(cuts[i].cost) && cuts[i].pieces < best_pieces) choice = static_cast<int>(i), best_pieces = cuts[i].pieces;
  if (choice == -2) {
    out.cost_chosen = out.cost_whole;
    out.choice = "no cut";
    pieces = whole(packs, page);
  } else if (choice == -1) {
    out.cost_chosen = out.cost_fair;
    pieces = std::move(fair);
  } else {
    const FillCut& c = cuts[static_cast<size_t>(choice)];
    equal_cut(packs, by_length, c, shape, o, num_requests, pieces);
    out.cost_chosen = c.cost;
    out.choice = std::to_string(c.kept_waves) + " waves whole, the rest in " + std::to_string(c.k) + " parts";
  }
  out.ctas_chosen = static_cast<int64_t>(pieces.size()) * hkv;
  return pieces;
}
// [wave fill]

std::vector<Piece> cut_packs(const std::vector<Pack>& packs, const Shape& shape, const PlannerOptions& options,
                             int num_requests, int32_t& cuts, WaveFill* info) {
  std::vector<Piece> pieces = split_kv(packs, shape, options, num_requests, cuts);
  pieces = fill_waves(packs, std::move(pieces), shape, options, num_requests, info);
  cuts = static_cast<int32_t>(pieces.size() - packs.size());
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
