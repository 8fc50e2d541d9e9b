/// @file hopper_tile.cuh
/// @brief The stage-8 pack kernel for sm_90a. One CTA per (pack, KV head) as in
/// packed_tile.cuh, but warp-specialised: a producer warpgroup whose first warp streams the
/// pack's K/V pages by tensor-map copies (hopper/tma.cuh) into a ring of hopper_stages(rows)
/// shared-memory stages tracked by mbarriers, and kConsumers consumer warpgroups of 64 rows each
/// that compute S = Q K^T and O += P V with wgmma (hopper/wgmma.cuh) and keep the online softmax
/// of their rows (softmax_state.cuh, through packed_tile.cuh's softmax_scores and rescale_rows).
///
/// Steps of one CTA:
///  1. setup: thread 0 initialises the full/empty mbarriers of the ring; the producer warpgroup
///     gives registers away (setmaxnreg.dec), the consumers take them (setmaxnreg.inc);
///  2. produce (one warp): per KV tile of N tokens, lane 0 waits for the stage to be empty and
///     announces its bytes (arrive_expect_tx), then each lane issues at most one of the copies, one
///     per (page box, 64-wide panel) of K and of V: coordinates (panel, KV head, row in page,
///     physical block); boxes past the range are not issued and their bytes not announced;
///  3. gather_q_rows (each consumer warpgroup, its 64 rows): cp.async into the 128-byte-swizzled
///     Panel128B layout, rows past the pack zero-filled, then the proxy fence;
///  4. consume_range (each consumer warpgroup): per tile, wait for the stage to be full (on
///     the last tile zero the V rows past the range: P is 0 there, but 0 x NaN of an unwritten
///     row is NaN); S = Q K^T, the softmax, O += P V, then release the stage (one arrive per
///     consumer warp);
///  5. write_rows of packed_tile.cuh: the same output / partial contract as the pack kernel.
/// The ring's stages hold hopper_kv_tile(rows) tokens: 128 for the 128-row CTA, 64 for the
/// others. A 192-row CTA has three consumer warpgroups at 160 registers each
/// (kTallConsumerRegs). What is left for later: fp8 K/V (wgmma e4m3 needs K-major V) and
/// d = 256 (register budget); FA3's ping-pong measured 1-3% slower here (docs/results/2026-12-06-turns).
#pragma once

#include <cuda.h>
#include <cuda_runtime.h>

#include <cmath>
#include <cstdint>
#include <type_traits>

#include "patlab/cuda/hopper/fence.cuh"
#include "patlab/cuda/hopper/grid_dependency.cuh"
#include "patlab/cuda/hopper/mbarrier.cuh"
#include "patlab/cuda/hopper/setmaxnreg.cuh"
#include "patlab/cuda/hopper/tma.cuh"
#include "patlab/cuda/hopper/wgmma.cuh"
#include "patlab/cuda/packed_tile.cuh"
#include "patlab/model/workload.hpp"
#include "patlab/planner/tile_budget.hpp"

