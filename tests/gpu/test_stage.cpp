// One GPU stage against the float64 oracle, built once per stage of the registry
// (reference/include/patlab/stages.def) with -DPATLAB_STAGE_SLUG="slug": the boundary grid
// (lengths across tile and page boundaries, both dtypes, d 64/128, groups 1-16, pages 16/32/64,
// shared and unshared blocks), the tree grid (the planner's torture cases: asymmetric trees whose
// packs hold queries with different split counts, no-sharing batches across tile buckets, deep
// and multi-root trees, random trees), and the tile128 grid run with the KV tile cap at 128 (the
// n = 128 tiles of the stages that take their tiles from the planner's table; the other stages
// ignore the cap and see more long trees), and the shapes grid (any group 1-16 and d=256); stage
// 9 (built with -DPATLAB_STAGE_STRESS) also the stress grid of its persistent scheduler and the
// boundary and tree grids again, each with clusters of up to 4 (its default runs none), and the
// boundary, tree and stress grids with its merge folded in (--cluster-merge folded; its default
// is the merge kernel after the grid), stage 8
// (-DPATLAB_STAGE_ROUTING) the boundary and tree grids again with its routing off, so its kernel
// sees every pack of 33 rows and more of them (192-row ones where they save a read: the default
// --hopper-rows 192), and the tall grid at 192 rows and the tree grid at --hopper-rows 128, and
// the boundary, tree and shapes grids with its 16-row packs on its tensor-map pack kernel
// (--hopper-small-loader tma and tma-kv; the default grids run them on stage 7's cp.async loader);
// stages 7 and 8 (-DPATLAB_STAGE_GATES) the tree and shapes grids again with their buckets gated
// on streams of their own (--bucket-launch gates; the default chains them on one stream, so a
// merge that ran before every bucket had finished would read NaN-poisoned partials in the default
// grids), and the leaf tails grid and the boundary and tree grids with leaf tails (--take-leaves:
// the pack kernel's tails instances); stage 10 (-DPATLAB_STAGE_GROUP_ROWS) the boundary, tree and shapes grids on each of its
// kernel's two instances (16 and 64 rows), which its own choice would not all reach; stages 4-9
// (-DPATLAB_STAGE_FP32_PARTIALS) the boundary, tree and shapes grids with their partials' o in
// fp32 (--fp32-partials: the same plans, the writers' and the merges' fp32 paths; the default
// grids store them in 16 bits).
#include <string>

#include "../catch.hpp"
#include "harness.hpp"
#include "patlab/planner/cluster.hpp"

#ifndef PATLAB_STAGE_SLUG
#error "build this test with -DPATLAB_STAGE_SLUG=\"<slug>\" (tests/meson.build does, once per GPU stage)"
#endif

namespace {

/// The stage this executable checks.
const std::string kStage = PATLAB_STAGE_SLUG;
/// The grids' seeds, fixed so that a failure can be rerun.
constexpr uint64_t kBoundarySeed = 20261122;
constexpr uint64_t kTreeSeed = 7001;
constexpr uint64_t kTile128Seed = 128001;
constexpr uint64_t kShapesSeed = 110011;
constexpr uint64_t kStressSeed = 909001;
constexpr uint64_t kTallSeed = 192001;
constexpr uint64_t kLeafTailsSeed = 640001;

}  // namespace

TEST_CASE("the stage matches the oracle on the boundary grid") {
  patlab::test::check_stage(kStage, patlab::test::boundary_grid(kBoundarySeed));
}

TEST_CASE("the stage matches the oracle on the tree grid") {
  patlab::test::check_stage(kStage, patlab::test::tree_grid(kTreeSeed));
}

TEST_CASE("the stage matches the oracle on the tile128 grid (KV tile cap 128)") {
  patlab::test::check_stage(kStage, patlab::test::tile128_grid(kTile128Seed));
}

TEST_CASE("the stage matches the oracle on the shapes grid (groups 1-16, d=256)") {
  patlab::test::check_stage(kStage, patlab::test::shapes_grid(kShapesSeed));
}

#ifdef PATLAB_STAGE_ROUTING
TEST_CASE("the stage matches the oracle on the boundary and tree grids with its routing off") {
  patlab::test::check_stage(kStage, patlab::test::without_hopper_routing(patlab::test::boundary_grid(kBoundarySeed)));
  patlab::test::check_stage(kStage, patlab::test::without_hopper_routing(patlab::test::tree_grid(kTreeSeed)));
}

