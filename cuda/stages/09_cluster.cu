/// @file 09_cluster.cu
/// @brief Stage 9, `cluster` (issue 13): stage 8's plan and 128-row Hopper CTA, run as one
/// persistent grid of thread block clusters that pull the host's ordered work list
/// (planner/cluster.hpp), read each K/V tile once per cluster with TMA multicast, and merge a
/// query's partials in the CTA that writes its last one. sm_90a only.
///
/// What is new against stage 8:
///  - one launch: as many clusters as fit the GPU (cudaOccupancyMaxActiveClusters), each looping:
///    its rank 0 pulls the next *entry* of the work list's multicast part with an atomicAdd and
///    hands it to the other CTAs through their shared memory; an entry is one or more items whose
///    cluster sizes fill the launch's cluster; an item is up to c row slices (packs) of one pack
///    group at one KV head, one slice per CTA;
///  - the solo part: a cluster that finds no entry left lets its CTAs go; each CTA's producer
///    warp pulls the next 1-CTA item itself, copies its first tiles into the stages the last
///    item frees while the consumers finish it, and hands it over through a two-slot queue in
///    shared memory at one named barrier that both sides `barrier.sync`: no cluster barrier, no
///    drained pipeline between items;
///  - multicast: the CTAs of an item read the same KV range, so each issues every c-th box of a
///    tile with `.multicast::cluster` into all of them; each CTA's full barrier waits for the
///    whole tile, and a stage is refilled only when the consumers of all c CTAs released it
///    (each consumer warp arrives on every member's empty barrier);
///  - the merge folded in: a CTA that wrote partials at KV head h counts, per query, the items
///    at h done with it (one device counter per request, KV head and consumer warp); the warp
///    that brings its counter to WorkList::merge_count merges its share of the query heads of
///    group h and sets the counter back to 0, so the next run (or graph replay) finds it zeroed.
///    A query's merge is spread over the CTAs of its last items at each KV head. No merge kernel,
///    one stream, graph-capturable. That is `--cluster-merge folded`; by default
///    (gpu::kDefaultClusterMerge) the kernel skips it and stage 8's merge kernel follows the grid,
///    since a folded merge waits behind its CTA's own last item (docs/results/
///    2026-12-07-stage9-merge-kernel: the folded merge 1.03-1.43x the time on shared prefixes).
/// Every slice runs in the 128-row CTA (two consumer warpgroups), including slices of a few
/// rows: the persistent grid has one kind of CTA; a warpgroup with no row of the slice skips the
/// tensor-core work and only releases the stages. Its ring's stages hold kClusterKvTile = 128
/// tokens (stage 8's 64): the lock step of a cluster, the barrier waits and the releases come once
/// per 128 tokens (docs/results/2026-12-06-stage9-wide: 0.79-0.95x the time of 64-token stages
/// where clusters run).
#include <cuda.h>

#include <algorithm>
#include <memory>
#include <string>
#include <vector>

#include "patlab/cuda/check.cuh"
#include "patlab/cuda/cta_trace.cuh"
#include "patlab/cuda/device_plan.cuh"
#include "patlab/cuda/dispatch.cuh"
#include "patlab/cuda/hopper/cluster.cuh"
#include "patlab/cuda/hopper_stage.cuh"
#include "patlab/cuda/hopper_tile.cuh"
#include "patlab/cuda/kernel_smem.cuh"
#include "patlab/cuda/merge.cuh"
#include "patlab/cuda/stage.cuh"
#include "patlab/error.hpp"
#include "patlab/planner/cluster.hpp"
#include "patlab/planner/planner.hpp"

