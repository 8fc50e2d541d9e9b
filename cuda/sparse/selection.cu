// Sparse decode, steps 1 and 2 (tutorial chapter 22): the compressed blocks, then per (request,
// KV head) the compressed branch and the choice of selection blocks, on the GPU.
//
// fp32 throughout, every sum in a fixed order, so that a run repeats bit for bit. The
// compression reads every token of the cache (it is cache maintenance: NSA updates its
// compressed blocks as blocks fill, not per step) and is not part of a timed step; the selection
// reads only the compressed blocks. The selection is one CTA per (request, KV head), each phase
// spread over the whole CTA (version 1 ran a warp per (head, compressed block) with a shuffle
// reduction each, the output one thread per (head, element) over every compressed block, and the
// choice one CTA-wide argmax per chosen block: hundreds of microseconds, growing with the group).
//
// The choice follows selection.hpp's rules exactly (forced blocks first, then descending score,
// ties to the lower index; top-n stops at min(n, B), PSA at the first k >= min(min_budget, B)
// whose covered mass reaches tau, or at min(max_budget, B)). Its scores are fp32 where the CPU's
// are float64, so two blocks whose scores differ by less than the float rounding of a sum may
// swap places; tests/gpu/test_sparse_gpu.cpp states and checks the rule that allows this.
#include <cmath>
#include <cstdint>
#include <type_traits>

#include "patlab/cuda/check.cuh"
#include "patlab/cuda/dispatch.cuh"
#include "patlab/cuda/numeric.cuh"
#include "patlab/cuda/sparse_kernels.cuh"

