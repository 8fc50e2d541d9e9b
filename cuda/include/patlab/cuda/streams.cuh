/// @file streams.cuh
/// @brief StreamFork: side streams created once, forked from and joined back into a main
/// stream with events (no legacy default stream), so a whole forward can be graph-captured.
#pragma once

#include <cuda_runtime.h>

#include <utility>
#include <vector>

#include "patlab/cuda/check.cuh"

namespace patlab::cuda {

/// A fixed set of non-blocking side streams with their fork and join events.
class StreamFork {
 public:
  StreamFork() = default;
  // [stream-create]
  /// Creates `n` side streams and their events.
  explicit StreamFork(int n) {
    streams_.resize(static_cast<size_t>(n));
    joined_.resize(static_cast<size_t>(n));
    PATLAB_CUDA_CHECK(cudaEventCreateWithFlags(&forked_, cudaEventDisableTiming));
    for (int i = 0; i < n; ++i) {
      PATLAB_CUDA_CHECK(cudaStreamCreateWithFlags(&streams_[static_cast<size_t>(i)], cudaStreamNonBlocking));
      PATLAB_CUDA_CHECK(cudaEventCreateWithFlags(&joined_[static_cast<size_t>(i)], cudaEventDisableTiming));
    }
  }
  // [stream-create]
  ~StreamFork() {
    for (cudaEvent_t e : joined_) cudaEventDestroy(e);
    for (cudaStream_t s : streams_) cudaStreamDestroy(s);
    if (forked_) cudaEventDestroy(forked_);
  }
  StreamFork(const StreamFork&) = delete;
  StreamFork& operator=(const StreamFork&) = delete;

  /// Number of side streams.
  int size() const { return static_cast<int>(streams_.size()); }
  /// Side stream `i`, 0 <= i < size().
  cudaStream_t stream(int i) const { return streams_.at(static_cast<size_t>(i)); }

  // [stream-fork]
  /// Side streams start after everything enqueued on `main` so far.
  void fork(cudaStream_t main) {
    PATLAB_CUDA_CHECK(cudaEventRecord(forked_, main));
    for (cudaStream_t s : streams_) PATLAB_CUDA_CHECK(cudaStreamWaitEvent(s, forked_, 0));
  }
  /// Work enqueued on `main` next starts after everything enqueued on the side streams.
  void join(cudaStream_t main) {
    for (size_t i = 0; i < streams_.size(); ++i) {
      PATLAB_CUDA_CHECK(cudaEventRecord(joined_[i], streams_[i]));
      PATLAB_CUDA_CHECK(cudaStreamWaitEvent(main, joined_[i], 0));
    }
  }
  // [stream-fork]

 private:
  std::vector<cudaStream_t> streams_;
  std::vector<cudaEvent_t> joined_;
  cudaEvent_t forked_ = nullptr;
};

// [launch-gates]
/// The launch order of a stage's buckets, enforced on sm_90 for eager launches: a bucket's launch
/// waits until chosen earlier buckets have begun all their CTAs, so the block scheduler cannot give
/// their SMs to it first. A bucket's launch fires its event once its grid has begun
/// (cudaLaunchAttributeLaunchCompletionEvent) and later streams wait on it. In a CUDA graph capture
/// the gates stand aside and the graph keeps the launch order alone: an event waited on in a capture
/// becomes an edge that holds the later bucket until the earlier one has *finished*, and edges from
/// the kernel node's launch completion port (cudaGraphKernelNodePortLaunchCompletion) cost stage 7
/// 4-13 us (up to 7%) on short trees (docs/results/2026-12-04-h200-bucket-order runs 5-6,
/// 2026-12-04-h200-stage8-timeline run 2).
class LaunchGates {
 public:
  /// Room for `n` buckets: one event each (no timing).
  explicit LaunchGates(int n) : events_(static_cast<size_t>(n)) {
    for (cudaEvent_t& e : events_) PATLAB_CUDA_CHECK(cudaEventCreateWithFlags(&e, cudaEventDisableTiming));
  }
  ~LaunchGates() {
    for (cudaEvent_t e : events_) cudaEventDestroy(e);
  }
  LaunchGates(const LaunchGates&) = delete;
  LaunchGates& operator=(const LaunchGates&) = delete;

