/// @file tma_pack_tile.cuh
/// @brief Stage 8's kernel for packs of 16 rows (sm_90a): the pack kernel's 16-row CTA
/// (packed_tile.cuh: four warps across each KV tile, mma.sync m16n8k16, the same online softmax,
/// warp merge and write), whose K/V tiles arrive by tensor-map copies instead of cp.async.
///
/// The pack kernel's loader has every thread compute a block lookup and two addresses and issue
/// two 16-byte copies per row it owns (KvTileLoader); here one warp issues a tile's copies, one
/// per (page box, 64-wide panel) of K and of V (issue_tile_copies() of stage 8's producer), and
/// they complete on the stage's mbarrier by bytes. What stays is the ring of pack_kv_stages()
/// stages and the __syncthreads that frees a stage: the consumers are the issuers' own warps, so
/// no producer warp, empty barriers or setmaxnreg are needed, and an SM holds as many CTAs as of
/// the pack kernel's 16-row tile.
///
/// An fp8 cache (d = 128 or 256) takes the same path with 8-bit maps: a row is one or two 128-byte
/// panels, each swizzled as fp8_swizzled<128>(), so qk_tile_fp8 and pv_tile_fp8 (told the panel
/// layout: fp8_kv_swizzled()) convert the tiles in registers as they land, on the pack kernel's
/// fp8 ring (four stages at d = 128, three at 256). Stage 8 runs this kernel for the shapes its
/// wgmma kernels are not built for too (d = 256, an fp8 cache), on stage 7's plan.
///
/// Steps of one CTA:
///  1. thread 0 initialises one `full` mbarrier per stage; every thread gathers its chunks of the
///     Q tile (gather_q_tile, cp.async, swizzled<D> rows);
///  2. warp 0 issues the copies of the first kStages - 1 tiles (Panel128B tiles: kv_swizzled());
///  3. per tile: warp 0 issues the tile kStages - 1 ahead into the stage the last tile freed, every
///     warp waits for this tile's `full` barrier (parity = lap), runs qk_tile and softmax_update
///     on its 16 tokens (with kSplitKV, K alone has landed: V has a barrier of its own, waited for
///     only now), zeroes the V rows of its slice past the range on the last tile (never copied, or
///     tokens past it: P is 0 there, but 0 x NaN is NaN), then pv_tile, and the CTA meets at the
///     __syncthreads that frees the stage;
///  4. merge_warp_columns and write_rows, the pack kernel's.
#pragma once

#include <cuda.h>
#include <cuda_runtime.h>

#include <cstdint>

#include "patlab/cuda/hopper/fence.cuh"
#include "patlab/cuda/hopper/grid_dependency.cuh"
#include "patlab/cuda/hopper/mbarrier.cuh"
#include "patlab/cuda/hopper/tma.cuh"
#include "patlab/cuda/hopper_tile.cuh"
#include "patlab/cuda/packed_tile.cuh"
#include "patlab/planner/plan.hpp"
#include "patlab/planner/tile_budget.hpp"

