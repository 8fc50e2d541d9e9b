/// @file check.cuh
/// @brief PATLAB_CUDA_CHECK: every CUDA call checked, with the call's text, file and line.
#pragma once

#include <cuda_runtime.h>

#include <string>

#include "patlab/error.hpp"

namespace patlab::cuda {

/// Throws Error(device) for any result but cudaSuccess; out-of-memory gets its own wording.
inline void check(cudaError_t result, const char* call, const char* file, int line) {
  if (result == cudaSuccess) return;
  const std::string where = std::string(" (") + call + " at " + file + ":" + std::to_string(line) + ")";
  if (result == cudaErrorMemoryAllocation) {
    cudaGetLastError();  // not sticky: clear it so that the process can go on
    throw Error(ErrorKind::device, "GPU out of memory" + where);
  }
  throw Error(ErrorKind::device, std::string("CUDA error: ") + cudaGetErrorString(result) + where);
}

}  // namespace patlab::cuda

/// Checks a CUDA runtime call.
#define PATLAB_CUDA_CHECK(call) ::patlab::cuda::check((call), #call, __FILE__, __LINE__)
/// Checks the launch just made.
#define PATLAB_CUDA_CHECK_LAUNCH() ::patlab::cuda::check(cudaGetLastError(), "kernel launch", __FILE__, __LINE__)
