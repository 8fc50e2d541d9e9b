// Stage 9's host half (issue 13; tutorial chapter 18): cluster sizes per pack group by the byte
// and occupancy model, and the persistent grid's work list with its merge counters.
#include "patlab/planner/cluster.hpp"

#include <algorithm>
#include <iterator>
#include <map>
#include <queue>
#include <string>
#include <tuple>
#include <utility>

#include "patlab/error.hpp"
#include "patlab/planner/planner_steps.hpp"
#include "planner_detail.hpp"

namespace patlab {

using planner_detail::ceil_div;

static_assert(PlannerOptions{}.max_cluster == kMaxClusterSize, "the planner's default cap is the largest size");


std::vector<int> gpc_sms(int sms) {
  require(sms >= 1, "gpc_sms: the SM count must be >= 1 (got " + std::to_string(sms) + ")");
  const int tpcs = static_cast<int>(ceil_div(sms, kSmsPerTpc));
  std::vector<int> gpcs(static_cast<size_t>(kGpcs), 0);
  for (int t = 0; t < tpcs; ++t) {
    const int sm_of_tpc = std::min(kSmsPerTpc, sms - t * kSmsPerTpc);
    gpcs[static_cast<size_t>(t % kGpcs)] += sm_of_tpc;
  }
  return gpcs;
}

int64_t cluster_slots(const std::vector<int>& gpcs, int ctas_per_sm, int cluster) {
  require(cluster >= 1 && ctas_per_sm >= 1, "cluster_slots: cluster size and CTAs per SM must be >= 1 (got " +
                                                std::to_string(cluster) + ", " + std::to_string(ctas_per_sm) + ")");
  int64_t slots = 0;
  for (int s : gpcs) slots += int64_t{s} * ctas_per_sm / cluster * cluster;
  return slots;
}

// [cluster-cost]
ClusterCost cluster_cost(int64_t slices, int64_t range_bytes, int cluster, int64_t slots_1, int64_t slots_c) {
  require(slices >= 1 && cluster >= 1 && slots_c >= 1 && slots_c <= slots_1,
          "cluster_cost: needs slices >= 1, cluster >= 1 and 1 <= S_c <= S_1");
  ClusterCost c;
  c.reads = ceil_div(slices, cluster);                              // one fetch per cluster, multicast
  c.read_bytes = c.reads * range_bytes;
  c.idle_bytes = (cluster * c.reads - slices) * range_bytes;        // a partial last cluster's idle CTAs
  c.quant_bytes = slices * range_bytes * (slots_1 - slots_c) / slots_c;  // the slots clusters of c cannot use
  return c;
}

void check_max_cluster(int max_cluster, const std::string& what) {
  require(std::find(std::begin(kClusterSizes), std::end(kClusterSizes), max_cluster) != std::end(kClusterSizes),
          what + " must be 1, 2 or 4 CTAs (got " + std::to_string(max_cluster) + ")");
}

int choose_cluster_size(int64_t slices, int64_t range_bytes, const std::vector<int64_t>& slots, int max_cluster) {
  require(slots.size() == std::size(kClusterSizes), "choose_cluster_size: one slot count per cluster size");
  int best = kClusterSizes[0];
  int64_t best_cost = cluster_cost(slices, range_bytes, best, slots[0], slots[0]).total();
  for (size_t i = 1; i < std::size(kClusterSizes); ++i) {
    const int c = kClusterSizes[i];
    if (c > max_cluster || c / 2 >= slices || slots[i] < 1) break;  // none above the cap or much larger than the group; none that fits no GPC
    const int64_t cost = cluster_cost(slices, range_bytes, c, slots[0], slots[i]).total();
    if (cost < best_cost) best = c, best_cost = cost;  // ties: the smaller size
  }
  return best;
}
// [cluster-cost]

ClusterPlan choose_clusters(const Plan& plan, const Shape& shape, const PlannerOptions& options) {
  require(options.tiles == TilePolicy::hopper,
          "choose_clusters: clusters multicast into stage 8's tiles; plan with TilePolicy::hopper");
  check_max_cluster(options.max_cluster, "choose_clusters: PlannerOptions::max_cluster");
  require(std::all_of(plan.packs.begin(), plan.packs.end(), [](const Pack& p) { return p.tails.empty(); }),
          "choose_clusters: stage 9 runs no leaf tails (PlannerOptions::take_leaves is stages 7 and 8's)");
  ClusterPlan out;
  // The CTAs per SM of stage 9's kernel: those of the row class of its slices (the occupancy
  // calculator's on the GPU, else the host's estimate of a stage-8 tile of that many rows).
  out.ctas_per_sm = plan_steps::row_class_ctas_per_sm(shape, options, plan_steps::row_class(kClusterSliceRows));
  out.gpcs = gpc_sms(options.sms);
  for (int c : kClusterSizes) out.slots.push_back(cluster_slots(out.gpcs, out.ctas_per_sm, c));
  // [pack groups]
  std::map<std::tuple<int32_t, int32_t, std::vector<int32_t>>, int32_t> index;  // (begin, length, blocks) -> group
  out.group_of_pack.resize(plan.packs.size());
  for (size_t p = 0; p < plan.packs.size(); ++p) {
    const Pack& pk = plan.packs[p];
    const auto key = std::make_tuple(pk.token_begin, pk.kv_len, pk.blocks);
    auto [it, added] = index.emplace(key, static_cast<int32_t>(out.groups.size()));
    if (added) {
      PackGroup g;
      g.token_begin = pk.token_begin;
      g.kv_len = pk.kv_len;
      g.first_block = pk.blocks.empty() ? 0 : pk.blocks.front();
      out.groups.push_back(g);
    }
    PackGroup& g = out.groups[static_cast<size_t>(it->second)];
    g.packs.push_back(static_cast<int32_t>(p));
    g.rows += pk.rows(shape.group());
    g.hopper = g.hopper || is_hopper_tile(pk.tile);
    out.group_of_pack[p] = it->second;
  }
  // [pack groups]
  for (PackGroup& g : out.groups) {
    const int64_t n = static_cast<int64_t>(g.packs.size());
    const int64_t range = int64_t{g.kv_len} * shape.kv_bytes_per_token();
    g.cluster = g.hopper ? choose_cluster_size(n, range, out.slots, options.max_cluster) : 1;
    const size_t at = static_cast<size_t>(std::find(std::begin(kClusterSizes), std::end(kClusterSizes), g.cluster) -
                                          std::begin(kClusterSizes));
    g.cost = cluster_cost(n, range, g.cluster, out.slots[0], out.slots[at]);
    g.bytes_alone = n * range;
    out.kv_bytes_alone += g.bytes_alone;
    out.kv_bytes_clustered += g.cost.read_bytes;
    out.launch_cluster = std::max(out.launch_cluster, g.cluster);
  }
  return out;
}

int64_t WorkList::entry_cost(size_t e) const {
  const size_t end = static_cast<size_t>(e + 1 < entry_begin.size() ? entry_begin[e + 1] : solo_begin);
  int64_t cost = 0;
  for (size_t i = static_cast<size_t>(entry_begin[e]); i < end; ++i) cost = std::max(cost, items[i].cost);
  return cost;
}

WorkList make_work_list(const Plan& plan, const ClusterPlan& clusters, const Shape& shape) {
  require(clusters.group_of_pack.size() == plan.packs.size() && !clusters.slots.empty(),
          "make_work_list: the cluster plan is not of this plan");
  WorkList list;
  list.launch_cluster = clusters.launch_cluster;
  const size_t at = static_cast<size_t>(std::find(std::begin(kClusterSizes), std::end(kClusterSizes),
                                                  clusters.launch_cluster) - std::begin(kClusterSizes));
  require(at < clusters.slots.size(), "make_work_list: the launch cluster size is not one of kClusterSizes");
  list.seats = clusters.slots[at] / clusters.launch_cluster;
  for (int32_t g = 0; g < static_cast<int32_t>(clusters.groups.size()); ++g) {
    const PackGroup& pg = clusters.groups[static_cast<size_t>(g)];
    const int32_t n = static_cast<int32_t>(pg.packs.size());
    for (int32_t h = 0; h < shape.num_kv_heads; ++h)
      for (int32_t first = 0; first < n; first += pg.cluster)
        list.items.push_back({g, first, std::min(pg.cluster, n - first), h, pg.cluster, pg.kv_len});
  }
  // [work order]
  // Two parts: multicast items (cluster > 1, pulled per cluster), then solo items (pulled per
  // CTA). In each, items that start at the same physical block at the same KV head re-read the
  // same bytes: one run, longest first inside; runs longest first by their costliest item (ties:
  // block, head).
  using RunKey = std::tuple<bool, int32_t, int32_t>;  // (solo, first block, head)
  auto key_of = [&](const WorkItem& w) {
    return RunKey{w.cluster == 1, clusters.groups[static_cast<size_t>(w.group)].first_block, w.kv_head};
  };
  std::map<RunKey, int64_t> run_cost;  // the run's costliest item
  for (const WorkItem& w : list.items) {
    int64_t& c = run_cost[key_of(w)];
    c = std::max(c, w.cost);
  }
  std::stable_sort(list.items.begin(), list.items.end(), [&](const WorkItem& a, const WorkItem& b) {
    const RunKey ka = key_of(a), kb = key_of(b);
    if (std::get<0>(ka) != std::get<0>(kb)) return std::get<0>(kb);  // multicast first
    const int64_t ra = run_cost.at(ka), rb = run_cost.at(kb);
    if (ra != rb) return ra > rb;
    if (ka != kb) return ka < kb;
    return a.cost > b.cost;
  });
  list.solo_begin = static_cast<int32_t>(
      std::find_if(list.items.begin(), list.items.end(), [](const WorkItem& w) { return w.cluster == 1; }) -
      list.items.begin());
  // Entries: consecutive multicast items filling one hardware cluster of launch_cluster CTAs.
  int used = list.launch_cluster;
  for (size_t i = 0; i < static_cast<size_t>(list.solo_begin); ++i) {
    if (used + list.items[i].cluster > list.launch_cluster) {
      list.entry_begin.push_back(static_cast<int32_t>(i));
      used = 0;
    }
    used += list.items[i].cluster;
  }
  // [work order]
  // [merge counters]
  list.merge_count.assign(plan.partials.size(), 0);
  for (size_t r = 0; r < plan.partials.size(); ++r)
    if (plan.partials[r] > 1) list.merge_count[r] = plan.partials[r];  // per KV head
  // [merge counters]
  return list;
}

std::vector<PulledItem> pull_timeline(const WorkList& list) {
  require(list.seats >= 1, "pull_schedule: the work list has no seats (resident clusters)");
  std::vector<PulledItem> out;
  out.reserve(list.items.size());
  using Slot = std::pair<int64_t, int32_t>;  // (free at, cluster or CTA)
  std::priority_queue<Slot, std::vector<Slot>, std::greater<>> clusters;
  for (int32_t c = 0; c < list.seats; ++c) clusters.push({0, c});
  for (size_t e = 0; e < list.entries(); ++e) {
    const auto [start, c] = clusters.top();
    clusters.pop();
    clusters.push({start + list.entry_cost(e), c});
    const size_t end = static_cast<size_t>(e + 1 < list.entries() ? list.entry_begin[e + 1] : list.solo_begin);
    int32_t rank = 0;  // the entry's items take consecutive ranks of the cluster
    for (size_t i = static_cast<size_t>(list.entry_begin[e]); i < end; ++i) {
      const WorkItem& w = list.items[i];
      out.push_back({static_cast<int32_t>(i), c * list.launch_cluster + rank, w.cluster, start, start + w.cost});
      rank += w.cluster;
    }
  }
  // Each cluster's CTAs go on to the solo items when the cluster finds no entry left.
  std::priority_queue<Slot, std::vector<Slot>, std::greater<>> ctas;
  for (; !clusters.empty(); clusters.pop())
    for (int32_t r = 0; r < list.launch_cluster; ++r)
      ctas.push({clusters.top().first, clusters.top().second * list.launch_cluster + r});
  for (size_t i = static_cast<size_t>(list.solo_begin); i < list.items.size(); ++i) {
    const auto [start, cta] = ctas.top();
    ctas.pop();
    const int64_t cost = list.items[i].cost;
    ctas.push({start + cost, cta});
    out.push_back({static_cast<int32_t>(i), cta, 1, start, start + cost});
  }
  return out;
}

PullSchedule pull_schedule(const WorkList& list) {
  PullSchedule s;
  for (const PulledItem& p : pull_timeline(list)) s.makespan = std::max(s.makespan, p.end);
  for (size_t e = 0; e < list.entries(); ++e) {
    const int64_t cost = list.entry_cost(e);
    s.total += cost * list.launch_cluster;
    s.longest = std::max(s.longest, cost);
  }
  for (size_t i = static_cast<size_t>(list.solo_begin); i < list.items.size(); ++i) {
    s.total += list.items[i].cost;
    s.longest = std::max(s.longest, list.items[i].cost);
  }
  s.waves = ceil_div(static_cast<int64_t>(list.entries()), list.seats);
  s.solo_waves = ceil_div(static_cast<int64_t>(list.solo_items()), list.slots());
  return s;
}

}  // namespace patlab
