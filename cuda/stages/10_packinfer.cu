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
///    holds r (16, 32 or 64 rows, all with kGroupKvTile-token KV tiles), and the last KV tile of an
///    item overlaps the copy of the next item's first tile (pack_pipeline's prefetch), the next
///    item's Q tile after its math;
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
using packinfer::kGroupTileRows;

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
/// Bytes in a megabyte, for the notes.
constexpr double kMegabyte = 1e6;

// [group-smem]
/// Pointers into a group CTA's dynamic shared memory (packinfer::group_smem_bytes()): the pack
/// kernel's layout at kGroupTileRows x kGroupKvTile, then the park area.
/// @tparam T storage type of q (the 16-bit tiles the mma reads)
/// @tparam KV storage type of K and V
template <typename T, typename KV>
struct GroupSmem {
  T* q;         ///< the Q tile, kGroupTileRows x D
  KV* k;        ///< kKvStages K tiles of kGroupKvTile x D
  KV* v;        ///< kKvStages V tiles
  T* k16;       ///< fp8 KV, items of more than one warp row: the converted K tile
  T* v16;       ///< fp8 KV, items of more than one warp row: the converted V tile
  float* park;  ///< the warp-column merge's parked states, apart from the K/V tiles
};

/// The GroupSmem of a CTA at head dim D.
/// @tparam T storage type of q
/// @tparam KV storage type of K and V
/// @tparam D head dimension
template <typename T, typename KV, int D>
__device__ __forceinline__ GroupSmem<T, KV> group_smem(unsigned char* smem) {
  constexpr int N = kGroupKvTile;
  GroupSmem<T, KV> s;
  s.q = reinterpret_cast<T*>(smem);
  s.k = reinterpret_cast<KV*>(s.q + kGroupTileRows * D);
  s.v = s.k + kKvStages * N * D;
  s.k16 = reinterpret_cast<T*>(s.v + kKvStages * N * D);
  s.v16 = s.k16 + N * D;
  s.park = reinterpret_cast<float*>(smem + patlab::pack_smem_bytes(D, kGroupTileRows, N, sizeof(KV)));
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

/// Head dim from which the group kernel converts every item's fp8 tiles in a shared pass.
constexpr int kGroupFp8SharedHeadDim = 256;
/// Whether the group kernel converts an M-row item's fp8 tiles in registers: as the pack kernel
/// (kFp8InRegisters: 16-row items) below kGroupFp8SharedHeadDim; at d = 256 every item takes the
/// shared pass. There the 16-row register path needs the pack kernel's 252 registers, and inside the
/// group kernel (255 at most, one CTA of 8 warps per SM) it spilled: 134 local loads in its loop
/// (cuobjdump -sass, sm_90), 0.24-0.49 of the fp16 speed on the H200
/// (docs/results/2026-12-03-h200-loader-checks, run 2). The shared pass converts with all 8 warps,
/// also the 4 that a 16-row item leaves to copying.
/// @tparam KV storage type of K and V
/// @tparam D head dimension
/// @tparam M the item's row class
template <typename KV, int D, int M>
inline constexpr bool kGroupFp8InRegisters = kFp8InRegisters<KV, M> && D < kGroupFp8SharedHeadDim;

// [group-item]
/// One work item at row class M: the pack kernel's pipeline from KV buffer `stage0` (the item's
/// Q tile and first KV tile already issued), with `prefetch(stage)` at its last tile and `after()`
/// once its tiles are consumed, then the warp-column merge (in the park area) and the rows'
/// output or partials. Warps past PackWarpLayout<D, M, N>'s (the CTA has the most any row class
/// needs) only copy.
/// Not inlined: each row class gets its own register allocation. Inlined, the three classes in
/// one loop spilled (ptxas -v, sm_90: 108 bytes at d=128, 668 at d=256); apart, none spills at
/// d=64 and d=128, and the 32- and 64-row classes at d=256 spill 44 bytes (fp8: 64), near the
/// pack kernel's own 36 at d=256 64x64.
/// @tparam T storage type of q and the output
/// @tparam KV storage type of K and V
/// @tparam D head dimension
/// @tparam M the item's row class (16, 32 or 64), at least its rows
/// @tparam kThreads threads of the CTA
/// @tparam Prefetch callable as prefetch(int stage): issues the next item's first KV tile
/// @tparam After callable as after(): issues the next item's Q tile
template <typename T, typename KV, int D, int M, int kThreads, typename Prefetch, typename After>
__device__ __noinline__ void run_item(const PackKernelArgs& args, const GroupSmem<T, KV>& sm, int item, int stage0,
                                         const GroupLoader<KV, D, kThreads>& load, Prefetch&& prefetch, After&& after,
                                         int tid) {
  constexpr int N = kGroupKvTile;
  using Layout = PackWarpLayout<D, M, N>;
  static_assert(Layout::kThreads <= kThreads, "the CTA has the threads of every row class");
  static_assert(pack_tile_fits(D, M, N, static_cast<int>(sizeof(KV))), "every row class fits the budgets");
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
  // one ring for every row class: kKvStages stages, fp8 converted in registers by 16-row items
  // below d = 256 (kGroupFp8InRegisters), by the shared pass otherwise
  constexpr bool kFp8Registers = kGroupFp8InRegisters<KV, D, M>;
  pack_pipeline<T, KV, D, M, N, kThreads, kKvStages, kFp8Registers>(
      sm.q, sm.k, sm.v, sm.k16, sm.v16, load, stage0, args.kv_len[item], active, q_row, col0, scale, lane, tid,
      row_state, o, prefetch, [](auto&, int) {});
  after();
  if (merge_warp_columns<KV, D, M, N, Layout>(sm.park, active, q_row, col_warp, lane, row_state, o))
    write_rows<T, D, kFp8Registers>(args, first, rows, q_row, kv_head, lane, row_state, o);
}
// [group-item]

// [group-kernel]
/// One CTA per group: the items group_begin[blockIdx.x] .. group_begin[blockIdx.x + 1] of `args`
/// (each item a "pack" with its own KV head, args.pack_kv_head), one after the other. The first
/// item's Q tile and KV tile are issued up front; each item's last KV tile overlaps the copy of
/// the next item's first one, and the next Q tile is gathered as soon as the item's tiles are
/// consumed (while its rows are merged and written).
/// @tparam T storage type of q and the output (__half or __nv_bfloat16)
/// @tparam KV storage type of K and V: T, or __nv_fp8_e4m3
/// @tparam D head dimension (64, 128 or 256)
template <typename T, typename KV, int D>
__global__ void __launch_bounds__(packinfer::group_kernel_threads(D), packinfer::group_register_ctas(D))
    group_attention_kernel(PackKernelArgs args, const int32_t* __restrict__ group_begin) {
  constexpr int kThreads = packinfer::group_kernel_threads(D);
  static_assert(kRowsLarge == kGroupTileRows, "the largest row class is the Q tile's");
  extern __shared__ __align__(128) unsigned char smem[];
  const GroupSmem<T, KV> sm = group_smem<T, KV, D>(smem);
  const int tid = threadIdx.x;
  const int begin = group_begin[blockIdx.x], end = group_begin[blockIdx.x + 1];
  if (begin == end) return;
  auto rows_of = [&](int item) { return (args.query_begin[item + 1] - args.query_begin[item]) * args.group; };
  auto gather = [&](int item) {
    gather_q_tile<T, D, kGroupTileRows, kThreads>(args, sm.q, args.query_begin[item], rows_of(item),
                                                  args.pack_kv_head[item], tid);
  };
  gather(begin);
  item_loader<KV, D, kThreads>(args, sm.k, sm.v, begin, tid)(0, 0);
  cp_async_commit();  // the first item's Q tile and KV tile 0
  int stage0 = 0;
  for (int item = begin; item < end; ++item) {
    const bool has_next = item + 1 < end;
    const GroupLoader<KV, D, kThreads> load = item_loader<KV, D, kThreads>(args, sm.k, sm.v, item, tid);
    auto prefetch = [&](int stage) {  // the next item's loader is made here, live only at the last tile
      if (has_next) item_loader<KV, D, kThreads>(args, sm.k, sm.v, item + 1, tid)(stage, 0);
    };
    auto after = [&] {
      if (has_next) {
        gather(item + 1);
        cp_async_commit();
      }
    };
    const int rows = rows_of(item);
    if (rows <= kRowsSmall)
      run_item<T, KV, D, kRowsSmall, kThreads>(args, sm, item, stage0, load, prefetch, after, tid);
    else if (rows <= kRowsMid)
      run_item<T, KV, D, kRowsMid, kThreads>(args, sm, item, stage0, load, prefetch, after, tid);
    else
      run_item<T, KV, D, kRowsLarge, kThreads>(args, sm, item, stage0, load, prefetch, after, tid);
    stage0 = (stage0 + (args.kv_len[item] + kGroupKvTile - 1) / kGroupKvTile) % kKvStages;
  }
  cp_async_wait<0>();
}
// [group-kernel]

/// The group kernel instance of (T, KV, D) with its shared-memory limit raised; throws
/// Error(unsupported) when the device gives a CTA less than it needs. Returns the CTAs of it one
/// SM holds (the occupancy calculator).
/// @tparam T storage type of q
/// @tparam KV storage type of K and V
/// @tparam D head dimension
template <typename T, typename KV, int D>
int configure_group_kernel(int64_t smem_optin) {
  constexpr int bytes = packinfer::group_smem_bytes(D, static_cast<int>(sizeof(KV)));
  if (bytes > smem_optin)
    throw Error(ErrorKind::unsupported, "stage 10 needs " + std::to_string(bytes) + " bytes of shared memory per CTA at d=" +
                                            std::to_string(D) + ", the device gives " + std::to_string(smem_optin));
  set_kernel_smem(group_attention_kernel<T, KV, D>, bytes);
  int ctas = 0;
  PATLAB_CUDA_CHECK(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&ctas, group_attention_kernel<T, KV, D>,
                                                                  packinfer::group_kernel_threads(D), bytes));
  return ctas;
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
  dispatch_dtype_head_dim(shape_, [&](auto tag, auto dim) {
    occupancy_ = configure_group_kernel<typename decltype(tag)::type, typename decltype(tag)::kv_type, decltype(dim)::value>(
        batch.device->smem_per_block_optin);
  });

  // [packinfer-groups]
  // The groups of the host (stage_traffic() forms the same: the same SMs and CTAs per SM).
  packinfer::GroupOptions go;
  go.sms = sms_;
  go.ctas_per_sm = estimate_ = packinfer::estimate_group_ctas_per_sm(D, shape_.kv_element_bytes());
  groups_ = packinfer::make_groups(L, go);
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
  const packinfer::FlatGroups f = packinfer::flatten_groups(L, groups_, regions, kGroupTileRows);
  launched_ = static_cast<int>(f.group_begin.size()) - 1;
  items_ = f.items();
  region_slots_ = f.region_slots;
  // [packinfer-flatten]

  group_begin_ = DeviceBuffer<int32_t>(f.group_begin);
  packs_ = DevicePackArrays(HostPackArrays{f.query_begin, f.queries, f.slots, f.block_begin, f.paged_blocks, f.kv_len});
  region_blocks_ = DeviceBuffer<int32_t>(f.region_blocks);
  kv_head_ = DeviceBuffer<int32_t>(f.kv_head);
  offsets_ = DeviceBuffer<int32_t>(f.offsets);
  merge_queries_ = DeviceBuffer<int32_t>(f.merge_queries);
  merge_count_ = static_cast<int>(f.merge_queries.size());
  copies_ = DeviceBuffer<RelayoutCopy>(f.copies);
  const size_t slot_bytes = static_cast<size_t>(shape_.page_size) * D * shape_.kv_element_bytes();
  k_region_ = DeviceBuffer<uint8_t>(static_cast<size_t>(region_slots_) * slot_bytes);
  v_region_ = DeviceBuffer<uint8_t>(static_cast<size_t>(region_slots_) * slot_bytes);
  partial_o_ = DeviceBuffer<float>(static_cast<size_t>(f.offsets.back()) * shape_.num_q_heads * D);
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
    group_attention_kernel<T, KV, D><<<static_cast<unsigned>(launched_), packinfer::group_kernel_threads(D),
                                       packinfer::group_smem_bytes(D, static_cast<int>(sizeof(KV))), stream>>>(
        args, group_begin_.get());
    PATLAB_CUDA_CHECK_LAUNCH();
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
  std::string s = std::to_string(groups_.slots) + " groups (" + std::to_string(launched_) + " with work; " +
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
