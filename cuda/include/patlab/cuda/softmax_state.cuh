/// @file softmax_state.cuh
/// @brief The online-softmax state on the device (patlab::cuda::MergeState), the one form every
/// kernel keeps, updates, merges and writes.
///
/// It is the GPU form of the CPU oracle's patlab::MergeState (reference/include/patlab/truth/oracle.hpp,
/// chapter 01): the CPU state (lse, o) over a set of keys is held here unnormalised, as the
/// running max `m` of the scores, the running sum `l` = sum exp(score - m) and the accumulator
/// `acc` = sum exp(score - m) v of the output elements a thread owns. Then
///   lse = m + log(l),   o = acc / l,
/// and MergeState::merge() is the CPU merge() on these pairs. The empty state (no keys) is
/// m = -inf, l = 0, acc = 0; merging it with anything returns the other side, and two empty
/// states stay empty (never exp(-inf - -inf) = NaN).
///
/// Scores live in one of two domains, a template parameter: Log2Domain (q pre-scaled by
/// log2(e)/sqrt(d), so each exponential is one exp2; stages 2-7) or NaturalDomain (the fast
/// __expf of stage 1). A *partial* is the state written to global memory normalised: fp32 o and
/// lse in natural log (merge.cuh reads them back).
#pragma once

#include <cuda_runtime.h>

#include <cmath>

#include "patlab/cuda/numeric.cuh"

namespace patlab::cuda {

/// 2^x with one MUFU.EX2 (`ex2.approx.ftz.f32`: relative error about 2^-22, results below 2^-126
/// flushed to 0), for the tile kernels' per-score exponentials; exp2f() adds a range fix-up of
/// four instructions per call for subnormal results, which a softmax weight never needs.
__device__ __forceinline__ float exp2_approx(float x) {
  float y;
  asm("ex2.approx.ftz.f32 %0, %1;" : "=f"(y) : "f"(x));
  return y;
}

/// Scores in the log2 domain: exp2 and log2, lse converted to natural log by ln(2).
struct Log2Domain {
  /// 2^x (exp2f()).
  static __device__ __forceinline__ float exp(float x) { return exp2f(x); }
  /// Natural-log lse of a non-empty state (m, l).
  static __device__ __forceinline__ float lse(float m, float l) { return (m + log2f(l)) * kLn2; }
};

/// Scores in natural log, with the fast intrinsics.
struct NaturalDomain {
  /// e^x with the fast intrinsic __expf().
  static __device__ __forceinline__ float exp(float x) { return __expf(x); }
  /// Natural-log lse of a non-empty state (m, l).
  static __device__ __forceinline__ float lse(float m, float l) { return m + __logf(l); }
};

/// Factors by which the two sides' sums and accumulators are scaled in a merge.
struct MergeWeights {
  float self;   ///< weight of the state merged into
  float other;  ///< weight of the state merged from
};

// [merge-state]
/// The scalar part of the online-softmax state of one row: running max `m` and running sum `l`.
/// Kernels whose accumulator lives in a register layout of their own (the tensor-core fragments
/// of packed_tile.cuh) keep this part and scale their accumulator by the factors its
/// updates return; MergeState adds an accumulator of N elements.
/// @tparam Domain Log2Domain or NaturalDomain: how scores are exponentiated
template <typename Domain = Log2Domain>
struct SoftmaxRow {
  float m = -INFINITY;  ///< running max of the scores; -inf while the state is empty
  float l = 0.f;        ///< running sum of exp(score - m)

  /// Whether the state is empty: no finite score seen yet, so m is still -inf.
  __device__ __forceinline__ bool is_empty() const { return m == -INFINITY; }

  /// Moves the state to the running max `m_new` >= m before a tile's scores are added: scales
  /// `l` and returns the factor the accumulator must be scaled by (0 while the state is empty).
  /// `m_new` may be -inf (no key yet): the state stays empty.
  __device__ __forceinline__ float rescale(float m_new) {
    const float alpha = is_empty() ? 0.f : Domain::exp(m - m_new);
    m = m_new;
    l *= alpha;
    return alpha;
  }

