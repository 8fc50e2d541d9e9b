/// @file 02_gqa.cu
/// @brief Stage 2, `gqa`: one CTA per (request, KV head) serving all query heads of the group.
///
/// The G query heads that share a KV head now share every K/V load: the KV traffic drops by
/// the group size, to one read of each request's history. Loads are 16 bytes per lane and
/// coalesced across the warp; dot products are reduced with warp shuffles. The CTA body lives
/// in gqa_decode.cuh, because stage 3 runs the same body over pieces of a request.
#include <cuda_runtime.h>

#include <string>

#include "patlab/cuda/check.cuh"
#include "patlab/cuda/dispatch.cuh"
#include "patlab/cuda/gqa_decode.cuh"
#include "patlab/cuda/stage.cuh"
#include "patlab/model/traffic.hpp"

namespace patlab::cuda {

namespace {

// [gqa-kernel]
/// One CTA per (request, KV head): grid (requests, Hkv), kGqaThreads threads; `group` query
/// heads per KV head, at most the bucket G (dispatch.cuh).
/// @tparam T storage type of q and the output
/// @tparam KV storage type of K and V (T, or __nv_fp8_e4m3 with scales k_scale, v_scale)
/// @tparam D head dimension (64, 128 or 256)
/// @tparam G the group bucket: the most query heads per KV head this instance holds (>= group)
template <typename T, typename KV, int D, int G>
__global__ void __launch_bounds__(kGqaThreads)
    gqa_decode_kernel(const T* __restrict__ q, const KV* __restrict__ k_pool, const KV* __restrict__ v_pool,
                      float k_scale, float v_scale, const int32_t* __restrict__ block_table, int table_stride, const int32_t* __restrict__ lengths,
                      PoolGeometry geo, int group, T* __restrict__ out) {
  const int request = blockIdx.x, kv_head = blockIdx.y;
  const int num_q_heads = geo.num_kv_heads * group;
  const int64_t row0 = static_cast<int64_t>(request) * num_q_heads + kv_head * group;  // first (request, head) row
  DecodeSink<T> sink;
  sink.out = out;
  gqa_decode_range<T, KV, D, G>(q + row0 * D, k_pool, v_pool, k_scale, v_scale, block_table + static_cast<int64_t>(request) * table_stride,
                            geo, kv_head, group, 0, lengths[request], num_q_heads, row0, sink);
}
// [gqa-kernel]

class GqaStage final : public Stage {
 public:
  void prepare(const DeviceBatch& batch) override { batch_ = batch; }

  void set_pools(const void* k_pool, const void* v_pool) override {
    batch_.k_pool = k_pool;
    batch_.v_pool = v_pool;
  }

  void run(cudaStream_t stream) override {
    const Shape& s = batch_.shape;
    dispatch_dtype_head_dim(s, [&](auto tag, auto dim) {
      dispatch_group(s, [&](auto group) {
        using T = typename decltype(tag)::type;
        using KV = typename decltype(tag)::kv_type;
        constexpr int D = decltype(dim)::value, G = decltype(group)::value;
        gqa_decode_kernel<T, KV, D, G><<<dim3(batch_.requests, s.num_kv_heads), kGqaThreads, 0, stream>>>(
            static_cast<const T*>(batch_.q), static_cast<const KV*>(batch_.k_pool), static_cast<const KV*>(batch_.v_pool),
            batch_.k_scale, batch_.v_scale, batch_.block_table, batch_.table_stride, batch_.lengths, pool_geometry(s), s.group(),
            static_cast<T*>(batch_.out));
        PATLAB_CUDA_CHECK_LAUNCH();
      });
    });
  }

  // [gqa-model-bytes]
  int64_t model_bytes() const override {
    return traffic::per_request_bytes(batch_.host->layout);
  }
  // [gqa-model-bytes]

  std::string notes() const override {
    return std::to_string(batch_.requests * batch_.shape.num_kv_heads) + " CTAs of " + std::to_string(kGqaThreads) +
           " threads";
  }

 private:
  DeviceBatch batch_;
};

}  // namespace

/// Stage 2 `gqa` for the registry (stages.def): a GqaStage, one CTA per (request, KV head).
std::unique_ptr<Stage> make_stage_gqa() { return std::make_unique<GqaStage>(); }

}  // namespace patlab::cuda
