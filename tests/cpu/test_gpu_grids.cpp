// The GPU tests' grids (tests/gpu/grids.cpp) cover what harness.hpp says: every dtype, head dim
// and group with KV heads 1-4, peaked data beside flat, a sub-grid whose plans use the n = 128
// tiles, and the shapes sub-grid (groups 1-16, d=256). Host code only: it runs without a GPU.
#include <algorithm>
#include <map>
#include <set>
#include <string>
#include <tuple>
#include <vector>

#include "../catch.hpp"
#include "../gpu/harness.hpp"
#include "patlab/model/kv_cache.hpp"
#include "patlab/planner/cluster.hpp"
#include "patlab/planner/planner.hpp"
#include "patlab/planner/tile_budget.hpp"

using namespace patlab;
using patlab::test::Case;

namespace {

/// Seeds of the grids under test (any seed gives the same coverage; these are the GPU tests').
constexpr uint64_t kBoundarySeed = 20261122, kTreeSeed = 7001, kTile128Seed = 128001, kShapesSeed = 110011,
                   kStressSeed = 909001, kTallSeed = 192001, kLeafTailsSeed = 640001;

const std::set<int> kAllKvHeads(std::begin(test::kGridKvHeads), std::end(test::kGridKvHeads));

std::set<int> kv_heads_of(const std::vector<Case>& cases) {
  std::set<int> seen;
  for (const Case& c : cases) seen.insert(c.shape.num_kv_heads);
  return seen;
}

/// Every case has a valid shape, its own seed and its own name, and says its KV heads and data kind.
void require_well_formed(const std::vector<Case>& cases) {
  std::set<uint64_t> seeds;
  std::set<std::string> names;
  for (const Case& c : cases) {
    INFO(c.name);
    REQUIRE_NOTHROW(c.shape.validate());
    CHECK(seeds.insert(c.seed).second);
    CHECK(names.insert(c.name).second);
    CHECK(c.name.find("hkv" + std::to_string(c.shape.num_kv_heads)) != std::string::npos);
    CHECK(c.name.find(c.data == DataKind::peaked ? "peaked" : "flat") != std::string::npos);
  }
}

/// Every peaked case has a flat twin: the same tree and shape.
void require_peaked_beside_flat(const std::vector<Case>& cases) {
  auto key = [](const Case& c) {
    return std::make_tuple(c.tree.description, c.tree.segments.size(), c.shape.describe());
  };
  std::set<decltype(key(cases.front()))> flat;
  for (const Case& c : cases)
    if (c.data == DataKind::flat) flat.insert(key(c));
  int peaked = 0;
  for (const Case& c : cases)
    if (c.data == DataKind::peaked) {
      INFO(c.name);
      CHECK(flat.count(key(c)) == 1);
      ++peaked;
    }
  CHECK(peaked > 0);
}

/// The largest KV tile n among the packs the planner makes for `c` with `options`.
int largest_kv_tile(const Case& c, PlannerOptions options) {
  if (c.max_kv_tile > 0) options.max_kv_tile = c.max_kv_tile;
  const PagedLayout layout = build_layout(c.tree, c.shape, true, c.seed);
  const Plan plan = make_plan(layout, options);
  int n = 0;
  for (const Pack& p : plan.packs) n = std::max(n, p.tile.n);
  return n;
}

/// Stage 5/6's planner options (table tiles, no KV split) or stage 7's (with the split).
/// The planner options of stage 7 (hopper false) or stage 8 with a leaf tails case's limits.
PlannerOptions tails_options(const Case& c, bool hopper) {
  PlannerOptions o;
  o.take_leaves = true;
  o.leaf_tail_rows = c.leaf_tail_rows;
  o.leaf_tail_min_cut = c.leaf_tail_min_cut;
  if (hopper) {
    o.tiles = TilePolicy::hopper;
    o.hopper = kStage8Routing;
  }
  return o;
}

PlannerOptions table_options(bool split_kv) {
  PlannerOptions o;
  o.tiles = TilePolicy::table;
  o.split_kv = split_kv;
  o.sms = kDefaultSms;
  return o;
}

}  // namespace

