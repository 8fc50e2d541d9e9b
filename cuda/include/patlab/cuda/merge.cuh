/// @file merge.cuh
/// @brief Partials and the merge kernel (introduced by stage 3, used by stages 4-7).
///
/// A partial is the merge state of one (query, query head) over part of its keys: `o`
/// normalised by its own softmax sum (fp32, or the output's 16-bit type where the stage stores
/// half-width partials: PartialsView::o_half) and `lse` = log(sum exp(score)) (natural log,
/// fp32). Query r owns the slots [offsets[r], offsets[r + 1]); partials are laid out
/// `o[slot][Hq][D]`, `lse[slot][Hq]`. The merge of a query's slots is
///   M = max lse_i;  lse = M + log(sum exp(lse_i - M));  o = sum exp(lse_i - lse) o_i,
/// and slots with lse = -inf (no keys) weigh zero. A slot whose lse is NaN (never written: checked
/// runs poison the partials) makes the query's whole output row NaN.
///
/// Read back, partial i is the MergeState (softmax_state.cuh) with m = lse_i, l = 1, acc = o_i in
/// the natural-log domain; the kernel is the n-ary form of MergeState::merge: it takes the max
/// over all slots first, so no state is ever rescaled.
#pragma once

#include <cuda_runtime.h>

#include <cmath>
#include <cstddef>
#include <cstdint>

#include "patlab/cuda/check.cuh"
#include "patlab/cuda/numeric.cuh"
#include "patlab/cuda/softmax_state.cuh"

