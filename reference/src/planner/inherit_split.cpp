// The planner, step 2: the inherit-or-split byte cost model and the tree walk that applies it
// (tutorial chapter 02, section 2, tutorial/02-pack-step.md; PAT's rule: chapter 16).
#include "patlab/planner/planner.hpp"

#include <algorithm>
#include <numeric>

#include "patlab/model/traffic.hpp"
#include "patlab/planner/planner_steps.hpp"
#include "planner_detail.hpp"

namespace patlab {

using planner_detail::ceil_div;

namespace {

/// Passes of single-child flips in the greedy inherit choice; every pass that changes something
/// lowers the model bytes, and one or two passes settle in practice.
constexpr int kMaxFlipPasses = 8;

}  // namespace

CostModel CostModel::of(const Shape& shape, int max_rows) {
  CostModel c;
  c.kv_bytes_per_token = shape.kv_bytes_per_token();
  c.extra_partial_bytes = traffic::extra_partial_bytes(shape.num_q_heads, shape.head_dim);
  c.queries_per_pack = std::max(1, max_rows / shape.group());
  return c;
}

CostModel CostModel::of(const Shape& shape, const PlannerOptions& options) {
  CostModel c = of(shape, max_pack_rows(options));
  c.short_range_tokens = hopper_narrow_kv(options);
  c.short_queries_per_pack = std::max(1, kHopperTileRows[0] / shape.group());
  if (options.tiles == TilePolicy::hopper && max_pack_rows(options) > kHopperTileRows[1])
    c.narrower_queries_per_pack = std::max(1, kHopperTileRows[1] / shape.group());
  return c;
}

CostModel CostModel::for_range(int64_t tokens) const {
  CostModel c = *this;
  if (tokens < short_range_tokens) {
    c.queries_per_pack = short_queries_per_pack;
    c.narrower_queries_per_pack = 0;
  }
  return c;
}

// [pack queries]
int64_t CostModel::pack_queries(int64_t queries) const {
  const int64_t narrower = narrower_queries_per_pack;
  if (narrower > 0 && narrower < queries_per_pack && ceil_div(queries, narrower) == packs_for(queries)) return narrower;
  return queries_per_pack;
}
// [pack queries]

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
  const std::vector<TreeNode>& nodes = tree.nodes();
  const std::vector<int32_t>& order = tree.order();
  auto emit = [&](const std::vector<int32_t>& queries, int32_t pending_block, const TreeNode& n, const CostModel& m) {
    const auto& table = layout.block_tables[static_cast<size_t>(queries.front())];
    const size_t q = static_cast<size_t>(m.pack_queries(static_cast<int64_t>(queries.size())));
    for (size_t first = 0; first < queries.size(); first += q) {
      Pack p;
      p.queries.assign(queries.begin() + static_cast<std::ptrdiff_t>(first),
                       queries.begin() + static_cast<std::ptrdiff_t>(std::min(queries.size(), first + q)));
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
    const CostModel m = model.for_range(tokens);
    stay.assign(order.begin() + n.query_begin, order.begin() + n.query_begin + n.ended);
    std::vector<bool> inherit;
    if (n.children > 0) {
      sizes.clear();
      for (int32_t c = 0; c < n.children; ++c) sizes.push_back(nodes[static_cast<size_t>(n.first_child + c)].queries());
      inherit = choose_inherit(m, tokens, n.ended, sizes);
      if (decisions) decisions->push_back(describe_decision(m, n, tokens, pending * page, sizes, inherit));
      for (size_t c = 0; c < sizes.size(); ++c) {
        if (inherit[c]) continue;
        const TreeNode& child = nodes[static_cast<size_t>(n.first_child) + c];
        stay.insert(stay.end(), order.begin() + child.query_begin, order.begin() + child.query_end);
      }
    }
    if (!stay.empty()) emit(stay, pending, n, m);
    for (int32_t c = n.children - 1; c >= 0; --c)
      stack.emplace_back(n.first_child + c, inherit[static_cast<size_t>(c)] ? pending : n.block_end);
  }
}

}  // namespace plan_steps

}  // namespace patlab
