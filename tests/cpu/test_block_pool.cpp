// The paged KV cache: the block pool's reference counts, the layout's sharing rule (full blocks
// of a common prefix are one physical block; a partial block never is), the byte counts the CLI
// prints, and the data make_workload() puts in the pools.
#include <algorithm>
#include <cmath>
#include <functional>
#include <map>
#include <numeric>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "../catch.hpp"
#include "../test_util.hpp"
#include "patlab/error.hpp"
#include "patlab/model/kv_cache.hpp"
#include "patlab/parallel.hpp"
#include "patlab/model/workload.hpp"

using namespace patlab;

namespace {


/// The identity of one logical token: (segment, offset in the segment).
using Token = std::pair<int, int64_t>;

/// The logical tokens of request r, in order.
std::vector<Token> tokens_of(const TokenTree& t, int r) {
  std::vector<Token> out;
  for (int s : t.path(r))
    for (int64_t i = 0; i < t.segments[static_cast<size_t>(s)].tokens; ++i) out.emplace_back(s, i);
  return out;
}

/// Checks `layout` against the sharing rule, derived here independently of kv_cache.cpp: two
/// (request, block index) references are one physical block exactly when both blocks are full
/// and hold the same logical tokens. Also checks the counts the layout reports.
void check_sharing_rule(const TokenTree& t, const PagedLayout& L) {
  const int page = L.shape.page_size;
  std::map<std::vector<Token>, int32_t> full_block_id;  // logical content -> physical id
  std::set<int32_t> partial_ids;
  std::vector<int32_t> refs(static_cast<size_t>(L.num_blocks), 0);
  int64_t expected_unique = 0, expected_total = 0;
  REQUIRE(L.num_requests() == t.num_requests());
  for (int r = 0; r < t.num_requests(); ++r) {
    const std::vector<Token> toks = tokens_of(t, r);
    const int64_t len = static_cast<int64_t>(toks.size());
    expected_total += len;
    REQUIRE(L.lengths[static_cast<size_t>(r)] == len);
    const auto& table = L.block_tables[static_cast<size_t>(r)];
    REQUIRE(static_cast<int64_t>(table.size()) == (len + page - 1) / page);
    for (size_t i = 0; i < table.size(); ++i) {
      const int32_t id = table[i];
      REQUIRE(id >= 0);
      REQUIRE(id < L.num_blocks);
      ++refs[static_cast<size_t>(id)];
      const int64_t begin = static_cast<int64_t>(i) * page, end = std::min(begin + page, len);
      if (end - begin == page) {
        std::vector<Token> content(toks.begin() + begin, toks.begin() + end);
        auto it = full_block_id.find(content);
        if (it == full_block_id.end()) {
          CHECK(partial_ids.count(id) == 0);
          for (const auto& kv : full_block_id) CHECK(kv.second != id);  // new content, new block
          full_block_id.emplace(content, id);
          expected_unique += page;
        } else {
          CHECK(it->second == id);  // same content, same block
        }
        CHECK(L.used_tokens[static_cast<size_t>(id)] == page);
      } else {
        // A partial last block belongs to its request alone.
        CHECK(partial_ids.insert(id).second);
        CHECK(L.used_tokens[static_cast<size_t>(id)] == end - begin);
        expected_unique += end - begin;
      }
    }
  }
  CHECK(static_cast<size_t>(L.num_blocks) == full_block_id.size() + partial_ids.size());
  CHECK(L.refcounts == refs);
  for (int32_t id : partial_ids) CHECK(L.refcounts[static_cast<size_t>(id)] == 1);
  CHECK(L.total_tokens() == expected_total);
  CHECK(L.unique_tokens() == expected_unique);
  const int64_t bpt = L.shape.kv_bytes_per_token();
  CHECK(L.total_kv_bytes() == expected_total * bpt);
  CHECK(L.unique_kv_bytes() == expected_unique * bpt);
  CHECK(L.pool_bytes() == int64_t{L.num_blocks} * page * bpt);
  CHECK(L.q_and_out_bytes() == int64_t{2} * t.num_requests() * L.shape.num_q_heads * L.shape.head_dim * 2);
  size_t longest = 0;
  for (const auto& table : L.block_tables) longest = std::max(longest, table.size());
  CHECK(L.max_blocks_per_request() == static_cast<int32_t>(longest));
  // The padded tables the GPU runners upload: row r is request r's table, then -1 to the stride.
  const int32_t stride = L.table_stride();
  CHECK(stride == std::max<int32_t>(1, static_cast<int32_t>(longest)));
  const std::vector<int32_t> padded = L.padded_block_tables();
  REQUIRE(padded.size() == L.block_tables.size() * static_cast<size_t>(stride));
  for (size_t r = 0; r < L.block_tables.size(); ++r)
    for (size_t i = 0; i < static_cast<size_t>(stride); ++i)
      CHECK(padded[r * static_cast<size_t>(stride) + i] ==
            (i < L.block_tables[r].size() ? L.block_tables[r][i] : int32_t{-1}));
}

/// Physical ids in order of first reference.
std::vector<int32_t> first_reference_order(const PagedLayout& L) {
  std::vector<int32_t> order;
  std::set<int32_t> seen;
  for (const auto& table : L.block_tables)
    for (int32_t b : table)
      if (seen.insert(b).second) order.push_back(b);
  return order;
}

}  // namespace

