// The float64 oracle against a second, deliberately plain implementation (loops over the block
// tables, softmax straight from its definition, no Eigen); attention executed pack by pack and
// merged against the naive oracle; the kernels' precision emulation within the dtype tolerance.
#include <algorithm>
#include <cmath>
#include <functional>
#include <string>
#include <vector>

#include "../catch.hpp"
#include "../test_util.hpp"
#include "patlab/truth/check.hpp"
#include "patlab/error.hpp"
#include "patlab/truth/oracle.hpp"
#include "patlab/planner/plan.hpp"

using namespace patlab;

namespace {

constexpr uint64_t kSeed = 42;

/// Agreement of two float64 implementations of the same sums (order of additions differs).
constexpr double kFloat64Agreement = 1e-12;

/// The value of element `i` of a pool, read from its bytes by hand (not through
/// Workload::kv_values): a little-endian 16-bit pattern, or an fp8 code times the tensor's scale.
double stored_value(const Workload& w, const std::vector<uint8_t>& pool, float scale, size_t i) {
  if (w.shape().kv_fp8()) return static_cast<double>(fp8_e4m3_to_float(pool[i])) * scale;
  return to_float(static_cast<uint16_t>(pool[2 * i] | (pool[2 * i + 1] << 8)), w.shape().dtype);
}

/// Decode attention from its definition: for each request and query head, scores q.k/sqrt(d) over
/// every token of the request (addressed by hand through the block table), weights exp(score),
/// o = sum(w v) / sum(w), lse = log(sum(w)). No max subtraction: the scores of N(0,1) data are
/// far from exp's overflow, which the test asserts.
AttentionResult plain_attention(const Workload& w, double* max_abs_score) {
  const Shape& s = w.shape();
  const int R = w.num_requests(), Hq = s.num_q_heads, Hkv = s.num_kv_heads, d = s.head_dim, page = s.page_size;
  AttentionResult res;
  res.requests = R;
  res.heads = Hq;
  res.head_dim = d;
  res.o.assign(static_cast<size_t>(R) * Hq * d, 0.0);
  res.lse.assign(static_cast<size_t>(R) * Hq, 0.0);
  *max_abs_score = 0;
  for (int r = 0; r < R; ++r) {
    const int len = w.layout.lengths[static_cast<size_t>(r)];
    for (int h = 0; h < Hq; ++h) {
      const int kvh = h / (Hq / Hkv);
      std::vector<double> q(static_cast<size_t>(d));
      for (int i = 0; i < d; ++i) q[static_cast<size_t>(i)] = to_float(w.q[(static_cast<size_t>(r) * Hq + h) * d + i], s.dtype);
      double z = 0;
      std::vector<double> acc(static_cast<size_t>(d), 0.0);
      for (int t = 0; t < len; ++t) {
        const int block = w.layout.block_tables[static_cast<size_t>(r)][static_cast<size_t>(t / page)];
        const size_t base = ((static_cast<size_t>(block) * page + static_cast<size_t>(t % page)) * Hkv + kvh) * d;
        double score = 0;
        for (int i = 0; i < d; ++i) score += q[static_cast<size_t>(i)] * stored_value(w, w.k_pool, w.k_scale, base + i);
        score /= std::sqrt(static_cast<double>(d));
        *max_abs_score = std::max(*max_abs_score, std::fabs(score));
        const double weight = std::exp(score);
        z += weight;
        for (int i = 0; i < d; ++i) acc[static_cast<size_t>(i)] += weight * stored_value(w, w.v_pool, w.v_scale, base + i);
      }
      for (int i = 0; i < d; ++i) res.o[(static_cast<size_t>(r) * Hq + h) * d + i] = acc[static_cast<size_t>(i)] / z;
      res.lse[static_cast<size_t>(r) * Hq + h] = std::log(z);
    }
  }
  return res;
}


/// Shapes that cover both dtypes, both KV cache types, d 64/128, groups 1..16 and pages 16/32/64.
std::vector<Shape> shapes() {
  return {shape_of(8, 8, 64, 16, DType::fp16),   shape_of(16, 8, 128, 32, DType::bf16),
          shape_of(16, 4, 64, 64, DType::fp16),  shape_of(32, 4, 128, 16, DType::bf16),
          shape_of(16, 1, 64, 32, DType::fp16),  shape_of(32, 2, 128, 64, DType::bf16),
          shape_of(16, 4, 64, 16, DType::fp16, KvDType::fp8_e4m3),
          shape_of(32, 2, 128, 32, DType::bf16, KvDType::fp8_e4m3)};
}

/// Small trees: symmetric, multi-root, asymmetric, random, and a one-token request.
std::vector<TokenTree> trees() {
  std::vector<TokenTree> t = {
      parse_tree_spec("1,3_40,7"), parse_tree_spec("2,4_17,33"), parse_tree_spec("1_1"),
      parse_workload_json(R"({"segments": {"sys": 70, "docA": 45, "u1": 3, "u2": 20, "u3": 1},
                             "requests": ["sys+docA+u1", "sys+docA+u2", "sys+u3"]})",
                          "small-asymmetric")};
  RandomTreeOptions o;
  o.requests = 5;
  o.max_segment = 60;
  t.push_back(random_tree(kSeed, o));
  return t;
}

