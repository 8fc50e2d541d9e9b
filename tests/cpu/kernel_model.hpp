// A second model of a correct kernel for the CPU tests: the rounding of the GPU stages' tiled
// online softmax, which differs from emulated_attention()'s one-pass softmax. The check's per-row
// floor is measured against it (test_check.cpp), and the injected-fault suite requires it to
// pass wherever the faults must fail (test_faults.cpp).
#pragma once

#include <Eigen/Core>
#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "patlab/truth/dtype.hpp"
#include "patlab/model/kv_cache.hpp"
#include "patlab/truth/oracle.hpp"
#include "patlab/parallel.hpp"

namespace patlab::test {

/// KV tokens per tile of the model (a stage's n).
inline constexpr int kModelTileTokens = 64;
/// KV tokens per split of the model: each split is one partial, merged at the end (split-KV).
inline constexpr int kModelSplitTokens = 1024;

/// One split's partial in float32: o normalised by its own sum, and its natural-log lse.
struct FloatPartial {
  float lse;
  Eigen::VectorXf o;
};

/// Online softmax over tokens [begin, end) of `k`/`v` (rows are tokens): running max in float32,
/// P rounded to `dtype` against the running max before P.V, accumulators rescaled per tile.
inline FloatPartial online_softmax(const Eigen::VectorXf& q, const Eigen::MatrixXf& k, const Eigen::MatrixXf& v,
                                   int64_t begin, int64_t end, float scale, DType dtype) {
  float m = -std::numeric_limits<float>::infinity(), l = 0.0f;
  Eigen::VectorXf acc = Eigen::VectorXf::Zero(q.size());
  for (int64_t t0 = begin; t0 < end; t0 += kModelTileTokens) {
    const int64_t t1 = std::min<int64_t>(end, t0 + kModelTileTokens);
    Eigen::VectorXf s = (k.middleRows(t0, t1 - t0) * q) * scale;
    const float m_new = std::max(m, s.maxCoeff());
    const float alpha = std::exp(m - m_new);
    l *= alpha;
    acc *= alpha;
    for (int64_t t = t0; t < t1; ++t) {
      const float e = std::exp(s(t - t0) - m_new);
      l += e;
      acc += round_to(e, dtype) * v.row(t).transpose();
    }
    m = m_new;
  }
  return {m + std::log(l), acc / l};
}

/// How the model stores the partials it merges.
struct PartialStorage {
  int split_tokens = kModelSplitTokens;  ///< KV tokens per split (one partial each)
  /// Round each partial's o to the storage type before the merge, as a kernel that kept its
  /// partials in 16 bits would (FlashInfer's cascade keeps a level's o in q's type); the stages
  /// keep float32 unless run with --half-partials.
  bool sixteen_bits = false;
  /// Where set, each query's partials are the keys this split lists (a stage's plan:
  /// plan_partial_split()) instead of chunks of split_tokens.
  const PartialSplit* split = nullptr;
};

/// Attention of every (request, head) as a split-KV tiled kernel computes it: splits of
/// `storage.split_tokens`, tiles of kModelTileTokens, partials merged in float32 (or rounded to
/// the storage type first), output rounded to the storage type.
inline AttentionResult tiled_kernel_model(const Workload& w, const PartialStorage& storage = {}) {
  const Shape& s = w.shape();
  AttentionResult res;
  res.requests = w.num_requests();
  res.heads = s.num_q_heads;
  res.head_dim = s.head_dim;
  res.o.assign(static_cast<size_t>(res.requests) * res.heads * res.head_dim, 0.0);
  res.lse.assign(static_cast<size_t>(res.requests) * res.heads, 0.0);
  const float scale = 1.0f / std::sqrt(static_cast<float>(s.head_dim));
  parallel_for(int64_t{w.num_requests()} * s.num_kv_heads, [&](int64_t task) {
    const int r = static_cast<int>(task / s.num_kv_heads), kvh = static_cast<int>(task % s.num_kv_heads);
    const int64_t len = w.layout.lengths[static_cast<size_t>(r)];
    Eigen::MatrixXf k(len, s.head_dim), v(len, s.head_dim);
    for (int64_t t = 0; t < len; ++t)
      for (int i = 0; i < s.head_dim; ++i) {
        k(t, i) = static_cast<float>(w.kv_value(KvTensor::k, w.token_offset(r, t, kvh) + static_cast<size_t>(i)));
        v(t, i) = static_cast<float>(w.kv_value(KvTensor::v, w.token_offset(r, t, kvh) + static_cast<size_t>(i)));
      }
    for (int g = 0; g < s.group(); ++g) {
      const int h = kvh * s.group() + g;
      Eigen::VectorXf q(s.head_dim);
      for (int i = 0; i < s.head_dim; ++i) q(i) = to_float(w.q[w.q_offset(r, h) + static_cast<size_t>(i)], s.dtype);
      std::vector<FloatPartial> parts;
      if (storage.split && (*storage.split)[static_cast<size_t>(r)].size() > 1) {
        for (const PartialKeys& keys : (*storage.split)[static_cast<size_t>(r)]) {
          const Eigen::MatrixXf pk = partial_rows(k, keys), pv = partial_rows(v, keys);
          parts.push_back(online_softmax(q, pk, pv, 0, pk.rows(), scale, s.dtype));
        }
      } else {
        const int64_t step = storage.split ? len : storage.split_tokens;
        for (int64_t b = 0; b < len; b += step)
          parts.push_back(online_softmax(q, k, v, b, std::min<int64_t>(len, b + step), scale, s.dtype));
      }
      if (storage.sixteen_bits && parts.size() > 1)  // one partial is the output itself: written once
        for (FloatPartial& p : parts) p.o = p.o.unaryExpr([&](float x) { return round_to(x, s.dtype); });
      float big = -std::numeric_limits<float>::infinity();
      for (const FloatPartial& p : parts) big = std::max(big, p.lse);
      float sum = 0.0f;
      Eigen::VectorXf o = Eigen::VectorXf::Zero(s.head_dim);
      for (const FloatPartial& p : parts) {
        const float wgt = std::exp(p.lse - big);
        sum += wgt;
        o += wgt * p.o;
      }
      const size_t row = static_cast<size_t>(r) * s.num_q_heads + static_cast<size_t>(h);
      for (int i = 0; i < s.head_dim; ++i)
        res.o[row * static_cast<size_t>(s.head_dim) + static_cast<size_t>(i)] = round_to(o(i) / sum, s.dtype);
      res.lse[row] = static_cast<double>(big) + std::log(static_cast<double>(sum));
    }
  });
  return res;
}

}  // namespace patlab::test