TEST_CASE("the boundary grid: every dtype, head dim, group and page, KV heads 1-4 in every group, peaked beside flat") {
  const std::vector<Case> cases = test::boundary_grid(kBoundarySeed);
  require_well_formed(cases);
  require_peaked_beside_flat(cases);
  std::set<std::tuple<DType, int, int, int>> combos;
  std::map<int, std::set<int>> kv_heads_by_group;
  for (const Case& c : cases) {
    combos.insert({c.shape.dtype, c.shape.head_dim, c.shape.group(), c.shape.page_size});
    kv_heads_by_group[c.shape.group()].insert(c.shape.num_kv_heads);
    CHECK(c.max_kv_tile == 0);
  }
  CHECK(combos.size() == 2u * 2u * 5u * 3u);
  for (int g : {1, 2, 4, 8, 16}) {
    INFO("group " << g);
    CHECK(kv_heads_by_group[g] == kAllKvHeads);
  }
}

TEST_CASE("the tree grid: KV heads 1-4, groups 1-16, peaked beside flat") {
  const std::vector<Case> cases = test::tree_grid(kTreeSeed);
  require_well_formed(cases);
  require_peaked_beside_flat(cases);
  CHECK(kv_heads_of(cases) == kAllKvHeads);
  std::set<int> groups;
  for (const Case& c : cases) {
    groups.insert(c.shape.group());
    CHECK(c.max_kv_tile == 0);
  }
  CHECK(groups == std::set<int>{1, 2, 4, 8, 16});
}

TEST_CASE("the n = 128 grid: every case's plan uses n = 128 tiles for stages 5-7, which the default cap never does") {
  const std::vector<Case> cases = test::tile128_grid(kTile128Seed);
  require_well_formed(cases);
  CHECK(kv_heads_of(cases) == kAllKvHeads);
  std::set<DataKind> kinds;
  std::set<std::pair<DType, int>> dtype_dims;
  for (const Case& c : cases) {
    INFO(c.name);
    kinds.insert(c.data);
    dtype_dims.insert({c.shape.dtype, c.shape.head_dim});
    REQUIRE(c.max_kv_tile == test::kLargeKvTile);
    CHECK(largest_kv_tile(c, table_options(false)) == test::kLargeKvTile);
    CHECK(largest_kv_tile(c, table_options(true)) == test::kLargeKvTile);
    Case capped = c;
    capped.max_kv_tile = 0;
    CHECK(largest_kv_tile(capped, table_options(true)) == kDefaultMaxKvTile);
  }
  CHECK(kinds == std::set<DataKind>{DataKind::flat, DataKind::peaked});
  CHECK(dtype_dims.size() == 4u);
}

TEST_CASE("the shapes grid: d=256 at every group of issue 11, odd groups at d 64/128, non-power-of-two packs") {
  const std::vector<Case> cases = test::shapes_grid(kShapesSeed);
  require_well_formed(cases);
  require_peaked_beside_flat(cases);
  CHECK(kv_heads_of(cases) == kAllKvHeads);
  const std::set<int> all_groups(std::begin(test::kShapeGridGroups), std::end(test::kShapeGridGroups));
  CHECK(all_groups == std::set<int>{1, 3, 5, 6, 7, 8, 12, 16});
  std::map<int, std::set<int>> groups_by_dim;
  std::set<int> odd_full_rows;  // row counts of full packs that are not powers of two
  std::set<DType> dtypes_256;
  int capped_256 = 0, eight_warp_128 = 0;
  for (const Case& c : cases) {
    INFO(c.name);
    const int g = c.shape.group(), d = c.shape.head_dim;
    groups_by_dim[d].insert(g);
    if (d == test::kLargeHeadDim) dtypes_256.insert(c.shape.dtype);
    PlannerOptions o = table_options(true);
    if (c.max_kv_tile > 0) o.max_kv_tile = c.max_kv_tile;
    const PagedLayout layout = build_layout(c.tree, c.shape, true, c.seed);
    const Plan plan = make_plan(layout, o);
    REQUIRE(validate_plan(layout, plan).empty());
    for (const Pack& p : plan.packs) {
      CHECK(tile_fits(p.tile, d, c.shape.kv_element_bytes()));
      const int rows = p.rows(g);
      if (rows == (kMaxTileRows / g) * g && (rows & (rows - 1)) != 0) odd_full_rows.insert(rows);
      if (d == 128 && p.tile == TileShape{64, 128}) eight_warp_128 += pack_threads(d, 64, 128) == 8 * 32;
    }
    if (d == test::kLargeHeadDim && c.max_kv_tile == test::kLargeKvTile) {
      ++capped_256;
      // The table asks for n = 128 on the long packs; the planner lowers it to 64 at d=256.
      CHECK(largest_kv_tile(c, table_options(true)) == 64);
    }
  }
  CHECK(groups_by_dim[test::kLargeHeadDim] == all_groups);
  CHECK(dtypes_256 == std::set<DType>{DType::fp16, DType::bf16});
  for (int d : {64, 128})
    for (int g : {3, 5, 6, 7, 12}) {
      INFO("d " << d << ", group " << g);
      CHECK(groups_by_dim[d].count(g) == 1);
    }
  CHECK(odd_full_rows == std::set<int>{60, 63});
  CHECK(capped_256 >= 2);
  CHECK(eight_warp_128 > 0);
}

