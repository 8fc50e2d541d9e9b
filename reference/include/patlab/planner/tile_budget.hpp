/// @file tile_budget.hpp
/// @brief What one pack tile costs at a head dim: the warp layout of the pack kernel, its
/// shared memory and its fp32 accumulator registers, and whether the tile fits the budget.
///
/// Written once for both sides: the planner (tile_for) never picks a tile that does not fit,
/// and the pack kernel (cuda/include/patlab/cuda/packed_tile.cuh) static_asserts the same rule,
/// so cuda/packed_tile.cu builds only the tiles that fit. Plain constexpr C++: no CUDA needed.
///
/// The two budgets, per head dim d, tile m x n and KV element size:
///  - shared memory: the Q tile (m x d) plus the ring's K and V tiles (n x d), 16-bit each, at
///    most kPackSmemBudget (the opt-in limit of one CTA on sm_90). At d=256 the n = 128 tiles
///    need 264-288 KB and do not fit; everything else does. With an fp8 KV cache the tiles hold
///    fp8 (1 byte per element): kKvStages of them and one converted 16-bit K and V tile (the
///    bytes of the 16-bit ring), or, for a tile of one warp row (which converts in registers),
///    pack_kv_stages() fp8 stages: twice kKvStages in the 16-bit ring's bytes at d <= 128, three
///    at d = 256, where four would leave one CTA per SM (16x64: 136 KB) and three fit two (104
///    KB). A tile fits exactly when it fits with a 16-bit cache (the planner's tile table and the
///    compiled instances are the same for both caches).
///  - registers: each thread holds its rows' output accumulator (d/2 floats: two rows x d/8
///    n8 tiles x 2) and its scores (kColTokens/2 floats, which live on as the 16-bit A
///    fragments of P V). The register cost d/2 + kColTokens must stay within
///    kPackAccumulatorBudget; a tile over it first gets more warps across its KV tile (up to
///    kMaxPackWarps, halving kColTokens), and only fails when even that is not enough. The
///    budget is measured, not derived: with `-Xptxas -v` on sm_90, instances at cost <= 160
///    used at most 255 registers without spilling (d=256 32x64: 255 registers, no spill), while
///    cost 192 spilled (d=128 64x128 with 4 warps: 320 bytes; d=256 64x64 with 4 warps: 364
///    bytes). So the 64-row tiles at d=256 and the 64x128 tile at d=128 run 8 warps.
#pragma once

#include <string>

#include "patlab/error.hpp"
#include "patlab/planner/plan.hpp"

