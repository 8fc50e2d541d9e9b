/// @file selection.hpp
/// @brief Sparse decode on the paged cache: NSA's block geometry and parameters, the compressed
/// estimate of where attention goes, and the two ways of choosing blocks from it: NSA's fixed
/// top-n and PSA's progressive budget.
///
/// The learned parts of NSA are replaced by stated fixed ones:
/// - **Block summary.** Compressed block j of a request covers tokens [j s, j s + l) (l =
///   SparseOptions::cmp_block, s = cmp_stride); only whole blocks exist, so a request of N tokens
///   has (N - l) / s + 1 of them when N >= l, none otherwise. Its key and value are the *means* of
///   the block's K and V rows (NSA learns an MLP here).
/// - **Estimate.** For each query head h, p_h(j) = softmax over the compressed blocks of
///   q_h . k_j / sqrt(d): the compressed branch's own probabilities.
/// - **Mapping onto selection blocks.** Selection block b covers tokens [b l', (b + 1) l') (the
///   last one may be partial). A compressed block's probability is added to *every* selection
///   block it overlaps; the score of block b for a (request, KV head) is that sum over the query
///   heads of the GQA group (all heads of a group share one selection, as in NSA).
/// - **Estimated mass.** m(b) = score(b) / sum of all scores (blocks overlapped by two selection
///   blocks count in both, hence the normalisation); uniform 1/B when no compressed block exists.
///
/// Both choices always take the *forced* blocks first: the first block (attention sinks) and the
/// kForcedRecentBlocks most recent ones (the last one holds the current token). Ties between
/// equal scores go to the lower block index, so every choice is deterministic.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "patlab/model/kv_cache.hpp"

namespace patlab::sparse {

/// Forced first blocks (the start of the context: attention sinks).
inline constexpr int kForcedFirstBlocks = 1;
/// Forced most recent blocks (the last one holds the token being decoded).
inline constexpr int kForcedRecentBlocks = 2;
/// Forced blocks of a request with at least this many selection blocks.
inline constexpr int kForcedBlocks = kForcedFirstBlocks + kForcedRecentBlocks;

/// How blocks are chosen from the estimate.
enum class Budget {
  top_n,        ///< NSA (and FSA, the same choice in another loop order): the n best, forced included
  progressive,  ///< PSA: best first until the estimated covered mass reaches tau
};

/// "top-n" or "progressive".
const char* budget_name(Budget b);

/// Every parameter of sparse decode, NSA's defaults.
struct SparseOptions {
  int cmp_block = 32;   ///< l: tokens per compressed block
  int cmp_stride = 16;  ///< s: tokens between the starts of consecutive compressed blocks (1..l)
  int sel_block = 64;   ///< l': tokens per selection block; a multiple of the page size
  int top_n = 16;       ///< n: selection blocks per (request, KV head), forced ones included
  int window = 512;     ///< w: tokens of the sliding-window branch
  /// Gates of the compressed, selected and window branches, each in [0, 1] (NSA computes them
  /// with a sigmoid from the query; here they are given). The default weighs the three equally.
  double gate_cmp = 1.0 / 3, gate_sel = 1.0 / 3, gate_win = 1.0 / 3;
  /// @var gate_sel
  /// Gate of the selected branch, in [0, 1] (see gate_cmp).
  /// @var gate_win
  /// Gate of the sliding-window branch, in [0, 1] (see gate_cmp).
  Budget budget = Budget::top_n;  ///< fixed top-n (NSA, FSA) or progressive (PSA)
  double tau = 0.9;     ///< PSA: estimated mass to cover, in (0, 1]
  int min_budget = 3;   ///< PSA: fewest blocks, >= kForcedBlocks
  int max_budget = 64;  ///< PSA: most blocks, >= min_budget
  /// Clamp per request instead of refusing: n and min_budget to the request's selection blocks,
  /// w to its length; a request shorter than l gets an empty compressed branch (contributes 0).
  bool clamp = false;