TEST_CASE("shapes grid: the fp8 KV cache on both q dtypes, every head dim, pages, trees and the tile cap") {
  INFO("seed " << kShapesSeed);
  const std::vector<Case> cases = test::shapes_grid(kShapesSeed);
  std::set<std::pair<int, int>> dtype_dim;  // (q dtype, head dim) of fp8 cases
  std::set<int> groups, pages;
  int trees = 0, capped = 0, peaked = 0;
  for (const Case& c : cases) {
    if (!c.shape.kv_fp8()) continue;
    CHECK(c.name.find("kv fp8") != std::string::npos);
    dtype_dim.insert({static_cast<int>(c.shape.dtype), c.shape.head_dim});
    groups.insert(c.shape.group());
    pages.insert(c.shape.page_size);
    trees += c.tree.depth() > 1;
    capped += c.max_kv_tile == test::kLargeKvTile;
    peaked += c.data == DataKind::peaked;
  }
  CHECK(dtype_dim.size() == 6);  // fp16 and bf16 x d 64, 128, 256
  CHECK(groups.size() >= 4);
  CHECK(pages == std::set<int>{16, 32, 64});
  CHECK(trees >= 6);
  CHECK(capped == 2);
  CHECK(peaked >= 6);
}

TEST_CASE("the stress grid: clusters of 2 and 4, a few huge items among many small ones, both dtypes and data kinds") {
  const std::vector<Case> cases = test::stress_grid(kStressSeed);
  require_well_formed(cases);
  require_peaked_beside_flat(cases);
  std::set<int> cluster_sizes;
  std::set<DType> dtypes;
  for (const Case& c : cases) {
    INFO(c.name);
    dtypes.insert(c.shape.dtype);
    // Stage 9's planning (cuda/stages/09_cluster.cu) with the host's occupancy estimate.
    PlannerOptions o;
    o.tiles = TilePolicy::hopper;
    o.split_kv = true;
    o.ctas_per_sm.fill(estimate_cluster_ctas_per_sm(c.shape.head_dim));
    o.max_cluster = kMaxClusterSize;  // test_stage.cpp runs the grid with_max_cluster(..., kMaxClusterSize)
    const PagedLayout layout = build_layout(c.tree, c.shape, true, c.seed);
    const Plan plan = make_plan(layout, o);
    const ClusterPlan clusters = choose_clusters(plan, c.shape, o);
    const WorkList list = make_work_list(plan, clusters, c.shape);
    for (const PackGroup& g : clusters.groups) cluster_sizes.insert(g.cluster);
    // Many items, and the costliest far above the typical one: the tail the longest-first order is for.
    REQUIRE(list.items.size() >= 50u);
    std::vector<int64_t> costs;
    for (const WorkItem& w : list.items) costs.push_back(w.cost);
    std::sort(costs.begin(), costs.end());
    CHECK(costs.back() >= 8 * costs[costs.size() / 2]);
  }
  CHECK(cluster_sizes.count(2) == 1);
  CHECK(cluster_sizes.count(4) == 1);
  CHECK(dtypes.size() == 2u);
}


