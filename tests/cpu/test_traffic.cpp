// The traffic (byte) model: the per-element formulas against hand counts, the strategies on
// hand-built plans, stage 3's chunk rule, and the bytes of every GPU stage of the registry.
#include <algorithm>
#include <cstdint>
#include <numeric>
#include <random>
#include <vector>

#include "../catch.hpp"
#include "../test_util.hpp"
#include "patlab/model/kv_cache.hpp"
#include "patlab/model/traffic.hpp"
#include "patlab/planner/chunk_split.hpp"
#include "patlab/planner/planner.hpp"
#include "patlab/planner/stage_traffic.hpp"
#include "patlab/stages.hpp"

using namespace patlab;

namespace {

/// Seed of the random batches of the chunk-rule property test.
constexpr uint64_t kChunkSeed = 20261201;
/// Random batches the chunk rule is checked on.
constexpr int kChunkBatches = 2000;

/// A pack over tokens [begin, begin + len) for `queries` (blocks and tile do not count bytes).
Pack pack_of(std::vector<int32_t> queries, int32_t begin, int32_t len) {
  Pack p;
  p.queries = std::move(queries);
  p.token_begin = begin;
  p.kv_len = len;
  return p;
}

/// CTAs that chunks of `chunk` tokens give (the rule's own count, written out again).
int64_t ctas_of(const std::vector<int32_t>& lengths, int hkv, int64_t chunk) {
  int64_t n = 0;
  for (int32_t len : lengths) n += (len + chunk - 1) / chunk;
  return n * hkv;
}

}  // namespace

TEST_CASE("traffic: the per-element bytes, counted by hand") {
  // Llama 3 8B attention: 32 query heads, 8 KV heads, d = 128, fp16/bf16 storage.
  CHECK(traffic::kv_bytes_per_token(8, 128) == 4096);      // K and V, 8 heads x 128 x 2 bytes each
  CHECK(traffic::query_bytes(32, 128) == 8192);            // 32 heads x 128 x 2 bytes
  CHECK(traffic::partial_bytes(32, 128) == 16512);         // 32 heads x (128 x 4 + 4) bytes
  CHECK(traffic::partials_round_trip_bytes(32, 128, 3) == 3 * 2 * 16512);
  // --half-partials: o in 16 bits, the lse still fp32: 32 heads x (128 x 2 + 4) bytes
  CHECK(traffic::partial_bytes(32, 128, traffic::kHalfPartialOutElemBytes) == 8320);
  CHECK(traffic::partials_round_trip_bytes(32, 128, 3, traffic::kHalfPartialOutElemBytes) == 3 * 2 * 8320);
  CHECK(traffic::extra_partial_bytes(32, 128) == 8192 + 2 * 16512);
  CHECK(traffic::extra_partial_bytes(64, 128) == 64 * 1288);  // chapter 02's large-group example
  CHECK(traffic::q_and_out_bytes(32, 128, 3) == 2 * 3 * 8192);
  CHECK(traffic::predicted_us(4'000'000, 4000.0) == 1.0);  // 4 MB at 4 TB/s: 1 us (exact in binary)
  CHECK(traffic::predicted_us(6'000'000, 4000.0) == 1.5);
}

TEST_CASE("traffic: the shape, the layout and the planner's cost model use the same formulas") {
  const Shape s = shape_of(32, 8, 128, 16);
  CHECK(s.kv_bytes_per_token() == traffic::kv_bytes_per_token(8, 128));
  // 3 requests of 52 tokens sharing a 32-token prefix (two whole blocks).
  const PagedLayout L = build_layout(parse_tree_spec("1,3_32,20"), s, false, 1);
  CHECK(L.q_and_out_bytes() == traffic::q_and_out_bytes(32, 128, 3));
  CHECK(L.total_kv_bytes() == 3 * 52 * 4096);
  CHECK(L.unique_kv_bytes() == (32 + 3 * 20) * 4096);
  const CostModel m = CostModel::of(s);
  CHECK(m.kv_bytes_per_token == 4096);
  CHECK(m.extra_partial_bytes == traffic::extra_partial_bytes(32, 128));
  CHECK(traffic::per_request_bytes(L) == 3 * 52 * 4096 + 2 * 3 * 8192);
  CHECK(traffic::per_query_head_bytes(L) == 4 * 3 * 52 * 4096 + 2 * 3 * 8192);  // group 4
  CHECK(traffic::unique_bytes(L) == 92 * 4096 + 2 * 3 * 8192);
  CHECK(traffic::chunked_bytes(L, 0) == traffic::per_request_bytes(L));
  CHECK(traffic::chunked_bytes(L, 5) == traffic::per_request_bytes(L) + 5 * 2 * 16512);
}

