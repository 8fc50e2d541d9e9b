/// @file cluster.cuh
/// @brief Thread block clusters (sm_90): a CTA's rank in its cluster, the cluster-wide barrier,
/// another CTA's shared memory (distributed shared memory), an mbarrier arrival on another
/// CTA's barrier, and the host side: launching a grid in clusters and asking how many clusters
/// fit at once. Stage 9 (issue 13) builds on these; tma.cuh's tma_load_4d_multicast() copies one
/// box into every CTA of a cluster.
///
/// PTX ISA: "Special Registers" (%cluster_ctarank, %cluster_nctarank), "Parallel
/// Synchronization and Communication Instructions: barrier.cluster", "Data Movement and
/// Conversion Instructions: mapa" and ld/st with the `.shared::cluster` state space, and
/// "mbarrier.arrive" with `.release.cluster` on a `.shared::cluster` address (all sm_90, PTX
/// 7.8-8.0). CUDA Programming Guide, "Thread Block Clusters" and "Distributed Shared Memory" for
/// the host API (cudaLaunchKernelEx with cudaLaunchAttributeClusterDimension,
/// cudaOccupancyMaxActiveClusters).
///
/// A CTA's shared memory lives as long as the CTA: a CTA whose memory others read or signal
/// must not exit before they are done, so a kernel that uses another CTA's shared memory ends
/// with cluster_sync().
#pragma once

#include <cuda_runtime.h>

#include <cstdint>
#include <utility>

#include "patlab/cuda/check.cuh"
#include "patlab/cuda/hopper/arch.cuh"
#include "patlab/cuda/hopper/mbarrier.cuh"

namespace patlab::cuda::hopper {

/// Largest cluster the portable launch allows (8 CTAs); stage 9 uses 2-4.
inline constexpr int kMaxPortableClusterSize = 8;

/// `%cluster_ctarank`: this CTA's rank in its cluster, 0 .. cluster_size() - 1.
__device__ __forceinline__ uint32_t cluster_rank() {
#if PATLAB_HOPPER_SM90
  uint32_t r;
  asm volatile("mov.u32 %0, %%cluster_ctarank;\n" : "=r"(r));
  return r;
#else
  __trap();
  return 0;
#endif
}

/// `%cluster_nctarank`: the CTAs in this CTA's cluster (1 for a launch without clusters).
__device__ __forceinline__ uint32_t cluster_size() {
#if PATLAB_HOPPER_SM90
  uint32_t n;
  asm volatile("mov.u32 %0, %%cluster_nctarank;\n" : "=r"(n));
  return n;
#else
  __trap();
  return 0;
#endif
}

/// `barrier.cluster.arrive.release.aligned`: this thread's arrival at the cluster barrier; its
/// earlier memory accesses are released to the threads that wait. Every thread of every CTA of
/// the cluster arrives once per phase (all threads of a warp together: `.aligned`).
__device__ __forceinline__ void cluster_arrive() {
#if PATLAB_HOPPER_SM90
  asm volatile("barrier.cluster.arrive.release.aligned;\n" ::: "memory");
#else
  __trap();
#endif
}

/// `barrier.cluster.wait.acquire.aligned`: waits until every thread of the cluster has arrived
/// in the current phase; their released accesses are visible afterwards.
__device__ __forceinline__ void cluster_wait() {
#if PATLAB_HOPPER_SM90
  asm volatile("barrier.cluster.wait.acquire.aligned;\n" ::: "memory");
#else
  __trap();
#endif
}

/// cluster_arrive() then cluster_wait(): a __syncthreads() over the whole cluster.
__device__ __forceinline__ void cluster_sync() {
  cluster_arrive();
  cluster_wait();
}

/// `mapa.shared::cluster.u32`: the address, in the cluster's shared window, of the variable
/// that `local` points to in this CTA, but in the CTA of rank `rank`. Use it with
/// ld_shared_cluster(), st_shared_cluster() and arrive_remote().
__device__ __forceinline__ uint32_t map_shared_rank(const void* local, uint32_t rank) {
#if PATLAB_HOPPER_SM90
  uint32_t remote;
  asm volatile("mapa.shared::cluster.u32 %0, %1, %2;\n" : "=r"(remote) : "r"(smem_u32(local)), "r"(rank));
  return remote;
#else
  __trap();
  return 0;
#endif
}

/// `ld.shared::cluster.u32`: a 32-bit load from a cluster shared address (map_shared_rank()).
__device__ __forceinline__ uint32_t ld_shared_cluster(uint32_t cluster_addr) {
#if PATLAB_HOPPER_SM90
  uint32_t v;
  asm volatile("ld.shared::cluster.u32 %0, [%1];\n" : "=r"(v) : "r"(cluster_addr) : "memory");
  return v;
#else
  __trap();
  return 0;
#endif
}

/// `st.shared::cluster.u32`: a 32-bit store to a cluster shared address (map_shared_rank()).
__device__ __forceinline__ void st_shared_cluster(uint32_t cluster_addr, uint32_t value) {
#if PATLAB_HOPPER_SM90
  asm volatile("st.shared::cluster.u32 [%0], %1;\n" ::"r"(cluster_addr), "r"(value) : "memory");
#else
  __trap();
#endif
}

/// `mbarrier.arrive.release.cluster.shared::cluster.b64`: one arrival on the barrier at cluster
/// shared address `remote_bar` (map_shared_rank() of a barrier, usually of another CTA), with
/// release semantics at cluster scope: this thread's earlier accesses are visible to the CTA
/// whose waiters see the phase complete. How a consumer CTA tells the producer of a multicast
/// that it is done with a stage.
__device__ __forceinline__ void arrive_remote(uint32_t remote_bar) {
#if PATLAB_HOPPER_SM90
  asm volatile("mbarrier.arrive.release.cluster.shared::cluster.b64 _, [%0];\n" ::"r"(remote_bar) : "memory");
#else
  __trap();
#endif
}

/// arrive_remote() counting `count` arrivals at once (the instruction's count operand): stage 9
/// tops up a barrier whose expected count is fixed for the largest cluster when fewer CTAs share
/// a stage.
__device__ __forceinline__ void arrive_remote(uint32_t remote_bar, uint32_t count) {
#if PATLAB_HOPPER_SM90
  asm volatile("mbarrier.arrive.release.cluster.shared::cluster.b64 _, [%0], %1;\n" ::"r"(remote_bar), "r"(count)
               : "memory");
#else
  __trap();
#endif
}

// [cluster-launch]
/// A launch configuration of `grid` CTAs (a multiple of `cluster`) of `block` threads with `smem`
/// bytes of dynamic shared memory, in clusters of `cluster` CTAs along x, on `stream`; it holds
/// the cluster attribute its config points to, so copy it only as a whole.
struct ClusterLaunch {
  /// What cudaLaunchKernelEx takes: grid, block, shared memory, stream; its attrs point at `attribute`.
  cudaLaunchConfig_t config{};
  /// The cluster dimension attribute: `cluster` x 1 x 1 CTAs.
  cudaLaunchAttribute attribute{};

