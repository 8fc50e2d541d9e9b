// Steps shared by the sparse sources (not public API): one (request, KV head) row's K and V, its
// queries, the compressed summaries and the compressed branch.
#pragma once

#include <Eigen/Core>
#include <vector>

#include "patlab/sparse/selection.hpp"
#include "patlab/truth/oracle.hpp"

namespace patlab::sparse::detail {

/// K and V of every token of request `r` at `kv_head`, one row per token, dequantised through
/// Workload::kv_values().
void gather_request(const Workload& w, int r, int kv_head, Eigen::MatrixXd& k, Eigen::MatrixXd& v);

/// q of (request, query head) as a vector.
Eigen::VectorXd query_vector(const Workload& w, int r, int q_head);

/// The compressed blocks' summaries: row j of `kc` (`vc`) is the mean of rows [j s, j s + l) of
/// `k` (`v`).
void compressed_summaries(const Eigen::MatrixXd& k, const Eigen::MatrixXd& v, const SparseOptions& o,
                          Eigen::MatrixXd& kc, Eigen::MatrixXd& vc);

/// Softmax over the rows of `kc` of q . k / sqrt(d): the compressed branch's probabilities
/// (empty when `kc` has no rows).
std::vector<double> compressed_probs(const Eigen::VectorXd& q, const Eigen::MatrixXd& kc);

/// The chosen blocks of a request of `len` tokens for one row's scores, by `o.budget`, with n and
/// min_budget clamped to the request's blocks. `covered` receives the estimated mass.
std::vector<int32_t> choose(const std::vector<double>& scores, const SparseOptions& o, double* covered);

/// Estimated mass of `chosen` blocks: scores normalised as select_progressive() does.
double estimated_mass(const std::vector<double>& scores, const std::vector<int32_t>& chosen);

/// Rows [first, first + count) of `k` and `v` for the tokens of `blocks` (selection blocks of a
/// request of k.rows() tokens), concatenated in block order.
void gather_blocks(const Eigen::MatrixXd& k, const Eigen::MatrixXd& v, const std::vector<int32_t>& blocks,
                   const SparseOptions& o, Eigen::MatrixXd& ks, Eigen::MatrixXd& vs);

}  // namespace patlab::sparse::detail
