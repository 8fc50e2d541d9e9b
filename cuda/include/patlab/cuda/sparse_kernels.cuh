/// @file sparse_kernels.cuh
/// @brief The device side of sparse decode (sparse.hpp): what the kernels of cuda/sparse/ read
/// and write, their tile constants, and the launchers that the runner (cuda/sparse/runner.cu)
/// calls across files.
///
/// Layouts (R requests, Hq query heads, Hkv KV heads, d head dim; C_r compressed and B_r
/// selection blocks of request r; cmp_begin and sel_begin their prefix sums):
///  - compressed keys and values, fp32, stored once per distinct block of the cache:
///    kc[(cmp_slot[cmp_begin[r] + j]) * Hkv + kv_head][d] (requests that share a prefix share its
///    pages, so its compressed blocks: the runner gives them one slot);
///  - compressed probabilities, fp32: probs[(cmp_begin[r] + j) * Hq + q_head];
///  - selection scores (fp32) and taken flags: [(sel_begin[r] + b) * Hkv + kv_head];
///  - chosen blocks, ascending: chosen[sel_begin[r] * Hkv + kv_head * B_r + i], i < count;
///  - branch outputs [R, Hq, d]: o_cmp fp32, the selected and window branches in the q dtype.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "patlab/cuda/buffer.cuh"
#include "patlab/cuda/packed_tile_launch.cuh"
#include "patlab/cuda/paged.cuh"
#include "patlab/cuda/streams.cuh"
#include "patlab/cuda/sparse.hpp"
#include "patlab/model/kv_cache.hpp"
#include "patlab/planner/plan.hpp"
#include "patlab/sparse/selection.hpp"

