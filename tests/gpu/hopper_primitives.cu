// The kernels of the Hopper wrapper tests (host API in hopper_primitives.hpp): each exercises
// one wrapper of cuda/include/patlab/cuda/hopper/ in isolation. Built for sm_90a only.
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <cstdint>
#include <cstring>
#include <stdexcept>
#include <string>
#include <vector>

#include "hopper_primitives.hpp"
#include "patlab/cuda/buffer.cuh"
#include "patlab/cuda/check.cuh"
#include "patlab/cuda/hopper/bulk_copy.cuh"
#include "patlab/cuda/hopper/cluster.cuh"
#include "patlab/cuda/hopper/fence.cuh"
#include "patlab/cuda/hopper/mbarrier.cuh"
#include "patlab/cuda/hopper/setmaxnreg.cuh"
#include "patlab/cuda/hopper/tma.cuh"
#include "patlab/cuda/hopper/wgmma.cuh"
#include "patlab/cuda/packed_tile.cuh"
#include "patlab/planner/tile_budget.hpp"

namespace patlab::test::hopper {

using namespace patlab::cuda::hopper;
using patlab::cuda::DeviceBuffer;

namespace {

using patlab::kWarpgroupThreads;
/// Consumer warps of the ring test (one warpgroup).
constexpr int kRingConsumerWarps = 4;
/// wgmma tests: A is 64 x kTestK, 8 k16 steps over two 64-wide panels (so the K-major
/// descriptors step from one panel into the next, as they do at d = 128).
constexpr int kTestK = kWgmmaDepth;
/// Extra dynamic shared memory so a tile can start on the swizzle's 1024-byte alignment.
constexpr int kAlignSlack = kSwizzleAtomBytes;

/// The first 1024-byte aligned address (in the shared window) at or after `p`.
__device__ unsigned char* align_1024(unsigned char* p) {
  const uint32_t a = patlab::cuda::smem_u32(p);
  return p + ((kSwizzleAtomBytes - a % kSwizzleAtomBytes) % kSwizzleAtomBytes);
}

__global__ void features_kernel(int* out) { *out = compiled_features(); }

// [test-bulk-roundtrip]
/// One CTA: per round, thread 0 announces the round's bytes and issues one bulk load per page
/// (pages gathered through `pages`); everyone waits on the barrier's parity for the round; then
/// every thread copies the pages out with ordinary loads, and thread 0 with bulk stores.
__global__ void bulk_roundtrip_kernel(const uint8_t* pool, int page_bytes, const int* pages, int count, int per_round,
                                      uint8_t* out_bulk, uint8_t* out_threads) {
  extern __shared__ __align__(128) unsigned char smem[];
  __shared__ Mbarrier bar;
  if (threadIdx.x == 0) {
    init_mbarrier(&bar, 1);
    fence_mbarrier_init();
  }
  __syncthreads();
  for (int first = 0, round = 0; first < count; first += per_round, ++round) {
    const int n = min(per_round, count - first);
    if (threadIdx.x == 0) {
      arrive_expect_tx(&bar, static_cast<uint32_t>(n * page_bytes));
      for (int i = 0; i < n; ++i)
        bulk_load(smem + i * page_bytes, pool + static_cast<int64_t>(pages[first + i]) * page_bytes, page_bytes, &bar);
    }
    wait_parity(&bar, static_cast<uint32_t>(round & 1));
    for (int b = threadIdx.x; b < n * page_bytes; b += blockDim.x)
      out_threads[static_cast<int64_t>(first) * page_bytes + b] = smem[b];
    if (threadIdx.x == 0) {
      for (int i = 0; i < n; ++i)
        bulk_store(out_bulk + static_cast<int64_t>(first + i) * page_bytes, smem + i * page_bytes, page_bytes);
      bulk_commit();
      bulk_wait<0>();
    }
    __syncthreads();  // the next round's loads overwrite the buffer
  }
  if (threadIdx.x == 0) inval_mbarrier(&bar);
}
// [test-bulk-roundtrip]

// [test-ring]
/// Warp 0 produces (lane 0 issues), warps 1..4 consume: the pipeline ring of the stage-8
/// kernel in its simplest form.
__global__ void ring_kernel(const uint32_t* tiles, int num_tiles, int tile_words, int stages, uint64_t* sums) {
  extern __shared__ __align__(128) unsigned char smem[];
  uint32_t* buf = reinterpret_cast<uint32_t*>(smem);
  Mbarrier* full = reinterpret_cast<Mbarrier*>(buf + stages * tile_words);
  Mbarrier* empty = full + stages;
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  if (threadIdx.x == 0) {
    for (int s = 0; s < stages; ++s) {
      init_mbarrier(&full[s], 1);                    // the producer's arrive_expect_tx
      init_mbarrier(&empty[s], kRingConsumerWarps);  // one arrive per consumer warp
    }
    fence_mbarrier_init();
  }
  __syncthreads();
  const uint32_t tile_bytes = static_cast<uint32_t>(tile_words * sizeof(uint32_t));
  if (warp == 0) {
    int stage = 0;
    uint32_t phase = 0;
    for (int t = 0; t < num_tiles; ++t) {
      wait_parity(&empty[stage], phase ^ 1u);
      if (lane == 0) {
        arrive_expect_tx(&full[stage], tile_bytes);
        bulk_load(buf + stage * tile_words, tiles + static_cast<int64_t>(t) * tile_words, tile_bytes, &full[stage]);
      }
      __syncwarp();
      if (++stage == stages) stage = 0, phase ^= 1u;
    }
  } else {
    const int c = threadIdx.x - 32;
    uint64_t sum = 0;
    int stage = 0;
    uint32_t phase = 0;
    for (int t = 0; t < num_tiles; ++t) {
      wait_parity(&full[stage], phase);
      const uint32_t* tile = buf + stage * tile_words;
      for (int w = c; w < tile_words; w += kRingConsumerWarps * 32) sum += static_cast<uint64_t>(tile[w]) * (t + 1);
      __syncwarp();
      if (lane == 0) arrive(&empty[stage]);
      if (++stage == stages) stage = 0, phase ^= 1u;
    }
    sums[c] = sum;
  }
}
// [test-ring]

// [test-setmaxnreg]
/// Registers per thread of the giving and the taking warpgroup.
constexpr int kGiveRegs = 40;
constexpr int kTakeRegs = 232;

/// Two warpgroups, a register cap at entry (__launch_bounds__ with 1 CTA per SM), each role one
/// branch of one if/else, as setmaxnreg requires.
__global__ void __launch_bounds__(2 * kWarpgroupThreads, 1) setmaxnreg_kernel(int* out) {
  const int wg = threadIdx.x / kWarpgroupThreads, t = threadIdx.x % kWarpgroupThreads;
  if (wg == 0) {
    setmaxnreg_dec<kGiveRegs>();
    out[threadIdx.x] = t;
  } else {
    setmaxnreg_inc<kTakeRegs>();
    int terms[kSetmaxnregTerms];
#pragma unroll
    for (int i = 0; i < kSetmaxnregTerms; ++i) terms[i] = t + i;
    int sum = 0;
#pragma unroll
    for (int i = 0; i < kSetmaxnregTerms; ++i) sum += terms[i];
    out[threadIdx.x] = sum;
  }
}
// [test-setmaxnreg]

// [test-wgmma]
/// The A fragment of k16 step `kk` for this thread, in registers, from row-major A (64 x kTestK).
template <typename T>
__device__ void load_a_fragment(const T* a, int kk, uint32_t (&frag)[4]) {
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int r0 = warp * 16 + lane / 4, c = kk * 16 + 2 * (lane % 4);
  auto word = [&](int r, int col) {
    uint32_t w;
    const T pair[2] = {a[r * kTestK + col], a[r * kTestK + col + 1]};
    memcpy(&w, pair, sizeof(w));
    return w;
  };
  frag[0] = word(r0, c);
  frag[1] = word(r0 + 8, c);
  frag[2] = word(r0, c + 8);
  frag[3] = word(r0 + 8, c + 8);
}

/// One warpgroup: A (64 x kTestK) and B into swizzled shared memory with ordinary stores, the
/// proxy fence, kTestK / 16 wgmma k16 steps, then D from its fragments to C (64 x N,
/// row-major). `b` is [N][kTestK] (K-major) or [kTestK][N] (MN-major).
template <typename T, int N, Major kBMajor, bool kARegisters>
__global__ void wgmma_kernel(const T* a, const T* b, float* c) {
  extern __shared__ __align__(128) unsigned char smem_raw[];
  T* a_s = reinterpret_cast<T*>(align_1024(smem_raw));
  T* b_s = a_s + 64 * kTestK;
  for (int i = threadIdx.x; i < 64 * kTestK; i += blockDim.x)
    a_s[panel_offset(64, i / kTestK, i % kTestK)] = a[i];
  for (int i = threadIdx.x; i < N * kTestK; i += blockDim.x) {
    if constexpr (kBMajor == Major::K)
      b_s[panel_offset(N, i / kTestK, i % kTestK)] = b[i];  // row n, col k
    else
      b_s[panel_offset(kTestK, i / N, i % N)] = b[i];  // row k, col n
  }
  fence_proxy_async_shared();  // ordinary stores, read next by the tensor cores
  __syncthreads();
  constexpr int kSteps = kTestK / 16;
  uint32_t frag[kSteps][4];  // A in registers: every step's fragment loaded before the fence
  if constexpr (kARegisters) {
#pragma unroll
    for (int kk = 0; kk < kSteps; ++kk) load_a_fragment(a, kk, frag[kk]);
  }
  float d[N / 2] = {};
  fence_operands(d);
  wgmma_fence();
#pragma unroll
  for (int kk = 0; kk < kSteps; ++kk) {
    const uint64_t desc_b = kBMajor == Major::K ? desc_k_major(b_s, N, kk) : desc_mn_major(b_s, kTestK, kk);
    if constexpr (kARegisters) {
      wgmma_rs<T, N, kBMajor>(d, frag[kk], desc_b, kk > 0);
    } else {
      wgmma_ss<T, N, kBMajor>(d, desc_k_major(a_s, 64, kk), desc_b, kk > 0);
    }
  }
  wgmma_commit();
  wgmma_wait<0>();
  fence_operands(d);
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
#pragma unroll
  for (int i = 0; i < N / 8; ++i) {
    const int row = warp * 16 + lane / 4, col = i * 8 + 2 * (lane % 4);
    c[row * N + col] = d[4 * i];
    c[row * N + col + 1] = d[4 * i + 1];
    c[(row + 8) * N + col] = d[4 * i + 2];
    c[(row + 8) * N + col + 1] = d[4 * i + 3];
  }
}
// [test-wgmma]

// [test-tma]
/// Reads `count` boxes of `box_rows` x `d` values, loaded panel by panel into `tiles` in the
/// 128-byte swizzle, back into row-major [box][row][d] at `out` (every thread of the CTA).
__device__ void read_boxes(const uint16_t* tiles, int count, int box_rows, int d, uint16_t* out) {
  for (int e = threadIdx.x; e < count * box_rows * d; e += blockDim.x) {
    const int i = e / (box_rows * d), r = e / d % box_rows, col = e % d;
    out[e] = tiles[i * box_rows * d + panel_offset(box_rows, r, col)];
  }
}

/// One CTA: thread 0 issues every box's D/64 panel copies against one barrier, everyone waits,
/// then the boxes are read back through panel_offset() into [box][rows][D].
__global__ void tma_kernel(const __grid_constant__ CUtensorMap map, const PoolBox* boxes, int count, int d,
                           int box_rows, uint16_t* out) {
  extern __shared__ __align__(128) unsigned char smem_raw[];
  uint16_t* tiles = reinterpret_cast<uint16_t*>(align_1024(smem_raw));
  __shared__ Mbarrier bar;
  const int panels = d / kPanelElems;
  if (threadIdx.x == 0) {
    init_mbarrier(&bar, 1);
    fence_mbarrier_init();
  }
  __syncthreads();
  if (threadIdx.x == 0) {
    prefetch_tensor_map(&map);
    arrive_expect_tx(&bar, static_cast<uint32_t>(count * panels * pool_box_bytes(box_rows)));
    for (int i = 0; i < count; ++i)
      for (int p = 0; p < panels; ++p)
        tma_load_4d(tiles + (i * panels + p) * box_rows * kPanelElems, &map, p * kPanelElems, boxes[i].head,
                    boxes[i].row0, boxes[i].block, &bar);
  }
  wait_parity(&bar, 0);
  read_boxes(tiles, count, box_rows, d, out);
}

/// tma_kernel for an fp8 pool at d = 128 (8-bit map, one 128-byte panel per row): box i lands at
/// byte i x box_rows x 128 and is read back through fp8_swizzled<128>(), the layout the pack
/// kernel's qk_tile_fp8 and pv_tile_fp8 read (stage 8's 16-row tensor-map kernel relies on it).
__global__ void tma_fp8_kernel(const __grid_constant__ CUtensorMap map, const PoolBox* boxes, int count, int box_rows,
                               uint8_t* out) {
  constexpr int kD = kMapRowBytes;
  extern __shared__ __align__(128) unsigned char smem_raw[];
  unsigned char* tiles = align_1024(smem_raw);
  __shared__ Mbarrier bar;
  if (threadIdx.x == 0) {
    init_mbarrier(&bar, 1);
    fence_mbarrier_init();
  }
  __syncthreads();
  if (threadIdx.x == 0) {
    arrive_expect_tx(&bar, static_cast<uint32_t>(count * pool_box_bytes(box_rows)));
    for (int i = 0; i < count; ++i)
      tma_load_4d(tiles + i * box_rows * kD, &map, 0, boxes[i].head, boxes[i].row0, boxes[i].block, &bar);
  }
  wait_parity(&bar, 0);
  for (int e = threadIdx.x; e < count * box_rows * kD; e += blockDim.x) {
    const int i = e / (box_rows * kD), r = e / kD % box_rows, c = e % kD;
    const int chunk = c / cuda::kChunkBytes, byte = c % cuda::kChunkBytes;
    out[e] = tiles[i * box_rows * kD + cuda::fp8_swizzled<kD>(r, chunk) + byte];
  }
}
// [test-tma]

// [test-cluster]
/// cluster_exchange(): ranks, distributed shared memory both ways, remote mbarrier arrivals.
__global__ void cluster_exchange_kernel(ClusterView* out) {
  __shared__ uint32_t word;
  __shared__ uint32_t pushed;
  __shared__ Mbarrier bar;
  const uint32_t rank = cluster_rank(), size = cluster_size();
  if (threadIdx.x == 0) {
    word = blockIdx.x + 1000;
    pushed = 0;
    if (rank == 0) init_mbarrier(&bar, size);
    fence_mbarrier_init();
  }
  cluster_sync();  // every CTA's word and rank 0's barrier exist before anyone uses them
  if (threadIdx.x == 0) {
    st_shared_cluster(map_shared_rank(&pushed, (rank + 1) % size), blockIdx.x + 2000);
    arrive_remote(map_shared_rank(&bar, 0));
  }
  cluster_sync();  // the stores have landed
  if (threadIdx.x == 0) {
    ClusterView v{};
    v.rank = rank;
    v.size = size;
    v.neighbour = ld_shared_cluster(map_shared_rank(&word, (rank + 1) % size));
    v.pushed = pushed;
    if (rank == 0) {
      wait_parity(&bar, 0);
      v.arrivals_seen = 1;
    }
    out[blockIdx.x] = v;
  }
  cluster_sync();  // nobody exits while another CTA may still read its shared memory
}

/// tma_multicast_boxes(): every CTA announces all boxes' bytes on its own barrier; after a
/// cluster barrier, rank r issues the boxes i with i % size == r to every CTA of the cluster.
__global__ void tma_multicast_kernel(const __grid_constant__ CUtensorMap map, const PoolBox* boxes, int count, int d,
                                     int box_rows, uint16_t* out) {
  extern __shared__ __align__(128) unsigned char smem_raw[];
  uint16_t* tiles = reinterpret_cast<uint16_t*>(align_1024(smem_raw));
  __shared__ Mbarrier bar;
  const int panels = d / kPanelElems;
  const uint32_t rank = cluster_rank(), size = cluster_size();
  if (threadIdx.x == 0) {
    init_mbarrier(&bar, 1);
    fence_mbarrier_init();
    arrive_expect_tx(&bar, static_cast<uint32_t>(count * panels * pool_box_bytes(box_rows)));
  }
  cluster_sync();  // every CTA's barrier expects its bytes before any copy is issued
  if (threadIdx.x == 0) {
    prefetch_tensor_map(&map);
    const uint16_t all = static_cast<uint16_t>((1u << size) - 1);
    for (int i = static_cast<int>(rank); i < count; i += static_cast<int>(size))
      for (int p = 0; p < panels; ++p)
        tma_load_4d_multicast(tiles + (i * panels + p) * box_rows * kPanelElems, &map, p * kPanelElems,
                              boxes[i].head, boxes[i].row0, boxes[i].block, &bar, all);
  }
  wait_parity(&bar, 0);
  read_boxes(tiles, count, box_rows, d, out + static_cast<size_t>(blockIdx.x) * count * box_rows * d);
  cluster_sync();  // no CTA exits while a multicast it issued may still be writing elsewhere
}
// [test-cluster]

/// Copies floats into the 16-bit type T (round to nearest).
template <typename T>
std::vector<T> to_type(const std::vector<float>& x) {
  std::vector<T> out(x.size());
  for (size_t i = 0; i < x.size(); ++i) {
    if constexpr (std::is_same_v<T, __half>)
      out[i] = __float2half_rn(x[i]);
    else
      out[i] = __float2bfloat16_rn(x[i]);
  }
  return out;
}

template <typename T, int N, Major kBMajor, bool kARegisters>
std::vector<float> run_wgmma(const std::vector<float>& a, const std::vector<float>& b) {
  const DeviceBuffer<T> da(to_type<T>(a)), db(to_type<T>(b));
  DeviceBuffer<float> dc(64 * N);
  const int smem = (64 * kTestK + N * kTestK) * 2 + kAlignSlack;
  auto kernel = wgmma_kernel<T, N, kBMajor, kARegisters>;
  PATLAB_CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, smem));
  kernel<<<1, kWarpgroupThreads, smem>>>(da.get(), db.get(), dc.get());
  PATLAB_CUDA_CHECK_LAUNCH();
  PATLAB_CUDA_CHECK(cudaDeviceSynchronize());
  return dc.download();
}