TEST_CASE("BlockPool: ids, reference counts, exhaustion") {
  SECTION("in order: ids 0, 1, 2, ...; a released id is handed out next") {
    BlockPool pool(8, false, 0);
    CHECK(pool.capacity() == 8);
    for (int32_t i = 0; i < 8; ++i) {
      CHECK(pool.allocate() == i);
      CHECK(pool.refcount(i) == 1);
      CHECK(pool.in_use() == i + 1);
    }
    require_error([&] { pool.allocate(); }, "block pool exhausted (8 blocks)");
    pool.retain(3);
    pool.retain(3);
    CHECK(pool.refcount(3) == 3);
    pool.release(3);
    pool.release(3);
    CHECK(pool.refcount(3) == 1);
    CHECK(pool.in_use() == 8);
    pool.release(3);
    CHECK(pool.refcount(3) == 0);
    CHECK(pool.in_use() == 7);
    require_error([&] { pool.release(3); }, "release of free block 3");
    require_error([&] { pool.retain(3); }, "retain of free block 3");
    CHECK(pool.allocate() == 3);
    CHECK(pool.in_use() == 8);
  }
  SECTION("shuffled: a permutation of the ids, fixed by the seed") {
    auto drain = [](uint64_t seed) {
      BlockPool pool(64, true, seed);
      std::vector<int32_t> ids;
      for (int i = 0; i < 64; ++i) ids.push_back(pool.allocate());
      return ids;
    };
    const std::vector<int32_t> a = drain(7), b = drain(7), c = drain(8);
    std::vector<int32_t> sorted = a, in_order(64);
    std::sort(sorted.begin(), sorted.end());
    std::iota(in_order.begin(), in_order.end(), 0);
    CHECK(sorted == in_order);
    CHECK(a != in_order);
    CHECK(a == b);
    CHECK(a != c);
  }
  SECTION("empty and negative capacities") {
    BlockPool empty(0, true, 1);
    CHECK(empty.in_use() == 0);
    require_error([&] { empty.allocate(); }, "block pool exhausted (0 blocks)");
    require_error([] { BlockPool bad(-1, false, 0); }, "block pool capacity must be >= 0");
  }
}

// [tiny layout]
TEST_CASE("build_layout: the tiny preset, counted by hand") {
  // 1,4_100,37 with page 16: a request has 137 tokens = 9 blocks. The prefix fills 6 blocks
  // (96 tokens); block 6 holds prefix tokens 96..99 *and* own tokens, so it is private.
  const PagedLayout L = build_layout(parse_tree_spec("1,4_100,37"), shape_of(8, 2, 64, 16), false, 1);
  REQUIRE(L.num_blocks == 6 + 4 * 3);
  for (int r = 0; r < 4; ++r) {
    const auto& table = L.block_tables[static_cast<size_t>(r)];
    REQUIRE(table.size() == 9);
    for (int i = 0; i < 6; ++i) CHECK(table[static_cast<size_t>(i)] == i);  // in order: shared first
    for (int i = 6; i < 9; ++i) CHECK(L.refcounts[static_cast<size_t>(table[static_cast<size_t>(i)])] == 1);
    CHECK(L.used_tokens[static_cast<size_t>(table[8])] == 137 - 128);
  }
  for (int i = 0; i < 6; ++i) CHECK(L.refcounts[static_cast<size_t>(i)] == 4);
  CHECK(L.total_tokens() == 4 * 137);
  CHECK(L.unique_tokens() == 96 + 4 * (137 - 96));
  CHECK(L.total_kv_bytes() == 4 * 137 * 2 * 2 * 64 * 2);
  check_sharing_rule(parse_tree_spec("1,4_100,37"), L);
}
// [tiny layout]