/// Runs `check(shape, workload)` on every shape of shapes() and tree of trees() (the workload
/// drawn with kSeed), with the shape and tree captured for Catch2's messages.
/// @tparam F callable as check(const Shape&, const Workload&)
template <typename F>
void for_each_case(F&& check) {
  for (const Shape& s : shapes())
    for (const TokenTree& t : trees()) {
      CAPTURE(s.describe(), t.description);
      check(s, make_workload(t, s, kSeed, true));
    }
}

/// Elements of `got`'s o outside rule 2's bound (element_bound()) around `ref`'s o; a NaN counts
/// as outside (the comparison fails).
int64_t outside_bound(const AttentionResult& got, const AttentionResult& ref, const Tolerance& tol) {
  int64_t outside = 0;
  for (size_t i = 0; i < ref.o.size(); ++i) outside += !(std::fabs(got.o[i] - ref.o[i]) <= element_bound(tol, ref.o[i]));
  return outside;
}

}  // namespace

TEST_CASE("naive_attention equals a plain triple loop") {
  INFO("seed " << kSeed);
  for_each_case([&](const Shape&, const Workload& w) {
    double max_score = 0;
    const AttentionResult plain = plain_attention(w, &max_score);
    REQUIRE(max_score < 50);  // the plain loop's premise: exp() cannot overflow
    const AttentionResult naive = naive_attention(w);
    REQUIRE(naive.o.size() == plain.o.size());
    CHECK(max_relative_difference(naive, plain) <= kFloat64Agreement);
    CHECK(naive.o == naive_attention(w).o);  // threads do not change the result
  });
}

TEST_CASE("packed_attention over chunked plans equals naive_attention") {
  INFO("seed " << kSeed);
  for_each_case([&](const Shape& s, const Workload& w) {
    const AttentionResult naive = naive_attention(w);
    for (int pages : {1, 2, 4, 64}) {
      CAPTURE(pages);
      const Plan plan = chunked_plan(w.layout, pages * s.page_size);
      for (int r = 0; r < w.num_requests(); ++r)
        CHECK(plan.partials[static_cast<size_t>(r)] ==
              (w.layout.lengths[static_cast<size_t>(r)] + pages * s.page_size - 1) / (pages * s.page_size));
      CHECK(max_relative_difference(packed_attention(w, plan), naive) <= kFloat64Agreement);
    }
  });
}

