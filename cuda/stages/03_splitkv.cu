/// @file 03_splitkv.cu
/// @brief Stage 3, `splitkv`: requests cut into chunks across CTAs, partials, and a merge.
///
/// Stage 2 launches requests x Hkv CTAs. A small batch of long requests gives too few CTAs to
/// fill the GPU (4 requests x 8 KV heads = 32 CTAs on 132 SMs), and each CTA streams a long
/// history alone. Here each request is cut into chunks; every (chunk, KV head) is one CTA
/// running stage 2's body over its token range and writing a partial (fp32 o normalised by its
/// own sum, plus lse); a merge kernel combines each request's partials.
///
/// The split rule: let `slots` = SMs x resident CTAs per SM of the decode kernel (from the
/// occupancy calculator). If requests x Hkv already fills the slots, nothing is split and CTAs
/// write the output directly. Otherwise chunks start at `ceil(total tokens x Hkv / slots)`
/// tokens, rounded up to a whole page and never shorter than kMinChunkTokens, and grow by a page
/// until the chunks of the whole batch fit in one wave (at most `slots` CTAs): a few CTAs past
/// the wave would run alone in a second one and double the time.
#include <cuda_runtime.h>

#include <algorithm>
#include <string>
#include <vector>

#include "patlab/cuda/buffer.cuh"
#include "patlab/cuda/check.cuh"
#include "patlab/cuda/dispatch.cuh"
#include "patlab/cuda/gqa_decode.cuh"
#include "patlab/cuda/merge.cuh"
#include "patlab/cuda/stage.cuh"

namespace patlab::cuda {

namespace {

/// Shortest chunk worth a partial: its KV read dwarfs the partial's write and merge.
constexpr int kMinChunkTokens = 256;

/// One CTA's work: tokens [begin, end) of `request`, written to partial slot `slot`.
struct Chunk {
  int32_t request, begin, end, slot;
};

// [splitkv-kernel]
/// One CTA per (chunk, KV head): grid (chunks, Hkv), kGqaThreads threads; `group` query heads
/// per KV head, at most the bucket G (dispatch.cuh).
template <typename T, int D, int G>
__global__ void __launch_bounds__(kGqaThreads)
    splitkv_decode_kernel(const T* __restrict__ q, const T* __restrict__ k_pool, const T* __restrict__ v_pool,
                          const int32_t* __restrict__ block_table, int table_stride, const Chunk* __restrict__ chunks,
                          PoolGeometry geo, int group, PartialsView partials, T* __restrict__ out) {
  const Chunk c = chunks[blockIdx.x];
  const int kv_head = blockIdx.y;
  const int num_q_heads = geo.num_kv_heads * group;
  const int64_t row0 = static_cast<int64_t>(c.request) * num_q_heads + kv_head * group;
  DecodeSink<T> sink;
  sink.out = out;
  sink.partials = partials;  // partials.o == nullptr when nothing is split
  sink.slot = c.slot;
  gqa_decode_range<T, D, G>(q + row0 * D, k_pool, v_pool, block_table + static_cast<int64_t>(c.request) * table_stride,
                            geo, kv_head, group, c.begin, c.end, num_q_heads, row0, sink);
}
// [splitkv-kernel]

class SplitKvStage final : public Stage {
 public:
  void prepare(const DeviceBatch& batch) override {
    batch_ = batch;
    const Shape& s = batch.shape;
    const PagedLayout& L = batch.host->layout;
    // [splitkv-occupancy]
    dispatch_dtype_head_dim_group(s, [&](auto tag, auto dim, auto group) {
      using T = typename decltype(tag)::type;
      constexpr int D = decltype(dim)::value, G = decltype(group)::value;
      PATLAB_CUDA_CHECK(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&resident_, splitkv_decode_kernel<T, D, G>,
                                                                      kGqaThreads, 0));
    });
    // [splitkv-occupancy]
    // [splitkv-rule]
    const int64_t slots = int64_t{batch.device->sm_count} * std::max(1, resident_);
    auto ctas = [&](int64_t chunk) {  // CTAs a chunk length gives
      int64_t n = 0;
      for (int32_t len : L.lengths) n += (len + chunk - 1) / chunk;
      return n * s.num_kv_heads;
    };
    int64_t chunk = INT32_MAX;  // no split
    if (int64_t{L.num_requests()} * s.num_kv_heads < slots) {
      const int64_t even = (L.total_tokens() * s.num_kv_heads + slots - 1) / slots;
      chunk = std::max<int64_t>(kMinChunkTokens, (even + s.page_size - 1) / s.page_size * s.page_size);
      // Rounding must not spill CTAs into a second wave: the smallest page multiple that fits.
      int64_t lo = chunk, hi = std::max<int64_t>(chunk, *std::max_element(L.lengths.begin(), L.lengths.end()));
      hi = (hi + s.page_size - 1) / s.page_size * s.page_size;
      while (lo < hi) {
        const int64_t mid = (lo + hi) / 2 / s.page_size * s.page_size;
        if (ctas(mid) <= slots) hi = mid; else lo = mid + s.page_size;
      }
      chunk = lo;
    }
    // [splitkv-rule]
    // [splitkv-chunks]
    std::vector<Chunk> chunks;  // a request's chunks are consecutive, so are its slots
    std::vector<int32_t> offsets{0};
    for (int r = 0; r < L.num_requests(); ++r) {
      const int64_t len = L.lengths[static_cast<size_t>(r)];
      for (int64_t b = 0; b < len; b += chunk)
        chunks.push_back({r, static_cast<int32_t>(b), static_cast<int32_t>(std::min(len, b + chunk)),
                          static_cast<int32_t>(chunks.size())});
      offsets.push_back(static_cast<int32_t>(chunks.size()));
    }
    // [splitkv-chunks]
    split_ = static_cast<int64_t>(chunks.size()) > L.num_requests();
    chunk_tokens_ = chunk;
    chunks_ = DeviceBuffer<Chunk>(chunks);
    offsets_ = DeviceBuffer<int32_t>(offsets);
    if (split_) {
      partial_o_ = DeviceBuffer<float>(chunks.size() * static_cast<size_t>(s.num_q_heads) * s.head_dim);
      partial_lse_ = DeviceBuffer<float>(chunks.size() * static_cast<size_t>(s.num_q_heads));
    }
  }

