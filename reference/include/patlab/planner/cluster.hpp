/// @file cluster.hpp
/// @brief Stage 9's host half (issue 13): the cluster size of each group of packs that read one
/// KV range, and the ordered work list a persistent grid pulls. No GPU code: the kernel that runs
/// the list is a later step (tutorial chapter 18, "the CPU half").
///
/// **Pack groups.** Under TilePolicy::hopper a node of the tree walk whose m queries need more
/// than one pack (m g > kHopperMaxRows rows) becomes ceil(m g / 128) packs over the *same* KV
/// range; the KV split then cuts each of them. A *pack group* is the set of the plan's packs
/// (after the split) with the same token range through the same physical blocks: each is one
/// row slice of one large pack, R rows in all, today read ceil(R / 128) times per KV head.
///
/// **The cost model** (choose_cluster_size(), in bytes, all KV heads; see [cluster-cost] in
/// cluster.cpp). A group of n slices (packs) over a range of B bytes (K and V of its tokens, all
/// KV heads) run by clusters of c CTAs, each CTA one slice, each K/V tile fetched once per
/// cluster from L2 and multicast into the c CTAs' shared memory:
///
///     cost(c) = ceil(n / c) x B                       reads of the range into the SMs (one per cluster)
///             + (c ceil(n / c) - n) x B               idle CTAs of a last, partial cluster (each holds a
///                                                     slot while its mates stream B)
///             + n x B x (S_1 - S_c) / S_c             slots lost to quantisation: the group's CTAs run on
///                                                     S_c slots instead of S_1
///
/// where S_c = sum over GPCs of floor(slots of the GPC / c) x c are the CTA slots clusters of c
/// can use: a cluster's CTAs are co-scheduled on one GPC (cluster_slots()). The H200's 132 SMs
/// are taken as kGpcs GPCs of whole TPCs (gpc_sms(): 2 of 18 SMs and 6 of 16), with the CTAs per
/// SM of the 128-row stage-8 tile; on the GPU cudaOccupancyMaxActiveClusters says it. Row
/// slices add no partial: each query is in one slice, so the partials and the merge are the
/// plan's. c is one of kClusterSizes, never more than n rounded up to a cluster size, and 1 for a
/// group with no pack on a stage-8 tile (is_hopper_tile()); a remainder slice of at most 32 rows,
/// on the pack kernel's tile in stage 8, still joins its group's clusters (the persistent kernel
/// runs every slice in a 128-row CTA). Ties go to the smaller c. Units mix
/// by the wave fill's convention: a slot's lost time counts as the bytes it would have streamed.
/// Wave quantisation (a last round of entries that fills few seats) is not priced per group:
/// pull_schedule() shows it for the whole list. The stage-8 profile found these kernels L2-fed
/// and SM-bound, so the read term is what the model saves, not a time it predicts (chapter 18).
///
/// **The work list** (make_work_list()). An *item* is one cluster's work: up to c slices of one
/// group at one KV head. Its cost is the KV tokens each of its CTAs reads (every CTA of an item
/// reads the whole range; waves.hpp's model: time ~ tokens). Order: items are grouped by (first
/// physical block, KV head), the items that re-read the same leading blocks from L2; the groups
/// go longest first (by their costliest item; ties by block, then head) and, within a group,
/// items go longest first. The list has two parts, each in that order: the *multicast* items
/// (cluster > 1) first, then the *solo* items (cluster 1). A persistent grid of `seats` clusters
/// pulls *entries* of the first part: consecutive items whose cluster sizes add up to at most the
/// launch's cluster size (the largest c), so a group's items start within ceil(items / seats)
/// rounds of each other: in the same wave when they fit the seats. A cluster that finds no entry
/// left turns its CTAs loose on the solo items: each CTA pulls the next one by itself, with no
/// cluster barrier, and its producer streams the next item's tiles while its consumers finish
/// the last one (a cluster-wide pull of four 1-CTA items would wait for the slowest and drain
/// every CTA's pipeline at each item). Each query gets a merge count: the items at one KV head
/// that write one of its partials (its packs; every pack has one item, or one slice of an item,
/// at each KV head) when it has more than one partial, else 0 (the single item writes the output
/// directly). The kernel keeps a counter per query and KV head; the item at head h that brings
/// it to the count merges the query heads of group h and sets the counter back to 0, so a
/// replayed graph finds it reset. A query's merge is so spread over the CTAs of its last items
/// at each KV head.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "patlab/model/kv_cache.hpp"
#include "patlab/planner/plan.hpp"
#include "patlab/planner/planner.hpp"

