// patlab plan: the pack step on a workload. Packs per tile bucket, the inherit-or-split
// decisions, the KV split, the validator's verdict, the planning time, and the HBM bytes each
// strategy reads against the unique-bytes floor. Needs no K/V data and no GPU.
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <iostream>
#include <iterator>
#include <map>
#include <memory>
#include <tuple>

#include "commands.hpp"
#include "options.hpp"
#include "patlab/error.hpp"
#include "patlab/model/traffic.hpp"
#include "patlab/planner/cluster.hpp"
#include "patlab/planner/planner.hpp"
#include "patlab/planner/planner_steps.hpp"
#include "patlab/planner/tile_budget.hpp"
#include "patlab/planner/waves.hpp"

namespace patlab::cli {

namespace {

/// Plans timed; the median is reported.
constexpr int kPlanTimingRuns = 5;
/// Inherit-or-split decisions listed (in walk order); the table says how many there were.
constexpr size_t kShownDecisions = 12;
/// Pack groups listed by --cluster without --packs (those of the most KV bytes); the summary counts them all.
constexpr size_t kShownGroups = 12;

struct PlanOptions {
  WorkloadOptions workload;
  std::string format = "table";
  int sms = kDefaultSms;
  int ctas_per_sm = 0;  ///< resident CTAs per SM of every tile (0: the host's estimate per tile)
  int max_kv_tile = kDefaultMaxKvTile;
  bool no_split = false;
  bool no_fill = false;  ///< the fair-share cuts alone (step 3a), without the wave fill
  int fill_window = kDefaultFillWindowWaves;  ///< waves of uncut CTAs within which the fill prices cuts
  int max_cluster = PlannerOptions{}.max_cluster;  ///< --cluster: the largest cluster size
  HopperRoutingFlags routing;  ///< with --hopper-tiles: --hopper-min-kv ... --hopper-min-piece (stage 8's routing)
  bool hopper = false;   ///< stage 8's tiles (TilePolicy::hopper) instead of the tile table
  bool list_packs = false;
  bool cluster = false;       ///< --cluster: stage 9's cluster sizes and work list (needs --hopper-tiles)
  bool pulls = false;         ///< --pulls: the work list's simulated pulls, item by item (needs --cluster)
  bool incremental = false;   ///< --incremental given: time decode steps, from scratch against incremental
  int incremental_steps = 0;
  LeafTailFlags leaves;       ///< --take-leaves, --tail-rows, --tail-min-cut: step 3c, leaf tails
};

std::string span(int64_t lo, int64_t hi) { return lo == hi ? std::to_string(lo) : std::to_string(lo) + "-" + std::to_string(hi); }

Cell ratio(int64_t bytes, int64_t floor) { return Cell::num(static_cast<double>(bytes) / static_cast<double>(floor), 2); }

/// The tile buckets of `plan`, with the host's estimate of each one's CTAs per SM and its place in
/// the launch order (bucket_launch_order(), footprint): stage 7's, or stage 8's with `hopper`.
Table buckets_table(const Plan& plan, const Shape& shape, bool hopper) {
  struct Bucket {
    int64_t packs = 0, queries = 0, tokens = 0;
    int64_t min_rows = INT64_MAX, max_rows = 0, min_kv = INT64_MAX, max_kv = 0;
  };
  std::map<std::tuple<int, int, TileKernel>, Bucket> buckets;  // by tile: m, n, kernel
  for (const Pack& p : plan.packs) {
    Bucket& b = buckets[{p.tile.m, p.tile.n, p.tile.kernel}];
    const int64_t rows = p.rows(shape.group());
    ++b.packs;
    b.queries += static_cast<int64_t>(p.queries.size());
    const int64_t tokens = p.space_len(shape.page_size);  // the range and its leaf tails
    b.tokens += tokens;
    b.min_rows = std::min(b.min_rows, rows);
    b.max_rows = std::max(b.max_rows, rows);
    b.min_kv = std::min(b.min_kv, tokens);
    b.max_kv = std::max(b.max_kv, tokens);
  }
  const std::vector<PlanBucket> launch =
      plan_buckets(plan, shape, BucketOrder::chain, hopper ? TilePolicy::hopper : TilePolicy::table, false);
  Table t;
  t.title = "tile buckets";
  t.columns = {"tile (m x n)", "packs", "CTAs", "queries", "rows", "KV tokens per pack", "KV tokens", "CTAs/SM (est.)",
               hopper ? "stage 8 launches" : "stage 7 launches"};
  for (const auto& kv : buckets) {
    const Bucket& b = kv.second;
    const TileShape tile{std::get<0>(kv.first), std::get<1>(kv.first), std::get<2>(kv.first)};
    const auto at_tile = [&](const PlanBucket& l) { return l.tile == tile; };
    const auto place = std::find_if(launch.begin(), launch.end(), at_tile) - launch.begin();
    t.add({tile.name(), Cell::integer(b.packs), Cell::integer(b.packs * shape.num_kv_heads), Cell::integer(b.queries),
           span(b.min_rows, b.max_rows), span(b.min_kv, b.max_kv), Cell::integer(b.tokens),
           Cell::integer(launch[static_cast<size_t>(place)].ctas_per_sm), Cell::integer(place + 1)});
  }
  return t;
}

Table decisions_table(const PlanInfo& info) {
  Table t;
  const size_t shown = std::min(kShownDecisions, info.decisions.size());
  t.title = "inherit or split";
  t.columns = {"pending tokens", "queries", "ended here", "children", "inherit", "PAT inherits", "model bytes",
               "PAT's choice", "all split", "all inherit"};
  for (size_t i = 0; i < shown; ++i) {
    const Decision& d = info.decisions[i];
    t.add({"[" + std::to_string(d.token_begin) + ", " + std::to_string(d.token_end) + ")", Cell::integer(d.queries),
           Cell::integer(d.ended), Cell::integer(d.children), Cell::integer(d.inherited), Cell::integer(d.pat_inherited),
           Cell::bytes(static_cast<double>(d.bytes)), Cell::bytes(static_cast<double>(d.bytes_pat)),
           Cell::bytes(static_cast<double>(d.bytes_all_split)),
           Cell::bytes(static_cast<double>(d.bytes_all_inherit))});
  }
  return t;
}

std::string list(const std::vector<int32_t>& v) {
  std::string s;
  for (size_t i = 0; i < v.size(); ++i) s += (i ? " " : "") + std::to_string(v[i]);
  return s;
}

/// A pack's leaf tails as "query:tokens" per tail (the query's request), or "-".
std::string tails_text(const Pack& p) {
  std::string s;
  for (const PackTail& tail : p.tails)
    s += (s.empty() ? "" : " ") + std::to_string(p.queries[static_cast<size_t>(tail.entry)]) + ":" +
         std::to_string(tail.kv_len);
  return s.empty() ? "-" : s;
}

/// The plan table's "leaf tails" line: how many leaves became tails, or why none did.
std::string leaf_tails_note(const LeafTailFlags& leaves, const PlanInfo& info) {
  if (!leaves.take) return "off (--take-leaves takes them)";
  if (info.leaf_tails_declined > 0) {
    std::string why;
    if (info.leaf_tail_cut < leaves.min_cut)
      why = "remove " + Cell::num(100 * info.leaf_tail_cut, 0).text + "% of the CTAs, fewer than " +
            Cell::num(100 * leaves.min_cut, 0).text + "% (--tail-min-cut)";
    if (info.leaf_tail_buckets_added > 0)
      why += (why.empty() ? "" : ", and ") + std::string("add ") + std::to_string(info.leaf_tail_buckets_added) +
             " tile bucket(s), so as many launches";
    if (info.leaf_tail_merged_left > 0)
      why += (why.empty() ? "" : ", and ") + std::string("leave ") + std::to_string(info.leaf_tail_merged_left) +
             " queries to merge";
    return "none: the " + std::to_string(info.leaf_tails_declined) + " leaves the rules allow would " + why;
  }
  return std::to_string(info.leaf_tails) + " leaves read by the pack before them, under a row mask (packs of up to " +
         std::to_string(leaves.rows) + " rows)";
}

/// Every pack: tile, token range, blocks, queries and slots, and with `tails` (a plan made with
/// --take-leaves) each pack's leaf tails.
Table packs_table(const Plan& plan, bool tails) {
  Table t;
  t.title = "packs";
  t.columns = {"pack", "tile", "tokens", "blocks", "queries", "slots"};
  if (tails) t.columns.push_back("leaf tails (query:tokens)");
  for (size_t i = 0; i < plan.packs.size(); ++i) {
    const Pack& p = plan.packs[i];
    std::vector<Cell> row{Cell::integer(static_cast<int64_t>(i)), p.tile.name(),
                          "[" + std::to_string(p.token_begin) + ", " + std::to_string(p.token_begin + p.kv_len) + ")",
                          Cell::integer(static_cast<int64_t>(p.blocks.size())), list(p.queries), list(p.slots)};
    if (tails) row.push_back(tails_text(p));
    t.add(row);
  }
  return t;
}

/// How the plan's CTAs fill `o.sms` SMs holding `o.ctas_per_sm` CTAs each (planner/waves.hpp).
Table waves_table(const Plan& plan, const Shape& shape, const PlanOptions& o, int64_t slots) {
  const WaveReport w = wave_report(plan, shape, o.sms, static_cast<int>(std::max<int64_t>(1, slots / o.sms)));
  Table t = key_values("waves", {
      {"CTA slots (SMs x CTAs per SM)", Cell::integer(w.slots)},
      {"CTAs", Cell::integer(w.ctas)},
      {"waves (CTAs / slots, rounded up)", Cell::integer(w.waves)},
      {"last wave full, %", Cell::num(100.0 * w.last_wave_fill, 1)},
      {"longest-first schedule, busiest slot (KV tokens)", Cell::integer(w.makespan_tokens)},
      {"balanced bound (all KV tokens / slots)", Cell::integer(w.balanced_tokens)},
      {"balance (bound / schedule)", Cell::num(w.balance(), 3)},
      {"model", "a CTA's time ~ its KV tokens; no fixed cost per CTA, no merge"},
  });
  return t;
}

Table traffic_table(const Traffic& tr) {
  Table t;
  t.title = "HBM traffic model";
  t.columns = {"strategy", "bytes", "x unique"};
  t.add({"one query (request, q head) per CTA", Cell::bytes(static_cast<double>(tr.per_query_head)), ratio(tr.per_query_head, tr.unique)});
  t.add({"one request and KV head per CTA", Cell::bytes(static_cast<double>(tr.per_request)), ratio(tr.per_request, tr.unique)});
  t.add({"packed plan", Cell::bytes(static_cast<double>(tr.packed)), ratio(tr.packed, tr.unique)});
  t.add({"unique bytes (floor)", Cell::bytes(static_cast<double>(tr.unique)), ratio(tr.unique, tr.unique)});
  return t;
}

/// Stage 9's pack groups (planner/cluster.hpp): all with --packs, else the kShownGroups of the most bytes.
Table cluster_groups_table(const ClusterPlan& c, bool all) {
  std::vector<size_t> order(c.groups.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  if (!all) {
    std::stable_sort(order.begin(), order.end(),
                     [&](size_t a, size_t b) { return c.groups[a].bytes_alone > c.groups[b].bytes_alone; });
    order.resize(std::min(order.size(), kShownGroups));
  }
  Table t;
  t.title = "clusters";
  t.columns = {"tokens", "packs", "rows", "kernel", "cluster", "reads per KV head", "clustered reads", "KV bytes",
               "clustered KV bytes", "idle CTAs (bytes)", "quantisation (bytes)"};
  for (size_t i : order) {
    const PackGroup& g = c.groups[i];
    const int64_t n = static_cast<int64_t>(g.packs.size());
    t.add({"[" + std::to_string(g.token_begin) + ", " + std::to_string(g.token_begin + g.kv_len) + ")",
           Cell::integer(n), Cell::integer(g.rows), g.hopper ? "stage 8" : "pack kernel", Cell::integer(g.cluster),
           Cell::integer(n), Cell::integer(g.cost.reads), Cell::bytes(static_cast<double>(g.bytes_alone)),
           Cell::bytes(static_cast<double>(g.cost.read_bytes)), Cell::bytes(static_cast<double>(g.cost.idle_bytes)),
           Cell::bytes(static_cast<double>(g.cost.quant_bytes))});
  }
  return t;
}

/// Stage 9's work list as its persistent grid would pull it (pull_timeline()): one row per item,
/// in list order, with the CTA slots it takes and when, in the model's time (KV tokens).
Table pulls_table(const ClusterPlan& c, const WorkList& w) {
  Table t;
  t.title = "pulls";
  t.columns = {"item", "part", "tokens", "KV head", "slices", "first CTA", "CTAs", "start", "end"};
  for (const PulledItem& p : pull_timeline(w)) {
    const WorkItem& item = w.items[static_cast<size_t>(p.item)];
    const PackGroup& g = c.groups[static_cast<size_t>(item.group)];
    t.add({Cell::integer(p.item), item.cluster > 1 ? "multicast" : "solo",
           "[" + std::to_string(g.token_begin) + ", " + std::to_string(g.token_begin + g.kv_len) + ")",
           Cell::integer(item.kv_head), Cell::integer(item.slices), Cell::integer(p.first_cta), Cell::integer(p.ctas),
           Cell::integer(p.start), Cell::integer(p.end)});
  }
  return t;
}

/// Stage 9's summary: the GPC model, bytes with and without clusters, the work list and its waves.
Table cluster_summary_table(const PagedLayout& layout, const Plan& plan, const ClusterPlan& c, const WorkList& w) {
  const PullSchedule s = pull_schedule(w);
  int64_t by_size[std::size(kClusterSizes)] = {};
  for (const PackGroup& g : c.groups)
    for (size_t i = 0; i < std::size(kClusterSizes); ++i) by_size[i] += g.cluster == kClusterSizes[i];
  std::string gpcs, sizes, slots;
  for (int n : c.gpcs) gpcs += (gpcs.empty() ? "" : " ") + std::to_string(n);
  for (size_t i = 0; i < std::size(kClusterSizes); ++i) {
    sizes += (i ? ", " : "") + std::to_string(kClusterSizes[i]) + ": " + std::to_string(by_size[i]);
    slots += (i ? ", " : "") + std::to_string(kClusterSizes[i]) + ": " + std::to_string(c.slots[i]);
  }
  int64_t merged = 0;
  for (int32_t k : w.merge_count) merged += k > 0;
  const int64_t alone = traffic::plan_bytes(layout, plan, true);
  const int64_t clustered = alone - (c.kv_bytes_alone - c.kv_bytes_clustered);
  return key_values("cluster", {
      {"GPCs (SMs each, assumed)", gpcs},
      {"CTAs per SM (128-row stage-8 tile)", Cell::integer(c.ctas_per_sm)},
      {"CTA slots by cluster size", slots},
      {"pack groups (packs reading one KV range)", Cell::integer(static_cast<int64_t>(c.groups.size()))},
      {"groups by cluster size", sizes},
      {"launch cluster size", Cell::integer(c.launch_cluster)},
      {"KV bytes into the SMs, one CTA per pack", Cell::bytes(static_cast<double>(c.kv_bytes_alone))},
      {"KV bytes into the SMs, one read per cluster", Cell::bytes(static_cast<double>(c.kv_bytes_clustered))},
      {"model bytes (HBM, L2 re-reads charged), no clusters", Cell::bytes(static_cast<double>(alone))},
      {"model bytes with clusters", Cell::bytes(static_cast<double>(clustered))},
      {"unique bytes (floor)", Cell::bytes(static_cast<double>(layout.unique_kv_bytes() + layout.q_and_out_bytes()))},
      {"work items (pack slices x KV head)", Cell::integer(static_cast<int64_t>(w.items.size()))},
      {"entries (multicast items, what one cluster pulls)", Cell::integer(static_cast<int64_t>(w.entries()))},
      {"solo items (1 CTA, what one CTA pulls)", Cell::integer(static_cast<int64_t>(w.solo_items()))},
      {"seats (resident clusters)", Cell::integer(w.seats)},
      {"predicted waves (entries / seats, rounded up)", Cell::integer(s.waves)},
      {"predicted solo waves (solo items / CTA slots, rounded up)", Cell::integer(s.solo_waves)},
      {"pull schedule, last item's end (KV tokens)", Cell::integer(s.makespan)},
      {"list bound (CTA time / CTA slots + longest)", Cell::integer(s.bound(w.slots()))},
      {"queries merged in the kernel (counter > 0)", Cell::integer(merged)},
      {"model", "cost(c) = ceil(n/c) B + idle CTAs B + n B (S_1 - S_c) / S_c; no partial added (row slices)"},
  });
}

int run_plan(const PlanOptions& o) {
  const Format format = parse_format(o.format);
  check_sm_slots(o.sms, o.ctas_per_sm);
  check_fill_window(o.fill_window);
  check_max_cluster(o.max_cluster, "--max-cluster");
  o.routing.check();
  const std::string routing_options = "--hopper-min-kv, --hopper-wide-kv, --hopper-rows and --hopper-min-piece";
  require(!o.routing.given() || o.hopper, routing_options + " route stage 8's packs: add --hopper-tiles");
  require(!o.routing.given() || !o.cluster, routing_options + " are stage 8's; --cluster plans stage 9");
  const WorkloadChoice choice = o.workload.resolve();
  const PagedLayout layout = build_layout(choice.tree, choice.shape, choice.shuffle, choice.seed);
  PlannerOptions options;
  options.sms = o.sms;
  options.split_kv = !o.no_split;
  options.fill_waves = !o.no_fill;
  options.fill_window_waves = o.fill_window;
  options.max_cluster = o.max_cluster;
  const bool routed = o.hopper && !o.cluster;  // stage 8's routing; stage 9 runs every pack on its own kernel
  if (routed) options.hopper = o.routing.routing;
  options.max_kv_tile = o.max_kv_tile;
  // Stage 8 runs an fp8 cache and d = 256 on stage 7's tile table; stage 9 refuses them.
  const bool pack_plan = routed && hopper_pack_plan(choice.shape);
  if (o.hopper) options.tiles = pack_plan ? TilePolicy::table : TilePolicy::hopper;
  if (o.ctas_per_sm > 0)
    options.ctas_per_sm.fill(o.ctas_per_sm);
  else if (o.cluster)  // stage 9 plans every row class for its one CTA kind (ClusterStage::planner_options)
    options.ctas_per_sm.fill(estimate_cluster_ctas_per_sm(choice.shape.head_dim));
  o.leaves.apply(options);
  require(!o.leaves.take || !o.cluster, "--take-leaves is stages 7 and 8's; --cluster plans stage 9");
  require(!o.leaves.take || !o.incremental, "--take-leaves is not in the incremental planner; it does not go with --incremental");
  require(!o.cluster || o.hopper, "--cluster multicasts into stage 8's tiles: add --hopper-tiles");
  require(!o.pulls || o.cluster, "--pulls lists the work list of --cluster: add --cluster");
  if (o.incremental) {
    require(!o.list_packs, "--packs lists one plan; it does not go with --incremental");
    require(!o.cluster, "--cluster reports one plan; it does not go with --incremental");
    return run_plan_incremental(choice, options, o.incremental_steps, format);
  }

  PlanInfo info;
  Plan plan;
  std::vector<double> ms;
  for (int i = 0; i < kPlanTimingRuns; ++i) {
    const auto t0 = std::chrono::steady_clock::now();
    plan = make_plan(layout, options, &info);
    ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
  }
  std::sort(ms.begin(), ms.end());
  const double plan_ms = ms[ms.size() / 2];
  const std::vector<std::string> faults = validate_plan(layout, plan);

  int64_t merged = 0, most = 0;
  for (int32_t k : plan.partials) {
    merged += k > 1;
    most = std::max<int64_t>(most, k);
  }
  const int hkv = choice.shape.num_kv_heads;
  const int64_t packs = static_cast<int64_t>(plan.packs.size());
  std::string split = "off (--no-split)";
  if (options.split_kv)
    split = "target " + std::to_string(info.target_ctas) + " CTAs (" + std::to_string(kSplitCtasPerSm) + " per SM); cut the "
            "longest pack while longer than one CTA slot's share; pieces >= " + std::to_string(options.min_split_blocks) +
            " blocks" + (routed && options.hopper.min_piece > 0
                             ? " (of a 128/192-row pack >= " + std::to_string(options.hopper.min_piece) + " tokens)"
                             : "") +
            ", <= " + std::to_string(options.max_splits_per_query) + " added per query";
  // The wave fill (stage 7's step 3b): the slots, what it priced and what it chose.
  const WaveFill& f = info.fill;
  const int64_t slots = options.split_kv ? f.slots : plan_steps::split_slots(plan.packs, choice.shape, options);
  std::string fill = o.no_split ? "off (--no-split)" : "off (--no-fill)";
  if (options.split_kv && options.fill_waves && !f.evaluated)
    fill = "not priced: " + std::to_string(f.ctas_whole) + " CTAs are over " + std::to_string(options.fill_window_waves) +
           " waves of " + std::to_string(f.slots) + " slots; the fair-share cuts stand";
  else if (options.split_kv && options.fill_waves)
    fill = std::to_string(f.ctas_whole) + " CTAs uncut on " + std::to_string(f.slots) + " slots (" +
           std::to_string(f.slots / o.sms) + " per SM): chose " + f.choice + ", " + std::to_string(f.ctas_chosen) +
           " CTAs; model cost per slot " + std::to_string(f.cost_chosen / 1024) + " KiB (no cut " +
           std::to_string(f.cost_whole / 1024) + ", fair-share cuts " + std::to_string(f.cost_fair / 1024) + "; " +
           std::to_string(f.candidates) + " cuts priced)";
  std::vector<std::pair<std::string, Cell>> fields{
      {"workload", choice.tree.description},
      {"shape", choice.shape.describe()},
      {"kv dtype", kv_dtype_name(choice.shape.kv_dtype, choice.shape.dtype)},
      {"requests", Cell::integer(layout.num_requests())},
      {"SMs (target GPU)", Cell::integer(o.sms)},
      {"KV split", split},
      {"wave fill", fill},
      {"radix tree nodes", Cell::integer(info.tree_nodes)},
      {"inherit-or-split nodes (first " + std::to_string(kShownDecisions) + " listed)",
       Cell::integer(static_cast<int64_t>(info.decisions.size()))},
      {"queries per pack (max)", Cell::integer(info.queries_per_pack)},
      {"packs from the tree walk", Cell::integer(info.packs_before_split)},
      {"KV split cuts", Cell::integer(info.kv_cuts)},
      {"leaf tails", leaf_tails_note(o.leaves, info)},
      {"packs", Cell::integer(packs)},
      {"CTAs (packs x KV heads)", Cell::integer(packs * hkv)},
      {"partials", Cell::integer(plan.total_partials())},
      {"queries merged (> 1 partial)", Cell::integer(merged)},
      {"most partials of one query", Cell::integer(most)},
      {"validator", faults.empty() ? "PASS (every query covered once, in block order; slots 0..k-1)"
                                   : "FAIL: " + std::to_string(faults.size()) + " faults, first: " + faults.front()},
      {"planning time ms (median of " + std::to_string(kPlanTimingRuns) + ")", Cell::num(plan_ms, 3)},
      {"planning time per request us", Cell::num(1000.0 * plan_ms / layout.num_requests(), 3)},
  };
  // Stage 8's line, after the pack size: the tile table it falls back to, or the routing it planned with.
  const auto after_pack_size = [&fields] {
    const auto pack_size = [](const auto& f) { return f.first == "queries per pack (max)"; };
    return std::find_if(fields.begin(), fields.end(), pack_size) + 1;
  };
  if (pack_plan) {
    fields.insert(after_pack_size(),
                  {"stage 8 tiles", "stage 7's tile table: stage 8's wgmma tiles take a 16-bit KV cache at d = 64 "
                                    "and 128 only (fp8 and d = 256 run on stage 7's plan)"});
  } else if (routed) {
    const std::string both = std::to_string(hopper_narrow_kv(options));
    fields.insert(after_pack_size(),
                  {"stage 8 routing", "64-row packs over fewer than " + std::to_string(options.hopper.min_kv) +
                                          " tokens on the pack kernel; no pack over 64 rows over fewer than " + both +
                                          " tokens, at most " + std::to_string(options.hopper.max_rows) +
                                          " rows over more (" + options.hopper.flags() + "; token counts 0: off)"});
  }
  const Table summary = key_values("plan", fields);
  std::vector<Table> tables{summary, buckets_table(plan, choice.shape, o.hopper && !pack_plan), decisions_table(info),
                            waves_table(plan, choice.shape, o, slots), traffic_table(traffic_model(layout, plan))};
  if (o.cluster) {
    const ClusterPlan clusters = choose_clusters(plan, choice.shape, options);
    const WorkList list = make_work_list(plan, clusters, choice.shape);
    tables.push_back(cluster_summary_table(layout, plan, clusters, list));
    tables.push_back(cluster_groups_table(clusters, o.list_packs));
    if (o.pulls) tables.push_back(pulls_table(clusters, list));
  }
  if (o.list_packs) tables.push_back(packs_table(plan, o.leaves.take));
  print(std::cout, tables, format);
  for (const std::string& f : faults) std::cerr << "patlab: plan fault: " << f << "\n";
  return faults.empty() ? 0 : 1;
}

}  // namespace

void add_plan(CLI::App& app, Action& action) {
  auto o = std::make_shared<PlanOptions>();
  auto* cmd = app.add_subcommand("plan", "The pack step: packs per tile bucket, inherit-or-split, KV split, validator, "
                                         "planning time and the HBM traffic of each strategy (exit 1 if the plan is invalid)");
  o->workload.add_to(*cmd);
  add_format(*cmd, o->format);
  cmd->add_option("--sms", o->sms, "SMs of the GPU to plan for (the KV-split target follows from it)")->capture_default_str();
  cmd->add_option("--ctas-per-sm", o->ctas_per_sm,
                  "CTAs one SM holds at once, for every tile: the wave fill's slots and the waves table (0: estimated "
                  "per tile from shared memory, or with --cluster stage 9's one 128-row CTA for every tile; on the GPU: the "
                  "occupancy calculator of each tile instance)")
      ->capture_default_str();
  CLI::Option* no_split = cmd->add_flag("--no-split", o->no_split, "Plan without the KV split (stages 4-6)");
  CLI::Option* no_fill = cmd->add_flag(
      "--no-fill", o->no_fill,
      "KV split by the fair-share halving alone, without the wave fill that may replace its cuts (tutorial "
      "chapter 02 shows the halving, chapter 16 the fill)");
  add_fill_window(*cmd, o->fill_window);
  cmd->get_option("--fill-window")->excludes(no_fill)->excludes(no_split);  // a window of a fill that does not run
  add_max_cluster(*cmd, o->max_cluster);
  add_hopper_routing(*cmd, o->routing);
  cmd->add_option("--max-kv-tile", o->max_kv_tile, "Cap on the KV tile of the tile table (32, 64 or 128; PAT: 128)")
      ->capture_default_str();
  cmd->add_flag("--hopper-tiles", o->hopper,
                "Plan with stage 8's tiles: packs of up to --hopper-rows rows, 64-, 128- or 192-row tiles above 32 "
                "rows (with --cluster: stage 9's 128-row slices; tutorial chapters 17 and 18)");
  cmd->add_flag("--packs", o->list_packs, "Also list every pack: tile, token range, queries and their slots");
  cmd->add_flag("--cluster", o->cluster,
                "With --hopper-tiles: stage 9's cluster size per pack group (packs reading one KV range) by its byte "
                "and occupancy model, bytes with and without clusters, and the persistent grid's work list and waves "
                "(tutorial chapter 18; with --packs every group is listed)");
  cmd->add_flag("--pulls", o->pulls,
                "With --cluster: every work item as the persistent grid would pull it (the model's schedule: CTA slots "
                "and start/end in KV tokens; tools/figures/cluster_pulls.py draws it)");
  add_leaf_tails(*cmd, o->leaves, false);
  auto* incremental = cmd->add_option("--incremental", o->incremental_steps,
                  "Run STEPS decode steps (every request +1 token, a new block every page steps), each planned from "
                  "scratch and by the incremental planner: time per step, speedup, plans required identical")
      ->type_name("STEPS");
  cmd->callback([&action, o, incremental] {
    o->incremental = incremental->count() > 0;
    action = [o] { return run_plan(*o); };
  });
}

}  // namespace patlab::cli
