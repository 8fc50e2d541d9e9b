/// @file stage.cuh
/// @brief What every GPU stage implements, and the batch it runs on.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>
#include <memory>
#include <string>

#include "patlab/gpu.hpp"
#include "patlab/kv_cache.hpp"

namespace patlab::cuda {

/// The batch as it lies on the GPU (device pointers), plus the host copy for planning.
struct DeviceBatch {
  Shape shape;
  int requests = 0;
  int table_stride = 0;                 ///< entries per row of block_table (the longest table)
  const void* q = nullptr;              ///< [requests, Hq, d]
  const void* k_pool = nullptr;         ///< [blocks, page, Hkv, d]
  const void* v_pool = nullptr;         ///< [blocks, page, Hkv, d]
  const int32_t* block_table = nullptr; ///< [requests, table_stride], padded with -1
  const int32_t* lengths = nullptr;     ///< [requests]
  void* out = nullptr;                  ///< [requests, Hq, d]
  const Workload* host = nullptr;       ///< the same batch on the host (block tables, lengths)
  const gpu::DeviceInfo* device = nullptr;
  int max_kv_tile = 0;                  ///< planner's cap on KV tiles for stages 5-7 (0: default)
};

/// One stage of the tutorial: a way to compute decode attention on the GPU.
class Stage {
 public:
  virtual ~Stage() = default;
  /// Why this stage cannot run `shape`, or empty. Shapes that fail Shape::validate() never get here.
  virtual std::string unsupported(const Shape& shape) const {
    (void)shape;
    return {};
  }
  /// Plans the launch for `batch` (host work, uploads, workspace). Called once per workload.
  virtual void prepare(const DeviceBatch& batch) = 0;
  /// Enqueues the whole computation on `stream`, writing batch.out. Never allocates or
  /// synchronises, so that it can be captured in a CUDA graph.
  virtual void run(cudaStream_t stream) = 0;
  /// Bytes this stage moves through HBM by its access pattern (its traffic model).
  virtual int64_t model_bytes() const = 0;
  /// One line about the launch (grid, splits, buckets).
  virtual std::string notes() const { return {}; }
};

/// A new stage object for `slug`, or nullptr if the registry has no GPU stage of that name.
std::unique_ptr<Stage> make_stage(const std::string& slug);

}  // namespace patlab::cuda
