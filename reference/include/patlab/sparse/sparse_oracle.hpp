/// @file sparse_oracle.hpp
/// @brief The float64 oracle of sparse decode: NSA's three branches per (request, query head),
/// their gated sum, the error of the selected branch against dense attention, and the sweep of
/// fixed n and PSA's tau that gives the error-vs-bytes curves.
///
/// Branches (the conventions of truth/oracle.hpp: scores q.k / sqrt(d), natural-log lse):
/// - compressed: attention over the compressed blocks' mean keys and values (selection.hpp);
/// - selected: exact attention over the tokens of the chosen selection blocks;
/// - window: exact attention over the last min(w, N) tokens.
/// Output: o = g_cmp o_cmp + g_sel o_sel + g_win o_win; an empty branch (no compressed block)
/// contributes 0. K and V are read only through Workload::kv_values(), so fp8 caches work.
#pragma once

#include <string>
#include <vector>

#include "patlab/sparse/selection.hpp"
#include "patlab/truth/oracle.hpp"

namespace patlab::sparse {

/// The three branches and their gated combination, for every (request, query head).
struct SparseAttention {
  AttentionResult compressed;  ///< the compressed branch (o, lse; lse -inf when empty)
  AttentionResult selected;    ///< the selected branch
  AttentionResult window;      ///< the sliding-window branch
  std::vector<double> o;       ///< [requests, Hq, d]: the gated sum
};

/// Runs the three branches on `w` with the blocks of `sel` (select_blocks() of the same options)
/// and combines them with the gates of `o`. Multi-threaded over (request, KV head).
SparseAttention sparse_attention(const Workload& w, const SparseOptions& o, const Selection& sel);

/// How far the selected branch is from dense attention.
struct SparseError {
  /// Largest |o_sel - o_dense| over every element of every (request, query head).
  double max_abs_error = 0;
  /// Dense attention mass the chosen tokens hold, exp(lse_sel - lse_dense), exact: smallest and
  /// mean over (request, query head).
  double min_true_mass = 1, mean_true_mass = 1;
  /// @var mean_true_mass
  /// Mean over (request, query head) of the dense mass the chosen tokens hold (see min_true_mass).
};

/// Largest |a[i] - b[i]| of two outputs of the same shape (Error(usage) otherwise).
double max_abs_difference(const std::vector<double>& a, const std::vector<double>& b);

/// Error of the selected branch of `s` against `dense` (naive_attention() of the same workload).
SparseError selected_error(const SparseAttention& s, const AttentionResult& dense);

/// One point of an error-vs-bytes curve.
struct CurvePoint {
  Budget budget = Budget::top_n;  ///< the rule that chose the blocks: top-n or progressive (PSA)
  double parameter = 0;     ///< n (top-n) or tau (progressive)
  int64_t blocks_read = 0;  ///< chosen blocks summed over (request, KV head)
  int64_t kv_bytes = 0;     ///< their K and V in NSA's order (nsa_order_cost().kv_bytes)
  double max_abs_error = 0; ///< the selected branch against dense (SparseError)
  double mean_true_mass = 0; ///< mean exp(lse_sel - lse_dense) over (request, query head) (SparseError)
};

/// The sweep behind the error-vs-bytes curves: for each n of `ns` (top-n) and each tau of `taus`
/// (progressive, with o's min and max budgets), the blocks read and the selected branch's error
/// against `dense`. Every point clamps n and the budgets to each request's blocks (as clamp).
/// Each (request, KV head) gathers its K and V once for all points.
std::vector<CurvePoint> error_curves(const Workload& w, const SparseOptions& o, const AttentionResult& dense,
                                     const std::vector<int>& ns, const std::vector<double>& taus);

}  // namespace patlab::sparse