template <typename T, Major kBMajor, bool kARegisters>
std::vector<float> run_wgmma_n(int n, const std::vector<float>& a, const std::vector<float>& b) {
  switch (n) {
    case 8: if constexpr (kBMajor == Major::K) return run_wgmma<T, 8, kBMajor, kARegisters>(a, b); break;
    case 16: if constexpr (kBMajor == Major::K) return run_wgmma<T, 16, kBMajor, kARegisters>(a, b); break;
    case 32: if constexpr (kBMajor == Major::K) return run_wgmma<T, 32, kBMajor, kARegisters>(a, b); break;
    case 64: return run_wgmma<T, 64, kBMajor, kARegisters>(a, b);
    case 128: return run_wgmma<T, 128, kBMajor, kARegisters>(a, b);
    case 256: return run_wgmma<T, 256, kBMajor, kARegisters>(a, b);
    default: break;
  }
  throw std::invalid_argument("wgmma test: no instance for n=" + std::to_string(n));
}

template <typename T>
std::vector<float> run_wgmma_t(int n, bool mn, bool regs, const std::vector<float>& a, const std::vector<float>& b) {
  if (mn) return regs ? run_wgmma_n<T, Major::MN, true>(n, a, b) : run_wgmma_n<T, Major::MN, false>(n, a, b);
  return regs ? run_wgmma_n<T, Major::K, true>(n, a, b) : run_wgmma_n<T, Major::K, false>(n, a, b);
}

}  // namespace