TEST_CASE("packed_attention: a shared-prefix pack plus per-request packs") {
  // The PAT idea on the CPU: the 96 tokens (6 full blocks) of the tiny preset's prefix are one
  // pack read by all 4 queries; each query's remaining 41 tokens are its own pack.
  const Preset p = find_preset("tiny");  // a copy: GCC 13 warns of a reference returned beside a temporary argument
  const Workload w = make_workload(preset_tree(p), p.shape, kSeed, true);
  const auto& tables = w.layout.block_tables;
  Plan plan;
  plan.partials = {2, 2, 2, 2};
  Pack shared;
  shared.queries = {0, 1, 2, 3};
  shared.slots = {1, 0, 1, 0};  // any slot order merges to the same result
  shared.token_begin = 0;
  shared.kv_len = 96;
  shared.blocks.assign(tables[0].begin(), tables[0].begin() + 6);
  for (int r = 1; r < 4; ++r) REQUIRE(std::vector<int32_t>(tables[r].begin(), tables[r].begin() + 6) == shared.blocks);
  plan.packs.push_back(shared);
  for (int r = 0; r < 4; ++r) {
    Pack own;
    own.queries = {r};
    own.slots = {r % 2 == 0 ? 0 : 1};
    own.token_begin = 96;
    own.kv_len = 41;
    if (r != 3) own.blocks.assign(tables[r].begin() + 6, tables[r].end());  // r = 3: through its table
    plan.packs.push_back(own);
  }
  CHECK(max_relative_difference(packed_attention(w, plan), naive_attention(w)) <= kFloat64Agreement);

  SECTION("plans that do not fit the workload are refused") {
    Plan bad = plan;
    bad.partials = {2, 2, 2};
    require_error([&] { packed_attention(w, bad); }, "plan has partial counts for 3 requests, workload has 4");
    bad = plan;
    bad.packs[1].slots = {2};
    require_error([&] { packed_attention(w, bad); }, "slot 2 of request 0 out of range");
    bad = plan;
    bad.packs[1].queries = {9};
    require_error([&] { packed_attention(w, bad); }, "pack names request 9");
    bad = plan;
    bad.packs[1].kv_len = 42;
    require_error([&] { packed_attention(w, bad); }, "a pack's range runs past request 0");
    bad = plan;
    bad.packs[0].slots = {0};
    require_error([&] { packed_attention(w, bad); }, "mismatched queries and slots");
  }
  SECTION("chunk sizes that are not page multiples are refused") {
    require_error([&] { chunked_plan(w.layout, 0); }, "chunk size 0 must be a positive multiple of the page size 16");
    require_error([&] { chunked_plan(w.layout, 24); }, "chunk size 24 must be a positive multiple");
  }
}

TEST_CASE("plan_partial_split: each slot's keys, ranges and leaf tails") {
  const Preset p = find_preset("tiny");  // 4 requests of 137 tokens, a 96-token prefix
  const Workload w = make_workload(preset_tree(p), p.shape, kSeed, true);
  Plan plan;
  plan.partials = {2, 2, 1, 1};
  Pack shared;
  shared.queries = {0, 1, 2, 3};
  shared.slots = {1, 0, 0, 0};
  shared.token_begin = 0;
  shared.kv_len = 96;
  PackTail t2, t3;  // requests 2 and 3 read their own 41 tokens as tails of the shared pack
  t2.entry = 2;
  t2.kv_len = 41;
  t3.entry = 3;
  t3.kv_len = 41;
  shared.tails = {t2, t3};
  plan.packs.push_back(shared);
  for (int r = 0; r < 2; ++r) {
    Pack own;
    own.queries = {r};
    own.slots = {r == 0 ? 0 : 1};
    own.token_begin = 96;
    own.kv_len = 41;
    plan.packs.push_back(own);
  }
  const PartialSplit split = plan_partial_split(plan, w.layout);
  REQUIRE(split.size() == 4);
  CHECK(split[0] == std::vector<PartialKeys>{{{96, 137}}, {{0, 96}}});
  CHECK(split[1] == std::vector<PartialKeys>{{{0, 96}}, {{96, 137}}});
  CHECK(split[2] == std::vector<PartialKeys>{{{0, 96}, {96, 137}}});
  CHECK(split[3] == std::vector<PartialKeys>{{{0, 96}, {96, 137}}});
  CHECK(plan_partial_split(plan, w.layout.lengths) == split);  // the lengths are all it reads
  std::vector<int32_t> longer = w.layout.lengths;
  longer[2] = 150;  // request 2's tail is then its last 41 of 150 tokens
  CHECK(plan_partial_split(plan, longer)[2] == std::vector<PartialKeys>{{{0, 96}, {109, 150}}});
  Plan bad = plan;
  bad.packs[1].slots = {2};
  require_error([&] { plan_partial_split(bad, w.layout); }, "a pack writes a slot the plan does not have");
  bad = plan;
  bad.partials = {2, 2, 1};
  require_error([&] { plan_partial_split(bad, w.layout); }, "partial counts are not the layout's requests");
}