namespace patlab::cuda {

/// Rows of one consumer warpgroup (the M of wgmma). The ring's depth (hopper_stages()), the
/// warpgroup's threads and the CTA's shared memory are in planner/tile_budget.hpp, which the
/// planner reads too.
inline constexpr int kHopperGroupRows = 64;
/// Registers per thread the consumers of a 64- or 128-row CTA take (setmaxnreg.inc): the 64 x d/2
/// output accumulator, the scores and P fragments, the softmax state.
inline constexpr int kConsumerRegs = 232;
/// Registers per thread of the three consumer warpgroups of a 192-row CTA: 512 threads share the
/// SM's 64K registers, so 24 for the producer leave (65536 - 128 x 24) / 384 = 162, rounded down
/// to setmaxnreg's multiple of 8. Enough for consume_range at d = 128 (no spills, ptxas -v).
inline constexpr int kTallConsumerRegs = 160;
/// Named barrier ids: 0 is __syncthreads; 1 + g: consumer warpgroup g; kAllConsumersBarrier: all.
inline constexpr int kAllConsumersBarrier = 8;

// [hopper-layout]
/// Shapes and shared memory of a stage-8 CTA: Q tile [D/64][M][64], then kStages K tiles
/// and kStages V tiles [D/64][N][64] (Panel128B, each 1024-byte aligned), then the
/// barriers: hopper_smem_bytes() of tile_budget.hpp, which the planner reads.
/// @tparam D head dimension (64 or 128)
/// @tparam kConsumers consumer warpgroups (1, 2 or 3): M = 64 x kConsumers rows
/// @tparam N KV tokens per tile: hopper_kv_tile(64 x kConsumers) (stage 8), kClusterKvTile (stage 9)
template <int D, int kConsumers, int N>
struct HopperLayout {
  static_assert(kConsumers >= 1 && kConsumers <= 3, "64-, 128- and 192-row tiles");
  /// Rows of the Q tile (M): 64 per consumer warpgroup, so 64, 128 or 192.
  static constexpr int kRows = kHopperGroupRows * kConsumers;
  /// Threads of the CTA: the producer warpgroup and the kConsumers consumer warpgroups.
  static constexpr int kThreads = kWarpgroupThreads * (1 + kConsumers);
  /// KV tokens per tile (N).
  static constexpr int kKvTile = N;
  /// Elements of one K or V tile: N tokens x D.
  static constexpr int kTileElems = N * D;
  /// Stages of the K/V ring (tile_budget.hpp).
  static constexpr int kStages = hopper_stages(kRows);
  /// CTAs per SM the instance is compiled for (__launch_bounds__): two of one consumer (so a
  /// 64-row CTA's registers at entry are 128 per thread), one of two or three.
  static constexpr int kMinBlocks = kConsumers == 1 ? 2 : 1;
  /// Registers per thread of each consumer (setmaxnreg.inc).
  static constexpr int kRegsPerConsumer = kConsumers == 3 ? kTallConsumerRegs : kConsumerRegs;
  /// Registers per thread the producer keeps (setmaxnreg.dec), so that its warpgroup and the
  /// consumers at kRegsPerConsumer fit the CTA's share of the SM's 64K registers.
  static constexpr int kProducerRegs = kConsumers == 2 ? 40 : 24;
  static_assert(kProducerRegs * kWarpgroupThreads + kRegsPerConsumer * kWarpgroupThreads * kConsumers <=
                    65536 / kMinBlocks,
                "the registers the warpgroups hold after setmaxnreg fit the CTA's share of the SM");
  /// Elements of the Q tile: kRows x D.
  static constexpr int kQElems = kRows * D;
  /// Dynamic shared memory, alignment slack included.
  static constexpr int kSmemBytes = hopper_smem_bytes(D, kRows, N);
  static_assert(kSmemBytes <= kPackSmemBudget, "the Q tile and the ring fit one CTA's shared memory");
  static_assert(N == hopper_kv_tile(kRows) || N == kClusterKvTile, "the tiles the planner's budget counts");
  static_assert(sizeof(hopper::Mbarrier) == kMbarrierBytes, "the budget's barrier size");
  static_assert(kThreads == hopper_threads(kRows), "the budget's thread count");
  static_assert(D % hopper::kPanelElems == 0 && N % 16 == 0, "whole panels and whole k16 steps");
};
// [hopper-layout]

// [hopper-smem]
/// Where the parts of a stage-8 layout `L` lie in a CTA's dynamic shared memory.
/// @tparam T storage type of q, K, V and the output (__half or __nv_bfloat16)
/// @tparam L the CTA's HopperLayout<D, kConsumers, N>
template <typename T, typename L>
struct HopperSmem {
  T* q = nullptr;                      ///< the Q tile, L::kQElems
  uint16_t* k = nullptr;               ///< L::kStages K tiles of L::kTileElems
  uint16_t* v = nullptr;               ///< L::kStages V tiles
  hopper::Mbarrier* full = nullptr;    ///< L::kStages: a stage's copies landed
  hopper::Mbarrier* empty = nullptr;   ///< L::kStages: a stage's consumers are done with it
  /// The first byte after the barriers (stage 9 keeps its own few words there).
  __device__ unsigned char* end() const { return reinterpret_cast<unsigned char*>(empty + L::kStages); }
};

/// Carves `smem_raw` (the kernel's dynamic shared memory) into HopperSmem. The swizzle of the
/// copies and of wgmma's descriptors follows address bits: the tiles start on the next
/// 1024-byte atom (kHopperAlignSlack covers the skip).
/// @tparam T storage type of q, K, V and the output (__half or __nv_bfloat16)
/// @tparam L the CTA's HopperLayout<D, kConsumers, N>
template <typename T, typename L>
__device__ __forceinline__ HopperSmem<T, L> carve_hopper_smem(unsigned char* smem_raw) {
  const uint32_t misalign = smem_u32(smem_raw) % hopper::kSwizzleAtomBytes;
  unsigned char* smem = smem_raw + (misalign ? hopper::kSwizzleAtomBytes - misalign : 0);
  HopperSmem<T, L> m;
  m.q = reinterpret_cast<T*>(smem);
  m.k = reinterpret_cast<uint16_t*>(m.q + L::kQElems);
  m.v = m.k + L::kStages * L::kTileElems;
  m.full = reinterpret_cast<hopper::Mbarrier*>(m.v + L::kStages * L::kTileElems);
  m.empty = m.full + L::kStages;
  return m;
}
// [hopper-smem]

/// `bar.sync id, threads`: a barrier among `threads` threads (a multiple of 32) only.
__device__ __forceinline__ void named_barrier_sync(int id, int threads) {
  asm volatile("bar.sync %0, %1;\n" ::"r"(id), "r"(threads) : "memory");
}

/// `barrier.sync id, threads` without `.aligned`: as named_barrier_sync, for warps that reach the
/// barrier from different instructions (`bar.sync` is `barrier.sync.aligned`, which requires one
/// instruction for all; synccheck reports a "divergent thread(s)" error otherwise).
__device__ __forceinline__ void named_barrier_sync_unaligned(int id, int threads) {
  asm volatile("barrier.sync %0, %1;\n" ::"r"(id), "r"(threads) : "memory");
}

// [hopper-tile-copies]
/// Copies of one N-token tile at most: a K and a V copy per (page box, 64-wide panel), pages of
/// kSupportedPageSizes[0] = 16 tokens or more.
/// @tparam D head dimension (64 or 128; 256 for stage 8's 16-row kernel)
/// @tparam N KV tokens per tile
template <int D, int N>
inline constexpr int kTileCopies = 2 * (N / kSupportedPageSizes[0]) * (D / hopper::kPanelElems);

/// Step 2 for one tile, by the producer warp: lane b < boxes loads the physical block of page box
/// b (the loads of the tile in flight together), lane 0 waits until the stage is free
/// (`wait_free()`) and announces the tile's bytes on `full`, then each lane issues at most one
/// copy: box member + members x (lane / (2 kPanels)), panel (lane / 2) % kPanels, K or V by
/// lane % 2, into the CTAs of `mask` (members > 1: stage 9's multicast; a lone CTA copies without
/// it). A panel is 128 bytes of a row: 64 16-bit values, or 128 of an fp8 cache (stage 8's
/// 16-row kernel, tma_pack_tile.cuh), whose map the caller made for that size. With `full_v`, the
/// V copies complete on that barrier and the K copies alone on `full`. `valid` tokens of
/// the tile lie in the range; boxes past them are not issued and their bytes not announced. One
/// thread issued the tile's copies one after another until 2026-12-04; a copy's `asm volatile` is
/// a compiler memory barrier, so a block-table load between two copies would wait for the first.
/// @tparam D head dimension (64 or 128; 256 for stage 8's 16-row kernel)
/// @tparam N KV tokens per tile
/// @tparam kElemBytes bytes per K/V value: 2, or 1 for an fp8 cache
/// @tparam WaitFree callable as `wait_free()`: returns once the stage may be overwritten
template <int D, int N, int kElemBytes = 2, typename WaitFree>
__device__ __forceinline__ void issue_tile_copies(const CUtensorMap* k_map, const CUtensorMap* v_map,
                                                  const int32_t* blocks, const PoolGeometry& geo, int first, int valid,
                                                  int kv_head, int box_rows, void* ks, void* vs,
                                                  hopper::Mbarrier* full, int lane, int member, int members,
                                                  uint16_t mask, WaitFree&& wait_free,
                                                  hopper::Mbarrier* full_v = nullptr) {
  constexpr int kPanelValues = hopper::kMapRowBytes / kElemBytes;
  constexpr int kPanels = D / kPanelValues;
  static_assert(D % kPanelValues == 0, "rows of whole 128-byte panels");
  static_assert(kTileCopies<D, N> <= 32, "one copy per lane of the producer warp");
  const int boxes = (valid + box_rows - 1) / box_rows;
  const int block = lane < boxes ? __ldg(blocks + ((first + lane * box_rows) >> geo.page_shift)) : 0;
  if (lane == 0) {
    wait_free();
    const auto tensor_bytes = static_cast<uint32_t>(boxes * kPanels * hopper::pool_box_bytes(box_rows));
    hopper::arrive_expect_tx(full, full_v ? tensor_bytes : 2 * tensor_bytes);
    if (full_v) hopper::arrive_expect_tx(full_v, tensor_bytes);
  }
  __syncwarp();  // the stage is free before any lane's copy lands in it
  const int b = member + (lane / (2 * kPanels)) * members;
  const int box_block = __shfl_sync(0xffffffffu, block, b < boxes ? b : 0);
  if (b >= boxes) return;
  const int p = (lane / 2) % kPanels;
  const int row = (first + b * box_rows) & ((1 << geo.page_shift) - 1);
  const int dst = (p * N + b * box_rows) * hopper::kMapRowBytes;
  unsigned char* to = static_cast<unsigned char*>(lane % 2 ? vs : ks) + dst;
  const CUtensorMap* map = lane % 2 ? v_map : k_map;
  hopper::Mbarrier* bar = lane % 2 && full_v ? full_v : full;
  if (members == 1)
    hopper::tma_load_4d(to, map, p * kPanelValues, kv_head, row, box_block, bar);
  else
    hopper::tma_load_4d_multicast(to, map, p * kPanelValues, kv_head, row, box_block, bar, mask);
}
// [hopper-tile-copies]

// [hopper-produce]
/// Step 2, the producer warp (`lane` 0-31): streams the pack's KV range, tile by tile, into the
/// ring (issue_tile_copies()). `box_rows` tokens per copy (min(page, N)); each copy is one
/// 64-wide panel of one page box.
/// @tparam D head dimension (64 or 128)
/// @tparam N KV tokens per tile
/// @tparam kStages stages of the ring
template <int D, int N, int kStages>
__device__ __forceinline__ void produce_kv(const CUtensorMap* k_map, const CUtensorMap* v_map, const int32_t* blocks,
                                           const PoolGeometry& geo, int kv_len, int kv_head, int box_rows,
                                           uint16_t* k_s, uint16_t* v_s, hopper::Mbarrier* full,
                                           hopper::Mbarrier* empty, int lane) {
  const int num_tiles = (kv_len + N - 1) / N;
  hopper::RingPosition<kStages> pos;
  for (int tile = 0; tile < num_tiles; ++tile, pos.advance()) {
    const int first = tile * N;
    issue_tile_copies<D, N>(k_map, v_map, blocks, geo, first, min(N, kv_len - first), kv_head, box_rows,
                            k_s + pos.stage * N * D, v_s + pos.stage * N * D, &full[pos.stage], lane, 0, 1, 0,
                            [&] { hopper::wait_parity(&empty[pos.stage], pos.phase ^ 1u); });
  }
}
// [hopper-produce]

// [hopper-q-gather]
/// Step 3: one consumer warpgroup gathers its 64 rows (from tile row `row0`) of the Q tile
/// into Panel128B (`q_s` is the whole M-row tile), rows past `rows` zero-filled; then the
/// proxy fence and the warpgroup's barrier, so that wgmma may read it.
/// @tparam T storage type of q, K, V and the output (__half or __nv_bfloat16)
/// @tparam D head dimension (64 or 128)
/// @tparam M rows of the whole Q tile (64 x kConsumers: 64, 128 or 192)
template <typename T, int D, int M>
__device__ __forceinline__ void gather_q_rows(const PackKernelArgs& args, T* q_s, int first, int rows, int kv_head,
                                              int row0, int wg_tid, int barrier_id) {
  constexpr int kChunks = D / kChunkElems;
  const T* q = static_cast<const T*>(args.q);
  const int g = args.group;
  for (int c = wg_tid; c < kHopperGroupRows * kChunks; c += kWarpgroupThreads) {
    const int r = row0 + c / kChunks, ch = c % kChunks;
    const bool valid = r < rows;
    const T* src = q;
    if (valid) {
      const int request = args.queries[first + r / g];
      src = q + (static_cast<int64_t>(request) * args.num_q_heads + kv_head * g + r % g) * D + ch * kChunkElems;
    }
    cp_async_16(q_s + hopper::panel_offset(M, r, ch * kChunkElems), src, valid);
  }
  cp_async_commit();
  cp_async_wait<0>();
  hopper::fence_proxy_async_shared();
  named_barrier_sync(barrier_id, kWarpgroupThreads);
}
// [hopper-q-gather]

// [hopper-tail]
/// Step 4a, last tile only: the consumer threads zero V's rows [valid, N) of the stage (never
/// written by a copy, or holding tokens past the range), fence them for wgmma and wait for
/// each other.
/// @tparam D head dimension (64 or 128)
/// @tparam N KV tokens per tile
/// @tparam kConsumers consumer warpgroups (1, 2 or 3): the threads that share the zeroing and meet at the barrier
template <int D, int N, int kConsumers>
__device__ __forceinline__ void zero_v_tail(uint16_t* vs, int valid, int consumer_tid) {
  for (int e = consumer_tid; e < (N - valid) * D; e += kConsumers * kWarpgroupThreads) {
    const int r = valid + e / D, col = e % D;
    vs[hopper::panel_offset(N, r, col)] = 0;
  }
  hopper::fence_proxy_async_shared();
  // reached from a branch inside consume_range's loop (the last tile only): a barrier without
  // `.aligned` does not need the warps to meet at one instruction
  named_barrier_sync_unaligned(kAllConsumersBarrier, kConsumers * kWarpgroupThreads);
}
// [hopper-tail]

// [hopper-consume]
/// Step 4b, one piece: issues S = Q K^T of one K tile (D/16 wgmma, B K-major) for a consumer
/// warpgroup's 64 rows, without waiting.
/// @tparam T storage type of q, K, V and the output (__half or __nv_bfloat16)
/// @tparam D head dimension (64 or 128)
/// @tparam M rows of the whole Q tile (64 x kConsumers: 64, 128 or 192)
/// @tparam N KV tokens per tile
template <typename T, int D, int M, int N>
__device__ __forceinline__ void issue_qk(const T* q_wg, const T* ks, float (&s_flat)[N / 2]) {
#pragma unroll
  for (int kk = 0; kk < D / 16; ++kk)
    hopper::wgmma_ss<T, N, hopper::Major::K>(s_flat, hopper::desc_k_major(q_wg, M, kk),
                                             hopper::desc_k_major(ks, N, kk), kk > 0);
}

/// Step 4b, the other piece: issues O += P V of one V tile (N/16 wgmma, P from registers, B =
/// V MN-major), without waiting.
/// @tparam T storage type of q, K, V and the output (__half or __nv_bfloat16)
/// @tparam D head dimension (64 or 128)
/// @tparam N KV tokens per tile
template <typename T, int D, int N>
__device__ __forceinline__ void issue_pv(uint32_t (&p)[N / 16][4], const T* vs, float (&o_flat)[D / 2]) {
#pragma unroll
  for (int kt = 0; kt < N / 16; ++kt)
    hopper::wgmma_rs<T, D, hopper::Major::MN>(o_flat, p[kt], hopper::desc_mn_major(vs, N, kt), true);
}

/// Step 4b: tile `stage` of a ring of N x D tiles (K or V) as the storage type.
/// @tparam T storage type of q, K, V and the output (__half or __nv_bfloat16)
/// @tparam D head dimension (64 or 128)
/// @tparam N KV tokens per tile
template <typename T, int D, int N>
__device__ __forceinline__ const T* ring_tile(const uint16_t* ring, int stage) {
  return reinterpret_cast<const T*>(ring + stage * N * D);
}

/// Step 4b, the conversion between them: P (the softmax's exponentials in the accumulator layout
/// of S) to A fragments of the storage type, one k16 step of tokens per row of `p`.
/// @tparam T storage type of q, K, V and the output (__half or __nv_bfloat16)
/// @tparam N KV tokens per tile
template <typename T, int N>
__device__ __forceinline__ void scores_to_a(const float (&s)[N / 8][4], uint32_t (&p)[N / 16][4]) {
#pragma unroll
  for (int kt = 0; kt < N / 16; ++kt) {
    p[kt][0] = pack2(s[2 * kt][0], s[2 * kt][1], T{});
    p[kt][1] = pack2(s[2 * kt][2], s[2 * kt][3], T{});
    p[kt][2] = pack2(s[2 * kt + 1][0], s[2 * kt + 1][1], T{});
    p[kt][3] = pack2(s[2 * kt + 1][2], s[2 * kt + 1][3], T{});
  }
}

/// Step 4b, the softmax: packed_tile.cuh's softmax_max and softmax_weight, with the weights
/// going straight into `p` (A fragments for the P V) and the rows' sums; S is only read.
/// @tparam T storage type of q, K, V and the output (__half or __nv_bfloat16)
/// @tparam N KV tokens per tile
template <typename T, int N>
__device__ __forceinline__ void softmax_to_a(const float (&s)[N / 8][4], int first_token, int kv_len, float scale,
                                             int lane, SoftmaxRow<> (&row_state)[2], float (&alpha)[2],
                                             uint32_t (&p)[N / 16][4]) {
  float neg_m[2];
  const bool partial = softmax_max<N, true>(s, first_token, kv_len, scale, lane, row_state, alpha, neg_m);
  float w[N / 8][4];
#pragma unroll
  for (int nt = 0; nt < N / 8; ++nt) {
#pragma unroll
    for (int e = 0; e < 4; ++e) {
      w[nt][e] = softmax_weight(range_score<N>(s, nt, e, partial, first_token, kv_len, lane), scale, neg_m[e / 2]);
      row_state[e / 2].l += w[nt][e];
    }
  }
  scores_to_a<T, N>(w, p);
}

/// The scores hook of consume_range that does nothing (every plain instance; stage 8's leaf
/// tails pass mask_tails).
struct NoScoreMask {
  /// Leaves `s` as it is.
  /// @tparam S the scores' array type
  template <typename S>
  __device__ __forceinline__ void operator()(S&, int) const {}
};

/// Step 4b: one consumer warpgroup over the pack's KV tiles, one stage at a time: per tile,
/// S = Q K^T, wait, the softmax (softmax_to_a), O += P V, wait, release. With two consumer
/// warpgroups the tensor pipe still overlaps with the softmax: while one warpgroup runs its
/// softmax, the other's GEMMs run. A consumer that held two stages (S_i issued with P_{i-1}
/// V_{i-1}, tile i's softmax under the P V) measured 1-4% faster on 64-token stages and was
/// removed when 128-token stages with this consumer measured faster still (tutorial chapter 17);
/// in stage 9's clusters, where a stage is refilled only when every CTA released it, it was up
/// to 2x slower.
/// `computes`: false for a warpgroup with no rows of the slice (stage 9), which acquires and
/// releases every tile and computes nothing. `s` and `o` are the warp's 16 rows in the C layout
/// of mma.m16n8k16 per n8 block, which is wgmma's accumulator layout too (wgmma.cuh).
/// @tparam T storage type of q, K, V and the output (__half or __nv_bfloat16)
/// @tparam D head dimension (64 or 128)
/// @tparam M rows of the whole Q tile (64 x kConsumers: 64, 128 or 192)
/// @tparam N KV tokens per tile
/// @tparam Acquire callable as `int acquire(int tile)`: waits until the tile's stage is full
///         (and zeroes its V rows past the range, zero_v_tail) and returns the stage
/// @tparam Release callable as `release(int tile, int stage)`: gives the stage back
/// @tparam MaskScores callable as `mask_scores(float (&s)[N / 8][4], int token0)`: sees each tile's
///         scores before the softmax (token0: the range token of s[0]; leaf tails mask there,
///         NoScoreMask does nothing)
template <typename T, int D, int M, int N, typename Acquire, typename Release, typename MaskScores = NoScoreMask>
__device__ __forceinline__ void consume_range(const T* q_wg, const uint16_t* k_s, const uint16_t* v_s, int kv_len,
                                              bool computes, float scale, int lane, SoftmaxRow<> (&row_state)[2],
                                              float (&o)[D / 8][4], Acquire&& acquire, Release&& release,
                                              MaskScores&& mask_scores = MaskScores{}) {
  const int num_tiles = (kv_len + N - 1) / N;
  float s[N / 8][4];
  uint32_t p[N / 16][4];
  float(&s_flat)[N / 2] = *reinterpret_cast<float(*)[N / 2]>(&s[0][0]);
  float(&o_flat)[D / 2] = *reinterpret_cast<float(*)[D / 2]>(&o[0][0]);
  for (int tile = 0; tile < num_tiles; ++tile) {
    const int stage = acquire(tile);
    if (computes) {
      hopper::fence_operands(s_flat);
      hopper::wgmma_fence();
      issue_qk<T, D, M, N>(q_wg, ring_tile<T, D, N>(k_s, stage), s_flat);
      hopper::wgmma_commit();
      hopper::wgmma_wait<0>();
      hopper::fence_operands(s_flat);
      mask_scores(s, tile * N);
      float alpha[2];
      softmax_to_a<T, N>(s, tile * N, kv_len, scale, lane, row_state, alpha, p);
      rescale_rows<D>(o, alpha);
      hopper::fence_operands(o_flat);
      hopper::wgmma_fence();
      issue_pv<T, D, N>(p, ring_tile<T, D, N>(v_s, stage), o_flat);
      hopper::wgmma_commit();
      hopper::wgmma_wait<0>();
      hopper::fence_operands(o_flat);
    }
    release(tile, stage);
  }
}
// [hopper-consume]

// [hopper-kernel]
/// The stage-8 kernel: one CTA per (pack, KV head), flat grid with KV heads fastest (as
/// pack_attention_kernel), warpgroup 0 produces, warpgroups 1..kConsumers consume.
/// @tparam T storage type of q, K, V and the output (__half or __nv_bfloat16)
/// @tparam D head dimension (64 or 128)
/// @tparam kConsumers consumer warpgroups (1: 64-row tiles, 2: 128-row tiles, 3: 192-row tiles)
/// @tparam N KV tokens per tile
/// @tparam kTails true: the tails instances of stage 8's leaf tails (PlannerOptions::take_leaves),
///         which apply PackKernelArgs::own_len and entry_tail (mask_tails) to each tile's scores
template <typename T, int D, int kConsumers, int N, bool kTails = false>
__global__ void __launch_bounds__(HopperLayout<D, kConsumers, N>::kThreads, HopperLayout<D, kConsumers, N>::kMinBlocks)
    hopper_pack_kernel(PackKernelArgs args, const int32_t* __restrict__ bucket,
                       const __grid_constant__ CUtensorMap k_map, const __grid_constant__ CUtensorMap v_map,
                       int box_rows) {
  using L = HopperLayout<D, kConsumers, N>;
  constexpr int M = L::kRows;
  extern __shared__ __align__(128) unsigned char smem_raw[];
  const HopperSmem<T, L> sm = carve_hopper_smem<T, L>(smem_raw);
  T* q_s = sm.q;
  uint16_t *k_s = sm.k, *v_s = sm.v;
  hopper::Mbarrier *full = sm.full, *empty = sm.empty;
  hopper::allow_dependents();  // as the pack kernel: a chained bucket may begin once every CTA here has begun

  const int hkv = args.geo.num_kv_heads;
  const int pack = bucket[blockIdx.x / hkv], kv_head = static_cast<int>(blockIdx.x % hkv);
  const int first = args.query_begin[pack];
  const int rows = (args.query_begin[pack + 1] - first) * args.group;
  const int kv_len = args.kv_len[pack];
  const int wg = threadIdx.x / kWarpgroupThreads, wg_tid = threadIdx.x % kWarpgroupThreads;
#ifdef PATLAB_CTA_TRACE
  const int trace_record = cta_trace_begin(args.trace, cta_trace_tag(M, N));
#endif

  // Step 1: the ring's barriers.
  if (threadIdx.x == 0) {
    for (int s = 0; s < L::kStages; ++s) {
      hopper::init_mbarrier(&full[s], 1);                  // the producer's arrive_expect_tx
      hopper::init_mbarrier(&empty[s], kConsumers * 4);    // one arrive per consumer warp
    }
    hopper::fence_mbarrier_init();
  }
  __syncthreads();

  if (wg == 0) {
    hopper::setmaxnreg_dec<L::kProducerRegs>();
    if (wg_tid < 32) {  // the producer warp; the warpgroup's other warps are done
      if (wg_tid == 0) {
        hopper::prefetch_tensor_map(&k_map);
        hopper::prefetch_tensor_map(&v_map);
      }
      produce_kv<D, N, L::kStages>(&k_map, &v_map, args.blocks + args.block_begin[pack], args.geo, kv_len, kv_head,
                                   box_rows, k_s, v_s, full, empty, wg_tid);
    }
  } else {
    hopper::setmaxnreg_inc<L::kRegsPerConsumer>();
    const int cg = wg - 1;                      // consumer warpgroup
    const int lane = wg_tid % 32, warp = wg_tid / 32;
    const int row0 = cg * kHopperGroupRows;     // its first tile row
    gather_q_rows<T, D, M>(args, q_s, first, rows, kv_head, row0, wg_tid, 1 + cg);
    const T* q_wg = q_s + row0 * hopper::kPanelElems;
    const float scale = kLog2e * rsqrtf(static_cast<float>(D)) * args.k_scale;
    float o[D / 8][4] = {};
    SoftmaxRow<> row_state[2];
    hopper::RingPosition<L::kStages> pos;
    auto acquire = [&](int tile) {
      hopper::wait_parity(&full[pos.stage], pos.phase);
      const int valid = kv_len - tile * N;
      if (valid < N)
        zero_v_tail<D, N, kConsumers>(v_s + pos.stage * L::kTileElems, valid, threadIdx.x - kWarpgroupThreads);
      const int stage = pos.stage;
      pos.advance();
      return stage;
    };
    auto release = [&](int, int stage) {
      if (lane == 0) hopper::arrive(&empty[stage]);
    };
    // Leaf tails (kTails): this lane's two rows' own tails, and the pack's own range before them.
    int2 tails[2] = {};
    int own = kv_len;
    if constexpr (kTails) {
      load_entry_tails(args, first, rows, row0 + warp * kWarpRows, lane, tails);
      own = args.own_len[pack];
    }
    auto mask_scores = [&](float(&s)[N / 8][4], int token0) {
      if constexpr (kTails) mask_tails<N>(tails, own, s, token0, lane);
    };
    consume_range<T, D, M, N>(q_wg, k_s, v_s, kv_len, true, scale, lane, row_state, o, acquire, release, mask_scores);
    // Step 5: the rows' sums across their quads, then the pack kernel's write.
#pragma unroll
    for (int i = 0; i < 2; ++i) {
      row_state[i].l += __shfl_xor_sync(0xffffffffu, row_state[i].l, 1);
      row_state[i].l += __shfl_xor_sync(0xffffffffu, row_state[i].l, 2);
    }
    write_rows<T, D>(args, first, rows, row0 + warp * kWarpRows, kv_head, lane, row_state, o);
  }
#ifdef PATLAB_CTA_TRACE
  cta_trace_end(args.trace, trace_record);
#endif
}
// [hopper-kernel]

}  // namespace patlab::cuda