TEST_CASE("traffic: a plan's bytes, counted by hand") {
  const Shape s = shape_of(32, 8, 128, 16);
  // Two requests of 48 tokens sharing the first 32 (two blocks).
  const PagedLayout L = build_layout(parse_tree_spec("1,2_32,16"), s, false, 1);
  REQUIRE(L.num_requests() == 2);
  Plan plan;
  plan.packs = {pack_of({0, 1}, 0, 32), pack_of({0}, 32, 16), pack_of({1}, 32, 16)};
  plan.partials = {2, 2};
  const int64_t kv = (32 + 16 + 16) * 4096;
  const int64_t q = (2 + 1 + 1) * 8192;     // q gathered by every pack of every query
  const int64_t partials = 4 * 2 * 16512;   // four partials written and read back
  const int64_t out = 2 * 8192;             // the output, once per request
  CHECK(traffic::plan_bytes(L, plan, false) == kv + q + partials + out);
  CHECK(traffic::plan_bytes(L, plan, true) == kv + q + partials + out);  // no query has a single pack
  // 16-bit partials (--half-partials): each of the four round trips moves 32 x (128 x 2 + 4) bytes
  CHECK(traffic::plan_bytes(L, plan, true, traffic::kHalfPartialOutElemBytes) == kv + q + 4 * 2 * 8320 + out);
  SECTION("a query with a single pack writes its output directly only with direct output") {
    Plan whole;
    whole.packs = {pack_of({0}, 0, 48), pack_of({1}, 0, 48)};
    whole.partials = {1, 1};
    const int64_t base = 2 * 48 * 4096 + 2 * 8192 + out;
    CHECK(traffic::plan_bytes(L, whole, true) == base);
    CHECK(traffic::plan_bytes(L, whole, false) == base + 2 * 2 * 16512);
  }
  SECTION("traffic_model's packed bytes are the plan's with direct output") {
    const Plan made = make_plan(L, PlannerOptions{});
    CHECK(traffic_model(L, made).packed == traffic::plan_bytes(L, made, true));
    CHECK(traffic_model(L, made).per_request == traffic::per_request_bytes(L));
    CHECK(traffic_model(L, made).per_query_head == traffic::per_query_head_bytes(L));
    CHECK(traffic_model(L, made).unique == traffic::unique_bytes(L));
  }
}

TEST_CASE("chunk rule (stage 3): hand-worked cases") {
  SECTION("requests x Hkv fill the slots: no split") {
    CHECK(chunk_tokens({1000, 1000, 1000, 1000}, 8, 16, 32) == kNoSplitChunk);
    CHECK(chunk_tokens({1000, 1000, 1000, 1000}, 8, 16, 33) != kNoSplitChunk);
  }
  SECTION("4 x 8192 tokens, 8 KV heads, 264 slots: 1024-token chunks, 256 CTAs") {
    // Even share: ceil(32768 x 8 / 264) = 993 -> 1008 (page 16); 8192 / 1008 -> 9 chunks a
    // request, 288 CTAs > 264; the smallest page multiple with at most 8 chunks is 1024.
    const std::vector<int32_t> lengths(4, 8192);
    CHECK(chunk_tokens(lengths, 8, 16, 264) == 1024);
    CHECK(chunk_count(lengths, 1024) == 32);
  }
  SECTION("chapter 12's worked cases: 4_32768 and 16_8192, 8 KV heads, 264 slots: 4096-token chunks") {
    const std::vector<int32_t> four(4, 32768), sixteen(16, 8192);
    CHECK(chunk_tokens(four, 8, 16, 264) == 4096);
    CHECK(chunk_count(four, 4096) * 8 == 256);
    CHECK(chunk_tokens(sixteen, 8, 16, 264) == 4096);
    CHECK(chunk_count(sixteen, 4096) * 8 == 256);
  }
  SECTION("a short request: never below kMinChunkTokens") {
    CHECK(chunk_tokens({300}, 1, 16, 264) == kMinChunkTokens);
    CHECK(chunk_count({300}, kMinChunkTokens) == 2);
  }
  SECTION("bad input") {
    require_error([] { chunk_tokens({}, 8, 16, 264); }, "no requests");
    require_error([] { chunk_tokens({16, 0}, 8, 16, 264); }, "0 tokens");
    require_error([] { chunk_tokens({16}, 8, 0, 264); }, "must be >= 1");
    require_error([] { chunk_tokens({16}, 8, 16, 0); }, "must be >= 1");
  }
}

