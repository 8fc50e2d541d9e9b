// Steps shared by the sparse sources (not public API): the compressed summaries and the
// compressed branch, the budget rules and the selected blocks' rows. A row's K and V and its
// queries come from the oracle's gather_kv() and query_vector() (truth/oracle.hpp).
#pragma once

#include <Eigen/Core>
#include <vector>

#include "patlab/sparse/selection.hpp"
#include "patlab/truth/oracle.hpp"

namespace patlab::sparse::detail {

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
