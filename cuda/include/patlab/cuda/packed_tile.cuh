/// @file packed_tile.cuh
/// @brief The tensor-core pack kernel of stages 4-7: one CTA per (pack, KV head), M tile rows
/// (the pack's queries x the GQA group) against KV tiles of N tokens.
///
/// Steps of one CTA (the steps of tutorial chapter 13, one __device__ function each):
///  1. gather_q_tile: the Q tile through the pack's query list (row = query slot x G + head), with
///     16-byte async copies into swizzled shared memory (rows past the pack are zero-filled);
///  2. KvTileLoader: the pack's KV range through its block list in tiles of N tokens (tokens past
///     the range are zero-filled);
///  3. the pipeline (pack_pipeline): a ring of pack_kv_stages() buffers (2; 4 with an fp8 cache
///     converted in registers, 3 of those at d = 256; FSA's spans 2, or 3 by choice), the
///     copies of the next tiles overlap the math of tile i; per tile and warp, steps 4-6 on its
///     16 rows;
///  4. qk_tile: S = Q K^T on tensor cores (mma.sync m16n8k16, fp32 accumulate);
///  4b. mask_entries (the masked instances only, kSpanStages > 0: sparse FSA spans): scores of
///     tokens in selection blocks that the row's query did not choose become -inf (the rows'
///     block masks read once per CTA by load_entry_masks); mask_tails (the tails instances only,
///     kTails: stages 7-8's leaf tails): scores past the pack's own range outside the row's own
///     tail become -inf (load_entry_tails); the plain instances of stages 4-8 compile without either;
///  5. softmax_update: masks tokens past the range and updates the online-softmax state (log2
///     domain, exp2; SoftmaxRow of softmax_state.cuh);
///  6. pv_tile: P cast to the storage type in registers, O += P V;
///     with an fp8 KV cache (KV = __nv_fp8_e4m3) the KV tiles arrive as fp8 (half the bytes, 16
///     values per 16-byte copy); a tile of one warp row takes them with 32-bit shared loads and
///     converts them into the mma's B fragments in registers (qk_tile_fp8, pv_tile_fp8), a tile
///     of more converts each landed tile once into a 16-bit copy (convert_kv_tile) that qk_tile
///     and pv_tile read; K's scale is folded into the softmax scale, V's into the output;
///  7. merge_warp_columns: warps that split a KV tile merge their states;
///  8. write_rows: the output directly when the plan says the query has a single partial, else
///     the partial (o normalised by its own sum, 16-bit, or fp32 with --fp32-partials; natural-log
///     lse) into the query's slot.
#pragma once

#include <cuda_runtime.h>

#include <cmath>
#include <cstdint>

#include "patlab/cuda/cta_trace.cuh"
#include "patlab/cuda/hopper/grid_dependency.cuh"
#include "patlab/cuda/mma.cuh"
#include "patlab/cuda/numeric.cuh"
#include "patlab/cuda/paged.cuh"
#include "patlab/cuda/softmax_state.cuh"
#include "patlab/planner/tile_budget.hpp"