TEST_CASE("the stage matches the oracle on the tall grid (192-row packs) and the tree grid at 128 rows") {
  patlab::test::check_stage(kStage, patlab::test::with_hopper_rows(patlab::test::tall_grid(kTallSeed), 192));
  patlab::test::check_stage(kStage, patlab::test::with_hopper_rows(patlab::test::tree_grid(kTreeSeed), 128));
}

TEST_CASE("the stage matches the oracle on the boundary, tree and shapes grids with 16-row packs on tensor maps") {
  using patlab::test::with_small_loader;
  for (const patlab::SmallLoader loader : {patlab::SmallLoader::tma, patlab::SmallLoader::tma_kv}) {
    patlab::test::check_stage(kStage, with_small_loader(patlab::test::boundary_grid(kBoundarySeed), loader));
    patlab::test::check_stage(kStage, with_small_loader(patlab::test::tree_grid(kTreeSeed), loader));
    patlab::test::check_stage(kStage, with_small_loader(patlab::test::shapes_grid(kShapesSeed), loader));
  }
}
#endif

#ifdef PATLAB_STAGE_GROUP_ROWS
TEST_CASE("the stage matches the oracle on the boundary, tree and shapes grids on each kernel instance") {
  for (int rows : {16, 64}) {
    patlab::test::check_stage(kStage, patlab::test::with_group_rows(patlab::test::boundary_grid(kBoundarySeed), rows));
    patlab::test::check_stage(kStage, patlab::test::with_group_rows(patlab::test::tree_grid(kTreeSeed), rows));
    patlab::test::check_stage(kStage, patlab::test::with_group_rows(patlab::test::shapes_grid(kShapesSeed), rows));
  }
}
#endif

#ifdef PATLAB_STAGE_GATES
TEST_CASE("the stage matches the oracle on the leaf tails grid, and the boundary and tree grids with leaf tails") {
  patlab::test::check_stage(kStage, patlab::test::leaf_tails_grid(kLeafTailsSeed));
  patlab::test::check_stage(kStage, patlab::test::with_leaf_tails(patlab::test::boundary_grid(kBoundarySeed)));
  patlab::test::check_stage(kStage, patlab::test::with_leaf_tails(patlab::test::tree_grid(kTreeSeed)));
}

TEST_CASE("the stage matches the oracle on the tree and shapes grids with its buckets gated") {
  patlab::test::check_stage(kStage, patlab::test::with_gated_buckets(patlab::test::tree_grid(kTreeSeed)));
  patlab::test::check_stage(kStage, patlab::test::with_gated_buckets(patlab::test::shapes_grid(kShapesSeed)));
}
#endif

#ifdef PATLAB_STAGE_FP32_PARTIALS
TEST_CASE("the stage matches the oracle on the boundary, tree and shapes grids with fp32 partials") {
  using patlab::test::with_fp32_partials;
  patlab::test::check_stage(kStage, with_fp32_partials(patlab::test::boundary_grid(kBoundarySeed)));
  patlab::test::check_stage(kStage, with_fp32_partials(patlab::test::tree_grid(kTreeSeed)));
  patlab::test::check_stage(kStage, with_fp32_partials(patlab::test::shapes_grid(kShapesSeed)));
}
#endif

#ifdef PATLAB_STAGE_STRESS
TEST_CASE("the stage matches the oracle on the stress grid (a few huge items among many small ones)") {
  patlab::test::check_stage(kStage, patlab::test::with_max_cluster(patlab::test::stress_grid(kStressSeed), patlab::kMaxClusterSize));
}

TEST_CASE("the stage matches the oracle on the boundary and tree grids with clusters of up to 4") {
  using patlab::test::with_max_cluster;
  patlab::test::check_stage(kStage, with_max_cluster(patlab::test::boundary_grid(kBoundarySeed), patlab::kMaxClusterSize));
  patlab::test::check_stage(kStage, with_max_cluster(patlab::test::tree_grid(kTreeSeed), patlab::kMaxClusterSize));
}

TEST_CASE("the stage matches the oracle on the boundary, tree and stress grids with the merge folded into its grid") {
  using patlab::test::with_folded_merge;
  patlab::test::check_stage(kStage, with_folded_merge(patlab::test::boundary_grid(kBoundarySeed)));
  patlab::test::check_stage(kStage, with_folded_merge(patlab::test::tree_grid(kTreeSeed)));
  patlab::test::check_stage(kStage, with_folded_merge(patlab::test::with_max_cluster(
                                        patlab::test::stress_grid(kStressSeed), patlab::kMaxClusterSize)));
}
#endif