int device_features() {
  DeviceBuffer<int> out(1);
  features_kernel<<<1, 1>>>(out.get());
  PATLAB_CUDA_CHECK_LAUNCH();
  PATLAB_CUDA_CHECK(cudaDeviceSynchronize());
  return out.download()[0];
}

RoundTrip bulk_roundtrip(const std::vector<uint8_t>& pool, int page_bytes, const std::vector<int>& pages,
                         int per_round) {
  const DeviceBuffer<uint8_t> dpool(pool);
  const DeviceBuffer<int> dpages(pages);
  const size_t bytes = pages.size() * static_cast<size_t>(page_bytes);
  DeviceBuffer<uint8_t> out_bulk(bytes), out_threads(bytes);
  PATLAB_CUDA_CHECK(cudaMemset(out_bulk.get(), 0, bytes));
  PATLAB_CUDA_CHECK(cudaMemset(out_threads.get(), 0, bytes));
  const int smem = per_round * page_bytes;
  PATLAB_CUDA_CHECK(cudaFuncSetAttribute(bulk_roundtrip_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, smem));
  bulk_roundtrip_kernel<<<1, kWarpgroupThreads, smem>>>(dpool.get(), page_bytes, dpages.get(),
                                                        static_cast<int>(pages.size()), per_round, out_bulk.get(),
                                                        out_threads.get());
  PATLAB_CUDA_CHECK_LAUNCH();
  PATLAB_CUDA_CHECK(cudaDeviceSynchronize());
  return {out_bulk.download(), out_threads.download()};
}