namespace patlab::cuda {

// kKvStages, kWarpRows, kPackWarps and the tile budgets live in patlab/tile_budget.hpp, which
// the planner reads too.

/// Everything a pack kernel reads and writes, as the flattened plan lays it out.
struct PackKernelArgs {
  const void* q = nullptr;       ///< [requests, Hq, D]
  const void* k_pool = nullptr;  ///< [blocks, page, Hkv, D] in the KV storage type
  /// [blocks, page, Hkv, D] in the KV storage type: the V pool, laid out as k_pool.
  const void* v_pool = nullptr;
  float k_scale = 1.0f;          ///< per-tensor K scale (fp8 KV cache; 1 otherwise)
  float v_scale = 1.0f;          ///< per-tensor V scale (fp8 KV cache; 1 otherwise)
  void* out = nullptr;           ///< [requests, Hq, D]
  void* partial_o = nullptr;     ///< [slots, Hq, D]: float, or T where partial_half
  float* partial_lse = nullptr;  ///< [slots, Hq]
  bool partial_half = false;     ///< partial_o holds the output's 16-bit type (PartialsView::o_half)
  const int32_t* query_begin = nullptr;  ///< [packs + 1]: the pack's entries in queries/slots
  const int32_t* queries = nullptr;      ///< request of each (pack, query)
  const int32_t* slots = nullptr;        ///< global partial slot of each (pack, query), -1: write the output
  const int32_t* block_begin = nullptr;  ///< [packs + 1]: the pack's entries in blocks
  const int32_t* blocks = nullptr;       ///< physical blocks of each pack's KV range
  const int32_t* kv_len = nullptr;       ///< [packs]: tokens of each pack's KV range
  /// [packs]: the one KV head of each pack (sparse decode's packs, whose blocks differ per KV
  /// head): one CTA per listed pack. Null: every pack runs at every KV head (grid x Hkv).
  const int32_t* pack_kv_head = nullptr;
  /// Geometry of the K/V pools: log2 of the tokens per block, and Hkv.
  PoolGeometry geo{};
  int group = 1;        ///< query heads per KV head
  int num_q_heads = 1;  ///< Hq
  /// Sparse decode's FSA spans, read by the masked instances only (kSpanStages > 0): per (pack,
  /// query) entry, the selection blocks of the pack's range that the query chose, as bits (bit i:
  /// tokens [i b, (i + 1) b) of the range, b = mask_block_tokens, at most 32 blocks); the other
  /// tokens' scores are -inf. A template parameter of the same kernel rather than a second
  /// kernel, so that span packs reuse every step, and rather than a runtime branch, which cost the
  /// plain instances registers (up to +30 on some tiles, enough to lose a CTA per SM).
  const uint32_t* entry_mask = nullptr;
  int mask_block_tokens = 0;  ///< tokens per mask bit (l')
  /// Leaf tails (PlannerOptions::take_leaves), read by the tails instances only (kTails): [packs],
  /// the tokens of each pack's own range, which every row sees; kv_len is then the pack's space,
  /// the range and its tails (Pack::space_len()).
  const int32_t* own_len = nullptr;
  /// Leaf tails: [entries], the tokens [x, y) of the pack's space holding the entry's own tail,
  /// which only that entry's rows see ({0, 0}: none).
  const int2* entry_tail = nullptr;
#ifdef PATLAB_CTA_TRACE
  CtaTraceBuffer trace{};  ///< the CTA timeline's records (cta_trace.cuh; -Dcta_trace=true builds only)
#endif
};

// [pack-warp-layout]
/// How the warps of a pack CTA share an M x N tile: kRows warps down the rows (16 each), times
/// kCols warps across the KV tile's tokens (N / kCols each, a multiple of 16).
/// @tparam D head dimension
/// @tparam M tile rows (16, 32 or 64): one warp row per 16 rows
/// @tparam N KV tokens per tile (16, 32, 64 or 128), shared among the warps of a warp row
template <int D, int M, int N>
struct PackWarpLayout {
  /// Warps down the tile's rows: M / 16.
  static constexpr int kRows = pack_warp_rows(M);
  /// Warps across the KV tile's tokens (pack_warp_cols() of tile_budget.hpp).
  static constexpr int kCols = pack_warp_cols(D, M, N);
  /// Warps of the CTA: kRows x kCols.
  static constexpr int kWarps = kRows * kCols;
  /// Threads of the CTA: 32 per warp.
  static constexpr int kThreads = kWarps * 32;
  /// KV tokens of one warp's slice of the tile: N / kCols, a multiple of 16.
  static constexpr int kColTokens = pack_col_tokens(D, M, N);
  static_assert(kCols >= 1 && kColTokens % 16 == 0, "each warp takes whole k16 steps of the KV tile");
};

/// K/V stages of a pack CTA's ring: patlab::pack_kv_stages(), or kSpanStages for the masked
/// instances (FSA's spans, 16-bit K and V).
/// @tparam KV storage type of K and V (__half, __nv_bfloat16 or __nv_fp8_e4m3)
/// @tparam D head dimension
/// @tparam M tile rows
/// @tparam N KV tokens per tile
/// @tparam kSpanStages 0 for the plain instances; the span ring's stages for the masked ones
template <typename KV, int D, int M, int N, int kSpanStages = 0>
constexpr int pack_instance_stages() {
  return kSpanStages > 0 ? kSpanStages : pack_kv_stages(D, M, static_cast<int>(sizeof(KV)));
}

/// Dynamic shared memory of a pack CTA: the Q tile plus the K/V ring (patlab::pack_smem_bytes(),
/// or patlab::span_smem_bytes() for the masked instances).
/// @tparam KV storage type of K and V (__half, __nv_bfloat16 or __nv_fp8_e4m3)
/// @tparam D head dimension
/// @tparam M tile rows
/// @tparam N KV tokens per tile
/// @tparam kSpanStages 0 for the plain instances; the span ring's stages for the masked ones
template <typename KV, int D, int M, int N, int kSpanStages = 0>
constexpr int pack_smem_bytes() {
  return kSpanStages > 0 ? span_smem_bytes(D, M, N, kSpanStages)
                         : patlab::pack_smem_bytes(D, M, N, static_cast<int>(sizeof(KV)));
}
// [pack-warp-layout]

// [pack-q-gather]
/// Step 1: gathers the M x D Q tile into swizzled shared memory through the pack's query list:
/// row r is query r / g of the pack (entries from `first`), head kv_head * g + r % g; rows past
/// the pack's `rows` are zero-filled.
/// @tparam T storage type of q
/// @tparam D head dimension
/// @tparam M tile rows
/// @tparam kThreads threads of the CTA, which all issue copies
template <typename T, int D, int M, int kThreads>
__device__ __forceinline__ void gather_q_tile(const PackKernelArgs& args, T* q_s, int first, int rows, int kv_head,
                                              int tid) {
  constexpr int kChunks = D / kChunkElems;  // 16-byte chunks per row
  const T* q = static_cast<const T*>(args.q);
  const int g = args.group;
  for (int c = tid; c < M * kChunks; c += kThreads) {
    const int r = c / kChunks, ch = c % kChunks;
    const bool valid = r < rows;
    const T* src = q;
    if (valid) {
      const int request = args.queries[first + r / g];
      src = q + (static_cast<int64_t>(request) * args.num_q_heads + kv_head * g + r % g) * D + ch * kChunkElems;
    }
    cp_async_16(q_s + swizzled<D>(r, ch), src, valid);
  }
}
// [pack-q-gather]

// [pack-fp8-swizzle]
/// Byte offset of 16-byte chunk `chunk` of row `r` in an fp8 K/V tile of D bytes per row: the
/// chunks are XOR-swizzled by the row's place in its 128-byte line group, so that the 32-bit loads
/// of qk_tile_fp8 (8 rows, one chunk each) and pv_tile_fp8 (4 rows, two chunks each) hit
/// different banks (at D = 64 two rows share a line and pv_tile_fp8's loads take two passes).
/// @tparam D head dimension: the bytes of one row of the fp8 tile
template <int D>
__device__ __forceinline__ int fp8_swizzled(int r, int chunk) {
  constexpr int kRowChunks = D / kChunkBytes;
  constexpr int kRowsPerLine = kRowChunks >= kSwizzleRows ? 1 : kSwizzleRows / kRowChunks;
  constexpr int kPattern = kRowChunks >= kSwizzleRows ? kSwizzleRows : kRowChunks;
  return r * D + ((chunk ^ ((r / kRowsPerLine) % kPattern)) * kChunkBytes);
}
// [pack-fp8-swizzle]

/// Byte offset of 16-byte chunk `chunk` of row `r` in an fp8 K/V tile: fp8_swizzled<D>() rows
/// (kPanelRows = 0: the tiles the pack kernel's cp.async loader writes), or D/128 panels of
/// kPanelRows rows of 128 bytes, each row's chunks swizzled by row % 8, which a tensor-map copy of
/// an 8-bit map writes. At D = 128 the two are one.
/// @tparam D head dimension: the bytes of one row of the fp8 tile
/// @tparam kPanelRows 0, or the rows of a panel
template <int D, int kPanelRows>
__device__ __forceinline__ int fp8_kv_swizzled(int r, int chunk) {
  constexpr int kPanelBytes = kChunkBytes * kSwizzleRows;  // 128: one swizzle line
  if constexpr (kPanelRows == 0 || D == kPanelBytes)
    return fp8_swizzled<D>(r, chunk);
  else
    return (chunk / kSwizzleRows) * kPanelRows * kPanelBytes + fp8_swizzled<kPanelBytes>(r, chunk % kSwizzleRows);
}

// [pack-kv-loader]
/// Step 2: the K/V tile loader. Tile rows are tokens [start, start + N) of the pack's range
/// (zero-filled past `kv_len`); thread tid always copies the same 16-byte column of rows
/// r0 + i * kRowsPerPass (r0 = tid / kChunks), into K/V buffer `stage`. 16-bit tiles are swizzled
/// for ldmatrix; fp8 tiles (16 values per chunk) for the 32-bit loads of qk_tile_fp8 and
/// pv_tile_fp8 (fp8_swizzled).
///
/// The loader runs once per tile in every thread, so its arithmetic is cut to what changes per
/// row (measured on the 16x64 tile's SASS: the generic per-row form, a loop of runtime trip count
/// with 64-bit token offsets, was 42 instructions a row and over half of the main loop):
///  - a fixed count of rows per thread (kPasses), so the loop unrolls;
///  - the destinations: both swizzles repeat every kSwizzleRows rows, so when kRowsPerPass is a
///    multiple of it a thread's rows sit at one address (row r0's) plus constants;
///  - the sources: a pool token's element offset is slot x (Hkv D), one 32 x 32 -> 64-bit
///    multiply-add on this thread's (KV head, chunk) base pointer per row and tensor, after one
///    block-table load.
/// @tparam KV storage type of K and V (__half, __nv_bfloat16 or __nv_fp8_e4m3)
/// @tparam D head dimension
/// @tparam N KV tokens per tile
/// @tparam kThreads threads of the CTA, which all issue copies (a multiple of the chunks per row)
template <typename KV, int D, int N, int kThreads>
struct KvTileLoader {
  /// KV elements per 16-byte chunk: 8 of a 16-bit type, 16 of fp8.
  static constexpr int kElems = kChunkBytes / static_cast<int>(sizeof(KV));  // KV elements per chunk
  /// 16-byte chunks per tile row (one token's D elements).
  static constexpr int kChunks = D / kElems;
  /// Tile rows that one pass of the CTA's threads copies (one chunk per thread).
  static constexpr int kRowsPerPass = kThreads / kChunks;
  static_assert(kThreads % kChunks == 0, "a pass of the CTA's threads covers whole rows");
  static_assert(N % kRowsPerPass == 0 || kRowsPerPass % N == 0, "passes cover whole tiles");
  /// Rows each thread copies per tile (threads past row N - 1 copy none when a pass is more than N rows).
  static constexpr int kPasses = kRowsPerPass < N ? N / kRowsPerPass : 1;
  /// Whether a thread's rows share one swizzle pattern (destinations = row r0's plus constants).
  static constexpr bool kSameSwizzle = kRowsPerPass % kSwizzleRows == 0;
  /// Rows per unrolled step: more keep more block lookups in flight, fewer spare registers (at
  /// d = 256, whose accumulators leave none, 4 spilled a 32x64 tile that 2 does not).
  static constexpr int kUnroll = D >= 256 ? 2 : 4;

