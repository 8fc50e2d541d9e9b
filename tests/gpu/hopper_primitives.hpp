// The host side of the Hopper wrapper tests (tests/gpu/hopper_primitives.cu, built for sm_90a
// only): each function runs one wrapper in isolation on device 0 and returns what the kernel
// wrote, for tests/gpu/test_hopper_primitives.cpp to check against a CPU result.
#pragma once

#include <cstdint>
#include <vector>

namespace patlab::test::hopper {

/// compiled_features() (hopper/arch.cuh) of the test kernels as they ran: 3 when the sm_90a
/// code ran.
int device_features();

/// What bulk_roundtrip() returns.
struct RoundTrip {
  std::vector<uint8_t> via_bulk_store;  ///< shared -> global by cp.async.bulk
  std::vector<uint8_t> via_threads;     ///< shared -> global by ordinary loads and stores
};

/// Copies pages `pages` (indices into `pool`, pages of `page_bytes`) into shared memory with one
/// cp.async.bulk each, `per_round` pages per mbarrier phase (rounds reuse the barrier and flip
/// its parity), and back out both ways; the result is the pages in list order.
RoundTrip bulk_roundtrip(const std::vector<uint8_t>& pool, int page_bytes, const std::vector<int>& pages,
                         int per_round);

/// A producer warp streams `tiles` (tile_words words each) through a ring of `stages` shared
/// stages (full/empty mbarriers, expect_tx, consumers release by arrive) to 4 consumer warps;
/// consumer thread t sums words t, t + 128, ... of each tile times (tile index + 1). Returns the
/// 128 sums.
std::vector<uint64_t> ring_sums(const std::vector<uint32_t>& tiles, int tile_words, int stages);

/// Values of the setmaxnreg test: thread t of warpgroup 0 (the one that gives registers away)
/// writes t, thread t of warpgroup 1 (the one that takes them) writes the sum of t + i for
/// i < kSetmaxnregTerms, kept in registers.
inline constexpr int kSetmaxnregTerms = 64;
/// Runs the two roles in one CTA of two warpgroups; returns the 256 values.
std::vector<int> setmaxnreg_roles();

/// Input type of a wgmma test.
enum class Dtype { f16, bf16 };

/// Reduction depth of wgmma_matmul(): two 64-wide panels.
inline constexpr int kWgmmaDepth = 128;

/// One warpgroup computes C (64 x n) = A (64 x kWgmmaDepth, row-major) * B with kWgmmaDepth / 16
/// wgmma k16 steps, A from shared memory (or from registers when `a_in_registers`), B from shared
/// memory in the 128-byte swizzled layout, K-major (`b` given as [n][kWgmmaDepth], C = A b^T) or
/// MN-major (`b` given as [kWgmmaDepth][n], C = A b; n >= 64). Inputs are rounded to `dtype` on
/// the way in; C is fp32, row-major.
std::vector<float> wgmma_matmul(Dtype dtype, int n, bool b_mn_major, bool a_in_registers, const std::vector<float>& a,
                                const std::vector<float>& b);

/// A box of a pool tensor map: token rows [row0, row0 + box_rows) of KV head `head` of block
/// `block` (block == blocks: out of bounds, zeros).
struct PoolBox {
  int block, head, row0;
};

/// Loads each box (all D/64 panels) with cp.async.bulk.tensor through the 4-D pool map
/// (hopper/tma.cuh) into 1024-aligned shared memory, reads it back through panel_offset(), and
/// returns the boxes as [box][box_rows][D] 16-bit values.
std::vector<uint16_t> tma_pool_boxes(const std::vector<uint16_t>& pool, int blocks, int page, int kv_heads, int d,
                                     int box_rows, const std::vector<PoolBox>& boxes);

/// tma_pool_boxes() for an fp8 pool at d = 128 (an 8-bit map, one 128-byte panel per row), read
/// back through the pack kernel's fp8_swizzled<128>(): the boxes as [box][box_rows][128] bytes.
std::vector<uint8_t> tma_pool_boxes_fp8(const std::vector<uint8_t>& pool, int blocks, int page, int kv_heads,
                                        int box_rows, const std::vector<PoolBox>& boxes);

/// What one CTA of cluster_exchange() saw.
struct ClusterView {
  uint32_t rank;           ///< cluster_rank()
  uint32_t size;           ///< cluster_size()
  uint32_t neighbour;      ///< the word CTA rank + 1 (mod size) of its cluster wrote, read through mapa
  uint32_t pushed;         ///< the word CTA rank - 1 (mod size) stored into this CTA's shared memory
  uint32_t arrivals_seen;  ///< rank 0: 1 once every CTA of its cluster arrived on its barrier remotely
};

/// `clusters` clusters of `cluster_size` CTAs: each CTA writes blockIdx.x + 1000 into a shared
/// word, stores blockIdx.x + 2000 into the next CTA's (st.shared::cluster), and every CTA
/// arrives on rank 0's mbarrier (expecting cluster_size arrivals); after a cluster barrier each
/// reads its neighbour's word. Returns one ClusterView per CTA (blockIdx.x order).
std::vector<ClusterView> cluster_exchange(int clusters, int cluster_size);

/// tma_pool_boxes() with multicast: `clusters` clusters of `cluster_size` CTAs; box i (all its
/// panels) is issued by rank i % cluster_size of each cluster and lands in every CTA of it.
/// Returns every CTA's boxes, [cta][box][box_rows][D].
std::vector<uint16_t> tma_multicast_boxes(const std::vector<uint16_t>& pool, int blocks, int page, int kv_heads,
                                          int d, int box_rows, const std::vector<PoolBox>& boxes, int clusters,
                                          int cluster_size);

/// max_active_clusters() (hopper/cluster.cuh) of the multicast test kernel for `box_bytes` of
/// dynamic shared memory per CTA: at least 1 on an H100/H200 for clusters of 2 and 4.
int multicast_max_clusters(int cluster_size, int smem_bytes);

}  // namespace patlab::test::hopper
