// The Hopper instruction wrappers (cuda/include/patlab/cuda/hopper/), each in isolation against a
// CPU result: bulk copies through an mbarrier (bit for bit), a producer/consumer mbarrier ring
// (exact sums), setmaxnreg between two warpgroups (both roles run and compute; that registers
// moved is not observable from here), the 4-D pool tensor map (bit for bit, swizzle undone; an
// 8-bit map of an fp8 pool read through the pack kernel's fp8_swizzled<128>()),
// clusters of 2 and 4 (ranks, another CTA's shared memory, remote mbarrier arrivals, a multicast
// tensor-map copy into every CTA, bit for bit), and
// wgmma m64nNk16 for f16 and bf16, B K-major and MN-major, A from shared memory and from
// registers, two 64-wide panels deep (exact: the inputs are small multiples of 1/4, so every
// product and sum is exact in fp32). These are the first tests to run on a new Hopper machine;
// they skip (77) without a device or on anything but sm_90 (tests/main.cpp with
// PATLAB_GPU_NEEDS_SM90).
#include <cstdint>
#include <cstdio>
#include <random>
#include <vector>

#include "../catch.hpp"
#include "hopper_primitives.hpp"

namespace hp = patlab::test::hopper;

namespace {

/// Fixed seeds, printed by each test.
constexpr uint64_t kBulkSeed = 9001;
constexpr uint64_t kRingSeed = 9002;
constexpr uint64_t kWgmmaSeed = 9003;
constexpr uint64_t kTmaSeed = 9004;
constexpr uint64_t kMulticastSeed = 9005;
/// Rows and reduction depth of the wgmma tests (hopper_primitives.cu).
constexpr int kRowsA = 64;
constexpr int kDepth = hp::kWgmmaDepth;
/// The compiled_features() value of an sm_90a pass (kSm90 | kSm90a of hopper/arch.cuh).
constexpr int kSm90aFeatures = 3;

/// Values k / 4 for k in [-8, 8]: exact in fp16 and bf16; products (multiples of 1/16, at most 4)
/// and their 128-term sums (at most 512) are exact in fp32.
std::vector<float> quarter_values(size_t count, std::mt19937_64& rng) {
  std::uniform_int_distribution<int> q(-8, 8);
  std::vector<float> v(count);
  for (float& x : v) x = static_cast<float>(q(rng)) / 4.0f;
  return v;
}

/// C = A (64 x kDepth) * B, B given [n][kDepth] (K-major: C = A B^T) or [kDepth][n] (MN-major),
/// in double.
std::vector<float> cpu_matmul(const std::vector<float>& a, const std::vector<float>& b, int n, bool mn_major) {
  std::vector<float> c(static_cast<size_t>(kRowsA) * n);
  for (int i = 0; i < kRowsA; ++i)
    for (int j = 0; j < n; ++j) {
      double s = 0;
      for (int k = 0; k < kDepth; ++k) s += double{a[i * kDepth + k]} * (mn_major ? b[k * n + j] : b[j * kDepth + k]);
      c[static_cast<size_t>(i) * n + j] = static_cast<float>(s);
    }
  return c;
}

}  // namespace

TEST_CASE("the test kernels ran the sm_90a code") { REQUIRE(hp::device_features() == kSm90aFeatures); }

TEST_CASE("bulk copies of gathered pages through an mbarrier, out again bit for bit") {
  std::printf("seed %llu\n", static_cast<unsigned long long>(kBulkSeed));
  std::mt19937_64 rng(kBulkSeed);
  constexpr int kPageBytes = 16 * 128;  // a page of 16 token rows of d=64 fp16
  constexpr int kPoolPages = 40;
  std::vector<uint8_t> pool(static_cast<size_t>(kPoolPages) * kPageBytes);
  for (uint8_t& b : pool) b = static_cast<uint8_t>(rng());
  std::vector<int> pages(25);
  for (int& p : pages) p = static_cast<int>(rng() % kPoolPages);
  for (const int per_round : {1, 4, 7}) {
    INFO("pages per mbarrier phase " << per_round);
    const hp::RoundTrip got = hp::bulk_roundtrip(pool, kPageBytes, pages, per_round);
    std::vector<uint8_t> want;
    for (const int p : pages)
      want.insert(want.end(), pool.begin() + p * kPageBytes, pool.begin() + (p + 1) * kPageBytes);
    CHECK(got.via_threads == want);
    CHECK(got.via_bulk_store == want);
  }
}

