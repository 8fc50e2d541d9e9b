/// @file sparse.hpp
/// @brief Sparse decode on the GPU (issue 17) as the CLI and the tests see it: plain C++, no
/// CUDA types (a build without nvcc links cuda/sparse/no_cuda.cpp instead).
///
/// One decode step of NSA on the paged cache, in the steps of tutorial chapter 22:
///  1. *compress* (cache maintenance, once per workload, not part of a step): the compressed
///     blocks' mean keys and values (selection.hpp's fixed summary), fp32;
///  2. *select* (cuda/sparse/selection.cu): per (request, KV head) one CTA computes the
///     compressed branch (its probabilities and output), the selection blocks' scores, and
///     chooses blocks by top-n or PSA's progressive rule, on the GPU;
///  3. *selected attention* (cuda/sparse/selected_attention.cu) over the chosen blocks in one of
///     two loop orders, both on the pack kernel's tensor-core tiles (packed_tile.cuh): NSA's
///     (one CTA per (request, KV head), its group's rows padded to a 16-row tile, its blocks in
///     a loop), FSA's by spans (one CTA per (span of chosen physical blocks, row tile) at one KV
///     head: the span streamed once, each request's rows masked to the blocks it chose, one
///     partial per (request, span) merged by merge.cuh's kernel), or NSA's split for
///     PSA's uneven budgets (each row's blocks cut into chunks, longest first, merged);
///  4. *window and gates* (cuda/sparse/window_gates.cu): the sliding window on the CUDA-core
///     decode CTA (gqa_decode.cuh), then o = g_cmp o_cmp + g_sel o_sel + g_win o_win.
/// The packs of step 3 are built on the host from the selection that step 2 wrote (as PAT plans
/// on the host): select() downloads it, prepare() builds and uploads the packs.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "patlab/error.hpp"
#include "patlab/gpu.hpp"
#include "patlab/model/traffic.hpp"
#include "patlab/planner/tile_budget.hpp"
#include "patlab/sparse/fsa.hpp"
#include "patlab/sparse/selection.hpp"
#include "patlab/sparse/sparse_check.hpp"

