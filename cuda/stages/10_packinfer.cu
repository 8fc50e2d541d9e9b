/// @file 10_packinfer.cu
/// @brief Stage 10, `packinfer`: PackInfer's execution groups on the GPU (issue 16). The host
/// forms the groups of packinfer/groups.hpp (PAT's packs at each KV head, cut and bin-packed into
/// one balanced group per CTA slot, items that read the same blocks co-located), copies each
/// group's blocks into one contiguous region (packinfer/layout.hpp; the re-layout kernel of
/// relayout.cuh), and group_attention_kernel runs one CTA per group over its work items, one after
/// the other, reading the regions.
///
/// What is new against stage 7:
///  - the CTA's unit of work is a *group*, a list of work items (a pack's rows at one KV head over
///    a run of its blocks) whose costs the host balanced: one wave of equal CTAs instead of packs
///    of very different lengths (no stragglers, no padding beyond a row class);
///  - an item of r rows runs the pack kernel's building blocks (packed_tile.cuh: gather_q_tile,
///    KvTileLoader, pack_pipeline, merge_warp_columns, write_rows) at the smallest row class that
///    holds r (16, 32 or 64 rows, all with kGroupKvTile-token KV tiles), draining the ring, whose
///    buffers then hold the merge's parked states, as in the pack kernel;
///  - the kernel has two instances, a 16-row one (PAT's packs cut to 16 rows: three CTAs per SM
///    at d = 128, as stage 7's 16x64 tile) and a 64-row one (two): the host forms both instances'
///    groups and runs the one whose last group ends first in the model (choose_group_instance());
///  - the K/V it reads lies in group-contiguous regions: an item's "block table" is a run of
///    adjacent region slots (one KV head's page each), the same KvTileLoader reading them with
///    one KV head per slot;
///  - a request covered by one item per KV head is written directly; the others write partials
///    (one slot per item) that the merge of merge.cuh combines, as in stages 3-8.
///
/// The re-layout runs at the first run() after prepare() or set_pools() (another layer's pools),
/// inside run(); a timed run after that reads the regions only. Its own time, the group kernel's
/// time on the paged pools and on the regions, and the steps after which the copy pays (N) are
/// measured when notes() is first asked (patlab bench asks once, before timing the stage).
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "patlab/cuda/buffer.cuh"
#include "patlab/cuda/check.cuh"
#include "patlab/cuda/dispatch.cuh"
#include "patlab/cuda/kernel_smem.cuh"
#include "patlab/cuda/merge.cuh"
#include "patlab/cuda/packed_tile.cuh"
#include "patlab/cuda/packed_tile_launch.cuh"
#include "patlab/cuda/relayout.cuh"
#include "patlab/cuda/stage.cuh"
#include "patlab/cuda/timing.cuh"
#include "patlab/error.hpp"
#include "patlab/packinfer/group_kernel.hpp"
#include "patlab/packinfer/groups.hpp"
#include "patlab/packinfer/layout.hpp"