namespace patlab::cuda {

namespace {

constexpr int kSelectWarps = kSelectThreads / 32;
/// Lanes that share one compressed block's dot products in the logits phase (each takes D / 4
/// elements, 16 bytes at a time, so a quad reads 64 contiguous bytes of a row).
constexpr int kLogitLanes = 4;
/// Query heads whose dot products or outputs one thread holds in registers at a time; a larger
/// group runs in passes of this many heads.
constexpr int kSelectHeads = 16;

/// Sum over the CTA (all threads call; every thread gets the total). `park` holds kSelectWarps floats.
__device__ float cta_sum(float x, float* park) {
  for (int o = 16; o > 0; o /= 2) x += __shfl_xor_sync(0xffffffffu, x, o);
  __syncthreads();
  if (threadIdx.x % 32 == 0) park[threadIdx.x / 32] = x;
  __syncthreads();
  float total = 0.f;
  for (int w = 0; w < kSelectWarps; ++w) total += park[w];
  return total;
}

/// Sum and max over a warp (every lane gets the result).
__device__ __forceinline__ float warp_sum(float x) {
  for (int o = 16; o > 0; o /= 2) x += __shfl_xor_sync(0xffffffffu, x, o);
  return x;
}
__device__ __forceinline__ float warp_max(float x) {
  for (int o = 16; o > 0; o /= 2) x = fmaxf(x, __shfl_xor_sync(0xffffffffu, x, o));
  return x;
}

/// True when block `b` of a request with `blocks` selection blocks is forced (forced_blocks()).
__device__ __forceinline__ bool is_forced(int b, int blocks) {
  return b < sparse::kForcedFirstBlocks || b >= max(sparse::kForcedFirstBlocks, blocks - sparse::kForcedRecentBlocks);
}

/// The place of forced block `b` in the forced order (ascending).
__device__ __forceinline__ int forced_position(int b, int blocks) {
  return b < sparse::kForcedFirstBlocks
             ? b
             : sparse::kForcedFirstBlocks + b - max(sparse::kForcedFirstBlocks, blocks - sparse::kForcedRecentBlocks);
}

/// Forced block `pos` of a request with `blocks` selection blocks (selection.hpp's forced_blocks():
/// the first block, then the kForcedRecentBlocks last ones, ascending, without repeats).
__device__ __forceinline__ int forced_block(int pos, int blocks) {
  return pos < sparse::kForcedFirstBlocks ? pos
                                          : max(sparse::kForcedFirstBlocks, blocks - sparse::kForcedRecentBlocks) + pos -
                                                sparse::kForcedFirstBlocks;
}

__device__ __forceinline__ int forced_count(int blocks) {
  return min(sparse::kForcedFirstBlocks, blocks) + blocks - max(sparse::kForcedFirstBlocks, blocks - sparse::kForcedRecentBlocks);
}

// [compress-kernel]
/// Step 1: compressed block j of (request, KV head) = the means of K and V over tokens
/// [j s, j s + l), stored in the block's slot (SelectionView::cmp_slot). Grid (R, Hkv); each
/// thread owns (block, element) items, so a warp reads 32 consecutive elements of one token row
/// at a time. Requests that share a slot write the same values to it (the same tokens, summed in
/// the same order).
template <typename T, int D>
__global__ void __launch_bounds__(kCompressThreads)
    compress_kernel(SparseBatch b, SelectionView v, int cmp_block, int cmp_stride) {
  const int r = blockIdx.x, kv_head = blockIdx.y, hkv = b.geo.num_kv_heads;
  const int first = v.cmp_begin[r], count = v.cmp_begin[r + 1] - first;
  const T* k = static_cast<const T*>(b.k_pool);
  const T* vp = static_cast<const T*>(b.v_pool);
  const int32_t* blocks = b.block_table + static_cast<int64_t>(r) * b.table_stride;
  const float inv = 1.f / static_cast<float>(cmp_block);
  for (int item = threadIdx.x; item < count * D; item += kCompressThreads) {
    const int j = item / D, e = item % D;
    float sk = 0.f, sv = 0.f;
    for (int t = j * cmp_stride; t < j * cmp_stride + cmp_block; ++t) {
      const int64_t off = token_offset<D>(b.geo, blocks, t, kv_head) + e;
      sk += to_float(k[off]);
      sv += to_float(vp[off]);
    }
    const int64_t dst = (static_cast<int64_t>(v.cmp_slot[first + j]) * hkv + kv_head) * D + e;
    v.kc[dst] = sk * inv;
    v.vc[dst] = sv * inv;
  }
}
// [compress-kernel]

// [select-kernel]
/// Step 2, one CTA per (request, KV head), in five phases separated by __syncthreads():
///  a. logits q_h . kc_j / sqrt(d) for every head h of the group and compressed block j: a quad
///     of lanes per j holds kc_j in registers, the group's q sits in shared memory (fp32);
///  b. per head, the softmax over j (the compressed branch's probabilities p_h(j)): a warp per
///     head;
///  c. the compressed branch's output o_h = sum_j p_h(j) vc_j: each thread takes 4 elements of
///     every kSelectThreads / (D / 4)-th compressed block for all heads, whole rows per warp;
///     the slices are added in shared memory in a fixed order;
///  d. each selection block's score: p_h(j) summed over the heads and the compressed blocks
///     that overlap it (one thread per block, heads then blocks in order, as the CPU sums);
///  e. the choice, in parallel: every unforced block's rank (how many unforced blocks beat it:
///     higher score, or equal and lower index) against the scores staged in shared memory; the
///     rank order is the old one-argmax-at-a-time order, so one thread walks the forced blocks
///     then ranks 0, 1, ... adding the masses in the same order until top-n's count or PSA's
///     rule stops it; then every block knows whether it is chosen, and a CTA-wide scan writes
///     the chosen blocks ascending. `taken` holds the ranks, then the chosen flags.
template <typename T, int D>
__global__ void __launch_bounds__(kSelectThreads) select_kernel(SparseBatch b, SelectionView v, SelectParams p) {
  static_assert(D % (4 * kLogitLanes) == 0 && kSelectThreads % (D / 4) == 0, "whole float4 columns per thread");
  __shared__ __align__(16) float buf[kSelectHeads * D];  // phase a: q of a head pass; c: the output's sums
  __shared__ float park[kSelectWarps];
  __shared__ float staged[kSelectThreads];
  __shared__ int warp_counts[kSelectWarps];
  __shared__ int s_count;
  __shared__ float s_mass;
  const int r = blockIdx.x, kv_head = blockIdx.y, hkv = b.geo.num_kv_heads, g = b.group, hq = b.num_q_heads;
  const int tid = threadIdx.x, lane = tid % 32, warp = tid / 32;
  const int cfirst = v.cmp_begin[r], cmp = v.cmp_begin[r + 1] - cfirst;
  const int sfirst = v.sel_begin[r], blocks = v.sel_begin[r + 1] - sfirst;
  const T* q = static_cast<const T*>(b.q) + (static_cast<int64_t>(r) * hq + kv_head * g) * D;
  float* probs = v.probs + static_cast<int64_t>(cfirst) * hq + kv_head * g;  // (j, h) at j * hq + h
  float* scores = v.scores + static_cast<int64_t>(sfirst) * hkv + kv_head;   // block b at b * hkv
  int32_t* taken = v.taken + static_cast<int64_t>(sfirst) * hkv + kv_head;
  auto kc_row = [&](int j) { return v.kc + (static_cast<int64_t>(v.cmp_slot[cfirst + j]) * hkv + kv_head) * D; };
  auto vc_row = [&](int j) { return v.vc + (static_cast<int64_t>(v.cmp_slot[cfirst + j]) * hkv + kv_head) * D; };

  // a. logits
  const float scale = rsqrtf(static_cast<float>(D));
  {
    constexpr int kPerLane = D / (4 * kLogitLanes);  // float4 chunks per lane
    const int sub = tid % kLogitLanes;
    const unsigned quad = 0xFu << (lane & ~(kLogitLanes - 1));
    for (int h0 = 0; h0 < g; h0 += kSelectHeads) {
      const int heads = min(kSelectHeads, g - h0);
      __syncthreads();  // the previous pass is done with buf
      for (int i = tid; i < heads * D; i += kSelectThreads) buf[i] = to_float(q[h0 * D + i]);
      __syncthreads();
      for (int j = tid / kLogitLanes; j < cmp; j += kSelectThreads / kLogitLanes) {
        const float4* row = reinterpret_cast<const float4*>(kc_row(j));
        float4 kc[kPerLane];
#pragma unroll
        for (int k = 0; k < kPerLane; ++k) kc[k] = row[k * kLogitLanes + sub];
#pragma unroll
        for (int h = 0; h < kSelectHeads; ++h) {
          if (h >= heads) break;
          const float4* qh = reinterpret_cast<const float4*>(buf + h * D);
          float dot = 0.f;
#pragma unroll
          for (int k = 0; k < kPerLane; ++k) {
            const float4 x = qh[k * kLogitLanes + sub];
            dot += x.x * kc[k].x + x.y * kc[k].y + x.z * kc[k].z + x.w * kc[k].w;
          }
          for (int o = 1; o < kLogitLanes; o *= 2) dot += __shfl_xor_sync(quad, dot, o);
          if (sub == 0) probs[static_cast<int64_t>(j) * hq + h0 + h] = dot * scale;
        }
      }
    }
  }
  __syncthreads();
  // b. softmax per head, a warp each
  for (int h = warp; h < g; h += kSelectWarps) {
    float m = -INFINITY;
    for (int j = lane; j < cmp; j += 32) m = fmaxf(m, probs[static_cast<int64_t>(j) * hq + h]);
    m = warp_max(m);
    float sum = 0.f;
    for (int j = lane; j < cmp; j += 32) sum += expf(probs[static_cast<int64_t>(j) * hq + h] - m);
    sum = warp_sum(sum);
    for (int j = lane; j < cmp; j += 32) {
      float* x = probs + static_cast<int64_t>(j) * hq + h;
      *x = expf(*x - m) / sum;
    }
  }
  __syncthreads();
  // c. the compressed branch's output (0 without compressed blocks: the empty branch)
  {
    constexpr int kColumns = D / 4, kSlices = kSelectThreads / kColumns;
    const int col = tid % kColumns, slice = tid / kColumns;
    for (int h0 = 0; h0 < g; h0 += kSelectHeads) {
      const int heads = min(kSelectHeads, g - h0);
      float4 acc[kSelectHeads];
#pragma unroll
      for (int h = 0; h < kSelectHeads; ++h) acc[h] = make_float4(0.f, 0.f, 0.f, 0.f);
      for (int j = slice; j < cmp; j += kSlices) {
        const float4 x = reinterpret_cast<const float4*>(vc_row(j))[col];
        const float* pj = probs + static_cast<int64_t>(j) * hq + h0;
#pragma unroll
        for (int h = 0; h < kSelectHeads; ++h) {
          if (h >= heads) break;
          const float w = pj[h];
          acc[h].x += w * x.x;
          acc[h].y += w * x.y;
          acc[h].z += w * x.z;
          acc[h].w += w * x.w;
        }
      }
      for (int s = 0; s < kSlices; ++s) {  // slice s adds its sums, in order
        if (slice == s) {
#pragma unroll
          for (int h = 0; h < kSelectHeads; ++h) {
            if (h >= heads) break;
            float4* dst = reinterpret_cast<float4*>(buf + h * D) + col;
            const float4 old = s == 0 ? make_float4(0.f, 0.f, 0.f, 0.f) : *dst;
            *dst = make_float4(old.x + acc[h].x, old.y + acc[h].y, old.z + acc[h].z, old.w + acc[h].w);
          }
        }
        __syncthreads();
      }
      for (int i = tid; i < heads * D; i += kSelectThreads)
        v.o_cmp[(static_cast<int64_t>(r) * hq + kv_head * g + h0) * D + i] = buf[i];
      __syncthreads();  // buf is read before the next pass writes it
    }
  }
  // d. selection-block scores: compressed block j covers tokens [j s, j s + l - 1]
  for (int blk = tid; blk < blocks; blk += kSelectThreads) {
    const int lo_token = blk * p.sel_block, hi_token = lo_token + p.sel_block - 1;
    const int j_first = max(0, (lo_token - p.cmp_block + 1 + p.cmp_stride - 1) / p.cmp_stride);
    const int j_last = min(cmp - 1, hi_token / p.cmp_stride);
    float s = 0.f;
    for (int h = 0; h < g; ++h)
      for (int j = j_first; j <= j_last; ++j) s += probs[static_cast<int64_t>(j) * hq + h];
    scores[static_cast<int64_t>(blk) * hkv] = s;
  }
  __syncthreads();
  // e. the choice: ranks of the unforced blocks
  float partial = 0.f;
  for (int blk = tid; blk < blocks; blk += kSelectThreads) partial += scores[static_cast<int64_t>(blk) * hkv];
  const float total = cta_sum(partial, park);
  for (int base = 0; base < blocks; base += kSelectThreads) {
    const int blk = base + tid;
    const bool mine = blk < blocks && !is_forced(blk, blocks);
    const float score = blk < blocks ? scores[static_cast<int64_t>(blk) * hkv] : 0.f;
    int rank = 0;
    for (int c0 = 0; c0 < blocks; c0 += kSelectThreads) {
      __syncthreads();
      const int c = c0 + tid;
      staged[tid] = c < blocks && !is_forced(c, blocks) ? scores[static_cast<int64_t>(c) * hkv] : -INFINITY;
      __syncthreads();
      if (mine)
        for (int i = 0; i < min(kSelectThreads, blocks - c0); ++i) {
          const int other = c0 + i;
          const float x = staged[i];
          rank += !is_forced(other, blocks) && (x > score || (x == score && other < blk)) ? 1 : 0;
        }
    }
    if (mine) {
      taken[static_cast<int64_t>(blk) * hkv] = rank;
      v.chosen[static_cast<int64_t>(sfirst) * hkv + static_cast<int64_t>(kv_head) * blocks + rank] = blk;  // the order
    }
  }
  __syncthreads();
  // the walk: forced blocks ascending, then the ranked ones, as the CPU's rule takes them
  int32_t* out = v.chosen + static_cast<int64_t>(sfirst) * hkv + static_cast<int64_t>(kv_head) * blocks;
  const int forced = forced_count(blocks);
  if (tid == 0) {
    const int cap = p.progressive ? min(p.max_budget, blocks) : min(p.top_n, blocks);
    const int lo = min(p.min_budget, blocks);
    const float uniform = 1.f / static_cast<float>(blocks);
    int count = 0;
    float mass = 0.f;
    for (int pos = 0; count < cap; ++pos) {
      const int blk = pos < forced ? forced_block(pos, blocks) : out[pos - forced];
      count += 1;
      mass += total > 0.f ? scores[static_cast<int64_t>(blk) * hkv] / total : uniform;
      if (p.progressive && count >= lo && mass >= p.tau) break;
    }
    s_count = count;
    s_mass = mass;
  }
  __syncthreads();
  // chosen flags, then the chosen blocks written ascending by a scan over chunks of the CTA
  const int count = s_count;
  int written = 0;
  for (int base = 0; base < blocks; base += kSelectThreads) {
    const int blk = base + tid;
    bool chosen = false;
    if (blk < blocks)
      chosen = is_forced(blk, blocks) ? forced_position(blk, blocks) < count
                                      : taken[static_cast<int64_t>(blk) * hkv] < count - forced;
    const unsigned ballot = __ballot_sync(0xffffffffu, chosen);
    if (lane == 0) warp_counts[warp] = __popc(ballot);
    __syncthreads();
    int at = written + __popc(ballot & ((1u << lane) - 1u));
    int chunk = 0;
    for (int w = 0; w < kSelectWarps; ++w) {
      at += w < warp ? warp_counts[w] : 0;
      chunk += warp_counts[w];
    }
    if (blk < blocks) taken[static_cast<int64_t>(blk) * hkv] = chosen ? 1 : 0;
    if (chosen) out[at] = blk;
    written += chunk;
    __syncthreads();  // warp_counts is read before the next chunk writes it
  }
  if (tid == 0) {
    v.count[r * hkv + kv_head] = written;
    v.mass[r * hkv + kv_head] = s_mass;
  }
}
// [select-kernel]

/// Calls f(TypeTag<T>, D) for the shape; an fp8 KV cache is refused earlier (SparseRunner).
template <typename F>
void dispatch_sparse(const Shape& shape, F&& f) {
  dispatch_dtype_head_dim(shape, [&](auto tag, auto dim) {
    using T = typename decltype(tag)::type;
    using KV = typename decltype(tag)::kv_type;
    if constexpr (std::is_same_v<T, KV>) f(tag, dim);
  });
}

}  // namespace

void launch_compress(const Shape& shape, const SparseBatch& b, const SelectionView& v, int cmp_block, int cmp_stride,
                     cudaStream_t stream) {
  if (b.requests == 0) return;
  dispatch_sparse(shape, [&](auto tag, auto dim) {
    using T = typename decltype(tag)::type;
    compress_kernel<T, decltype(dim)::value><<<dim3(b.requests, shape.num_kv_heads), kCompressThreads, 0, stream>>>(
        b, v, cmp_block, cmp_stride);
    PATLAB_CUDA_CHECK_LAUNCH();
  });
}

void launch_select(const Shape& shape, const SparseBatch& b, const SelectionView& v, const SelectParams& p,
                   cudaStream_t stream) {
  if (b.requests == 0) return;
  dispatch_sparse(shape, [&](auto tag, auto dim) {
    using T = typename decltype(tag)::type;
    select_kernel<T, decltype(dim)::value><<<dim3(b.requests, shape.num_kv_heads), kSelectThreads, 0, stream>>>(b, v, p);
    PATLAB_CUDA_CHECK_LAUNCH();
  });
}

}  // namespace patlab::cuda