namespace patlab {

/// Cluster sizes stage 9 chooses from: one CTA, or 2 or 4 on one GPC (multicast within them).
inline constexpr int kClusterSizes[] = {1, 2, 4};
/// Largest cluster size (the portable limit is 8; 4 keeps the quantisation loss small).
inline constexpr int kMaxClusterSize = kClusterSizes[2];
/// GPCs the model deals the SMs over (GH100: 8).
inline constexpr int kGpcs = 8;
/// SMs per TPC: GPCs hold whole TPCs, so each GPC's SM count is even.
inline constexpr int kSmsPerTpc = 2;

/// SMs of each of the kGpcs GPCs of a GPU with `sms` SMs: the TPCs dealt as evenly as possible
/// (132 SMs: 18, 18, 16, 16, 16, 16, 16, 16). Throws Error(usage) unless sms >= 1.
std::vector<int> gpc_sms(int sms);

/// CTA slots clusters of `cluster` CTAs can use on GPCs of `gpcs` SMs holding `ctas_per_sm`
/// CTAs each: sum over GPCs of floor(sms x ctas_per_sm / cluster) x cluster. Throws
/// Error(usage) unless cluster >= 1 and ctas_per_sm >= 1.
int64_t cluster_slots(const std::vector<int>& gpcs, int ctas_per_sm, int cluster);

/// The model's terms for one group and cluster size (see the file comment), in bytes.
struct ClusterCost {
  int64_t reads = 0;         ///< ceil(n / c): fetches of the range into the SMs
  int64_t read_bytes = 0;    ///< reads x B
  int64_t idle_bytes = 0;    ///< (c ceil(n / c) - n) x B
  int64_t quant_bytes = 0;   ///< n x B x (S_1 - S_c) / S_c
  /// The model's cost: the sum of the three terms.
  int64_t total() const { return read_bytes + idle_bytes + quant_bytes; }
};

/// cost(c) of a group of `slices` packs over `range_bytes` bytes, with `slots_1` slots for lone
/// CTAs and `slots_c` for clusters of c. Throws Error(usage) unless slices >= 1, c >= 1 and
/// 1 <= slots_c <= slots_1.
ClusterCost cluster_cost(int64_t slices, int64_t range_bytes, int cluster, int64_t slots_1, int64_t slots_c);

/// The cluster size of kClusterSizes, at most `max_cluster`, with the lowest cluster_cost() (ties:
/// the smaller) for `slices` packs over `range_bytes`; `slots[i]` is S of kClusterSizes[i].
int choose_cluster_size(int64_t slices, int64_t range_bytes, const std::vector<int64_t>& slots,
                        int max_cluster = kMaxClusterSize);

/// Throws Error(usage) unless `max_cluster` is one of kClusterSizes (`what` names the setting).
void check_max_cluster(int max_cluster, const std::string& what);

/// Packs of a plan that read one KV range, and the cluster size chosen for them.
struct PackGroup {
  std::vector<int32_t> packs;  ///< indices into Plan::packs, in plan order: the row slices
  int32_t token_begin = 0;     ///< the range they share
  int32_t kv_len = 0;          ///< tokens in the range
  int32_t first_block = 0;     ///< first physical block of the range
  int rows = 0;                ///< rows of all slices (queries x group)
  bool hopper = false;         ///< some slice on a stage-8 tile (is_hopper_tile()): the group may cluster
  int cluster = 1;             ///< chosen cluster size
  ClusterCost cost;            ///< the model at the chosen size
  int64_t bytes_alone = 0;     ///< n x B: the range's reads with one CTA per slice
};

/// Every pack group of a plan with its cluster size.
struct ClusterPlan {
  std::vector<PackGroup> groups;      ///< in the order of their first pack
  std::vector<int32_t> group_of_pack; ///< per pack of the plan, its group
  std::vector<int> gpcs;              ///< SMs of each GPC (gpc_sms() of options.sms)
  std::vector<int64_t> slots;         ///< S_c per kClusterSizes entry
  int ctas_per_sm = 1;                ///< CTAs per SM the slots were counted with
  int launch_cluster = 1;             ///< the largest chosen size: the persistent launch's cluster dimension
  int64_t kv_bytes_alone = 0;         ///< KV bytes into the SMs, one CTA per pack (the traffic model's)
  int64_t kv_bytes_clustered = 0;     ///< the same with one read per cluster
};

/// Groups the packs of `plan` (made under TilePolicy::hopper) by KV range and chooses each
/// group's cluster size by the model, on `options.sms` SMs in gpc_sms() GPCs with the CTAs per
/// SM of the 128-row row class (options.ctas_per_sm[3], or estimate_hopper_ctas_per_sm()).
/// Throws Error(usage) when options.tiles is not TilePolicy::hopper: clusters multicast into
/// stage 8's tiles only.
ClusterPlan choose_clusters(const Plan& plan, const Shape& shape, const PlannerOptions& options);

/// One cluster's work: slices packs of a group at one KV head.
struct WorkItem {
  int32_t group = 0;        ///< index into ClusterPlan::groups
  int32_t first_slice = 0;  ///< the slices are groups[group].packs[first_slice, first_slice + slices)
  int32_t slices = 0;       ///< slices it runs: the cluster size, or fewer in its group's last item at a KV head
  int32_t kv_head = 0;      ///< the KV head it runs at
  int32_t cluster = 1;      ///< CTAs the item takes (its group's cluster size)
  int64_t cost = 0;         ///< KV tokens each of its CTAs reads
};

/// The ordered list a persistent grid pulls, and the merge counters.
struct WorkList {
  std::vector<WorkItem> items;         ///< in pull order (see the file comment): multicast items, then solo items
  std::vector<int32_t> entry_begin;    ///< entry e is items[entry_begin[e], entry_begin[e + 1]) (last: to solo_begin)
  int32_t solo_begin = 0;              ///< items[solo_begin, end) are solo: each CTA pulls them one at a time
  /// per request: the items at each KV head that write one of its partials (each KV head counts on
  /// a counter of its own), 0 if written directly
  std::vector<int32_t> merge_count;
  int launch_cluster = 1;              ///< CTAs of each hardware cluster of the launch
  int64_t seats = 0;                   ///< resident clusters: slots of launch_cluster / launch_cluster
  /// Cost of entry e: its costliest item.
  int64_t entry_cost(size_t e) const;
  /// Entries in the list (its multicast part, pulled per cluster).
  size_t entries() const { return entry_begin.size(); }
  /// Solo items in the list (pulled per CTA).
  size_t solo_items() const { return items.size() - static_cast<size_t>(solo_begin); }
  /// CTA slots of the launch: seats x launch_cluster.
  int64_t slots() const { return seats * launch_cluster; }
};

/// The work list of `plan` with `clusters` (choose_clusters() of the same plan) for a shape of
/// `shape.num_kv_heads` KV heads. Throws Error(usage) when `clusters` does not match `plan`.
WorkList make_work_list(const Plan& plan, const ClusterPlan& clusters, const Shape& shape);

/// The pulls of `list`, in time measured in KV tokens (an item takes its cost): `list.seats`
/// clusters pull the entries in order, each when it frees, an entry holding all launch_cluster
/// CTAs of its cluster for its costliest item; a cluster that finds no entry left frees its
/// CTAs, and each CTA then pulls the next solo item when it frees.
struct PullSchedule {
  int64_t makespan = 0;     ///< when the last item ends
  int64_t total = 0;        ///< CTA time of all the work: entry costs x launch_cluster, plus the solo items' costs
  int64_t longest = 0;      ///< costliest entry or solo item
  int64_t waves = 0;        ///< ceil(entries / seats)
  int64_t solo_waves = 0;   ///< ceil(solo items / slots)
  /// Graham's bound for any list order on `slots` CTA slots: ceil(total / slots) + longest (until
  /// the last item starts, no CTA is free).
  int64_t bound(int64_t slots) const { return (total + slots - 1) / slots + longest; }
};
/// Simulates the pulls of `list` (see PullSchedule). Throws Error(usage) unless list.seats >= 1.
PullSchedule pull_schedule(const WorkList& list);

/// One item of the simulated pulls: where and when it runs.
struct PulledItem {
  int32_t item = 0;       ///< index into WorkList::items
  int32_t first_cta = 0;  ///< its first CTA slot (cluster c's slots are c x launch_cluster ...)
  int32_t ctas = 1;       ///< CTA slots it takes (its cluster size)
  int64_t start = 0;      ///< when its entry (or, solo, the item) is pulled, in KV tokens
  int64_t end = 0;        ///< start + its cost
};
/// The pulls pull_schedule() simulates, item by item in list order (its makespan is the largest
/// `end`). Throws Error(usage) unless list.seats >= 1.
std::vector<PulledItem> pull_timeline(const WorkList& list);

}  // namespace patlab
