/// @file streams.cuh
/// @brief StreamFork: side streams created once, forked from and joined back into a main
/// stream with events (no legacy default stream), so a whole forward can be graph-captured.
#pragma once

#include <cuda_runtime.h>

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

  int size() const { return static_cast<int>(streams_.size()); }
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

/// One event per bucket, fired by its launch once all its CTAs have begun (launch_pack_tile()):
/// the gates of a launch order that the block scheduler must follow, not only be asked to.
class LaunchGates {
 public:
  /// Creates `n` events (no timing).
  explicit LaunchGates(int n) {
    events_.resize(static_cast<size_t>(n));
    for (cudaEvent_t& e : events_) PATLAB_CUDA_CHECK(cudaEventCreateWithFlags(&e, cudaEventDisableTiming));
  }
  ~LaunchGates() {
    for (cudaEvent_t e : events_) cudaEventDestroy(e);
  }
  LaunchGates(const LaunchGates&) = delete;
  LaunchGates& operator=(const LaunchGates&) = delete;

  int size() const { return static_cast<int>(events_.size()); }
  cudaEvent_t event(int i) const { return events_.at(static_cast<size_t>(i)); }

 private:
  std::vector<cudaEvent_t> events_;
};

// [stream-run]
/// Runs `launch(i, s)` for i in [0, count): launch i on side stream i of `fork`, forked from
/// `main` and joined back into it; on `main` itself when there is one launch or no fork (a fork
/// and a join around a single launch would add two cross-stream waits and overlap nothing).
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
