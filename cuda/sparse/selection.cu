// Sparse decode, steps 1 and 2 (tutorial chapter 22): the compressed blocks, then per (request,
// KV head) the compressed branch and the choice of selection blocks, on the GPU.
//
// Version 1 of each, correctness first: one CTA per (request, KV head), fp32 throughout, every
// sum in a fixed order, so that a run repeats bit for bit. The compression reads every token of
// the cache (it is cache maintenance: NSA updates its compressed blocks as blocks fill, not per
// step) and is not part of a timed step; the selection reads only the compressed blocks.
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

/// A candidate block in the argmax: higher score wins, equal scores go to the lower index.
struct Candidate {
  float score;
  int index;
};

__device__ __forceinline__ Candidate better(Candidate a, Candidate b) {
  if (a.score != b.score) return a.score > b.score ? a : b;
  return a.index < b.index ? a : b;
}

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

/// Max over the CTA, as cta_sum().
__device__ float cta_max(float x, float* park) {
  for (int o = 16; o > 0; o /= 2) x = fmaxf(x, __shfl_xor_sync(0xffffffffu, x, o));
  __syncthreads();
  if (threadIdx.x % 32 == 0) park[threadIdx.x / 32] = x;
  __syncthreads();
  float m = -INFINITY;
  for (int w = 0; w < kSelectWarps; ++w) m = fmaxf(m, park[w]);
  return m;
}

/// The best untaken block of a row (all threads call; every thread gets its index).
__device__ int cta_argmax(const float* scores, const int32_t* taken, int blocks, int hkv, float* park_s, int* park_i) {
  Candidate c{-INFINITY, INT32_MAX};
  for (int b = threadIdx.x; b < blocks; b += kSelectThreads)
    if (!taken[static_cast<int64_t>(b) * hkv]) c = better(c, Candidate{scores[static_cast<int64_t>(b) * hkv], b});
  for (int o = 16; o > 0; o /= 2) {
    const Candidate other{__shfl_xor_sync(0xffffffffu, c.score, o), __shfl_xor_sync(0xffffffffu, c.index, o)};
    c = better(c, other);
  }
  __syncthreads();
  if (threadIdx.x % 32 == 0) {
    park_s[threadIdx.x / 32] = c.score;
    park_i[threadIdx.x / 32] = c.index;
  }
  __syncthreads();
  Candidate best{park_s[0], park_i[0]};
  for (int w = 1; w < kSelectWarps; ++w) best = better(best, Candidate{park_s[w], park_i[w]});
  return best.index;
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
/// [j s, j s + l). Grid (R, Hkv); each thread owns (block, element) items, so a warp reads 32
/// consecutive elements of one token row at a time.
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
    const int64_t dst = (static_cast<int64_t>(first + j) * hkv + kv_head) * D + e;
    v.kc[dst] = sk * inv;
    v.vc[dst] = sv * inv;
  }
}
// [compress-kernel]

