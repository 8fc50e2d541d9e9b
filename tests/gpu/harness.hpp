// The GPU test harness: the grids of cases every stage is checked on (tests/gpu/grids.cpp, host
// code that a CPU test checks too), and the check itself (tests/gpu/harness.cpp).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "patlab/gpu.hpp"
#include "patlab/model/kv_cache.hpp"
#include "patlab/model/traffic.hpp"
#include "patlab/model/workload.hpp"
#include "patlab/planner/plan.hpp"

namespace patlab::test {

/// One workload to check a stage on.
struct Case {
  std::string name;  ///< says the tree, the shape (KV heads among it) and the data kind
  TokenTree tree;
  Shape shape;
  uint64_t seed = 0;
  DataKind data = DataKind::flat;
  int max_kv_tile = 0;  ///< Runner::set_max_kv_tile() before prepare (0: the planner's default)
  HopperRouting hopper = kStage8Routing;  ///< Runner::set_hopper_routing() before prepare (stage 8)
  gpu::BucketLaunch bucket_launch = gpu::BucketLaunch::chain;  ///< Runner::set_bucket_launch() (stages 7-8)
  int group_rows = 0;  ///< Runner::set_group_rows() (stage 10's instance; 0: its model chooses)
  bool take_leaves = kStagesTakeLeaves;  ///< Runner::set_take_leaves() (stages 7-8's leaf tails; the stages' default)
  int leaf_tail_rows = kLeafTailRows;         ///< Runner::set_take_leaves()'s max_rows
  double leaf_tail_min_cut = kTailMinCtaCut;  ///< Runner::set_take_leaves()'s min_cut
  bool half_partials = traffic::kStagesHalfPartials;  ///< Runner::set_half_partials() (false: fp32 partials)
  int max_cluster = kStagesMaxCluster;  ///< Runner::set_max_cluster() (stage 9's largest cluster; the stages' default)
  gpu::ClusterMerge cluster_merge = gpu::kDefaultClusterMerge;  ///< Runner::set_cluster_merge() (stage 9)
};

/// KV head counts the grids cycle through, case by case (the group sizes stay as listed).
inline constexpr int kGridKvHeads[] = {1, 2, 3, 4};
/// The KV tile cap of tile128_grid(): the table's largest n.
inline constexpr int kLargeKvTile = 128;

/// Lengths that cross tile and page boundaries: 1, 15, 16, 17, 127, 129, 1000, 4097, ...
const std::vector<int64_t>& boundary_lengths();

/// Stages 1-3's grid: for both dtypes, both head dims, every group size and every page size,
/// one batch of requests of the boundary lengths alone plus requests sharing a 1000-token
/// prefix (so shared and unshared blocks, shuffled ids), flat data; plus the page-16 cases
/// again with peaked data. KV heads cycle through kGridKvHeads.
std::vector<Case> boundary_grid(uint64_t seed);

/// The planner's torture cases plus random asymmetric trees from several seeds, across
/// dtypes, head dims 64/128 and groups 1/2/4/8/16; the torture cases and the random trees also
/// with peaked data. KV heads cycle through kGridKvHeads.
std::vector<Case> tree_grid(uint64_t seed);

/// For the stages that take their tiles from the planner's table (multitile, multistream,
/// pat): trees whose packs hold 128 or more KV tokens, run with the KV tile cap at
/// kLargeKvTile so that the n = 128 tiles are used; both dtypes, both head dims, groups
/// 1/2/8, flat and peaked data, KV heads cycling through kGridKvHeads.
std::vector<Case> tile128_grid(uint64_t seed);

/// Groups of shapes_grid(): issue 11's (powers of two, and 3, 5, 6, 7, 12 of real models).
inline constexpr int kShapeGridGroups[] = {1, 3, 5, 6, 7, 8, 12, 16};
/// The head dim that shapes_grid() adds to the other grids' 64 and 128.
inline constexpr int kLargeHeadDim = 256;
/// Any GQA group and head dim 256, a sub-grid rather than a cross product: the boundary batch
/// at d=256 for every group of kShapeGridGroups (dtypes and pages cycling), the groups that are
/// not powers of two at d 64 and 128, full packs of non-power-of-two rows (the 64-request tree
/// at groups 5, 7, 12), the planner's torture cases at d=256, and a few cases with the KV tile
/// cap at kLargeKvTile (n = 128 refused at d=256, 8-warp 64x128 at d=128); and the fp8 KV
/// cache (`--kv-dtype fp8`): boundary lengths for both q dtypes at d 64/128/256 and groups
/// 1/3/8, trees, and the KV tile cap. Peaked beside flat for some; KV heads cycle through
/// kGridKvHeads.
std::vector<Case> shapes_grid(uint64_t seed);

/// Stage 8's 192-row tiles (run with_hopper_rows(..., 192)): packs of more than 128 rows, a full
/// 192-row pack and a 192-row one beside a smaller one over a range of odd length, for both
/// dtypes, head dims 64/128, groups 3, 8 and 16, pages 16/32/64, flat and peaked data; and a
/// random tree. KV heads cycle through kGridKvHeads.
std::vector<Case> tall_grid(uint64_t seed);

/// Stage 9's persistent scheduler under stress: a few huge pack groups (long prefixes shared by
/// 512-1024 rows, so the cluster model, allowed clusters of up to kMaxClusterSize in every case
/// here, picks clusters of 2 and 4 and the KV split cuts them)
/// among hundreds of tiny suffix items, and batches of many short requests with a few long
/// ones; both dtypes, head dims 64/128, groups 2/4/8, flat and peaked data. check_stage() runs
/// each three times (eager, again, graph replay): the pull counter and the merge counters must
/// be back at 0 after every run.
std::vector<Case> stress_grid(uint64_t seed);

/// `cases` with stage 8's routing off (HopperRouting::min_kv and wide_kv 0): every pack of 33 rows
/// or more on the Hopper kernel, 128- and 192-row packs over short ranges too, as before the routing; the
/// default routing leaves most of the small grids' packs to the pack kernel.
std::vector<Case> without_hopper_routing(std::vector<Case> cases);

/// without_hopper_routing(`cases`) with packs of at most `rows` rows (HopperRouting::max_rows, 64, 128 or
/// 192; the default is kDefaultHopperMaxRows): at 192 a node of more than 128 rows gets stage
/// 8's 192-row tile (three consumer warpgroups) where it saves a read, at 128 it never does.
std::vector<Case> with_hopper_rows(std::vector<Case> cases, int rows);

/// `cases` with stage 8's packs of up to 16 rows loaded by `loader` (HopperRouting::small_loader,
/// `--hopper-small-loader`); by default they run stage 7's pack kernel and its cp.async loader.
std::vector<Case> with_small_loader(std::vector<Case> cases, SmallLoader loader);

/// `cases` on stage 10's kernel instance of row cap `rows` (16 or 64) whatever its model would
/// choose: the grids alone run most cases on the 16-row instance, and none with fp8 on the
/// 64-row one.
std::vector<Case> with_group_rows(std::vector<Case> cases, int rows);

/// Stages 7-8's leaf tails (PlannerOptions::take_leaves): trees whose leaves of up to
/// kLeafTailMaxTokens tokens the planner moves into the pack before them (leaves of odd lengths,
/// so partial last pages; several leaves per pack; leaves beside leaves it leaves alone), for
/// both dtypes, head dims 64/128, groups 1, 4 and 8, pages 16 and 32, flat and peaked data, KV
/// heads cycling through kGridKvHeads; and prefixes whose stage-8 packs of 64, 128 and 192 rows
/// take tails on its wgmma kernel. Every case with take_leaves on.
std::vector<Case> leaf_tails_grid(uint64_t seed);

/// `cases` with stages 7-8's leaf tails on (Runner::set_take_leaves()), in packs of up to
/// kHopperMaxRows rows and without the CTA gate (leaf_tail_min_cut 0).
std::vector<Case> with_leaf_tails(std::vector<Case> cases);

/// `cases` with stages 4-9's partials' o stored in fp32 (Runner::set_half_partials(false),
/// `--fp32-partials`) instead of the default 16 bits: the same plans, the writers' and the
/// merges' fp32 paths.
std::vector<Case> with_fp32_partials(std::vector<Case> cases);

/// `cases` with the buckets of stages 7 and 8 on a stream each with launch gates
/// (gpu::BucketLaunch::gates, the other way than the default chain), joined before the merge.
std::vector<Case> with_gated_buckets(std::vector<Case> cases);

/// `cases` with stage 9 allowed clusters of up to `ctas` CTAs (Runner::set_max_cluster(),
/// `--max-cluster`; the stages' default kStagesMaxCluster runs no multicast), so that its model
/// puts the long shared ranges' slices into clusters that multicast.
std::vector<Case> with_max_cluster(std::vector<Case> cases, int ctas);

/// `cases` with stage 9's merge folded into its grid (gpu::ClusterMerge::folded, `--cluster-merge
/// folded`) instead of the merge kernel after it (the default).
std::vector<Case> with_folded_merge(std::vector<Case> cases);

/// Runs `slug` on every case and REQUIREs each to pass: the output of an eager run (output and
/// workspace poisoned with NaN first) checked against the reference (verify.hpp), a second
/// eager run bit-identical to it (a difference is a race), and a CUDA-graph replay of the stage
/// checked and bit-identical too. Prints one line per case. A case whose shape the stage says it
/// is not built for (Stage::unsupported: stage 8's fp8 at d = 64, d = 256, small pages) is listed with the
/// reason and not run; at least one case must run.
void check_stage(const std::string& slug, const std::vector<Case>& cases);

}  // namespace patlab::test