TEST_CASE("build_layout: shared full blocks counted once, partial blocks never shared") {
  SECTION("a page-aligned prefix: all of it is shared") {
    const TokenTree t = parse_tree_spec("1,4_96,37");
    const PagedLayout L = build_layout(t, shape_of(8, 2, 64, 16), false, 1);
    CHECK(L.num_blocks == 6 + 4 * 3);
    CHECK(std::count(L.refcounts.begin(), L.refcounts.end(), 4) == 6);
    check_sharing_rule(t, L);
  }
  SECTION("two identical requests share their full blocks, not the partial last one") {
    const TokenTree t = parse_workload_json(R"({"segments": {"a": 40}, "requests": ["a", "a"]})", "x");
    const PagedLayout L = build_layout(t, shape_of(8, 2, 64, 16), false, 1);
    CHECK(L.num_blocks == 4);
    CHECK(L.refcounts == std::vector<int32_t>{2, 2, 1, 1});
    CHECK(L.block_tables[0][2] != L.block_tables[1][2]);
    check_sharing_rule(t, L);
  }
  SECTION("a request that ends inside another's prefix") {
    const TokenTree t = parse_workload_json(R"({"segments": {"a": 40, "b": 9}, "requests": ["a", "a+b"]})", "x");
    const PagedLayout L = build_layout(t, shape_of(8, 2, 64, 16), false, 1);
    // Blocks 0, 1 shared; "a" ends in a partial block 2; "a+b" has its own full block 2
    // (a's last 8 tokens and b's first 8) and a partial block 3.
    CHECK(L.num_blocks == 5);
    CHECK(L.refcounts[static_cast<size_t>(L.block_tables[1][1])] == 2);
    CHECK(L.refcounts[static_cast<size_t>(L.block_tables[1][2])] == 1);
    check_sharing_rule(t, L);
  }
  SECTION("the sysprompt preset: 256 blocks read by all 64 requests") {
    const Preset p = find_preset("sysprompt");
    const PagedLayout L = build_layout(preset_tree(p), p.shape, true, 1);
    CHECK(std::count(L.refcounts.begin(), L.refcounts.end(), 64) == 4096 / 16);
    CHECK(L.unique_tokens() == 4096 + 64 * 256);
    CHECK(L.total_tokens() == 64 * (4096 + 256));
    CHECK(L.total_kv_bytes() == int64_t{64} * 4352 * 4096);  // 4096 bytes of K+V per token
    check_sharing_rule(preset_tree(p), L);
  }
  SECTION("many trees, pages and shuffles") {
    std::vector<TokenTree> trees = {parse_tree_spec("1,4_100,37"), parse_tree_spec("2,6,12_33,16,1"),
                                    parse_tree_spec("1,2,4_64,64,64"), parse_tree_spec("5_17"),
                                    preset_tree(find_preset("asymmetric"))};
    RandomTreeOptions small;
    small.requests = 12;
    small.max_segment = 90;
    for (uint64_t seed = 1; seed <= 10; ++seed) trees.push_back(random_tree(seed, small));
    for (const TokenTree& t : trees)
      for (int page : kSupportedPageSizes)
        for (bool shuffle : {false, true}) {
          CAPTURE(t.description, page, shuffle);
          check_sharing_rule(t, build_layout(t, shape_of(16, 8, 128, page), shuffle, 3));
        }
  }
}

