/// @file gqa_decode.cuh
/// @brief The CUDA-core decode CTA of stages 2 and 3: one (request, KV head, token range) for
/// all G query heads of the group, with 16-byte coalesced loads and warp-level reductions.
///
/// Layout of the CTA's kGqaThreads threads: a *row group* of D/8 consecutive lanes reads one
/// token's K (or V) row, 16 bytes (8 elements) per lane, so one warp reads 1 (d=256), 2 (d=128)
/// or 4 (d=64) full rows per load instruction, fully coalesced. Row group i takes tokens i,
/// i + groups, ... of the range, keeping kInFlight tokens' loads in flight before it uses
/// them. Each row group keeps its own online-softmax state per head (running max m, running
/// sum l, accumulator over its 8 output elements); at the end the states are merged, first
/// across the row groups of a warp with shuffles, then across warps through shared memory.
/// Scores are kept in the log2 domain (q is pre-scaled by log2(e)/sqrt(d)) so every
/// exponential is one exp2.
///
/// Any group size: the CTA is compiled for a group bucket G (dispatch.cuh: 1, 2, 4, 8 or 16) and
/// serves the run-time group g <= G. The token loop has no per-head branch: heads g..G-1 load
/// head g-1's q and repeat its work (wasted for a group between buckets, e.g. 3 of 8 heads at
/// group 5; none at groups 1, 2, 4, 8, 16, whose loop is exactly the code without the run-time
/// group), and they are never merged or written (those guards are uniform across the CTA, so
/// every lane still reaches every shuffle).
#pragma once

#include <cuda_runtime.h>

#include <cmath>
#include <cstdint>

#include "patlab/cuda/merge.cuh"
#include "patlab/cuda/numeric.cuh"
#include "patlab/cuda/paged.cuh"
#include "patlab/cuda/softmax_state.cuh"