  /// Number of buckets the gates have room for (one event each).
  int size() const { return static_cast<int>(events_.size()); }

  /// Before a run's first launch: the gates hold unless `main` (and so the side streams forked
  /// from it) is being captured.
  void begin(cudaStream_t main) {
    cudaStreamCaptureStatus status = cudaStreamCaptureStatusNone;
    PATLAB_CUDA_CHECK(cudaStreamIsCapturing(main, &status));
    open_ = status != cudaStreamCaptureStatusNone;
  }

  /// Work enqueued on `s` next starts once bucket `j` (launched earlier in this run, with the
  /// event of fires(j, true)) has begun all its CTAs.
  void wait(cudaStream_t s, int j) const {
    if (!open_) PATLAB_CUDA_CHECK(cudaStreamWaitEvent(s, events_.at(static_cast<size_t>(j)), 0));
  }

  /// The event bucket `b`'s launch is to fire when a later bucket waits on it, else nullptr.
  cudaEvent_t fires(int b, bool waited_on) const {
    return waited_on && !open_ ? events_.at(static_cast<size_t>(b)) : nullptr;
  }

 private:
  std::vector<cudaEvent_t> events_;
  bool open_ = false;  ///< this run is being captured: no gate
};
// [launch-gates]

// [launch-link]
/// How a launch is tied to the launches around it on sm_90 (a default LaunchLink ties nothing:
/// an ordinary launch).
struct LaunchLink {
  /// Fires once every CTA of the grid has begun (the launch completion event,
  /// cudaLaunchAttributeLaunchCompletionEvent): LaunchGates' eager wait. nullptr: none.
  cudaEvent_t begun = nullptr;
  /// The grid may begin once every CTA of the kernel ahead of it on its stream has issued
  /// hopper::allow_dependents() (programmatic dependent launch,
  /// cudaLaunchAttributeProgrammaticStreamSerialization), instead of once that kernel has finished.
  bool after_begun = false;
};
// [launch-link]

// [launch-completion-event]
/// Launches `kernel` over `ctas` CTAs of `threads` threads and `smem` bytes of dynamic shared
/// memory on `stream`, tied to the launches around it as `link` says.
/// @tparam Params the kernel's parameter types
/// @tparam Args the argument types, forwarded to cudaLaunchKernelEx (which converts them to Params)
template <typename... Params, typename... Args>
void launch_kernel(void (*kernel)(Params...), unsigned ctas, unsigned threads, size_t smem, cudaStream_t stream,
                   LaunchLink link, Args&&... args) {
  cudaLaunchAttribute attributes[2]{};
  unsigned count = 0;
  if (link.begun != nullptr) {
    attributes[count].id = cudaLaunchAttributeLaunchCompletionEvent;
    attributes[count].val.launchCompletionEvent.event = link.begun;
    attributes[count++].val.launchCompletionEvent.flags = 0;
  }
  if (link.after_begun) {
    attributes[count].id = cudaLaunchAttributeProgrammaticStreamSerialization;
    attributes[count++].val.programmaticStreamSerializationAllowed = 1;
  }
  cudaLaunchConfig_t config{};
  config.gridDim = dim3(ctas);
  config.blockDim = dim3(threads);
  config.dynamicSmemBytes = smem;
  config.stream = stream;
  config.attrs = attributes;
  config.numAttrs = count;
  PATLAB_CUDA_CHECK(cudaLaunchKernelEx(&config, kernel, std::forward<Args>(args)...));
}
// [launch-completion-event]

// [stream-run]
/// Runs `launch(i, s)` for i in [0, count): launch i on side stream i of `fork`, forked from
/// `main` and joined back into it; on `main` itself when there is one launch or no fork (a fork
/// and a join around a single launch would add two cross-stream waits and overlap nothing).
/// @tparam Launch callable as launch(int i, cudaStream_t s): enqueues launch i on s
template <typename Launch>
void run_on_streams(StreamFork* fork, cudaStream_t main, int count, Launch&& launch) {
  if (fork == nullptr || count <= 1) {
    for (int i = 0; i < count; ++i) launch(i, main);
    return;
  }
  fork->fork(main);
  for (int i = 0; i < count; ++i) launch(i, fork->stream(i));
  fork->join(main);
}
// [stream-run]

}  // namespace patlab::cuda
