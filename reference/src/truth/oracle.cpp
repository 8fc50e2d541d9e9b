#include "patlab/truth/oracle.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>

#include "patlab/error.hpp"
#include "patlab/parallel.hpp"

namespace patlab {

namespace {

/// K and V of `len` tokens at `kv_head` into the rows of `k` and `v`, dequantised
/// (Workload::kv_values); `offset(t)` is the pool index of token t's element 0 at KV head 0.
template <typename Offset>
void gather_rows(const Workload& w, int64_t len, int kv_head, Offset&& offset, Eigen::MatrixXd& k,
                 Eigen::MatrixXd& v) {
  const int d = w.shape().head_dim;
  // Row-major scratch rows, copied into the column-major matrices.
  std::vector<double> row(static_cast<size_t>(d));
  k.resize(len, d);
  v.resize(len, d);
  for (int64_t t = 0; t < len; ++t) {
    const size_t off = offset(t) + static_cast<size_t>(kv_head) * static_cast<size_t>(d);
    w.kv_values(KvTensor::k, off, d, row.data());
    for (int i = 0; i < d; ++i) k(t, i) = row[static_cast<size_t>(i)];
    w.kv_values(KvTensor::v, off, d, row.data());
    for (int i = 0; i < d; ++i) v(t, i) = row[static_cast<size_t>(i)];
  }
}

}  // namespace

void gather_kv(const Workload& w, int r, int64_t begin, int64_t len, int kv_head, Eigen::MatrixXd& k,
               Eigen::MatrixXd& v) {
  gather_rows(w, len, kv_head, [&](int64_t t) { return w.token_offset(r, begin + t, 0); }, k, v);
}

Eigen::VectorXd query_vector(const Workload& w, int r, int h) {
  const int d = w.shape().head_dim;
  const double* dec = value_table(w.shape().dtype);
  Eigen::VectorXd q(d);
  const size_t off = w.q_offset(r, h);
  for (int i = 0; i < d; ++i) q(i) = dec[w.q[off + static_cast<size_t>(i)]];
  return q;
}

AttentionResult empty_result(const Workload& w) {
  AttentionResult res;
  res.requests = w.num_requests();
  res.heads = w.shape().num_q_heads;
  res.head_dim = w.shape().head_dim;
  res.o.assign(static_cast<size_t>(res.requests) * res.heads * res.head_dim, 0.0);
  res.lse.assign(static_cast<size_t>(res.requests) * res.heads, 0.0);
  return res;
}

void AttentionResult::store(int r, int h, const MergeState& s) {
  const size_t i = static_cast<size_t>(r) * heads + h;
  lse[i] = s.lse;
  std::copy(s.o.data(), s.o.data() + head_dim, o.begin() + static_cast<std::ptrdiff_t>(i * head_dim));
}

// [merge]
MergeState merge(const MergeState& a, const MergeState& b) {
  if (b.is_empty()) return a;
  if (a.is_empty()) return b;
  const double m = std::max(a.lse, b.lse);
  const double wa = std::exp(a.lse - m);
  const double wb = std::exp(b.lse - m);
  const double sum = wa + wb;
  MergeState out;
  out.lse = m + std::log(sum);
  out.o = (wa / sum) * a.o + (wb / sum) * b.o;
  return out;
}
// [merge]

// [attend]
MergeState attend(const Eigen::VectorXd& q, const Eigen::MatrixXd& k, const Eigen::MatrixXd& v) {
  if (k.rows() == 0) return MergeState::empty(static_cast<int>(q.size()));
  const double scale = 1.0 / std::sqrt(static_cast<double>(q.size()));
  Eigen::VectorXd s = (k * q) * scale;
  const double m = s.maxCoeff();
  Eigen::VectorXd p = (s.array() - m).exp().matrix();
  const double sum = p.sum();
  MergeState out;
  out.lse = m + std::log(sum);
  out.o = (v.transpose() * p) / sum;
  return out;
}
// [attend]

AttentionResult naive_attention(const Workload& w) {
  AttentionResult res = empty_result(w);
  const Shape& s = w.shape();
  parallel_for(int64_t{w.num_requests()} * s.num_kv_heads, [&](int64_t task) {
    const int r = static_cast<int>(task / s.num_kv_heads);
    const int kvh = static_cast<int>(task % s.num_kv_heads);
    Eigen::MatrixXd k, v;
    gather_kv(w, r, 0, w.layout.lengths[static_cast<size_t>(r)], kvh, k, v);
    for (int g = 0; g < s.group(); ++g) {
      const int h = kvh * s.group() + g;
      res.store(r, h, attend(query_vector(w, r, h), k, v));
    }
  });
  return res;
}

AttentionResult packed_attention(const Workload& w, const Plan& plan) {
  const Shape& s = w.shape();
  const int R = w.num_requests();
  require(static_cast<int>(plan.partials.size()) == R, "plan has partial counts for " +
                                                           std::to_string(plan.partials.size()) + " requests, workload has " +
                                                           std::to_string(R));
  std::vector<size_t> first(static_cast<size_t>(R) + 1, 0);  // first partial of each request
  for (int r = 0; r < R; ++r) first[static_cast<size_t>(r) + 1] = first[static_cast<size_t>(r)] + static_cast<size_t>(plan.partials[static_cast<size_t>(r)]);
  // Partial states flat, [partial slot, Hq] x (lse, o[d]): one allocation, written in place by the
  // worker threads (a state per slot with its own heap vector costs twice the memory and more).
  const size_t d = static_cast<size_t>(s.head_dim);
  const size_t states = first.back() * static_cast<size_t>(s.num_q_heads);
  std::vector<double> partial_lse(states, -std::numeric_limits<double>::infinity());
  std::vector<double> partial_o(states * d, 0.0);
  for (const Pack& p : plan.packs) {
    require(p.queries.size() == p.slots.size() && !p.queries.empty(), "plan: a pack has mismatched queries and slots");
    for (size_t i = 0; i < p.queries.size(); ++i) {
      const int q = p.queries[i];
      require(q >= 0 && q < R, "plan: pack names request " + std::to_string(q));
      require(p.slots[i] >= 0 && p.slots[i] < plan.partials[static_cast<size_t>(q)],
              "plan: slot " + std::to_string(p.slots[i]) + " of request " + std::to_string(q) + " out of range");
      require(p.token_begin >= 0 && p.kv_len >= 1 && p.token_begin + p.kv_len <= w.layout.lengths[static_cast<size_t>(q)],
              "plan: a pack's range runs past request " + std::to_string(q));
    }
    for (const PackTail& t : p.tails)
      require(t.entry >= 0 && t.entry < static_cast<int32_t>(p.queries.size()) && t.kv_len >= 1 &&
                  static_cast<int64_t>(t.blocks.size()) * w.shape().page_size >= t.kv_len,
              "plan: a pack's leaf tail names a bad entry or has too few blocks");
  }
  parallel_for(static_cast<int64_t>(plan.packs.size()) * s.num_kv_heads, [&](int64_t task) {
    const Pack& p = plan.packs[static_cast<size_t>(task / s.num_kv_heads)];
    const int kvh = static_cast<int>(task % s.num_kv_heads);
    // Every query of a pack reads the same blocks; the pack's own block list is what a kernel
    // reads, so the oracle reads it too (through the first query's table when it has none). With
    // leaf tails (Pack::tails) the kernels stream the pack space, the range then the tails, and a
    // query sees the range and its own tail: the oracle takes both from pack_space(), as the
    // device upload does, so a wrong layout fails here against the naive attention.
    const int page = s.page_size;
    const PackSpace space = pack_space(p, page);
    Eigen::MatrixXd k, v;
    if (p.blocks.empty()) {
      require(p.tails.empty(), "plan: a pack with leaf tails lists no blocks");
      gather_kv(w, p.queries[0], p.token_begin, p.kv_len, kvh, k, v);
    } else {
      gather_rows(w, space.len, kvh,
                  [&](int64_t t) {
                    return w.kv_offset(space.blocks[static_cast<size_t>(t / page)], static_cast<int>(t % page), 0);
                  },
                  k, v);
    }
    const Eigen::Index own = space.own_len;
    // What a query without a tail sees: every row, or the range's alone in a pack with tails.
    const bool has_tails = !p.tails.empty();
    const Eigen::MatrixXd k_own = has_tails ? Eigen::MatrixXd(k.topRows(own)) : Eigen::MatrixXd();
    const Eigen::MatrixXd v_own = has_tails ? Eigen::MatrixXd(v.topRows(own)) : Eigen::MatrixXd();
    const Eigen::MatrixXd& kr = has_tails ? k_own : k;
    const Eigen::MatrixXd& vr = has_tails ? v_own : v;
    Eigen::MatrixXd kt, vt;
    for (size_t i = 0; i < p.queries.size(); ++i) {
      const int q = p.queries[i];
      const auto [x, y] = space.tails[i];
      const bool tail = y > x;
      if (tail) {  // the range's rows, then the tail's
        kt.resize(own + (y - x), k.cols());
        vt.resize(own + (y - x), v.cols());
        kt << k.topRows(own), k.middleRows(x, y - x);
        vt << v.topRows(own), v.middleRows(x, y - x);
      }
      for (int g = 0; g < s.group(); ++g) {
        const int h = kvh * s.group() + g;
        const size_t slot = first[static_cast<size_t>(q)] + static_cast<size_t>(p.slots[i]);
        const size_t state = slot * static_cast<size_t>(s.num_q_heads) + static_cast<size_t>(h);
        const MergeState st = tail ? attend(query_vector(w, q, h), kt, vt) : attend(query_vector(w, q, h), kr, vr);
        partial_lse[state] = st.lse;
        std::copy(st.o.data(), st.o.data() + d, partial_o.begin() + static_cast<std::ptrdiff_t>(state * d));
      }
    }
  });
  AttentionResult res = empty_result(w);
  parallel_for(R, [&](int64_t r) {
    for (int h = 0; h < s.num_q_heads; ++h) {
      MergeState acc = MergeState::empty(s.head_dim);
      for (size_t slot = first[static_cast<size_t>(r)]; slot < first[static_cast<size_t>(r) + 1]; ++slot) {
        const size_t state = slot * static_cast<size_t>(s.num_q_heads) + static_cast<size_t>(h);
        MergeState part{partial_lse[state], Eigen::Map<const Eigen::VectorXd>(partial_o.data() + state * d, s.head_dim)};
        acc = merge(acc, part);
      }
      res.store(static_cast<int>(r), h, acc);
    }
  });
  return res;
}

namespace {

/// One (query, head)'s softmax over the rows of `k` and `v` in the kernels' precision: float32
/// scores against their max, P rounded to the storage type before P.V, float32 sums; `o` is
/// normalised by the sum (times `v_scale`, the fp8 cache's) and not rounded.
struct EmulatedSoftmax {
  float m = 0;        ///< the largest score
  float sum = 0;      ///< sum of exp(score - m), unrounded
  Eigen::VectorXf o;  ///< P.V / sum
};

EmulatedSoftmax emulate_softmax(const Eigen::VectorXf& q, const Eigen::MatrixXf& k, const Eigen::MatrixXf& v,
                                float scale, float v_scale, bool fp8, DType dtype) {
  EmulatedSoftmax r;
  const Eigen::VectorXf sc = (k * q) * scale;
  r.m = sc.maxCoeff();
  Eigen::VectorXf p(sc.size());
  for (Eigen::Index t = 0; t < sc.size(); ++t) {
    const float e = std::exp(sc(t) - r.m);
    r.sum += e;
    p(t) = round_to(e, dtype);
  }
  r.o = (v.transpose() * p) / r.sum;
  if (fp8) r.o *= v_scale;
  return r;
}

/// emulated_attention() with, where `split` is given, each query of more than one partial cut
/// into its partials: each partial's softmax emulated alone, its o rounded to the storage type
/// (16-bit partials), its lse in float32, and the partials merged in float32 as
/// merge_query_head() merges them (weights exp(lse_i - lse) against the merged lse). With
/// `plain` (emulated_attention(w)) the rows of a request of at most one partial are copied from it.
AttentionResult emulate(const Workload& w, const PartialSplit* split, const AttentionResult* plain) {
  AttentionResult res = empty_result(w);
  const Shape& s = w.shape();
  // An fp8 cache: the kernels compute q.k8 on the stored codes (exact in the 16-bit type) and
  // fold k_scale into the softmax scale, and P.v8 with v_scale applied to the output. A 16-bit
  // cache: the scales are 1 and the codes are the values.
  const float k_scale = s.kv_fp8() ? w.k_scale : 1.0f, v_scale = s.kv_fp8() ? w.v_scale : 1.0f;
  const float scale = 1.0f / std::sqrt(static_cast<float>(s.head_dim)) * k_scale;
  parallel_for(int64_t{w.num_requests()} * s.num_kv_heads, [&](int64_t task) {
    const int r = static_cast<int>(task / s.num_kv_heads);
    const int kvh = static_cast<int>(task % s.num_kv_heads);
    const std::vector<PartialKeys>* parts = split ? &(*split)[static_cast<size_t>(r)] : nullptr;
    if (plain && (!parts || parts->size() <= 1)) {  // the plain emulation's rows: the same arithmetic
      for (int g = 0; g < s.group(); ++g) {
        const size_t row = static_cast<size_t>(r) * s.num_q_heads + static_cast<size_t>(kvh * s.group() + g);
        res.lse[row] = plain->lse[row];
        std::copy_n(plain->o.begin() + static_cast<std::ptrdiff_t>(row * s.head_dim), s.head_dim,
                    res.o.begin() + static_cast<std::ptrdiff_t>(row * s.head_dim));
      }
      return;
    }
    const int64_t len = w.layout.lengths[static_cast<size_t>(r)];
    Eigen::MatrixXd kd, vd;
    gather_kv(w, r, 0, len, kvh, kd, vd);
    // Back to the stored codes' values (exact: a dequantised value is code value * scale).
    const Eigen::MatrixXf k = (kd / k_scale).cast<float>(), v = (vd / v_scale).cast<float>();
    std::vector<Eigen::MatrixXf> part_k, part_v;
    if (parts && parts->size() > 1)
      for (const PartialKeys& keys : *parts) {
        part_k.push_back(partial_rows(k, keys));
        part_v.push_back(partial_rows(v, keys));
      }
    for (int g = 0; g < s.group(); ++g) {
      const int h = kvh * s.group() + g;
      const Eigen::VectorXf q = query_vector(w, r, h).cast<float>();
      MergeState st;
      st.o.resize(s.head_dim);
      if (part_k.empty()) {  // one softmax over the whole row, its output rounded once
        const EmulatedSoftmax e = emulate_softmax(q, k, v, scale, v_scale, s.kv_fp8(), s.dtype);
        st.lse = static_cast<double>(e.m) + std::log(static_cast<double>(e.sum));
        for (int i = 0; i < s.head_dim; ++i) st.o(i) = round_to(e.o(i), s.dtype);
      } else {  // 16-bit partials, merged in float32
        std::vector<float> lse(part_k.size());
        std::vector<Eigen::VectorXf> o(part_k.size());
        float big = -std::numeric_limits<float>::infinity();
        for (size_t i = 0; i < part_k.size(); ++i) {
          const EmulatedSoftmax e = emulate_softmax(q, part_k[i], part_v[i], scale, v_scale, s.kv_fp8(), s.dtype);
          lse[i] = e.m + std::log(e.sum);
          o[i] = e.o.unaryExpr([&](float x) { return round_to(x, s.dtype); });
          big = std::max(big, lse[i]);
        }
        float l = 0.0f;
        for (float x : lse) l += std::exp(x - big);
        const float total = big + std::log(l);
        Eigen::VectorXf acc = Eigen::VectorXf::Zero(s.head_dim);
        for (size_t i = 0; i < o.size(); ++i) acc += std::exp(lse[i] - total) * o[i];
        st.lse = static_cast<double>(total);
        for (int i = 0; i < s.head_dim; ++i) st.o(i) = round_to(acc(i), s.dtype);
      }
      res.store(r, h, st);
    }
  });
  return res;
}

}  // namespace

Eigen::MatrixXf partial_rows(const Eigen::MatrixXf& m, const PartialKeys& keys) {
  Eigen::Index n = 0;
  for (const auto& [b, e] : keys) n += e - b;
  Eigen::MatrixXf out(n, m.cols());
  Eigen::Index at = 0;
  for (const auto& [b, e] : keys) {
    out.middleRows(at, e - b) = m.middleRows(b, e - b);
    at += e - b;
  }
  return out;
}

// [emulated-attention]
AttentionResult emulated_attention(const Workload& w) { return emulate(w, nullptr, nullptr); }

AttentionResult emulated_attention(const Workload& w, const PartialSplit& split, const AttentionResult* plain) {
  const size_t rows = static_cast<size_t>(w.num_requests()) * static_cast<size_t>(w.shape().num_q_heads);
  require(!plain || (plain->requests == w.num_requests() && plain->heads == w.shape().num_q_heads &&
                     plain->head_dim == w.shape().head_dim && plain->lse.size() == rows &&
                     plain->o.size() == rows * static_cast<size_t>(w.shape().head_dim)),
          "emulated_attention: the plain emulation given is not of this workload's shape");
  require(static_cast<int>(split.size()) == w.num_requests(),
          "emulated_attention: the partial split has " + std::to_string(split.size()) + " requests, the workload " +
              std::to_string(w.num_requests()));
  for (size_t r = 0; r < split.size(); ++r) {
    int64_t covered = 0;
    for (const PartialKeys& keys : split[r])
      for (const auto& [b, e] : keys) {
        require(b >= 0 && b < e && e <= w.layout.lengths[r], "emulated_attention: a partial's keys lie outside request " +
                                                                  std::to_string(r));
        covered += e - b;
      }
    require(split[r].empty() || covered == w.layout.lengths[r],
            "emulated_attention: the partials of request " + std::to_string(r) + " do not cover its keys once");
  }
  return emulate(w, &split, plain);
}
// [emulated-attention]

double max_relative_difference(const AttentionResult& a, const AttentionResult& b, double floor) {
  require(a.o.size() == b.o.size() && a.lse.size() == b.lse.size(), "results of different shapes");
  double worst = 0.0;
  auto upd = [&](double x, double y) {
    const double d = std::fabs(x - y) / std::max(std::fabs(y), floor);
    worst = std::isnan(d) ? std::numeric_limits<double>::infinity() : std::max(worst, d);
  };
  for (size_t i = 0; i < a.o.size(); ++i) upd(a.o[i], b.o[i]);
  for (size_t i = 0; i < a.lse.size(); ++i) upd(a.lse[i], b.lse[i]);
  return worst;
}

}  // namespace patlab
