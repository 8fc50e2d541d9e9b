#include "patlab/sparse/sparse_oracle.hpp"

#include <algorithm>
#include <cmath>

#include "patlab/error.hpp"
#include "patlab/model/traffic.hpp"
#include "patlab/parallel.hpp"
#include "sparse_detail.hpp"

namespace patlab::sparse {

namespace {

/// The three branches of one query over one row's K and V.
struct Branches {
  MergeState compressed, selected, window;
};

// [three-branches]
Branches attend_branches(const Eigen::VectorXd& q, const Eigen::MatrixXd& k, const Eigen::MatrixXd& v,
                         const Eigen::MatrixXd& kc, const Eigen::MatrixXd& vc, const Eigen::MatrixXd& ks,
                         const Eigen::MatrixXd& vs, const SparseOptions& o) {
  const Eigen::Index w = std::min<Eigen::Index>(o.window, k.rows());
  return {attend(q, kc, vc), attend(q, ks, vs), attend(q, k.bottomRows(w), v.bottomRows(w))};
}
// [three-branches]

}  // namespace

SparseAttention sparse_attention(const Workload& w, const SparseOptions& o, const Selection& sel) {
  const Shape& s = w.shape();
  require(sel.num_kv_heads == s.num_kv_heads &&
              sel.blocks.size() == static_cast<size_t>(w.num_requests()) * static_cast<size_t>(s.num_kv_heads),
          "selection does not fit the workload");
  SparseAttention out{empty_result(w), empty_result(w), empty_result(w), {}};
  out.o.assign(out.compressed.o.size(), 0.0);
  parallel_for(int64_t{w.num_requests()} * s.num_kv_heads, [&](int64_t task) {
    const int r = static_cast<int>(task / s.num_kv_heads), kvh = static_cast<int>(task % s.num_kv_heads);
    Eigen::MatrixXd k, v, kc, vc, ks, vs;
    gather_kv(w, r, 0, w.layout.lengths[static_cast<size_t>(r)], kvh, k, v);
    detail::compressed_summaries(k, v, o, kc, vc);
    for (int32_t b : sel.of(r, kvh))
      require(b >= 0 && b < selection_block_count(k.rows(), o), "selection names block " + std::to_string(b) +
                                                                    " of request " + std::to_string(r));
    detail::gather_blocks(k, v, sel.of(r, kvh), o, ks, vs);
    for (int g = 0; g < s.group(); ++g) {
      const int h = kvh * s.group() + g;
      const Branches b = attend_branches(query_vector(w, r, h), k, v, kc, vc, ks, vs, o);
      out.compressed.store(r, h, b.compressed);
      out.selected.store(r, h, b.selected);
      out.window.store(r, h, b.window);
      // [gates]
      const Eigen::VectorXd gated = o.gate_cmp * b.compressed.o + o.gate_sel * b.selected.o + o.gate_win * b.window.o;
      // [gates]
      std::copy(gated.data(), gated.data() + s.head_dim, out.o.begin() + static_cast<std::ptrdiff_t>(w.q_offset(r, h)));
    }
  });
  return out;
}

double max_abs_difference(const std::vector<double>& a, const std::vector<double>& b) {
  require(a.size() == b.size(), "outputs of different shapes");
  double m = 0;
  for (size_t i = 0; i < a.size(); ++i) m = std::max(m, std::fabs(a[i] - b[i]));
  return m;
}

SparseError selected_error(const SparseAttention& s, const AttentionResult& dense) {
  require(s.selected.lse.size() == dense.lse.size(), "sparse and dense results of different shapes");
  SparseError e;
  e.max_abs_error = max_abs_difference(s.selected.o, dense.o);
  double sum = 0;
  for (size_t i = 0; i < dense.lse.size(); ++i) {
    const double mass = std::exp(s.selected.lse[i] - dense.lse[i]);
    e.min_true_mass = std::min(e.min_true_mass, mass);
    sum += mass;
  }
  e.mean_true_mass = dense.lse.empty() ? 1.0 : sum / static_cast<double>(dense.lse.size());
  return e;
}

namespace {

/// One (request, KV head) row's share of every curve point.
struct RowPoints {
  std::vector<int64_t> blocks, tokens;
  std::vector<double> max_error, mass_sum;
};

/// The selections of the sweep for one row's scores: the top-n ones, then the progressive ones.
std::vector<std::vector<int32_t>> sweep_choices(const std::vector<double>& scores, const SparseOptions& o,
                                                const std::vector<int>& ns, const std::vector<double>& taus) {
  std::vector<std::vector<int32_t>> out;
  for (int n : ns) out.push_back(select_top_n(scores, n));
  for (double tau : taus) out.push_back(select_progressive(scores, tau, o.min_budget, o.max_budget));
  return out;
}

// [curve-row]
/// Every point of the sweep for (r, kv_head): each selection block attended once per query head,
/// and each point's selected branch the merge of its chosen blocks' states (what FSA's reduction
/// does), compared with the dense row.
RowPoints curve_row(const Workload& w, int r, int kvh, const SparseOptions& o, const AttentionResult& dense,
                    const std::vector<int>& ns, const std::vector<double>& taus) {
  const Shape& s = w.shape();
  Eigen::MatrixXd k, v, kc, vc;
  gather_kv(w, r, 0, w.layout.lengths[static_cast<size_t>(r)], kvh, k, v);
  detail::compressed_summaries(k, v, o, kc, vc);
  const int64_t len = k.rows();
  const int blocks = selection_block_count(len, o);
  std::vector<std::vector<double>> probs;
  std::vector<std::vector<MergeState>> parts(static_cast<size_t>(s.group()));  // [g][block]
  for (int g = 0; g < s.group(); ++g) {
    const Eigen::VectorXd q = query_vector(w, r, kvh * s.group() + g);
    probs.push_back(detail::compressed_probs(q, kc));
    for (int b = 0; b < blocks; ++b) {
      const Eigen::Index first = static_cast<Eigen::Index>(b) * o.sel_block, n = selection_block_tokens(len, b, o);
      parts[static_cast<size_t>(g)].push_back(attend(q, k.middleRows(first, n), v.middleRows(first, n)));
    }
  }
  const auto choices = sweep_choices(selection_scores(probs, len, o), o, ns, taus);
  RowPoints pts{std::vector<int64_t>(choices.size(), 0), std::vector<int64_t>(choices.size(), 0),
                std::vector<double>(choices.size(), 0.0), std::vector<double>(choices.size(), 0.0)};
  for (size_t c = 0; c < choices.size(); ++c) {
    pts.blocks[c] = static_cast<int64_t>(choices[c].size());
    for (int32_t b : choices[c]) pts.tokens[c] += selection_block_tokens(len, b, o);
    for (int g = 0; g < s.group(); ++g) {
      const int h = kvh * s.group() + g;
      MergeState acc = MergeState::empty(s.head_dim);
      for (int32_t b : choices[c]) acc = merge(acc, parts[static_cast<size_t>(g)][static_cast<size_t>(b)]);
      const Eigen::Map<const Eigen::VectorXd> ref(dense.o_at(r, h), s.head_dim);
      pts.max_error[c] = std::max(pts.max_error[c], (acc.o - ref).cwiseAbs().maxCoeff());
      pts.mass_sum[c] += std::exp(acc.lse - dense.lse[static_cast<size_t>(r) * s.num_q_heads + h]);
    }
  }
  return pts;
}
// [curve-row]

}  // namespace

std::vector<CurvePoint> error_curves(const Workload& w, const SparseOptions& o, const AttentionResult& dense,
                                     const std::vector<int>& ns, const std::vector<double>& taus) {
  const Shape& s = w.shape();
  require(dense.requests == w.num_requests() && dense.heads == s.num_q_heads && dense.head_dim == s.head_dim,
          "dense result does not fit the workload");
  for (int n : ns) require(n >= kForcedBlocks, "n = " + std::to_string(n) + " is below the forced blocks");
  for (double tau : taus) require(tau > 0 && tau <= 1, "tau = " + number_text(tau) + " is outside (0, 1]");
  const int64_t rows = int64_t{w.num_requests()} * s.num_kv_heads;
  std::vector<RowPoints> per_row(static_cast<size_t>(rows));
  parallel_for(rows, [&](int64_t row) {
    per_row[static_cast<size_t>(row)] = curve_row(w, static_cast<int>(row / s.num_kv_heads),
                                                  static_cast<int>(row % s.num_kv_heads), o, dense, ns, taus);
  });
  std::vector<CurvePoint> points;
  for (int n : ns) points.push_back({Budget::top_n, static_cast<double>(n)});
  for (double tau : taus) points.push_back({Budget::progressive, tau});
  const int64_t bytes_per_token = traffic::kv_bytes_per_token(1, s.head_dim, s.kv_element_bytes());
  for (size_t c = 0; c < points.size(); ++c) {
    double mass = 0;
    for (const RowPoints& p : per_row) {
      points[c].blocks_read += p.blocks[c];
      points[c].kv_bytes += p.tokens[c] * bytes_per_token;
      points[c].max_abs_error = std::max(points[c].max_abs_error, p.max_error[c]);
      mass += p.mass_sum[c];
    }
    points[c].mean_true_mass = mass / static_cast<double>(int64_t{w.num_requests()} * s.num_q_heads);
  }
  return points;
}

}  // namespace patlab::sparse