namespace patlab::cuda {

namespace {

/// Consumer warpgroups of every stage-9 CTA: the 128-row tile.
constexpr int kClusterConsumers = 2;
/// Consumer warps of a CTA, each releasing every stage it used once.
constexpr int kConsumerWarps = kClusterConsumers * kWarpgroupThreads / 32;
/// Arrivals that free one stage: the consumer warps of the largest cluster. An item of fewer
/// CTAs tops the count up in one arrival (see release_stage()).
constexpr int kEmptyArrivals = kConsumerWarps * kMaxClusterSize;
/// Slots of a CTA's solo queue: items its producer pulled, not yet taken by its consumers.
constexpr int kSoloSlots = 2;
/// Threads of the two consumer warpgroups.
constexpr int kConsumerThreads = kClusterConsumers * kWarpgroupThreads;
/// Threads of a solo queue hand-off: the producer's warp and the consumers.
constexpr int kSoloThreads = 32 + kConsumerThreads;
/// The named barrier of the solo queue's hand-offs (after kAllConsumersBarrier), which the
/// producer warp and the consumers both `bar.sync`.
constexpr int kSoloBarrier = kAllConsumersBarrier + 1;
static_assert(kSoloBarrier < 16, "a CTA has 16 named barriers");

/// Cycles a stage-9 barrier wait may spin before the kernel traps (about 10 s at the H200's
/// 1.98 GHz): a deadlock of the cluster protocol becomes a launch error that the CLI and the
/// tests report, not a hung process.
constexpr long long kWatchdogCycles = 20'000'000'000LL;

/// hopper::wait_parity() with the watchdog.
__device__ __forceinline__ void wait_or_trap(hopper::Mbarrier* bar, uint32_t parity) {
  const long long start = clock64();
  while (!hopper::try_wait_parity(bar, parity))
    if (clock64() - start > kWatchdogCycles) __trap();
}

/// One work item as the kernel reads it (WorkItem, with its slices flattened).
struct DeviceItem {
  int32_t slice_begin = 0;  ///< its first slice in ClusterWorkArgs::slice_packs
  int32_t slices = 0;       ///< CTAs that compute (at most cluster)
  int32_t kv_head = 0;
  int32_t cluster = 1;      ///< CTAs of the launch's cluster the item takes
};

/// The work list and the folded merge's state on the device.
struct ClusterWorkArgs {
  const int32_t* entry_begin = nullptr;  ///< [entries + 1]: entry e is items [entry_begin[e], entry_begin[e + 1])
  const DeviceItem* items = nullptr;
  const int32_t* slice_packs = nullptr;  ///< the plan pack of each slice
  int entries = 0;
  int solo_begin = 0;                    ///< items [solo_begin, solo_begin + solo_items) are solo
  int solo_items = 0;
  int* pulls = nullptr;                  ///< the pull counters, zeroed before each run: [0] entries, [1] solo items
  /// [requests x KV heads x kConsumerWarps]: per request, KV head and consumer warp, the items at
  /// that head the warp counted in (0 between runs)
  int* merge_arrivals = nullptr;
  const int32_t* merge_count = nullptr;  ///< [requests]: WorkList::merge_count
  PartialsView partials;
  bool fold = false;  ///< merge in the kernel (gpu::ClusterMerge::folded); false: the merge kernel after it
};

/// The layout of a stage-9 CTA: stage 8's 128-row layout on kClusterKvTile-token stages (224 KB at
/// d = 128).
/// @tparam D head dimension (64 or 128)
template <int D>
using ClusterLayout = HopperLayout<D, kClusterConsumers, kClusterKvTile>;

/// Shared memory of a stage-9 CTA: its ClusterLayout, then the entry a pull handed in and the solo
/// queue's slots.
/// @tparam D head dimension (64 or 128)
template <int D>
struct ClusterSmem {
  using L = ClusterLayout<D>;
  static constexpr int kExtraInts = 1 + kSoloSlots;  ///< the entry, the solo slots
  static constexpr int kBytes = L::kSmemBytes + kExtraInts * static_cast<int>(sizeof(int));
};

// [cluster-produce]
/// The producer warp (`lane` 0-31) of member `member` of an item of `members` CTAs: for tiles
/// [tile_begin, tile_end) of the pack's range, lane 0 waits until its own stage is free (every
/// member's consumers released it) and announces the whole tile's bytes on its own full barrier,
/// and the lanes issue boxes member, member + members, ... of the tile into all members (`mask`;
/// a lone CTA copies without multicast): issue_tile_copies(). Tile t takes stage
/// (stage_base + t) % kStages; `empty_parity` holds, per stage, the parity of this CTA's uses of
/// it so far (every lane keeps the same).
/// @tparam D head dimension (64 or 128)
/// @tparam N KV tokens per tile
template <int D, int N>
__device__ __forceinline__ void produce_multicast(const CUtensorMap* k_map, const CUtensorMap* v_map,
                                                  const int32_t* blocks, const PoolGeometry& geo, int kv_len,
                                                  int kv_head, int box_rows, uint16_t* k_s, uint16_t* v_s,
                                                  hopper::Mbarrier* full, hopper::Mbarrier* empty,
                                                  uint32_t& empty_parity, int member, int members, uint16_t mask,
                                                  int stage_base, int tile_begin, int tile_end, int lane) {
  using L = HopperLayout<D, kClusterConsumers, N>;
  for (int tile = tile_begin; tile < tile_end; ++tile) {
    const int s = (stage_base + tile) % L::kStages;
    const int first = tile * N;
    issue_tile_copies<D, N>(k_map, v_map, blocks, geo, first, min(N, kv_len - first), kv_head, box_rows,
                            k_s + s * N * D, v_s + s * N * D, &full[s], lane, member, members, mask,
                            [&] { wait_or_trap(&empty[s], ((empty_parity >> s) & 1u) ^ 1u); });
    empty_parity ^= 1u << s;
  }
}
// [cluster-produce]

// [cluster-release]
/// A consumer warp is done with stage `s`: lane 0 arrives on the empty barrier of every member
/// (ranks first_rank .. first_rank + members - 1). The barriers expect kEmptyArrivals; member 0's
/// first warp adds what the members fewer than kMaxClusterSize do not bring. A 1-CTA item
/// arrives on its own barrier with a CTA-scope release, as stage 8 does: the cluster-scope
/// release of a remote arrival is paid only where another CTA's producer waits on it.
__device__ __forceinline__ void release_stage(hopper::Mbarrier* empty, int s, int first_rank, int members,
                                              bool topper, int lane) {
  if (lane != 0) return;
  const uint32_t count = 1u + (topper ? static_cast<uint32_t>(kEmptyArrivals - kConsumerWarps * members) : 0u);
  if (members == 1) {
    hopper::arrive(&empty[s], count);
    return;
  }
  for (int m = 0; m < members; ++m)
    hopper::arrive_remote(hopper::map_shared_rank(&empty[s], static_cast<uint32_t>(first_rank + m)), count);
}
// [cluster-release]

// [cluster-merge]
/// The folded merge, run by the consumer threads (`ctid` 0..255) after their partial rows at KV
/// head `kv_head` are written. Each of the eight consumer warps owns the query heads kv_head x g
/// + warp, + 8, ... of that head's group (g query heads) of every query and counts this item in
/// on a counter of its own per query and KV head (merge_arrivals[(request x Hkv + kv_head) x 8 +
/// warp]); the warp whose count completes a query's head group merges those heads of its own and
/// resets its counter. So the merge of a completed query is spread over the CTAs of its last item
/// at each KV head, and within one over its eight warps, as a merge kernel would spread it, with
/// no list in shared memory: a warp learns which of its lanes' queries completed by ballot.
/// @tparam T storage type of q, K, V and the output (__half or __nv_bfloat16)
/// @tparam D head dimension (64 or 128)
template <typename T, int D>
__device__ __forceinline__ void fold_merge(const PackKernelArgs& args, const ClusterWorkArgs& work, int first,
                                           int queries, int kv_head, int ctid) {
  __threadfence();  // this thread's partials reach L2 before its CTA counts them in
  named_barrier_sync(kAllConsumersBarrier, kConsumerThreads);
  const int lane = ctid % 32, warp = ctid / 32;
  const int heads = args.num_q_heads;
  const int head_end = (kv_head + 1) * args.group;
  const int64_t counters = static_cast<int64_t>(heads / args.group) * kConsumerWarps;  // per request
  for (int base = 0; base < queries; base += 32) {
    const int q = base + lane;
    int request = -1;
    bool done = false;
    if (q < queries && args.slots[first + q] >= 0) {  // a query written directly has nothing to merge
      request = args.queries[first + q];
      int* counter = work.merge_arrivals + request * counters + kv_head * kConsumerWarps + warp;
      done = atomicAdd(counter, 1) == work.merge_count[request] - 1;
    }
    uint32_t completed = __ballot_sync(0xffffffffu, done);
    if (completed == 0) continue;
    __threadfence();  // the other items' partials, counted in before ours, are read after the count
    while (completed) {
      const int src = __ffs(completed) - 1;
      completed &= completed - 1;
      const int r = __shfl_sync(0xffffffffu, request, src);
      for (int h = kv_head * args.group + warp; h < head_end; h += kConsumerWarps) {
        if (work.partials.o_half)
          merge_query_head<T, D, T>(static_cast<const T*>(work.partials.o), work.partials.lse, work.partials.offsets, r,
                                    h, heads, lane, static_cast<T*>(args.out));
        else
          merge_query_head<T, D, float>(static_cast<const float*>(work.partials.o), work.partials.lse,
                                        work.partials.offsets, r, h, heads, lane, static_cast<T*>(args.out));
      }
    }
    if (done) work.merge_arrivals[request * counters + kv_head * kConsumerWarps + warp] = 0;
  }
}
// [cluster-merge]

/// A cluster barrier for every thread, after the warp's lanes have met again (the producer's
/// thread and the pulling thread leave their warps for a while; barrier.cluster is `.aligned`).
__device__ __forceinline__ void cluster_sync_all() {
  __syncwarp();
  hopper::cluster_sync();
}

// [cluster-solo]
/// The producer warp's pull of its CTA's `k`-th solo item: lane 0 takes the next solo item (-1:
/// none left) and stores it in slot k % kSoloSlots. The consumers read that slot only after the
/// hand-off of item k (solo_handoff()), and the slot is written again for item k + 2 only after
/// the hand-off of item k + 1, which each consumer reaches after its read. Returns the item in
/// every lane.
__device__ __forceinline__ int pull_solo(const ClusterWorkArgs& work, int* solo_slot, int k, int lane) {
  __syncwarp();  // the lanes rejoin from the last item's copies
  int item = -1;
  if (lane == 0) {
    const int i = atomicAdd(work.pulls + 1, 1);
    item = i < work.solo_items ? work.solo_begin + i : -1;
    solo_slot[k % kSoloSlots] = item;
  }
  return __shfl_sync(0xffffffffu, item, 0);
}

/// The hand-off of a solo item: the producer warp (after it issued the item's first kStages - 1
/// tiles) and every consumer thread (after the last item's rows and merge) meet at one
/// `barrier.sync`, which orders the producer's store of the slot before the consumers' loads, and
/// each consumer's load before the producer's store two items later.
__device__ __forceinline__ void solo_handoff() {
  __syncwarp();  // in the producer warp, the lanes rejoin from the copies
  named_barrier_sync_unaligned(kSoloBarrier, kSoloThreads);  // reached from three call sites
}
// [cluster-solo]

// [cluster-kernel]
/// The stage-9 kernel: a persistent grid of clusters; warpgroup 0 produces, warpgroups 1-2
/// consume (stage 8's roles, without its register hand-over). First the multicast entries:
/// every thread takes part in the two cluster barriers of each entry: (A) the cluster is done
/// with the last entry (its stages are free in every CTA, and no copy or arrival into them is in
/// flight), (B) the pulled entry is in every CTA. Then, when no entry is left, the solo items:
/// the producer warp pulls each (pull_solo()), issues its first tiles and hands it to the
/// consumers (solo_handoff()), and the producer warpgroup's other warps wait at the
/// kernel's last barrier. The barriers are initialised once; each thread tracks, per stage, the
/// parity of its CTA's uses; stage indices restart at 0 with every entry and run on across solo
/// items (producer and consumers walk the same sequence of uses).
/// @tparam T storage type of q, K, V and the output (__half or __nv_bfloat16)
/// @tparam D head dimension (64 or 128)
/// @tparam N KV tokens per tile
template <typename T, int D, int N>
__global__ void __launch_bounds__(HopperLayout<D, kClusterConsumers, N>::kThreads, 1)
    cluster_pack_kernel(PackKernelArgs args, ClusterWorkArgs work, const __grid_constant__ CUtensorMap k_map,
                        const __grid_constant__ CUtensorMap v_map, int box_rows) {
  using L = HopperLayout<D, kClusterConsumers, N>;
  constexpr int M = L::kRows;
  extern __shared__ __align__(128) unsigned char smem_raw[];
  const HopperSmem<T, L> sm = carve_hopper_smem<T, L>(smem_raw);
  T* q_s = sm.q;
  uint16_t *k_s = sm.k, *v_s = sm.v;
  hopper::Mbarrier *full = sm.full, *empty = sm.empty;
  int* entry_slot = reinterpret_cast<int*>(sm.end());
  int* solo_slot = entry_slot + 1;

  const int rank = static_cast<int>(hopper::cluster_rank());
  const int csize = static_cast<int>(hopper::cluster_size());
  const int wg = threadIdx.x / kWarpgroupThreads, wg_tid = threadIdx.x % kWarpgroupThreads;
  if (threadIdx.x == 0) {
    for (int s = 0; s < L::kStages; ++s) {
      hopper::init_mbarrier(&full[s], 1);                // this CTA's producer: arrive_expect_tx
      hopper::init_mbarrier(&empty[s], kEmptyArrivals);  // the members' consumer warps (release_stage())
    }
    hopper::fence_mbarrier_init();
  }
  // No setmaxnreg here (stage 8 moves registers to the consumers): both roles run the entry
  // loop, and ptxas keeps the kernel's one allocation (167 registers at d = 128, within the
  // 168 that 384 threads of one CTA per SM may have, no spills) rather than shrink the producer.
  uint32_t parity = 0;  // per stage, the parity of this CTA's uses of it (producer: empty; consumers: full)
  bool solo = false;    // past the entries: pulling solo items
  // The stage of an item's first tile: 0 for every entry (each starts after cluster barriers);
  // for solo items, the stage after the last item's last tile, so the next item's first tiles
  // take the stages its last tiles free first.
  int stage_base = 0;
  const int ctid = threadIdx.x - kWarpgroupThreads;  // consumer thread id (negative in the producer warpgroup)

  for (int k = 0;; ++k) {
    int item = -1, first_rank = rank;
    if (!solo) {
      cluster_sync_all();  // (A)
      if (rank == 0 && threadIdx.x == 0) {
        const int e = atomicAdd(work.pulls, 1);
        for (int r = 0; r < csize; ++r)
          hopper::st_shared_cluster(hopper::map_shared_rank(entry_slot, static_cast<uint32_t>(r)), static_cast<uint32_t>(e));
      }
      cluster_sync_all();  // (B)
      const int e = *reinterpret_cast<volatile int*>(entry_slot);
      if (e >= work.entries) {
        solo = true;
        k = -1;  // the solo queue's pulls count from 0
        if (wg == 0 && wg_tid >= 32) break;  // the producer warpgroup's other warps are done
        continue;
      }
      // This CTA's item and slice: the entry's items take consecutive ranks, `cluster` each; a
      // rank past an item's slices (a partial last cluster) or past the items idles.
      for (int i = work.entry_begin[e], offset = 0; i < work.entry_begin[e + 1]; ++i) {
        const DeviceItem& it = work.items[i];
        if (rank < offset + it.cluster) {
          if (rank - offset < it.slices) item = i, first_rank = offset;
          break;
        }
        offset += it.cluster;
      }
      if (item < 0) continue;  // idle this entry (no cluster barrier until the next (A))
    } else if (wg == 0) {
      item = pull_solo(work, solo_slot, k, wg_tid);
      if (item < 0) {
        solo_handoff();  // hands the consumers the end of the queue
        break;
      }
    } else {
      solo_handoff();
      item = solo_slot[k % kSoloSlots];
      if (item < 0) break;
    }
    const DeviceItem it = work.items[item];
    const int member = rank - first_rank;
    const int pack = work.slice_packs[it.slice_begin + member];
    const int first = args.query_begin[pack];
    const int queries = args.query_begin[pack + 1] - first;
    const int rows = queries * args.group;
    const int kv_len = args.kv_len[pack];
    const int tiles = (kv_len + N - 1) / N;
    if (wg == 0) {
      // A solo item's first kStages - 1 tiles go into the stages the last item's tiles free first,
      // before its hand-off: the producer is there before the consumers have finished the last
      // item (a full ring would wait for its last tile), and copies the rest after it.
      const int early = solo ? min(tiles, L::kStages - 1) : tiles;
      const uint16_t mask = static_cast<uint16_t>(((1u << it.slices) - 1u) << first_rank);
      const auto produce = [&](int tile_begin, int tile_end) {  // by the producer warp
        if (wg_tid < 32)
          produce_multicast<D, N>(&k_map, &v_map, args.blocks + args.block_begin[pack], args.geo, kv_len, it.kv_head,
                                  box_rows, k_s, v_s, full, empty, parity, member, it.slices, mask, stage_base,
                                  tile_begin, tile_end, wg_tid);
      };
      produce(0, early);
      if (solo) {
        solo_handoff();
        produce(early, tiles);
        stage_base = (stage_base + tiles) % L::kStages;
      }
      continue;
    }
    const int cg = wg - 1, lane = wg_tid % 32, warp = wg_tid / 32;
#ifdef PATLAB_CTA_TRACE
    // The item's record (tile m = its cluster size, n = its slice's rows, block = the item): from
    // here, its consumers' start, to its rows written; then the folded merge's (m = 0).
    const int trace_item = ctid == 0 ? trace_record_begin(args.trace, cta_trace_tag(it.cluster, rows), item) : -1;
#endif
    const int row0 = cg * kHopperGroupRows;
    const bool computes = row0 < rows;  // warpgroup 2 of a slice of at most 64 rows has none
    if (computes) gather_q_rows<T, D, M>(args, q_s, first, rows, it.kv_head, row0, wg_tid, 1 + cg);
    const T* q_wg = q_s + row0 * hopper::kPanelElems;
    const float scale = kLog2e * rsqrtf(static_cast<float>(D)) * args.k_scale;
    float o[D / 8][4] = {};
    SoftmaxRow<> row_state[2];
    const bool topper = member == 0 && cg == 0 && warp == 0;
    consume_range<T, D, M, N>(
        q_wg, k_s, v_s, kv_len, computes, scale, lane, row_state, o,
        [&](int tile) {
          const int s = (stage_base + tile) % L::kStages;
          wait_or_trap(&full[s], (parity >> s) & 1u);
          parity ^= 1u << s;
          const int valid = kv_len - tile * N;
          if (valid < N) zero_v_tail<D, N, kClusterConsumers>(v_s + s * L::kTileElems, valid, ctid);
          return s;
        },
        [&](int, int s) { release_stage(empty, s, first_rank, it.slices, topper, lane); });
    if (computes) {
#pragma unroll
      for (int i = 0; i < 2; ++i) {
        row_state[i].l += __shfl_xor_sync(0xffffffffu, row_state[i].l, 1);
        row_state[i].l += __shfl_xor_sync(0xffffffffu, row_state[i].l, 2);
      }
      write_rows<T, D>(args, first, rows, row0 + warp * kWarpRows, it.kv_head, lane, row_state, o);
    }
#ifdef PATLAB_CTA_TRACE
    named_barrier_sync(kAllConsumersBarrier, kConsumerThreads);  // every consumer's rows are written
    int trace_merge = -1;
    if (ctid == 0) {
      trace_record_end(args.trace, trace_item);
      if (work.fold) trace_merge = trace_record_begin(args.trace, cta_trace_tag(0, queries), item);
    }
#endif
    // Without the fold (ClusterMerge::kernel) the next item's hand-off or cluster barrier is the
    // consumers' next meeting: nothing of this item is read after its rows are written.
    if (work.fold) fold_merge<T, D>(args, work, first, queries, it.kv_head, ctid);
#ifdef PATLAB_CTA_TRACE
    named_barrier_sync(kAllConsumersBarrier, kConsumerThreads);  // every consumer warp's merges are done
    if (ctid == 0 && trace_merge >= 0) trace_record_end(args.trace, trace_merge);
#endif
    if (solo) stage_base = (stage_base + tiles) % L::kStages;
  }
  __syncthreads();  // every thread leaves together
}
// [cluster-kernel]

/// The kernel instance of a dispatch.
/// @tparam Tag the dispatch's TypeTag<T>: T = Tag::type, the storage type (__half or __nv_bfloat16)
/// @tparam Dim std::integral_constant<int, D>: the head dimension (64 or 128)
template <typename Tag, typename Dim>
auto cluster_instance() {
  return cluster_pack_kernel<typename Tag::type, Dim::value, kClusterKvTile>;
}

// [cluster-stage]
/// Plans like stage 8, groups the plan's packs and chooses their cluster sizes, orders the work
/// list (planner/cluster.hpp), and runs it as one persistent launch in clusters (then the merge
/// kernel, with gpu::ClusterMerge::kernel).
class ClusterStage final : public Stage {
 public:
  std::string unsupported(const Shape& shape) const override { return hopper_unsupported(shape, 9); }