TEST_CASE("chunk rule (stage 3): one wave, and the shortest such page multiple") {
  std::mt19937_64 rng(kChunkSeed);
  INFO("seed " << kChunkSeed);
  for (int b = 0; b < kChunkBatches; ++b) {
    const int page = 16 << (rng() % 3);
    const int hkv = 1 << (rng() % 4);
    const int64_t slots = 8 + static_cast<int64_t>(rng() % 600);
    std::vector<int32_t> lengths(1 + rng() % 12);
    for (int32_t& len : lengths) len = 1 + static_cast<int32_t>(rng() % 20000);
    const int64_t chunk = chunk_tokens(lengths, hkv, page, slots);
    INFO("batch " << b << ": " << lengths.size() << " requests, Hkv " << hkv << ", page " << page << ", slots " << slots);
    if (static_cast<int64_t>(lengths.size()) * hkv >= slots) {
      CHECK(chunk == kNoSplitChunk);
      continue;
    }
    const int64_t total = std::accumulate(lengths.begin(), lengths.end(), int64_t{0});
    const int64_t even = (total * hkv + slots - 1) / slots;
    const int64_t first = std::max<int64_t>(kMinChunkTokens, (even + page - 1) / page * page);
    CHECK(chunk % page == 0);
    CHECK(chunk >= first);
    CHECK(ctas_of(lengths, hkv, chunk) <= slots);                               // one wave
    if (chunk > first) CHECK(ctas_of(lengths, hkv, chunk - page) > slots);     // and no shorter page multiple
  }
}

TEST_CASE("stage bytes: every GPU stage of the registry has a byte model") {
  const PagedLayout L = build_layout(parse_tree_spec("1,16_4096,256"), shape_of(32, 8, 128, 16), true, 1);
  const StageTrafficOptions o;
  for (const StageInfo& s : gpu_stages()) {
    INFO("stage " << s.slug);
    const StageTraffic t = stage_traffic(s.slug, L, o);
    CHECK(t.bytes >= traffic::unique_bytes(L));
    CHECK(!t.notes.empty());
  }
  CHECK(stage_traffic("naive", L, o).bytes == traffic::per_query_head_bytes(L));
  CHECK(stage_traffic("gqa", L, o).bytes == traffic::per_request_bytes(L));
  // 16 requests x 8 KV heads = 128 CTAs < 264 slots: stage 3 splits, and pays the partials.
  const int64_t chunk = chunk_tokens(L.lengths, 8, 16, int64_t{kDefaultSms} * kSplitCtasPerSm);
  CHECK(stage_traffic("splitkv", L, o).bytes == traffic::chunked_bytes(L, chunk_count(L.lengths, chunk)));
  CHECK(stage_traffic("splitkv", L, o).bytes > traffic::per_request_bytes(L));
  PlannerOptions pat;
  pat.split_kv = true;
  CHECK(stage_traffic("pat", L, o).bytes == traffic::plan_bytes(L, make_plan(L, pat), true, traffic::kHalfPartialOutElemBytes));
  PlannerOptions packed;
  packed.tiles = TilePolicy::fixed;
  packed.fixed_tile = {64, 64};
  packed.split_kv = false;
  CHECK(stage_traffic("packed", L, o).bytes ==
        traffic::plan_bytes(L, make_plan(L, packed), false, traffic::kHalfPartialOutElemBytes));
  // The shared 4096-token prefix is read once by the packed stages, 16 times by stage 2.
  CHECK(stage_traffic("packed", L, o).bytes < traffic::per_request_bytes(L) / 4);
  require_error([&] { stage_traffic("oracle", L, o); }, "not a GPU stage");
  require_error([&] { stage_traffic("nosuch", L, o); }, "not a GPU stage");
}