TEST_CASE("build_layout: shuffled ids are a relabelling of the in-order layout") {
  const TokenTree t = parse_tree_spec("2,8_70,45");
  const Shape s = shape_of(8, 2, 64, 16);
  const PagedLayout in_order = build_layout(t, s, false, 5);
  const PagedLayout shuffled = build_layout(t, s, true, 5);
  const PagedLayout again = build_layout(t, s, true, 5);
  const PagedLayout other = build_layout(t, s, true, 6);
  REQUIRE(shuffled.num_blocks == in_order.num_blocks);
  // In order, blocks are first referenced as 0, 1, 2, ...; shuffled, as a permutation of that.
  std::vector<int32_t> identity(static_cast<size_t>(in_order.num_blocks));
  std::iota(identity.begin(), identity.end(), 0);
  CHECK(first_reference_order(in_order) == identity);
  std::vector<int32_t> perm = first_reference_order(shuffled);
  CHECK(perm != identity);
  std::vector<int32_t> sorted = perm;
  std::sort(sorted.begin(), sorted.end());
  CHECK(sorted == identity);
  // The relabelling in_order id -> shuffled id is one consistent bijection over all tables.
  std::map<int32_t, int32_t> relabel;
  for (int r = 0; r < t.num_requests(); ++r)
    for (size_t i = 0; i < in_order.block_tables[static_cast<size_t>(r)].size(); ++i) {
      const int32_t a = in_order.block_tables[static_cast<size_t>(r)][i];
      const int32_t b = shuffled.block_tables[static_cast<size_t>(r)][i];
      auto it = relabel.emplace(a, b).first;
      CHECK(it->second == b);
      CHECK(shuffled.refcounts[static_cast<size_t>(b)] == in_order.refcounts[static_cast<size_t>(a)]);
      CHECK(shuffled.used_tokens[static_cast<size_t>(b)] == in_order.used_tokens[static_cast<size_t>(a)]);
    }
  CHECK(relabel.size() == static_cast<size_t>(in_order.num_blocks));
  CHECK(shuffled.block_tables == again.block_tables);
  CHECK(shuffled.block_tables != other.block_tables);
  CHECK(shuffled.unique_tokens() == in_order.unique_tokens());
}

TEST_CASE("build_layout refuses bad shapes and layouts too large for memory") {
  require_error([] { build_layout(parse_tree_spec("1,4_100,37"), shape_of(8, 2, 64, 24), false, 1); },
                "unsupported page size 24");
  require_error([] { build_layout(TokenTree{}, shape_of(8, 2, 64, 16), false, 1); }, "no requests");
  // 16 requests of 16M tokens: within the token limits, but 256M unique tokens of K/V (1 TB at
  // 32/8 heads, d=128). Refused before anything is built.
  require_error([] { make_workload(parse_tree_spec("16_16000000"), Shape{}, 1, true); },
                "workload too large for host memory");
  // A tree made by hand is held to the same limits by build_layout (through TokenTree::validate).
  TokenTree huge;
  for (int r = 0; r < 4096; ++r) {
    huge.segments.push_back({"r" + std::to_string(r), 16000000, -1});
    huge.request_ends.push_back(r);
  }
  require_error([&] { build_layout(huge, Shape{}, false, 1); }, "tokens in all (at most 268435456)");
}

TEST_CASE("make_workload: data follows logical tokens, not physical ids") {
  const uint64_t seed = 11;
  INFO("seed " << seed);
  for (DType dtype : {DType::fp16, DType::bf16}) {
    CAPTURE(dtype_name(dtype));
    const TokenTree t = parse_tree_spec("1,3_50,21");
    const Shape s = shape_of(8, 2, 64, 16, dtype);
    const Workload a = make_workload(t, s, seed, true);
    const Workload b = make_workload(t, s, seed, false);
    const Workload c = make_workload(t, s, seed + 1, true);
    REQUIRE(a.layout.block_tables != b.layout.block_tables);
    const size_t block_elems = static_cast<size_t>(16) * 2 * 64;
    CHECK(a.kv_elements() == block_elems * static_cast<size_t>(a.layout.num_blocks));
    CHECK(a.k_pool.size() == a.kv_elements() * 2);  // 16-bit elements
    CHECK(a.v_pool.size() == a.k_pool.size());
    CHECK(a.q.size() == static_cast<size_t>(3 * 8 * 64));
    CHECK(a.q == b.q);
    CHECK(a.q != c.q);
    bool differs_from_other_seed = false;
    for (int r = 0; r < a.num_requests(); ++r)
      for (int64_t tok = 0; tok < a.layout.lengths[static_cast<size_t>(r)]; ++tok)
        for (int h = 0; h < 2; ++h) {
          const size_t oa = a.token_offset(r, tok, h), ob = b.token_offset(r, tok, h);
          // token_offset is the vLLM address: (block * page + offset) * Hkv + head, times d.
          const int32_t block = a.layout.block_tables[static_cast<size_t>(r)][static_cast<size_t>(tok / 16)];
          REQUIRE(oa == ((static_cast<size_t>(block) * 16 + static_cast<size_t>(tok % 16)) * 2 + h) * 64);
          for (size_t i = 0; i < 64; ++i) {
            REQUIRE(a.kv_code(KvTensor::k, oa + i) == b.kv_code(KvTensor::k, ob + i));
            REQUIRE(a.kv_code(KvTensor::v, oa + i) == b.kv_code(KvTensor::v, ob + i));
            REQUIRE(std::isfinite(a.kv_value(KvTensor::k, oa + i)));
          }
          differs_from_other_seed = differs_from_other_seed ||
                                    a.kv_code(KvTensor::k, oa) != c.kv_code(KvTensor::k, c.token_offset(r, tok, h));
        }
    CHECK(differs_from_other_seed);
    // Shared tokens read the same values through every request's table.
    CHECK(a.token_offset(0, 40, 1) == a.token_offset(2, 40, 1));
    CHECK(a.token_offset(0, 60, 1) != a.token_offset(2, 60, 1));
  }
}

