/// @file 03_splitkv.cu
/// @brief Stage 3, `splitkv`: requests cut into chunks across CTAs, partials, and a merge.
///
/// Stage 2 launches requests x Hkv CTAs. A small batch of long requests gives too few CTAs to
/// fill the GPU (4 requests x 8 KV heads = 32 CTAs on 132 SMs), and each CTA streams a long
/// history alone. Here each request is cut into chunks; every (chunk, KV head) is one CTA
/// running stage 2's body over its token range and writing a partial (fp32 o normalised by its
/// own sum, plus lse); a merge kernel combines each request's partials.
///
/// The split rule is a host function of the planner, chunk_tokens() (planner/chunk_split.hpp,
/// with a CPU test): `slots` = SMs x resident CTAs per SM of the decode kernel (from the
/// occupancy calculator); if requests x Hkv already fills the slots, nothing is split and CTAs
/// write the output directly; otherwise the chunks are the shortest whole pages, at least
/// kMinChunkTokens, whose CTAs fit in one wave.
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
#include "patlab/model/traffic.hpp"
#include "patlab/planner/chunk_split.hpp"

namespace patlab::cuda {

namespace {

/// One CTA's work: tokens [begin, end) of `request`, written to partial slot `slot`.
struct Chunk {
  int32_t request, begin, end, slot;
};

// [splitkv-kernel]
/// One CTA per (chunk, KV head): grid (chunks, Hkv), kGqaThreads threads; `group` query heads
/// per KV head, at most the bucket G (dispatch.cuh).
/// @tparam T storage type of q and the output
/// @tparam KV storage type of K and V (T, or __nv_fp8_e4m3 with scales k_scale, v_scale)
/// @tparam D head dimension (64, 128 or 256)
/// @tparam G the group bucket: the most query heads per KV head this instance holds (>= group)
template <typename T, typename KV, int D, int G>
__global__ void __launch_bounds__(kGqaThreads)
    splitkv_decode_kernel(const T* __restrict__ q, const KV* __restrict__ k_pool, const KV* __restrict__ v_pool,
                          float k_scale, float v_scale, const int32_t* __restrict__ block_table, int table_stride, const Chunk* __restrict__ chunks,
                          PoolGeometry geo, int group, PartialsView partials, T* __restrict__ out) {
  const Chunk c = chunks[blockIdx.x];
  const int kv_head = blockIdx.y;
  const int num_q_heads = geo.num_kv_heads * group;
  const int64_t row0 = static_cast<int64_t>(c.request) * num_q_heads + kv_head * group;
  DecodeSink<T> sink;
  sink.out = out;
  sink.partials = partials;  // partials.o == nullptr when nothing is split
  sink.slot = c.slot;
  gqa_decode_range<T, KV, D, G>(q + row0 * D, k_pool, v_pool, k_scale, v_scale, block_table + static_cast<int64_t>(c.request) * table_stride,
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
      using KV = typename decltype(tag)::kv_type;
      constexpr int D = decltype(dim)::value, G = decltype(group)::value;
      PATLAB_CUDA_CHECK(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&resident_, splitkv_decode_kernel<T, KV, D, G>,
                                                                      kGqaThreads, 0));
    });
    // [splitkv-occupancy]
    // [splitkv-rule]
    const int64_t slots = int64_t{batch.device->sm_count} * std::max(1, resident_);
    const int64_t chunk = chunk_tokens(L.lengths, s.num_kv_heads, s.page_size, slots);  // kNoSplitChunk: no split
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
      partial_o_ = DeviceBuffer<float>(partial_o_floats(chunks.size(), s.num_q_heads, s.head_dim, false));
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
      using KV = typename decltype(tag)::kv_type;
      constexpr int D = decltype(dim)::value, G = decltype(group)::value;
      splitkv_decode_kernel<T, KV, D, G><<<dim3(static_cast<unsigned>(chunks_.size()), s.num_kv_heads), kGqaThreads,
                                           0, stream>>>(
          static_cast<const T*>(batch_.q), static_cast<const KV*>(batch_.k_pool), static_cast<const KV*>(batch_.v_pool),
          batch_.k_scale, batch_.v_scale, batch_.block_table, batch_.table_stride, chunks_.get(), pool_geometry(s), s.group(), partials,
          static_cast<T*>(batch_.out));
      PATLAB_CUDA_CHECK_LAUNCH();
      if (split_) launch_merge<T, D>(partials, nullptr, batch_.requests, s.num_q_heads, batch_.out, stream);
    });
  }
  // [splitkv-run]

  // [splitkv-model-bytes]
  int64_t model_bytes() const override {
    return traffic::chunked_bytes(batch_.host->layout, split_ ? static_cast<int64_t>(chunks_.size()) : 0);
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

/// Stage 3 `splitkv` for the registry (stages.def): a SplitKvStage (KV chunks across CTAs, then a merge).
std::unique_ptr<Stage> make_stage_splitkv() { return std::make_unique<SplitKvStage>(); }

}  // namespace patlab::cuda