  const char* k_src;      ///< this thread's (KV head, chunk) in pool token 0 of K
  const char* v_src;      ///< the same in V
  const int32_t* blocks;  ///< the pack's physical blocks
  uint32_t page_shift;    ///< log2(tokens per block)
  uint32_t token_bytes;   ///< bytes of one pool token (Hkv x D elements)
  int kv_len;             ///< tokens of the pack's range (at least 1 when a tile is loaded)
  uint32_t k_dst;         ///< shared address of this thread's chunk of row r0 in the ring's first K tile
  uint32_t v_dst;         ///< the same in the first V tile
  /// This thread's chunk column (tid % kChunks), the same in every row it copies.
  int ch, r0;             ///< this thread's chunk column and first row

  /// Element offset of (row, chunk) in a tile.
  static __device__ __forceinline__ int slot(int r, int chunk) {
    if constexpr (sizeof(KV) == 1)
      return fp8_swizzled<D>(r, chunk);
    else
      return swizzled<D>(r, chunk);
  }

  /// The loader of thread `tid` for KV head `pool_head` of pools `k_pool` / `v_pool` (geometry
  /// `geo`), a range of `kv_len` tokens in `blocks`, into the ring whose first tiles are `k_s`, `v_s`.
  __device__ __forceinline__ KvTileLoader(const KV* k_pool, const KV* v_pool, const int32_t* blocks_, PoolGeometry geo,
                                          int pool_head, int kv_len_, KV* k_s, KV* v_s, int tid)
      : blocks(blocks_),
        page_shift(static_cast<uint32_t>(geo.page_shift)),
        token_bytes(static_cast<uint32_t>(geo.num_kv_heads) * D * sizeof(KV)),
        kv_len(kv_len_),
        ch(tid % kChunks),
        r0(tid / kChunks) {
    const int head_off = pool_head * D + ch * kElems;
    k_src = reinterpret_cast<const char*>(k_pool + head_off);
    v_src = reinterpret_cast<const char*>(v_pool + head_off);
    k_dst = smem_u32(k_s + slot(r0, ch));
    v_dst = smem_u32(v_s + slot(r0, ch));
  }