namespace patlab::cuda {

namespace {

using packinfer::kGroupKvTile;
using packinfer::kGroupRowCaps;

/// Timed runs of each measurement notes() makes (the median is reported).
constexpr int kNotesTimings = 5;
/// Decode steps at which notes() states the re-layout's share of the step time (issue 16's target:
/// at most 5% of it by then).
constexpr int kAmortiseSteps = 16;
/// The row classes of the group kernel (kTileRowOptions as integral constants: device code
/// reads no host array).
constexpr int kRowsSmall = kTileRowOptions[0];
constexpr int kRowsMid = kTileRowOptions[1];
constexpr int kRowsLarge = kTileRowOptions[2];
/// The instances' row caps, as integral constants.
constexpr int kCapSmall = kGroupRowCaps[0];
constexpr int kCapLarge = kGroupRowCaps[1];
static_assert(kCapSmall == kRowsSmall && kCapLarge == kRowsLarge, "an instance's cap is a row class");
/// Bytes in a megabyte, for the notes.
constexpr double kMegabyte = 1e6;

/// K/V stages of the ring of the instance of row cap MC (packinfer::group_ring_stages()).
/// @tparam KV storage type of K and V
/// @tparam D head dimension
/// @tparam MC the instance's row cap
template <typename KV, int D, int MC>
inline constexpr int kGroupStages = packinfer::group_ring_stages(D, MC, static_cast<int>(sizeof(KV)));

// [group-smem]
/// Pointers into a group CTA's dynamic shared memory (packinfer::group_smem_bytes()): the Q tile
/// of MC rows, the ring of kGroupStages K and V tiles of kGroupKvTile x D, and the converted 16-bit
/// K and V tiles where an fp8 cache takes the shared pass. The warp-column merge parks in the ring
/// (`k` on), which the item has drained by then.
/// @tparam T storage type of q (the 16-bit tiles the mma reads)
/// @tparam KV storage type of K and V
template <typename T, typename KV>
struct GroupSmem {
  T* q;    ///< the Q tile, MC x D
  KV* k;   ///< the K tiles of the ring; from here on the parked states, after an item's tiles
  KV* v;   ///< the V tiles of the ring
  T* k16;  ///< fp8 KV, items converted in the shared pass: the converted K tile
  T* v16;  ///< fp8 KV, items converted in the shared pass: the converted V tile
};

/// The GroupSmem of a CTA of the instance of row cap MC at head dim D.
/// @tparam T storage type of q
/// @tparam KV storage type of K and V
/// @tparam D head dimension
/// @tparam MC the instance's row cap
template <typename T, typename KV, int D, int MC>
__device__ __forceinline__ GroupSmem<T, KV> group_smem(unsigned char* smem) {
  constexpr int N = kGroupKvTile;
  constexpr int kStages = kGroupStages<KV, D, MC>;
  GroupSmem<T, KV> s;
  s.q = reinterpret_cast<T*>(smem);
  s.k = reinterpret_cast<KV*>(s.q + MC * D);
  s.v = s.k + kStages * N * D;
  s.k16 = reinterpret_cast<T*>(s.v + kStages * N * D);
  s.v16 = s.k16 + N * D;
  return s;
}
// [group-smem]

/// The KV tile loader of the group kernel.
/// @tparam KV storage type of K and V
/// @tparam D head dimension
/// @tparam kThreads threads of the CTA
template <typename KV, int D, int kThreads>
using GroupLoader = KvTileLoader<KV, D, kGroupKvTile, kThreads>;

/// The loader of work item `item` (the item's entries of `args`, as a pack with its own KV head):
/// its blocks, its tokens, and its head within the pools it reads (its KV head in the paged
/// pools; 0 in the regions, whose slots hold one head each: geo.num_kv_heads is 1 there).
/// @tparam KV storage type of K and V
/// @tparam D head dimension
/// @tparam kThreads threads of the CTA, which all issue copies
template <typename KV, int D, int kThreads>
__device__ __forceinline__ GroupLoader<KV, D, kThreads> item_loader(const PackKernelArgs& args, KV* k_s, KV* v_s,
                                                                    int item, int tid) {
  const int pool_head = args.pack_kv_head[item] % args.geo.num_kv_heads;
  return GroupLoader<KV, D, kThreads>(static_cast<const KV*>(args.k_pool), static_cast<const KV*>(args.v_pool),
                                      args.blocks + args.block_begin[item], args.geo, pool_head, args.kv_len[item],
                                      k_s, v_s, tid);
}

// [group-item]
/// One work item at row class M in the instance of row cap MC: the pack kernel's pipeline over the
/// whole ring from buffer 0 (the item's Q tile and KV tile 0 already issued), drained, then the
/// warp-column merge parked in the ring and the rows' output or partials, as the pack kernel
/// does. Warps past PackWarpLayout<D, M, N>'s (the CTA has the most any row class needs) only copy.
/// fp8 K/V converts in registers where packinfer::group_fp8_in_registers() (16-row items below
/// d = 256), else in the shared pass into `k16`, `v16`.
/// @tparam T storage type of q and the output
/// @tparam KV storage type of K and V
/// @tparam D head dimension
/// @tparam M the item's row class (16, 32 or 64), at least its rows, at most MC
/// @tparam MC the instance's row cap
/// @tparam kThreads threads of the CTA
template <typename T, typename KV, int D, int M, int MC, int kThreads>
__device__ __forceinline__ void item_body(const PackKernelArgs& args, const GroupSmem<T, KV>& sm, int item,
                                          const GroupLoader<KV, D, kThreads>& load, int tid) {
  constexpr int N = kGroupKvTile;
  using Layout = PackWarpLayout<D, M, N>;
  static_assert(M <= MC, "an item's class is at most the instance's cap");
  static_assert(Layout::kThreads <= kThreads, "the CTA has the threads of every row class");
  static_assert(pack_tile_fits(D, M, N, static_cast<int>(sizeof(KV))), "every row class fits the budgets");
  static_assert(packinfer::group_instance_fits(D, MC, static_cast<int>(sizeof(KV))),
                "the parked states fit behind the Q tile");
  const int lane = tid % 32, warp = tid / 32;
  const int row_warp = warp % Layout::kRows, col_warp = warp / Layout::kRows;
  const int first = args.query_begin[item];
  const int rows = (args.query_begin[item + 1] - first) * args.group;
  const int kv_head = args.pack_kv_head[item];
  const bool active = warp < Layout::kWarps && row_warp * kWarpRows < rows;
  const int q_row = row_warp * kWarpRows;
  const int col0 = col_warp * Layout::kColTokens;
  const float scale = kLog2e * rsqrtf(static_cast<float>(D)) * args.k_scale;  // K's scale folded in
  float o[D / 8][4] = {};
  SoftmaxRow<> row_state[2];
  constexpr bool kFp8Registers = packinfer::group_fp8_in_registers(D, M, static_cast<int>(sizeof(KV)));
  pack_pipeline<T, KV, D, M, N, kThreads, kGroupStages<KV, D, MC>, kFp8Registers>(
      sm.q, sm.k, sm.v, sm.k16, sm.v16, load, 0, args.kv_len[item], active, q_row, col0, scale, lane, tid, row_state, o,
      [](int) {}, [](auto&, int) {});
  cp_async_wait<0>();
  if (merge_warp_columns<KV, D, M, N, Layout>(sm.k, active, q_row, col_warp, lane, row_state, o))
    write_rows<T, D, kFp8Registers>(args, first, rows, q_row, kv_head, lane, row_state, o);
}
// [group-item]

/// item_body() not inlined, so that each row class of the 64-row instance gets its own register
/// allocation: inlined, the three classes in one loop spilled (ptxas -v, sm_90: 108 bytes at
/// d=128, 668 at d=256). The 16-row instance has one class and inlines item_body() (a call costs
/// it registers under its cap of three CTAs per SM: 8 to 200 bytes of spills at d=128).
/// @tparam T storage type of q and the output
/// @tparam KV storage type of K and V
/// @tparam D head dimension
/// @tparam M the item's row class
/// @tparam MC the instance's row cap
/// @tparam kThreads threads of the CTA
template <typename T, typename KV, int D, int M, int MC, int kThreads>
__device__ __noinline__ void run_item(const PackKernelArgs& args, const GroupSmem<T, KV>& sm, int item,
                                      const GroupLoader<KV, D, kThreads>& load, int tid) {
  item_body<T, KV, D, M, MC, kThreads>(args, sm, item, load, tid);
}

// [group-kernel]
/// One CTA per group: the items group_begin[blockIdx.x] .. group_begin[blockIdx.x + 1] of `args`
/// (each item a "pack" with its own KV head, args.pack_kv_head, of at most MC rows), one after the
/// other: its Q tile and first KV tile issued, run_item at its row class, and a barrier before the
/// next item's copies overwrite the Q tile and the parked states.
/// @tparam T storage type of q and the output (__half or __nv_bfloat16)
/// @tparam KV storage type of K and V: T, or __nv_fp8_e4m3
/// @tparam D head dimension (64, 128 or 256)
/// @tparam MC the instance's row cap (kGroupRowCaps: 16 or 64)
template <typename T, typename KV, int D, int MC>
__global__ void __launch_bounds__(packinfer::group_kernel_threads(D, MC), packinfer::group_register_ctas(D, MC))
    group_attention_kernel(PackKernelArgs args, const int32_t* __restrict__ group_begin) {
  constexpr int kThreads = packinfer::group_kernel_threads(D, MC);
  extern __shared__ __align__(128) unsigned char smem[];
  const GroupSmem<T, KV> sm = group_smem<T, KV, D, MC>(smem);
  const int tid = threadIdx.x;
  const int begin = group_begin[blockIdx.x], end = group_begin[blockIdx.x + 1];
  for (int item = begin; item < end; ++item) {
    if (item > begin) __syncthreads();  // every warp is done with the last item's Q tile and parked states
    const int rows = (args.query_begin[item + 1] - args.query_begin[item]) * args.group;
    gather_q_tile<T, D, MC, kThreads>(args, sm.q, args.query_begin[item], rows, args.pack_kv_head[item], tid);
    const GroupLoader<KV, D, kThreads> load = item_loader<KV, D, kThreads>(args, sm.k, sm.v, item, tid);
    load(0, 0);
    cp_async_commit();  // the item's Q tile and KV tile 0
    if constexpr (MC == kRowsSmall)
      item_body<T, KV, D, kRowsSmall, MC, kThreads>(args, sm, item, load, tid);
    else if (rows <= kRowsSmall)
      run_item<T, KV, D, kRowsSmall, MC, kThreads>(args, sm, item, load, tid);
    else if (rows <= kRowsMid)
      run_item<T, KV, D, kRowsMid, MC, kThreads>(args, sm, item, load, tid);
    else
      run_item<T, KV, D, kRowsLarge, MC, kThreads>(args, sm, item, load, tid);
  }
}
// [group-kernel]

/// The group kernel instance (T, KV, D, MC) with its shared-memory limit raised; throws
/// Error(unsupported) when the device gives a CTA less than it needs. Returns the CTAs of it one
/// SM holds (the occupancy calculator).
/// @tparam T storage type of q
/// @tparam KV storage type of K and V
/// @tparam D head dimension
/// @tparam MC the instance's row cap
template <typename T, typename KV, int D, int MC>
int configure_group_kernel(int64_t smem_optin) {
  constexpr int bytes = packinfer::group_smem_bytes(D, MC, static_cast<int>(sizeof(KV)));
  if (bytes > smem_optin)
    throw Error(ErrorKind::unsupported, "stage 10 needs " + std::to_string(bytes) + " bytes of shared memory per CTA at d=" +
                                            std::to_string(D) + ", the device gives " + std::to_string(smem_optin));
  set_kernel_smem(group_attention_kernel<T, KV, D, MC>, bytes);
  int ctas = 0;
  PATLAB_CUDA_CHECK(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&ctas, group_attention_kernel<T, KV, D, MC>,
                                                                  packinfer::group_kernel_threads(D, MC), bytes));
  return ctas;
}

/// Calls f(std::integral_constant<int, MC>) for the instance of row cap `cap` (one of kGroupRowCaps).
/// @tparam F callable as f(cap): a std::integral_constant<int, MC>
template <typename F>
void dispatch_row_cap(int cap, F&& f) {
  if (cap == kCapSmall) f(std::integral_constant<int, kCapSmall>{});
  else f(std::integral_constant<int, kCapLarge>{});
}

/// "1.23" (two decimals).
std::string fixed2(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.2f", v);
  return buf;
}

// [packinfer-stage]
/// Forms the groups and the regions on the host, uploads the items (flattened as packs with their
/// own KV head), and runs: the re-layout when the regions are stale, the group kernel over the
/// regions, the merge.
class PackInferStage final : public Stage {
 public:
  void prepare(const DeviceBatch& batch) override;

