// Sparse decode, step 4 (tutorial chapter 22): the sliding-window branch and the gates.
//
// The window is dense attention over each request's last min(w, N) tokens: the CUDA-core decode
// CTA of stages 2-3 (gqa_decode.cuh) over that token range, one CTA per (request, KV head), its
// output written directly. The gates then add the three branches element by element:
//   o = g_cmp o_cmp + g_sel o_sel + g_win o_win
// (o_cmp in fp32 from the selection kernel, the other two in the q dtype), rounded once to it.
#include <algorithm>
#include <cstdint>
#include <type_traits>

#include "patlab/cuda/check.cuh"
#include "patlab/cuda/dispatch.cuh"
#include "patlab/cuda/gqa_decode.cuh"
#include "patlab/cuda/numeric.cuh"
#include "patlab/cuda/sparse_kernels.cuh"

namespace patlab::cuda {

namespace {

/// Threads of a gates CTA; each thread combines two elements.
constexpr int kGateThreads = 256;

// [window-kernel]
/// The window branch of (request, KV head) = (blockIdx.x, blockIdx.y): tokens [N - w, N).
template <typename T, int D, int G>
__global__ void __launch_bounds__(kGqaThreads) window_kernel(SparseBatch b, int window, T* out) {
  const int r = blockIdx.x, kv_head = blockIdx.y;
  const int len = b.lengths[r];
  const int64_t row0 = static_cast<int64_t>(r) * b.num_q_heads + kv_head * b.group;
  DecodeSink<T> sink;
  sink.out = out;
  gqa_decode_range<T, T, D, G>(static_cast<const T*>(b.q) + row0 * D, static_cast<const T*>(b.k_pool),
                               static_cast<const T*>(b.v_pool), 1.f, 1.f,
                               b.block_table + static_cast<int64_t>(r) * b.table_stride, b.geo, kv_head, b.group,
                               max(0, len - window), len, b.num_q_heads, row0, sink);
}
// [window-kernel]

// [gates-kernel]
/// out[i] = g_cmp o_cmp[i] + g_sel sel[i] + g_win win[i] for pairs of elements.
template <typename T>
__global__ void __launch_bounds__(kGateThreads)
    gates_kernel(int64_t pairs, const float* __restrict__ o_cmp, const T* __restrict__ sel, const T* __restrict__ win,
                 float g_cmp, float g_sel, float g_win, T* __restrict__ out) {
  for (int64_t i = blockIdx.x * static_cast<int64_t>(kGateThreads) + threadIdx.x; i < pairs;
       i += static_cast<int64_t>(gridDim.x) * kGateThreads) {
    const float2 c = reinterpret_cast<const float2*>(o_cmp)[i];
    const float2 s = unpack2(reinterpret_cast<const uint32_t*>(sel)[i], T{});
    const float2 w = unpack2(reinterpret_cast<const uint32_t*>(win)[i], T{});
    reinterpret_cast<uint32_t*>(out)[i] =
        pack2(g_cmp * c.x + g_sel * s.x + g_win * w.x, g_cmp * c.y + g_sel * s.y + g_win * w.y, T{});
  }
}
// [gates-kernel]

}  // namespace

void launch_window(const Shape& shape, const SparseBatch& b, int window, void* win, cudaStream_t stream) {
  if (b.requests == 0) return;
  dispatch_dtype_head_dim_group(shape, [&](auto tag, auto dim, auto group) {
    using T = typename decltype(tag)::type;
    using KV = typename decltype(tag)::kv_type;
    if constexpr (std::is_same_v<T, KV>) {
      window_kernel<T, decltype(dim)::value, decltype(group)::value>
          <<<dim3(b.requests, shape.num_kv_heads), kGqaThreads, 0, stream>>>(b, window, static_cast<T*>(win));
      PATLAB_CUDA_CHECK_LAUNCH();
    }
  });
}

void launch_gates(const Shape& shape, int64_t elements, const float* o_cmp, const void* sel, const void* win,
                  const sparse::SparseOptions& o, void* out, cudaStream_t stream) {
  const int64_t pairs = elements / 2;  // d is even: rows never split a pair
  if (pairs == 0) return;
  constexpr int64_t kMaxGateCtas = 65536;
  const unsigned ctas = static_cast<unsigned>(std::min<int64_t>(kMaxGateCtas, (pairs + kGateThreads - 1) / kGateThreads));
  dispatch_dtype(shape.dtype, [&](auto tag) {
    using T = typename decltype(tag)::type;
    gates_kernel<T><<<ctas, kGateThreads, 0, stream>>>(pairs, o_cmp, static_cast<const T*>(sel),
                                                       static_cast<const T*>(win), static_cast<float>(o.gate_cmp),
                                                       static_cast<float>(o.gate_sel), static_cast<float>(o.gate_win),
                                                       static_cast<T*>(out));
    PATLAB_CUDA_CHECK_LAUNCH();
  });
}

}  // namespace patlab::cuda
