/// @file setmaxnreg.cuh
/// @brief setmaxnreg: moves registers between the warpgroups of a warp-specialised CTA.
///
/// PTX ISA, section "Miscellaneous Instructions: setmaxnreg" (sm_90a, PTX 8.0):
/// `setmaxnreg.dec.sync.aligned.u32 N` releases this warpgroup's registers above N per
/// thread to a pool of the CTA, `setmaxnreg.inc.sync.aligned.u32 N` waits until the pool
/// can give it N per thread. N is in [24, 256] and a multiple of 8; every warp of the
/// warpgroup executes the same instruction. It only takes effect when the kernel has a
/// register cap at entry (`__launch_bounds__(threads, 1)` or -maxrregcount; else ptxas
/// warns C7508 and ignores it), and each role should be one branch of one if/else.
#pragma once

#include "patlab/cuda/hopper/arch.cuh"

namespace patlab::cuda::hopper {

/// Lowers this warpgroup's registers per thread to kRegs (the producer: it only issues copies).
/// @tparam kRegs registers per thread after the change (a multiple of 8 in [24, 256])
template <int kRegs>
__device__ __forceinline__ void setmaxnreg_dec() {
  static_assert(kRegs >= 24 && kRegs <= 256 && kRegs % 8 == 0, "setmaxnreg takes 24..256 in steps of 8");
#if PATLAB_HOPPER_SM90A
  asm volatile("setmaxnreg.dec.sync.aligned.u32 %0;\n" ::"n"(kRegs));
#else
  __trap();
#endif
}

/// Raises this warpgroup's registers per thread to kRegs (the consumers: accumulators).
/// @tparam kRegs registers per thread after the change (a multiple of 8 in [24, 256])
template <int kRegs>
__device__ __forceinline__ void setmaxnreg_inc() {
  static_assert(kRegs >= 24 && kRegs <= 256 && kRegs % 8 == 0, "setmaxnreg takes 24..256 in steps of 8");
#if PATLAB_HOPPER_SM90A
  asm volatile("setmaxnreg.inc.sync.aligned.u32 %0;\n" ::"n"(kRegs));
#else
  __trap();
#endif
}

}  // namespace patlab::cuda::hopper