  /// rescale() for a finite `m_new`, where exp(-inf - m_new) = 0 already covers the empty state.
  __device__ __forceinline__ float rescale_finite(float m_new) {
    const float alpha = Domain::exp(m - m_new);
    m = m_new;
    l *= alpha;
    return alpha;
  }

  /// The max that a tile's exponentials are taken against after rescale(): m, or 0 while the
  /// state is empty, so that exp(-inf - 0) = 0 for masked keys instead of NaN.
  __device__ __forceinline__ float exp_base() const { return is_empty() ? 0.f : m; }

  /// Merges the scalar part of `other` into this state and returns the weights of the two
  /// accumulators: acc = acc * self + other.acc * other. An empty side weighs 0.
  __device__ __forceinline__ MergeWeights merge(const SoftmaxRow& b) {
    const float mm = fmaxf(m, b.m);
    const MergeWeights w{is_empty() ? 0.f : Domain::exp(m - mm), b.is_empty() ? 0.f : Domain::exp(b.m - mm)};
    m = mm;
    l = l * w.self + b.l * w.other;
    return w;
  }

  /// 1 / l: the factor that normalises the accumulator (o = acc / l).
  __device__ __forceinline__ float inv_sum() const { return 1.f / l; }

  /// The lse of a partial, in natural log (non-empty state).
  __device__ __forceinline__ float partial_lse() const { return Domain::lse(m, l); }
};

/// Online-softmax state of one row over the N output elements a thread owns: the device
/// counterpart of patlab::MergeState (see the file comment for the correspondence).
/// @tparam N output elements held by the calling thread
/// @tparam Domain Log2Domain or NaturalDomain: how scores are exponentiated
template <int N, typename Domain = Log2Domain>
struct MergeState : SoftmaxRow<Domain> {
  float acc[N] = {};  ///< sum exp(score - m) v over the keys seen, for this thread's N elements

  /// Update with a tile of K keys (scores `s` in the domain, values `v`, invalid keys skipped)
  /// whose max, with the state's, is the finite `m_new`: rescales the sum and the accumulator
  /// by exp(m - m_new) (0 while the state is empty), then adds each valid key with weight
  /// p = exp(s - m_new).
  /// @tparam K keys of the tile: entries of `s` and `valid`, rows of `v`
  template <int K>
  __device__ __forceinline__ void update(float m_new, const float (&s)[K], const bool (&valid)[K],
                                         const float (&v)[K][N]) {
    const float alpha = Domain::exp(this->m - m_new);
    this->l *= alpha;
#pragma unroll
    for (int i = 0; i < N; ++i) acc[i] *= alpha;
#pragma unroll
    for (int u = 0; u < K; ++u) {
      if (!valid[u]) continue;
      const float p = Domain::exp(s[u] - m_new);
      this->l += p;
#pragma unroll
      for (int i = 0; i < N; ++i) acc[i] += p * v[u][i];
    }
    this->m = m_new;
  }

  /// Merges `b` into this state (the merge operator); two empty states stay empty.
  __device__ __forceinline__ void merge(const MergeState& b) {
    const MergeWeights w = SoftmaxRow<Domain>::merge(b);
#pragma unroll
    for (int i = 0; i < N; ++i) acc[i] = acc[i] * w.self + b.acc[i] * w.other;
  }

  /// The normalised output o = acc / l of a non-empty state.
  __device__ __forceinline__ void normalised(float (&o)[N]) const {
#pragma unroll
    for (int i = 0; i < N; ++i) o[i] = acc[i] / this->l;
  }

  /// Writes this thread's part of the state as a partial: its normalised output `o` (from
  /// normalised(); N elements, 16-byte aligned) at `o_dst` and, when `write_lse` (one thread
  /// of the row), the natural-log lse at `lse_dst`.
  __device__ __forceinline__ void write_partial(const float (&o)[N], float* o_dst, float* lse_dst,
                                                bool write_lse) const {
    static_assert(N % 4 == 0, "a partial is written in float4 stores");
#pragma unroll
    for (int i = 0; i < N; i += 4)
      reinterpret_cast<float4*>(o_dst)[i / 4] = make_float4(o[i], o[i + 1], o[i + 2], o[i + 3]);
    if (write_lse) *lse_dst = this->partial_lse();
  }
};
// [merge-state]

}  // namespace patlab::cuda