TEST_CASE("a producer/consumer mbarrier ring over many tiles, consumers releasing stages") {
  std::printf("seed %llu\n", static_cast<unsigned long long>(kRingSeed));
  std::mt19937_64 rng(kRingSeed);
  constexpr int kTileWords = 1024;  // 4 KB tiles
  constexpr int kTiles = 301;       // not a multiple of any ring size
  constexpr int kConsumers = 128;
  std::vector<uint32_t> tiles(static_cast<size_t>(kTileWords) * kTiles);
  for (uint32_t& w : tiles) w = static_cast<uint32_t>(rng() & 0xFFFFF);
  std::vector<uint64_t> want(kConsumers, 0);
  for (int t = 0; t < kTiles; ++t)
    for (int w = 0; w < kTileWords; ++w)
      want[w % kConsumers] += uint64_t{tiles[static_cast<size_t>(t) * kTileWords + w]} * (t + 1);
  for (const int stages : {2, 3, 4}) {
    INFO("stages " << stages);
    CHECK(hp::ring_sums(tiles, kTileWords, stages) == want);
  }
}

TEST_CASE("the 4-D pool tensor map loads pages of one KV head into the 128-byte swizzle") {
  std::printf("seed %llu\n", static_cast<unsigned long long>(kTmaSeed));
  std::mt19937_64 rng(kTmaSeed);
  struct Geometry {
    int blocks, page, kv_heads, d, box_rows;
  };
  for (const Geometry g : {Geometry{12, 16, 3, 128, 16}, Geometry{6, 64, 2, 64, 32}, Geometry{5, 32, 1, 256, 32}}) {
    INFO("blocks " << g.blocks << " page " << g.page << " Hkv " << g.kv_heads << " d " << g.d << " box rows "
                   << g.box_rows);
    std::vector<uint16_t> pool(static_cast<size_t>(g.blocks) * g.page * g.kv_heads * g.d);
    for (uint16_t& v : pool) v = static_cast<uint16_t>(rng());
    std::vector<hp::PoolBox> boxes;
    for (int i = 0; i < 5; ++i)
      boxes.push_back({static_cast<int>(rng() % g.blocks), static_cast<int>(rng() % g.kv_heads),
                       static_cast<int>(rng() % (g.page / g.box_rows)) * g.box_rows});
    boxes.push_back({g.blocks, 0, 0});  // past the pool: zeros
    const std::vector<uint16_t> got = hp::tma_pool_boxes(pool, g.blocks, g.page, g.kv_heads, g.d, g.box_rows, boxes);
    std::vector<uint16_t> want;
    for (const hp::PoolBox& b : boxes)
      for (int r = 0; r < g.box_rows; ++r)
        for (int c = 0; c < g.d; ++c)
          want.push_back(b.block >= g.blocks ? uint16_t{0}
                                             : pool[((static_cast<size_t>(b.block) * g.page + b.row0 + r) * g.kv_heads +
                                                     b.head) * g.d + c]);
    CHECK(got == want);
  }
}

TEST_CASE("an 8-bit pool map loads fp8 pages at d = 128 into the layout qk_tile_fp8 reads") {
  std::printf("seed %llu\n", static_cast<unsigned long long>(kTmaSeed + 1));
  std::mt19937_64 rng(kTmaSeed + 1);
  constexpr int kD = 128;
  for (const int page : {16, 64}) {
    const int blocks = 7, kv_heads = 3, box_rows = page;
    INFO("page " << page);
    std::vector<uint8_t> pool(static_cast<size_t>(blocks) * page * kv_heads * kD);
    for (uint8_t& v : pool) v = static_cast<uint8_t>(rng());
    std::vector<hp::PoolBox> boxes;
    for (int i = 0; i < 4; ++i)
      boxes.push_back({static_cast<int>(rng() % blocks), static_cast<int>(rng() % kv_heads), 0});
    boxes.push_back({blocks, 0, 0});  // past the pool: zeros
    const std::vector<uint8_t> got = hp::tma_pool_boxes_fp8(pool, blocks, page, kv_heads, box_rows, boxes);
    std::vector<uint8_t> want;
    for (const hp::PoolBox& b : boxes)
      for (int r = 0; r < box_rows; ++r)
        for (int c = 0; c < kD; ++c)
          want.push_back(b.block >= blocks ? uint8_t{0}
                                           : pool[((static_cast<size_t>(b.block) * page + b.row0 + r) * kv_heads +
                                                   b.head) * kD + c]);
    CHECK(got == want);
  }
}