std::vector<uint64_t> ring_sums(const std::vector<uint32_t>& tiles, int tile_words, int stages) {
  const DeviceBuffer<uint32_t> dtiles(tiles);
  DeviceBuffer<uint64_t> sums(kRingConsumerWarps * 32);
  const int smem = stages * tile_words * 4 + 2 * stages * static_cast<int>(sizeof(Mbarrier));
  PATLAB_CUDA_CHECK(cudaFuncSetAttribute(ring_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, smem));
  ring_kernel<<<1, 32 * (1 + kRingConsumerWarps), smem>>>(dtiles.get(), static_cast<int>(tiles.size() / tile_words),
                                                           tile_words, stages, sums.get());
  PATLAB_CUDA_CHECK_LAUNCH();
  PATLAB_CUDA_CHECK(cudaDeviceSynchronize());
  return sums.download();
}

std::vector<int> setmaxnreg_roles() {
  DeviceBuffer<int> out(2 * kWarpgroupThreads);
  setmaxnreg_kernel<<<1, 2 * kWarpgroupThreads>>>(out.get());
  PATLAB_CUDA_CHECK_LAUNCH();
  PATLAB_CUDA_CHECK(cudaDeviceSynchronize());
  return out.download();
}

std::vector<float> wgmma_matmul(Dtype dtype, int n, bool b_mn_major, bool a_in_registers, const std::vector<float>& a,
                                const std::vector<float>& b) {
  if (dtype == Dtype::f16) return run_wgmma_t<__half>(n, b_mn_major, a_in_registers, a, b);
  return run_wgmma_t<__nv_bfloat16>(n, b_mn_major, a_in_registers, a, b);
}