namespace patlab::cuda {

/// Where a kernel writes partials.
struct PartialsView {
  void* o = nullptr;                ///< [slots, Hq, D]: float, or the output type T where o_half
  float* lse = nullptr;             ///< [slots, Hq]
  const int32_t* offsets = nullptr; ///< [requests + 1]: first slot of each request
  bool o_half = false;              ///< o holds 16-bit values of the output type (half the bytes)
};

/// Floats of a PartialsView::o buffer of `slots` slots of `q_heads` query heads of `head_dim`
/// values: half as many where the values are 16-bit (`o_half`, two to a float; head dims are even).
inline size_t partial_o_floats(size_t slots, int q_heads, int head_dim, bool o_half) {
  return slots * static_cast<size_t>(q_heads) * static_cast<size_t>(head_dim) / (o_half ? 2 : 1);
}

// [partial-pair]
/// Two consecutive partial values at `p` as floats, read through L2 (ld.global.cg): a float2, or
/// one 32-bit word of two 16-bit values.
__device__ __forceinline__ float2 load_partial_pair(const float* p) { return __ldcg(reinterpret_cast<const float2*>(p)); }
/// The same for a 16-bit partial (`__half` or `__nv_bfloat16`).
/// @tparam P storage type of the partial's o (__half or __nv_bfloat16)
template <typename P>
__device__ __forceinline__ float2 load_partial_pair(const P* p) {
  return unpack2(__ldcg(reinterpret_cast<const unsigned int*>(p)), P{});
}
// [partial-pair]

/// Threads of a merge CTA: one warp per query head, kMergeHeadsPerCta heads per CTA.
inline constexpr int kMergeHeadsPerCta = 4;
/// Slots of a query whose o a merge warp loads before it has their weights (registers: D/32 floats
/// a slot and lane).
inline constexpr int kMergeEarlySlots = 4;

// [merge-head]
/// Merges the partials of query `query` at query head `head` into `out` ([requests, Hq, D] in T):
/// one warp. The slots' lse values are read by the lanes together (lane i: slot i of each run of
/// 32), their max and sum reduced by shuffles, and each slot's weight handed from its lane to the
/// whole warp; each lane then adds its D/32 consecutive elements of every slot's o, loads that do
/// not wait for each other. So a query's merge waits on memory about twice, not three times per
/// slot, as a serial loop over the slots did (sparse FSA's spans give a query a dozen slots:
/// 1-4% of their branch, tutorial chapter 22). The o of the first kMergeEarlySlots slots is
/// loaded together with the lse values, before the weights are known, so a query of that many
/// slots (most queries of a tree: one partial per level it was split at) waits on memory once
/// after its offsets. The partials are read through L2 (ld.global.cg),
/// so a CTA may merge what other SMs wrote once it has seen their release (stage 9's folded
/// merge).
/// @tparam T storage type of the output (__half or __nv_bfloat16)
/// @tparam D head dimension (64, 128 or 256: a multiple of 64)
/// @tparam P storage type of the partials' o: float, or T (PartialsView::o_half)
template <typename T, int D, typename P = float>
__device__ __forceinline__ void merge_query_head(const P* __restrict__ o, const float* __restrict__ lse,
                                                 const int32_t* __restrict__ offsets, int query, int head,
                                                 int num_heads, int lane, T* __restrict__ out) {
  static_assert(D % 64 == 0, "each lane merges D/32 consecutive elements, an even number");
  constexpr int kPerLane = D / 32;
  constexpr unsigned kAll = 0xffffffffu;
  const int first = offsets[query], last = offsets[query + 1];
  auto slot_lse = [&](int s) {
    return s < last ? __ldcg(lse + static_cast<int64_t>(s) * num_heads + head) : -INFINITY;
  };
  auto slot_o = [&](int s) { return o + (static_cast<int64_t>(s) * num_heads + head) * D + lane * kPerLane; };
  // The first kMergeEarlySlots slots' o, issued before the lse values are reduced.
  const int early = min(last - first, kMergeEarlySlots);
  float2 early_o[kMergeEarlySlots][kPerLane / 2];
#pragma unroll
  for (int i = 0; i < kMergeEarlySlots; ++i)
#pragma unroll
    for (int e = 0; e < kPerLane; e += 2)
      early_o[i][e / 2] = i < early ? load_partial_pair(slot_o(first + i) + e) : float2{0.f, 0.f};
  SoftmaxRow<NaturalDomain> merged;  // the scalar part of the merged state; empty without slots
  bool unwritten = false;  // a NaN lse: a slot no kernel wrote (checked runs poison the partials)
  for (int s = first + lane; s < last; s += 32) {
    const float l = slot_lse(s);
    merged.m = fmaxf(merged.m, l);
    unwritten |= isnan(l);
  }
#pragma unroll
  for (int step = 16; step >= 1; step /= 2) merged.m = fmaxf(merged.m, __shfl_xor_sync(kAll, merged.m, step));
  if (__any_sync(kAll, unwritten)) merged.m = NAN;  // fmaxf drops NaN; carry it into every output element
  float acc[kPerLane] = {};
  if (!merged.is_empty()) {  // all slots empty (or none): the empty state's o = 0, never NaN
    for (int s = first + lane; s < last; s += 32) merged.l += NaturalDomain::exp(slot_lse(s) - merged.m);
#pragma unroll
    for (int step = 16; step >= 1; step /= 2) merged.l += __shfl_xor_sync(kAll, merged.l, step);
    const float total = merged.partial_lse();
    const float early_w = NaturalDomain::exp(slot_lse(first + lane) - total);  // lane i < early: slot first + i
#pragma unroll
    for (int i = 0; i < kMergeEarlySlots; ++i) {
      const float w = __shfl_sync(kAll, early_w, i);
      if (i < early) {
#pragma unroll
        for (int e = 0; e < kPerLane; e += 2) {
          acc[e] += w * early_o[i][e / 2].x;
          acc[e + 1] += w * early_o[i][e / 2].y;
        }
      }
    }
    for (int base = first + early; base < last; base += 32) {
      const float mine = NaturalDomain::exp(slot_lse(base + lane) - total);  // this lane's slot's weight
      const int count = min(32, last - base);
#pragma unroll 4
      for (int i = 0; i < count; ++i) {
        const float w = __shfl_sync(kAll, mine, i);
        const P* src = slot_o(base + i);
#pragma unroll
        for (int e = 0; e < kPerLane; e += 2) {
          const float2 v = load_partial_pair(src + e);
          acc[e] += w * v.x;
          acc[e + 1] += w * v.y;
        }
      }
    }
  }
  T* dst = out + (static_cast<int64_t>(query) * num_heads + head) * D + lane * kPerLane;
#pragma unroll
  for (int e = 0; e < kPerLane; e += 2)
    *reinterpret_cast<uint32_t*>(dst + e) = pack2(acc[e], acc[e + 1], T{});
}
// [merge-head]

// [merge-kernel]
/// Merges the partials of `queries[i]` (or of query i when `queries` is null) into `out`
/// ([requests, Hq, D] in T). Grid: (count, ceil(Hq / kMergeHeadsPerCta)); block: 32 x
/// kMergeHeadsPerCta, one warp per head (merge_query_head()).
/// @tparam T storage type of the output (__half or __nv_bfloat16)
/// @tparam D head dimension (64, 128 or 256: a multiple of 64)
/// @tparam P storage type of the partials' o: float, or T (PartialsView::o_half)
template <typename T, int D, typename P>
__global__ void __launch_bounds__(32 * kMergeHeadsPerCta)
    merge_partials_kernel(const P* __restrict__ o, const float* __restrict__ lse,
                          const int32_t* __restrict__ offsets, const int32_t* __restrict__ queries, int num_heads,
                          T* __restrict__ out) {
  const int query = queries ? queries[blockIdx.x] : static_cast<int>(blockIdx.x);
  const int head = blockIdx.y * kMergeHeadsPerCta + threadIdx.x / 32;
  if (head >= num_heads) return;
  merge_query_head<T, D, P>(o, lse, offsets, query, head, num_heads, threadIdx.x % 32, out);
}
// [merge-kernel]

/// Launches merge_partials_kernel for `count` queries (all when `queries` is null), the instance
/// that reads `p`'s o as it is stored (float, or T where p.o_half).
/// @tparam T storage type of the output (__half or __nv_bfloat16)
/// @tparam D head dimension (64, 128 or 256: a multiple of 64)
template <typename T, int D>
void launch_merge(const PartialsView& p, const int32_t* queries, int count, int num_heads, void* out,
                  cudaStream_t stream) {
  if (count == 0) return;
  const dim3 grid(count, (num_heads + kMergeHeadsPerCta - 1) / kMergeHeadsPerCta);
  if (p.o_half)
    merge_partials_kernel<T, D, T><<<grid, 32 * kMergeHeadsPerCta, 0, stream>>>(
        static_cast<const T*>(p.o), p.lse, p.offsets, queries, num_heads, static_cast<T*>(out));
  else
    merge_partials_kernel<T, D, float><<<grid, 32 * kMergeHeadsPerCta, 0, stream>>>(
        static_cast<const float*>(p.o), p.lse, p.offsets, queries, num_heads, static_cast<T*>(out));
  PATLAB_CUDA_CHECK_LAUNCH();
}

}  // namespace patlab::cuda