  /// Fills `config` and `attribute`: `grid` CTAs of `block` threads and `smem` dynamic bytes, clusters of
  /// `cluster` CTAs along x, on `stream`.
  ClusterLaunch(int grid, int block, int smem, int cluster, cudaStream_t stream = nullptr) {
    config.gridDim = dim3(static_cast<unsigned>(grid));
    config.blockDim = dim3(static_cast<unsigned>(block));
    config.dynamicSmemBytes = static_cast<size_t>(smem);
    config.stream = stream;
    attribute.id = cudaLaunchAttributeClusterDimension;
    attribute.val.clusterDim.x = static_cast<unsigned>(cluster);
    attribute.val.clusterDim.y = 1;
    attribute.val.clusterDim.z = 1;
    config.attrs = &attribute;
    config.numAttrs = 1;
  }
  ClusterLaunch(const ClusterLaunch&) = delete;
  ClusterLaunch& operator=(const ClusterLaunch&) = delete;
};

/// Launches `kernel` as ClusterLaunch(grid, block, smem, cluster, stream) describes. Throws
/// Error(device) when the launch is refused (e.g. a cluster the device cannot place).
/// @tparam KernelArgs the kernel's parameter types (deduced from `kernel`)
/// @tparam Args types of `args`, each converted to its KernelArgs counterpart by cudaLaunchKernelEx
template <typename... KernelArgs, typename... Args>
void launch_clusters(void (*kernel)(KernelArgs...), int grid, int block, int smem, int cluster, cudaStream_t stream,
                     Args&&... args) {
  const ClusterLaunch launch(grid, block, smem, cluster, stream);
  PATLAB_CUDA_CHECK(cudaLaunchKernelEx(&launch.config, kernel, std::forward<Args>(args)...));
}

/// How many clusters of `cluster` CTAs (`block` threads, `smem` dynamic bytes each) of `kernel`
/// the device can run at once (cudaOccupancyMaxActiveClusters): the persistent grid's size.
/// @tparam KernelArgs the kernel's parameter types (deduced from `kernel`)
template <typename... KernelArgs>
int max_active_clusters(void (*kernel)(KernelArgs...), int block, int smem, int cluster) {
  const ClusterLaunch launch(cluster, block, smem, cluster);
  int clusters = 0;
  PATLAB_CUDA_CHECK(cudaOccupancyMaxActiveClusters(&clusters, kernel, &launch.config));
  return clusters;
}
// [cluster-launch]

}  // namespace patlab::cuda::hopper