namespace patlab::cuda {

/// Threads of a compression CTA (one per (request, KV head)).
inline constexpr int kCompressThreads = 128;
/// Threads of a selection CTA (one per (request, KV head)).
inline constexpr int kSelectThreads = 256;
/// Most rows (requests x group) of one FSA pack: the pack kernel's largest tile.
inline constexpr int kSparseMaxTileRows = 64;
/// KV tokens per tile of the selected branch before fit_tile() lowers it for the head dim: one
/// NSA selection block of l' = 64 tokens per tile (tile_budget.hpp's kSpanKvTile, the one KV tile
/// the span instances are built for).
inline constexpr int kSparseKvTile = kSpanKvTile;
/// PSA's split: aim for this many CTAs per SM, so that uneven chunks balance out.
inline constexpr int kSplitCtasPerSm = 4;

/// The batch on the device, as every sparse kernel reads it.
struct SparseBatch {
  const void* q = nullptr;       ///< [R, Hq, d] in the q dtype
  const void* k_pool = nullptr;  ///< [blocks, page, Hkv, d] in the q dtype (fp8 is refused)
  /// [blocks, page, Hkv, d] in the q dtype: the V pool, laid out as k_pool.
  const void* v_pool = nullptr;
  const int32_t* block_table = nullptr;  ///< [R, table_stride]
  /// Entries per row of block_table: the longest block table (rows padded with -1).
  int table_stride = 0;
  const int32_t* lengths = nullptr;  ///< [R]
  /// Geometry of the K/V pools: log2 of the tokens per block, and Hkv.
  PoolGeometry geo{};
  /// R: requests in the batch.
  int requests = 0;
  /// Hq: query heads.
  int num_q_heads = 0;
  /// Query heads per KV head (Hq / Hkv).
  int group = 1;
};

/// The compressed blocks and the selection's scratch and results on the device.
struct SelectionView {
  float* kc = nullptr;               ///< compressed keys
  float* vc = nullptr;               ///< compressed values
  const int32_t* cmp_begin = nullptr;  ///< [R + 1]
  const int32_t* cmp_slot = nullptr;   ///< [cmp_begin[R]]: the stored slot of (request, compressed block)
  float* probs = nullptr;            ///< compressed probabilities
  float* o_cmp = nullptr;            ///< the compressed branch's output, fp32 [R, Hq, d]
  const int32_t* sel_begin = nullptr;  ///< [R + 1]
  float* scores = nullptr;           ///< selection-block scores
  int32_t* taken = nullptr;          ///< 1 for a chosen block
  int32_t* chosen = nullptr;         ///< chosen blocks per (request, KV head), ascending
  int32_t* count = nullptr;          ///< [R * Hkv]: chosen blocks
  float* mass = nullptr;             ///< [R * Hkv]: estimated mass they cover
};

/// The parameters of the selection kernel (sparse::SparseOptions, in the kernel's types).
struct SelectParams {
  /// @var SelectParams::cmp_block
  /// l: tokens per compressed block.
  /// @var SelectParams::cmp_stride
  /// s: tokens between the starts of consecutive compressed blocks.
  /// @var SelectParams::sel_block
  /// l': tokens per selection block.
  int cmp_block = 32, cmp_stride = 16, sel_block = 64;
  int top_n = 16;            ///< top-n: blocks per row, clamped to the row's blocks
  bool progressive = false;  ///< PSA's rule instead of top-n
  /// PSA: the estimated mass a row's chosen blocks must cover, in (0, 1].
  float tau = 0.9f;
  /// @var SelectParams::min_budget
  /// PSA: fewest blocks per row, clamped to the row's blocks.
  /// @var SelectParams::max_budget
  /// PSA: most blocks per row, clamped to the row's blocks.
  int min_budget = 3, max_budget = 64;
};

/// Computes the compressed keys and values of every (request, KV head).
void launch_compress(const Shape& shape, const SparseBatch& b, const SelectionView& v, int cmp_block, int cmp_stride,
                     cudaStream_t stream);
/// Runs the compressed branch and the selection: one CTA per (request, KV head).
void launch_select(const Shape& shape, const SparseBatch& b, const SelectionView& v, const SelectParams& p,
                   cudaStream_t stream);
/// The sliding-window branch over each request's last min(window, length) tokens into `win`.
void launch_window(const Shape& shape, const SparseBatch& b, int window, void* win, cudaStream_t stream);
/// out = g_cmp o_cmp + g_sel sel + g_win win, element by element ([R, Hq, d]).
void launch_gates(const Shape& shape, int64_t elements, const float* o_cmp, const void* sel, const void* win,
                  const sparse::SparseOptions& o, void* out, cudaStream_t stream);

/// The selected branch of one loop order, its packs on the device.
class SelectedBranch {
 public:
  /// Builds the packs of `order` for `sel` on the host and uploads them. `sm_count` sizes PSA's
  /// split and FSA's spans; `span` fixes FSA's longest span (1..gpu::kMaxSpanBlocks; 0: from
  /// `sm_count`) and its tallest pack (16, 32 or 64 rows; 0: automatic, sparse::plan_fsa_spans()), and
  /// whether FSA's and the split's partials are 16-bit. Throws Error(device) on a CUDA error or
  /// out-of-memory.
  SelectedBranch(gpu::SparseOrder order, const PagedLayout& layout, const sparse::Selection& sel,
                 const sparse::SparseOptions& o, int sm_count, int64_t smem_optin, gpu::SpanOptions span = {});
  /// Enqueues the branch: empty partials, the pack launches (each tile shape on its own side
  /// stream when there are several, joined back into `stream`), the merge; writes `sel_out`.
  void run(const Shape& shape, const SparseBatch& b, void* sel_out, cudaStream_t stream) const;
  /// The partials and their offsets, for poisoning.
  DeviceSpan partials() const { return {partial_o_.get(), partial_o_.bytes()}; }
  /// Partial lse, for poisoning.
  DeviceSpan partial_lse() const { return {partial_lse_.get(), partial_lse_.bytes()}; }
  /// One line: CTAs per tile shape, rows per tile.
  const std::string& notes() const { return notes_; }

 private:
  /// One launch: the packs of one tile shape.
  struct Bucket {
    TileShape tile;
    int offset = 0;  ///< first entry in bucket_
    int count = 0;
    int stages = 0;  ///< FSA: the span ring's K/V stages (0: the plain kernel of NSA's and PSA's orders)
  };
  gpu::SparseOrder order_;
  int requests_ = 0;
  std::vector<Bucket> launches_;
  int sel_block_ = 0;  ///< l': tokens per bit of the span masks
  DevicePackArrays arrays_;
  DeviceBuffer<int32_t> kv_head_, bucket_;
  DeviceBuffer<uint32_t> masks_;        ///< FSA: per pack entry, the span's blocks its query chose
  DeviceBuffer<int32_t> slot_offsets_;  ///< [R + 1]: first partial slot of each request
  DeviceBuffer<int32_t> empty_;         ///< (slot, KV head) pairs no pack writes: the empty state
  int empty_count_ = 0;
  DeviceBuffer<float> partial_o_, partial_lse_;  ///< partial_o_ holds 16-bit values where half_partials_
  bool half_partials_ = false;                    ///< gpu::SpanOptions::half_partials
  /// One side stream per launch when there are several (stage 6's lesson: launches of different
  /// tile shapes in a row wait for each other's tails); null with a single launch.
  std::unique_ptr<StreamFork> streams_;
  std::string notes_;
};

}  // namespace patlab::cuda