  void prepare(const DeviceBatch& batch) override { prepare_planned(batch); }

  bool planner_options(const DeviceBatch& batch, PlannerOptions& options) const override {
    require_sm90(batch);
    options = hopper_planner_options(batch);
    // Every slice runs in the 128-row CTA: the wave fill and the cluster model count its slots
    // for every row class.
    options.ctas_per_sm.fill(std::max(configure(batch), 1));
    return true;
  }

  void prepare_with_plan(const DeviceBatch& batch, Plan plan) override {
    require_sm90(batch);
    shape_ = batch.shape;
    pool_blocks_ = batch.host->layout.num_blocks;
    PlannerOptions options;
    planner_options(batch, options);
    UploadOptions upload;
    upload.direct_output = true;
    upload.pack_kernel = false;
    upload.tile_policy = TilePolicy::hopper;
    plan_.upload(std::move(plan), batch, upload);
    clusters_ = choose_clusters(plan_.plan(), shape_, options);
    const WorkList list = make_work_list(plan_.plan(), clusters_, shape_);
    upload_work(list, batch.host->layout.num_requests());
    work_.fold = batch.cluster_merge == gpu::ClusterMerge::folded;
    cluster_ = list.launch_cluster;
    int seats = 0;  // clusters resident at once (cudaOccupancyMaxActiveClusters)
    dispatch_hopper_dims(shape_, [&](auto tag, auto dim) {
      const auto kernel = cluster_instance<decltype(tag), decltype(dim)>();
      using L = ClusterLayout<decltype(dim)::value>;
      seats = hopper::max_active_clusters(kernel, L::kThreads, ClusterSmem<decltype(dim)::value>::kBytes, cluster_);
    });
    if (seats < 1)
      throw Error(ErrorKind::unsupported, "stage 9: no cluster of " + std::to_string(cluster_) + " CTAs fits this GPU");
    // Enough clusters for the entries, or for the solo items one per CTA, at most the seats.
    const int64_t solo_clusters = (work_.solo_items + cluster_ - 1) / cluster_;
    grid_clusters_ = std::max<int64_t>(1, std::min<int64_t>(seats, std::max<int64_t>(work_.entries, solo_clusters)));
    set_pools(batch.k_pool, batch.v_pool);
  }

