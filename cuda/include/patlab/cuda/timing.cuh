/// @file timing.cuh
/// @brief The timing protocol of `patlab bench` (gpu::TimingOptions): untimed warm-ups, then
/// CUDA-event timings of each run with L2 flushed before it, summarised by their median; and a
/// run captured in a CUDA graph, for the replay timings of `patlab bench` and `patlab sparse`.
#pragma once

#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>
#include <memory>
#include <type_traits>
#include <vector>

#include "patlab/cuda/buffer.cuh"
#include "patlab/cuda/check.cuh"
#include "patlab/gpu.hpp"

namespace patlab::cuda {

/// Median, min and max of timings in milliseconds, as microseconds.
inline gpu::Timing summarize_ms(std::vector<float> ms) {
  gpu::Timing t;
  if (ms.empty()) return t;
  std::sort(ms.begin(), ms.end());
  const size_t n = ms.size();
  const double median = n % 2 ? ms[n / 2] : 0.5 * (ms[n / 2 - 1] + ms[n / 2]);
  t.median_us = median * 1e3;
  t.min_us = ms.front() * 1e3;
  t.max_us = ms.back() * 1e3;
  t.repeats = static_cast<int>(n);
  return t;
}

/// The buffer time_launches() overwrites to flush L2: twice the L2 size, and at least 2 MiB.
inline DeviceBuffer<uint8_t> l2_flush_buffer(int64_t l2_bytes) {
  return DeviceBuffer<uint8_t>(static_cast<size_t>(std::max<int64_t>(l2_bytes, 1 << 20)) * 2);
}

/// Threads of a read_back_kernel CTA, and its CTAs (a few per SM of any current GPU).
inline constexpr int kReadBackThreads = 256;
/// CTAs of a read_back_kernel launch (its grid).
inline constexpr int kReadBackCtas = 1024;

/// Reads `words` 16-byte words (a grid-stride loop) and stores nothing unless their sum hits
/// `never`: the loads cannot be dropped, and the lines they bring into L2 are clean.
/// @tparam Word a 16-byte word of four 32-bit members x, y, z, w (uint4)
template <typename Word>
__global__ void read_back_kernel(const Word* __restrict__ data, int64_t words, uint32_t never, uint32_t* sink) {
  uint32_t sum = 0;
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < words;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const Word w = data[i];
    sum += w.x ^ w.y ^ w.z ^ w.w;
  }
  if (sum == never) *sink = sum;
}

/// Reads `flush` back after it was overwritten: at twice the L2 size, its first half evicts the
/// dirty lines of its second half (written back here, before the timed run), and its second half
/// leaves L2 holding clean lines only.
inline void read_back(const DeviceBuffer<uint8_t>& flush, cudaStream_t stream) {
  const int64_t words = static_cast<int64_t>(flush.bytes() / sizeof(uint4));
  read_back_kernel<uint4><<<kReadBackCtas, kReadBackThreads, 0, stream>>>(
      reinterpret_cast<const uint4*>(flush.get()), words, 0xFFFFFFFFu, reinterpret_cast<uint32_t*>(flush.get()));
  PATLAB_CUDA_CHECK_LAUNCH();
}

// [timed-launches]
/// Times `launch()` (work enqueued on `stream`) under `o`: o.warmup untimed runs, then o.repeats
/// runs each between the events `start` and `stop`, with `flush` (a buffer of at least twice the
/// L2 size) overwritten before each timed run when o.flush_l2 (and then read back when o.clean_l2).
/// @tparam Launch callable as launch(): enqueues the work to time on `stream`
template <typename Launch>
gpu::Timing time_launches(cudaStream_t stream, cudaEvent_t start, cudaEvent_t stop, const DeviceBuffer<uint8_t>& flush,
                          const gpu::TimingOptions& o, Launch&& launch) {
  for (int i = 0; i < o.warmup; ++i) launch();
  PATLAB_CUDA_CHECK(cudaStreamSynchronize(stream));
  std::vector<float> ms;
  for (int i = 0; i < o.repeats; ++i) {
    if (o.flush_l2) PATLAB_CUDA_CHECK(cudaMemsetAsync(flush.get(), i & 0xFF, flush.bytes(), stream));
    if (o.flush_l2 && o.clean_l2) read_back(flush, stream);
    PATLAB_CUDA_CHECK(cudaEventRecord(start, stream));
    launch();
    PATLAB_CUDA_CHECK(cudaEventRecord(stop, stream));
    PATLAB_CUDA_CHECK(cudaEventSynchronize(stop));
    float t = 0;
    PATLAB_CUDA_CHECK(cudaEventElapsedTime(&t, start, stop));
    ms.push_back(t);
  }
  return summarize_ms(std::move(ms));
}
// [timed-launches]

/// Work enqueued on a stream, captured in a CUDA graph and instantiated; both are destroyed with
/// the object. Replays run the captured kernels with no host API call between them (side streams
/// forked by events become graph branches).
class CapturedRun {
 public:
  /// Captures what `run()` enqueues on `stream`; throws Error(device) on a CUDA error, and
  /// rethrows what `run` throws (nothing leaks either way).
  /// @tparam Run callable as run(): enqueues the work to capture on `stream`
  template <typename Run>
  CapturedRun(Run&& run, cudaStream_t stream) {
    PATLAB_CUDA_CHECK(cudaStreamBeginCapture(stream, cudaStreamCaptureModeThreadLocal));
    cudaGraph_t graph = nullptr;
    try {
      run();
    } catch (...) {
      cudaStreamEndCapture(stream, &graph);
      if (graph) cudaGraphDestroy(graph);
      throw;
    }
    PATLAB_CUDA_CHECK(cudaStreamEndCapture(stream, &graph));
    graph_.reset(graph);
    cudaGraphExec_t exec = nullptr;
    PATLAB_CUDA_CHECK(cudaGraphInstantiate(&exec, graph_.get(), 0));
    exec_.reset(exec);
  }
  /// Enqueues one replay of the captured run on `stream`.
  void launch(cudaStream_t stream) const { PATLAB_CUDA_CHECK(cudaGraphLaunch(exec_.get(), stream)); }

 private:
  struct GraphDelete {
    void operator()(cudaGraph_t g) const { cudaGraphDestroy(g); }
  };
  struct ExecDelete {
    void operator()(cudaGraphExec_t e) const { cudaGraphExecDestroy(e); }
  };
  std::unique_ptr<std::remove_pointer_t<cudaGraph_t>, GraphDelete> graph_;
  std::unique_ptr<std::remove_pointer_t<cudaGraphExec_t>, ExecDelete> exec_;
};

}  // namespace patlab::cuda
