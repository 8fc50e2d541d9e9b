/// @file oracle.hpp
/// @brief The CPU oracle: exact decode attention in float64 on the stored fp16/bf16 values, the
/// merge operator, attention executed pack by pack, and an emulation in the kernels' precision.
///
/// Conventions (they bite where kernels and peers meet): scores are `q.k / sqrt(d)`; `lse` is the
/// *natural* log of the sum of exp(score) over the keys a state covers (FlashInfer's is base 2);
/// `o` is normalised by that same sum.
#pragma once

#include <Eigen/Core>
#include <cstdint>
#include <limits>
#include <vector>

#include "patlab/model/kv_cache.hpp"
#include "patlab/planner/plan.hpp"

namespace patlab {

/// Attention over some set of keys for one (query, head): `o` normalised by its own softmax sum,
/// `lse` = log(sum exp(score)). The empty state (no keys) has lse = -inf and o = 0; it is the
/// identity of merge().
struct MergeState {
  /// Natural log of the sum of exp(q.k / sqrt(d)) over the keys; -inf for no keys.
  double lse = -std::numeric_limits<double>::infinity();
  /// The output (d elements): the values weighted by exp(score - lse); zero for no keys.
  Eigen::VectorXd o;

  /// The state over no keys, for head dimension `d`.
  static MergeState empty(int d) { return {-std::numeric_limits<double>::infinity(), Eigen::VectorXd::Zero(d)}; }
  /// True for the state over no keys (lse = -inf).
  bool is_empty() const { return lse == -std::numeric_limits<double>::infinity(); }
};

/// The state over the union of two disjoint key sets: with M = max(lse_a, lse_b),
/// lse = M + log(e^(lse_a-M) + e^(lse_b-M)), o = e^(lse_a-lse) o_a + e^(lse_b-lse) o_b.
/// Associative and commutative; merging with an empty state returns the other unchanged, and
/// two empty states give an empty state (never NaN).
MergeState merge(const MergeState& a, const MergeState& b);

/// Exact attention of `q` (d) over the rows of `k` and `v` (keys x d): the merge state.
MergeState attend(const Eigen::VectorXd& q, const Eigen::MatrixXd& k, const Eigen::MatrixXd& v);

/// Outputs of attention for a batch: `o` [requests, Hq, d] and `lse` [requests, Hq].
struct AttentionResult {
  /// @var requests
  /// Requests in the batch.
  /// @var heads
  /// Query heads per request (Hq).
  /// @var head_dim
  /// Head dimension d: elements of one output row.
  int requests = 0, heads = 0, head_dim = 0;
  /// Outputs, [requests, Hq, d]: per (request, query head), the output normalised by its softmax sum.
  std::vector<double> o;
  /// Per (request, query head), [requests, Hq]: the natural log of the sum of exp(q.k / sqrt(d)) over its keys.
  std::vector<double> lse;
  /// Pointer to o of (request, head).
  const double* o_at(int r, int h) const { return o.data() + (static_cast<size_t>(r) * heads + h) * head_dim; }
  /// Stores state `s` as the output and lse of (request, head).
  void store(int r, int h, const MergeState& s);
};

/// All-zero outputs for every (request, query head) of `w`, to be filled by AttentionResult::store().
AttentionResult empty_result(const Workload& w);

/// K and V of tokens [begin, begin + len) of request `r` at `kv_head`, one row per token,
/// dequantised through Workload::kv_values() (fp16, bf16 or fp8 pools alike).
void gather_kv(const Workload& w, int r, int64_t begin, int64_t len, int kv_head, Eigen::MatrixXd& k,
               Eigen::MatrixXd& v);

/// q of (request, query head) as a vector.
Eigen::VectorXd query_vector(const Workload& w, int r, int h);

/// Naive decode attention: every (request, query head) reads its whole history through its block
/// table; softmax in one pass over exact scores. Multi-threaded over (request, KV head).
AttentionResult naive_attention(const Workload& w);

/// Attention executed the way a plan says: every pack computes a partial per (query, head) over
/// its KV range; each query merges its partials in slot order. Throws Error(usage) if the plan
/// does not fit the workload (unknown query, slot out of range, range past a request's end).
AttentionResult packed_attention(const Workload& w, const Plan& plan);

/// The same function computed the way the tensor-core kernels compute it: float32 scores and
/// softmax, probabilities rounded to the storage type before P.V, float32 sums, output rounded
/// to the storage type. Its error against naive_attention is the yardstick of the GPU checks.
AttentionResult emulated_attention(const Workload& w);

/// The rows of `m` (one a token) that `keys` lists, range after range: the keys or values of one
/// partial (PartialKeys).
Eigen::MatrixXf partial_rows(const Eigen::MatrixXf& m, const PartialKeys& keys);

/// The same with each query's keys cut into partials as `split` says (plan_partial_split() of a
/// stage's plan): a query of more than one partial has each partial's softmax emulated alone, its
/// o rounded to the storage type and its lse kept in float32, and the partials merged in float32
/// as the merge kernel merges them; a query of one partial (or none listed) is emulated as
/// above. The yardstick of a stage that stores its partials in 16 bits (`--half-partials`).
/// Throws Error(usage) when `split` does not fit the workload (request count, a range outside a
/// request, partials that do not cover a request's keys exactly once by length). `plain`, where
/// given, is emulated_attention(w) of the same workload: the rows of a request of at most one
/// partial, which would be emulated exactly as there, are copied from it instead of emulated again.
AttentionResult emulated_attention(const Workload& w, const PartialSplit& split, const AttentionResult* plain = nullptr);

/// Agreement that attention executed pack by pack must reach with naive attention (both
/// float64), by max_relative_difference().
inline constexpr double kOracleAgreement = 1e-12;

/// Largest |a - b| / max(|b|, floor) over o and lse, the agreement measure of two oracles.
double max_relative_difference(const AttentionResult& a, const AttentionResult& b, double floor = 1e-3);

}  // namespace patlab