TEST_CASE("make_workload: N(0,1) values, NaN past each request's end") {
  const uint64_t seed = 3;
  INFO("seed " << seed);
  const Workload w = make_workload(parse_tree_spec("1,4_100,37"), shape_of(8, 2, 64, 16), seed, true);
  const Shape& s = w.shape();
  const size_t row = static_cast<size_t>(s.num_kv_heads) * s.head_dim;
  int64_t nan_slots = 0;
  double sum = 0, sum2 = 0;
  int64_t n = 0;
  for (int32_t b = 0; b < w.layout.num_blocks; ++b) {
    const int used = w.layout.used_tokens[static_cast<size_t>(b)];
    for (int off = 0; off < s.page_size; ++off)
      for (size_t i = 0; i < row; ++i) {
        const size_t at = w.kv_offset(b, off, 0) + i;
        const double k = w.kv_value(KvTensor::k, at), v = w.kv_value(KvTensor::v, at);
        if (off < used) {
          REQUIRE(std::isfinite(k));
          REQUIRE(std::isfinite(v));
          sum += k + v;
          sum2 += k * k + v * v;
          n += 2;
        } else {
          REQUIRE(std::isnan(k));
          REQUIRE(std::isnan(v));
          ++nan_slots;
        }
      }
  }
  // Each request's last block holds 137 - 128 = 9 tokens: 7 empty slots per request.
  CHECK(nan_slots == int64_t{4} * 7 * static_cast<int64_t>(row));
  const double mean = sum / static_cast<double>(n), var = sum2 / static_cast<double>(n) - mean * mean;
  CAPTURE(n, mean, var);
  CHECK(std::fabs(mean) < 0.02);
  CHECK(std::fabs(var - 1.0) < 0.05);
  // The host-memory estimate, part by part (4 requests of 137 tokens, 8/2 heads, d = 64).
  const int64_t rows = int64_t{4} * 8, d = 64;
  for (int threads : {1, 2, 64}) {
    CAPTURE(threads);
    const HostMemory m = host_memory(w.layout, threads);
    CHECK(m.data == w.layout.pool_bytes() + rows * d * 2);
    CHECK(m.results == 3 * rows * (d + 1) * 8);  // oracle, emulation, packed oracle; o and lse
    CHECK(m.partials == int64_t{4} * 3 * 8 * (d + 1) * 8);  // 9 blocks per request: 3 chunks of 4 pages
    const int64_t used_threads = std::min<int64_t>(threads, 4 * 2);  // one task per (request, KV head)
    CHECK(m.working == used_threads * 137 * (2 * d * (8 + 4) + 16));
    CHECK(m.tables > 0);
    CHECK(m.total() == m.data + m.tables + m.results + m.partials + m.working);
  }
  CHECK(host_bytes_needed(w.layout) == host_memory(w.layout, worker_threads()).total());
}

namespace {

/// The key of token `tok` of request `r` at KV head `h` as floats (Workload::kv_values).
std::vector<double> key_of(const Workload& w, int r, int64_t tok, int h) {
  std::vector<double> k(static_cast<size_t>(w.shape().head_dim));
  w.kv_values(KvTensor::k, w.token_offset(r, tok, h), w.shape().head_dim, k.data());
  return k;
}

double cosine(const std::vector<double>& a, const std::vector<double>& b) {
  double ab = 0, aa = 0, bb = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    ab += a[i] * b[i];
    aa += a[i] * a[i];
    bb += b[i] * b[i];
  }
  return ab / std::sqrt(aa * bb);
}

}  // namespace

