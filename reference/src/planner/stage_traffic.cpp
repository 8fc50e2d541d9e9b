// The bytes of every GPU stage on the host, from the traffic model (the CPU mode of
// `patlab bench`; tutorial chapter 02, "What each strategy reads: the traffic model").
#include "patlab/planner/stage_traffic.hpp"

#include <string>

#include "patlab/error.hpp"
#include "patlab/model/traffic.hpp"
#include "patlab/packinfer/group_kernel.hpp"
#include "patlab/packinfer/groups.hpp"
#include "patlab/planner/chunk_split.hpp"
#include "patlab/planner/cluster.hpp"
#include "patlab/planner/tile_budget.hpp"
#include "patlab/stages.hpp"

namespace patlab {

namespace {

/// The packed stage's fixed tile (cuda/stages/04_packed.cu).
constexpr TileShape kPackedTile{64, 64};

std::string ctas(int64_t n) { return std::to_string(n) + " CTAs"; }

StageTraffic chunked_traffic(const PagedLayout& L, const StageTrafficOptions& o) {
  const int64_t slots = int64_t{o.sms} * o.resident_ctas_per_sm;
  const int64_t chunk = chunk_tokens(L.lengths, L.shape.num_kv_heads, L.shape.page_size, slots);
  const int64_t chunks = chunk_count(L.lengths, chunk);
  const bool split = chunks > L.num_requests();
  StageTraffic t;
  t.bytes = traffic::chunked_bytes(L, split ? chunks : 0);
  t.notes = ctas(chunks * L.shape.num_kv_heads) + ", " +
            (split ? "chunks of " + std::to_string(chunk) + " tokens + merge" : std::string("no split")) + " (" +
            std::to_string(o.resident_ctas_per_sm) + " CTAs/SM assumed)";
  return t;
}

StageTraffic plan_traffic(const PagedLayout& L, const StagePlanConfig& c) {
  const Plan plan = make_plan(L, c.planner);
  StageTraffic t;
  t.bytes = traffic::plan_bytes(L, plan, c.direct_output, c.partial_o_bytes);
  t.notes = ctas(static_cast<int64_t>(plan.packs.size()) * L.shape.num_kv_heads) + ", " +
            std::to_string(plan.total_partials()) + " partials";
  return t;
}

/// Stage 10 (cuda/stages/10_packinfer.cu): PackInfer's groups of the group kernel's instance that
/// choose_group_instance() picks, on the SMs x its estimated CTAs per SM (the GPU stage forms them
/// with the same options).
StageTraffic group_traffic(const PagedLayout& L, const StageTrafficOptions& o) {
  packinfer::GroupOptions go;
  go.sms = o.sms;
  const packinfer::GroupPlan plan = packinfer::choose_group_instance(L, go, o.group_rows).plan;
  int64_t items = 0;
  for (const packinfer::Group& g : plan.groups) items += static_cast<int64_t>(g.items.size());
  StageTraffic t;
  t.bytes = packinfer::group_plan_bytes(L, plan);
  t.notes = std::to_string(plan.slots) + " groups of up to " + std::to_string(plan.max_rows) + " rows, " +
            std::to_string(items) + " work items";
  return t;
}

/// Stage 9 (cuda/stages/09_cluster.cu): stage 8's planner with every row class on the slots of
/// the 128-row CTA that runs every slice (the host's estimate unless the GPU's are given), and
/// each pack group's KV range read once per cluster (planner/cluster.hpp).
StageTraffic cluster_traffic(const PagedLayout& L, const StageTrafficOptions& o) {
  StagePlanConfig c;
  plan_stage_config("hopper", L.shape, o, c);
  // Stage 9 plans without stage 8's routing and rows (cuda/stages/09_cluster.cu): every pack on its
  // 128-row kernel, whatever the shape (it refuses those stage 8 runs on stage 7's tile table).
  c.planner.tiles = TilePolicy::hopper;
  c.planner.hopper = kClusterRouting;
  c.planner.take_leaves = false;  // stages 7 and 8's
  for (int& ctas : c.planner.ctas_per_sm)
    if (ctas == 0) ctas = estimate_cluster_ctas_per_sm(L.shape.head_dim);
  const Plan plan = make_plan(L, c.planner);
  const ClusterPlan clusters = choose_clusters(plan, L.shape, c.planner);
  int64_t multicast = 0;
  for (const PackGroup& g : clusters.groups) multicast += g.cluster > 1;
  StageTraffic t;
  t.bytes = traffic::plan_bytes(L, plan, c.direct_output, c.partial_o_bytes) -
            (clusters.kv_bytes_alone - clusters.kv_bytes_clustered);
  const std::string clustered = clusters.launch_cluster > 1
                                    ? " in clusters of up to " + std::to_string(clusters.launch_cluster) + ", " +
                                          std::to_string(multicast) + " of " + std::to_string(clusters.groups.size()) +
                                          " pack groups multicast, "
                                    : " alone, no multicast (--max-cluster " + std::to_string(c.planner.max_cluster) + "), ";
  t.notes = ctas(static_cast<int64_t>(plan.packs.size()) * L.shape.num_kv_heads) + clustered +
            std::to_string(plan.total_partials()) + " partials";
  return t;
}

}  // namespace

bool plan_stage_config(const std::string& slug, const Shape& shape, const StageTrafficOptions& options,
                       StagePlanConfig& config) {
  config = StagePlanConfig{};
  PlannerOptions& p = config.planner;
  p.sms = options.sms;
  p.max_kv_tile = options.max_kv_tile;
  p.ctas_per_sm = options.pack_ctas_per_sm;
  p.fill_window_waves = options.fill_window_waves;
  p.max_cluster = options.max_cluster;
  config.partial_o_bytes = traffic::partial_out_elem_bytes(options.half_partials);
  if (slug == "packed") {
    p.tiles = TilePolicy::fixed;
    p.fixed_tile = kPackedTile;
    p.split_kv = false;
  } else if (slug == "multitile" || slug == "multistream") {
    p.tiles = TilePolicy::table;
    p.split_kv = false;
  } else if (slug == "pat") {
    p.tiles = TilePolicy::table;
    p.split_kv = true;
    p.take_leaves = options.take_leaves;
    p.leaf_tail_rows = options.leaf_tail_rows;
    p.leaf_tail_min_cut = options.leaf_tail_min_cut;
    config.direct_output = true;
  } else if (slug == "hopper") {
    p.tiles = hopper_pack_plan(shape) ? TilePolicy::table : TilePolicy::hopper;
    p.hopper = options.hopper;
    p.split_kv = true;
    p.take_leaves = options.take_leaves;
    p.leaf_tail_rows = options.leaf_tail_rows;
    p.leaf_tail_min_cut = options.leaf_tail_min_cut;
    config.direct_output = true;
  } else {
    return false;
  }
  return true;
}

StageTraffic stage_traffic(const std::string& slug, const PagedLayout& L, const StageTrafficOptions& o) {
  const StageInfo* info = find_stage(slug);
  require(info && info->needs_gpu, "stage_traffic: '" + slug + "' is not a GPU stage of the registry");
  StagePlanConfig config;
  if (plan_stage_config(info->slug, L.shape, o, config)) return plan_traffic(L, config);
  const std::string s = info->slug;
  if (s == "naive") return {traffic::per_query_head_bytes(L), ctas(int64_t{L.num_requests()} * L.shape.num_q_heads)};
  if (s == "gqa") return {traffic::per_request_bytes(L), ctas(int64_t{L.num_requests()} * L.shape.num_kv_heads)};
  if (s == "splitkv") return chunked_traffic(L, o);
  if (s == "packinfer") return group_traffic(L, o);
  if (s == "cluster") return cluster_traffic(L, o);
  throw Error(ErrorKind::usage, "stage_traffic: stage '" + s + "' has no byte model (reference/src/planner/stage_traffic.cpp)");
}

}  // namespace patlab
