#include "patlab/sparse/selection.hpp"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "patlab/error.hpp"
#include "patlab/parallel.hpp"
#include "patlab/truth/dtype.hpp"
#include "sparse_detail.hpp"

namespace patlab::sparse {

namespace {

/// Largest block, window or budget accepted: the longest request.
constexpr int64_t kMaxParameter = kMaxRequestTokens;

void require_range(int64_t v, int64_t lo, int64_t hi, const std::string& name) {
  require(v >= lo && v <= hi, name + " = " + std::to_string(v) + " is outside [" + std::to_string(lo) + ", " +
                                  std::to_string(hi) + "]");
}

void require_gate(double g, const std::string& name) {
  require(std::isfinite(g) && g >= 0 && g <= 1, name + " = " + std::to_string(g) + " is outside [0, 1]");
}

/// Counts one kind of clamp over the requests and names the first request it hits.
struct ClampCount {
  int requests = 0;
  void add() { ++requests; }
  void note(std::vector<std::string>& out, const std::string& what) const {
    if (requests > 0) out.push_back(what + " for " + std::to_string(requests) + " request(s)");
  }
};

}  // namespace

const char* budget_name(Budget b) { return b == Budget::top_n ? "top-n" : "progressive"; }

void SparseOptions::validate() const {
  require_range(cmp_block, 1, kMaxParameter, "l (compressed block)");
  require_range(cmp_stride, 1, cmp_block, "stride");
  require_range(sel_block, 1, kMaxParameter, "l' (selection block)");
  require_range(top_n, kForcedBlocks, kMaxParameter, "n (top-n, the forced blocks included)");
  require_range(window, 1, kMaxParameter, "w (window)");
  require_gate(gate_cmp, "compressed gate");
  require_gate(gate_sel, "selected gate");
  require_gate(gate_win, "window gate");
  require(tau > 0 && tau <= 1, "tau = " + number_text(tau) + " is outside (0, 1]");
  require_range(min_budget, kForcedBlocks, kMaxParameter, "minimum budget (the forced blocks included)");
  require_range(max_budget, min_budget, kMaxParameter, "maximum budget (at least the minimum)");
}

std::vector<std::string> SparseOptions::check_against(const PagedLayout& layout) const {
  validate();
  const int page = layout.shape.page_size;
  require(sel_block % page == 0, "l' = " + std::to_string(sel_block) + " is not a multiple of the page (" +
                                     std::to_string(page) + " tokens): selection blocks must be whole pages");
  ClampCount short_cmp, n_clamp, min_clamp, w_clamp;
  for (int r = 0; r < layout.num_requests(); ++r) {
    const int64_t len = layout.lengths[static_cast<size_t>(r)];
    const int blocks = selection_block_count(len, *this);
    const std::string who = "request " + std::to_string(r) + " (" + std::to_string(len) + " tokens";
    auto refuse = [&](const std::string& what) {
      require(clamp, what + " (or --clamp to clamp it per request)");
    };
    if (len < cmp_block) {
      refuse(who + ") is shorter than one compressed block (l = " + std::to_string(cmp_block) + ")");
      short_cmp.add();
    }
    if (budget == Budget::top_n && top_n > blocks) {
      refuse("n = " + std::to_string(top_n) + " is more than the " + std::to_string(blocks) + " selection blocks of " +
             who + ", l' = " + std::to_string(sel_block) + ")");
      n_clamp.add();
    }
    if (budget == Budget::progressive && min_budget > blocks) {
      refuse("minimum budget " + std::to_string(min_budget) + " is more than the " + std::to_string(blocks) +
             " selection blocks of " + who + ", l' = " + std::to_string(sel_block) + ")");
      min_clamp.add();
    }
    if (window > len) {
      refuse("window w = " + std::to_string(window) + " is longer than " + who + ")");
      w_clamp.add();
    }
  }
  std::vector<std::string> notes;
  short_cmp.note(notes, "empty compressed branch (shorter than l)");
  n_clamp.note(notes, "n clamped to the request's selection blocks");
  min_clamp.note(notes, "minimum budget clamped to the request's selection blocks");
  w_clamp.note(notes, "window clamped to the request's length");
  return notes;
}

int compressed_block_count(int64_t len, const SparseOptions& o) {
  return len < o.cmp_block ? 0 : static_cast<int>((len - o.cmp_block) / o.cmp_stride + 1);
}

int selection_block_count(int64_t len, const SparseOptions& o) {
  return static_cast<int>((len + o.sel_block - 1) / o.sel_block);
}

int64_t selection_block_tokens(int64_t len, int b, const SparseOptions& o) {
  return std::min<int64_t>(o.sel_block, len - int64_t{b} * o.sel_block);
}

// [selection-scores]
std::vector<double> selection_scores(const std::vector<std::vector<double>>& probs, int64_t len,
                                     const SparseOptions& o) {
  std::vector<double> scores(static_cast<size_t>(selection_block_count(len, o)), 0.0);
  for (const std::vector<double>& p : probs) {
    for (size_t j = 0; j < p.size(); ++j) {
      const int64_t first = static_cast<int64_t>(j) * o.cmp_stride;  // tokens [first, last] of block j
      const int64_t last = first + o.cmp_block - 1;
      for (int64_t b = first / o.sel_block; b <= last / o.sel_block; ++b) scores[static_cast<size_t>(b)] += p[j];
    }
  }
  return scores;
}
// [selection-scores]

std::vector<int32_t> forced_blocks(int blocks) {
  std::vector<int32_t> out;
  for (int b = 0; b < std::min(kForcedFirstBlocks, blocks); ++b) out.push_back(b);
  for (int b = std::max(kForcedFirstBlocks, blocks - kForcedRecentBlocks); b < blocks; ++b) out.push_back(b);
  return out;
}

namespace {

/// The order both choices take blocks in: forced ones ascending, then the rest by descending
/// score, ties to the lower index.
std::vector<int32_t> take_order(const std::vector<double>& scores) {
  const int blocks = static_cast<int>(scores.size());
  std::vector<int32_t> order = forced_blocks(blocks);
  std::vector<bool> forced(static_cast<size_t>(blocks), false);
  for (int32_t b : order) forced[static_cast<size_t>(b)] = true;
  std::vector<int32_t> rest;
  for (int32_t b = 0; b < blocks; ++b)
    if (!forced[static_cast<size_t>(b)]) rest.push_back(b);
  std::stable_sort(rest.begin(), rest.end(), [&](int32_t a, int32_t b) {
    return scores[static_cast<size_t>(a)] > scores[static_cast<size_t>(b)];
  });
  order.insert(order.end(), rest.begin(), rest.end());
  return order;
}

/// Masses m(b): scores over their sum, uniform when the sum is 0.
std::vector<double> masses(const std::vector<double>& scores) {
  const double sum = std::accumulate(scores.begin(), scores.end(), 0.0);
  std::vector<double> m(scores.size(), scores.empty() ? 0.0 : 1.0 / static_cast<double>(scores.size()));
  if (sum > 0)
    for (size_t b = 0; b < scores.size(); ++b) m[b] = scores[b] / sum;
  return m;
}

std::vector<int32_t> sorted(std::vector<int32_t> v) {
  std::sort(v.begin(), v.end());
  return v;
}

}  // namespace

// [select-top-n]
std::vector<int32_t> select_top_n(const std::vector<double>& scores, int n) {
  std::vector<int32_t> order = take_order(scores);
  order.resize(std::min(order.size(), static_cast<size_t>(std::max(n, 0))));
  return sorted(std::move(order));
}
// [select-top-n]

// [select-progressive]
std::vector<int32_t> select_progressive(const std::vector<double>& scores, double tau, int min_budget, int max_budget,
                                        double* covered) {
  const int blocks = static_cast<int>(scores.size());
  const int lo = std::min(min_budget, blocks), hi = std::min(max_budget, blocks);
  const std::vector<double> m = masses(scores);
  const std::vector<int32_t> order = take_order(scores);
  std::vector<int32_t> taken;
  double mass = 0;
  for (int32_t b : order) {
    if (static_cast<int>(taken.size()) >= hi) break;
    taken.push_back(b);
    mass += m[static_cast<size_t>(b)];
    if (static_cast<int>(taken.size()) >= lo && mass >= tau) break;
  }
  if (covered) *covered = mass;
  return sorted(std::move(taken));
}
// [select-progressive]

int64_t Selection::total_blocks() const {
  int64_t n = 0;
  for (const auto& b : blocks) n += static_cast<int64_t>(b.size());
  return n;
}

namespace detail {

// [compressed-summaries]
void compressed_summaries(const Eigen::MatrixXd& k, const Eigen::MatrixXd& v, const SparseOptions& o,
                          Eigen::MatrixXd& kc, Eigen::MatrixXd& vc) {
  const int blocks = compressed_block_count(k.rows(), o);
  kc.resize(blocks, k.cols());
  vc.resize(blocks, v.cols());
  for (int j = 0; j < blocks; ++j) {
    const Eigen::Index first = static_cast<Eigen::Index>(j) * o.cmp_stride;
    kc.row(j) = k.middleRows(first, o.cmp_block).colwise().mean();
    vc.row(j) = v.middleRows(first, o.cmp_block).colwise().mean();
  }
}
// [compressed-summaries]

std::vector<double> compressed_probs(const Eigen::VectorXd& q, const Eigen::MatrixXd& kc) {
  if (kc.rows() == 0) return {};
  const Eigen::VectorXd s = (kc * q) / std::sqrt(static_cast<double>(q.size()));
  const Eigen::ArrayXd e = (s.array() - s.maxCoeff()).exp();
  const Eigen::VectorXd p = e / e.sum();
  return std::vector<double>(p.data(), p.data() + p.size());
}

double estimated_mass(const std::vector<double>& scores, const std::vector<int32_t>& chosen) {
  const std::vector<double> m = masses(scores);
  double mass = 0;
  for (int32_t b : chosen) mass += m[static_cast<size_t>(b)];
  return mass;
}

std::vector<int32_t> choose(const std::vector<double>& scores, const SparseOptions& o, double* covered) {
  if (o.budget == Budget::progressive) return select_progressive(scores, o.tau, o.min_budget, o.max_budget, covered);
  std::vector<int32_t> chosen = select_top_n(scores, o.top_n);
  *covered = estimated_mass(scores, chosen);
  return chosen;
}

void gather_blocks(const Eigen::MatrixXd& k, const Eigen::MatrixXd& v, const std::vector<int32_t>& blocks,
                   const SparseOptions& o, Eigen::MatrixXd& ks, Eigen::MatrixXd& vs) {
  int64_t rows = 0;
  for (int32_t b : blocks) rows += selection_block_tokens(k.rows(), b, o);
  ks.resize(rows, k.cols());
  vs.resize(rows, v.cols());
  Eigen::Index at = 0;
  for (int32_t b : blocks) {
    const Eigen::Index n = selection_block_tokens(k.rows(), b, o);
    ks.middleRows(at, n) = k.middleRows(static_cast<Eigen::Index>(b) * o.sel_block, n);
    vs.middleRows(at, n) = v.middleRows(static_cast<Eigen::Index>(b) * o.sel_block, n);
    at += n;
  }
}

}  // namespace detail

std::vector<std::vector<double>> compressed_probabilities(const Workload& w, int r, int kv_head,
                                                          const SparseOptions& o) {
  Eigen::MatrixXd k, v, kc, vc;
  gather_kv(w, r, 0, w.layout.lengths[static_cast<size_t>(r)], kv_head, k, v);
  detail::compressed_summaries(k, v, o, kc, vc);
  const int group = w.shape().group();
  std::vector<std::vector<double>> probs;
  for (int g = 0; g < group; ++g) probs.push_back(detail::compressed_probs(query_vector(w, r, kv_head * group + g), kc));
  return probs;
}

Selection select_blocks(const Workload& w, const SparseOptions& o) {
  const int hkv = w.shape().num_kv_heads;
  Selection sel;
  sel.num_kv_heads = hkv;
  const size_t rows = static_cast<size_t>(w.num_requests()) * static_cast<size_t>(hkv);
  sel.blocks.resize(rows);
  sel.estimated_mass.assign(rows, 0.0);
  parallel_for(static_cast<int64_t>(rows), [&](int64_t row) {
    const int r = static_cast<int>(row / hkv), kvh = static_cast<int>(row % hkv);
    const std::vector<double> scores =
        selection_scores(compressed_probabilities(w, r, kvh, o), w.layout.lengths[static_cast<size_t>(r)], o);
    sel.blocks[static_cast<size_t>(row)] = detail::choose(scores, o, &sel.estimated_mass[static_cast<size_t>(row)]);
  });
  return sel;
}

}  // namespace patlab::sparse