  void set_pools(const void* k_pool, const void* v_pool) override {
    paged_.k_pool = relayout_.k_pool = k_pool;
    paged_.v_pool = relayout_.v_pool = v_pool;
    stale_ = true;  // the regions hold the other pools' K/V: copy again at the next run
  }

  void run(cudaStream_t stream) override {
    if (stale_) {
      launch_relayout(relayout_, sms_, stream);
      stale_ = false;
    }
    launch_groups(regions_, stream);
    merge(stream);
  }

  int64_t model_bytes() const override { return bytes_; }
  std::string notes() const override;
  std::vector<DeviceSpan> workspace() const override { return {partial_o_.span(), partial_lse_.span()}; }

 private:
  void launch_groups(const PackKernelArgs& args, cudaStream_t stream) const;
  void merge(cudaStream_t stream) const;
  /// Median microseconds of kNotesTimings runs of `launch` on the default stream (L2 not flushed).
  /// @tparam Launch callable as launch(): enqueues the work to time on the default stream
  template <typename Launch>
  double median_us(Launch&& launch) const;
  /// Downloads the output (batch.out) after a synchronise.
  std::vector<uint16_t> download_out() const;

  Shape shape_;
  int sms_ = 0;
  int occupancy_ = 0;         ///< group CTAs per SM by the occupancy calculator
  int estimate_ = 0;          ///< group CTAs per SM the groups were formed for (the host's estimate)
  int row_cap_ = 0;           ///< the instance's row cap (kGroupRowCaps), chosen by the host's model
  std::vector<double> instance_scores_;  ///< per instance: group_end_time() (choose_group_instance())
  int launched_ = 0;          ///< groups with work (one CTA each)
  int64_t items_ = 0;
  int64_t bytes_ = 0;         ///< group_plan_bytes(): one step's model bytes
  int64_t region_slots_ = 0;  ///< slots of the region pools (copied and tail)
  int64_t out_elems_ = 0;
  void* out_ = nullptr;
  packinfer::GroupPlan groups_;
  packinfer::Amortisation model_;  ///< the host's byte model of the re-layout and the two steps
  packinfer::Verdict verdict_;
  PackKernelArgs paged_;    ///< the items reading the paged pools
  PackKernelArgs regions_;  ///< the same items reading the regions
  RelayoutArgs relayout_;
  bool stale_ = true;  ///< the regions do not hold the current pools' K/V
  DevicePackArrays packs_;  ///< the items as packs, over the paged pools' blocks
  DeviceBuffer<int32_t> group_begin_, region_blocks_, kv_head_, offsets_, merge_queries_;
  DeviceBuffer<RelayoutCopy> copies_;
  DeviceBuffer<uint8_t> k_region_, v_region_;
  DeviceBuffer<float> partial_o_, partial_lse_;
  int merge_count_ = 0;
  mutable std::string timed_notes_;  ///< notes()'s measurements, made once
};

void PackInferStage::prepare(const DeviceBatch& batch) {
  const PagedLayout& L = batch.host->layout;
  shape_ = batch.shape;
  sms_ = batch.device->sm_count;
  const int D = shape_.head_dim;

  // [packinfer-groups]
  // The groups of the host (stage_traffic() forms the same: the same SMs, instance and CTAs per SM).
  packinfer::GroupOptions go;
  go.sms = sms_;
  packinfer::GroupChoice choice = packinfer::choose_group_instance(L, go, batch.group_rows);
  groups_ = std::move(choice.plan);
  instance_scores_ = choice.scores;
  row_cap_ = groups_.max_rows;
  go.ctas_per_sm = estimate_ = groups_.ctas_per_sm;
  dispatch_dtype_head_dim(shape_, [&](auto tag, auto dim) {
    dispatch_row_cap(row_cap_, [&](auto cap) {
      using T = typename decltype(tag)::type;
      using KV = typename decltype(tag)::kv_type;
      occupancy_ = configure_group_kernel<T, KV, decltype(dim)::value, decltype(cap)::value>(
          batch.device->smem_per_block_optin);
    });
  });
  const std::vector<std::string> faults = packinfer::validate_groups(L, groups_);
  if (!faults.empty()) throw std::logic_error("make_groups made invalid groups: " + faults.front());
  const std::vector<packinfer::GroupRegion> regions = packinfer::build_regions(L, groups_, packinfer::kDefaultReserveSteps);
  model_ = packinfer::amortise(L, groups_, regions);
  verdict_ = packinfer::decide(groups_.max_cost(), packinfer::stage7_makespan(L, groups_, go), model_, {});
  bytes_ = packinfer::group_plan_bytes(L, groups_);
  // [packinfer-groups]

  // [packinfer-flatten]
  // Items flattened as packs with their own KV head, each with its physical blocks and its
  // region slots; partial slots; the re-layout's copies (packinfer::flatten_groups, tested on
  // the host: both block lists give the same K/V).
  const packinfer::FlatGroups f = packinfer::flatten_groups(L, groups_, regions, row_cap_);
  launched_ = static_cast<int>(f.group_begin.size()) - 1;
  items_ = f.items();
  region_slots_ = f.region_slots;
  // [packinfer-flatten]

  group_begin_ = DeviceBuffer<int32_t>(f.group_begin);
  packs_ = DevicePackArrays(HostPackArrays{f.query_begin, f.queries, f.slots, f.block_begin, f.paged_blocks, f.kv_len, {}, {}});
  region_blocks_ = DeviceBuffer<int32_t>(f.region_blocks);
  kv_head_ = DeviceBuffer<int32_t>(f.kv_head);
  offsets_ = DeviceBuffer<int32_t>(f.offsets);
  merge_queries_ = DeviceBuffer<int32_t>(f.merge_queries);
  merge_count_ = static_cast<int>(f.merge_queries.size());
  copies_ = DeviceBuffer<RelayoutCopy>(f.copies);
  const size_t slot_bytes = static_cast<size_t>(shape_.page_size) * D * shape_.kv_element_bytes();
  k_region_ = DeviceBuffer<uint8_t>(static_cast<size_t>(region_slots_) * slot_bytes);
  v_region_ = DeviceBuffer<uint8_t>(static_cast<size_t>(region_slots_) * slot_bytes);
  partial_o_ = DeviceBuffer<float>(partial_o_floats(static_cast<size_t>(f.offsets.back()), shape_.num_q_heads, D, false));
  partial_lse_ = DeviceBuffer<float>(static_cast<size_t>(f.offsets.back()) * shape_.num_q_heads);
  out_ = batch.out;
  out_elems_ = int64_t{L.num_requests()} * shape_.num_q_heads * D;

  PackKernelArgs a;
  a.q = batch.q;
  a.k_scale = batch.k_scale;
  a.v_scale = batch.v_scale;
  a.out = batch.out;
  a.partial_o = partial_o_.get();
  a.partial_lse = partial_lse_.get();
  packs_.point(a);  // blocks: the paged pools' (regions_ replaces them below)
  a.pack_kv_head = kv_head_.get();
  a.group = shape_.group();
  a.num_q_heads = shape_.num_q_heads;
  paged_ = a;
  paged_.k_pool = batch.k_pool;
  paged_.v_pool = batch.v_pool;
  paged_.geo = pool_geometry(shape_);
  regions_ = a;
  regions_.k_pool = k_region_.get();
  regions_.v_pool = v_region_.get();
  regions_.blocks = region_blocks_.get();
  regions_.geo = PoolGeometry{paged_.geo.page_shift, 1};  // one KV head per slot
  relayout_.k_pool = batch.k_pool;
  relayout_.v_pool = batch.v_pool;
  relayout_.k_region = k_region_.get();
  relayout_.v_region = v_region_.get();
  relayout_.copies = copies_.get();
  relayout_.count = static_cast<int64_t>(f.copies.size());
  relayout_.page_shift = paged_.geo.page_shift;
  relayout_.num_kv_heads = shape_.num_kv_heads;
  relayout_.row_bytes = D * shape_.kv_element_bytes();
  stale_ = true;
  timed_notes_.clear();

  // [packinfer-self-check]
  // The two layouts hold the same K/V in the same order: the group kernel must give the same
  // bits on both (a difference is a wrong region map or a wrong copy).
  launch_groups(paged_, nullptr);
  merge(nullptr);
  const std::vector<uint16_t> on_pools = download_out();
  run(nullptr);
  if (download_out() != on_pools)
    throw std::logic_error("stage 10's group kernel gives different outputs on the paged pools and on the regions");
  // [packinfer-self-check]
}

void PackInferStage::launch_groups(const PackKernelArgs& args, cudaStream_t stream) const {
  if (launched_ == 0) return;
  dispatch_dtype_head_dim(shape_, [&](auto tag, auto dim) {
    using T = typename decltype(tag)::type;
    using KV = typename decltype(tag)::kv_type;
    constexpr int D = decltype(dim)::value;
    dispatch_row_cap(row_cap_, [&](auto cap) {
      constexpr int MC = decltype(cap)::value;
      constexpr int kSmem = packinfer::group_smem_bytes(D, MC, static_cast<int>(sizeof(KV)));
      group_attention_kernel<T, KV, D, MC>
          <<<static_cast<unsigned>(launched_), packinfer::group_kernel_threads(D, MC), kSmem, stream>>>(
              args, group_begin_.get());
      PATLAB_CUDA_CHECK_LAUNCH();
    });
  });
}

void PackInferStage::merge(cudaStream_t stream) const {
  const PartialsView view{partial_o_.get(), partial_lse_.get(), offsets_.get()};
  dispatch_dtype_head_dim(shape_, [&](auto tag, auto dim) {
    launch_merge<typename decltype(tag)::type, decltype(dim)::value>(view, merge_queries_.get(), merge_count_,
                                                                     shape_.num_q_heads, out_, stream);
  });
}

template <typename Launch>
double PackInferStage::median_us(Launch&& launch) const {
  cudaEvent_t start = nullptr, stop = nullptr;
  PATLAB_CUDA_CHECK(cudaEventCreate(&start));
  PATLAB_CUDA_CHECK(cudaEventCreate(&stop));
  gpu::TimingOptions o;
  o.warmup = 0;
  o.repeats = kNotesTimings;
  o.flush_l2 = false;
  const gpu::Timing t = time_launches(nullptr, start, stop, DeviceBuffer<uint8_t>(), o, launch);
  cudaEventDestroy(start);
  cudaEventDestroy(stop);
  return t.median_us;
}

std::vector<uint16_t> PackInferStage::download_out() const {
  PATLAB_CUDA_CHECK(cudaDeviceSynchronize());
  std::vector<uint16_t> host(static_cast<size_t>(out_elems_));
  PATLAB_CUDA_CHECK(cudaMemcpy(host.data(), out_, host.size() * sizeof(uint16_t), cudaMemcpyDeviceToHost));
  return host;
}

// [packinfer-notes]
std::string PackInferStage::notes() const {
  std::string s = std::to_string(groups_.slots) + " groups of the " + std::to_string(row_cap_) + "-row instance (" +
                  std::to_string(launched_) + " with work; " +
                  std::to_string(estimate_) + " CTAs/SM estimated, " + std::to_string(occupancy_) +
                  " by the occupancy calculator" + (occupancy_ < estimate_ ? ": more than one wave" : "") + "), " +
                  std::to_string(items_) + " work items (" + std::to_string(groups_.cuts) + " cuts, " +
                  std::to_string(groups_.families_colocated) + " families co-located, " +
                  std::to_string(groups_.families_spread) + " spread), group cost max/mean " +
                  fixed2(static_cast<double>(groups_.max_cost()) /
                         static_cast<double>(std::max<int64_t>(1, groups_.mean_cost))) +
                  "; regions " + std::to_string(region_slots_) + " slots, re-layout " +
                  fixed2(static_cast<double>(model_.copied_bytes) / kMegabyte) + " MB copied (" +
                  fixed2(static_cast<double>(model_.duplicate_bytes) / kMegabyte) + " MB duplicated)";
  s += "; instances (model end time, MB at a third of an SM):";
  for (size_t i = 0; i < instance_scores_.size(); ++i)
    s += (i ? "," : "") + std::string(" ") + std::to_string(kGroupRowCaps[i]) + " rows " +
         fixed2(static_cast<double>(instance_scores_[i]) / kMegabyte);
  if (timed_notes_.empty()) {
    // Measured once, here rather than in prepare() (bench's plan time stays the host's): each
    // after a warm-up, L2 not flushed (a batch over the L2 size streams from HBM anyway).
    const double relayout_us = median_us([&] { launch_relayout(relayout_, sms_, nullptr); });
    launch_groups(paged_, nullptr);
    const double paged_us = median_us([&] {
      launch_groups(paged_, nullptr);
      merge(nullptr);
    });
    const double region_us = median_us([&] {
      launch_groups(regions_, nullptr);
      merge(nullptr);
    });
    const double saving = paged_us - region_us;
    timed_notes_ = "; timed (median of " + std::to_string(kNotesTimings) + ", warm L2): re-layout " + fixed2(relayout_us) +
                   " us, step on the pools " + fixed2(paged_us) + " us, on the regions " + fixed2(region_us) + " us: " +
                   (saving > 0 ? "pays after " + std::to_string(static_cast<int64_t>(std::ceil(relayout_us / saving))) + " steps"
                               : std::string("never pays (the regions save nothing)")) +
                   ", at " + std::to_string(kAmortiseSteps) + " steps " +
                   fixed2(100.0 * relayout_us / (kAmortiseSteps * region_us)) + "% of the step time; model: " +
                   verdict_.groups_reason + "; " + verdict_.relayout_reason;
  }
  return s + timed_notes_;
}
// [packinfer-notes]
// [packinfer-stage]

}  // namespace

/// Stage 10 `packinfer` for the registry (stages.def): a PackInferStage.
std::unique_ptr<Stage> make_stage_packinfer() { return std::make_unique<PackInferStage>(); }

}  // namespace patlab::cuda