TEST_CASE("make_workload clustered: kv_cache.hpp's model on logical tokens, shared like the other kinds") {
  const uint64_t seed = 13;
  INFO("seed " << seed);
  // The rounding of k_clustered and k_flat to fp16 (|k| <= ~5, relative 2^-11), carried into the
  // recovered centre (k_clustered - sqrt(1 - rho) k_flat) / sqrt(rho), twice.
  constexpr double kCentreTolerance = 0.02;
  const double shared = std::sqrt(kClusterShare), own = std::sqrt(1.0 - kClusterShare);
  // Prefixes of 48 tokens (a run straddles the last shared page and the first private one at
  // page 16), 50 (a prefix page copied per request) and two prefixes of 100.
  for (const char* spec : {"1,3_48,40", "1,3_50,21", "2,6_100,45"})
    for (int page : {16, 32, 64}) {
      CAPTURE(spec, page);
      const TokenTree t = parse_tree_spec(spec);
      const Shape s = shape_of(8, 2, 64, page);
      const Workload cl = make_workload(t, s, seed, true, DataKind::clustered);
      const Workload again = make_workload(t, s, seed, false, DataKind::clustered);
      const Workload fl = make_workload(t, s, seed, true, DataKind::flat);
      const Workload pk = make_workload(t, s, seed, true, DataKind::peaked);
      CHECK(cl.q == pk.q);  // q ~ N(0, kClusteredQueryScale^2) from peaked's stream
      REQUIRE(cl.layout.block_tables == fl.layout.block_tables);
      int64_t runs = 0;
      double across = 0;
      for (int r = 0; r < cl.num_requests(); ++r)
        for (int h = 0; h < s.num_kv_heads; ++h) {
          std::vector<double> centre, previous;
          for (int64_t tok = 0; tok < cl.layout.lengths[static_cast<size_t>(r)]; ++tok) {
            const size_t at = cl.token_offset(r, tok, h), at2 = again.token_offset(r, tok, h);
            const std::vector<double> k = key_of(cl, r, tok, h), z = key_of(fl, r, tok, h);
            std::vector<double> c(k.size());
            for (size_t i = 0; i < k.size(); ++i) {
              // Deterministic and independent of the shuffle; V is flat's V.
              REQUIRE(cl.kv_code(KvTensor::k, at + i) == again.kv_code(KvTensor::k, at2 + i));
              REQUIRE(cl.kv_code(KvTensor::v, at + i) == fl.kv_code(KvTensor::v, at + i));
              c[i] = (k[i] - own * z[i]) / shared;
            }
            if (tok % kClusterTokens == 0) {
              if (!centre.empty()) previous = centre;
              centre = c;
              ++runs;
              if (!previous.empty()) {
                double gap = 0;
                for (size_t i = 0; i < c.size(); ++i) gap = std::max(gap, std::fabs(c[i] - previous[i]));
                across += gap;
              }
            } else {
              for (size_t i = 0; i < c.size(); ++i) REQUIRE(std::fabs(c[i] - centre[i]) < kCentreTolerance);
            }
          }
        }
      // Consecutive runs have centres of their own (the largest of 64 differences of N(0, 2)
      // draws is about 3.5).
      CHECK(across / static_cast<double>(runs - cl.num_requests() * s.num_kv_heads) > 1.0);
      // Shared exactly like flat: two requests' prefix tokens hold equal keys iff flat's do.
      for (int a = 0; a < cl.num_requests(); ++a)
        for (int b = a + 1; b < cl.num_requests(); ++b)
          for (int64_t tok = 0; tok < std::min(cl.layout.lengths[static_cast<size_t>(a)],
                                               cl.layout.lengths[static_cast<size_t>(b)]);
               ++tok) {
            const bool same_cl = key_of(cl, a, tok, 1) == key_of(cl, b, tok, 1);
            const bool same_fl = key_of(fl, a, tok, 1) == key_of(fl, b, tok, 1);
            REQUIRE(same_cl == same_fl);
          }
    }
}

