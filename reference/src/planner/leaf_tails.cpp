// The planner, step 3c: leaf tails (PlannerOptions::take_leaves; planner.hpp, "Leaf tails";
// tutorial chapter 17, docs/results/2026-12-05-cpu-leaf-tails).
#include <algorithm>
#include <vector>

#include "patlab/planner/planner.hpp"
#include "patlab/planner/planner_steps.hpp"

namespace patlab::plan_steps {

int32_t take_leaves(std::vector<Pack>& packs, const PagedLayout& layout, const PlannerOptions& options) {
  // The tails instances of the pack kernel are built for 16-bit K and V (cuda/tail_tile.cu).
  if (layout.shape.kv_fp8()) return 0;
  const int page = layout.shape.page_size;
  const int group = layout.shape.group();
  // Rows of a pack that may take tails: leaf_tail_rows, within the rows of the tails instances
  // that run it (the pack kernel's 64, or stage 8's wgmma kernel's tiles).
  const int max_rows =
      std::min(options.leaf_tail_rows, options.tiles == TilePolicy::hopper ? options.hopper.max_rows : kMaxTileRows);
  // Each query's last two packs so far: the plan lists every query's packs in token order.
  std::vector<int32_t> last(static_cast<size_t>(layout.num_requests()), -1), before(last);
  for (size_t i = 0; i < packs.size(); ++i)
    for (int32_t q : packs[i].queries) {
      before[static_cast<size_t>(q)] = last[static_cast<size_t>(q)];
      last[static_cast<size_t>(q)] = static_cast<int32_t>(i);
    }
  // [take-leaves]
  std::vector<bool> taken(packs.size(), false);
  int32_t tails = 0;
  for (size_t i = 0; i < packs.size(); ++i) {
    const Pack& leaf = packs[i];
    if (leaf.queries.size() != 1 || leaf.kv_len > kLeafTailMaxTokens) continue;
    const int32_t q = leaf.queries[0];
    const int32_t p = before[static_cast<size_t>(q)];
    // A leaf: the query's last pack, to the end of its request, after a pack of its own queries.
    if (last[static_cast<size_t>(q)] != static_cast<int32_t>(i) || p < 0 ||
        leaf.token_begin + leaf.kv_len != layout.lengths[static_cast<size_t>(q)])
      continue;
    Pack& parent = packs[static_cast<size_t>(p)];
    if (taken[static_cast<size_t>(p)] || parent.rows(group) > max_rows ||
        static_cast<int>(parent.tails.size()) >= kLeafTailMaxTails ||
        parent.token_begin + parent.kv_len != leaf.token_begin || parent.kv_len % page != 0)
      continue;
    // At most one tail ending inside a page, streamed last: no token of the pack space is then
    // past its tail's end but before the space's, which the kernels' loads zero-fill.
    const auto partial = [page](const PackTail& t) { return t.kv_len % page != 0; };
    if (leaf.kv_len % page != 0 && std::any_of(parent.tails.begin(), parent.tails.end(), partial)) continue;
    const auto entry = std::find(parent.queries.begin(), parent.queries.end(), q) - parent.queries.begin();
    parent.tails.push_back({static_cast<int32_t>(entry), leaf.kv_len, leaf.blocks});
    taken[i] = true;
    ++tails;
  }
  for (Pack& p : packs)
    std::stable_partition(p.tails.begin(), p.tails.end(), [page](const PackTail& t) { return t.kv_len % page == 0; });
  // [take-leaves]
  size_t kept = 0;
  for (size_t i = 0; i < packs.size(); ++i)
    if (!taken[i]) {
      if (kept != i) packs[kept] = std::move(packs[i]);
      ++kept;
    }
  packs.resize(kept);
  return tails;
}

}  // namespace patlab::plan_steps
