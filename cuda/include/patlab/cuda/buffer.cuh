/// @file buffer.cuh
/// @brief DeviceBuffer: an owning, typed cudaMalloc allocation; DeviceSpan and poison(): memory
/// that a checked run must overwrite, filled with NaN first.
#pragma once

#include <cuda_runtime.h>

#include <cstddef>
#include <utility>
#include <vector>

#include "patlab/cuda/check.cuh"

namespace patlab::cuda {

/// The byte that poisoned memory is filled with: 0xFF bytes are NaN in fp32, fp16 and bf16 alike,
/// so a value no kernel wrote is not finite and the check (or the merge) cannot miss it.
inline constexpr int kPoisonByte = 0xFF;

/// A range of device memory: what a stage exposes of its workspace for poisoning.
struct DeviceSpan {
  /// Start of the range (null for an empty span).
  void* ptr = nullptr;
  /// Length of the range in bytes (0: empty).
  size_t bytes = 0;
};

/// Fills `span` with kPoisonByte on `stream` (nothing for an empty span).
inline void poison(const DeviceSpan& span, cudaStream_t stream) {
  if (span.bytes > 0) PATLAB_CUDA_CHECK(cudaMemsetAsync(span.ptr, kPoisonByte, span.bytes, stream));
}

/// `count` elements of T in device memory, freed on destruction.
/// @tparam T element type, copied to and from the host byte for byte (cudaMemcpy)
template <typename T>
class DeviceBuffer {
 public:
  DeviceBuffer() = default;
  /// Allocates `count` elements; throws Error(device) on out-of-memory.
  explicit DeviceBuffer(size_t count) : count_(count) {
    if (count_ > 0) PATLAB_CUDA_CHECK(cudaMalloc(&ptr_, count_ * sizeof(T)));
  }
  /// Allocates and copies `host` to the device.
  explicit DeviceBuffer(const std::vector<T>& host) : DeviceBuffer(host.size()) {
    if (count_ > 0) PATLAB_CUDA_CHECK(cudaMemcpy(ptr_, host.data(), count_ * sizeof(T), cudaMemcpyHostToDevice));
  }
  ~DeviceBuffer() {
    if (ptr_) cudaFree(ptr_);
  }
  /// Takes over `o`'s allocation, leaving `o` empty.
  DeviceBuffer(DeviceBuffer&& o) noexcept : ptr_(std::exchange(o.ptr_, nullptr)), count_(std::exchange(o.count_, 0)) {}
  /// Swaps allocations with `o`, so that `o` frees this buffer's old allocation.
  DeviceBuffer& operator=(DeviceBuffer&& o) noexcept {
    std::swap(ptr_, o.ptr_);
    std::swap(count_, o.count_);
    return *this;
  }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;

  /// The device pointer (null when nothing is allocated).
  T* get() const { return ptr_; }
  /// Number of elements of T.
  size_t size() const { return count_; }
  /// Size of the allocation in bytes: size() * sizeof(T).
  size_t bytes() const { return count_ * sizeof(T); }
  /// The whole allocation as a span (empty when nothing is allocated).
  DeviceSpan span() const { return {ptr_, bytes()}; }
  /// Copies the contents back to the host.
  std::vector<T> download() const { return download(count_); }
  /// The first `n` elements (all of them when there are fewer), copied to the host.
  std::vector<T> download(size_t n) const {
    std::vector<T> host(n < count_ ? n : count_);
    if (!host.empty())
      PATLAB_CUDA_CHECK(cudaMemcpy(host.data(), ptr_, host.size() * sizeof(T), cudaMemcpyDeviceToHost));
    return host;
  }

 private:
  T* ptr_ = nullptr;
  size_t count_ = 0;
};

}  // namespace patlab::cuda