TEST_CASE("the tall grid with 192-row packs: stage 8's three-consumer tile at both dtypes, head dims and pages") {
  // Stage 8's planning under test_stage.cpp's with_hopper_rows(..., 192) (routing off) with the
  // host's occupancy estimate: every case has a 192-row pack.
  const std::vector<Case> cases = test::tall_grid(kTallSeed);
  require_well_formed(cases);
  CHECK(kv_heads_of(cases) == kAllKvHeads);
  std::set<std::pair<DType, int>> dtype_dims;
  std::set<int> pages, groups;
  std::set<DataKind> kinds;
  for (const Case& c : cases) {
    INFO(c.name);
    kinds.insert(c.data);
    PlannerOptions o;
    o.tiles = TilePolicy::hopper;
    o.split_kv = true;
    o.hopper.max_rows = kHopperTileRows[2];
    const Plan plan = make_plan(build_layout(c.tree, c.shape, true, c.seed), o);
    CHECK(std::any_of(plan.packs.begin(), plan.packs.end(), [](const Pack& p) {
      return p.tile == TileShape{kHopperTileRows[2], kHopperKvTile, TileKernel::hopper};
    }));
    dtype_dims.insert({c.shape.dtype, c.shape.head_dim});
    pages.insert(c.shape.page_size);
    groups.insert(c.shape.group());
  }
  CHECK(dtype_dims.size() == 4u);  // fp16 and bf16 x d 64, 128
  CHECK(pages == std::set<int>{16, 32, 64});
  CHECK(groups == std::set<int>{3, 8, 16});
  CHECK(kinds == std::set<DataKind>{DataKind::flat, DataKind::peaked});
}

TEST_CASE("the leaf tails grid: every case's plans have tails under stages 7 and 8, partial pages among them") {
  const std::vector<Case> cases = test::leaf_tails_grid(kLeafTailsSeed);
  require_well_formed(cases);
  CHECK(kv_heads_of(cases) == kAllKvHeads);
  std::set<std::pair<DType, int>> dtype_dims;
  std::set<int> pages, groups;
  std::set<DataKind> kinds;
  bool partial_page = false, leaf_left = false, many_tails = false;
  std::set<int> wgmma_rows;  // rows of stage 8's tails tiles among the grid's plans
  for (const Case& c : cases) {
    INFO(c.name);
    REQUIRE(c.take_leaves);
    kinds.insert(c.data);
    const PagedLayout L = build_layout(c.tree, c.shape, true, c.seed);
    for (const bool hopper : {false, true}) {
      PlanInfo info;
      const Plan plan = make_plan(L, tails_options(c, hopper), &info);
      REQUIRE(validate_plan(L, plan).empty());
      CHECK(info.leaf_tails > 0);
      for (const Pack& p : plan.packs) {
        for (const PackTail& t : p.tails) partial_page = partial_page || t.kv_len % c.shape.page_size != 0;
        many_tails = many_tails || p.tails.size() >= 8;
        if (p.tile.kernel == TileKernel::hopper_tail) wgmma_rows.insert(p.tile.m);
        leaf_left = leaf_left || (p.tails.empty() && p.queries.size() == 1 && p.token_begin > 0);
      }
    }
    dtype_dims.insert({c.shape.dtype, c.shape.head_dim});
    pages.insert(c.shape.page_size);
    groups.insert(c.shape.group());
  }
  CHECK(dtype_dims.size() == 4u);  // fp16 and bf16 x d 64, 128
  CHECK(pages == std::set<int>{16, 32});
  CHECK(groups == std::set<int>{1, 4, 8});
  CHECK(kinds == std::set<DataKind>{DataKind::flat, DataKind::peaked});
  CHECK(partial_page);
  CHECK(leaf_left);  // the 65-token leaf stays a pack of its own
  CHECK(many_tails);
  CHECK(wgmma_rows == std::set<int>{64, 128, 192});
  // The grids run with leaf tails too are the others', marked; among their plans, tails taken by
  // the last piece of a range the KV split cut, and by stage 8's wgmma packs.
  bool piece_parent = false, wgmma_parent = false;
  for (const std::vector<Case>& grid : {test::with_leaf_tails(test::tree_grid(kTreeSeed)),
                                        test::with_leaf_tails(test::boundary_grid(kBoundarySeed))})
    for (const Case& c : grid) {
      CHECK(c.take_leaves);
      const PagedLayout L = build_layout(c.tree, c.shape, true, c.seed);
      for (const bool hopper : {false, true}) {
        const Plan plan = make_plan(L, tails_options(c, hopper));
        for (size_t i = 0; i < plan.packs.size(); ++i) {
          const Pack& p = plan.packs[i];
          if (p.tails.empty()) continue;
          wgmma_parent = wgmma_parent || p.tile.kernel == TileKernel::hopper_tail;
          // a piece: an earlier pack of the same queries ends where this one begins
          for (size_t j = 0; j < i; ++j)
            piece_parent = piece_parent || (plan.packs[j].queries == p.queries &&
                                            plan.packs[j].token_begin + plan.packs[j].kv_len == p.token_begin);
        }
      }
    }
  CHECK(piece_parent);
  CHECK(wgmma_parent);
}
