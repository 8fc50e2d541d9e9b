// Stage 9's host half (issue 13): the GPC model, the cluster cost model on hand-computed cases,
// the cluster choice on real plans, and the persistent grid's work list: coverage against the
// plan, order, merge counters and the list-schedule bound, on random trees.
#include <algorithm>
#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "../catch.hpp"
#include "fuzz.hpp"
#include "patlab/error.hpp"
#include "patlab/model/traffic.hpp"
#include "patlab/planner/cluster.hpp"
#include "patlab/planner/planner.hpp"

using namespace patlab;

namespace {

/// Random trees the work list is checked on.
constexpr int kRandomTrees = 2000;
/// Seed of those trees (a range apart from test_planner.cpp's).
constexpr uint64_t kTreeSeed = 40240611;
/// Bytes of one range in the hand-computed cases (any positive value: the choice scales with it).
constexpr int64_t kRange = 1 << 20;

Shape heads_shape(int q_heads, int kv_heads) {
  Shape s;
  s.num_q_heads = q_heads;
  s.num_kv_heads = kv_heads;
  return s;  // d = 128, page 16, fp16
}

PlannerOptions hopper_options() {
  PlannerOptions o;
  o.tiles = TilePolicy::hopper;
  return o;
}

/// Every fault of `list` against `plan` and `clusters`, one line each (empty = consistent).
std::vector<std::string> work_list_faults(const PagedLayout& L, const Plan& plan, const ClusterPlan& clusters,
                                          const WorkList& list) {
  std::vector<std::string> faults;
  const int hkv = L.shape.num_kv_heads;
  // Each (pack, KV head) in exactly one item.
  std::vector<int> seen(plan.packs.size() * static_cast<size_t>(hkv), 0);
  std::map<std::pair<int32_t, int32_t>, std::vector<std::pair<int32_t, int32_t>>> ranges;  // (query, head) -> ranges
  std::vector<int64_t> writes(plan.partials.size() * static_cast<size_t>(hkv), 0);  // per (query, KV head)
  for (const WorkItem& w : list.items) {
    const PackGroup& g = clusters.groups[static_cast<size_t>(w.group)];
    if (w.slices < 1 || w.slices > w.cluster || w.cluster != g.cluster || w.cost != g.kv_len)
      faults.push_back("item of group " + std::to_string(w.group) + " has slices/cluster/cost off");
    for (int32_t s = w.first_slice; s < w.first_slice + w.slices; ++s) {
      const int32_t p = g.packs[static_cast<size_t>(s)];
      ++seen[static_cast<size_t>(p) * static_cast<size_t>(hkv) + static_cast<size_t>(w.kv_head)];
      const Pack& pk = plan.packs[static_cast<size_t>(p)];
      if (pk.token_begin != g.token_begin || pk.kv_len != g.kv_len) faults.push_back("a slice off its group's range");
      for (int32_t r : pk.queries) {
        ranges[{r, w.kv_head}].push_back({pk.token_begin, pk.token_begin + pk.kv_len});
        ++writes[static_cast<size_t>(r) * static_cast<size_t>(hkv) + static_cast<size_t>(w.kv_head)];
      }
    }
  }
  for (size_t i = 0; i < seen.size(); ++i)
    if (seen[i] != 1) faults.push_back("pack " + std::to_string(i / hkv) + " head " + std::to_string(i % hkv) +
                                       " in " + std::to_string(seen[i]) + " items");
  // Each (query, head) reads [0, len) exactly once.
  for (int32_t r = 0; r < L.num_requests(); ++r)
    for (int32_t h = 0; h < hkv; ++h) {
      auto& rs = ranges[{r, h}];
      std::sort(rs.begin(), rs.end());
      int32_t at = 0;
      for (const auto& [b, e] : rs) {
        if (b != at) faults.push_back("query " + std::to_string(r) + " head " + std::to_string(h) + ": gap or overlap at " +
                                      std::to_string(at));
        at = e;
      }
      if (at != L.lengths[static_cast<size_t>(r)]) faults.push_back("query " + std::to_string(r) + " not covered to its end");
    }
  // Counters: the items at each KV head writing a partial of each query (the same at every head),
  // 0 for a query written directly.
  for (size_t r = 0; r < plan.partials.size(); ++r)
    for (size_t h = 0; h < static_cast<size_t>(hkv); ++h) {
      const int64_t expect = plan.partials[r] > 1 ? writes[r * static_cast<size_t>(hkv) + h] : 0;
      if (list.merge_count[r] != expect)
        faults.push_back("merge counter of query " + std::to_string(r) + " at KV head " + std::to_string(h));
    }
  // Parts: multicast items, then solo items.
  if (list.solo_begin < 0 || static_cast<size_t>(list.solo_begin) > list.items.size())
    faults.push_back("solo_begin outside the list");
  for (size_t i = 0; i < list.items.size(); ++i)
    if ((list.items[i].cluster > 1) != (i < static_cast<size_t>(list.solo_begin)))
      faults.push_back("item " + std::to_string(i) + " in the wrong part (cluster " + std::to_string(list.items[i].cluster) + ")");
  // Order, in each part: runs of (first block, head) contiguous; inside a run cost
  // non-increasing; runs by their costliest item, non-increasing.
  std::map<std::pair<int32_t, int32_t>, size_t> run_end;
  int64_t prev_run_cost = INT64_MAX;
  for (size_t i = 0; i < list.items.size(); ++i) {
    const WorkItem& w = list.items[i];
    const bool part_starts = i == static_cast<size_t>(list.solo_begin);
    if (part_starts) run_end.clear(), prev_run_cost = INT64_MAX;
    const std::pair<int32_t, int32_t> key{clusters.groups[static_cast<size_t>(w.group)].first_block, w.kv_head};
    const bool starts = i == 0 || part_starts ||
                        key != std::make_pair(clusters.groups[static_cast<size_t>(list.items[i - 1].group)].first_block,
                                              list.items[i - 1].kv_head);
    if (starts) {
      if (run_end.count(key)) faults.push_back("the items of one (block, head) are not contiguous");
      if (w.cost > prev_run_cost) faults.push_back("runs are not longest first");
      prev_run_cost = w.cost;  // a run's first item is its costliest
    } else if (w.cost > list.items[i - 1].cost) {
      faults.push_back("a run is not longest first inside");
    }
    run_end[key] = i;
  }
  // Entries: consecutive, each within the launch's cluster size, covering the multicast part.
  for (size_t e = 0; e < list.entries(); ++e) {
    const size_t end = static_cast<size_t>(e + 1 < list.entries() ? list.entry_begin[e + 1] : list.solo_begin);
    int used = 0;
    for (size_t i = static_cast<size_t>(list.entry_begin[e]); i < end; ++i) used += list.items[i].cluster;
    if (used > list.launch_cluster || end <= static_cast<size_t>(list.entry_begin[e])) faults.push_back("entry overfull or empty");
  }
  if (list.solo_begin > 0 && (list.entry_begin.empty() || list.entry_begin.front() != 0)) faults.push_back("entries do not start at 0");
  if (list.solo_begin == 0 && !list.entry_begin.empty()) faults.push_back("entries without multicast items");
  return faults;
}

}  // namespace

