#include "patlab/planner.hpp"

#include <algorithm>
#include <numeric>
#include <queue>

#include "patlab/error.hpp"
#include "patlab/planner_steps.hpp"
#include "patlab/tile_budget.hpp"

namespace patlab {

namespace {

/// Passes of single-child flips in the greedy inherit choice; every pass that changes something
/// lowers the model bytes, and one or two passes settle in practice.
constexpr int kMaxFlipPasses = 8;
/// Bits of a block key that hold the tokens of the block (page sizes are at most 64).
constexpr int kKeyTokenBits = 8;
static_assert((1 << kKeyTokenBits) > kSupportedPageSizes[2], "a block's token count fits its key bits");

int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

/// Collects fault lines, keeping at most kMaxReportedFaults.
class Faults {
 public:
  void add(const std::string& line) {
    ++total_;
    if (static_cast<int64_t>(lines_.size()) < kMaxReportedFaults) lines_.push_back(line);
  }
  std::vector<std::string> finish() {
    if (total_ > static_cast<int64_t>(lines_.size())) {
      const int64_t more = total_ - static_cast<int64_t>(lines_.size()) + 1;
      lines_.back() = "... and " + std::to_string(more) + " more faults";
    }
    return std::move(lines_);
  }

 private:
  std::vector<std::string> lines_;
  int64_t total_ = 0;
};

std::string range(int64_t begin, int64_t end) { return "[" + std::to_string(begin) + ", " + std::to_string(end) + ")"; }

}  // namespace


TileShape choose_tile(int rows, int kv_len, int max_kv_tile) {
  // Messages are built only on a fault: the incremental planner calls this every decode step.
  if (rows < 1 || rows > kMaxTileRows)
    throw Error(ErrorKind::usage,
                "choose_tile: " + std::to_string(rows) + " rows (must be in [1, " + std::to_string(kMaxTileRows) + "])");
  if (kv_len < 1) throw Error(ErrorKind::usage, "choose_tile: KV length " + std::to_string(kv_len) + " (must be >= 1)");
  if (!one_of(max_kv_tile, kTileKvOptions) || max_kv_tile < kMinKvForMaxRows)
    throw Error(ErrorKind::usage, "max KV tile " + std::to_string(max_kv_tile) + " (must be 32, 64 or 128)");
  // [choose tile]
  TileShape t;
  // m: the smallest tile that holds the rows (16 if rows <= 16, 32 if <= 32, else 64).
  t.m = *std::find_if(std::begin(kTileRowOptions), std::end(kTileRowOptions), [&](int m) { return rows <= m; });
  // n: the largest KV tile not longer than the range (16 below 32 tokens, ..., 128 from 128 on).
  t.n = kTileKvOptions[0];
  for (int n : kTileKvOptions)
    if (kv_len >= n) t.n = n;
  if (t.m == kMaxTileRows) t.n = std::max(t.n, kMinKvForMaxRows);
  t.n = std::min(t.n, max_kv_tile);
  return t;
  // [choose tile]
}

CostModel CostModel::of(const Shape& shape, int max_rows) {
  CostModel c;
  c.kv_bytes_per_token = shape.kv_bytes_per_token();
  const int64_t q_bytes = int64_t{shape.head_dim} * kStorageBytes;
  const int64_t partial_bytes = int64_t{shape.head_dim} * kPartialOutElemBytes + kPartialLseBytes;
  c.extra_partial_bytes = int64_t{shape.num_q_heads} * (q_bytes + kPartialTrips * partial_bytes);
  c.queries_per_pack = std::max(1, max_rows / shape.group());
  return c;
}

// [node bytes]
int64_t CostModel::node_bytes(int64_t tokens, int64_t ended, const std::vector<int32_t>& child_queries,
                              const std::vector<bool>& inherit) const {
  int64_t split_queries = 0, loads = 0;
  for (size_t i = 0; i < child_queries.size(); ++i) {
    if (inherit[i])
      loads += packs_for(child_queries[i]);
    else
      split_queries += child_queries[i];
  }
  loads += packs_for(ended + split_queries);
  return tokens * kv_bytes_per_token * loads + extra_partial_bytes * split_queries;
}
// [node bytes]

namespace {

/// choose_inherit() beyond kExactInheritWork: candidate sets made of the children that leave
/// the fewest pack rows empty by packing alone (ties: larger children first), the cheapest of
/// them, then single flips until none lowers the bytes.
std::vector<bool> choose_inherit_greedy(const CostModel& model, int64_t tokens, int64_t ended,
                                        const std::vector<int32_t>& child_queries) {
  const size_t k = child_queries.size();
  std::vector<bool> inherit(k, false);
  const int64_t load = tokens * model.kv_bytes_per_token;
  const int64_t total = std::accumulate(child_queries.begin(), child_queries.end(), int64_t{0});
  std::vector<size_t> by_waste(k);
  std::iota(by_waste.begin(), by_waste.end(), 0);
  auto waste = [&](size_t i) { return model.packs_for(child_queries[i]) * model.queries_per_pack - child_queries[i]; };
  std::stable_sort(by_waste.begin(), by_waste.end(), [&](size_t a, size_t b) {
    return waste(a) != waste(b) ? waste(a) < waste(b) : child_queries[a] > child_queries[b];
  });
  int64_t inherited_queries = 0, inherited_loads = 0;
  int64_t best = load * model.packs_for(ended + total) + model.extra_partial_bytes * total;
  size_t best_j = 0;
  for (size_t j = 1; j <= k; ++j) {
    const size_t c = by_waste[j - 1];
    inherited_queries += child_queries[c];
    inherited_loads += model.packs_for(child_queries[c]);
    const int64_t split = total - inherited_queries;
    const int64_t bytes = load * (model.packs_for(ended + split) + inherited_loads) + model.extra_partial_bytes * split;
    if (bytes <= best) {
      best = bytes;
      best_j = j;
    }
  }
  int64_t split = total;
  for (size_t j = 0; j < best_j; ++j) {
    inherit[by_waste[j]] = true;
    split -= child_queries[by_waste[j]];
  }
  // Single flips: split -> inherit when it does not cost more, inherit -> split when it saves.
  for (int pass = 0; pass < kMaxFlipPasses; ++pass) {
    bool changed = false;
    for (size_t i = 0; i < k; ++i) {
      const int64_t s = child_queries[i];
      const int64_t parent_now = model.packs_for(ended + split);
      if (!inherit[i]) {
        const int64_t delta = load * (model.packs_for(ended + split - s) - parent_now + model.packs_for(s)) -
                              model.extra_partial_bytes * s;
        if (delta <= 0) {
          inherit[i] = true;
          split -= s;
          changed = true;
        }
      } else {
        const int64_t delta = load * (model.packs_for(ended + split + s) - parent_now - model.packs_for(s)) +
                              model.extra_partial_bytes * s;
        if (delta < 0) {
          inherit[i] = false;
          split += s;
          changed = true;
        }
      }
    }
    if (!changed) break;
  }
  return inherit;
}

}  // namespace

std::vector<bool> choose_inherit(const CostModel& model, int64_t tokens, int64_t ended,
                                 const std::vector<int32_t>& child_queries) {
  const size_t k = child_queries.size();
  const int64_t Q = model.queries_per_pack;
  const int64_t load = tokens * model.kv_bytes_per_token;
  // With s = a*Q + r, a child's a*Q queries cost a loads wherever they are packed, so a child
  // with r = 0 inherits (same loads, fewer partials). The rest is a small knapsack over the
  // remainders r: a child that inherits costs one load of its own; one that splits costs
  // extra_partial_bytes * s and adds r rows to the node's packs, which cost
  // ceil((ended + sum of split r) / Q) loads.
  std::vector<bool> inherit(k, true);
  std::vector<std::pair<int32_t, int32_t>> items;  // (r, child), grouped by r, then by size
  int64_t rows = 0;
  for (size_t i = 0; i < k; ++i) {
    const int32_t r = static_cast<int32_t>(child_queries[i] % Q);
    if (r == 0) continue;
    items.emplace_back(r, static_cast<int32_t>(i));
    rows += r;
  }
  if (items.empty()) return inherit;
  if (static_cast<int64_t>(items.size()) * (rows + 1) > kExactInheritWork)
    return choose_inherit_greedy(model, tokens, ended, child_queries);
  std::sort(items.begin(), items.end(), [&](const auto& a, const auto& b) {
    const int32_t sa = child_queries[static_cast<size_t>(a.second)], sb = child_queries[static_cast<size_t>(b.second)];
    return a.first != b.first ? a.first < b.first : sa != sb ? sa < sb : a.second < b.second;
  });
  // best[w]: least (bytes, split children) with w remainder rows split, relative to all
  // inheriting; within a group of equal r, splitting the j smallest children is best.
  struct Best {
    int64_t bytes;
    int64_t splits;
    bool operator<(const Best& o) const { return bytes != o.bytes ? bytes < o.bytes : splits < o.splits; }
  };
  const Best none{INT64_MAX, 0};
  std::vector<Best> best(static_cast<size_t>(rows) + 1, none);
  best[0] = {0, 0};
  std::vector<std::pair<size_t, size_t>> groups;
  for (size_t i = 0; i < items.size();) {
    size_t j = i;
    while (j < items.size() && items[j].first == items[i].first) ++j;
    groups.emplace_back(i, j);
    i = j;
  }
  std::vector<int32_t> take(groups.size() * (static_cast<size_t>(rows) + 1), 0);  // split count per (group, w)
  int64_t reach = 0;
  for (size_t g = 0; g < groups.size(); ++g) {
    const int64_t r = items[groups[g].first].first;
    const int64_t n = static_cast<int64_t>(groups[g].second - groups[g].first);
    std::vector<Best> next(best.size(), none);
    int32_t* choice = take.data() + g * (static_cast<size_t>(rows) + 1);
    for (int64_t w = reach; w >= 0; --w) {
      if (best[static_cast<size_t>(w)].bytes == INT64_MAX) continue;
      int64_t partial_bytes = 0;
      for (int64_t j = 0; j <= n; ++j) {
        if (j > 0) partial_bytes += model.extra_partial_bytes * child_queries[static_cast<size_t>(items[groups[g].first + static_cast<size_t>(j) - 1].second)];
        const Best cand{best[static_cast<size_t>(w)].bytes + partial_bytes - load * j, best[static_cast<size_t>(w)].splits + j};
        const size_t to = static_cast<size_t>(w + j * r);
        if (cand < next[to]) {
          next[to] = cand;
          choice[to] = static_cast<int32_t>(j);
        }
      }
    }
    best.swap(next);
    reach += n * r;
  }
  size_t w_best = 0;
  Best total = none;
  for (size_t w = 0; w < best.size(); ++w) {
    if (best[w].bytes == INT64_MAX) continue;
    const Best cand{best[w].bytes + load * model.packs_for(ended + static_cast<int64_t>(w)), best[w].splits};
    if (cand < total) {
      total = cand;
      w_best = w;
    }
  }
  for (size_t g = groups.size(); g-- > 0;) {
    const int32_t j = take[g * (static_cast<size_t>(rows) + 1) + w_best];
    for (int32_t i = 0; i < j; ++i) inherit[static_cast<size_t>(items[groups[g].first + static_cast<size_t>(i)].second)] = false;
    w_best -= static_cast<size_t>(j) * static_cast<size_t>(items[groups[g].first].first);
  }
  return inherit;
}

bool pat_inherits(int64_t node_queries, int64_t child_queries, int64_t tokens, int queries_per_pack) {
  if (node_queries == child_queries) return true;
  const int64_t Q = queries_per_pack;
  const int64_t extra_loads =
      ceil_div(node_queries, Q) - ceil_div(node_queries - child_queries, Q) - ceil_div(child_queries, Q);
  return extra_loads * tokens + int64_t{kPatPartialCreditTokens} * child_queries >= 0;
}

namespace plan_steps {

void check_tables(const PagedLayout& L) {
  const int R = L.num_requests();
  if (R < 1) throw Error(ErrorKind::usage, "planner: the layout has no requests");
  if (L.block_tables.size() != L.lengths.size())
    throw Error(ErrorKind::usage, "planner: the layout has " + std::to_string(L.block_tables.size()) + " block tables for " +
                                      std::to_string(R) + " requests");
  const int page = L.shape.page_size;
  for (int r = 0; r < R; ++r) {
    const int32_t len = L.lengths[static_cast<size_t>(r)];
    if (len < 1) throw Error(ErrorKind::usage, "planner: request " + std::to_string(r) + " has no tokens");
    const size_t blocks = L.block_tables[static_cast<size_t>(r)].size();
    if (static_cast<int64_t>(blocks) != ceil_div(len, page))
      throw Error(ErrorKind::usage, "planner: request " + std::to_string(r) + " has " + std::to_string(len) + " tokens but " +
                                        std::to_string(blocks) + " blocks");
  }
}

void check_layout(const PagedLayout& L) {
  L.shape.validate();
  check_tables(L);
}

void check_options(const PlannerOptions& o) {
  require(o.sms >= 1, "planner: the SM count must be >= 1 (got " + std::to_string(o.sms) + ")");
  require(o.min_split_blocks >= 1,
          "planner: min_split_blocks must be >= 1 (got " + std::to_string(o.min_split_blocks) + ")");
  require(o.max_splits_per_query >= 0,
          "planner: max_splits_per_query must be >= 0 (got " + std::to_string(o.max_splits_per_query) + ")");
  require(one_of(o.max_kv_tile, kTileKvOptions) && o.max_kv_tile >= kMinKvForMaxRows,
          "planner: max KV tile " + std::to_string(o.max_kv_tile) + " (must be 32, 64 or 128)");
  if (o.tiles == TilePolicy::fixed)
    require(one_of(o.fixed_tile.m, kTileRowOptions) && one_of(o.fixed_tile.n, kTileKvOptions),
            "planner: fixed tile " + o.fixed_tile.name() + " is not a built tile (m in 16/32/64, n in 16/32/64/128)");
}

int64_t block_key(const PagedLayout& L, int32_t r, int32_t i) {
  const int page = L.shape.page_size;
  const int64_t used = std::min<int64_t>(page, L.lengths[static_cast<size_t>(r)] - int64_t{i} * page);
  return (int64_t{L.block_tables[static_cast<size_t>(r)][static_cast<size_t>(i)]} << kKeyTokenBits) | used;
}

namespace {
std::vector<int32_t> all_requests(const PagedLayout& L) {
  std::vector<int32_t> all(static_cast<size_t>(L.num_requests()));
  std::iota(all.begin(), all.end(), 0);
  return all;
}
}  // namespace

RadixTree::RadixTree(const PagedLayout& layout) : RadixTree(layout, all_requests(layout)) {}

RadixTree::RadixTree(const PagedLayout& layout, std::vector<int32_t> requests) : layout_(layout), order_(std::move(requests)) {
  TreeNode root;
  root.query_end = static_cast<int32_t>(order_.size());
  nodes_.push_back(root);
  // Children are appended after their parent, so one pass in index order builds the tree.
  for (size_t v = 0; v < nodes_.size(); ++v) grow(static_cast<int32_t>(v));
}

int32_t RadixTree::blocks(int32_t r) const { return static_cast<int32_t>(layout_.block_tables[static_cast<size_t>(r)].size()); }

/// Extends node `v` while all its queries share the next block, then partitions them into the
/// queries that end there and one child per next block.
void RadixTree::grow(int32_t v) {
  TreeNode n = nodes_[static_cast<size_t>(v)];
  const auto qb = order_.begin() + n.query_begin, qe = order_.begin() + n.query_end;
  int32_t b = n.block_end;
  if (v != 0) {
    for (;; ++b) {
      const int32_t q0 = *qb;
      if (b >= blocks(q0)) break;
      const int64_t k0 = block_key(layout_, q0, b);
      bool same = true;
      for (auto it = qb + 1; it != qe && same; ++it) same = b < blocks(*it) && block_key(layout_, *it, b) == k0;
      if (!same) break;
    }
    n.block_end = b;
    n.token_end = static_cast<int32_t>(
        std::min<int64_t>(int64_t{b} * layout_.shape.page_size, layout_.lengths[static_cast<size_t>(*qb)]));
  }
  // Queries that end here first (in request order), then the rest grouped by their next block.
  auto rest = std::stable_partition(qb, qe, [&](int32_t r) { return blocks(r) <= b; });
  n.ended = static_cast<int32_t>(rest - qb);
  std::vector<std::pair<int64_t, int32_t>> keyed;
  keyed.reserve(static_cast<size_t>(qe - rest));
  for (auto it = rest; it != qe; ++it) keyed.emplace_back(block_key(layout_, *it, b), *it);
  std::sort(keyed.begin(), keyed.end());
  // Groups of equal keys, ordered by their smallest request (the first of each group).
  std::vector<std::pair<size_t, size_t>> groups;
  for (size_t i = 0; i < keyed.size();) {
    size_t j = i + 1;
    while (j < keyed.size() && keyed[j].first == keyed[i].first) ++j;
    groups.emplace_back(i, j);
    i = j;
  }
  std::sort(groups.begin(), groups.end(),
            [&](const auto& a, const auto& c) { return keyed[a.first].second < keyed[c.first].second; });
  auto out = rest;
  n.first_child = static_cast<int32_t>(nodes_.size());
  n.children = static_cast<int32_t>(groups.size());
  for (const auto& g : groups) {
    TreeNode c;
    c.block_begin = b;
    c.block_end = b + 1;
    c.query_begin = static_cast<int32_t>(out - order_.begin());
    for (size_t i = g.first; i < g.second; ++i) *out++ = keyed[i].second;
    c.query_end = static_cast<int32_t>(out - order_.begin());
    nodes_.push_back(c);
  }
  nodes_[static_cast<size_t>(v)] = n;
}

namespace {

/// The inherit-or-split decision at node `n` for reports: the choice's bytes against PAT's,
/// all-split and all-inherit.
Decision describe_decision(const CostModel& model, const TreeNode& n, int64_t tokens, int32_t token_begin,
                           const std::vector<int32_t>& sizes, const std::vector<bool>& inherit) {
  Decision d;
  d.token_begin = token_begin;
  d.token_end = n.token_end;
  d.queries = n.queries();
  d.ended = n.ended;
  d.children = n.children;
  d.bytes = model.node_bytes(tokens, n.ended, sizes, inherit);
  d.bytes_all_split = model.node_bytes(tokens, n.ended, sizes, std::vector<bool>(sizes.size(), false));
  d.bytes_all_inherit = model.node_bytes(tokens, n.ended, sizes, std::vector<bool>(sizes.size(), true));
  std::vector<bool> pat(sizes.size());
  for (size_t c = 0; c < sizes.size(); ++c) {
    pat[c] = pat_inherits(n.queries(), sizes[c], tokens, model.queries_per_pack);
    d.inherited += inherit[c];
    d.pat_inherited += pat[c];
  }
  d.bytes_pat = model.node_bytes(tokens, n.ended, sizes, pat);
  return d;
}

}  // namespace

void walk_tree(const PagedLayout& layout, const RadixTree& tree, const CostModel& model, std::vector<Pack>& packs,
               std::vector<Decision>* decisions) {
  const int page = layout.shape.page_size;
  const int Q = model.queries_per_pack;
  const std::vector<TreeNode>& nodes = tree.nodes();
  const std::vector<int32_t>& order = tree.order();
  auto emit = [&](const std::vector<int32_t>& queries, int32_t pending_block, const TreeNode& n) {
    const auto& table = layout.block_tables[static_cast<size_t>(queries.front())];
    for (size_t first = 0; first < queries.size(); first += static_cast<size_t>(Q)) {
      Pack p;
      p.queries.assign(queries.begin() + static_cast<std::ptrdiff_t>(first),
                       queries.begin() + static_cast<std::ptrdiff_t>(std::min(queries.size(), first + static_cast<size_t>(Q))));
      p.token_begin = pending_block * page;
      p.kv_len = n.token_end - p.token_begin;
      p.blocks.assign(table.begin() + pending_block, table.begin() + n.block_end);
      packs.push_back(std::move(p));
    }
  };
  std::vector<std::pair<int32_t, int32_t>> stack;  // (node, first block of its pending range)
  for (int32_t c = nodes[0].children - 1; c >= 0; --c) stack.emplace_back(nodes[0].first_child + c, 0);
  std::vector<int32_t> sizes, stay;
  while (!stack.empty()) {
    const auto [v, pending] = stack.back();
    stack.pop_back();
    const TreeNode& n = nodes[static_cast<size_t>(v)];
    const int64_t tokens = n.token_end - int64_t{pending} * page;
    stay.assign(order.begin() + n.query_begin, order.begin() + n.query_begin + n.ended);
    std::vector<bool> inherit;
    if (n.children > 0) {
      sizes.clear();
      for (int32_t c = 0; c < n.children; ++c) sizes.push_back(nodes[static_cast<size_t>(n.first_child + c)].queries());
      inherit = choose_inherit(model, tokens, n.ended, sizes);
      if (decisions) decisions->push_back(describe_decision(model, n, tokens, pending * page, sizes, inherit));
      for (size_t c = 0; c < sizes.size(); ++c) {
        if (inherit[c]) continue;
        const TreeNode& child = nodes[static_cast<size_t>(n.first_child) + c];
        stay.insert(stay.end(), order.begin() + child.query_begin, order.begin() + child.query_end);
      }
    }
    if (!stay.empty()) emit(stay, pending, n);
    for (int32_t c = n.children - 1; c >= 0; --c)
      stack.emplace_back(n.first_child + c, inherit[static_cast<size_t>(c)] ? pending : n.block_end);
  }
}

std::vector<Piece> split_kv(const std::vector<Pack>& packs, const Shape& shape, const PlannerOptions& o,
                            int num_requests, int32_t& cuts) {
  const int page = shape.page_size;
  const int64_t hkv = shape.num_kv_heads;
  // [split target]
  const int64_t target_ctas = int64_t{kSplitCtasPerSm} * o.sms;
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
    if (int64_t{pieces[static_cast<size_t>(i)].tokens(page)} * target_ctas > cta_tokens) candidates.push_back(i);
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
    if (int64_t{cur.tokens(page)} * target_ctas <= cta_tokens) break;
    longest.pop();
    const int32_t nblocks = cur.block_end - cur.block_begin;
    const std::vector<int32_t>& qs = packs[static_cast<size_t>(cur.pack)].queries;
    const bool room = std::all_of(qs.begin(), qs.end(), [&](int32_t r) {
      return added[static_cast<size_t>(r)] < o.max_splits_per_query;
    });
    if (nblocks / 2 < o.min_split_blocks || !room) continue;  // final: too short, or a query is at its cap
    const int32_t mid = cur.block_begin + nblocks / 2;
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

TileShape tile_for(const Pack& pack, const PlannerOptions& options, const Shape& shape) {
  const TileShape t = options.tiles == TilePolicy::fixed
                          ? options.fixed_tile
                          : choose_tile(pack.rows(shape.group()), pack.kv_len, options.max_kv_tile);
  return fit_tile(t, shape.head_dim);
}

void assign_slots(Plan& plan, int num_requests) {
  // [tiles and slots]
  plan.partials.assign(static_cast<size_t>(num_requests), 0);
  for (Pack& p : plan.packs) {
    p.slots.resize(p.queries.size());
    for (size_t i = 0; i < p.queries.size(); ++i) p.slots[i] = plan.partials[static_cast<size_t>(p.queries[i])]++;
  }
  // [tiles and slots]
}

std::string strategy_name(const PlannerOptions& options) {
  return std::string("radix tree, byte-cost inherit/split, ") +
         (options.tiles == TilePolicy::fixed ? "fixed " + options.fixed_tile.name() + " tile" : "tile table") +
         (options.split_kv ? ", KV split for " + std::to_string(options.sms) + " SMs" : ", no KV split");
}

}  // namespace plan_steps

Plan make_plan(const PagedLayout& layout, const PlannerOptions& options) { return make_plan(layout, options, nullptr); }

Plan make_plan(const PagedLayout& layout, const PlannerOptions& options, PlanInfo* info) {
  using namespace plan_steps;
  check_options(options);
  check_layout(layout);
  const Shape& shape = layout.shape;
  const int page = shape.page_size;
  const int max_rows = options.tiles == TilePolicy::fixed ? options.fixed_tile.m : kMaxTileRows;
  const CostModel model = CostModel::of(shape, max_rows);
  PlanInfo local;
  PlanInfo& out = info ? *info : local;
  out = PlanInfo{};
  out.queries_per_pack = model.queries_per_pack;

  // 1. The radix tree over physical block ids.
  const RadixTree tree(layout);
  out.tree_nodes = static_cast<int32_t>(tree.nodes().size()) - 1;

  // 2. Walk it from the roots (preorder, children in order), carrying each node's pending
  //    range, deciding inherit-or-split at every node with children, and packing the queries
  //    that stop there. Preorder puts every query's packs in token order. The decisions are
  //    described only for a caller that asks for them.
  std::vector<Pack> packs;
  walk_tree(layout, tree, model, packs, info ? &out.decisions : nullptr);
  out.packs_before_split = static_cast<int32_t>(packs.size());

  // 3. KV split: cut pieces until the CTAs fill the GPU (stage 7).
  Plan plan;
  if (options.split_kv) {
    out.target_ctas = static_cast<int32_t>(std::min<int64_t>(int64_t{kSplitCtasPerSm} * options.sms, INT32_MAX));
    const std::vector<Piece> pieces = split_kv(packs, shape, options, layout.num_requests(), out.kv_cuts);
    plan.packs.resize(pieces.size());
    for (size_t i = 0; i < pieces.size(); ++i)
      piece_to_pack(packs[static_cast<size_t>(pieces[i].pack)], pieces[i], page, plan.packs[i]);
  } else {
    plan.packs = std::move(packs);
  }

  // 4. Tiles, and 5. slots: each query numbers its packs in plan order, which is token order.
  for (Pack& p : plan.packs) p.tile = tile_for(p, options, shape);
  assign_slots(plan, layout.num_requests());
  plan.strategy = strategy_name(options);
  return plan;
}


std::vector<std::string> validate_plan(const PagedLayout& L, const Plan& plan) {
  Faults f;
  const int R = L.num_requests();
  const int page = L.shape.page_size;
  const int group = L.shape.group();
  const bool partials_ok = static_cast<int>(plan.partials.size()) == R;
  if (!partials_ok)
    f.add("partials: the plan has partial counts for " + std::to_string(plan.partials.size()) + " requests, the layout has " +
          std::to_string(R));
  struct Use {
    int64_t begin, end;
    int32_t slot, pack;
  };
  std::vector<std::vector<Use>> uses(static_cast<size_t>(R));
  for (size_t pi = 0; pi < plan.packs.size(); ++pi) {
    const Pack& p = plan.packs[pi];
    const std::string name = "pack " + std::to_string(pi);
    if (p.queries.empty()) {
      f.add("empty pack: " + name + " has no queries");
      continue;
    }
    if (p.slots.size() != p.queries.size()) {
      f.add("slots: " + name + " has " + std::to_string(p.queries.size()) + " queries but " + std::to_string(p.slots.size()) +
            " slots");
      continue;
    }
    if (p.kv_len < 1) {
      f.add("range: " + name + " has KV length " + std::to_string(p.kv_len));
      continue;
    }
    const int64_t begin = p.token_begin, end = begin + p.kv_len;
    const bool aligned = begin >= 0 && begin % page == 0;
    if (!aligned) f.add("alignment: " + name + " begins at token " + std::to_string(begin) + ", not a multiple of the page size " +
                        std::to_string(page));
    const int64_t rows = static_cast<int64_t>(p.queries.size()) * group;
    if (rows > kMaxTileRows)
      f.add("rows: " + name + " has " + std::to_string(rows) + " rows (" + std::to_string(p.queries.size()) + " queries x group " +
            std::to_string(group) + "), more than the largest tile's " + std::to_string(kMaxTileRows));
    if (p.tile.m != 0 || p.tile.n != 0) {
      if (!one_of(p.tile.m, kTileRowOptions) || !one_of(p.tile.n, kTileKvOptions))
        f.add("tile: " + name + " has tile " + p.tile.name() + ", not a built tile");
      else if (!tile_fits(p.tile, L.shape.head_dim))
        f.add("tile: " + name + " has tile " + p.tile.name() + ", which does not fit head dim " +
              std::to_string(L.shape.head_dim));
      else if (rows > p.tile.m)
        f.add("rows: " + name + " has " + std::to_string(rows) + " rows, more than its tile's m = " + std::to_string(p.tile.m));
    }
    const bool blocks_ok = aligned && static_cast<int64_t>(p.blocks.size()) == ceil_div(end, page) - begin / page;
    if (aligned && !blocks_ok)
      f.add("blocks: " + name + " lists " + std::to_string(p.blocks.size()) + " blocks for tokens " + range(begin, end) +
            ", which span " + std::to_string(ceil_div(end, page) - begin / page));
    std::vector<int32_t> sorted = p.queries;
    std::sort(sorted.begin(), sorted.end());
    for (size_t i = 1; i < sorted.size(); ++i)
      if (sorted[i] == sorted[i - 1]) f.add("duplicate query: " + name + " holds request " + std::to_string(sorted[i]) + " twice");
    for (size_t i = 0; i < p.queries.size(); ++i) {
      const int32_t r = p.queries[i];
      if (r < 0 || r >= R) {
        f.add("unknown query: " + name + " names request " + std::to_string(r) + " (the layout has " + std::to_string(R) + ")");
        continue;
      }
      const int64_t len = L.lengths[static_cast<size_t>(r)];
      if (end > len) {
        f.add("range: " + name + " reads tokens " + range(begin, end) + ", past the end of request " + std::to_string(r) + " (" +
              std::to_string(len) + " tokens)");
      } else {
        if (blocks_ok) {
          const auto& table = L.block_tables[static_cast<size_t>(r)];
          for (size_t j = 0; j < p.blocks.size(); ++j) {
            const int32_t want = table[static_cast<size_t>(begin / page) + j];
            if (p.blocks[j] != want) {
              f.add("blocks: " + name + " reads physical block " + std::to_string(p.blocks[j]) + " at block " +
                    std::to_string(begin / page + static_cast<int64_t>(j)) + ", request " + std::to_string(r) + " has block " +
                    std::to_string(want) + " there");
              break;
            }
          }
        }
        if (end % page != 0 && end != len)
          f.add("partial block: " + name + " ends at token " + std::to_string(end) + " inside a block, but request " +
                std::to_string(r) + " goes on to " + std::to_string(len) + " (only a query's last pack may end in a partial block)");
      }
      uses[static_cast<size_t>(r)].push_back({begin, end, p.slots[i], static_cast<int32_t>(pi)});
    }
  }
  for (int r = 0; r < R; ++r) {
    std::vector<Use>& u = uses[static_cast<size_t>(r)];
    const std::string req = "request " + std::to_string(r);
    const int64_t len = L.lengths[static_cast<size_t>(r)];
    if (u.empty()) {
      f.add("missing query: " + req + " is in no pack (its " + std::to_string(len) + " tokens are never read)");
      continue;
    }
    if (partials_ok) {
      const int64_t k = plan.partials[static_cast<size_t>(r)];
      if (k != static_cast<int64_t>(u.size()))
        f.add("partials: " + req + " has " + std::to_string(k) + " partials in the plan but is in " + std::to_string(u.size()) +
              " packs");
      std::vector<int32_t> writer(static_cast<size_t>(std::max<int64_t>(k, 0)), -1);
      for (const Use& x : u) {
        if (x.slot < 0 || x.slot >= k) {
          f.add("slot range: " + req + " gets slot " + std::to_string(x.slot) + " from pack " + std::to_string(x.pack) +
                ", outside 0.." + std::to_string(k - 1));
        } else if (writer[static_cast<size_t>(x.slot)] >= 0) {
          f.add("duplicate slot: " + req + " slot " + std::to_string(x.slot) + " is written by packs " +
                std::to_string(writer[static_cast<size_t>(x.slot)]) + " and " + std::to_string(x.pack));
        } else {
          writer[static_cast<size_t>(x.slot)] = x.pack;
        }
      }
      for (size_t s = 0; s < writer.size(); ++s)
        if (writer[s] < 0) f.add("missing slot: " + req + " slot " + std::to_string(s) + " is never written");
    }
    std::sort(u.begin(), u.end(), [](const Use& a, const Use& b) { return a.begin != b.begin ? a.begin < b.begin : a.end < b.end; });
    int64_t pos = 0;
    int32_t last_pack = -1;
    for (const Use& x : u) {
      if (x.begin > pos)
        f.add("gap: " + req + " tokens " + range(pos, x.begin) + " are in no pack");
      else if (x.begin < pos)
        f.add("overlap: " + req + " tokens " + range(x.begin, std::min(pos, x.end)) + " are read twice (packs " +
              std::to_string(last_pack) + " and " + std::to_string(x.pack) + ")");
      if (x.end > pos) {
        pos = x.end;
        last_pack = x.pack;
      }
    }
    if (pos < len) f.add("gap: " + req + " tokens " + range(pos, len) + " are in no pack");
    for (size_t i = 1; i < u.size(); ++i) {
      if (u[i].slot <= u[i - 1].slot) {
        f.add("slot order: " + req + " has slot " + std::to_string(u[i - 1].slot) + " at token " + std::to_string(u[i - 1].begin) +
              " but slot " + std::to_string(u[i].slot) + " at token " + std::to_string(u[i].begin) + " (slots must follow block order)");
        break;
      }
    }
  }
  return f.finish();
}

Traffic traffic_model(const PagedLayout& L, const Plan& plan) {
  const Shape& s = L.shape;
  const int64_t q_bytes = int64_t{s.num_q_heads} * s.head_dim * kStorageBytes;  // one query, all heads (= one output row)
  const int64_t partial_bytes = int64_t{s.num_q_heads} * (int64_t{s.head_dim} * kPartialOutElemBytes + kPartialLseBytes);
  Traffic t{};
  t.per_query_head = L.total_kv_bytes() * s.group() + L.q_and_out_bytes();
  t.per_request = L.total_kv_bytes() + L.q_and_out_bytes();
  t.unique = L.unique_kv_bytes() + L.q_and_out_bytes();
  int64_t packed = int64_t{L.num_requests()} * q_bytes;  // the output, written once per query
  for (const Pack& p : plan.packs)
    packed += int64_t{p.kv_len} * s.kv_bytes_per_token() + static_cast<int64_t>(p.queries.size()) * q_bytes;
  for (int32_t k : plan.partials)
    if (k > 1) packed += int64_t{k} * kPartialTrips * partial_bytes;
  t.packed = packed;
  return t;
}

}  // namespace patlab
