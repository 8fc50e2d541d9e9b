#include "patlab/sparse/sparse_check.hpp"

#include <algorithm>
#include <cmath>

#include "patlab/error.hpp"
#include "sparse_detail.hpp"

namespace patlab::sparse {

namespace {

/// Unit roundoff of a 16-bit storage type: 2^-11 (fp16), 2^-8 (bf16).
double unit_roundoff(DType t) { return t == DType::fp16 ? std::ldexp(1.0, -11) : std::ldexp(1.0, -8); }

std::string list(const std::vector<int32_t>& v) {
  std::string s;
  for (int32_t b : v) s += (s.empty() ? "" : ",") + std::to_string(b);
  return "{" + s + "}";
}

}  // namespace

std::string SelectionAgreement::summary() const {
  if (!first.empty()) return first;
  return "identical " + std::to_string(identical) + " of " + std::to_string(rows) + " rows, " +
         std::to_string(near_ties) + " near ties";
}

// [compare-selections]
SelectionAgreement compare_selections(const Workload& w, const SparseOptions& o, const Selection& cpu,
                                      const Selection& gpu) {
  require(cpu.blocks.size() == gpu.blocks.size() && cpu.num_kv_heads == gpu.num_kv_heads,
          "selections of different shapes");
  SelectionAgreement a;
  const int hkv = cpu.num_kv_heads;
  for (size_t row = 0; row < cpu.blocks.size(); ++row) {
    ++a.rows;
    const std::vector<int32_t>& c = cpu.blocks[row];
    const std::vector<int32_t>& g = gpu.blocks[row];
    if (c == g) {
      ++a.identical;
      continue;
    }
    const int r = static_cast<int>(row / static_cast<size_t>(hkv)), kvh = static_cast<int>(row % static_cast<size_t>(hkv));
    const int64_t len = w.layout.lengths[static_cast<size_t>(r)];
    const std::vector<double> scores = selection_scores(compressed_probabilities(w, r, kvh, o), len, o);
    bool valid = std::all_of(g.begin(), g.end(), [&](int32_t b) { return b >= 0 && b < static_cast<int>(scores.size()); });
    const double mc = detail::estimated_mass(scores, c);
    const double mg = valid ? detail::estimated_mass(scores, g) : 0.0;
    bool ok = false;
    if (valid && c.size() == g.size()) {
      ok = std::fabs(mg - mc) <= kSelectionTieMass;
    } else if (valid && o.budget == Budget::progressive && (c.size() + 1 == g.size() || g.size() + 1 == c.size())) {
      ok = std::fabs((c.size() < g.size() ? mc : mg) - o.tau) <= kSelectionTieMass;
    }
    if (ok) {
      ++a.near_ties;
    } else {
      ++a.disagreements;
      if (a.first.empty())
        a.first = "request " + std::to_string(r) + ", KV head " + std::to_string(kvh) + ": GPU chose " + list(g) +
                  " (mass " + std::to_string(mg) + "), CPU " + list(c) + " (mass " + std::to_string(mc) + ")";
    }
  }
  return a;
}
// [compare-selections]

CheckResult check_sparse_output(const Workload& w, const std::vector<uint16_t>& got, const std::vector<double>& ref_o,
                                double roundings) {
  const Shape& s = w.shape();
  AttentionResult ref;
  ref.requests = w.num_requests();
  ref.heads = s.num_q_heads;
  ref.head_dim = s.head_dim;
  ref.o = ref_o;
  const std::vector<double> allowance(static_cast<size_t>(ref.requests) * static_cast<size_t>(ref.heads),
                                      roundings * unit_roundoff(s.dtype));
  return check_output(decode(got, s.dtype), ref, allowance, s.dtype, s.kv_dtype);
}

}  // namespace patlab::sparse
