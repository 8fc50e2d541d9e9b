/// @file mbarrier.cuh
/// @brief mbarrier: a 64-bit barrier object in shared memory that counts arrivals and, on
/// Hopper, bytes of asynchronous copies still to land (the transaction count).
///
/// PTX ISA, section "Parallel Synchronization and Communication Instructions: mbarrier"
/// (its subsections): mbarrier.init, mbarrier.arrive, mbarrier.arrive.expect_tx (sm_90),
/// mbarrier.try_wait.parity, mbarrier.inval. A phase of the barrier completes when the
/// expected arrivals have arrived AND the transaction count is back to zero: a producer
/// announces the bytes it is about to copy (arrive_expect_tx), each bulk copy that names the
/// barrier subtracts its bytes when it lands (complete_tx), and waiters watch the phase parity
/// flip. A pipeline ring keeps two barriers per stage: `full` (the stage's copies landed) and
/// `empty` (its consumers are done with it).
#pragma once

#include <cstdint>

#include "patlab/cuda/hopper/arch.cuh"
#include "patlab/cuda/mma.cuh"

namespace patlab::cuda::hopper {

/// The barrier object: 8 bytes of shared memory, 8-byte aligned.
using Mbarrier = uint64_t;

/// `mbarrier.init.shared::cta.b64`: phase 0, expecting `arrivals` arrivals per phase. One
/// thread initialises; fence_mbarrier_init() and a __syncthreads() publish it.
__device__ __forceinline__ void init_mbarrier(Mbarrier* bar, uint32_t arrivals) {
#if PATLAB_HOPPER_SM90
  asm volatile("mbarrier.init.shared::cta.b64 [%0], %1;\n" ::"r"(smem_u32(bar)), "r"(arrivals) : "memory");
#else
  __trap();
#endif
}

/// `mbarrier.arrive.shared::cta.b64`: one arrival (release semantics: this thread's earlier
/// accesses are visible to whoever observes the phase complete).
__device__ __forceinline__ void arrive(Mbarrier* bar) {
#if PATLAB_HOPPER_SM90
  asm volatile("mbarrier.arrive.shared::cta.b64 _, [%0];\n" ::"r"(smem_u32(bar)) : "memory");
#else
  __trap();
#endif
}

/// arrive() counting `count` arrivals at once (the count operand, sm_90): stage 9 tops up a
/// barrier whose expected count is fixed for its largest cluster when one CTA uses a stage.
__device__ __forceinline__ void arrive(Mbarrier* bar, uint32_t count) {
#if PATLAB_HOPPER_SM90
  asm volatile("mbarrier.arrive.shared::cta.b64 _, [%0], %1;\n" ::"r"(smem_u32(bar)), "r"(count) : "memory");
#else
  __trap();
#endif
}

/// `mbarrier.arrive.expect_tx.shared::cta.b64`: raises the phase's transaction count by
/// `bytes` (the bytes of the copies about to be issued against this barrier), then arrives.
/// Issue it before (or in the same thread as) the copies, so the count cannot reach zero early.
__device__ __forceinline__ void arrive_expect_tx(Mbarrier* bar, uint32_t bytes) {
#if PATLAB_HOPPER_SM90
  asm volatile("mbarrier.arrive.expect_tx.shared::cta.b64 _, [%0], %1;\n" ::"r"(smem_u32(bar)), "r"(bytes) : "memory");
#else
  __trap();
#endif
}

/// `mbarrier.try_wait.parity.shared::cta.b64` once: true when the phase of parity `parity`
/// has completed (acquire semantics). try_wait itself may suspend the thread for a
/// system-dependent time before it returns false.
__device__ __forceinline__ bool try_wait_parity(Mbarrier* bar, uint32_t parity) {
#if PATLAB_HOPPER_SM90
  uint32_t done;
  asm volatile(
      "{\n"
      ".reg .pred p;\n"
      "mbarrier.try_wait.parity.shared::cta.b64 p, [%1], %2;\n"
      "selp.u32 %0, 1, 0, p;\n"
      "}\n"
      : "=r"(done)
      : "r"(smem_u32(bar)), "r"(parity)
      : "memory");
  return done != 0;
#else
  __trap();
  return false;
#endif
}

/// Waits until the phase of parity `parity` has completed. Phase k has parity k % 2; a fresh
/// barrier counts as having completed the phase before phase 0 (parity 1), which is how a
/// producer's first wait on an `empty` barrier passes at once.
__device__ __forceinline__ void wait_parity(Mbarrier* bar, uint32_t parity) {
  while (!try_wait_parity(bar, parity)) {
  }
}

/// `mbarrier.inval.shared::cta.b64`: ends the barrier's life so that its 8 bytes may be
/// reused as ordinary shared memory (required before such a reuse).
__device__ __forceinline__ void inval_mbarrier(Mbarrier* bar) {
#if PATLAB_HOPPER_SM90
  asm volatile("mbarrier.inval.shared::cta.b64 [%0];\n" ::"r"(smem_u32(bar)) : "memory");
#else
  __trap();
#endif
}

/// The position of a pipeline ring: stage index and the parity of the ring's current lap.
/// Consumers wait on full[stage] with `phase`; producers wait on empty[stage] with phase ^ 1
/// (their first lap finds every stage free).
/// @tparam kStages stages of the ring (each with its `full` and `empty` barrier)
template <int kStages>
struct RingPosition {
  /// The current stage, 0 to kStages - 1.
  int stage = 0;
  /// Parity of the current lap: 0 or 1.
  uint32_t phase = 0;

  /// Moves to the next stage; past the last one, wraps to stage 0 and flips `phase`.
  __device__ __forceinline__ void advance() {
    if (++stage == kStages) {
      stage = 0;
      phase ^= 1u;
    }
  }
};

}  // namespace patlab::cuda::hopper