// [select-kernel]
/// Step 2, one CTA per (request, KV head), in five phases separated by __syncthreads():
///  a. logits q_h . kc_j / sqrt(d) for every head h of the group and compressed block j (one
///     warp per (h, j));
///  b. per head, the softmax over j (the compressed branch's probabilities p_h(j));
///  c. the compressed branch's output o_h = sum_j p_h(j) vc_j (one thread per (h, element));
///  d. each selection block's score: p_h(j) summed over the heads and the compressed blocks
///     that overlap it (one thread per block, heads then blocks in order, as the CPU sums);
///  e. the choice: the forced blocks, then the argmax of the untaken blocks, one at a time,
///     until top-n's count or PSA's rule stops it; the chosen blocks written ascending.
template <typename T, int D>
__global__ void __launch_bounds__(kSelectThreads) select_kernel(SparseBatch b, SelectionView v, SelectParams p) {
  __shared__ float park[kSelectWarps];
  __shared__ int park_i[kSelectWarps];
  __shared__ int s_stop, s_count;
  __shared__ float s_mass;
  const int r = blockIdx.x, kv_head = blockIdx.y, hkv = b.geo.num_kv_heads, g = b.group, hq = b.num_q_heads;
  const int tid = threadIdx.x, lane = tid % 32, warp = tid / 32;
  const int cfirst = v.cmp_begin[r], cmp = v.cmp_begin[r + 1] - cfirst;
  const int sfirst = v.sel_begin[r], blocks = v.sel_begin[r + 1] - sfirst;
  const T* q = static_cast<const T*>(b.q) + (static_cast<int64_t>(r) * hq + kv_head * g) * D;
  float* probs = v.probs + static_cast<int64_t>(cfirst) * hq + kv_head * g;  // (j, h) at j * hq + h
  float* scores = v.scores + static_cast<int64_t>(sfirst) * hkv + kv_head;   // block b at b * hkv
  int32_t* taken = v.taken + static_cast<int64_t>(sfirst) * hkv + kv_head;

  // a. logits
  const float scale = rsqrtf(static_cast<float>(D));
  for (int item = warp; item < g * cmp; item += kSelectWarps) {
    const int h = item / cmp, j = item % cmp;
    const float* kc = v.kc + (static_cast<int64_t>(cfirst + j) * hkv + kv_head) * D;
    float dot = 0.f;
    for (int e = lane; e < D; e += 32) dot += to_float(q[h * D + e]) * kc[e];
    for (int o = 16; o > 0; o /= 2) dot += __shfl_xor_sync(0xffffffffu, dot, o);
    if (lane == 0) probs[static_cast<int64_t>(j) * hq + h] = dot * scale;
  }
  __syncthreads();
  // b. softmax per head
  for (int h = 0; h < g; ++h) {
    float m = -INFINITY;
    for (int j = tid; j < cmp; j += kSelectThreads) m = fmaxf(m, probs[static_cast<int64_t>(j) * hq + h]);
    m = cta_max(m, park);
    float sum = 0.f;
    for (int j = tid; j < cmp; j += kSelectThreads) sum += expf(probs[static_cast<int64_t>(j) * hq + h] - m);
    sum = cta_sum(sum, park);
    for (int j = tid; j < cmp; j += kSelectThreads) {
      float* x = probs + static_cast<int64_t>(j) * hq + h;
      *x = expf(*x - m) / sum;
    }
    __syncthreads();
  }
  // c. the compressed branch's output (0 without compressed blocks: the empty branch)
  for (int item = tid; item < g * D; item += kSelectThreads) {
    const int h = item / D, e = item % D;
    float acc = 0.f;
    for (int j = 0; j < cmp; ++j)
      acc += probs[static_cast<int64_t>(j) * hq + h] * v.vc[(static_cast<int64_t>(cfirst + j) * hkv + kv_head) * D + e];
    v.o_cmp[(static_cast<int64_t>(r) * hq + kv_head * g + h) * D + e] = acc;
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
    taken[static_cast<int64_t>(blk) * hkv] = 0;
  }
  __syncthreads();
  // e. the choice
  float partial = 0.f;
  for (int blk = tid; blk < blocks; blk += kSelectThreads) partial += scores[static_cast<int64_t>(blk) * hkv];
  const float total = cta_sum(partial, park);
  const float uniform = 1.f / static_cast<float>(blocks);
  const int cap = p.progressive ? min(p.max_budget, blocks) : min(p.top_n, blocks);
  const int lo = min(p.min_budget, blocks);
  const int forced = forced_count(blocks);
  if (tid == 0) {
    s_stop = cap == 0;
    s_count = 0;
    s_mass = 0.f;
  }
  for (int pos = 0;; ++pos) {
    __syncthreads();
    const bool stop = s_stop;
    __syncthreads();  // every thread has read s_stop before thread 0 may write it again
    if (stop) break;
    const int blk = pos < forced ? forced_block(pos, blocks) : cta_argmax(scores, taken, blocks, hkv, park, park_i);
    if (tid == 0) {
      taken[static_cast<int64_t>(blk) * hkv] = 1;
      s_count += 1;
      s_mass += total > 0.f ? scores[static_cast<int64_t>(blk) * hkv] / total : uniform;
      s_stop = s_count >= cap || (p.progressive && s_count >= lo && s_mass >= p.tau);
    }
  }
  if (tid == 0) {
    int32_t* out = v.chosen + static_cast<int64_t>(sfirst) * hkv + static_cast<int64_t>(kv_head) * blocks;
    int n = 0;
    for (int blk = 0; blk < blocks; ++blk)
      if (taken[static_cast<int64_t>(blk) * hkv]) out[n++] = blk;
    v.count[r * hkv + kv_head] = n;
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