std::vector<uint16_t> tma_pool_boxes(const std::vector<uint16_t>& pool, int blocks, int page, int kv_heads, int d,
                                     int box_rows, const std::vector<PoolBox>& boxes) {
  const DeviceBuffer<uint16_t> dpool(pool);
  const DeviceBuffer<PoolBox> dboxes(boxes);
  DeviceBuffer<uint16_t> out(boxes.size() * box_rows * d);
  const CUtensorMap map = make_pool_tensor_map(dpool.get(), PoolMapShape{blocks, page, kv_heads, d, box_rows});
  const int smem = static_cast<int>(boxes.size()) * box_rows * d * 2 + kAlignSlack;
  PATLAB_CUDA_CHECK(cudaFuncSetAttribute(tma_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, smem));
  tma_kernel<<<1, kWarpgroupThreads, smem>>>(map, dboxes.get(), static_cast<int>(boxes.size()), d, box_rows,
                                              out.get());
  PATLAB_CUDA_CHECK_LAUNCH();
  PATLAB_CUDA_CHECK(cudaDeviceSynchronize());
  return out.download();
}

std::vector<uint8_t> tma_pool_boxes_fp8(const std::vector<uint8_t>& pool, int blocks, int page, int kv_heads,
                                        int box_rows, const std::vector<PoolBox>& boxes) {
  const DeviceBuffer<uint8_t> dpool(pool);
  const DeviceBuffer<PoolBox> dboxes(boxes);
  DeviceBuffer<uint8_t> out(boxes.size() * box_rows * kMapRowBytes);
  const CUtensorMap map =
      make_pool_tensor_map(dpool.get(), PoolMapShape{blocks, page, kv_heads, kMapRowBytes, box_rows, 1});
  const int smem = static_cast<int>(boxes.size()) * box_rows * kMapRowBytes + kAlignSlack;
  PATLAB_CUDA_CHECK(cudaFuncSetAttribute(tma_fp8_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, smem));
  tma_fp8_kernel<<<1, kWarpgroupThreads, smem>>>(map, dboxes.get(), static_cast<int>(boxes.size()), box_rows,
                                                  out.get());
  PATLAB_CUDA_CHECK_LAUNCH();
  PATLAB_CUDA_CHECK(cudaDeviceSynchronize());
  return out.download();
}