TEST_CASE("stage bytes: stages 4-9's 16-bit partials (the default) halve --fp32-partials' o bytes and keep their plans") {
  const PagedLayout L = build_layout(parse_tree_spec("1,16_4096,256"), shape_of(32, 8, 128, 16), true, 1);
  StageTrafficOptions fp32, half;
  fp32.half_partials = false;
  CHECK(half.half_partials);  // the default
  // What 16 bits save per partial: the o's d values per query head, 2 bytes each, both trips.
  const int64_t saved_per_partial = traffic::partials_round_trip_bytes(32, 128, 1) -
                                    traffic::partials_round_trip_bytes(32, 128, 1, traffic::kHalfPartialOutElemBytes);
  REQUIRE(saved_per_partial == 2 * 32 * 128 * 2);
  for (const char* slug : {"packed", "multitile", "multistream", "pat", "hopper"}) {
    INFO("stage " << slug);
    StagePlanConfig a, b;
    REQUIRE(plan_stage_config(slug, L.shape, fp32, a));
    REQUIRE(plan_stage_config(slug, L.shape, half, b));
    CHECK(a.partial_o_bytes == traffic::kPartialOutElemBytes);
    CHECK(b.partial_o_bytes == traffic::kHalfPartialOutElemBytes);
    const Plan plan = make_plan(L, a.planner);
    CHECK(plan_difference(make_plan(L, b.planner), plan).empty());  // the option moves bytes, not packs
    int64_t slots = 0;
    for (int32_t k : plan.partials) slots += (a.direct_output && k == 1) ? 0 : k;
    CHECK(stage_traffic(slug, L, fp32).bytes - stage_traffic(slug, L, half).bytes == slots * saved_per_partial);
  }
  // Stage 9 plans as stage 8 on its own slots; its partials shrink alike. Stages 1-3 and 10 keep fp32.
  CHECK(stage_traffic("cluster", L, half).bytes < stage_traffic("cluster", L, fp32).bytes);
  for (const char* slug : {"naive", "gqa", "splitkv", "packinfer"}) {
    INFO("stage " << slug);
    CHECK(stage_traffic(slug, L, half).bytes == stage_traffic(slug, L, fp32).bytes);
  }
}

TEST_CASE("stage bytes: the plan stages' configurations") {
  const Shape shape = shape_of(32, 8, 128, 16);
  StageTrafficOptions o;
  o.sms = 7;
  o.max_kv_tile = 128;
  StagePlanConfig c;
  REQUIRE(plan_stage_config("packed", shape, o, c));
  CHECK(c.planner.tiles == TilePolicy::fixed);
  CHECK(c.planner.fixed_tile == TileShape{64, 64});
  CHECK_FALSE(c.planner.split_kv);
  CHECK_FALSE(c.direct_output);
  for (const char* slug : {"multitile", "multistream"}) {
    REQUIRE(plan_stage_config(slug, shape, o, c));
    CHECK(c.planner.tiles == TilePolicy::table);
    CHECK(c.planner.max_kv_tile == 128);
    CHECK_FALSE(c.planner.split_kv);
    CHECK_FALSE(c.direct_output);
  }
  REQUIRE(plan_stage_config("pat", shape, o, c));
  CHECK(c.planner.split_kv);
  CHECK(c.planner.sms == 7);
  CHECK(c.direct_output);
  REQUIRE(plan_stage_config("hopper", shape, o, c));
  CHECK(c.planner.tiles == TilePolicy::hopper);
  CHECK(c.planner.split_kv);
  CHECK(c.direct_output);
  // The shapes stage 8's wgmma tiles are not built for: stage 7's tile table, stage 8's routing kept.
  Shape fp8 = shape;
  fp8.kv_dtype = KvDType::fp8_e4m3;
  Shape d256 = shape;
  d256.head_dim = 256;
  for (const Shape& s : {fp8, d256}) {
    INFO(s.describe());
    REQUIRE(plan_stage_config("hopper", s, o, c));
    CHECK(c.planner.tiles == TilePolicy::table);
    CHECK(c.planner.hopper.flags() == o.hopper.flags());
    CHECK(c.planner.split_kv);
    CHECK(c.direct_output);
  }
  CHECK_FALSE(plan_stage_config("gqa", shape, o, c));
}
