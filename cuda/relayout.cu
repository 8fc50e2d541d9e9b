// PackInfer's re-layout kernel (relayout.cuh): the pools' (block, KV head) slots copied into the
// groups' contiguous regions, 16 bytes per thread and step.
#include "patlab/cuda/check.cuh"
#include "patlab/cuda/mma.cuh"
#include "patlab/cuda/relayout.cuh"

namespace patlab::cuda {

namespace {

/// Threads of a re-layout CTA.
constexpr int kRelayoutThreads = 256;
/// Re-layout CTAs per SM (each copies one slot at a time): enough 16-byte copies in flight to
/// stream at the copy bandwidth.
constexpr int kRelayoutCtasPerSm = 8;

// [relayout-kernel]
/// CTAs take copies in turn (grid-stride); the threads of a CTA take the copy's 16-byte chunks,
/// chunk i being token i / chunks, chunk i % chunks of the row (a token past the copy's
/// `tokens`, in a partial block, is skipped). The pool's chunk of (block, token, head) is
/// ((block * page + token) * Hkv + head) * chunks + chunk; the region's (slot, token) is
/// (slot * page + token) * chunks + chunk. Reads are whole rows of one head (D elements apart
/// by Hkv rows), writes one contiguous slot.
__global__ void __launch_bounds__(kRelayoutThreads) relayout_kernel(RelayoutArgs a) {
  const int chunks = a.row_bytes / kChunkBytes;
  const int per_copy = (1 << a.page_shift) * chunks;
  const uint4* k_src = static_cast<const uint4*>(a.k_pool);
  const uint4* v_src = static_cast<const uint4*>(a.v_pool);
  uint4* k_dst = static_cast<uint4*>(a.k_region);
  uint4* v_dst = static_cast<uint4*>(a.v_region);
  for (int64_t n = blockIdx.x; n < a.count; n += gridDim.x) {
    const RelayoutCopy c = a.copies[n];
    for (int i = threadIdx.x; i < per_copy; i += kRelayoutThreads) {
      const int token = i / chunks, chunk = i % chunks;
      if (token >= c.tokens) break;  // i only grows: every later chunk is past the data too
      const int64_t src = (((int64_t{c.block} << a.page_shift) + token) * a.num_kv_heads + c.kv_head) * chunks + chunk;
      const int64_t dst = ((int64_t{c.slot} << a.page_shift) + token) * chunks + chunk;
      k_dst[dst] = k_src[src];
      v_dst[dst] = v_src[src];
    }
  }
}
// [relayout-kernel]

}  // namespace

void launch_relayout(const RelayoutArgs& args, int sms, cudaStream_t stream) {
  if (args.count == 0) return;
  const int64_t most = int64_t{sms} * kRelayoutCtasPerSm;
  const unsigned ctas = static_cast<unsigned>(args.count < most ? args.count : most);
  relayout_kernel<<<ctas, kRelayoutThreads, 0, stream>>>(args);
  PATLAB_CUDA_CHECK_LAUNCH();
}

}  // namespace patlab::cuda