TEST_CASE("emulated_attention with 16-bit partials: one partial a query is the plain emulation, more add their roundings") {
  INFO("seed " << kSeed);
  for_each_case([&](const Shape& s, const Workload& w) {
    const AttentionResult plain = emulated_attention(w);
    // One partial per request (or none listed): bit for bit the plain emulation.
    PartialSplit whole(static_cast<size_t>(w.num_requests()));
    for (int r = 0; r < w.num_requests(); ++r) whole[static_cast<size_t>(r)] = {{{0, w.layout.lengths[static_cast<size_t>(r)]}}};
    CHECK(emulated_attention(w, whole).o == plain.o);
    CHECK(emulated_attention(w, PartialSplit(static_cast<size_t>(w.num_requests()))).o == plain.o);
    // A stage's chunked plan (16-token chunks): its partials rounded, merged in float32. Still
    // within the dtype's tolerance of the oracle, and no longer the plain emulation where a
    // request has more than one chunk.
    const Plan chunks = chunked_plan(w.layout, s.page_size);
    const PartialSplit chunk_split = plan_partial_split(chunks, w.layout);
    const AttentionResult cut = emulated_attention(w, chunk_split);
    // Given the plain emulation, the rows of one partial are copied from it: the same result.
    const AttentionResult reused = emulated_attention(w, chunk_split, &plain);
    CHECK(reused.o == cut.o);
    CHECK(reused.lse == cut.lse);
    CHECK(emulated_attention(w, whole, &plain).lse == emulated_attention(w, whole).lse);
    const AttentionResult naive = naive_attention(w);
    const Tolerance& tol = tolerance(s.dtype, s.kv_dtype);
    CHECK(outside_bound(cut, naive, tol) == 0);
    for (size_t i = 0; i < naive.lse.size(); ++i) REQUIRE(std::fabs(cut.lse[i] - naive.lse[i]) < 1e-4);
    const bool any_cut = std::any_of(w.layout.lengths.begin(), w.layout.lengths.end(),
                                     [&](int32_t len) { return len > s.page_size; });
    CHECK((cut.o != plain.o) == any_cut);
  });
  const Preset p = find_preset("tiny");
  const Workload w = make_workload(preset_tree(p), p.shape, kSeed, true);
  PartialSplit bad(3);
  require_error([&] { emulated_attention(w, bad); }, "the partial split has 3 requests, the workload 4");
  AttentionResult other = emulated_attention(w);
  other.heads /= 2;
  require_error([&] { emulated_attention(w, PartialSplit(4), &other); }, "not of this workload's shape");
  bad = PartialSplit(4);
  bad[1] = {{{0, 96}}, {{96, 138}}};
  require_error([&] { emulated_attention(w, bad); }, "a partial's keys lie outside request 1");
  bad[1] = {{{0, 96}}, {{90, 137}}};
  require_error([&] { emulated_attention(w, bad); }, "the partials of request 1 do not cover its keys once");
}

TEST_CASE("emulated_attention is within the dtype tolerance of naive_attention") {
  INFO("seed " << kSeed);
  for_each_case([&](const Shape& s, const Workload& w) {
    const AttentionResult naive = naive_attention(w);
    const AttentionResult emu = emulated_attention(w);
    const Tolerance& tol = tolerance(s.dtype, s.kv_dtype);
    CHECK(outside_bound(emu, naive, tol) == 0);
    // lse is computed in float32 (not rounded to the storage type).
    for (size_t i = 0; i < naive.lse.size(); ++i) REQUIRE(std::fabs(emu.lse[i] - naive.lse[i]) < 1e-4);
    // The emulation really is in low precision: it is not the oracle (except over one token,
    // where o is that token's stored V exactly; with an fp8 cache o is v8 * v_scale rounded
    // once to the 16-bit type, within its unit roundoff).
    if (w.layout.total_tokens() > w.num_requests()) CHECK(l2_error(emu, naive) > 1e-6);
    else if (!s.kv_fp8()) CHECK(l2_error(emu, naive) == 0.0);
    else CHECK(l2_error(emu, naive) <= (s.dtype == DType::fp16 ? std::ldexp(1.0, -11) : std::ldexp(1.0, -8)));
  });
}