  /// Issues this thread's async copies of the K and V tiles of tokens [start, start + N) into
  /// ring buffer `stage` (tokens from `kv_len` on zero-filled); the caller commits the group.
  __device__ __forceinline__ void operator()(int stage, int start) const {
    if (kRowsPerPass > N && r0 >= N) return;
#pragma unroll(kUnroll)
    for (int i = 0; i < kPasses; ++i) {
      const int r = r0 + i * kRowsPerPass, t = start + r;
      const bool valid = t < kv_len;
      // a token past the range looks up the range's last one (in the block list, so the lookup
      // is in bounds) and reads nothing
      const uint32_t tok = pool_slot(blocks, static_cast<uint32_t>(valid ? t : kv_len - 1), page_shift);
      const uint32_t dst =
          (stage * N * D + (kSameSwizzle ? i * kRowsPerPass * D : slot(r, ch) - slot(r0, ch))) * sizeof(KV);
      cp_async_16_kv(k_dst + dst, k_src + static_cast<uint64_t>(tok) * token_bytes, valid);
      cp_async_16_kv(v_dst + dst, v_src + static_cast<uint64_t>(tok) * token_bytes, valid);
    }
  }
};
// [pack-kv-loader]

// [pack-fp8-convert]
/// Step 2b (fp8 KV cache, tiles of more than one warp row): converts a landed fp8 K and V tile
/// (N rows of D bytes, fp8_swizzled) into the swizzled 16-bit tiles that qk_tile and pv_tile
/// read: each thread takes 16 fp8 values (one chunk) at a time, converts them in registers two at
/// a time (fp8x2_to_16x2: one cvt on sm_89+) and writes two 16-byte chunks. Exact: every e4m3
/// value is a 16-bit value.
/// @tparam T storage type of q: the 16-bit type the tiles are converted into
/// @tparam D head dimension
/// @tparam N KV tokens per tile
/// @tparam kThreads threads of the CTA, which share the conversion
template <typename T, int D, int N, int kThreads>
__device__ __forceinline__ void convert_kv_tile(const uint8_t* k8, const uint8_t* v8, T* k16, T* v16, int tid) {
  constexpr int kChunks8 = D / kChunkBytes;  // fp8 chunks per row
  for (int c = tid; c < N * kChunks8; c += kThreads) {
    const int r = c / kChunks8, ch = c % kChunks8;
    const uint4 kw = *reinterpret_cast<const uint4*>(k8 + fp8_swizzled<D>(r, ch));
    const uint4 vw = *reinterpret_cast<const uint4*>(v8 + fp8_swizzled<D>(r, ch));
    const uint32_t kin[4] = {kw.x, kw.y, kw.z, kw.w}, vin[4] = {vw.x, vw.y, vw.z, vw.w};
    uint32_t kout[8], vout[8];
#pragma unroll
    for (int i = 0; i < 8; ++i) {
      kout[i] = fp8x2_to_16x2(static_cast<uint16_t>(kin[i / 2] >> (16 * (i % 2))), T{});
      vout[i] = fp8x2_to_16x2(static_cast<uint16_t>(vin[i / 2] >> (16 * (i % 2))), T{});
    }
#pragma unroll
    for (int half = 0; half < 2; ++half) {
      *reinterpret_cast<uint4*>(k16 + swizzled<D>(r, 2 * ch + half)) =
          make_uint4(kout[4 * half], kout[4 * half + 1], kout[4 * half + 2], kout[4 * half + 3]);
      *reinterpret_cast<uint4*>(v16 + swizzled<D>(r, 2 * ch + half)) =
          make_uint4(vout[4 * half], vout[4 * half + 1], vout[4 * half + 2], vout[4 * half + 3]);
    }
  }
}
// [pack-fp8-convert]

/// Clears a warp's score accumulators before a tile's S = Q K^T.
/// @tparam kColTokens KV tokens of this warp's slice of the tile (a multiple of 8)
template <int kColTokens>
__device__ __forceinline__ void zero_scores(float (&s)[kColTokens / 8][4]) {
#pragma unroll
  for (int nt = 0; nt < kColTokens / 8; ++nt)
#pragma unroll
    for (int e = 0; e < 4; ++e) s[nt][e] = 0.f;
}

// [pack-fp8-qk]
/// Step 4 with an fp8 K tile: S = Q K^T with K's B fragments loaded and converted in registers
/// (no 16-bit copy of the tile). One 32-bit load gives a lane 4 fp8 values of a token, dims
/// 4c..4c+3 of a k16 step (c = lane % 4), which the mma takes as k = 2c, 2c+1, 2c+8, 2c+9; Q's A
/// fragments are read in the same order (one 8-byte load per row), and the dot product does not
/// depend on the order of its terms. K's scale is folded into the softmax scale.
/// @tparam T storage type of q (and of the tiles the mma reads)
/// @tparam D head dimension
/// @tparam kColTokens KV tokens of this warp's slice of the tile (a multiple of 16)
/// @tparam kPanelRows layout of the K tile: 0, fp8_swizzled<D>() rows; else 128-byte panels of
/// that many rows (fp8_kv_swizzled())
template <typename T, int D, int kColTokens, int kPanelRows = 0>
__device__ __forceinline__ void qk_tile_fp8(const T* q_s, const uint8_t* k8, int q_row, int col0, int lane,
                                            float (&s)[kColTokens / 8][4]) {
  const int row = lane / 4, c = lane % 4;
  zero_scores<kColTokens>(s);
#pragma unroll
  for (int kk = 0; kk < D / 16; ++kk) {
    // dims 16 kk + 4c .. +3: 16-bit chunk 2 kk + c / 2, elements (c % 2) * 4 ..
    const uint2 lo = *reinterpret_cast<const uint2*>(q_s + swizzled<D>(q_row + row, 2 * kk + c / 2) + (c % 2) * 4);
    const uint2 hi = *reinterpret_cast<const uint2*>(q_s + swizzled<D>(q_row + row + 8, 2 * kk + c / 2) + (c % 2) * 4);
    const uint32_t a[4] = {lo.x, hi.x, lo.y, hi.y};
#pragma unroll
    for (int nt = 0; nt < kColTokens / 8; ++nt) {
      const uint32_t w =
          *reinterpret_cast<const uint32_t*>(k8 + fp8_kv_swizzled<D, kPanelRows>(col0 + nt * 8 + row, kk) + 4 * c);
      mma_16816<T>(s[nt], a, fp8x2_to_16x2(static_cast<uint16_t>(w), T{}),
                   fp8x2_to_16x2(static_cast<uint16_t>(w >> 16), T{}));
    }
  }
}
// [pack-fp8-qk]

// [pack-kv-layout]
/// Element offset of 16-byte chunk `chunk` of row `row` in a 16-bit K or V tile: swizzled<D>()
/// rows (kPanelRows = 0: the tiles the pack kernel's cp.async loader writes), or the Panel128B
/// layout of a tile of kPanelRows rows (hopper::panel_offset(): D/64 panels of 64 columns, each
/// row's chunks swizzled by row % 8), which a tensor-map copy writes. At D = 64 the two are one.
/// @tparam D head dimension (a multiple of 64)
/// @tparam kPanelRows 0, or the rows of the Panel128B tile
template <int D, int kPanelRows>
__device__ __forceinline__ int kv_swizzled(int row, int chunk) {
  constexpr int kPanelElems = kChunkElems * kSwizzleRows;  // 64 values: one 128-byte panel row
  if constexpr (kPanelRows == 0 || D == kPanelElems)
    return swizzled<D>(row, chunk);
  else
    return (chunk / kSwizzleRows) * kPanelRows * kPanelElems + swizzled<kPanelElems>(row, chunk % kSwizzleRows);
}
// [pack-kv-layout]

// [pack-qk]
/// Step 4: S = Q K^T for a warp's 16 rows (from tile row `q_row`) and its kColTokens tokens of
/// the K tile `ks` (from token `col0`), on tensor cores. Q's fragments are re-read from shared
/// memory per tile (D/16 ldmatrix) to spare registers.
/// @tparam T storage type of q (and of the tiles the mma reads)
/// @tparam D head dimension
/// @tparam kColTokens KV tokens of this warp's slice of the tile (a multiple of 16)
/// @tparam kPanelRows layout of the K tile: 0, swizzled<D>() rows; else Panel128B panels of that
/// many rows (kv_swizzled())
template <typename T, int D, int kColTokens, int kPanelRows = 0>
__device__ __forceinline__ void qk_tile(const T* q_s, const T* ks, int q_row, int col0, int lane,
                                        float (&s)[kColTokens / 8][4]) {
  zero_scores<kColTokens>(s);
#pragma unroll
  for (int kk = 0; kk < D / 16; ++kk) {
    uint32_t q_frag[4];
    ldmatrix_x4(q_frag, q_s + swizzled<D>(q_row + (lane / 8 % 2) * 8 + lane % 8, kk * 2 + lane / 16));
#pragma unroll
    for (int n2 = 0; n2 < kColTokens / 16; ++n2) {
      uint32_t b[4];
      ldmatrix_x4(b, ks + kv_swizzled<D, kPanelRows>(col0 + n2 * 16 + (lane / 16) * 8 + lane % 8,
                                                     kk * 2 + lane / 8 % 2));
      mma_16816<T>(s[2 * n2], q_frag, b[0], b[1]);
      mma_16816<T>(s[2 * n2 + 1], q_frag, b[2], b[3]);
    }
  }
}
// [pack-qk]

// [pack-mask]
/// Step 4b, once per CTA (masked instances only, PackKernelArgs::entry_mask): the block masks of
/// this lane's two rows (tile rows from `q_row`, `rows` valid, pack entries from `first`), which
/// every tile of the pack reuses. Rows past `rows` get no block: masked whole, their state stays
/// empty and is never written.
__device__ __forceinline__ void load_entry_masks(const PackKernelArgs& args, int first, int rows, int q_row, int lane,
                                                 uint32_t (&mask)[2]) {
#pragma unroll
  for (int i = 0; i < 2; ++i) {
    const int r = q_row + lane / 4 + 8 * i;
    mask[i] = r < rows ? __ldg(args.entry_mask + first + r / args.group) : 0u;
  }
}

/// Step 4b, per tile: sets to -inf the scores of this lane's two rows at the tokens of blocks
/// their query did not choose (`mask` from load_entry_masks(); `first_token` is the range token of
/// s[0]; `block_tokens` = PackKernelArgs::mask_block_tokens, a multiple of the page). One
/// division a tile: the lane's tokens advance 8 at a time, so the block index is carried from one
/// 8-token column to the next instead of divided out for each.
/// @tparam kColTokens KV tokens of this warp's slice of the tile (a multiple of 8)
template <int kColTokens>
__device__ __forceinline__ void mask_entries(const uint32_t (&mask)[2], float (&s)[kColTokens / 8][4], int first_token,
                                             int block_tokens, int lane) {
  // the lane's two tokens are adjacent and even-aligned; a block (a multiple of the page) holds both
  const unsigned token = static_cast<unsigned>(first_token + (lane % 4) * 2);
  const unsigned step = static_cast<unsigned>(block_tokens);
  unsigned bit = token / step;       // the block of the lane's first token
  unsigned next = (bit + 1) * step;  // the first token of the block after it
#pragma unroll
  for (int nt = 0; nt < kColTokens / 8; ++nt) {
    if (token + nt * 8 >= next) {  // never twice: a block holds at least a page (16 tokens) > 8
      ++bit;
      next += step;
    }
#pragma unroll
    for (int e = 0; e < 4; ++e)
      if (bit >= 32 || !((mask[e / 2] >> bit) & 1u)) s[nt][e] = -INFINITY;
  }
}
// [pack-mask]

// [pack-tails]
/// Step 4b, once per CTA (the tails instances only, kTails): the leaf tails of this lane's two
/// rows (PackKernelArgs::entry_tail; tile rows from `q_row`, `rows` valid, pack entries from
/// `first`). Rows past `rows` get none.
__device__ __forceinline__ void load_entry_tails(const PackKernelArgs& args, int first, int rows, int q_row, int lane,
                                                 int2 (&tail)[2]) {
#pragma unroll
  for (int i = 0; i < 2; ++i) {
    const int r = q_row + lane / 4 + 8 * i;
    tail[i] = r < rows ? args.entry_tail[first + r / args.group] : make_int2(0, 0);
  }
}

/// Step 4b, per tile: sets to -inf the scores of this lane's two rows at the tokens past the pack's
/// own range (`own` tokens) that are not in the row's own tail (`tail` from load_entry_tails();
/// `first_token` is the pack-space token of s[0]). Selects only, no branch (it was written for a
/// stage-8 consumer that ran it under a P V in flight, which a branch makes ptxas wait for).
/// @tparam kColTokens KV tokens of this warp's slice of the tile (a multiple of 8)
template <int kColTokens>
__device__ __forceinline__ void mask_tails(const int2 (&tail)[2], int own, float (&s)[kColTokens / 8][4],
                                           int first_token, int lane) {
  const int token = first_token + (lane % 4) * 2;
#pragma unroll
  for (int nt = 0; nt < kColTokens / 8; ++nt)
#pragma unroll
    for (int e = 0; e < 4; ++e) {
      const int t = token + nt * 8 + e % 2;
      const int2 x = tail[e / 2];
      if (t >= own && (t < x.x || t >= x.y)) s[nt][e] = -INFINITY;
    }
}
// [pack-tails]

// [pack-softmax]
/// Step 5a, one score: s[nt][e] of this lane, or -inf for a token past `kv_len` when the tile
/// may reach past the range (`partial`; `first_token` is the tile token of s[0]). Reads only.
/// @tparam kColTokens KV tokens of this warp's slice of the tile (a multiple of 8)
template <int kColTokens>
__device__ __forceinline__ float range_score(const float (&s)[kColTokens / 8][4], int nt, int e, bool partial,
                                             int first_token, int kv_len, int lane) {
  return partial && first_token + nt * 8 + (lane % 4) * 2 + e % 2 >= kv_len ? -INFINITY : s[nt][e];
}

/// Step 5a, the max: moves the lane's two row states to the new max of the tile's scores in the
/// log2 domain (only a tile that reaches past the range tests tokens against it), and returns
/// `alpha`, the factors the rows' accumulators must be scaled by (rescale_rows), and `neg_m`,
/// the exponent offsets of softmax_weight. The max is taken on the raw scores (`scale` > 0), and
/// `s` is only read. Returns whether the tile reaches past the range (the `partial` that
/// range_score takes for the same tile).
/// @tparam kColTokens KV tokens of this warp's slice of the tile (a multiple of 8)
/// @tparam kMayReachPast false where the caller knows the tile lies inside the range
template <int kColTokens, bool kMayReachPast = true>
__device__ __forceinline__ bool softmax_max(const float (&s)[kColTokens / 8][4], int first_token, int kv_len,
                                            float scale, int lane, SoftmaxRow<> (&row_state)[2], float (&alpha)[2],
                                            float (&neg_m)[2]) {
  const bool partial = kMayReachPast && first_token + kColTokens > kv_len;  // warp-uniform
  float row_max[2] = {-INFINITY, -INFINITY};
#pragma unroll
  for (int nt = 0; nt < kColTokens / 8; ++nt)
#pragma unroll
    for (int e = 0; e < 4; ++e)
      row_max[e / 2] = fmaxf(row_max[e / 2], range_score<kColTokens>(s, nt, e, partial, first_token, kv_len, lane));
#pragma unroll
  for (int i = 0; i < 2; ++i) {
    row_max[i] = fmaxf(row_max[i], __shfl_xor_sync(0xffffffffu, row_max[i], 1));
    row_max[i] = fmaxf(row_max[i], __shfl_xor_sync(0xffffffffu, row_max[i], 2));
    // -inf only while this warp has seen no token: the state stays empty
    alpha[i] = row_state[i].rescale(fmaxf(row_state[i].m, row_max[i] * scale));
    neg_m[i] = -row_state[i].exp_base();  // keeps exp2(-inf - m) = 0 below, never NaN
  }
  return partial;
}

/// Step 5a, one weight: p = exp2(score scale - m) as one fused multiply-add and one MUFU.EX2
/// (masked tokens: exp2(-inf) = 0).
__device__ __forceinline__ float softmax_weight(float score, float scale, float neg_m) {
  return exp2_approx(fmaf(score, scale, neg_m));
}

/// Step 5a: softmax_max, then `s` becomes P = exp2(s scale - m) in place and the rows' sums take
/// it (rescale_rows applies `alpha` to the accumulators).
/// @tparam kColTokens KV tokens of this warp's slice of the tile (a multiple of 8)
template <int kColTokens>
__device__ __forceinline__ void softmax_scores(float (&s)[kColTokens / 8][4], int first_token, int kv_len, float scale,
                                               int lane, SoftmaxRow<> (&row_state)[2], float (&alpha)[2]) {
  float neg_m[2];
  const bool partial = softmax_max<kColTokens>(s, first_token, kv_len, scale, lane, row_state, alpha, neg_m);
#pragma unroll
  for (int nt = 0; nt < kColTokens / 8; ++nt) {
#pragma unroll
    for (int e = 0; e < 4; ++e) {
      s[nt][e] = softmax_weight(range_score<kColTokens>(s, nt, e, partial, first_token, kv_len, lane), scale,
                                neg_m[e / 2]);
      row_state[e / 2].l += s[nt][e];
    }
  }
}

/// Step 5b: scales the lane's two rows of the accumulators by softmax_scores' factors.
/// @tparam D head dimension
template <int D>
__device__ __forceinline__ void rescale_rows(float (&o)[D / 8][4], const float (&alpha)[2]) {
#pragma unroll
  for (int dt = 0; dt < D / 8; ++dt) {
    o[dt][0] *= alpha[0];
    o[dt][1] *= alpha[0];
    o[dt][2] *= alpha[1];
    o[dt][3] *= alpha[1];
  }
}

/// Step 5: the online-softmax update of one tile, both halves at once: softmax_scores, then
/// rescale_rows, skipped when no row of the warp has a new max (every factor is exp2(0) = 1
/// exactly): after the first tiles the max rarely moves, and the rescale is d/2 multiplies a
/// lane, a fifth of a 16-row warp's instructions per tile.
/// @tparam D head dimension
/// @tparam kColTokens KV tokens of this warp's slice of the tile (a multiple of 8)
template <int D, int kColTokens>
__device__ __forceinline__ void softmax_update(float (&s)[kColTokens / 8][4], int first_token, int kv_len, float scale,
                                               int lane, SoftmaxRow<> (&row_state)[2], float (&o)[D / 8][4]) {
  float alpha[2];
  softmax_scores<kColTokens>(s, first_token, kv_len, scale, lane, row_state, alpha);
  if (__any_sync(0xffffffffu, alpha[0] != 1.f || alpha[1] != 1.f)) rescale_rows<D>(o, alpha);
}
// [pack-softmax]

// [pack-pv]
/// Step 6: O += P V for a warp's 16 rows: P (16 x kColTokens, in `p`) goes from the S
/// accumulators to A fragments in registers; V (tile `vs`, from token `col0`) is read with
/// ldmatrix.trans.
/// @tparam T storage type of q (and of the tiles the mma reads; P is cast to it)
/// @tparam D head dimension
/// @tparam kColTokens KV tokens of this warp's slice of the tile (a multiple of 16)
/// @tparam kPanelRows layout of the V tile, as qk_tile's K tile
template <typename T, int D, int kColTokens, int kPanelRows = 0>
__device__ __forceinline__ void pv_tile(const float (&p)[kColTokens / 8][4], const T* vs, int col0, int lane,
                                        float (&o)[D / 8][4]) {
#pragma unroll
  for (int kt = 0; kt < kColTokens / 16; ++kt) {
    const uint32_t a[4] = {pack2(p[2 * kt][0], p[2 * kt][1], T{}), pack2(p[2 * kt][2], p[2 * kt][3], T{}),
                           pack2(p[2 * kt + 1][0], p[2 * kt + 1][1], T{}),
                           pack2(p[2 * kt + 1][2], p[2 * kt + 1][3], T{})};
#pragma unroll
    for (int d2 = 0; d2 < D / 16; ++d2) {
      uint32_t b[4];
      ldmatrix_x4_trans(b, vs + kv_swizzled<D, kPanelRows>(col0 + kt * 16 + (lane / 8 % 2) * 8 + lane % 8,
                                                           d2 * 2 + lane / 16));
      mma_16816<T>(o[2 * d2], a, b[0], b[1]);
      mma_16816<T>(o[2 * d2 + 1], a, b[2], b[3]);
    }
  }
}
// [pack-pv]

// [pack-fp8-pv]
/// Step 6 with an fp8 V tile: O += P V with V's B fragments gathered and converted in registers.
/// A lane loads 4 fp8 values (dims 32j + 4r .. +3, r = lane / 4) of each of its 4 tokens
/// (k = 2c, 2c+1, 2c+8, 2c+9 of the k16 step), pairs the tokens' bytes (two byte permutes per
/// token pair) and converts them: one load per token feeds 4 n8 tiles. So the output columns are
/// permuted: n8 tile 4j + t, column n holds dim 32j + 4n + t (write_rows undoes it); V's scale
/// waits for the output.
/// @tparam T storage type of q, which P and the converted V tile take in the mma
/// @tparam D head dimension
/// @tparam kColTokens KV tokens of this warp's slice of the tile (a multiple of 16)
/// @tparam kPanelRows layout of the V tile, as qk_tile_fp8's K tile
template <typename T, int D, int kColTokens, int kPanelRows = 0>
__device__ __forceinline__ void pv_tile_fp8(const float (&p)[kColTokens / 8][4], const uint8_t* v8, int col0,
                                            int lane, float (&o)[D / 8][4]) {
  const int r = lane / 4, c = lane % 4;
#pragma unroll
  for (int kt = 0; kt < kColTokens / 16; ++kt) {
    const uint32_t a[4] = {pack2(p[2 * kt][0], p[2 * kt][1], T{}), pack2(p[2 * kt][2], p[2 * kt][3], T{}),
                           pack2(p[2 * kt + 1][0], p[2 * kt + 1][1], T{}),
                           pack2(p[2 * kt + 1][2], p[2 * kt + 1][3], T{})};
    const int t0 = col0 + kt * 16 + 2 * c;  // tokens t0, t0 + 1 (k = 2c, 2c + 1) and t0 + 8, t0 + 9
#pragma unroll
    for (int j = 0; j < D / 32; ++j) {
      const int chunk = 2 * j + r / 4, byte = 4 * (r % 4);  // dims 32j + 4r .. +3
      const uint32_t w0 = *reinterpret_cast<const uint32_t*>(v8 + fp8_kv_swizzled<D, kPanelRows>(t0, chunk) + byte);
      const uint32_t w1 = *reinterpret_cast<const uint32_t*>(v8 + fp8_kv_swizzled<D, kPanelRows>(t0 + 1, chunk) + byte);
      const uint32_t w8 = *reinterpret_cast<const uint32_t*>(v8 + fp8_kv_swizzled<D, kPanelRows>(t0 + 8, chunk) + byte);
      const uint32_t w9 = *reinterpret_cast<const uint32_t*>(v8 + fp8_kv_swizzled<D, kPanelRows>(t0 + 9, chunk) + byte);
      // byte i of each token next to byte i of the other: (dim +0, +1) and (dim +2, +3) pairs
      const uint32_t k01[2] = {__byte_perm(w0, w1, 0x5140), __byte_perm(w0, w1, 0x7362)};
      const uint32_t k89[2] = {__byte_perm(w8, w9, 0x5140), __byte_perm(w8, w9, 0x7362)};
#pragma unroll
      for (int t = 0; t < 4; ++t) {
        const int shift = 16 * (t % 2);
        mma_16816<T>(o[4 * j + t], a, fp8x2_to_16x2(static_cast<uint16_t>(k01[t / 2] >> shift), T{}),
                     fp8x2_to_16x2(static_cast<uint16_t>(k89[t / 2] >> shift), T{}));
      }
    }
  }
}
// [pack-fp8-pv]

// [pack-warp-merge]
/// Step 7: completes each row's sum across its quad, then the warps that shared a warp row's
/// tokens merge their states (the merge operator, in shared memory `park` that the K/V tiles no
/// longer need) into warp column 0. Returns true for the threads that write rows (warp column
/// 0 of an active warp row). Call from every thread of the CTA.
/// @tparam KV storage type of K and V (the K/V tiles, whose space holds the parked states)
/// @tparam D head dimension
/// @tparam M tile rows
/// @tparam N KV tokens per tile
/// @tparam Layout PackWarpLayout<D, M, N>: its kCols warp columns share a warp row's tokens
template <typename KV, int D, int M, int N, typename Layout>
__device__ __forceinline__ bool merge_warp_columns(void* park, bool active, int q_row, int col_warp, int lane,
                                                   SoftmaxRow<> (&row_state)[2], float (&o)[D / 8][4]) {
#pragma unroll
  for (int i = 0; i < 2; ++i) {
    row_state[i].l += __shfl_xor_sync(0xffffffffu, row_state[i].l, 1);
    row_state[i].l += __shfl_xor_sync(0xffffffffu, row_state[i].l, 2);
  }
  if constexpr (Layout::kCols > 1) {
    static_assert((Layout::kCols - 1) * M * (D + 2) * 4 <= patlab::pack_smem_bytes(D, M, N, sizeof(KV)) - M * D * 2,
                  "the parked states fit in the K/V tiles");
    float* park_o = static_cast<float*>(park);                 // [kCols - 1][M][D]
    float* park_ml = park_o + (Layout::kCols - 1) * M * D;     // [kCols - 1][M][2]
    if (active && col_warp > 0) {
#pragma unroll
      for (int i = 0; i < 2; ++i) {
        const int r = q_row + lane / 4 + 8 * i;
        float* po = park_o + ((col_warp - 1) * M + r) * D;
#pragma unroll
        for (int dt = 0; dt < D / 8; ++dt)
          *reinterpret_cast<float2*>(po + dt * 8 + (lane % 4) * 2) = make_float2(o[dt][2 * i], o[dt][2 * i + 1]);
        if (lane % 4 == 0) {
          park_ml[((col_warp - 1) * M + r) * 2] = row_state[i].m;
          park_ml[((col_warp - 1) * M + r) * 2 + 1] = row_state[i].l;
        }
      }
    }
    __syncthreads();
    if (active && col_warp == 0) {
#pragma unroll
      for (int i = 0; i < 2; ++i) {
        const int r = q_row + lane / 4 + 8 * i;
        for (int c = 0; c < Layout::kCols - 1; ++c) {
          SoftmaxRow<> parked;
          parked.m = park_ml[(c * M + r) * 2];
          parked.l = park_ml[(c * M + r) * 2 + 1];
          const MergeWeights w = row_state[i].merge(parked);
          const float* po = park_o + (c * M + r) * D;
#pragma unroll
          for (int dt = 0; dt < D / 8; ++dt) {
            const float2 v = *reinterpret_cast<const float2*>(po + dt * 8 + (lane % 4) * 2);
            o[dt][2 * i] = o[dt][2 * i] * w.self + v.x * w.other;
            o[dt][2 * i + 1] = o[dt][2 * i + 1] * w.self + v.y * w.other;
          }
        }
      }
    }
  }
  return active && col_warp == 0;
}
// [pack-warp-merge]

// [pack-write]
/// Step 8: writes both rows of this lane (tile rows from `q_row`, `rows` valid, pack entries from
/// `first`): the output row when the query's slot is -1, else the partial (o normalised by its
/// own sum, times the V scale: fp32, or T where args.partial_half) and its natural-log lse into
/// the query's slot.
/// @tparam T storage type of q and the output (__half or __nv_bfloat16)
/// @tparam D head dimension
/// @tparam kFp8Columns o's columns in pv_tile_fp8's order: this lane holds dims 32j + 8c .. +7
/// (c = lane % 4), written as one run each
template <typename T, int D, bool kFp8Columns = false>
__device__ __forceinline__ void write_rows(const PackKernelArgs& args, int first, int rows, int q_row, int kv_head,
                                           int lane, const SoftmaxRow<> (&row_state)[2], const float (&o)[D / 8][4]) {
  const int g = args.group;
#pragma unroll
  for (int i = 0; i < 2; ++i) {
    const int r = q_row + lane / 4 + 8 * i;
    if (r >= rows) continue;
    const int entry = first + r / g;
    const int request = args.queries[entry], slot = args.slots[entry];
    const int head = kv_head * g + r % g;
    const float inv = row_state[i].inv_sum() * args.v_scale;
    // the lane's values of the row in dim order: pairs (dims 8 dt + 2c, +1), or (fp8 columns)
    // runs of 8 (dims 32j + 8c + k: n8 tile 4j + k % 4, column 2c + k / 4)
    const auto value = [&](int dt, int e) {
      if constexpr (kFp8Columns) {
        const int k = (dt % 4) * 2 + e;
        return o[(dt / 4) * 4 + k % 4][2 * i + k / 4] * inv;
      } else {
        return o[dt][2 * i + e] * inv;
      }
    };
    // element offset within the row of the lane's pair dt (2 values)
    const auto dim = [&](int dt) {
      return kFp8Columns ? (dt / 4) * 32 + (lane % 4) * 8 + (dt % 4) * 2 : dt * 8 + (lane % 4) * 2;
    };
    if (slot < 0) {
      T* dst = static_cast<T*>(args.out) + (static_cast<int64_t>(request) * args.num_q_heads + head) * D;
#pragma unroll
      for (int dt = 0; dt < D / 8; ++dt)
        *reinterpret_cast<uint32_t*>(dst + dim(dt)) = pack2(value(dt, 0), value(dt, 1), T{});
    } else {
      const int64_t row = static_cast<int64_t>(slot) * args.num_q_heads + head;
      if (args.partial_half) {
        T* dst = static_cast<T*>(args.partial_o) + row * D;
#pragma unroll
        for (int dt = 0; dt < D / 8; ++dt)
          *reinterpret_cast<uint32_t*>(dst + dim(dt)) = pack2(value(dt, 0), value(dt, 1), T{});
      } else {
        float* dst = static_cast<float*>(args.partial_o) + row * D;
#pragma unroll
        for (int dt = 0; dt < D / 8; ++dt)
          *reinterpret_cast<float2*>(dst + dim(dt)) = make_float2(value(dt, 0), value(dt, 1));
      }
      if (lane % 4 == 0) args.partial_lse[row] = row_state[i].partial_lse();
    }
  }
}
// [pack-write]

/// Whether an M-row pack tile with K/V of type KV converts fp8 in registers
/// (patlab::pack_fp8_in_registers()): pack_pipeline and the caller's write_rows both follow it.
/// @tparam KV storage type of K and V (__half, __nv_bfloat16 or __nv_fp8_e4m3)
/// @tparam M tile rows
template <typename KV, int M>
inline constexpr bool kFp8InRegisters = pack_fp8_in_registers(M, static_cast<int>(sizeof(KV)));

// [pack-pipeline-steps]
/// Step 3: the pipeline of one pack tile over `kv_len` tokens, steps 4-6 per KV tile, on a ring of
/// kStages K/V buffers from buffer `stage0`. On entry the Q tile and KV tile 0 (in buffer `stage0`)
/// have been issued and committed; the pipeline issues tiles 1 .. kStages - 2 itself, then at each
/// tile, first, the one kStages - 1 ahead, into the buffer that the tile before it freed, so that
/// kStages - 1 tiles are in flight while the CTA waits for this one. The first time there is no
/// tile of its own left to issue, `prefetch(stage)` may issue the first tile of whatever runs next
/// into buffer (stage0 + tiles) % kStages (stage 10's next work item; the pack kernel issues
/// nothing). `mask_scores(s, token0)` sees each tile's scores before the softmax (token0: the range
/// token of s[0]; sparse FSA's spans mask there, everyone else does nothing). `active` is false for
/// a warp with no rows to compute.
/// Call from every thread of the CTA (kThreads; warps past the tile's layout pass active =
/// false). On return every warp is done with every tile (only the prefetch may be in flight).
/// @tparam T storage type of q (and of the tiles the mma reads)
/// @tparam KV storage type of K and V (T, or __nv_fp8_e4m3)
/// @tparam D head dimension
/// @tparam M tile rows
/// @tparam N KV tokens per tile
/// @tparam kThreads threads of the CTA, which issue the copies (at least PackWarpLayout's)
/// @tparam kStages K/V buffers of the ring (at least 2; pack_kv_stages())
/// @tparam kFp8Registers fp8 converted in registers (qk_tile_fp8, pv_tile_fp8; output columns
/// permuted, see write_rows) instead of by convert_kv_tile into `k16`, `v16` for qk_tile and
/// pv_tile: kFp8InRegisters (one warp row) unless the caller needs the shared pass
/// @tparam Prefetch callable as prefetch(int stage)
/// @tparam MaskScores callable as mask_scores(float (&s)[kColTokens / 8][4], int token0)
template <typename T, typename KV, int D, int M, int N, int kThreads, int kStages,
          bool kFp8Registers = kFp8InRegisters<KV, M>, typename Prefetch, typename MaskScores>
__device__ __forceinline__ void pack_pipeline(const T* q_s, KV* k_s, KV* v_s, T* k16, T* v16,
                                              const KvTileLoader<KV, D, N, kThreads>& load_kv, int stage0, int kv_len,
                                              bool active, int q_row, int col0, float scale, int lane, int tid,
                                              SoftmaxRow<> (&row_state)[2], float (&o)[D / 8][4], Prefetch&& prefetch,
                                              MaskScores&& mask_scores) {
  static_assert(kStages >= 2, "one buffer computed while the next lands");
  constexpr bool kFp8 = sizeof(KV) == 1;
  static_assert(!kFp8Registers || kFp8InRegisters<KV, M>, "fp8 in registers needs an fp8 cache and one warp row");
  constexpr int kColTokens = PackWarpLayout<D, M, N>::kColTokens;
  const int num_tiles = (kv_len + N - 1) / N;
  // the rest of the ring's first fill: one commit group per tile, empty past the range, so that
  // kStages - 1 groups follow tile i's when the loop waits for it
#pragma unroll
  for (int i = 1; i < kStages - 1; ++i) {
    if (i < num_tiles) load_kv((stage0 + i) % kStages, i * N);
    cp_async_commit();
  }
  bool prefetched = false;
  for (int tile = 0; tile < num_tiles; ++tile) {
    const int ahead = tile + kStages - 1;
    if (ahead < num_tiles) {
      load_kv((stage0 + ahead) % kStages, ahead * N);  // into the buffer of tile - 1
    } else if (!prefetched) {
      prefetch((stage0 + num_tiles) % kStages);
      prefetched = true;
    }
    cp_async_commit();
    cp_async_wait<kStages - 1>();  // all but the newest kStages - 1 groups have landed: this tile (and Q)
    __syncthreads();
    const int stage = (stage0 + tile) % kStages;
    const KV* kt = k_s + stage * N * D;
    const KV* vt = v_s + stage * N * D;
    if constexpr (kFp8 && !kFp8Registers) {
      convert_kv_tile<T, D, N, kThreads>(reinterpret_cast<const uint8_t*>(kt), reinterpret_cast<const uint8_t*>(vt),
                                         k16, v16, tid);
      __syncthreads();  // the converted tiles are complete
    }
    // the 16-bit tiles qk_tile and pv_tile read: the stage itself, or its converted copy
    const T* ks = kFp8 ? k16 : reinterpret_cast<const T*>(kt);
    const T* vs = kFp8 ? v16 : reinterpret_cast<const T*>(vt);
    if (active) {
      float s[kColTokens / 8][4];
      if constexpr (kFp8Registers)
        qk_tile_fp8<T, D, kColTokens>(q_s, reinterpret_cast<const uint8_t*>(kt), q_row, col0, lane, s);
      else
        qk_tile<T, D, kColTokens>(q_s, ks, q_row, col0, lane, s);
      mask_scores(s, tile * N + col0);
      softmax_update<D, kColTokens>(s, tile * N + col0, kv_len, scale, lane, row_state, o);
      if constexpr (kFp8Registers)
        pv_tile_fp8<T, D, kColTokens>(s, reinterpret_cast<const uint8_t*>(vt), col0, lane, o);
      else
        pv_tile<T, D, kColTokens>(s, vs, col0, lane, o);
    }
    __syncthreads();  // the next iteration's copies (and conversion) overwrite this tile's buffers
  }
}
// [pack-pipeline-steps]

// [packed-kernel]
/// One CTA per (pack, KV head): a flat grid of packs in the bucket x Hkv, KV heads fastest,
/// PackWarpLayout<D, M, N> warps.
/// The steps of the file comment, one __device__ function each: gather_q_tile, KvTileLoader,
/// pack_pipeline, convert_kv_tile or qk_tile_fp8 and pv_tile_fp8 (fp8), qk_tile, load_entry_masks
/// and mask_entries (masked instances only), softmax_update, pv_tile, merge_warp_columns, write_rows.
/// @tparam T storage type of q and the output (__half or __nv_bfloat16)
/// @tparam KV storage type of K and V: T, or __nv_fp8_e4m3 (converted in registers with one warp
/// row, by a shared pass into a 16-bit copy with more: pack_fp8_in_registers())
/// @tparam D head dimension
/// @tparam M tile rows (16, 32 or 64): one warp row per 16 rows
/// @tparam N KV tokens per tile (16, 32, 64 or 128), shared among the warps of a warp row
/// @tparam kSpanStages 0: the plain instances of stages 4-8 and NSA's order; 2 or 3 (kKvStages,
/// kSpanKvStages): the masked instances of FSA's spans, which apply PackKernelArgs::entry_mask, on
/// a ring of that many 16-bit stages
/// @tparam kTails true: the tails instances of stages 7-8's leaf tails (PlannerOptions::take_leaves),
/// which apply PackKernelArgs::own_len and entry_tail, on the plain ring (kSpanStages 0)
template <typename T, typename KV, int D, int M, int N, int kSpanStages = 0, bool kTails = false>
__global__ void __launch_bounds__(PackWarpLayout<D, M, N>::kThreads)
    pack_attention_kernel(PackKernelArgs args, const int32_t* __restrict__ bucket) {
  using Layout = PackWarpLayout<D, M, N>;
  constexpr bool kFp8 = sizeof(KV) == 1;
  static_assert(sizeof(KV) == sizeof(T) || kFp8, "K/V are stored as the 16-bit type or as fp8");
  static_assert(M % kWarpRows == 0 && N % 16 == 0 && D % 16 == 0, "tile shapes are multiples of the mma shape");
  constexpr bool kMasked = kSpanStages > 0;
  static_assert(!(kMasked && kTails), "a span mask or leaf tails, not both");
  static_assert(!kMasked || (!kFp8 && span_ring_fits(D, M, N, kSpanStages)),
                "the masked instances (FSA's spans) read 16-bit K and V on a span ring that fits");
  static_assert(pack_smem_bytes<KV, D, M, N, kSpanStages>() <= kPackSmemBudget,
                "the Q tile and the K/V stages fit shared memory");
  static_assert(pack_register_cost(D, Layout::kColTokens) <= kPackAccumulatorBudget,
                "the output and score accumulators fit the register budget (tile_budget.hpp)");
  constexpr int kThreads = Layout::kThreads;
  using Loader = KvTileLoader<KV, D, N, kThreads>;
  constexpr int kColTokens = Layout::kColTokens;
  extern __shared__ __align__(128) unsigned char smem[];
  T* q_s = reinterpret_cast<T*>(smem);
  constexpr int kStages = pack_instance_stages<KV, D, M, N, kSpanStages>();
  KV* k_s = reinterpret_cast<KV*>(q_s + M * D);  // kStages K tiles, then kStages V tiles
  KV* v_s = k_s + kStages * N * D;
  // fp8 converted by a shared pass: the 16-bit K and V tiles it writes, after the ring
  T* k16 = reinterpret_cast<T*>(v_s + kStages * N * D);
  T* v16 = k16 + N * D;
  // A bucket chained behind this one (stages 7-8, --bucket-launch chain) may begin once every CTA
  // of this grid has begun: it reads nothing this grid writes.
  hopper::allow_dependents();

  // [pack-cta-order]
  // One flat grid, KV heads fastest: the block scheduler starts CTAs in index order, so a bucket
  // ordered longest pack first starts every head of a long pack before any shorter pack.
  const int hkv = args.pack_kv_head ? 1 : args.geo.num_kv_heads;
  const int pack = bucket[blockIdx.x / hkv];
  const int kv_head = args.pack_kv_head ? args.pack_kv_head[pack] : static_cast<int>(blockIdx.x % hkv);
  // [pack-cta-order]
#ifdef PATLAB_CTA_TRACE
  const int trace_record = cta_trace_begin(args.trace, cta_trace_tag(M, N));
#endif
  const int tid = threadIdx.x, lane = tid % 32, warp = tid / 32;
  const int row_warp = warp % Layout::kRows, col_warp = warp / Layout::kRows;
  const int first = args.query_begin[pack];
  const int rows = (args.query_begin[pack + 1] - first) * args.group;
  const int kv_len = args.kv_len[pack];

  gather_q_tile<T, D, M, kThreads>(args, q_s, first, rows, kv_head, tid);
  const Loader load_kv(static_cast<const KV*>(args.k_pool), static_cast<const KV*>(args.v_pool),
                       args.blocks + args.block_begin[pack], args.geo, kv_head, kv_len, k_s, v_s, tid);
  load_kv(0, 0);
  cp_async_commit();  // group 0: the Q tile and KV tile 0

  // [pack-pipeline]
  // Step 3: the pipeline (pack_pipeline), from stage 0, with nothing to prefetch after the pack.
  const bool active = row_warp * kWarpRows < rows;  // a warp whose rows are all padding skips the math
  const int q_row = row_warp * kWarpRows;           // first tile row of this warp
  const int col0 = col_warp * kColTokens;           // first tile token of this warp
  const float scale = kLog2e * rsqrtf(static_cast<float>(D)) * args.k_scale;  // K's scale folded in
  float o[D / 8][4] = {};  // accumulators of both rows, in the C fragment layout of mma.m16n8k16
  SoftmaxRow<> row_state[2];  // rows lane/4 and lane/4 + 8 of the warp's slice; l: this lane's part
  uint32_t entry_masks[2] = {};  // the masked instances: blocks chosen by this lane's two rows
  if constexpr (kMasked) load_entry_masks(args, first, rows, q_row, lane, entry_masks);
  int2 entry_tails[2] = {};  // the tails instances: this lane's two rows' own tails
  int own = kv_len;          // the tails instances: the pack's own range, before its tails
  if constexpr (kTails) {
    load_entry_tails(args, first, rows, q_row, lane, entry_tails);
    own = args.own_len[pack];
  }
  pack_pipeline<T, KV, D, M, N, kThreads, kStages>(
      q_s, k_s, v_s, k16, v16, load_kv, 0, kv_len, active, q_row, col0, scale, lane, tid, row_state, o,
      [](int) {},
      [&](float (&s)[kColTokens / 8][4], int token0) {
        if constexpr (kMasked) mask_entries<kColTokens>(entry_masks, s, token0, args.mask_block_tokens, lane);
        if constexpr (kTails) mask_tails<kColTokens>(entry_tails, own, s, token0, lane);
      });
  cp_async_wait<0>();
  // [pack-pipeline]

  if (merge_warp_columns<KV, D, M, N, Layout>(k_s, active, q_row, col_warp, lane, row_state, o))
    write_rows<T, D, kFp8InRegisters<KV, M>>(args, first, rows, q_row, kv_head, lane, row_state, o);
#ifdef PATLAB_CTA_TRACE
  cta_trace_end(args.trace, trace_record);
#endif
}
// [packed-kernel]

}  // namespace patlab::cuda