TEST_CASE("GPCs and the slots clusters can use") {
  REQUIRE(gpc_sms(132) == std::vector<int>{18, 18, 16, 16, 16, 16, 16, 16});
  REQUIRE(gpc_sms(8) == std::vector<int>{2, 2, 2, 2, 0, 0, 0, 0});
  REQUIRE(gpc_sms(3) == std::vector<int>{2, 1, 0, 0, 0, 0, 0, 0});
  const std::vector<int> h200 = gpc_sms(132);
  REQUIRE(cluster_slots(h200, 1, 1) == 132);
  REQUIRE(cluster_slots(h200, 1, 2) == 132);
  REQUIRE(cluster_slots(h200, 1, 4) == 128);  // 18-SM GPCs hold 4 clusters of 4, 2 SMs idle
  REQUIRE(cluster_slots(h200, 2, 4) == 264);  // two CTAs per SM: 36 slots, 9 clusters
  REQUIRE(cluster_slots(gpc_sms(8), 1, 4) == 0);
  REQUIRE_THROWS_AS(gpc_sms(0), Error);
  REQUIRE_THROWS_AS(cluster_slots(h200, 0, 2), Error);
}

TEST_CASE("cluster cost model: hand-computed cases") {
  // The H200 at one 128-row CTA per SM: S_1 = S_2 = 132, S_4 = 128.
  const std::vector<int64_t> slots{132, 132, 128};
  SECTION("64 slices (a 1024-query prefix at group 8): cost 64B, 32B, 16B + 2B -> 4") {
    REQUIRE(cluster_cost(64, kRange, 1, 132, 132).total() == 64 * kRange);
    REQUIRE(cluster_cost(64, kRange, 2, 132, 132).total() == 32 * kRange);
    const ClusterCost c4 = cluster_cost(64, kRange, 4, 132, 128);
    REQUIRE(c4.reads == 16);
    REQUIRE(c4.idle_bytes == 0);
    REQUIRE(c4.quant_bytes == 64 * kRange * 4 / 128);  // 2B
    REQUIRE(c4.total() == 18 * kRange);
    REQUIRE(choose_cluster_size(64, kRange, slots) == 4);
  }
  SECTION("one slice (a 16-row pack, or no sharing): nothing to share -> 1") {
    REQUIRE(choose_cluster_size(1, kRange, slots) == 1);
  }
  SECTION("two slices -> 2; three -> 4 (B + B idle + 3B x 4/128 < 3B)") {
    REQUIRE(choose_cluster_size(2, kRange, slots) == 2);
    REQUIRE(cluster_cost(3, kRange, 2, 132, 132).total() == 3 * kRange);  // 2 reads + 1 idle: ties with 1
    REQUIRE(cluster_cost(3, kRange, 4, 132, 128).idle_bytes == kRange);
    REQUIRE(choose_cluster_size(3, kRange, slots) == 4);
  }
  SECTION("five slices: 4 leaves 3 idle CTAs (2B + 3B + 0.16B), 2 one (3B + B) -> 2") {
    REQUIRE(choose_cluster_size(5, kRange, slots) == 2);
  }
  SECTION("no GPC holds a cluster of 4: capped at 2") {
    REQUIRE(choose_cluster_size(64, kRange, {8, 8, 0}) == 2);
  }
}