std::vector<ClusterView> cluster_exchange(int clusters, int cluster_size) {
  const int ctas = clusters * cluster_size;
  DeviceBuffer<ClusterView> out(static_cast<size_t>(ctas));
  launch_clusters(cluster_exchange_kernel, ctas, kWarpgroupThreads, 0, cluster_size, nullptr, out.get());
  PATLAB_CUDA_CHECK(cudaDeviceSynchronize());
  return out.download();
}

std::vector<uint16_t> tma_multicast_boxes(const std::vector<uint16_t>& pool, int blocks, int page, int kv_heads,
                                          int d, int box_rows, const std::vector<PoolBox>& boxes, int clusters,
                                          int cluster_size) {
  const DeviceBuffer<uint16_t> dpool(pool);
  const DeviceBuffer<PoolBox> dboxes(boxes);
  const int ctas = clusters * cluster_size;
  DeviceBuffer<uint16_t> out(static_cast<size_t>(ctas) * boxes.size() * box_rows * d);
  const CUtensorMap map = make_pool_tensor_map(dpool.get(), PoolMapShape{blocks, page, kv_heads, d, box_rows});
  const int smem = static_cast<int>(boxes.size()) * box_rows * d * 2 + kAlignSlack;
  PATLAB_CUDA_CHECK(cudaFuncSetAttribute(tma_multicast_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, smem));
  launch_clusters(tma_multicast_kernel, ctas, kWarpgroupThreads, smem, cluster_size, nullptr, map, dboxes.get(),
                  static_cast<int>(boxes.size()), d, box_rows, out.get());
  PATLAB_CUDA_CHECK(cudaDeviceSynchronize());
  return out.download();
}

int multicast_max_clusters(int cluster_size, int smem_bytes) {
  PATLAB_CUDA_CHECK(
      cudaFuncSetAttribute(tma_multicast_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, smem_bytes));
  return max_active_clusters(tma_multicast_kernel, kWarpgroupThreads, smem_bytes, cluster_size);
}

}  // namespace patlab::test::hopper