namespace patlab::cuda {

/// Threads of a CUDA-core decode CTA.
inline constexpr int kGqaThreads = 128;
/// Shared memory the cross-warp merge parks states in, per round: at d=256 with 16 heads the
/// states of all heads would take 64 KB, over the 48 KB of static shared memory, so the heads
/// are merged in rounds of as many as fit.
inline constexpr int kGqaParkBytes = 32 * 1024;

/// Where a decode CTA writes: the output row of each head directly, or a partial slot.
/// @tparam T storage type of q and the output
template <typename T>
struct DecodeSink {
  T* out = nullptr;       ///< [requests, Hq, D]; used when partials.o is null
  PartialsView partials;  ///< partial slots; used when partials.o is set
  int slot = 0;           ///< slot of this CTA's (request, range) within the request's slots
};

// [gqa-state]
/// Online-softmax state of one row group for one head, in the log2 domain: running max `m`,
/// running sum `l` of exp2(score - m), and this lane's 8 output elements `acc` (unnormalised).
/// RowState::merge() is the merge operator: two empty states stay empty (a side with m = -inf
/// gets weight 0 instead of exp2(-inf - -inf) = NaN).
using RowState = MergeState<kVecElems>;
// [gqa-state]

/// Decodes tokens [begin, end) of one request for the `group` query heads of `kv_head`.
/// Call from all kGqaThreads threads of the CTA. An fp8 KV cache is read 8 bytes per lane and
/// converted in registers; its K scale is folded into q's scale and its V scale into the output.
/// @tparam T storage type of q and the output
/// @tparam KV storage type of K and V (T, or __nv_fp8_e4m3 with scales k_scale, v_scale)
/// @tparam D head dimension (64, 128 or 256)
/// @tparam G the group bucket: the most query heads per KV head this instance holds (>= group)
template <typename T, typename KV, int D, int G>
__device__ void gqa_decode_range(const T* __restrict__ q_group,  // q of head kv_head*group: group rows of D
                                 const KV* __restrict__ k_pool, const KV* __restrict__ v_pool, float k_scale,
                                 float v_scale, const int32_t* __restrict__ blocks, PoolGeometry geo, int kv_head,
                                 int group, int begin, int end, int num_q_heads, int64_t out_row0,
                                 const DecodeSink<T>& sink) {
  constexpr int kLanesPerRow = D / kVecElems;             // lanes reading one token row
  constexpr int kRowsPerWarp = 32 / kLanesPerRow;         // rows a warp reads per load
  constexpr int kWarps = kGqaThreads / 32;
  constexpr int kRowGroups = kRowsPerWarp * kWarps;       // tokens read per CTA step
  constexpr int kInFlight = G >= 8 ? 2 : 4;               // tokens per row group per step
  constexpr int kParkBytesPerHead = kWarps * D * static_cast<int>(sizeof(float));  // one head's parked acc
  constexpr int kParkHeads = G < kGqaParkBytes / kParkBytesPerHead ? G : kGqaParkBytes / kParkBytesPerHead;
  static_assert(32 % kLanesPerRow == 0, "a token row must fit in a warp");
  static_assert(kParkHeads >= 1 && G % kParkHeads == 0, "the merge rounds cover the bucket's heads evenly");

  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  const int part = lane % kLanesPerRow;                   // which 8 elements of a row
  const int row_group = warp * kRowsPerWarp + lane / kLanesPerRow;
  const float q_scale = kLog2e * rsqrtf(static_cast<float>(D)) * k_scale;

  // [gqa-loop]
  float q[G][kVecElems];
#pragma unroll
  for (int h = 0; h < G; ++h) {
    load8(q_group + min(h, group - 1) * D + part * kVecElems, q[h]);  // padded heads repeat the last
#pragma unroll
    for (int i = 0; i < kVecElems; ++i) q[h][i] *= q_scale;
  }
  RowState st[G];
  // The loop bound is the same for the whole CTA, so every lane reaches every shuffle.
  for (int base = begin; base < end; base += kRowGroups * kInFlight) {
    float k[kInFlight][kVecElems], v[kInFlight][kVecElems];
    bool valid[kInFlight];
#pragma unroll
    for (int u = 0; u < kInFlight; ++u) {  // issue all loads first
      const int t = base + u * kRowGroups + row_group;
      valid[u] = t < end;
      if (valid[u]) {
        const int64_t off = token_offset<D>(geo, blocks, t, kv_head) + part * kVecElems;
        load8(k_pool + off, k[u]);
        load8(v_pool + off, v[u]);
      }
    }
#pragma unroll
    for (int h = 0; h < G; ++h) {  // all G heads: no branch in the hot loop (padded ones are dropped below)
      float s[kInFlight];
      float m_new = st[h].m;
#pragma unroll
      for (int u = 0; u < kInFlight; ++u) {
        float dot = 0.f;
#pragma unroll
        for (int i = 0; i < kVecElems; ++i) dot += q[h][i] * (valid[u] ? k[u][i] : 0.f);
#pragma unroll
        for (int o = kLanesPerRow / 2; o > 0; o /= 2) dot += __shfl_xor_sync(0xffffffffu, dot, o);
        s[u] = valid[u] ? dot : -INFINITY;
        m_new = fmaxf(m_new, s[u]);
      }
      if (m_new == -INFINITY) continue;  // no token yet for this row group
      st[h].update(m_new, s, valid, v);  // rescales by 0 while st[h] is empty
    }
  }
  // [gqa-loop]

  // [gqa-combine]
  // Merge the row groups of each warp: lanes with the same `part` hold the same elements.
#pragma unroll
  for (int o = kLanesPerRow; o < 32; o *= 2) {
#pragma unroll
    for (int h = 0; h < G; ++h) {
      if (h >= group) break;
      RowState other;
      other.m = __shfl_xor_sync(0xffffffffu, st[h].m, o);
      other.l = __shfl_xor_sync(0xffffffffu, st[h].l, o);
#pragma unroll
      for (int i = 0; i < kVecElems; ++i) other.acc[i] = __shfl_xor_sync(0xffffffffu, st[h].acc[i], o);
      st[h].merge(other);
    }
  }
  // Then across warps, kParkHeads heads per round: warp w's first row group parks its states
  // in shared memory, and thread i finishes (head, 8 elements) pairs i, i + kGqaThreads, ...
  __shared__ float park_m[kWarps][kParkHeads], park_l[kWarps][kParkHeads];
  __shared__ float park_acc[kWarps][kParkHeads][D];
#pragma unroll
  for (int h0 = 0; h0 < G; h0 += kParkHeads) {
    if (h0 >= group) break;
    if (lane < kLanesPerRow) {
#pragma unroll
      for (int j = 0; j < kParkHeads; ++j) {
        park_m[warp][j] = st[h0 + j].m;
        park_l[warp][j] = st[h0 + j].l;
#pragma unroll
        for (int i = 0; i < kVecElems; ++i) park_acc[warp][j][part * kVecElems + i] = st[h0 + j].acc[i];
      }
    }
    __syncthreads();
    const int heads = min(kParkHeads, group - h0);
    for (int item = threadIdx.x; item < heads * kLanesPerRow; item += kGqaThreads) {
      const int j = item / kLanesPerRow, p = item % kLanesPerRow;
      RowState total;
      for (int w = 0; w < kWarps; ++w) {
        RowState other;
        other.m = park_m[w][j];
        other.l = park_l[w][j];
#pragma unroll
        for (int i = 0; i < kVecElems; ++i) other.acc[i] = park_acc[w][j][p * kVecElems + i];
        total.merge(other);
      }
      float o[kVecElems];
      total.normalised(o);
#pragma unroll
      for (int i = 0; i < kVecElems; ++i) o[i] *= v_scale;
      const int64_t row = out_row0 + h0 + j;  // (request, q head) row
      if (sink.partials.o == nullptr) {
        store8(sink.out + row * D + p * kVecElems, o);
      } else {
        const int64_t slot_row = static_cast<int64_t>(sink.slot) * num_q_heads + (row % num_q_heads);
        total.write_partial(o, static_cast<float*>(sink.partials.o) + slot_row * D + p * kVecElems, sink.partials.lse + slot_row, p == 0);
      }
    }
    __syncthreads();  // the next round parks over these states
  }
  // [gqa-combine]
}

}  // namespace patlab::cuda