TEST_CASE("cluster choice on plans: the suite's large prefix, no sharing, small packs") {
  SECTION("1024 requests on a 2048-token prefix at 64/8: 64 packs of 128 rows -> clusters of 4") {
    const PagedLayout L = build_layout(parse_tree_spec("1,1024_2048,32"), heads_shape(64, 8), true, 1);
    const PlannerOptions o = hopper_options();
    const Plan plan = make_plan(L, o);
    REQUIRE(validate_plan(L, plan).empty());
    const ClusterPlan c = choose_clusters(plan, L.shape, o);
    REQUIRE(c.ctas_per_sm == 1);
    REQUIRE(c.slots == std::vector<int64_t>{132, 132, 128});
    const auto prefix = std::find_if(c.groups.begin(), c.groups.end(), [](const PackGroup& g) { return g.token_begin == 0; });
    REQUIRE(prefix != c.groups.end());
    REQUIRE(prefix->packs.size() == 64);
    REQUIRE(prefix->rows == 1024 * 8);
    REQUIRE(prefix->cluster == 4);
    REQUIRE(prefix->cost.reads == 16);
    for (const PackGroup& g : c.groups)
      if (g.token_begin != 0) REQUIRE(g.cluster == 1);  // a 1-query suffix: 8 rows on the pack kernel
    REQUIRE(c.launch_cluster == 4);
    // The prefix: 64 reads of 2048 tokens x 4 KiB become 16.
    REQUIRE(c.kv_bytes_alone - c.kv_bytes_clustered == 48 * int64_t{2048} * L.shape.kv_bytes_per_token());
  }
  SECTION("128 requests on a 16K prefix at Qwen2.5-7B's 28/4: 8 pieces of 8 slices (the last 14 rows) -> 4") {
    const PagedLayout L = build_layout(parse_tree_spec("1,128_16384,256"), heads_shape(28, 4), true, 1);
    const PlannerOptions o = hopper_options();
    const Plan plan = make_plan(L, o);
    const ClusterPlan c = choose_clusters(plan, L.shape, o);
    int prefix_groups = 0;
    for (const PackGroup& g : c.groups) {
      if (g.token_begin >= 16384) {
        REQUIRE(g.cluster == 1);
        continue;
      }
      ++prefix_groups;
      REQUIRE(g.packs.size() == 8);  // 7 packs of 18 queries (126 rows), one of 2 (14 rows)
      REQUIRE(g.rows == 128 * 7);
      REQUIRE(g.cluster == 4);
      REQUIRE(g.cost.reads == 2);
    }
    REQUIRE(prefix_groups == 8);  // the KV split's 8 pieces of 2048 tokens
  }
  SECTION("no sharing: every group one pack -> 1, no byte saved") {
    const PagedLayout L = build_layout(parse_tree_spec("64_4096"), heads_shape(32, 8), true, 1);
    const PlannerOptions o = hopper_options();
    const Plan plan = make_plan(L, o);
    const ClusterPlan c = choose_clusters(plan, L.shape, o);
    for (const PackGroup& g : c.groups) REQUIRE(g.cluster == 1);
    REQUIRE(c.launch_cluster == 1);
    REQUIRE(c.kv_bytes_clustered == c.kv_bytes_alone);
    REQUIRE(c.kv_bytes_alone == L.total_kv_bytes());
  }
  SECTION("a 16-row pack (two queries at group 8 over a prefix) -> 1") {
    const PagedLayout L = build_layout(parse_tree_spec("1,2_1024,64"), heads_shape(64, 8), true, 1);
    const PlannerOptions o = hopper_options();
    const Plan plan = make_plan(L, o);
    const ClusterPlan c = choose_clusters(plan, L.shape, o);
    for (const PackGroup& g : c.groups) {
      REQUIRE(g.cluster == 1);
      REQUIRE(g.rows <= 16);
    }
  }
  SECTION("a plan on the tile table is refused") {
    const PagedLayout L = build_layout(parse_tree_spec("1,4_256,16"), heads_shape(32, 8), true, 1);
    PlannerOptions o;
    REQUIRE_THROWS_AS(choose_clusters(make_plan(L, o), L.shape, o), Error);
  }
}

