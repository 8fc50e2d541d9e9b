// make_plan(): the checks, then the planner's steps in order (radix_tree.cpp, inherit_split.cpp,
// kv_split.cpp, tiles_slots.cpp), and the traffic model of the strategies (tutorial chapter 02,
// tutorial/02-pack-step.md, sections 7-8).
#include "patlab/planner/planner.hpp"

#include <algorithm>
#include <string>

#include "patlab/error.hpp"
#include "patlab/model/traffic.hpp"
#include "patlab/planner/planner_steps.hpp"
#include "planner_detail.hpp"

namespace patlab {

using planner_detail::ceil_div;

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
  check_hopper_routing(o.hopper);
  require(o.leaf_tail_rows >= 1 && o.leaf_tail_rows <= kHopperMaxRows,
          "planner: leaf_tail_rows must be in [1, " + std::to_string(kHopperMaxRows) + "] (got " +
              std::to_string(o.leaf_tail_rows) + ")");
  require(o.leaf_tail_min_cut >= 0 && o.leaf_tail_min_cut <= 1,
          "planner: leaf_tail_min_cut must be in [0, 1] (got " + std::to_string(o.leaf_tail_min_cut) + ")");
  if (o.tiles == TilePolicy::fixed)
    require(one_of(o.fixed_tile.m, kTileRowOptions) && one_of(o.fixed_tile.n, kTileKvOptions),
            "planner: fixed tile " + o.fixed_tile.name() + " is not a built tile (m in 16/32/64, n in 16/32/64/128)");
}

std::string strategy_name(const PlannerOptions& options) {
  std::string tiles = "tile table";
  if (options.tiles == TilePolicy::fixed) tiles = "fixed " + options.fixed_tile.name() + " tile";
  if (options.tiles == TilePolicy::hopper)
    tiles = "Hopper tiles up to " + std::to_string(options.hopper.max_rows) + " rows";
  return "radix tree, byte-cost inherit/split, " + tiles +
         (options.split_kv ? ", KV split for " + std::to_string(options.sms) + " SMs" : ", no KV split");
}

}  // namespace plan_steps

void check_sm_slots(int sms, int ctas_per_sm) {
  require(sms >= 1 && sms <= kMaxSms,
          "--sms must be an SM count in [1, " + std::to_string(kMaxSms) + "] (got " + std::to_string(sms) + ")");
  require(ctas_per_sm >= 0 && ctas_per_sm <= kMaxCtasPerSm, "--ctas-per-sm must be in [1, " +
                                                                std::to_string(kMaxCtasPerSm) +
                                                                "], or 0 for the estimate (got " +
                                                                std::to_string(ctas_per_sm) + ")");
}

Plan make_plan(const PagedLayout& layout, const PlannerOptions& options) { return make_plan(layout, options, nullptr); }

Plan make_plan(const PagedLayout& layout, const PlannerOptions& options, PlanInfo* info) {
  using namespace plan_steps;
  check_options(options);
  check_layout(layout);
  const Shape& shape = layout.shape;
  const int page = shape.page_size;
  const CostModel model = CostModel::of(shape, options);
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

  // 3. KV split: cut pieces until the CTAs fill the GPU (stage 7): the fair-share halving, then
  //    the wave fill, which keeps the cheaper cuts by its wave model.
  Plan plan;
  if (options.split_kv) {
    out.target_ctas = static_cast<int32_t>(std::min<int64_t>(split_target_ctas(options), INT32_MAX));
    const std::vector<Piece> pieces = cut_packs(packs, shape, options, layout.num_requests(), out.kv_cuts, &out.fill);
    plan.packs.resize(pieces.size());
    for (size_t i = 0; i < pieces.size(); ++i)
      piece_to_pack(packs[static_cast<size_t>(pieces[i].pack)], pieces[i], page, plan.packs[i]);
  } else {
    plan.packs = std::move(packs);
  }

  // 4. Tiles, and 5. slots: each query numbers its packs in plan order, which is token order.
  const auto tile_and_slot = [&](Plan& p) {
    for (Pack& pack : p.packs) pack.tile = tile_for(pack, options, shape);
    assign_slots(p, layout.num_requests());
  };
  tile_and_slot(plan);

  // 3c. Leaf tails: a query's short last pack read by the pack before it, under a row mask, on a
  //     copy of the plan tiled and slotted as above. The plan keeps them only if they remove at
  //     least leaf_tail_min_cut of its packs (its CTAs), add no tile bucket (each bucket is a
  //     launch of its own) and leave no query with two partials (so the merge goes); a min_cut of
  //     0 keeps any.
  if (options.take_leaves) {
    Plan tailed;
    tailed.packs = plan.packs;
    const int32_t tails = take_leaves(tailed.packs, layout, options);
    if (tails > 0) tile_and_slot(tailed);
    const double cut = 1.0 - static_cast<double>(tailed.packs.size()) / static_cast<double>(plan.packs.size());
    const auto buckets = [&](const Plan& p) {
      return static_cast<int32_t>(bucket_launch_order(p, shape, BucketOrder::longest_pack, options.tiles).size());
    };
    const auto to_merge = [](const Plan& p) {
      return static_cast<int32_t>(std::count_if(p.partials.begin(), p.partials.end(), [](int32_t k) { return k > 1; }));
    };
    const bool gated = options.leaf_tail_min_cut > 0;
    const int32_t added = tails > 0 && gated ? buckets(tailed) - buckets(plan) : 0;
    const int32_t merged_left = tails > 0 && gated ? to_merge(tailed) : 0;
    if (tails > 0) out.leaf_tail_cut = cut;
    if (tails > 0 && (!gated || (cut >= options.leaf_tail_min_cut && added <= 0 && merged_left == 0))) {
      plan = std::move(tailed);
      out.leaf_tails = tails;
    } else {
      out.leaf_tails_declined = tails;
      out.leaf_tail_buckets_added = std::max(added, 0);
      out.leaf_tail_merged_left = merged_left;
    }
  }

  plan.strategy = strategy_name(options);
  return plan;
}

Traffic traffic_model(const PagedLayout& L, const Plan& plan) {
  Traffic t{};
  t.per_query_head = traffic::per_query_head_bytes(L);
  t.per_request = traffic::per_request_bytes(L);
  t.packed = traffic::plan_bytes(L, plan, /*direct_output=*/true);
  t.unique = traffic::unique_bytes(L);
  return t;
}

}  // namespace patlab