  /// Throws Error(usage) naming the first parameter that is out of range on its own (the
  /// workload is not needed; check_against() does the rest).
  void validate() const;
  /// Checks the options against every request of `layout` (l' a multiple of the page; n, w,
  /// l and min_budget against each request's blocks and tokens). Without `clamp` the first
  /// inconsistency throws Error(usage) naming the request; with it, returns one line per kind of
  /// clamp applied ("n clamped to the request's selection blocks for 3 request(s)"), empty when none.
  std::vector<std::string> check_against(const PagedLayout& layout) const;
};

/// Compressed blocks of a request of `len` tokens: (len - l) / s + 1 when len >= l, else 0.
int compressed_block_count(int64_t len, const SparseOptions& o);
/// Selection blocks of a request of `len` tokens: ceil(len / l').
int selection_block_count(int64_t len, const SparseOptions& o);
/// Tokens of selection block `b` of a request of `len` tokens (l', or fewer for the last).
int64_t selection_block_tokens(int64_t len, int b, const SparseOptions& o);

/// Selection-block scores from compressed-block probabilities: `probs[h][j]` for each query head
/// h of a group and compressed block j; block b gets every p_h(j) whose block overlaps it,
/// summed over h. Returns selection_block_count(len) scores.
std::vector<double> selection_scores(const std::vector<std::vector<double>>& probs, int64_t len,
                                     const SparseOptions& o);

/// The forced blocks of a request with `blocks` selection blocks, ascending (fewer than
/// kForcedBlocks when the request has fewer blocks).
std::vector<int32_t> forced_blocks(int blocks);

/// NSA's choice: the forced blocks, then the highest scores (ties: lower index) up to min(n,
/// blocks) in all. Returns block indices, ascending.
std::vector<int32_t> select_top_n(const std::vector<double>& scores, int n);

// [psa-rule]
/// PSA's choice, the stopping rule. With masses m(b) = score(b) / sum(score) (1/B each when the
/// sum is 0), blocks are taken one by one in this order: the forced blocks (ascending), then the
/// rest by descending m (ties: lower index). After each block, with C the mass taken so far and
/// k the blocks taken, the rule stops when
///   (k >= min(min_budget, B) and C >= tau)  or  k == min(max_budget, B).
/// So: never fewer than min_budget blocks (nor than the forced ones), never more than
/// max_budget, and otherwise the shortest prefix of the order whose estimated mass reaches tau.
/// The chosen set grows with tau (the order does not depend on tau). Returns block indices,
/// ascending; `covered` (if given) receives C.
std::vector<int32_t> select_progressive(const std::vector<double>& scores, double tau, int min_budget, int max_budget,
                                        double* covered = nullptr);
// [psa-rule]

/// The blocks chosen for every (request, KV head) of a batch.
struct Selection {
  /// KV heads per request (Hkv): the row stride of blocks.
  int num_kv_heads = 0;
  /// Per row r * num_kv_heads + kv_head, chosen selection-block indices, ascending.
  std::vector<std::vector<int32_t>> blocks;
  /// Per row, the estimated mass the chosen blocks cover (m summed over them).
  std::vector<double> estimated_mass;

  /// Chosen blocks of (request, KV head).
  const std::vector<int32_t>& of(int r, int kv_head) const {
    return blocks[static_cast<size_t>(r) * static_cast<size_t>(num_kv_heads) + static_cast<size_t>(kv_head)];
  }
  /// Chosen blocks summed over every row: what NSA's loop order reads, in blocks.
  int64_t total_blocks() const;
};

/// The compressed estimate of one (request, KV head): for each query head of the group, the
/// compressed branch's probabilities over the request's compressed blocks (empty rows when the
/// request is shorter than l).
std::vector<std::vector<double>> compressed_probabilities(const Workload& w, int r, int kv_head, const SparseOptions& o);

/// Chooses blocks for every (request, KV head) of `w` by `o.budget`, with n, w and min_budget
/// clamped per request as check_against() allows. Call check_against() first (the CLI does):
/// this function does not refuse inconsistent options, it clamps them.
Selection select_blocks(const Workload& w, const SparseOptions& o);

}  // namespace patlab::sparse