TEST_CASE("work list: coverage, order, counters, entries and the schedule bound on the suite's large prefix") {
  const PagedLayout L = build_layout(parse_tree_spec("1,1024_2048,32"), heads_shape(64, 8), true, 1);
  const PlannerOptions o = hopper_options();
  const Plan plan = make_plan(L, o);
  const ClusterPlan c = choose_clusters(plan, L.shape, o);
  const WorkList w = make_work_list(plan, c, L.shape);
  REQUIRE(work_list_faults(L, plan, c, w).empty());
  // 16 clusters x 8 heads over the prefix, 1024 suffix packs x 8 heads.
  REQUIRE(w.items.size() == 16 * 8 + 1024 * 8);
  REQUIRE(w.seats == 128 / 4);
  // The prefix items come first, all 16 of one head together.
  for (size_t i = 0; i < 16; ++i) {
    REQUIRE(w.items[i].cost == 2048);
    REQUIRE(w.items[i].kv_head == 0);
  }
  // Every query has 2 partials (prefix, own tokens): at each KV head 2 items write it.
  for (int32_t k : w.merge_count) REQUIRE(k == 2);
  // The prefix items are the entries (one cluster of 4 each); the 1-CTA suffix items are solo,
  // pulled per CTA.
  REQUIRE(w.entries() == 16 * 8);
  REQUIRE(w.solo_items() == 1024 * 8);
  const PullSchedule s = pull_schedule(w);
  REQUIRE(s.makespan <= s.bound(w.slots()));
  REQUIRE(s.makespan >= (s.total + w.slots() - 1) / w.slots());
  REQUIRE(s.waves == 128 / 32);
  REQUIRE(s.solo_waves == (1024 * 8 + 127) / 128);
  // The 32 clusters take the 128 prefix items in 4 rounds of 2048 tokens; then the 128 CTAs share
  // the 8192 suffix items of 32 tokens: 64 each.
  REQUIRE(s.makespan == 4 * 2048 + 64 * 32);
}

