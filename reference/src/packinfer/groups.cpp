// PackInfer's execution groups (packinfer/groups.hpp): units, items, families, the cuts, the
// longest-first placement where an item ends first, and the validator.
#include "patlab/packinfer/groups.hpp"

#include <algorithm>
#include <map>
#include <set>
#include <tuple>
#include <unordered_map>
#include <unordered_set>
#include <utility>

#include "patlab/error.hpp"
#include "patlab/model/traffic.hpp"
#include "patlab/packinfer/group_kernel.hpp"
#include "patlab/planner/planner_steps.hpp"

namespace patlab::packinfer {

using plan_steps::kCtaFixedBytes;

const char* units_name(Units u) { return u == Units::packs ? "packs" : "requests"; }

Units parse_units(const std::string& name) {
  if (name == "packs") return Units::packs;
  if (name == "requests") return Units::requests;
  throw Error(ErrorKind::usage, "unknown --units '" + name + "' (known: packs, requests)");
}

void GroupOptions::validate() const {
  check_sm_slots(sms, ctas_per_sm);
  require(min_piece_blocks >= 1, "--min-piece-blocks must be >= 1 (got " + std::to_string(min_piece_blocks) + ")");
  require(one_of(max_rows, kTileRowOptions),
          "--max-rows must be 16, 32 or 64 rows of one pack (got " + std::to_string(max_rows) + ")");
}

int64_t GroupPlan::max_cost() const {
  int64_t m = 0;
  for (const Group& g : groups) m = std::max(m, g.cost);
  return m;
}

int64_t GroupPlan::max_charged() const {
  int64_t m = 0;
  for (const Group& g : groups) m = std::max(m, g.charged_bytes);
  return m;
}

// [item cost]
int64_t item_overhead_bytes(const Shape& shape, int64_t queries) {
  return queries * traffic::extra_partial_bytes(shape.group(), shape.head_dim);
}

int64_t head_bytes(const Shape& shape, int64_t tokens) {
  return tokens * traffic::kv_bytes_per_token(1, shape.head_dim, shape.kv_element_bytes());
}
// [item cost]

int32_t block_tokens(const WorkItem& item, int32_t i, int page) {
  const int32_t begin = item.token_begin + (i - item.block_begin) * page;
  return std::min(begin + page, item.token_end) - begin;
}

std::vector<Pack> make_units(const PagedLayout& layout, Units units, int max_rows) {
  if (units == Units::packs) {
    PlannerOptions po;
    po.split_kv = false;
    if (max_rows < kMaxTileRows) {  // the walk's packs at most max_rows rows: a fixed tile of that height
      po.tiles = TilePolicy::fixed;
      po.fixed_tile = TileShape{max_rows, kGroupKvTile};
    }
    return make_plan(layout, po).packs;
  }
  std::vector<Pack> out(static_cast<size_t>(layout.num_requests()));
  for (int r = 0; r < layout.num_requests(); ++r) {
    Pack& p = out[static_cast<size_t>(r)];
    p.queries = {r};
    p.kv_len = layout.lengths[static_cast<size_t>(r)];
    p.blocks = layout.block_tables[static_cast<size_t>(r)];
  }
  return out;
}

namespace {

/// Per physical block, whether more than one unit reads it. Only such a block's (block, head)
/// pairs can be read by two items of a group or by two placeables (an item reads a block of its
/// unit once, and the pieces of one item are disjoint), so only they are looked up in hash maps;
/// every other block's tokens are added without one. On a batch without sharing that is every
/// block (4096_4096 at 32/8: 8.4 million pairs).
std::vector<bool> shared_blocks(const std::vector<Pack>& units) {
  std::vector<int32_t> readers;
  for (const Pack& u : units)
    for (int32_t b : u.blocks) {
      if (static_cast<size_t>(b) >= readers.size()) readers.resize(static_cast<size_t>(b) + 1, 0);
      ++readers[static_cast<size_t>(b)];
    }
  std::vector<bool> shared(readers.size());
  for (size_t b = 0; b < readers.size(); ++b) shared[b] = readers[b] > 1;
  return shared;
}

/// Adds the (block, head) pairs of `item` over shared blocks (`shared`) with their tokens to
/// `keys`; returns the tokens of its other blocks, which no other item reads.
int64_t collect_keys(const WorkItem& item, const Pack& unit, int page, int hkv, const std::vector<bool>& shared,
                     std::unordered_map<int64_t, int32_t>& keys) {
  int64_t own = 0;
  for (int32_t i = item.block_begin; i < item.block_end; ++i) {
    const int32_t block = unit.blocks[static_cast<size_t>(i)];
    if (shared[static_cast<size_t>(block)])
      keys[block_head_key(block, item.kv_head, hkv)] = block_tokens(item, i, page);
    else
      own += block_tokens(item, i, page);
  }
  return own;
}

/// The item overheads and the distinct-block bytes of `items`.
struct ItemsCost {
  int64_t overhead = 0;
  int64_t kv_bytes = 0;
};

/// ItemsCost of `items` (no fixed CTA cost).
ItemsCost items_cost(const Shape& shape, const std::vector<Pack>& units, const std::vector<bool>& shared,
                     const std::vector<WorkItem>& items) {
  std::unordered_map<int64_t, int32_t> keys;
  int64_t overhead = 0, tokens = 0;
  for (const WorkItem& it : items) {
    const Pack& u = units[static_cast<size_t>(it.unit)];
    overhead += item_overhead_bytes(shape, static_cast<int64_t>(u.queries.size()));
    tokens += collect_keys(it, u, shape.page_size, shape.num_kv_heads, shared, keys);
  }
  for (const auto& kv : keys) tokens += kv.second;
  return {overhead, head_bytes(shape, tokens)};
}

/// The cost of one item alone: its overhead and its range (its blocks are distinct).
int64_t item_cost(const Shape& shape, const std::vector<Pack>& units, const WorkItem& item) {
  return item_overhead_bytes(shape, static_cast<int64_t>(units[static_cast<size_t>(item.unit)].queries.size())) +
         head_bytes(shape, item.tokens());
}

/// Group `group`'s cost and distinct-block bytes (price_group()) with `shared` given.
void price_group(const Shape& shape, const std::vector<Pack>& units, const std::vector<bool>& shared, Group& group) {
  const ItemsCost c = items_cost(shape, units, shared, group.items);
  group.kv_bytes = c.kv_bytes;
  group.cost = kCtaFixedBytes + c.overhead + c.kv_bytes;
  int64_t tokens = 0;
  for (const WorkItem& it : group.items) tokens += it.tokens();
  group.charged_bytes = kCtaFixedBytes + c.overhead + head_bytes(shape, tokens);
}

/// Step 1: every unit at every KV head, whole.
std::vector<WorkItem> whole_items(const PagedLayout& layout, const std::vector<Pack>& units) {
  std::vector<WorkItem> items;
  for (size_t u = 0; u < units.size(); ++u) {
    const Pack& p = units[u];
    const int32_t family = layout.block_tables[static_cast<size_t>(p.queries.front())].front();
    for (int32_t h = 0; h < layout.shape.num_kv_heads; ++h)
      items.push_back({static_cast<int32_t>(u), h, 0, static_cast<int32_t>(p.blocks.size()), p.token_begin,
                       p.token_begin + p.kv_len, family});
  }
  return items;
}

// [cut item]
/// Step 3's cut: `item` into k pieces of equal blocks (the first ones one block longer), k =
/// ceil(cost / cap) but no piece shorter than min_piece_blocks; appended to `out`.
int32_t cut_item(const WorkItem& item, int64_t cost, int64_t cap, int min_piece_blocks, int page,
                 std::vector<WorkItem>& out) {
  const int32_t blocks = item.block_end - item.block_begin;
  const int64_t wanted = (cost + cap - 1) / cap;
  const int32_t k = static_cast<int32_t>(std::max<int64_t>(1, std::min<int64_t>(wanted, blocks / min_piece_blocks)));
  int32_t begin = item.block_begin;
  for (int32_t j = 0; j < k; ++j) {
    const int32_t end = begin + blocks / k + (j < blocks % k ? 1 : 0);
    WorkItem piece = item;
    piece.block_begin = begin;
    piece.block_end = end;
    piece.token_begin = item.token_begin + (begin - item.block_begin) * page;
    piece.token_end = std::min(item.token_begin + (end - item.block_begin) * page, item.token_end);
    out.push_back(piece);
    begin = end;
  }
  return k - 1;
}
// [cut item]

/// What step 4 places at once: a co-located family or one item.
struct Placeable {
  int64_t cost = 0;  ///< its full cost (distinct blocks once), no fixed CTA cost
  std::vector<WorkItem> items;
};

/// Steps 2-3: families within the cap become one placeable; every other item is cut to the cap.
std::vector<Placeable> make_placeables(const PagedLayout& layout, const std::vector<Pack>& units,
                                       const std::vector<bool>& shared, const std::vector<WorkItem>& items,
                                       const GroupOptions& o, GroupPlan& plan) {
  const Shape& shape = layout.shape;
  int64_t total = 0;
  std::map<std::pair<int32_t, int32_t>, std::vector<WorkItem>> families;  // (family, head) -> items
  for (const WorkItem& it : items) {
    total += item_cost(shape, units, it);
    families[{it.family, it.kv_head}].push_back(it);
  }
  const int64_t target = (plan.slots * kCtaFixedBytes + total + plan.slots - 1) / plan.slots;
  plan.cap = std::max<int64_t>(1, target - kCtaFixedBytes);
  std::vector<Placeable> out;
  for (auto& f : families) {
    const ItemsCost c = items_cost(shape, units, shared, f.second);
    const int64_t cost = c.overhead + c.kv_bytes;
    if (cost <= plan.cap) {
      ++plan.families_colocated;
      out.push_back({cost, std::move(f.second)});
      continue;
    }
    ++plan.families_spread;
    for (const WorkItem& it : f.second) {
      std::vector<WorkItem> pieces;
      plan.cuts += cut_item(it, item_cost(shape, units, it), plan.cap, o.min_piece_blocks, shape.page_size, pieces);
      for (const WorkItem& p : pieces) out.push_back({item_cost(shape, units, p), {p}});
    }
  }
  std::stable_sort(out.begin(), out.end(), [](const Placeable& a, const Placeable& b) { return a.cost > b.cost; });
  return out;
}

// [place where it ends first]
/// Step 4: each placeable, longest first, into the group where it ends first: the least loaded
/// group, or a group holding some of its blocks whose load plus the blocks it lacks is no larger.
void place(const PagedLayout& layout, const std::vector<Pack>& units, const std::vector<bool>& shared,
           const std::vector<Placeable>& todo, GroupPlan& plan) {
  const Shape& shape = layout.shape;
  const size_t g_count = static_cast<size_t>(plan.slots);
  std::vector<int64_t> load(g_count, kCtaFixedBytes);
  std::set<std::pair<int64_t, int32_t>> by_load;
  for (size_t g = 0; g < g_count; ++g) by_load.insert({kCtaFixedBytes, static_cast<int32_t>(g)});
  std::vector<std::unordered_set<int64_t>> held(g_count);
  std::unordered_map<int64_t, std::vector<int32_t>> holders;  // (block, head) -> groups holding it
  for (const Placeable& p : todo) {
    std::unordered_map<int64_t, int32_t> keys;  // its pairs that other placeables may hold
    for (const WorkItem& it : p.items)
      collect_keys(it, units[static_cast<size_t>(it.unit)], shape.page_size, shape.num_kv_heads, shared, keys);
    std::unordered_map<int32_t, int64_t> overlap;  // group -> tokens of p it already holds
    for (const auto& kv : keys) {
      const auto h = holders.find(kv.first);
      if (h != holders.end())
        for (int32_t g : h->second) overlap[g] += kv.second;
    }
    int32_t best = by_load.begin()->second;
    int64_t best_end = by_load.begin()->first + p.cost, best_shared = 0;
    for (const auto& s : overlap) {
      const int64_t end = load[static_cast<size_t>(s.first)] + p.cost - head_bytes(shape, s.second);
      if (end < best_end || (end == best_end && (s.second > best_shared || (s.second == best_shared && s.first < best)))) {
        best = s.first;
        best_end = end;
        best_shared = s.second;
      }
    }
    const size_t b = static_cast<size_t>(best);
    by_load.erase({load[b], best});
    load[b] = best_end;
    by_load.insert({load[b], best});
    for (const auto& kv : keys)
      if (held[b].insert(kv.first).second) holders[kv.first].push_back(best);
    auto& items = plan.groups[b].items;
    items.insert(items.end(), p.items.begin(), p.items.end());
    plan.largest_placed = std::max(plan.largest_placed, p.cost);
  }
}
// [place where it ends first]

}  // namespace

void price_group(const PagedLayout& layout, const std::vector<Pack>& units, Group& group) {
  price_group(layout.shape, units, shared_blocks(units), group);
}

GroupPlan make_groups(const PagedLayout& layout, const GroupOptions& options) {
  options.validate();
  plan_steps::check_layout(layout);
  GroupPlan plan;
  plan.units = options.units;
  plan.max_rows = options.max_rows;
  plan.unit_list = make_units(layout, options.units, options.max_rows);
  PlannerOptions po;
  po.sms = options.sms;
  if (options.ctas_per_sm > 0) po.ctas_per_sm.fill(options.ctas_per_sm);
  const std::vector<Pack> walk =
      options.units == Units::packs ? plan.unit_list : make_units(layout, Units::packs, options.max_rows);
  plan.slots = plan_steps::split_slots(walk, layout.shape, po);
  plan.ctas_per_sm = static_cast<int32_t>(plan.slots / options.sms);
  plan.groups.resize(static_cast<size_t>(plan.slots));
  const std::vector<WorkItem> items = whole_items(layout, plan.unit_list);
  const std::vector<bool> shared = shared_blocks(plan.unit_list);
  place(layout, plan.unit_list, shared, make_placeables(layout, plan.unit_list, shared, items, options, plan), plan);
  int64_t sum = 0;
  for (Group& g : plan.groups) {
    std::sort(g.items.begin(), g.items.end(), [](const WorkItem& a, const WorkItem& b) {
      return std::tie(a.family, a.unit, a.kv_head, a.block_begin) < std::tie(b.family, b.unit, b.kv_head, b.block_begin);
    });
    price_group(layout.shape, plan.unit_list, shared, g);
    sum += g.cost;
  }
  plan.mean_cost = (sum + plan.slots - 1) / plan.slots;
  return plan;
}

// [group instance]
void check_group_rows(int rows) {
  require(rows == 0 || is_group_row_cap(rows),
          "--group-rows must be 0 (stage 10's model chooses), 16 or 64 (got " + std::to_string(rows) + ")");
}

GroupChoice choose_group_instance(const PagedLayout& layout, const GroupOptions& base, int rows) {
  check_group_rows(rows);
  GroupChoice choice;
  double best = 0;
  const int d = layout.shape.head_dim, kv = layout.shape.kv_element_bytes();
  for (int cap : kGroupRowCaps) {
    GroupOptions o = base;
    o.max_rows = cap;
    o.ctas_per_sm = estimate_group_ctas_per_sm(d, cap, kv);
    GroupPlan plan = make_groups(layout, o);
    const double score = group_end_time(plan.max_charged(), plan.ctas_per_sm, d, cap, kv);
    choice.scores.push_back(score);
    if (rows != 0 ? cap == rows : choice.scores.size() == 1 || score < best) {
      best = score;
      choice.plan = std::move(plan);
    }
  }
  return choice;
}
// [group instance]

namespace {

/// Faults of one item against its unit and the layout; appends its token ranges to `ranges`.
void check_item(const PagedLayout& layout, const GroupPlan& plan, const WorkItem& it,
                std::vector<std::vector<std::pair<int32_t, int32_t>>>& ranges, std::vector<std::string>& faults) {
  const int page = layout.shape.page_size, hkv = layout.shape.num_kv_heads;
  const std::string name = "item (unit " + std::to_string(it.unit) + ", head " + std::to_string(it.kv_head) + ", blocks [" +
                           std::to_string(it.block_begin) + ", " + std::to_string(it.block_end) + "))";
  if (it.unit < 0 || static_cast<size_t>(it.unit) >= plan.unit_list.size() || it.kv_head < 0 || it.kv_head >= hkv) {
    faults.push_back(name + ": no such unit or KV head");
    return;
  }
  const Pack& u = plan.unit_list[static_cast<size_t>(it.unit)];
  const int32_t unit_end = u.token_begin + u.kv_len;
  if (it.block_begin < 0 || it.block_begin >= it.block_end || static_cast<size_t>(it.block_end) > u.blocks.size() ||
      it.token_begin != u.token_begin + it.block_begin * page ||
      it.token_end != std::min(u.token_begin + it.block_end * page, unit_end)) {
    faults.push_back(name + ": its blocks and tokens do not match its unit");
    return;
  }
  for (int32_t r : u.queries) {
    const auto& table = layout.block_tables[static_cast<size_t>(r)];
    for (int32_t i = it.block_begin; i < it.block_end; ++i) {
      const size_t logical = static_cast<size_t>(it.token_begin / page + (i - it.block_begin));
      if (logical >= table.size() || table[logical] != u.blocks[static_cast<size_t>(i)]) {
        faults.push_back(name + ": block " + std::to_string(i) + " is not request " + std::to_string(r) + "'s");
        return;
      }
    }
    ranges[static_cast<size_t>(r) * hkv + static_cast<size_t>(it.kv_head)].push_back({it.token_begin, it.token_end});
  }
}

}  // namespace

std::vector<std::string> validate_groups(const PagedLayout& layout, const GroupPlan& plan) {
  std::vector<std::string> faults;
  const int hkv = layout.shape.num_kv_heads;
  if (static_cast<int64_t>(plan.groups.size()) != plan.slots)
    faults.push_back(std::to_string(plan.groups.size()) + " groups for " + std::to_string(plan.slots) + " slots");
  std::vector<std::vector<std::pair<int32_t, int32_t>>> ranges(static_cast<size_t>(layout.num_requests()) * hkv);
  const std::vector<bool> shared = shared_blocks(plan.unit_list);
  for (size_t g = 0; g < plan.groups.size(); ++g) {
    for (const WorkItem& it : plan.groups[g].items) check_item(layout, plan, it, ranges, faults);
    Group priced = plan.groups[g];
    price_group(layout.shape, plan.unit_list, shared, priced);
    if (priced.cost != plan.groups[g].cost)
      faults.push_back("group " + std::to_string(g) + ": cost " + std::to_string(plan.groups[g].cost) + ", priced " +
                       std::to_string(priced.cost));
    if (priced.charged_bytes != plan.groups[g].charged_bytes)
      faults.push_back("group " + std::to_string(g) + ": charged bytes " +
                       std::to_string(plan.groups[g].charged_bytes) + ", priced " +
                       std::to_string(priced.charged_bytes));
  }
  for (size_t k = 0; k < ranges.size(); ++k)
    if (k % static_cast<size_t>(hkv) != 0 && ranges[k].size() != ranges[k - k % static_cast<size_t>(hkv)].size())
      faults.push_back("request " + std::to_string(k / hkv) + ": " + std::to_string(ranges[k].size()) +
                       " items at KV head " + std::to_string(k % hkv) + ", " +
                       std::to_string(ranges[k - k % static_cast<size_t>(hkv)].size()) + " at KV head 0");
  for (size_t k = 0; k < ranges.size(); ++k) {
    auto& v = ranges[k];
    std::sort(v.begin(), v.end());
    int32_t at = 0;
    size_t used = 0;
    for (; used < v.size() && v[used].first == at; ++used) at = v[used].second;
    if (at != layout.lengths[k / static_cast<size_t>(hkv)] || used != v.size())
      faults.push_back("request " + std::to_string(k / hkv) + ", KV head " + std::to_string(k % hkv) +
                       ": tokens not covered exactly once (" + std::to_string(v.size()) + " items)");
  }
  if (faults.size() > static_cast<size_t>(kMaxReportedFaults)) {
    const size_t rest = faults.size() - kMaxReportedFaults + 1;
    faults.resize(kMaxReportedFaults - 1);
    faults.push_back("... and " + std::to_string(rest) + " more");
  }
  return faults;
}

std::vector<int32_t> partials_per_request(const PagedLayout& layout, const GroupPlan& plan) {
  std::vector<int32_t> out(static_cast<size_t>(layout.num_requests()), 0);
  for (const Group& g : plan.groups)
    for (const WorkItem& it : g.items)
      if (it.kv_head == 0)
        for (int32_t r : plan.unit_list[static_cast<size_t>(it.unit)].queries) ++out[static_cast<size_t>(r)];
  return out;
}

// [group plan bytes]
int64_t group_plan_bytes(const PagedLayout& layout, const GroupPlan& plan) {
  const Shape& s = layout.shape;
  int64_t kv = 0, gathered = 0, slots = 0;
  for (const Group& g : plan.groups)
    for (const WorkItem& it : g.items) {
      kv += head_bytes(s, it.tokens());  // each item streams its range, a block it shares with another item too
      gathered += static_cast<int64_t>(plan.unit_list[static_cast<size_t>(it.unit)].queries.size());
    }
  for (int32_t k : partials_per_request(layout, plan))
    if (k > 1) slots += k;  // a request with one item per head is written directly
  return kv + gathered * traffic::query_bytes(s.group(), s.head_dim) +
         traffic::partials_round_trip_bytes(s.num_q_heads, s.head_dim, slots) +
         int64_t{layout.num_requests()} * traffic::query_bytes(s.num_q_heads, s.head_dim);
}
// [group plan bytes]

}  // namespace patlab::packinfer