  void set_pools(const void* k_pool, const void* v_pool) override {
    batch_.k_pool = k_pool;
    batch_.v_pool = v_pool;
  }

  // [splitkv-run]
  void run(cudaStream_t stream) override {
    const Shape& s = batch_.shape;
    PartialsView partials;  // stays empty (direct output) when nothing is split
    if (split_) partials = {partial_o_.get(), partial_lse_.get(), offsets_.get()};
    dispatch_dtype_head_dim_group(s, [&](auto tag, auto dim, auto group) {
      using T = typename decltype(tag)::type;
      constexpr int D = decltype(dim)::value, G = decltype(group)::value;
      splitkv_decode_kernel<T, D, G><<<dim3(static_cast<unsigned>(chunks_.size()), s.num_kv_heads), kGqaThreads, 0,
                                       stream>>>(
          static_cast<const T*>(batch_.q), static_cast<const T*>(batch_.k_pool), static_cast<const T*>(batch_.v_pool),
          batch_.block_table, batch_.table_stride, chunks_.get(), pool_geometry(s), s.group(), partials,
          static_cast<T*>(batch_.out));
      PATLAB_CUDA_CHECK_LAUNCH();
      if (split_) launch_merge<T, D>(partials, nullptr, batch_.requests, s.num_q_heads, batch_.out, stream);
    });
  }
  // [splitkv-run]

  // [splitkv-model-bytes]
  int64_t model_bytes() const override {
    const PagedLayout& L = batch_.host->layout;
    const int64_t partial_bytes = split_ ? static_cast<int64_t>(chunks_.size()) * L.shape.num_q_heads *
                                               (int64_t{L.shape.head_dim} * 4 + 4) * 2
                                         : 0;
    return L.total_kv_bytes() + L.q_and_out_bytes() + partial_bytes;
  }
  // [splitkv-model-bytes]

  std::string notes() const override {
    return std::to_string(chunks_.size() * static_cast<size_t>(batch_.shape.num_kv_heads)) + " CTAs, " +
           (split_ ? "chunks of " + std::to_string(chunk_tokens_) + " tokens + merge" : std::string("no split")) +
           " (" + std::to_string(resident_) + " CTAs/SM)";
  }

  std::vector<DeviceSpan> workspace() const override { return {partial_o_.span(), partial_lse_.span()}; }

 private:
  DeviceBatch batch_;
  DeviceBuffer<Chunk> chunks_;
  DeviceBuffer<int32_t> offsets_;
  DeviceBuffer<float> partial_o_, partial_lse_;
  bool split_ = false;
  int64_t chunk_tokens_ = 0;
  int resident_ = 0;
};

}  // namespace

std::unique_ptr<Stage> make_stage_splitkv() { return std::make_unique<SplitKvStage>(); }

}  // namespace patlab::cuda