  void set_pools(const void* k_pool, const void* v_pool) override {
    plan_.set_pools(k_pool, v_pool);
    maps_.set(k_pool, v_pool, pool_blocks_, shape_);
  }

  void run(cudaStream_t stream) override {
    PATLAB_CUDA_CHECK(cudaMemsetAsync(work_.pulls, 0, 2 * sizeof(int), stream));
    dispatch_hopper_dims(shape_, [&](auto tag, auto dim) {
      using L = ClusterLayout<decltype(dim)::value>;
      hopper::launch_clusters(cluster_instance<decltype(tag), decltype(dim)>(), static_cast<int>(grid_clusters_) * cluster_,
                              L::kThreads, ClusterSmem<decltype(dim)::value>::kBytes, cluster_, stream,
                              plan_.kernel_args(), work_, maps_.k(), maps_.v(), maps_.box_rows());
    });
    if (!work_.fold) plan_.merge(stream);  // launches nothing when every query was written directly
  }

  /// The plan's bytes with each pack group's KV range read once per cluster.
  int64_t model_bytes() const override {
    return plan_.traffic_bytes() - (clusters_.kv_bytes_alone - clusters_.kv_bytes_clustered);
  }
  std::string notes() const override {
    int clustered = 0;
    for (const PackGroup& g : clusters_.groups) clustered += g.cluster > 1;
    return plan_.describe() + ", sm_90a persistent grid: " + std::to_string(grid_clusters_) + " clusters of " +
           std::to_string(cluster_) + " CTA" + (cluster_ == 1 ? "" : "s") + " pulling " + std::to_string(work_.entries) +
           " entries, then each CTA " + std::to_string(work_.solo_items) + " solo items, " + std::to_string(clustered) + " of " + std::to_string(clusters_.groups.size()) +
           " pack groups multicast, " + (work_.fold ? "merge folded in" : "merge kernel after the grid");
  }
  std::vector<DeviceSpan> workspace() const override { return plan_.partials(); }
  PartialSplit half_partial_split() const override { return plan_.half_partial_split(); }