TEST_CASE("make_workload clustered: keys of one run are correlated rho, of different runs not") {
  const uint64_t seed = 17;
  INFO("seed " << seed);
  const TokenTree t = parse_tree_spec("4_2048");
  const Shape s = shape_of(8, 2, 64, 16);
  // Means over 4 x 2 x 64 runs of 31 pairs (within) and 63 pairs (across): their noise is about
  // 0.01, so 0.1 is loose, and a centre per page (16 tokens) would halve the within-run mean.
  constexpr double kBound = 0.1;
  for (DataKind data : {DataKind::clustered, DataKind::flat}) {
    CAPTURE(data_kind_name(data));
    const Workload w = make_workload(t, s, seed, true, data);
    double within = 0, across = 0, sum = 0, sum2 = 0;
    int64_t n_within = 0, n_across = 0, n = 0;
    for (int r = 0; r < w.num_requests(); ++r)
      for (int h = 0; h < s.num_kv_heads; ++h)
        for (int64_t start = 0; start + kClusterTokens < 2048; start += kClusterTokens) {
          const std::vector<double> first = key_of(w, r, start, h);
          for (int64_t j = 1; j < kClusterTokens; ++j) {
            const std::vector<double> k = key_of(w, r, start + j, h);
            within += cosine(first, k);
            ++n_within;
            for (double x : k) {
              sum += x;
              sum2 += x * x;
              ++n;
            }
          }
          for (int64_t j = kClusterTokens; j < 2 * kClusterTokens; ++j) {
            across += cosine(first, key_of(w, r, start + j, h));
            ++n_across;
          }
        }
    within /= static_cast<double>(n_within);
    across /= static_cast<double>(n_across);
    const double mean = sum / static_cast<double>(n), var = sum2 / static_cast<double>(n) - mean * mean;
    CAPTURE(within, across, mean, var);
    CHECK(std::fabs(across) < kBound);
    CHECK(std::fabs(mean) < kBound);
    CHECK(std::fabs(var - 1.0) < kBound);  // each element N(0, 1) in every kind
    if (data == DataKind::clustered)
      CHECK(std::fabs(within - kClusterShare) < kBound);
    else
      CHECK(std::fabs(within) < kBound);
  }
}

TEST_CASE("make_workload mixed: clustered's K and V, q scaled by its KV head's kind drawn from the seed") {
  // The spread heads: round(share x Hkv) of them, DuoAttention's share (a half of the KV heads
  // with grouped queries, a quarter with MHA), the same for the same seed, and which ones moves
  // with the seed.
  CHECK(mixed_spread_share(1) == 0.25);
  for (int group : {2, 4, 7}) CHECK(mixed_spread_share(group) == 0.5);
  for (int group : {1, 4})
    for (int hkv : {1, 2, 4, 8, 32}) {
      CAPTURE(group, hkv);
      const size_t want = group == 1 ? static_cast<size_t>(std::llround(0.25 * hkv))
                                     : static_cast<size_t>(std::llround(0.5 * hkv));
      std::set<std::vector<bool>> patterns;
      for (uint64_t seed = 1; seed <= 20; ++seed) {
        const std::vector<bool> spread = mixed_spread_heads(seed, hkv, group);
        REQUIRE(spread.size() == static_cast<size_t>(hkv));
        CHECK(static_cast<size_t>(std::count(spread.begin(), spread.end(), true)) == want);
        CHECK(spread == mixed_spread_heads(seed, hkv, group));
        patterns.insert(spread);
      }
      if (want > 0 && want < static_cast<size_t>(hkv)) CHECK(patterns.size() > 1);
    }
  const uint64_t seed = 5;
  INFO("seed " << seed);
  const TokenTree t = parse_tree_spec("1,3_100,45");
  const Shape s = shape_of(8, 4, 64, 16);  // group 2
  const Workload mx = make_workload(t, s, seed, true, DataKind::mixed);
  const Workload cl = make_workload(t, s, seed, true, DataKind::clustered);
  const Workload again = make_workload(t, s, seed, false, DataKind::mixed);
  CHECK(mx.k_pool == cl.k_pool);  // the same blocks in the same order: the same bytes
  CHECK(mx.v_pool == cl.v_pool);
  CHECK(mx.q == again.q);
  const std::vector<bool> spread = mixed_spread_heads(seed, s.num_kv_heads, s.group());
  for (int r = 0; r < mx.num_requests(); ++r)
    for (int h = 0; h < s.num_q_heads; ++h) {
      const bool is_spread = spread[static_cast<size_t>(h / s.group())];
      CAPTURE(r, h, is_spread);
      for (int i = 0; i < s.head_dim; ++i) {
        const size_t at = mx.q_offset(r, h) + static_cast<size_t>(i);
        const float m = to_float(mx.q[at], s.dtype), c = to_float(cl.q[at], s.dtype);
        // The same unit draw: times kClusteredQueryScale = 4 (clustered's value exactly) or
        // times kMixedSpreadQueryScale = 2 (half of it: scaling by 2 commutes with fp16 rounding,
        // except below fp16's normal range, where the two roundings may differ by one step, 2^-24).
        const float want = is_spread ? c * (kMixedSpreadQueryScale / kClusteredQueryScale) : c;
        REQUIRE(std::fabs(m - want) <= std::ldexp(1.0f, -24));
      }
    }
}