TEST_CASE("clusters of 2 and 4: ranks, another CTA's shared memory both ways, remote mbarrier arrivals") {
  for (const int size : {2, 4}) {
    INFO("cluster size " << size);
    const int clusters = 3;
    const std::vector<hp::ClusterView> got = hp::cluster_exchange(clusters, size);
    REQUIRE(got.size() == static_cast<size_t>(clusters * size));
    for (int b = 0; b < clusters * size; ++b) {
      INFO("CTA " << b);
      const int rank = b % size, first = b - rank;  // clusters are consecutive CTAs along x
      CHECK(got[b].rank == static_cast<uint32_t>(rank));
      CHECK(got[b].size == static_cast<uint32_t>(size));
      CHECK(got[b].neighbour == static_cast<uint32_t>(first + (rank + 1) % size + 1000));
      CHECK(got[b].pushed == static_cast<uint32_t>(first + (rank + size - 1) % size + 2000));
      CHECK(got[b].arrivals_seen == (rank == 0 ? 1u : 0u));
    }
  }
}

TEST_CASE("a multicast tensor-map copy lands in every CTA of the cluster, bit for bit") {
  std::printf("seed %llu\n", static_cast<unsigned long long>(kMulticastSeed));
  std::mt19937_64 rng(kMulticastSeed);
  const int blocks = 10, page = 16, kv_heads = 2, d = 128, box_rows = 16;
  std::vector<uint16_t> pool(static_cast<size_t>(blocks) * page * kv_heads * d);
  for (uint16_t& v : pool) v = static_cast<uint16_t>(rng());
  std::vector<hp::PoolBox> boxes;
  for (int i = 0; i < 6; ++i)
    boxes.push_back({static_cast<int>(rng() % blocks), static_cast<int>(rng() % kv_heads), 0});
  boxes.push_back({blocks, 1, 0});  // past the pool: zeros, in every CTA
  std::vector<uint16_t> want;
  for (const hp::PoolBox& b : boxes)
    for (int r = 0; r < box_rows; ++r)
      for (int c = 0; c < d; ++c)
        want.push_back(b.block >= blocks ? uint16_t{0}
                                         : pool[((static_cast<size_t>(b.block) * page + b.row0 + r) * kv_heads + b.head) * d + c]);
  const size_t per_cta = want.size();
  for (const int size : {2, 4}) {
    INFO("cluster size " << size);
    const int clusters = 2;
    CHECK(hp::multicast_max_clusters(size, static_cast<int>(per_cta * 2 + 1024)) >= 1);
    const std::vector<uint16_t> got = hp::tma_multicast_boxes(pool, blocks, page, kv_heads, d, box_rows, boxes,
                                                              clusters, size);
    REQUIRE(got.size() == per_cta * clusters * size);
    for (int cta = 0; cta < clusters * size; ++cta) {
      INFO("CTA " << cta);
      CHECK(std::vector<uint16_t>(got.begin() + cta * per_cta, got.begin() + (cta + 1) * per_cta) == want);
    }
  }
}

TEST_CASE("setmaxnreg moves registers from one warpgroup to the other, both roles compute") {
  constexpr int kGroupThreads = 128;
  const std::vector<int> got = hp::setmaxnreg_roles();
  std::vector<int> want(2 * kGroupThreads);
  for (int t = 0; t < kGroupThreads; ++t) {
    want[t] = t;
    want[kGroupThreads + t] = hp::kSetmaxnregTerms * t + hp::kSetmaxnregTerms * (hp::kSetmaxnregTerms - 1) / 2;
  }
  CHECK(got == want);
}

TEST_CASE("wgmma m64nNk16 against a CPU matmul: f16/bf16, B K-major and MN-major, A from shared memory or registers") {
  std::printf("seed %llu\n", static_cast<unsigned long long>(kWgmmaSeed));
  std::mt19937_64 rng(kWgmmaSeed);
  for (const hp::Dtype dtype : {hp::Dtype::f16, hp::Dtype::bf16})
    for (const bool mn_major : {false, true})
      for (const bool a_regs : {false, true})
        for (const int n : {8, 16, 32, 64, 128, 256}) {
          if (mn_major && n < 64) continue;  // an MN-major 128-byte swizzle atom is 64 wide
          INFO((dtype == hp::Dtype::f16 ? "f16" : "bf16") << " n=" << n << (mn_major ? " B MN-major" : " B K-major")
                                                          << (a_regs ? " A in registers" : " A in shared memory"));
          const std::vector<float> a = quarter_values(static_cast<size_t>(kRowsA) * kDepth, rng);
          const std::vector<float> b = quarter_values(static_cast<size_t>(n) * kDepth, rng);
          CHECK(hp::wgmma_matmul(dtype, n, mn_major, a_regs, a, b) == cpu_matmul(a, b, n, mn_major));
        }
}
