/// @file kernel_smem.cuh
/// @brief set_kernel_smem(): the shared memory a kernel of the stages asks for, and the one
/// carveout they all run under, so that kernels launched side by side on streams can share an SM.
#pragma once

#include <cuda_runtime.h>

#include "patlab/cuda/check.cuh"

namespace patlab::cuda {

// [kernel-smem]
/// The carveout every kernel of the stages prefers: the whole unified L1/shared memory of an SM
/// as shared memory (228 KB on sm_90). An SM runs under one carveout at a time, and by default
/// the driver picks each kernel's own from its needs (164 KB for two 81 KB 64x64 pack CTAs, 228
/// KB for three 69 KB 16x64 ones), so the CTAs of two buckets on two streams never shared an
/// SM: the 16x64 bucket waited for SMs without a 64x64 CTA (the CTA timeline,
/// docs/results/2026-12-03-h200-cta-timeline). The pack kernels stream K and V through shared
/// memory with cp.async.cg or TMA, which bypass L1, so the smaller L1 costs them little.
inline constexpr int kStageCarveoutPercent = cudaSharedmemCarveoutMaxShared;

/// Lets `kernel` take `dynamic_bytes` of dynamic shared memory per CTA (beyond the 48 KB
/// default where it asks for more) and sets its carveout to kStageCarveoutPercent.
/// @tparam Kernel a __global__ function pointer
template <typename Kernel>
void set_kernel_smem(Kernel kernel, int dynamic_bytes) {
  PATLAB_CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, dynamic_bytes));
  PATLAB_CUDA_CHECK(
      cudaFuncSetAttribute(kernel, cudaFuncAttributePreferredSharedMemoryCarveout, kStageCarveoutPercent));
}
// [kernel-smem]

}  // namespace patlab::cuda
