/// @file fence.cuh
/// @brief The fences that order ordinary (generic-proxy) memory accesses against the async
/// proxy (the copy engine and the tensor cores' shared-memory reads), and mbarrier
/// initialisation against its first use.
///
/// PTX ISA, section "Parallel Synchronization and Communication Instructions: membar / fence",
/// the forms `fence.proxy.async` and `fence.mbarrier_init` (both sm_90, PTX 8.0),
/// and section "Memory Consistency Model: Proxies" for why they are needed: shared memory
/// written by ordinary stores (st.shared, cp.async) that cp.async.bulk, the tensor map copies or
/// wgmma read next is a different proxy, and a barrier alone does not order the two.
#pragma once

#include "patlab/cuda/hopper/arch.cuh"

namespace patlab::cuda::hopper {

/// `fence.proxy.async.shared::cta`: this thread's earlier generic-proxy accesses to the
/// CTA's shared memory are ordered before its later async-proxy accesses (and those of threads
/// it then synchronises with). Each writing thread issues it before the barrier that hands the
/// data to wgmma or a bulk store.
__device__ __forceinline__ void fence_proxy_async_shared() {
#if PATLAB_HOPPER_SM90
  asm volatile("fence.proxy.async.shared::cta;\n" ::: "memory");
#else
  __trap();
#endif
}

/// `fence.mbarrier_init.release.cluster`: makes this thread's mbarrier.init visible to the
/// async proxy (the copy engine's complete_tx) and to the other threads of the cluster; issue
/// it after init_mbarrier() and before the __syncthreads() that publishes the barriers.
__device__ __forceinline__ void fence_mbarrier_init() {
#if PATLAB_HOPPER_SM90
  asm volatile("fence.mbarrier_init.release.cluster;\n" ::: "memory");
#else
  __trap();
#endif
}

}  // namespace patlab::cuda::hopper