 private:
  /// Raises the kernel's shared-memory limit (or refuses a device with too little) and returns
  /// the CTAs of it one SM holds (occupancy calculator).
  static int configure(const DeviceBatch& batch) {
    int ctas = 0;
    dispatch_hopper_dims(batch.shape, [&](auto tag, auto dim) {
      using L = ClusterLayout<decltype(dim)::value>;
      constexpr int kBytes = ClusterSmem<decltype(dim)::value>::kBytes;
      const auto kernel = cluster_instance<decltype(tag), decltype(dim)>();
      if (kBytes > batch.device->smem_per_block_optin)
        throw Error(ErrorKind::unsupported, "stage 9 needs " + std::to_string(kBytes) + " bytes of shared memory per CTA");
      set_kernel_smem(kernel, kBytes);
      PATLAB_CUDA_CHECK(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&ctas, kernel, L::kThreads, kBytes));
    });
    return ctas;
  }

  /// Flattens `list` for the kernel and zeroes the merge counters.
  void upload_work(const WorkList& list, int requests) {
    std::vector<int32_t> entry_begin(list.entry_begin.begin(), list.entry_begin.end());
    entry_begin.push_back(list.solo_begin);
    std::vector<DeviceItem> items;
    std::vector<int32_t> slice_packs;
    for (const WorkItem& w : list.items) {
      const PackGroup& g = clusters_.groups[static_cast<size_t>(w.group)];
      items.push_back({static_cast<int32_t>(slice_packs.size()), w.slices, w.kv_head, w.cluster});
      for (int32_t i = 0; i < w.slices; ++i) slice_packs.push_back(g.packs[static_cast<size_t>(w.first_slice + i)]);
    }
    entry_begin_ = DeviceBuffer<int32_t>(entry_begin);
    items_ = DeviceBuffer<DeviceItem>(items);
    slice_packs_ = DeviceBuffer<int32_t>(slice_packs);
    merge_count_ = DeviceBuffer<int32_t>(list.merge_count);
    merge_arrivals_ = DeviceBuffer<int>(
        std::vector<int>(static_cast<size_t>(requests) * static_cast<size_t>(shape_.num_kv_heads) * kConsumerWarps, 0));
    pulls_ = DeviceBuffer<int>(std::vector<int>(2, 0));
    work_.entry_begin = entry_begin_.get();
    work_.items = items_.get();
    work_.slice_packs = slice_packs_.get();
    work_.entries = static_cast<int>(list.entries());
    work_.solo_begin = list.solo_begin;
    work_.solo_items = static_cast<int>(list.solo_items());
    work_.pulls = pulls_.get();
    work_.merge_arrivals = merge_arrivals_.get();
    work_.merge_count = merge_count_.get();
    work_.partials = plan_.partials_view();
  }

  Shape shape_;
  int64_t pool_blocks_ = 0;
  DevicePlan plan_;
  ClusterPlan clusters_;
  DeviceBuffer<int32_t> entry_begin_, slice_packs_, merge_count_;
  DeviceBuffer<DeviceItem> items_;
  DeviceBuffer<int> merge_arrivals_, pulls_;
  ClusterWorkArgs work_;
  int cluster_ = 1;            ///< CTAs per cluster of the launch (WorkList::launch_cluster)
  int64_t grid_clusters_ = 0;  ///< clusters launched: min(seats, max(entries, solo items / cluster size)), at least 1
  PoolMaps maps_;
};
// [cluster-stage]

}  // namespace

/// Stage 9 `cluster` for the registry (stages.def): a ClusterStage (sm_90a, one persistent clustered launch).
std::unique_ptr<Stage> make_stage_cluster() { return std::make_unique<ClusterStage>(); }

}  // namespace patlab::cuda