namespace patlab::gpu {

/// The loop order of the selected branch.
enum class SparseOrder {
  nsa,    ///< one CTA per (request, KV head): its group against its blocks
  fsa,    ///< one CTA per (span of physical blocks, row tile) at one KV head, rows masked; partials merged
  split,  ///< NSA's order with each row's blocks cut into balanced chunks; partials merged (PSA)
};

/// Most selection blocks of one FSA span (sparse::kMaxSpanBlocks: the bits of one mask word per
/// pack entry, the kernel's PackKernelArgs::entry_mask).
inline constexpr int kMaxSpanBlocks = sparse::kMaxSpanBlocks;

/// The shape of FSA's spans (zero fields are chosen automatically, selected_attention.cu) and
/// the partials of the two orders that merge them (FSA's and the split).
struct SpanOptions {
  int blocks = 0;  ///< the most selection blocks of a span, 1..kMaxSpanBlocks (0: about two spans per SM)
  int rows = 0;    ///< the most tile rows of a span's pack: 16, 32 or 64 (0: automatic, sparse::plan_fsa_spans())
  /// K/V stages of the span packs' ring: 2 (the plain pack kernel's) or 3 (kSpanKvStages; 0: 2)
  int stages = 0;
  /// Partials' o in the output's 16-bit type, as stages 4-9 store theirs (traffic::kStagesHalfPartials),
  /// or fp32 with false (`--fp32-partials`).
  bool half_partials = traffic::kStagesHalfPartials;
  /// KV tokens per tile of the span packs: kSpanKvTile (one selection block) or
  /// kSpanNarrowKvTile; 0: automatic, per tile shape (the narrow tile where more of its warps are
  /// resident on an SM, selected_attention.cu). Last, so that aggregate initialisers of the
  /// fields above keep their meaning.
  int kv_tile = 0;
};

/// Throws Error(usage) naming the CLI option when a field of `span` is out of its range.
inline void check_span_options(const SpanOptions& span) {
  require(span.blocks >= 0 && span.blocks <= kMaxSpanBlocks,
          "--span-blocks " + std::to_string(span.blocks) + " is outside 0.." + std::to_string(kMaxSpanBlocks));
  require(span.rows == 0 || span.rows == 16 || span.rows == 32 || span.rows == 64,
          "--span-rows " + std::to_string(span.rows) + " is not 16, 32 or 64 (or 0: automatic)");
  require(span.stages == 0 || span_ring_built(span.stages),
          "--span-stages " + std::to_string(span.stages) + " is not " + std::to_string(kKvStages) + " or " +
              std::to_string(kSpanKvStages) + " (or 0: automatic)");
  require(span.kv_tile == 0 || span_kv_tile_built(span.kv_tile),
          "--span-kv-tile " + std::to_string(span.kv_tile) + " is not " + std::to_string(kSpanNarrowKvTile) + " or " +
              std::to_string(kSpanKvTile) + " (or 0: automatic)");
}

/// The unit roundoffs a row of `order`'s outputs may carry (check_sparse_output()'s
/// `roundings`): one more where the order merges 16-bit partials.
inline double check_roundings(SparseOrder order, const SpanOptions& span) {
  return order != SparseOrder::nsa && span.half_partials ? sparse::kSparseHalfPartialRoundings
                                                         : sparse::kSparseRoundings;
}

/// "nsa", "fsa" or "split".
const char* order_name(SparseOrder order);

/// What one checked run returns ([requests, Hq, d] 16-bit patterns of the q dtype).
struct SparseOutputs {
  std::vector<uint16_t> out;       ///< the gated output
  std::vector<uint16_t> selected;  ///< the selected branch alone
};

/// A workload resident on the GPU with its compressed blocks, for sparse decode.
class SparseRunner {
 public:
  /// Uploads the workload and computes its compressed blocks. Throws Error(unsupported) without
  /// a device or for an fp8 KV cache, Error(device) on a CUDA error or out-of-memory.
  SparseRunner(const Workload& w, const sparse::SparseOptions& o);
  ~SparseRunner();
  SparseRunner(const SparseRunner&) = delete;
  SparseRunner& operator=(const SparseRunner&) = delete;

  /// The device in use.
  const DeviceInfo& device() const;
  /// Runs the selection kernel (and the compressed branch) and returns its choice.
  sparse::Selection select();
  /// Builds the packs of `order` for `sel` (select()'s result) and uploads them; returns the
  /// host milliseconds this took. `span` (FSA only): the longest span (1 block: FSA per physical
  /// block) and the tallest pack of a span; throws Error(usage) outside SpanOptions' ranges.
  double prepare(SparseOrder order, const sparse::Selection& sel, SpanOptions span = {});
  /// Poisons every output, partial and the selection with NaN, runs one whole step (select,
  /// selected branch in `order`, window, gates) and returns the outputs.
  SparseOutputs run_once(SparseOrder order);
  /// Times the selection kernel alone.
  Timing time_selection(const TimingOptions& t);
  /// Times the selected branch in `order` alone (its packs, and the merge where it has one).
  Timing time_selected(SparseOrder order, const TimingOptions& t);
  /// Captures the selected branch in `order` in a CUDA graph, poisons its output and partials,
  /// replays it once and returns the selected branch's output ([requests, Hq, d] 16-bit
  /// patterns), for a check against run_once()'s.
  std::vector<uint16_t> run_selected_graph_once(SparseOrder order);
  /// time_selected() of replays of the branch captured in a CUDA graph (no host call between
  /// its launches, as a serving loop replays a decode step).
  Timing time_selected_graph(SparseOrder order, const TimingOptions& t);
  /// Times one whole step: selection, selected branch in `order`, window and gates.
  Timing time_step(SparseOrder order, const TimingOptions& t);
  /// One line about `order`'s launch: CTAs, tiles, rows per tile.
  std::string notes(SparseOrder order) const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace patlab::gpu
