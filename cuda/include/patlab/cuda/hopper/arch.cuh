/// @file arch.cuh
/// @brief Which Hopper instructions this compilation pass may emit, for the wrappers of this
/// folder (mbarrier.cuh, fence.cuh, bulk_copy.cuh, tma.cuh, wgmma.cuh, setmaxnreg.cuh).
///
/// Two levels, both from the target the pass compiles for:
///  - PATLAB_HOPPER_SM90: compute capability 9.0 or later (`-gencode=arch=compute_90,...` or
///    90a): mbarrier transaction counts, cp.async.bulk, cp.async.bulk.tensor and the fences;
///  - PATLAB_HOPPER_SM90A: the architecture-specific sm_90a target
///    (`-gencode=arch=compute_90a,code=sm_90a`), which nvcc marks with __CUDA_ARCH_FEAT_SM90_ALL:
///    wgmma.mma_async and setmaxnreg exist only there.
/// In a pass for another target (the host pass, or `-Dgpu_arch=80`) every wrapper compiles to a
/// trap, so a kernel that calls one still builds and fails loudly if it is ever launched; the
/// GPU tests ask the device first (hopper_features()) and skip instead.
#pragma once

/// 1 in a device pass for compute capability 9.0 or later (sm_90 or sm_90a), 0 in any other pass.
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
#define PATLAB_HOPPER_SM90 1
#else
#define PATLAB_HOPPER_SM90 0
#endif

/// 1 in a device pass for the architecture-specific sm_90a target (__CUDA_ARCH_FEAT_SM90_ALL), 0 otherwise.
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
#define PATLAB_HOPPER_SM90A 1
#else
#define PATLAB_HOPPER_SM90A 0
#endif

namespace patlab::cuda::hopper {

/// What the device code of a translation unit was compiled with (a kernel writes it back so
/// that a host test can tell "built without sm_90a" from a failure).
enum HopperFeatures : int {
  kNoHopper = 0,    ///< neither: a pre-Hopper pass, every wrapper traps
  kSm90 = 1,        ///< mbarrier tx counts, bulk copies, tensor maps, fences
  kSm90a = 2,       ///< wgmma and setmaxnreg too
};

/// The features of the pass that compiles the caller: kSm90 | kSm90a bits.
__device__ __forceinline__ constexpr int compiled_features() {
  return (PATLAB_HOPPER_SM90 ? kSm90 : 0) | (PATLAB_HOPPER_SM90A ? kSm90a : 0);
}

}  // namespace patlab::cuda::hopper