namespace patlab {

/// K/V stages of a pack CTA's ring (16-bit tiles, or fp8 ones converted by a shared pass): the
/// copies of one tile in flight while the warps compute on the other. A third stage for the
/// 16-row tile (two CTAs per SM at d = 128 instead of three) lost on the H200 twice
/// (docs/results/2026-12-03-h200-pack-ring run 1; docs/results/2026-12-03-h200-nosharing-layout
/// run 4: 3% faster on `8_32768` at 64/8, 2-4% slower on a heterogeneous batch and a tree, up to
/// 23% on `16_32768` through the wave fill's new choices).
inline constexpr int kKvStages = 2;
/// Rows of one warp's slice of the tile (the M of mma.m16n8k16).
inline constexpr int kWarpRows = 16;
/// Warps of a pack CTA when the tile allows: a tile of fewer rows splits its KV tile's tokens
/// among warps instead (16 tokens each at least), so that small packs get up to 4 warps issuing
/// copies and math (1 for the 16x16 tile, 2 for 16x32 and 32x16).
inline constexpr int kPackWarps = 4;
/// Most warps of a pack CTA: a tile over the register budget with kPackWarps warps splits its
/// KV tile among twice as many.
inline constexpr int kMaxPackWarps = 8;
/// Bytes of one element of a tile in shared memory (fp16/bf16).
inline constexpr int kTileElemBytes = 2;
/// Most dynamic shared memory one pack CTA may take: the per-block opt-in limit of sm_90
/// (227 KB). A device with less is refused at launch setup (configure_pack_tile).
inline constexpr int kPackSmemBudget = 227 * 1024;
/// Most register cost (d/2 + kColTokens, see the file comment) of one thread of a pack CTA.
inline constexpr int kPackAccumulatorBudget = 160;

/// Warps down the rows of an m-row tile (16 rows each).
constexpr int pack_warp_rows(int m) { return m / kWarpRows; }
/// Register cost of one thread whose warp takes `col_tokens` tokens of each KV tile at head dim d.
constexpr int pack_register_cost(int d, int col_tokens) { return d / 2 + col_tokens; }
/// Warps across an n-token KV tile (a multiple of 16 tokens each): kPackWarps / rows, at most
/// n / 16; doubled (up to kMaxPackWarps warps in all) while the register cost at head dim d is
/// over kPackAccumulatorBudget.
constexpr int pack_warp_cols(int d, int m, int n) {
  const int rows = pack_warp_rows(m);
  int cols = (kPackWarps / rows < n / 16) ? kPackWarps / rows : n / 16;
  while (pack_register_cost(d, n / cols) > kPackAccumulatorBudget && rows * cols * 2 <= kMaxPackWarps &&
         n / (cols * 2) >= 16)
    cols *= 2;
  return cols;
}
/// KV tokens of one warp's slice of an n-token tile.
constexpr int pack_col_tokens(int d, int m, int n) { return n / pack_warp_cols(d, m, n); }
/// Threads of a pack CTA.
constexpr int pack_threads(int d, int m, int n) { return pack_warp_rows(m) * pack_warp_cols(d, m, n) * 32; }
// [pack-fp8-ring]
/// Whether an m-row pack tile converts an fp8 cache in registers (qk_tile_fp8, pv_tile_fp8): with
/// one warp row each warp converts only the tokens it computes on; with more, every warp row would
/// convert the whole tile, and one shared pass into a 16-bit copy (convert_kv_tile) converts it once.
constexpr bool pack_fp8_in_registers(int m, int kv_elem_bytes) {
  return kv_elem_bytes < kTileElemBytes && pack_warp_rows(m) == 1;
}
/// Head dim from which an fp8 ring converted in registers takes kFp8WideStages stages.
inline constexpr int kFp8WideHeadDim = 256;
/// fp8 stages of a ring converted in registers at d >= kFp8WideHeadDim: at d = 256 the 16x64
/// tile's four stages (128 KB) hold one CTA on an SM, four warps, too few to hide the conversion's
/// latency (fp8 took 1.06x the time of fp16 on 16 requests of 8192 tokens, Gemma-2-9B, H200,
/// docs/results/2026-12-03-h200-loader-checks); three (96 KB) fit two. Not at d = 128: three
/// stages there with four CTAs per SM (registers capped at 128 by __launch_bounds__, spilling in
/// the loop) took 1.10-1.57x the time of four stages with three CTAs (run 4 of the same folder).
inline constexpr int kFp8WideStages = 3;
/// K/V stages of an m-row pack CTA's ring at head dim d: kKvStages, or, converting fp8 in
/// registers, twice as many fp8 stages in the bytes that the 16-bit ring takes (kFp8WideStages
/// from kFp8WideHeadDim on).
constexpr int pack_kv_stages(int d, int m, int kv_elem_bytes = kTileElemBytes) {
  if (!pack_fp8_in_registers(m, kv_elem_bytes)) return kKvStages;
  return d >= kFp8WideHeadDim ? kFp8WideStages : 2 * kKvStages;
}
/// Dynamic shared memory of a pack CTA: the Q tile plus kKvStages K and V tiles of 16 bits. An
/// fp8 cache takes the same bytes with kKvStages fp8 stages and one converted 16-bit K and V
/// tile; converted in registers, its pack_kv_stages() fp8 stages (the same bytes below
/// kFp8WideHeadDim, three quarters of them from it on).
constexpr int pack_smem_bytes(int d, int m, int n, int kv_elem_bytes = kTileElemBytes) {
  const int ring = pack_fp8_in_registers(m, kv_elem_bytes)
                       ? 2 * pack_kv_stages(d, m, kv_elem_bytes) * n * d * kv_elem_bytes
                       : 2 * kKvStages * n * d * kTileElemBytes;
  return m * d * kTileElemBytes + ring;
}
// [pack-fp8-ring]

/// True when the m x n tile fits head dim `d`'s shared-memory and register budgets. The same
/// answer for every KV cache: a 16-bit ring is the largest (pack_smem_bytes()), so the planner's
/// tiles and the compiled instances do not depend on the cache; `kv_elem_bytes` is accepted for
/// the callers that pass it.
constexpr bool pack_tile_fits(int d, int m, int n, int kv_elem_bytes = kTileElemBytes) {
  static_cast<void>(kv_elem_bytes);
  return pack_smem_bytes(d, m, n) <= kPackSmemBudget &&
         pack_register_cost(d, pack_col_tokens(d, m, n)) <= kPackAccumulatorBudget;
}
/// pack_tile_fits() for a TileShape.
constexpr bool tile_fits(TileShape tile, int head_dim, int kv_elem_bytes) {
  return pack_tile_fits(head_dim, tile.m, tile.n, kv_elem_bytes);
}

/// Shared memory of one SM on sm_90 (H100, H200), of which each resident CTA also takes
/// kSmemReservedPerCta for the system.
inline constexpr int kSmemPerSm = 228 * 1024;
/// Shared memory the system reserves per resident CTA on sm_80 and later.
inline constexpr int kSmemReservedPerCta = 1024;
/// Most resident threads of one SM (sm_80 and later).
inline constexpr int kMaxThreadsPerSm = 2048;
/// Most resident CTAs of one SM (sm_90).
inline constexpr int kMaxCtasPerSm = 32;

/// The CTAs of an m x n pack tile one SM holds at head dim d, from shared memory and threads
/// only: the host's estimate where no GPU answers (registers can lower it; the GPU stages ask
/// the occupancy calculator instead). At d=128 the 16x64 tile's 70 KB give 3, 64x64's 81 KB 2;
/// at d=256 16x64 gives 1 with a 16-bit cache (136 KB), 2 with fp8 (104 KB).
constexpr int estimate_ctas_per_sm(int d, int m, int n, int kv_elem_bytes = kTileElemBytes) {
  const int by_smem = kSmemPerSm / (pack_smem_bytes(d, m, n, kv_elem_bytes) + kSmemReservedPerCta);
  const int by_threads = kMaxThreadsPerSm / pack_threads(d, m, n);
  const int fit = by_smem < by_threads ? by_smem : by_threads;
  return fit < kMaxCtasPerSm ? (fit > 1 ? fit : 1) : kMaxCtasPerSm;
}

/// Largest KV tile of the pack kernel's tails instances (stages 7-8's leaf tails,
/// PlannerOptions::take_leaves): the default table's cap (kDefaultMaxKvTile), which halves the
/// instances compiled; a pack with tails takes at most this n whatever `--max-kv-tile` says.
inline constexpr int kTailMaxKvTile = 64;

// [span-ring]
/// KV tokens per tile of sparse decode's selected branch (NSA's packs and FSA's spans): one
/// selection block of l' = 64 tokens. The span instances of the pack kernel are built for it and
/// for kSpanNarrowKvTile.
inline constexpr int kSpanKvTile = 64;
/// The narrower KV tile FSA's span packs can take by choice (`patlab sparse --span-kv-tile 32`):
/// half a selection block per tile, so each of a warp's chains of dependent math (QK^T, softmax,
/// PV) is half as long and holds half the score and K/V fragments. The 64-row span instance at
/// d = 128 takes 168 registers and 48 KB on 32-token tiles, 254 and 80 KB on 64-token ones
/// (cuobjdump, run k1 of docs/results/2026-12-07-fsa-kv-tile): three CTAs per SM instead of two,
/// twelve warps to hide each other's chains; FSA's branch 0.92x the time at group 4 there.
inline constexpr int kSpanNarrowKvTile = 32;
/// Whether span instances are built for KV tiles of `n` tokens: kSpanKvTile or kSpanNarrowKvTile.
constexpr bool span_kv_tile_built(int n) { return n == kSpanKvTile || n == kSpanNarrowKvTile; }
/// K/V stages of the deeper ring FSA's span packs can take by choice (`patlab sparse
/// --span-stages 3`): two tiles in flight while a CTA computes one, against kKvStages' one, the
/// default. Measured on the H200 (docs/results/2026-12-03-h200-span-ring): no faster, under a
/// CUDA graph 1.02-1.07x slower on every batch measured, because a span CTA waits on its warps'
/// chains of dependent math, not on its next tile (Nsight Compute: the same kernel times on either
/// ring; a warp issues every 5.38 cycles with its scheduler 37% busy, run p1 of
/// docs/results/2026-12-07-fsa-span-stages), and the extra 32 KB (d = 128) cost 16- and 32-row
/// spans a CTA per SM. On 64-row packs, whose registers hold them to two CTAs per SM either way,
/// three stages were no faster too (0.99-1.05x the time, H100, run t1 of the same folder).
inline constexpr int kSpanKvStages = 3;
/// Dynamic shared memory of a span CTA of an m x n tile at head dim d with a ring of `stages`
/// 16-bit K and V tiles: the Q tile plus the ring.
constexpr int span_smem_bytes(int d, int m, int n, int stages) {
  return m * d * kTileElemBytes + 2 * stages * n * d * kTileElemBytes;
}
/// Whether span instances with a ring of `stages` are built: kKvStages or kSpanKvStages.
constexpr bool span_ring_built(int stages) { return stages == kKvStages || stages == kSpanKvStages; }
/// Whether a built span ring of `stages` fits an m x n tile at head dim d.
constexpr bool span_ring_fits(int d, int m, int n, int stages) {
  return span_ring_built(stages) && span_smem_bytes(d, m, n, stages) <= kPackSmemBudget;
}
// [span-ring]

// [hopper-budget]
/// Stages of the stage-8 K/V ring of a 64-row tile (hopper_tile.cuh): the producer's copies of
/// one tile are in flight while the consumers hold the two they compute on (consume_range); two
/// such CTAs fit an SM at d = 128.
inline constexpr int kHopperStages = 3;
/// Stages of the ring of a 128- or 192-row tile, whose CTA has an SM to itself (registers); at
/// 192 rows and d = 128 the Q tile and three stages take 148 KB.
inline constexpr int kHopperWideStages = 3;
/// Stages of the ring of an m-row stage-8 (or stage-9) tile.
constexpr int hopper_stages(int m) { return m > 64 ? kHopperWideStages : kHopperStages; }
/// KV tokens per stage of the ring of stage 8's m-row tile: kClusterKvTile (stage 9's) for the
/// 128-row CTA, which measured 0.91-0.97x its time on 64-token stages on an H200 (half the waits,
/// row maxima and stage releases per token; docs/results/2026-12-06-tall-wide, run 2);
/// kHopperKvTile for the 64-row CTA (two to an SM) and the 192-row one (at d = 128 a ring of
/// 128-token stages does not fit beside its Q tile).
constexpr int hopper_kv_tile(int m) { return m == 128 ? kClusterKvTile : kHopperKvTile; }
/// Threads of a warpgroup (wgmma's unit, and the stage-8 producer's).
inline constexpr int kWarpgroupThreads = 128;
/// Bytes of one mbarrier (hopper/mbarrier.cuh).
inline constexpr int kMbarrierBytes = 8;
/// Slack for aligning the stage-8 tiles to the 1024-byte swizzle atom: the kernel declares its
/// dynamic shared memory 128-byte aligned, so it skips at most 1024 - 128 bytes to the next atom.
inline constexpr int kHopperAlignSlack = 1024 - 128;
/// Threads of a stage-8 CTA with an m-row tile: a producer warpgroup and m / 64 consumers.
constexpr int hopper_threads(int m) { return kWarpgroupThreads * (1 + m / 64); }
/// Dynamic shared memory of a stage-8 CTA at head dim d and m rows with n-token K/V tiles
/// (hopper_kv_tile(m); stage 9's kClusterKvTile): the Q tile, hopper_stages(m) K and V tiles
/// (16-bit), the ring's full and empty barriers, and the alignment slack. The 128-row CTA at
/// d = 128 (stage 8's and stage 9's) takes 224 KB.
constexpr int hopper_smem_bytes(int d, int m, int n) {
  return (m * d + 2 * hopper_stages(m) * n * d) * kTileElemBytes + 2 * hopper_stages(m) * kMbarrierBytes +
         kHopperAlignSlack;
}
/// The stage-8 CTAs of an m-row tile on n-token stages one SM holds at head dim d, from shared
/// memory and threads (the host's estimate; the stage asks the occupancy calculator). At d=128
/// the 64-row tile's 112 KB give 2, the 128-row tile's 224 KB 1, the 192-row tile's 148 KB 1; at
/// d=64 (56, 112 and 74 KB) 3, 2 and 3. Registers are not counted here: the occupancy calculator
/// gives the 128- and 192-row instances one CTA per SM.
constexpr int estimate_hopper_ctas_per_sm(int d, int m, int n) {
  const int by_smem = kSmemPerSm / (hopper_smem_bytes(d, m, n) + kSmemReservedPerCta);
  const int by_threads = kMaxThreadsPerSm / hopper_threads(m);
  const int fit = by_smem < by_threads ? by_smem : by_threads;
  return fit > 1 ? fit : 1;
}
/// The host's estimate of stage 9's CTAs per SM at head dim d: its one CTA kind, kClusterSliceRows
/// rows on kClusterKvTile-token stages (the stage asks the occupancy calculator).
constexpr int estimate_cluster_ctas_per_sm(int d) {
  return estimate_hopper_ctas_per_sm(d, kClusterSliceRows, kClusterKvTile);
}
// [hopper-budget]

/// `tile` with n lowered (halved, never below kTileKvOptions[0], nor below kMinKvForMaxRows for
/// the largest m) until it fits head dim `head_dim` with K/V elements of `kv_elem_bytes` bytes;
/// m is kept, because the pack's rows need it. Throws Error(unsupported) when no n fits.
inline TileShape fit_tile(TileShape tile, int head_dim, int kv_elem_bytes) {
  const int floor = tile.m == kMaxTileRows ? kMinKvForMaxRows : kTileKvOptions[0];
  while (!tile_fits(tile, head_dim, kv_elem_bytes) && tile.n / 2 >= floor) tile.n /= 2;
  if (!tile_fits(tile, head_dim, kv_elem_bytes))
    throw Error(ErrorKind::unsupported, "no KV tile fits a " + std::to_string(tile.m) + "-row tile at head dim " +
                                            std::to_string(head_dim));
  return tile;
}

}  // namespace patlab