namespace patlab::cuda {

/// Rows of the tensor-map pack tile: one warp row.
inline constexpr int kTmaPackRows = kWarpRows;

// [tma-pack-layout]
/// Shapes and shared memory of a tensor-map pack CTA: the K/V ring first (kStages K tiles, then
/// kStages V tiles, each of N rows of 128-byte panels, swizzled, 1024-byte aligned), then the Q
/// tile (16 x D, swizzled<D>), then one mbarrier per stage (two with kSplitKV: K's, then V's).
/// 16-bit tiles are Panel128B (D/64 panels, kv_swizzled() with N rows); fp8 tiles D/128 panels
/// (fp8_kv_swizzled() with N rows: at d = 128 the fp8_swizzled<128>() of the pack kernel).
/// @tparam T storage type of q and the output (__half or __nv_bfloat16)
/// @tparam KV storage type of K and V: T, or __nv_fp8_e4m3 (d = 128 or 256)
/// @tparam D head dimension (64, 128 or 256; 128 or 256 with fp8)
/// @tparam N KV tokens per tile (kHopperKvTile: one tensor-map box per page, or per tile when
/// pages are longer)
/// @tparam kSplitKV K and V complete on barriers of their own (`--hopper-small-loader tma-kv`)
template <typename T, typename KV, int D, int N, bool kSplitKV>
struct TmaPackLayout {
  /// The pack kernel's warps for the 16 x N tile: one warp row, PackWarpLayout::kCols columns.
  using Warps = PackWarpLayout<D, kTmaPackRows, N>;
  /// Whether K and V are an fp8 cache (converted in registers, as the pack kernel's 16-row tile).
  static constexpr bool kFp8 = sizeof(KV) == 1;
  /// Stages of the ring: the pack kernel's for this tile (pack_kv_stages(): 2 of 16 bits; of fp8, 4 at
  /// d = 128 and 3 at 256).
  static constexpr int kStages = pack_kv_stages(D, kTmaPackRows, static_cast<int>(sizeof(KV)));
  /// Bytes of one K or V tile.
  static constexpr int kTileBytes = N * D * static_cast<int>(sizeof(KV));
  /// mbarriers: one per stage, or K's and V's.
  static constexpr int kBarriers = (kSplitKV ? 2 : 1) * kStages;
  /// Bytes of the ring, the Q tile and the barriers, and the slack to align the ring to 1024.
  static constexpr int kSmemBytes = 2 * kStages * kTileBytes + kTmaPackRows * D * static_cast<int>(sizeof(T)) +
                                    kBarriers * kMbarrierBytes + kHopperAlignSlack;
  static_assert(sizeof(T) == 2 && (sizeof(KV) == 2 || kFp8), "16-bit q; K and V of 16 bits or fp8");
  static_assert(D * sizeof(KV) % hopper::kMapRowBytes == 0, "rows of whole 128-byte panels");
  static_assert(!kFp8 || kFp8InRegisters<KV, kTmaPackRows>, "a 16-row fp8 tile converts in registers");
  static_assert(N == kHopperKvTile, "stage 8's tensor maps copy boxes of at most kHopperKvTile rows");
  static_assert(kTileBytes % hopper::kSwizzleAtomBytes == 0, "every tile starts on a swizzle atom");
  static_assert(kTileCopies<D, N> <= 32, "one copy per lane of the issuing warp");
  static_assert(kSmemBytes <= kPackSmemBudget, "the ring, the Q tile and the barriers fit one CTA's shared memory");
  static_assert(sizeof(hopper::Mbarrier) == kMbarrierBytes, "the budget's barrier size");
};
// [tma-pack-layout]

// [tma-pack-tail]
/// Step 3, last tile only: zeroes rows [r0, r1) of a tile of N rows of kRowBytes bytes, stored as
/// 128-byte panels of N rows (the V rows of a warp's slice past the range), whole panel rows, so
/// the swizzle does not matter. Called by one warp; the warp reads the rows after a __syncwarp.
/// @tparam kRowBytes bytes of one tile row (D values)
/// @tparam N rows of the tile
template <int kRowBytes, int N>
__device__ __forceinline__ void zero_panel_rows(unsigned char* tile, int r0, int r1, int lane) {
  constexpr int kPanels = kRowBytes / hopper::kMapRowBytes;
  constexpr int kRowChunks = hopper::kMapRowBytes / kChunkBytes;
  for (int c = lane; c < (r1 - r0) * kPanels * kRowChunks; c += 32) {
    const int r = r0 + c / (kPanels * kRowChunks), p = c / kRowChunks % kPanels, ch = c % kRowChunks;
    *reinterpret_cast<uint4*>(tile + (p * N + r) * hopper::kMapRowBytes + ch * kChunkBytes) = make_uint4(0, 0, 0, 0);
  }
}
// [tma-pack-tail]

// [tma-pack-kernel]
/// One CTA per (pack, KV head) of packs of at most 16 rows, as pack_attention_kernel, with its
/// K/V tiles copied by tensor map (steps in the file comment). `k_map` and `v_map` are stage 8's
/// pool maps (PoolMaps), `box_rows` their rows per copy.
/// @tparam T storage type of q and the output (__half or __nv_bfloat16)
/// @tparam KV storage type of K and V: T, or __nv_fp8_e4m3 (d = 128 or 256)
/// @tparam D head dimension (64, 128 or 256; 128 or 256 with fp8)
/// @tparam N KV tokens per tile (kHopperKvTile)
/// @tparam kSplitKV K and V complete on barriers of their own: S = Q K^T and the softmax run while
/// V is still landing
template <typename T, typename KV, int D, int N, bool kSplitKV>
__global__ void __launch_bounds__(TmaPackLayout<T, KV, D, N, kSplitKV>::Warps::kThreads)
    tma_pack_kernel(PackKernelArgs args, const int32_t* __restrict__ bucket, const __grid_constant__ CUtensorMap k_map,
                    const __grid_constant__ CUtensorMap v_map, int box_rows) {
  using L = TmaPackLayout<T, KV, D, N, kSplitKV>;
  using Layout = typename L::Warps;
  constexpr int M = kTmaPackRows, kStages = L::kStages, kColTokens = Layout::kColTokens;
  static_assert(Layout::kRows == 1, "one warp row: the warps split each KV tile");
  extern __shared__ __align__(128) unsigned char smem_raw[];
  const uint32_t misalign = smem_u32(smem_raw) % hopper::kSwizzleAtomBytes;
  unsigned char* smem = smem_raw + (misalign ? hopper::kSwizzleAtomBytes - misalign : 0);
  unsigned char* k_s = smem;
  unsigned char* v_s = k_s + kStages * L::kTileBytes;
  T* q_s = reinterpret_cast<T*>(v_s + kStages * L::kTileBytes);
  hopper::Mbarrier* full = reinterpret_cast<hopper::Mbarrier*>(q_s + M * D);
  hopper::Mbarrier* full_v = kSplitKV ? full + kStages : nullptr;  // V's barriers, or none (V on `full`)
  hopper::allow_dependents();  // as the pack kernel: a chained bucket may begin once every CTA here has begun

  const int hkv = args.geo.num_kv_heads;
  const int pack = bucket[blockIdx.x / hkv], kv_head = static_cast<int>(blockIdx.x % hkv);
  const int tid = threadIdx.x, lane = tid % 32, col_warp = tid / 32;
  const int first = args.query_begin[pack];
  const int rows = (args.query_begin[pack + 1] - first) * args.group;
  const int kv_len = args.kv_len[pack];
  const int num_tiles = (kv_len + N - 1) / N;
  const int32_t* blocks = args.blocks + args.block_begin[pack];

  // Step 1: the barriers (one arrive_expect_tx per lap), the Q tile.
  if (tid == 0) {
    for (int s = 0; s < L::kBarriers; ++s) hopper::init_mbarrier(&full[s], 1);
    hopper::fence_mbarrier_init();
    hopper::prefetch_tensor_map(&k_map);
    hopper::prefetch_tensor_map(&v_map);
  }
  gather_q_tile<T, D, M, Layout::kThreads>(args, q_s, first, rows, kv_head, tid);
  cp_async_commit();
  __syncthreads();  // the barriers are initialised

  // Step 2: warp 0 issues tile t into stage t % kStages (that stage is free: step 3 frees it).
  const auto issue = [&](int tile) {
    const int stage = tile % kStages, token = tile * N;
    issue_tile_copies<D, N, sizeof(KV)>(&k_map, &v_map, blocks, args.geo, token, min(N, kv_len - token), kv_head,
                                        box_rows, k_s + stage * L::kTileBytes, v_s + stage * L::kTileBytes,
                                        &full[stage], lane, 0, 1, 0, [] {}, kSplitKV ? &full_v[stage] : nullptr);
  };
  if (col_warp == 0)
    for (int t = 0; t < kStages - 1 && t < num_tiles; ++t) issue(t);
  cp_async_wait<0>();
  __syncthreads();  // the Q tile has landed

  // Step 3: the tiles.
  const int col0 = col_warp * kColTokens;
  const float scale = kLog2e * rsqrtf(static_cast<float>(D)) * args.k_scale;
  float o[D / 8][4] = {};
  SoftmaxRow<> row_state[2];
  for (int tile = 0; tile < num_tiles; ++tile) {
    if (col_warp == 0 && tile + kStages - 1 < num_tiles) issue(tile + kStages - 1);  // the stage tile - 1 freed
    const int stage = tile % kStages;
    const uint32_t lap = static_cast<uint32_t>(tile / kStages) & 1u;
    hopper::wait_parity(&full[stage], lap);
    const unsigned char* kt = k_s + stage * L::kTileBytes;
    unsigned char* vt = v_s + stage * L::kTileBytes;
    float s[kColTokens / 8][4];
    if constexpr (L::kFp8)
      qk_tile_fp8<T, D, kColTokens, N>(q_s, kt, 0, col0, lane, s);
    else
      qk_tile<T, D, kColTokens, N>(q_s, reinterpret_cast<const T*>(kt), 0, col0, lane, s);
    softmax_update<D, kColTokens>(s, tile * N + col0, kv_len, scale, lane, row_state, o);
    if constexpr (kSplitKV) hopper::wait_parity(&full_v[stage], lap);
    const int valid = kv_len - tile * N;
    if (valid < col0 + kColTokens) {
      zero_panel_rows<D * static_cast<int>(sizeof(KV)), N>(vt, max(valid, col0), col0 + kColTokens, lane);
      __syncwarp();
    }
    if constexpr (L::kFp8)
      pv_tile_fp8<T, D, kColTokens, N>(s, vt, col0, lane, o);
    else
      pv_tile<T, D, kColTokens, N>(s, reinterpret_cast<const T*>(vt), col0, lane, o);
    __syncthreads();  // the stage is free for the copies of tile + kStages
  }

  // Step 4: the pack kernel's merge (parked in the ring) and write.
  if (merge_warp_columns<KV, D, M, N, Layout>(k_s, true, 0, col_warp, lane, row_state, o))
    write_rows<T, D, L::kFp8>(args, first, rows, 0, kv_head, lane, row_state, o);
}
// [tma-pack-kernel]

}  // namespace patlab::cuda