TEST_CASE("work list on random trees: every (query, head, range) once, order, counters, the list bound") {
  int clustered = 0, merged = 0;
  for (int i = 0; i < kRandomTrees; ++i) {
    const uint64_t seed = kTreeSeed + static_cast<uint64_t>(i);
    fuzz::Case fc = fuzz::draw_case(seed, i % 4 == 0 ? fuzz::kLargeTrees : fuzz::kSmallTrees);
    fc.options.tiles = TilePolicy::hopper;
    fc.options.hopper = kClusterRouting;  // stage 9 plans without stage 8's routing
    fc.options.take_leaves = false;       // nor leaf tails (stages 7 and 8's)
    const PagedLayout L = build_layout(fc.tree, fc.shape, true, seed);
    const Plan plan = make_plan(L, fc.options);
    INFO(fc.describe);
    REQUIRE(validate_plan(L, plan).empty());
    const ClusterPlan c = choose_clusters(plan, L.shape, fc.options);
    const WorkList w = make_work_list(plan, c, L.shape);
    const std::vector<std::string> faults = work_list_faults(L, plan, c, w);
    INFO((faults.empty() ? std::string() : faults.front()));
    REQUIRE(faults.empty());
    const PullSchedule s = pull_schedule(w);
    REQUIRE(s.makespan <= s.bound(w.slots()));
    REQUIRE(s.makespan >= (s.total + w.slots() - 1) / w.slots());
    REQUIRE(s.makespan >= s.longest);
    // The timeline: every item once, on CTA slots of the launch, its cluster's worth of them, no
    // two items on one slot at once, and the last end is the makespan.
    const std::vector<PulledItem> pulls = pull_timeline(w);
    REQUIRE(pulls.size() == w.items.size());
    std::vector<int> pulled(w.items.size(), 0);
    std::map<int32_t, std::vector<std::pair<int64_t, int64_t>>> busy;  // CTA slot -> [start, end)
    int64_t last = 0;
    int bad_pulls = 0, overlaps = 0;
    for (const PulledItem& p : pulls) {
      ++pulled[static_cast<size_t>(p.item)];
      const WorkItem& item = w.items[static_cast<size_t>(p.item)];
      bad_pulls += p.ctas != item.cluster || p.first_cta < 0 || p.first_cta + p.ctas > w.slots() ||
                   p.end - p.start != item.cost;
      for (int32_t c = p.first_cta; c < p.first_cta + p.ctas; ++c) busy[c].push_back({p.start, p.end});
      last = std::max(last, p.end);
    }
    for (auto& [slot, spans] : busy) {
      std::sort(spans.begin(), spans.end());
      for (size_t i = 1; i < spans.size(); ++i) overlaps += spans[i].first < spans[i - 1].second;
    }
    REQUIRE(bad_pulls == 0);
    REQUIRE(overlaps == 0);
    REQUIRE(std::all_of(pulled.begin(), pulled.end(), [](int n) { return n == 1; }));
    REQUIRE(last == s.makespan);
    // Clusters never read more than one CTA per pack, and row slices add no partial.
    REQUIRE(c.kv_bytes_clustered <= c.kv_bytes_alone);
    clustered += c.launch_cluster > 1;
    for (int32_t k : w.merge_count) merged += k > 0;
  }
  REQUIRE(clustered > kRandomTrees / 20);
  REQUIRE(merged > 0);
}

TEST_CASE("bad input to the cluster functions is a usage error") {
  REQUIRE_THROWS_AS(cluster_cost(0, kRange, 2, 132, 132), Error);
  REQUIRE_THROWS_AS(cluster_cost(4, kRange, 4, 128, 132), Error);
  REQUIRE_THROWS_AS(choose_cluster_size(4, kRange, {132, 132}), Error);
  const PagedLayout L = build_layout(parse_tree_spec("1,4_256,16"), heads_shape(32, 8), true, 1);
  const PlannerOptions o = hopper_options();
  const Plan plan = make_plan(L, o);
  ClusterPlan c = choose_clusters(plan, L.shape, o);
  c.group_of_pack.pop_back();
  REQUIRE_THROWS_AS(make_work_list(plan, c, L.shape), Error);
  WorkList empty;
  REQUIRE_THROWS_AS(pull_schedule(empty), Error);
}
