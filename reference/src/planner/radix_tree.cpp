// The planner, step 1: the radix tree over physical block ids (tutorial chapter 02, section 1,
// tutorial/02-pack-step.md). planner.hpp explains the tree; planner_steps.hpp declares it.
#include "patlab/planner/planner.hpp"

#include <algorithm>
#include <numeric>

#include "patlab/planner/planner_steps.hpp"

namespace patlab::plan_steps {

namespace {

/// Bits of a block key that hold the tokens of the block (page sizes are at most 64).
constexpr int kKeyTokenBits = 8;
static_assert((1 << kKeyTokenBits) > kSupportedPageSizes[2], "a block's token count fits its key bits");

}  // namespace

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

}  // namespace patlab::plan_steps
