/// @file 01_naive.cu
/// @brief Stage 1, `naive`: one CTA per (request, query head). The baseline.
///
/// Each CTA walks its request's block table in chunks of kNaiveThreads tokens. Thread t scores
/// token t of the chunk by a scalar loop over d (threads of a warp read rows Hkv x d x 2 bytes apart,
/// uncoalesced), the CTA finds the chunk's max and sum (online softmax, fp32), and then thread
/// i accumulates output element i over the chunk. Every query head re-reads its KV head's
/// whole history, so the KV traffic is group x (sum of request lengths) x bytes per token, and
/// shared prefixes are read once per request.
#include <cuda_runtime.h>

#include <cmath>
#include <string>

#include "patlab/cuda/check.cuh"
#include "patlab/cuda/dispatch.cuh"
#include "patlab/cuda/numeric.cuh"
#include "patlab/cuda/paged.cuh"
#include "patlab/cuda/softmax_state.cuh"
#include "patlab/cuda/stage.cuh"
#include "patlab/model/traffic.hpp"

namespace patlab::cuda {

namespace {

/// Threads per CTA, and tokens scored per chunk (one per thread).
constexpr int kNaiveThreads = 128;
constexpr int kWarps = kNaiveThreads / 32;
/// Output elements each thread owns (tid, tid + kNaiveThreads, ...) at head dim D.
/// @tparam D head dimension (64, 128 or 256)
template <int D>
constexpr int kElemsPerThread = (D + kNaiveThreads - 1) / kNaiveThreads;

// [naive-block-reduce]
/// Max (or sum) of `v` over the CTA; every thread gets the result.
/// @tparam kMax true: the max; false: the sum
template <bool kMax>
__device__ float block_reduce(float v, float* scratch) {
#pragma unroll
  for (int o = 16; o > 0; o /= 2) {
    const float other = __shfl_xor_sync(0xffffffffu, v, o);
    v = kMax ? fmaxf(v, other) : v + other;
  }
  if (threadIdx.x % 32 == 0) scratch[threadIdx.x / 32] = v;
  __syncthreads();
  float r = scratch[0];
#pragma unroll
  for (int w = 1; w < kWarps; ++w) r = kMax ? fmaxf(r, scratch[w]) : r + scratch[w];
  __syncthreads();  // scratch is reused by the next call
  return r;
}
// [naive-block-reduce]

// [naive-kernel]
/// One CTA per (request, query head): grid (requests, Hq), kNaiveThreads threads. K and V of
/// type KV (T, or fp8 e4m3 whose K scale is folded into `scale` and V scale into the output).
/// @tparam T storage type of q and the output (__half or __nv_bfloat16)
/// @tparam KV storage type of K and V (T, or __nv_fp8_e4m3)
/// @tparam D head dimension (64, 128 or 256)
template <typename T, typename KV, int D>
__global__ void __launch_bounds__(kNaiveThreads)
    naive_decode_kernel(const T* __restrict__ q, const KV* __restrict__ k_pool, const KV* __restrict__ v_pool,
                        const int32_t* __restrict__ block_table, int table_stride,
                        const int32_t* __restrict__ lengths, PoolGeometry geo, int num_q_heads, float scale,
                        float v_scale, T* __restrict__ out) {
  __shared__ float q_s[D];
  __shared__ float p_s[kNaiveThreads];
  __shared__ float scratch[kWarps];
  const int request = blockIdx.x, head = blockIdx.y, tid = threadIdx.x;
  const int kv_head = head / (num_q_heads / geo.num_kv_heads);
  const int len = lengths[request];
  const int32_t* blocks = block_table + static_cast<int64_t>(request) * table_stride;
  const T* q_row = q + (static_cast<int64_t>(request) * num_q_heads + head) * D;
  for (int i = tid; i < D; i += kNaiveThreads) q_s[i] = to_float(q_row[i]) * scale;
  __syncthreads();

  // The online-softmax state of the row (natural log, fast exponentials); thread tid owns output
  // elements tid + e * kNaiveThreads < D, acc[e] = running sum of p * v[that element].
  constexpr int kElems = kElemsPerThread<D>;
  SoftmaxRow<NaturalDomain> st;
  float acc[kElems] = {};
  for (int chunk = 0; chunk < len; chunk += kNaiveThreads) {
    const int t = chunk + tid;
    float s = -INFINITY;
    if (t < len) {
      const KV* k_row = k_pool + token_offset<D>(geo, blocks, t, kv_head);
      s = 0.f;
      for (int i = 0; i < D; ++i) s += q_s[i] * to_float(k_row[i]);
    }
    const float m_new = fmaxf(st.m, block_reduce<true>(s, scratch));  // finite: token `chunk` is valid
    const float p = t < len ? NaturalDomain::exp(s - m_new) : 0.f;
    p_s[tid] = p;
    const float alpha = st.rescale_finite(m_new);  // 0 on the first chunk (m = -inf)
    st.l += block_reduce<false>(p, scratch);
    const int n = min(kNaiveThreads, len - chunk);
#pragma unroll
    for (int e = 0; e < kElems; ++e) {
      const int i = tid + e * kNaiveThreads;
      if (i >= D) break;
      acc[e] *= alpha;
      for (int j = 0; j < n; ++j) acc[e] += p_s[j] * to_float(v_pool[token_offset<D>(geo, blocks, chunk + j, kv_head) + i]);
    }
    __syncthreads();  // p_s is rewritten by the next chunk
  }
#pragma unroll
  for (int e = 0; e < kElems; ++e) {
    const int i = tid + e * kNaiveThreads;
    if (i < D) out[(static_cast<int64_t>(request) * num_q_heads + head) * D + i] = from_float<T>(acc[e] / st.l * v_scale);
  }
}
// [naive-kernel]

class NaiveStage final : public Stage {
 public:
  void prepare(const DeviceBatch& batch) override { batch_ = batch; }

  void set_pools(const void* k_pool, const void* v_pool) override {
    batch_.k_pool = k_pool;
    batch_.v_pool = v_pool;
  }

  void run(cudaStream_t stream) override {
    const Shape& s = batch_.shape;
    dispatch_dtype_head_dim(s, [&](auto tag, auto dim) {
      using T = typename decltype(tag)::type;
      using KV = typename decltype(tag)::kv_type;
      constexpr int D = decltype(dim)::value;
      const dim3 grid(batch_.requests, s.num_q_heads);
      naive_decode_kernel<T, KV, D><<<grid, kNaiveThreads, 0, stream>>>(
          static_cast<const T*>(batch_.q), static_cast<const KV*>(batch_.k_pool), static_cast<const KV*>(batch_.v_pool),
          batch_.block_table, batch_.table_stride, batch_.lengths, pool_geometry(s), s.num_q_heads,
          1.0f / std::sqrt(static_cast<float>(D)) * batch_.k_scale, batch_.v_scale, static_cast<T*>(batch_.out));
      PATLAB_CUDA_CHECK_LAUNCH();
    });
  }

  // [naive-model-bytes]
  int64_t model_bytes() const override {
    return traffic::per_query_head_bytes(batch_.host->layout);
  }
  // [naive-model-bytes]

  std::string notes() const override {
    return std::to_string(batch_.requests * batch_.shape.num_q_heads) + " CTAs of " + std::to_string(kNaiveThreads) +
           " threads";
  }

 private:
  DeviceBatch batch_;
};

}  // namespace

/// Stage 1 `naive` for the registry (stages.def): a NaiveStage, one CTA per (request, query head).
std::unique_ptr<Stage> make_stage_naive() { return std::make_unique<NaiveStage>(); }

}  // namespace patlab::cuda