TEST_CASE("streaming data: retrieval heads are clustered data, streaming heads' sink and recent keys are lifted") {
  const uint64_t seed = 5;
  INFO("seed " << seed);
  const TokenTree t = parse_tree_spec("1,3_100,300");  // 400 tokens: sinks 0-63, recent 144-399
  const Shape s = shape_of(8, 4, 64, 16);               // group 2
  const Workload st = make_workload(t, s, seed, false, DataKind::streaming);
  const Workload cl = make_workload(t, s, seed, false, DataKind::clustered);
  const std::vector<bool> retrieval = mixed_spread_heads(seed, s.num_kv_heads, s.group());
  const std::vector<float> u = streaming_directions(seed, s.num_kv_heads, s.head_dim, s.group());
  REQUIRE(u.size() == static_cast<size_t>(s.num_kv_heads) * s.head_dim);
  for (int h = 0; h < s.num_kv_heads; ++h) {
    double norm = 0;
    for (int i = 0; i < s.head_dim; ++i) {
      const double x = u[static_cast<size_t>(h) * s.head_dim + i];
      norm += x * x;
    }
    CAPTURE(h);
    CHECK(std::fabs(norm - (retrieval[static_cast<size_t>(h)] ? 0.0 : 1.0)) < 1e-5);  // u, or none
  }
  CHECK(st.v_pool == cl.v_pool);
  const int64_t len = st.layout.lengths[0];
  REQUIRE(len == 400);
  for (int64_t tok = 0; tok < len; ++tok) {
    const bool lifted = tok < kSinkTokens || tok >= len - kRecentTokens;
    for (int h = 0; h < s.num_kv_heads; ++h) {
      const bool streaming = !retrieval[static_cast<size_t>(h)];
      // a retrieval head's key is clustered's, bit for bit; a streaming head's projection on u
      // moves by kSinkLift exactly where the model lifts it
      double moved = 0;
      bool same = true;
      for (int i = 0; i < s.head_dim; ++i) {
        const size_t at = st.token_offset(0, tok, h) + static_cast<size_t>(i);
        const double lift = st.kv_value(KvTensor::k, at) - cl.kv_value(KvTensor::k, at);
        moved += lift * u[static_cast<size_t>(h) * s.head_dim + i];
        same = same && st.kv_code(KvTensor::k, at) == cl.kv_code(KvTensor::k, at);
      }
      CAPTURE(tok, h, streaming, lifted);
      if (streaming)
        CHECK(std::fabs(moved - (lifted ? kSinkLift : 0.0)) < 0.05);
      else
        CHECK(same);
    }
  }
  for (int r = 0; r < st.num_requests(); ++r)
    for (int h = 0; h < s.num_q_heads; ++h) {
      const int kv = h / s.group();
      double along = 0;  // q's projection on u: about sqrt(d) at a streaming head
      bool same = true;
      for (int i = 0; i < s.head_dim; ++i) {
        const size_t at = st.q_offset(r, h) + static_cast<size_t>(i);
        along += to_float(st.q[at], s.dtype) * u[static_cast<size_t>(kv) * s.head_dim + i];
        same = same && st.q[at] == cl.q[at];
      }
      CAPTURE(r, h, along);
      if (retrieval[static_cast<size_t>(kv)])
        CHECK(same);  // clustered's q, bit for bit
      else
        CHECK(std::fabs(along - std::sqrt(static_cast<double>(s.head_dim))) < 4.0);
    }
}
