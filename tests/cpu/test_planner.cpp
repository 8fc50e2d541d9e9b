// The pack step: tile table, byte cost model, radix-tree packs, KV split, slots, the validator
// (positive and hand-broken plans), the packed oracle on real plans, and the planning time.
#include <algorithm>
#include <numeric>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <iterator>
#include <limits>
#include <random>
#include <set>
#include <string>
#include <tuple>

#include "../catch.hpp"
#include "patlab/error.hpp"
#include "patlab/truth/oracle.hpp"
#include "patlab/model/traffic.hpp"
#include "patlab/model/workload.hpp"
#include "patlab/planner/incremental_planner.hpp"
#include "patlab/planner/planner.hpp"
#include "patlab/planner/tile_budget.hpp"
#include "fuzz.hpp"

using namespace patlab;

namespace {

/// Random trees the validator checks.
constexpr int kRandomTrees = 10000;
/// Every this many random trees, the oracle also runs the plan (the float64 oracle is the slow
/// part; fuzz::kOracleTokenHeads bounds the size of the trees it runs).
constexpr int kOracleEvery = 20;
/// Seed of the random trees.
constexpr uint64_t kTreeSeed = 20240611;
/// Large random trees (fuzz::kLargeTrees) in the default run; `meson test --suite fuzz` runs many
/// more (fuzz_planner.cpp).
constexpr int kLargeRandomTrees = 200;
/// Every this many large trees, the packed oracle too (when small enough: fuzz::kOracleTokenHeads).
constexpr int kLargeOracleEvery = 10;
/// Seed of the large random trees (a range apart from the small ones).
constexpr uint64_t kLargeTreeSeed = 30240611;
/// Plans timed in the planning-time test; the median is reported.
constexpr int kPlanTimingRuns = 3;

Shape small_shape(int group, int page, int kv_heads = 1) {
  Shape s;
  s.num_kv_heads = kv_heads;
  s.num_q_heads = group * kv_heads;
  s.head_dim = 64;
  s.page_size = page;
  return s;
}

Shape llama_shape() { return Shape{}; }  // 32/8 heads, d=128, page 16

/// Seeds of the random trees the bucket tests plan (the suite's random trees 11-14 are drawn from
/// the same seeds, with other sizes).
constexpr uint64_t kBucketTreeSeeds[] = {11, 12, 13, 14};
/// The layout of bucket test tree `seed`: 128 requests, segments up to 2048 tokens, llama_shape().
PagedLayout bucket_tree_layout(uint64_t seed) {
  RandomTreeOptions o;
  o.requests = 128;
  o.max_segment = 2048;
  return build_layout(random_tree(seed, o), llama_shape(), true, 1);
}

/// Options that cut as much as they can: many SMs, one-block pieces.
PlannerOptions eager_split() {
  PlannerOptions o;
  o.min_split_blocks = 1;
  return o;
}

std::string join(const std::vector<std::string>& lines) {
  std::string s;
  for (size_t i = 0; i < lines.size() && i < 8; ++i) s += lines[i] + "\n";
  return s;
}

bool has_fault(const std::vector<std::string>& faults, const std::string& prefix) {
  return std::any_of(faults.begin(), faults.end(), [&](const std::string& f) { return f.rfind(prefix, 0) == 0; });
}

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

/// Plans `w`, requires a valid plan, runs it through the packed oracle; returns the plan.
Plan check_planned(const Workload& w, const PlannerOptions& o) {
  const Plan plan = make_plan(w.layout, o);
  const std::vector<std::string> faults = validate_plan(w.layout, plan);
  INFO(join(faults));
  REQUIRE(faults.empty());
  const AttentionResult naive = naive_attention(w);
  const AttentionResult packed = packed_attention(w, plan);
  const double diff = max_relative_difference(packed, naive);
  INFO("max relative difference " << diff);
  REQUIRE(diff <= kOracleAgreement);
  return plan;
}

/// 64 requests on a 4096-token prefix; 8 of them also share a 640-token middle prefix.
TokenTree middle_prefix_batch() {
  std::string segs = R"("sys": 4096, "mid": 640)", reqs;
  for (int i = 0; i < 64; ++i) {
    segs += ", \"u" + std::to_string(i) + "\": " + std::to_string(7 + 13 * i);
    reqs += std::string(i ? ", " : "") + "\"sys+" + (i < 8 ? "mid+" : "") + "u" + std::to_string(i) + "\"";
  }
  return parse_workload_json("{\"segments\": {" + segs + "}, \"requests\": [" + reqs + "]}", "middle-prefix batch");
}

/// Requests that share nothing, of lengths that land in every KV tile bucket.
TokenTree mixed_no_sharing() {
  const int lengths[] = {1, 5, 15, 16, 17, 31, 32, 33, 47, 63, 64, 65, 100, 127, 128, 129, 255, 1000, 2049, 4097};
  std::string segs, reqs;
  for (size_t i = 0; i < std::size(lengths); ++i) {
    segs += std::string(i ? ", " : "") + "\"r" + std::to_string(i) + "\": " + std::to_string(lengths[i]);
    reqs += std::string(i ? ", " : "") + "\"r" + std::to_string(i) + "\"";
  }
  return parse_workload_json("{\"segments\": {" + segs + "}, \"requests\": [" + reqs + "]}", "mixed lengths");
}

}  // namespace

TEST_CASE("choose_tile: PAT's table with the largest KV tile shorter than the range, n capped") {
  for (int cap : {32, 64, 128}) {
    for (int rows = 1; rows <= kMaxTileRows; ++rows) {
      for (int kv : {1, 15, 16, 31, 32, 33, 63, 64, 65, 127, 128, 129, 5000}) {
        const int m = rows > 32 ? 64 : rows > 16 ? 32 : 16;
        // at least two tiles (the last may be partial) wherever the range is longer than 16
        int n = kv <= 32 ? 16 : kv <= 64 ? 32 : kv <= 128 ? 64 : 128;
        if (m == 64 && n < 32) n = 32;
        CAPTURE(cap, rows, kv);
        REQUIRE(choose_tile(rows, kv, cap) == TileShape{m, std::min(n, cap)});
      }
    }
  }
  REQUIRE(choose_tile(4, 5000) == TileShape{16, kDefaultMaxKvTile});
  REQUIRE_THROWS_AS(choose_tile(4, 100, 16), Error);
  REQUIRE_THROWS_AS(choose_tile(4, 100, 96), Error);
  REQUIRE_THROWS_AS(choose_tile(0, 10), Error);
  REQUIRE_THROWS_AS(choose_tile(kMaxTileRows + 1, 10), Error);
  REQUIRE_THROWS_AS(choose_tile(4, 0), Error);
}

TEST_CASE("cost model: worked cases") {
  const Shape s = llama_shape();  // 32/8, d=128: group 4, Q = 16
  const CostModel m = CostModel::of(s);
  REQUIRE(m.queries_per_pack == 16);
  REQUIRE(m.kv_bytes_per_token == 2 * 8 * 128 * 2);
  REQUIRE(m.extra_partial_bytes == 32 * (128 * 2 + 2 * (128 * 4 + 4)));

  SECTION("a lone child inherits (same loads, one partial fewer)") {
    REQUIRE(choose_inherit(m, 4096, 0, {5}) == std::vector<bool>{true});
    REQUIRE(choose_inherit(m, 1, 0, {64}) == std::vector<bool>{true});
  }
  SECTION("64 single-query children of a 4096-token prefix split: 4 loads instead of 64") {
    const std::vector<int32_t> kids(64, 1);
    const std::vector<bool> got = choose_inherit(m, 4096, 0, kids);
    REQUIRE(std::none_of(got.begin(), got.end(), [](bool b) { return b; }));
    REQUIRE(m.node_bytes(4096, 0, kids, got) == 4 * 4096 * m.kv_bytes_per_token + 64 * m.extra_partial_bytes);
  }
  SECTION("children that fill whole packs inherit") {
    const std::vector<bool> got = choose_inherit(m, 4096, 0, {16, 16, 32});
    REQUIRE(got == std::vector<bool>{true, true, true});
  }
  SECTION("a short pending range does not pay for partials") {
    // 2 tokens x 8 KiB per token is less than 2 extra partials: both children inherit.
    REQUIRE(choose_inherit(m, 2, 0, {1, 1}) == std::vector<bool>{true, true});
    REQUIRE(choose_inherit(m, 4096, 0, {1, 1}) == std::vector<bool>{false, false});
  }
  SECTION("queries that end at the node are packed there anyway; a child joins them when it saves") {
    // 15 ended + a 1-query child: one pack of 16 covers both, the child splits.
    REQUIRE(choose_inherit(m, 4096, 15, {1}) == std::vector<bool>{false});
    // 16 ended fill a pack: a 16-query child inherits.
    REQUIRE(choose_inherit(m, 4096, 16, {16}) == std::vector<bool>{true});
  }
  SECTION("PAT's rule on the same cases") {
    REQUIRE(pat_inherits(64, 1, 4096, 16) == false);
    REQUIRE(pat_inherits(64, 16, 4096, 16) == true);
    REQUIRE(pat_inherits(5, 5, 4096, 16) == true);
    // PAT: one extra load of 2 tokens against a credit of 4 tokens: inherit.
    REQUIRE(pat_inherits(2, 1, 2, 16) == true);
  }
}

TEST_CASE("cost model: the choice is the exhaustive optimum on small nodes") {
  std::mt19937_64 rng(kTreeSeed);
  auto uni = [&](int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng); };
  const int trials = 2000;
  for (int t = 0; t < trials; ++t) {
    Shape s = llama_shape();
    s.num_kv_heads = 1 << uni(0, 3);
    s.num_q_heads = s.num_kv_heads * (1 << uni(0, 4));
    const CostModel m = CostModel::of(s);
    const int k = uni(1, 10);
    std::vector<int32_t> kids;
    for (int i = 0; i < k; ++i) kids.push_back(uni(1, 40));
    const int64_t ended = uni(0, 3) == 0 ? uni(1, 20) : 0;
    const int64_t tokens = int64_t{1} << uni(0, 13);
    INFO("seed " << kTreeSeed << ", trial " << t);
    CAPTURE(k, ended, tokens, m.queries_per_pack);
    const int64_t bytes = m.node_bytes(tokens, ended, kids, choose_inherit(m, tokens, ended, kids));
    int64_t best = INT64_MAX;
    for (int mask = 0; mask < (1 << k); ++mask) {
      std::vector<bool> inh(static_cast<size_t>(k));
      for (int i = 0; i < k; ++i) inh[static_cast<size_t>(i)] = (mask >> i) & 1;
      best = std::min(best, m.node_bytes(tokens, ended, kids, inh));
    }
    REQUIRE(bytes == best);
  }
}

TEST_CASE("cost model: nodes too large for the exact search are decided greedily, never worse than all-split or all-inherit") {
  std::mt19937_64 rng(kTreeSeed + 1);
  auto uni = [&](int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng); };
  const CostModel m = CostModel::of(llama_shape());  // Q = 16
  for (int64_t tokens : {1, 64, 4096}) {
    std::vector<int32_t> kids;
    int64_t items = 0, rows = 0;
    for (int i = 0; i < 3000; ++i) {
      kids.push_back(uni(1, 40));
      items += kids.back() % 16 != 0;
      rows += kids.back() % 16;
    }
    REQUIRE(items * (rows + 1) > kExactInheritWork);
    const int64_t ended = uni(0, 20);
    const std::vector<bool> got = choose_inherit(m, tokens, ended, kids);
    const int64_t bytes = m.node_bytes(tokens, ended, kids, got);
    CAPTURE(tokens, ended);
    REQUIRE(bytes <= m.node_bytes(tokens, ended, kids, std::vector<bool>(kids.size(), false)));
    REQUIRE(bytes <= m.node_bytes(tokens, ended, kids, std::vector<bool>(kids.size(), true)));
    for (size_t i = 0; i < kids.size(); ++i) {
      std::vector<bool> flip = got;
      flip[i] = !flip[i];
      REQUIRE(bytes <= m.node_bytes(tokens, ended, kids, flip));
    }
  }
}

TEST_CASE("PAT's slot-collision trees: asymmetric small trees") {
  const char* trees[] = {
      R"({"segments": {"sys": 1000, "docA": 700, "u1": 33, "u2": 45, "u3": 129},
          "requests": ["sys+docA+u1", "sys+docA+u2", "sys+u3"]})",
      R"({"segments": {"a": 256, "b": 512, "c": 17, "d": 300, "e": 1},
          "requests": ["a+b+c", "a+b+d", "a+e"]})",
      R"({"segments": {"a": 160, "b": 9, "c": 640, "d": 48},
          "requests": ["a+b", "a+c", "a+c+d"]})",
      R"({"segments": {"p": 64, "q": 64, "x": 1, "y": 2, "z": 3},
          "requests": ["p+q+x", "p+q+y", "p+z", "p"]})",
  };
  for (int group : {1, 4, 16}) {
    for (int page : {16, 32, 64}) {
      for (const char* text : trees) {
        const TokenTree tree = parse_workload_json(text, "small tree");
        const Workload w = make_workload(tree, small_shape(group, page, 2), 11, true);
        CAPTURE(group, page, text);
        for (const PlannerOptions& o : {PlannerOptions{}, eager_split()}) check_planned(w, o);
      }
    }
  }
}

TEST_CASE("64 requests on a 4096-token prefix, 8 of them sharing a 640-token middle") {
  const TokenTree tree = middle_prefix_batch();
  SECTION("Llama shape: valid, and packs mix queries with different split counts") {
    const PagedLayout L = build_layout(tree, llama_shape(), true, 3);
    for (bool split : {false, true}) {
      PlannerOptions o;
      o.split_kv = split;
      const Plan plan = make_plan(L, o);
      INFO(join(validate_plan(L, plan)));
      REQUIRE(validate_plan(L, plan).empty());
      if (split) REQUIRE(fuzz::has_asymmetric_pack(plan));
    }
  }
  SECTION("small shape: the packed oracle equals naive attention") {
    const Workload w = make_workload(tree, small_shape(4, 16, 2), 5, true);
    const Plan plan = check_planned(w, PlannerOptions{});
    REQUIRE(fuzz::has_asymmetric_pack(plan));
    check_planned(w, eager_split());
  }
}

/// 16 requests on a 4096-token prefix; 4 of them read a long document next, 12 a short one. At
/// group 8 (8 queries per pack) the prefix makes packs {0..7} and {8..15}; the long document's
/// cuts bring queries 0..3 to their cap on added pieces first, so the prefix pack {0..7} stops
/// being cut before {8..15} does, and the short document's pack {4..11} then holds queries with
/// different partial counts: its slots differ.
TokenTree uneven_documents() {
  std::string segs = "\"sys\": 4096, \"long\": 8192, \"short\": 200", reqs;
  for (int i = 0; i < 16; ++i) {
    segs += ", \"u" + std::to_string(i) + "\": " + std::to_string(9 + i);
    reqs += std::string(i ? ", " : "") + "\"sys+" + (i < 4 ? "long" : "short") + "+u" + std::to_string(i) + "\"";
  }
  return parse_workload_json("{\"segments\": {" + segs + "}, \"requests\": [" + reqs + "]}", "uneven documents");
}

TEST_CASE("a pack whose queries write different slots (PAT's shared counter would collide)") {
  PlannerOptions o;
  o.max_splits_per_query = 3;
  o.fill_waves = false;  // the fair-share halving's cap makes the mixed slots
  SECTION("64/8 heads on 132 SMs") {
    Shape s = llama_shape();
    s.num_q_heads = 64;
    const PagedLayout L = build_layout(uneven_documents(), s, true, 1);
    const Plan plan = make_plan(L, o);
    INFO(join(validate_plan(L, plan)));
    REQUIRE(validate_plan(L, plan).empty());
    REQUIRE(fuzz::has_mixed_slot_pack(plan));
  }
  SECTION("8/1 heads, through the oracle") {
    const Workload w = make_workload(uneven_documents(), small_shape(8, 16, 1), 13, true);
    const Plan plan = check_planned(w, o);
    REQUIRE(fuzz::has_mixed_slot_pack(plan));
  }
}

TEST_CASE("no sharing, mixed lengths: every tile bucket's requests are covered") {
  const TokenTree tree = mixed_no_sharing();
  for (int group : {1, 8}) {
    const Workload w = make_workload(tree, small_shape(group, 16, 2), 9, true);
    for (bool split : {false, true}) {
      PlannerOptions o;
      o.split_kv = split;
      o.max_kv_tile = 128;  // PAT's table: every n from 16 to 128
      CAPTURE(group, split);
      const Plan plan = check_planned(w, o);
      std::set<std::pair<int, int>> tiles;
      for (const Pack& p : plan.packs) tiles.insert({p.tile.m, p.tile.n});
      REQUIRE(tiles.size() >= 4);
      for (int32_t k : plan.partials) REQUIRE(k >= 1);
    }
  }
}

/// Prints a fuzz run's counts and fails on its first failures.
void require_clean(const char* what, uint64_t first_seed, const fuzz::Stats& st, double seconds) {
  std::printf("%s: seeds [%llu, %llu): %d validated, %d through the oracle, %d with KV cuts, %d with packs whose "
              "queries have different partial counts, %d with packs whose queries write different slots; %lld requests, "
              "longest %lld tokens; %.1f s\n",
              what, static_cast<unsigned long long>(first_seed), static_cast<unsigned long long>(first_seed + st.trees),
              st.trees, st.oracle_runs, st.cut_plans, st.asymmetric, st.mixed_slots, static_cast<long long>(st.requests),
              static_cast<long long>(st.max_tokens), seconds);
  INFO(join(st.failures));
  REQUIRE(st.failures.empty());
}

TEST_CASE("random asymmetric trees: validator on every plan, oracle on a seeded subset") {
  const auto t0 = std::chrono::steady_clock::now();
  const fuzz::Stats st = fuzz::run(kTreeSeed, kRandomTrees, fuzz::kSmallTrees, kOracleEvery);
  require_clean("small random trees", kTreeSeed, st, seconds_since(t0));
  REQUIRE(st.oracle_runs >= kRandomTrees / kOracleEvery / 2);
  REQUIRE(st.asymmetric > kRandomTrees / 10);
  REQUIRE(st.cut_plans > kRandomTrees / 10);
  REQUIRE(st.mixed_slots > 0);
  // Leaf tails on a third of the trees, half of those under the gates, which decline most random
  // trees' tails (they would add tile buckets): 973 of the 10000 plans keep some.
  REQUIRE(st.tail_plans > kRandomTrees / 20);
}

TEST_CASE("large random trees: hundreds of requests, segments of thousands of tokens") {
  const auto t0 = std::chrono::steady_clock::now();
  const fuzz::Stats st = fuzz::run(kLargeTreeSeed, kLargeRandomTrees, fuzz::kLargeTrees, kLargeOracleEvery);
  require_clean("large random trees", kLargeTreeSeed, st, seconds_since(t0));
  REQUIRE(st.oracle_runs > 0);
  REQUIRE(st.requests >= int64_t{fuzz::kLargeTrees.min_requests} * kLargeRandomTrees);
  REQUIRE(st.max_tokens > fuzz::kLargeTrees.max_segment);
  REQUIRE(st.cut_plans > kLargeRandomTrees / 10);
  REQUIRE(st.asymmetric > kLargeRandomTrees / 10);
}

TEST_CASE("KV split: target from the SM count, minimum piece, cap per query") {
  const TokenTree one = parse_tree_spec("1_32768");
  const PagedLayout L = build_layout(one, llama_shape(), true, 1);  // 8 KV heads
  SECTION("one long request is cut until packs x Hkv reaches 2 CTAs per SM, within the cap") {
    PlanInfo info;
    const Plan plan = make_plan(L, PlannerOptions{}, &info);
    REQUIRE(validate_plan(L, plan).empty());
    REQUIRE(info.target_ctas == kSplitCtasPerSm * kDefaultSms);
    // 264 CTAs / 8 KV heads = 33 packs, which is also the cap (1 + 32 pieces).
    REQUIRE(plan.packs.size() == 33);
    PlannerOptions capped;
    capped.max_splits_per_query = 4;
    REQUIRE(make_plan(L, capped).packs.size() == 5);
  }
  SECTION("a GPU with more SMs gets more pieces") {
    PlannerOptions small, big;
    small.sms = 16;  // 32 CTAs = 4 packs of 8192 tokens (one CTA slot's share is 8192)
    big.sms = 64;    // 128 CTAs = 16 packs
    const Plan a = make_plan(L, small), b = make_plan(L, big);
    REQUIRE(a.packs.size() < b.packs.size());
    REQUIRE(b.packs.size() * 8 >= 128);
  }
  SECTION("no piece below the minimum") {
    const PagedLayout shortL = build_layout(parse_tree_spec("1_200"), llama_shape(), true, 1);  // 13 blocks
    REQUIRE(make_plan(shortL, PlannerOptions{}).packs.size() == 1);
    PlannerOptions o;
    o.min_split_blocks = 2;
    o.fill_waves = false;  // the halving's minimum (the fill prices 200 tokens as not worth a cut)
    const Plan p = make_plan(shortL, o);
    REQUIRE(p.packs.size() > 1);
    for (const Pack& pk : p.packs) REQUIRE(pk.blocks.size() >= 2);
  }
  SECTION("split plans keep every cut piece >= min blocks and every query within the cap") {
    const PagedLayout M = build_layout(middle_prefix_batch(), llama_shape(), true, 2);
    for (int cap : {0, 1, 2, 32}) {
      for (int sms : {1, 132, 2000}) {
        PlannerOptions whole, cut;
        whole.split_kv = false;
        cut.sms = sms;
        cut.max_splits_per_query = cap;
        const Plan a = make_plan(M, whole), b = make_plan(M, cut);
        CAPTURE(cap, sms);
        REQUIRE(validate_plan(M, b).empty());
        std::set<std::tuple<int32_t, int32_t, int32_t>> uncut;
        for (const Pack& p : a.packs) uncut.insert({p.queries.front(), p.token_begin, p.kv_len});
        for (const Pack& p : b.packs)
          if (!uncut.count({p.queries.front(), p.token_begin, p.kv_len}))
            REQUIRE(static_cast<int>(p.blocks.size()) >= cut.min_split_blocks);
        for (size_t r = 0; r < a.partials.size(); ++r) REQUIRE(b.partials[r] - a.partials[r] <= cap);
      }
    }
  }
  SECTION("bad options are usage errors") {
    PlannerOptions o;
    o.sms = 0;
    REQUIRE_THROWS_AS(make_plan(L, o), Error);
    o.sms = -3;
    REQUIRE_THROWS_AS(make_plan(L, o), Error);
    o = PlannerOptions{};
    o.min_split_blocks = 0;
    REQUIRE_THROWS_AS(make_plan(L, o), Error);
    o = PlannerOptions{};
    o.tiles = TilePolicy::fixed;
    o.fixed_tile = {48, 64};
    REQUIRE_THROWS_AS(make_plan(L, o), Error);
  }
}

TEST_CASE("bucket launch order: appearance, longest pack first, footprint (fewest CTAs per SM first), chain") {
  // At d=128, fp16: 16x64 and 32x64 CTAs fit 3 per SM, 64x64 2, 16x16 more (estimate_ctas_per_sm).
  const Shape shape = llama_shape();
  REQUIRE(estimate_ctas_per_sm(128, 64, 64) == 2);
  REQUIRE(estimate_ctas_per_sm(128, 16, 64) == 3);
  REQUIRE(estimate_ctas_per_sm(128, 32, 64) == 3);
  REQUIRE(estimate_ctas_per_sm(128, 16, 16) > 3);
  Plan plan;
  const auto pack = [&](TileShape tile, int32_t kv_len) {
    Pack p;
    p.tile = tile;
    p.kv_len = kv_len;
    plan.packs.push_back(p);
  };
  const TileShape t16{16, 16}, s16{16, 64}, s32{32, 64}, s64{64, 64};
  pack(t16, 20);
  pack(s16, 300);
  pack(s32, 2000);
  pack(s64, 576);
  pack(s16, 3000);  // the longest pack, in the bucket of the smallest 64-token CTAs
  pack(s64, 900);
  SECTION("appearance: the order in which tiles first appear") {
    REQUIRE(bucket_launch_order(plan, shape, BucketOrder::appearance) == std::vector<TileShape>{t16, s16, s32, s64});
  }
  SECTION("longest pack: the bucket holding the longest pack first") {
    REQUIRE(bucket_launch_order(plan, shape, BucketOrder::longest_pack) == std::vector<TileShape>{s16, s32, s64, t16});
  }
  SECTION("footprint: fewest CTAs per SM first, ties longest pack first") {
    REQUIRE(bucket_launch_order(plan, shape, BucketOrder::footprint) == std::vector<TileShape>{s64, s16, s32, t16});
  }
  SECTION("chain: fewest CTAs per SM first, ties the bucket of fewer packs first, then longest pack") {
    // s16 (2 packs) and s32 (1 pack) fit alike: s32 first, so s16's many CTAs do not hold it back.
    REQUIRE(bucket_launch_order(plan, shape, BucketOrder::chain) == std::vector<TileShape>{s64, s32, s16, t16});
    pack(s32, 100);  // two packs each: the longest pack decides again
    REQUIRE(bucket_launch_order(plan, shape, BucketOrder::chain) == std::vector<TileShape>{s64, s16, s32, t16});
  }
  SECTION("footprint on a real plan: every bucket once, CTAs per SM never decreasing") {
    for (uint64_t seed : kBucketTreeSeeds) {
      INFO("random tree seed " << seed);
      const PagedLayout L = bucket_tree_layout(seed);
      const Plan real = make_plan(L, PlannerOptions{});
      const std::vector<TileShape> order = bucket_launch_order(real, shape, BucketOrder::footprint);
      std::set<std::pair<int, int>> tiles;
      for (const Pack& p : real.packs) tiles.insert({p.tile.m, p.tile.n});
      REQUIRE(order.size() == tiles.size());
      for (size_t i = 0; i < order.size(); ++i) {
        REQUIRE(tiles.count({order[i].m, order[i].n}) == 1);
        if (i > 0)
          REQUIRE(estimate_ctas_per_sm(128, order[i - 1].m, order[i - 1].n) <=
                  estimate_ctas_per_sm(128, order[i].m, order[i].n));
      }
    }
  }
  SECTION("stage 8's tiles: its own estimate under TilePolicy::hopper, a usage error under the table") {
    const TileShape wide{128, kClusterKvTile, TileKernel::hopper}, narrow{64, kHopperKvTile, TileKernel::hopper};
    pack(wide, 100);
    REQUIRE(estimate_tile_ctas_per_sm(shape, wide, TilePolicy::hopper) ==
            estimate_hopper_ctas_per_sm(128, 128, kClusterKvTile));
    REQUIRE(estimate_tile_ctas_per_sm(shape, narrow, TilePolicy::hopper) ==
            estimate_hopper_ctas_per_sm(128, 64, kHopperKvTile));
    // The pack kernel's 64x64 keeps its own estimate under either policy.
    REQUIRE(estimate_tile_ctas_per_sm(shape, s64, TilePolicy::hopper) == estimate_ctas_per_sm(128, 64, 64));
    REQUIRE(estimate_tile_ctas_per_sm(shape, s64, TilePolicy::table) == estimate_ctas_per_sm(128, 64, 64));
    // 128 rows on 128-token stages: one CTA per SM (224 KB); stage 8's 64x64: 2; then the pack
    // kernel's tiles. At d = 64: 3, 2 and 3 CTAs of 64, 128 and 192 rows.
    REQUIRE(estimate_hopper_ctas_per_sm(128, 128, hopper_kv_tile(128)) == 1);
    REQUIRE(estimate_hopper_ctas_per_sm(128, 64, hopper_kv_tile(64)) == 2);
    REQUIRE(estimate_hopper_ctas_per_sm(64, 64, hopper_kv_tile(64)) == 3);
    REQUIRE(estimate_hopper_ctas_per_sm(64, 128, hopper_kv_tile(128)) == 2);
    REQUIRE(estimate_hopper_ctas_per_sm(64, 192, hopper_kv_tile(192)) == 3);
    REQUIRE(bucket_launch_order(plan, shape, BucketOrder::footprint, TilePolicy::hopper) ==
            std::vector<TileShape>{wide, s64, s16, s32, t16});
    REQUIRE_THROWS_AS(bucket_launch_order(plan, shape, BucketOrder::footprint), Error);
    REQUIRE(bucket_launch_order(plan, shape, BucketOrder::longest_pack).size() == 5);
  }
}

TEST_CASE("plan buckets: every pack once, in launch order, longest first within a bucket") {
  const Shape shape = llama_shape();
  for (uint64_t seed : kBucketTreeSeeds) {
    INFO("random tree seed " << seed);
    const PagedLayout L = bucket_tree_layout(seed);
    for (TilePolicy tiles : {TilePolicy::table, TilePolicy::hopper}) {
      PlannerOptions options;
      options.tiles = tiles;
      const Plan plan = make_plan(L, options);
      // Stage 9 uploads stage 8's plans (128-row tiles) in the order of appearance: no estimate asked.
      for (BucketOrder order :
           {BucketOrder::appearance, BucketOrder::longest_pack, BucketOrder::footprint, BucketOrder::chain})
        for (bool longest_first : {false, true}) {
          const std::vector<PlanBucket> buckets = plan_buckets(plan, shape, order, tiles, longest_first);
          const std::vector<TileShape> launch = bucket_launch_order(plan, shape, order, tiles);
          REQUIRE(buckets.size() == launch.size());
          std::vector<int> seen(plan.packs.size(), 0);
          for (size_t b = 0; b < buckets.size(); ++b) {
            const PlanBucket& bucket = buckets[b];
            REQUIRE(bucket.tile == launch[b]);
            REQUIRE(bucket.ctas_per_sm ==
                    (order == BucketOrder::footprint || order == BucketOrder::chain
                         ? estimate_tile_ctas_per_sm(shape, bucket.tile, tiles)
                         : 0));
            int64_t tokens = 0;
            for (size_t k = 0; k < bucket.packs.size(); ++k) {
              const Pack& p = plan.packs[static_cast<size_t>(bucket.packs[k])];
              REQUIRE(p.tile == bucket.tile);
              ++seen[static_cast<size_t>(bucket.packs[k])];
              tokens += p.kv_len;
              if (k == 0) continue;
              const Pack& prev = plan.packs[static_cast<size_t>(bucket.packs[k - 1])];
              if (longest_first)
                REQUIRE((prev.kv_len > p.kv_len ||
                         (prev.kv_len == p.kv_len && prev.blocks.front() <= p.blocks.front())));
              else
                REQUIRE(bucket.packs[k - 1] < bucket.packs[k]);
            }
            REQUIRE(bucket.tokens == tokens);
          }
          REQUIRE(std::all_of(seen.begin(), seen.end(), [](int n) { return n == 1; }));
        }
    }
  }
}

TEST_CASE("packs: shared prefixes are read once per pack of queries; rows within the tile") {
  const PagedLayout L = build_layout(parse_tree_spec("1,64_4096,256"), llama_shape(), true, 1);
  PlannerOptions o;
  o.split_kv = false;
  PlanInfo info;
  const Plan plan = make_plan(L, o, &info);
  REQUIRE(validate_plan(L, plan).empty());
  // 4 packs of 16 queries over the prefix, 64 single-query packs over the suffixes.
  REQUIRE(plan.packs.size() == 4 + 64);
  REQUIRE(info.tree_nodes == 1 + 64);
  int prefix_packs = 0;
  for (const Pack& p : plan.packs) {
    REQUIRE(p.rows(4) <= p.tile.m);
    if (p.token_begin == 0) {
      ++prefix_packs;
      REQUIRE(p.queries.size() == 16);
      REQUIRE(p.kv_len == 4096);
      REQUIRE(p.tile == TileShape{64, kDefaultMaxKvTile});
    }
  }
  REQUIRE(prefix_packs == 4);
  for (int32_t k : plan.partials) REQUIRE(k == 2);
  SECTION("a fixed tile bounds the rows") {
    PlannerOptions f = o;
    f.tiles = TilePolicy::fixed;
    f.fixed_tile = {32, 64};
    const Plan p = make_plan(L, f);
    REQUIRE(validate_plan(L, p).empty());
    for (const Pack& pk : p.packs) {
      REQUIRE(pk.tile == f.fixed_tile);
      REQUIRE(pk.rows(4) <= 32);
    }
  }
  SECTION("stage 8's tiles: packs of up to 128 rows read the prefix half as often") {
    PlannerOptions h = o;
    h.tiles = TilePolicy::hopper;
    const Plan p = make_plan(L, h);
    REQUIRE(validate_plan(L, p).empty());
    int hopper_prefix_packs = 0;
    for (const Pack& pk : p.packs) {
      REQUIRE(pk.rows(4) <= pk.tile.m);
      if (pk.token_begin == 0) {
        ++hopper_prefix_packs;
        REQUIRE(pk.queries.size() == 32);  // 128 rows at group 4, on 128-token stages
        REQUIRE(pk.tile == TileShape{128, kClusterKvTile, TileKernel::hopper});
      } else {
        REQUIRE(pk.tile == TileShape{16, kDefaultMaxKvTile});  // one query, 4 rows: the pack kernel's tile
      }
    }
    REQUIRE(hopper_prefix_packs == 2);
    REQUIRE(traffic::plan_bytes(L, p, true) < traffic::plan_bytes(L, plan, true));
    REQUIRE(hopper_policy_tile(1, 256) == choose_tile(1, 256));
    REQUIRE(hopper_policy_tile(32, 20) == choose_tile(32, 20));
    REQUIRE(hopper_policy_tile(33, 20) == TileShape{64, kHopperKvTile, TileKernel::hopper});
    REQUIRE(hopper_policy_tile(64, 4096) == TileShape{64, kHopperKvTile, TileKernel::hopper});
    REQUIRE(hopper_policy_tile(65, 1) == TileShape{128, kClusterKvTile, TileKernel::hopper});
    REQUIRE(hopper_policy_tile(65, 1).name() == "128x128h");
    REQUIRE(hopper_policy_tile(128, 1) == TileShape{128, hopper_kv_tile(128), TileKernel::hopper});
    REQUIRE(hopper_policy_tile(129, 64).name() == "192x64h");
    REQUIRE(hopper_policy_tile(192, 64) == TileShape{192, kHopperKvTile, TileKernel::hopper});
    REQUIRE(is_hopper_tile(TileShape{128, kHopperKvTile, TileKernel::hopper}));
    REQUIRE_FALSE(is_hopper_tile(TileShape{64, 64}));
    REQUIRE_FALSE(is_hopper_tile(TileShape{32, 64}));
    REQUIRE_THROWS_AS(hopper_policy_tile(193, 64), Error);
    REQUIRE_THROWS_AS(hopper_policy_tile(64, 0), Error);
    REQUIRE(max_pack_rows(h) == kClusterSliceRows);  // PlannerOptions' own default; stage 8's is 192
    PlannerOptions tall = h;
    tall.hopper.max_rows = kHopperTileRows[2];
    REQUIRE(max_pack_rows(tall) == kHopperMaxRows);
    // hopper.min_kv: packs of 33-64 rows shorter than it keep the pack kernel and stage 7's tile,
    // the others are untouched; the same 64 x 64 shape on either kernel is told by its kernel.
    REQUIRE(hopper_policy_tile(33, 255, kDefaultMaxKvTile, 256) == choose_tile(33, 255));
    REQUIRE(hopper_policy_tile(33, 255, kDefaultMaxKvTile, 256) == TileShape{64, 64});
    REQUIRE(hopper_policy_tile(33, 255, kDefaultMaxKvTile, 256) != hopper_policy_tile(33, 255));
    REQUIRE(hopper_policy_tile(64, 256, kDefaultMaxKvTile, 256) == hopper_policy_tile(64, 256));
    REQUIRE(hopper_policy_tile(65, 20, kDefaultMaxKvTile, 256) == hopper_policy_tile(65, 20));
    REQUIRE(hopper_policy_tile(32, 20, kDefaultMaxKvTile, 256) == choose_tile(32, 20));
    REQUIRE_FALSE(is_hopper_tile(hopper_policy_tile(48, 1, kDefaultMaxKvTile, 256)));
  }
}

// [test-take-leaves]
TEST_CASE("take_leaves: a query's short last pack becomes a tail of the pack before it") {
  Shape s = llama_shape();
  s.num_q_heads = 64;  // 64/8: group 8, so the 512-token range is packed 8 queries (64 rows) at a time
  const PagedLayout L = build_layout(parse_tree_spec("1,16,32,64,128,1024_256,128,64,32,32,32"), s, true, 1);
  PlannerOptions o;
  PlanInfo before_info, info;
  const Plan before = make_plan(L, o, &before_info);
  o.take_leaves = true;
  const Plan plan = make_plan(L, o, &info);
  REQUIRE(validate_plan(L, plan).empty());
  REQUIRE(before_info.leaf_tails == 0);
  // Before: 128 packs of [0, 512) and 1024 leaf packs of 32 tokens, two partials a query.
  REQUIRE(before.packs.size() == 128 + 1024);
  REQUIRE(before.total_partials() == 2048);
  // After: the 128 packs read their 8 queries' leaves too; every query is written directly.
  REQUIRE(info.leaf_tails == 1024);
  REQUIRE(plan.packs.size() == 128);
  for (const Pack& p : plan.packs) {
    REQUIRE(p.kv_len == 512);
    REQUIRE(p.tails.size() == 8);
    REQUIRE(p.space_len(s.page_size) == 512 + 8 * 32);
    REQUIRE(p.tail_offset(3, s.page_size) == 512 + 3 * 32);
    REQUIRE(p.tile == TileShape{64, kDefaultMaxKvTile, TileKernel::tail});
    REQUIRE(p.tile.name() == "64x64t");
  }
  for (int32_t k : plan.partials) REQUIRE(k == 1);
  // The same K/V bytes (the leaves' pages, read by other CTAs), the partials' round trip gone.
  REQUIRE(traffic::plan_bytes(L, plan, true) < traffic::plan_bytes(L, before, true));
  SECTION("off by default, and the incremental planner refuses it") {
    REQUIRE_FALSE(PlannerOptions{}.take_leaves);
    REQUIRE(plan_difference(make_plan(L, PlannerOptions{}), before).empty());
    REQUIRE_THROWS_AS(IncrementalPlanner(o), Error);
  }
  SECTION("stage 8's packs take them on its wgmma kernel's tails instance, 192-row ones too") {
    PlannerOptions h = o;
    h.tiles = TilePolicy::hopper;
    h.hopper = kStage8Routing;
    const Plan hp = make_plan(L, h);
    REQUIRE(validate_plan(L, hp).empty());
    REQUIRE(hp.packs.size() == 128);
    for (const Pack& p : hp.packs) {
      REQUIRE(p.tile == TileShape{64, kHopperKvTile, TileKernel::hopper_tail});  // 768 tokens: past min_kv
      REQUIRE(p.tile.name() == "64x64ht");
      REQUIRE(is_hopper_tile(p.tile));
      REQUIRE(tails_tile(p.tile));
    }
    // 1024 queries over one 2048-token prefix: stage 8 packs them 192 rows at a time. By default
    // (kLeafTailRows) those packs take no tails; with leaf_tail_rows 192 each (the last piece of
    // the split) takes kLeafTailMaxTails of its 24 queries' leaves.
    const PagedLayout wide = build_layout(parse_tree_spec("1,1024_2048,32"), s, true, 1);
    PlanInfo hi;
    PlannerOptions no_tails = h;
    no_tails.take_leaves = false;
    REQUIRE(plan_difference(make_plan(wide, h, &hi), make_plan(wide, no_tails)).empty());
    REQUIRE(hi.leaf_tails == 0);
    h.leaf_tail_rows = kHopperMaxRows;
    h.leaf_tail_min_cut = 0;  // every tail the rules allow: the other pieces' queries still merge
    const Plan tall = make_plan(wide, h, &hi);
    REQUIRE(validate_plan(wide, tall).empty());
    int32_t tall_tails = 0;
    bool full_192 = false;  // a 192-row pack with its most tails
    for (const Pack& p : tall.packs) {
      if (!p.tails.empty()) REQUIRE(p.tile.kernel == TileKernel::hopper_tail);
      REQUIRE(p.tails.size() <= static_cast<size_t>(kLeafTailMaxTails));
      full_192 = full_192 || (p.rows(s.group()) == 192 && p.tails.size() == static_cast<size_t>(kLeafTailMaxTails));
      tall_tails += static_cast<int32_t>(p.tails.size());
    }
    REQUIRE(hi.leaf_tails == tall_tails);
    REQUIRE(full_192);
    for (int32_t k : tall.partials) REQUIRE(k >= 1);
    // Stage 7's table: packs of at most 64 rows, on the pack kernel's tails instance.
    PlanInfo ti;
    const Plan table = make_plan(wide, o, &ti);
    REQUIRE(validate_plan(wide, table).empty());
    REQUIRE(ti.leaf_tails == 1024);
    for (const Pack& p : table.packs) REQUIRE(p.tile.kernel == TileKernel::tail);
  }
}

TEST_CASE("take_leaves: leaf length, the most tails a pack takes and odd lengths; the packed oracle agrees") {
  Shape s = small_shape(4, 16, 2);
  // Stage 7's plan of `L` with every leaf tail the rules allow (no gates; with the KV split unless
  // `split` is false), validated.
  auto tails_plan = [](const PagedLayout& L, bool split, PlanInfo& info) {
    PlannerOptions o;
    o.take_leaves = true;
    o.leaf_tail_min_cut = 0;
    o.split_kv = split;
    const Plan plan = make_plan(L, o, &info);
    REQUIRE(validate_plan(L, plan).empty());
    return plan;
  };
  PlanInfo info;
  SECTION("a leaf longer than kLeafTailMaxTokens stays a pack") {
    tails_plan(build_layout(parse_tree_spec("1,4_128,65"), s, true, 1), true, info);
    REQUIRE(info.leaf_tails == 0);
  }
  SECTION("a pack takes at most kLeafTailMaxTails leaves") {
    // 16 queries (64 rows) over 32 tokens, each with a 64-token leaf: the pack takes 8 of them
    // (32 + 8 x 64 tokens) and the other 8 stay packs of their own.
    const Plan plan = tails_plan(build_layout(parse_tree_spec("1,16_32,64"), s, true, 1), false, info);
    REQUIRE(info.leaf_tails == kLeafTailMaxTails);
    REQUIRE(plan.packs.front().tails.size() == static_cast<size_t>(kLeafTailMaxTails));
    REQUIRE(plan.packs.front().space_len(s.page_size) == 32 + kLeafTailMaxTails * 64);
    REQUIRE(plan.packs.size() == 1 + 16 - static_cast<size_t>(kLeafTailMaxTails));
  }
  SECTION("leaves ending inside a page: one per pack, streamed last") {
    // 8 queries over 64 tokens, 4 leaves of 20 tokens and 4 of 32: the pack takes the four whole
    // ones and one of the others, last; three stay packs.
    const TokenTree t = parse_workload_json(
        R"({"segments": {"p": 64, "a": 20, "b": 32, "c": 20, "d": 32, "e": 20, "f": 32, "g": 20, "h": 32},
            "requests": ["p+a", "p+b", "p+c", "p+d", "p+e", "p+f", "p+g", "p+h"]})",
        "whole and partial leaves");
    const Plan plan = tails_plan(build_layout(t, s, true, 1), false, info);
    REQUIRE(info.leaf_tails == 5);
    const Pack& p = plan.packs.front();
    REQUIRE(p.tails.size() == 5);
    for (size_t i = 0; i + 1 < p.tails.size(); ++i) REQUIRE(p.tails[i].kv_len == 32);
    REQUIRE(p.tails.back().kv_len == 20);
    REQUIRE(p.space_len(s.page_size) == 64 + 4 * 32 + 20);
  }
  SECTION("odd lengths: partial last pages in the tails; the packed oracle agrees with the naive one") {
    const TokenTree t = parse_workload_json(
        R"({"segments": {"p": 48, "m": 16, "a": 5, "b": 17, "c": 31, "d": 64, "e": 1},
            "requests": ["p+a", "p+b", "p+m+c", "p+m+d", "p+m+e", "p"]})",
        "odd leaves");
    const Workload w = make_workload(t, s, 7, true);
    const Plan plan = tails_plan(w.layout, true, info);
    REQUIRE(info.leaf_tails >= 3);  // one leaf of each of p and m ending inside a page, and d
    bool partial_page = false;
    for (const Pack& p : plan.packs)
      for (const PackTail& tail : p.tails) partial_page = partial_page || tail.kv_len % s.page_size != 0;
    REQUIRE(partial_page);
    PlannerOptions o;
    o.take_leaves = true;
    o.leaf_tail_min_cut = 0;
    check_planned(w, o);
  }
}

TEST_CASE("take_leaves: a plan keeps its tails only if they remove leaf_tail_min_cut of its CTAs") {
  Shape s = small_shape(4, 16, 2);
  // Ten queries over 64 tokens: one leaf of 32 tokens, nine of 100 (too long to be tails). One
  // tail would turn 11 packs (the prefix's and ten leaves) into 10: an eleventh of the CTAs,
  // under kTailMinCtaCut.
  std::string segments = R"("p": 64, "a": 32)", requests = R"("p+a")";
  for (char c = 'b'; c <= 'j'; ++c) {
    segments += std::string(R"(, ")") + c + R"(": 100)";
    requests += std::string(R"(, "p+)") + c + '"';
  }
  const TokenTree t = parse_workload_json(R"({"segments": {)" + segments + R"(}, "requests": [)" + requests + "]}",
                                          "one short leaf among long ones");
  const PagedLayout L = build_layout(t, s, true, 1);
  PlannerOptions o;
  o.split_kv = false;
  const Plan without = make_plan(L, o);
  REQUIRE(without.packs.size() == 11);
  o.take_leaves = true;
  PlanInfo info;
  const Plan gated = make_plan(L, o, &info);
  REQUIRE(info.leaf_tails == 0);
  REQUIRE(info.leaf_tails_declined == 1);
  REQUIRE(plan_difference(gated, without).empty());
  REQUIRE(info.leaf_tail_cut < kTailMinCtaCut);
  o.leaf_tail_min_cut = 0.05;  // a lower gate: still declined, since nine queries would merge
  make_plan(L, o, &info);
  REQUIRE(info.leaf_tails == 0);
  REQUIRE(info.leaf_tail_merged_left == 9);
  o.leaf_tail_min_cut = 0;  // no gates: kept
  const Plan kept = make_plan(L, o, &info);
  REQUIRE(validate_plan(L, kept).empty());
  REQUIRE(info.leaf_tails == 1);
  REQUIRE(info.leaf_tails_declined == 0);
  REQUIRE(kept.packs.size() == 10);
  SECTION("bad values are refused") {
    for (double cut : {-0.1, 1.5, std::nan("")}) {
      PlannerOptions bad = o;
      bad.leaf_tail_min_cut = cut;
      REQUIRE_THROWS_AS(make_plan(L, bad), Error);
    }
    for (int rows : {0, kHopperMaxRows + 1}) {
      PlannerOptions bad = o;
      bad.leaf_tail_rows = rows;
      REQUIRE_THROWS_AS(make_plan(L, bad), Error);
    }
  }
}

TEST_CASE("take_leaves: a plan keeps no tails that would leave the merge in place") {
  // 256 queries over 4 x 8 shared ranges, 32 leaves of 32 tokens under each of the 8: at 32/8 a
  // 64-row pack holds 16 queries and takes 8 of their leaves (kLeafTailMaxTails), so half the
  // queries would still merge two partials (H100, docs/results/2026-12-05-leaf-tails run 7: 1.034x);
  // at 64/8 a pack holds 8 queries, takes all their leaves, and no query merges (0.79x).
  Shape s = llama_shape();
  const PagedLayout L = build_layout(parse_tree_spec("1,4,8,256_32,256,256,32"), s, true, 1);
  PlannerOptions o;
  o.take_leaves = true;
  PlanInfo info;
  const Plan declined = make_plan(L, o, &info);
  REQUIRE(info.leaf_tails == 0);
  REQUIRE(info.leaf_tails_declined == 128);
  REQUIRE(info.leaf_tail_merged_left == 128);
  REQUIRE(info.leaf_tail_buckets_added == 0);
  REQUIRE(info.leaf_tail_cut >= kTailMinCtaCut);
  PlannerOptions no_tails;
  REQUIRE(plan_difference(declined, make_plan(L, no_tails)).empty());
  s.num_q_heads = 64;
  const PagedLayout wide = build_layout(parse_tree_spec("1,4,8,256_32,256,256,32"), s, true, 1);
  const Plan kept = make_plan(wide, o, &info);
  REQUIRE(validate_plan(wide, kept).empty());
  REQUIRE(info.leaf_tails == 256);
  for (int32_t k : kept.partials) REQUIRE(k == 1);
}

TEST_CASE("take_leaves: a plan keeps no tails that would add tile buckets (launches)") {
  // A random tree of 256 requests (H100, docs/results/2026-12-05-leaf-tails run 4: its 89 tails
  // removed 26% of the CTAs but turned 8 buckets into 12, and the 59 us step ran 1.07x).
  Shape s = llama_shape();
  RandomTreeOptions r;
  r.requests = 256;
  r.max_depth = 6;
  r.max_segment = 64;
  const PagedLayout L = build_layout(random_tree(42, r), s, true, 1);
  for (const bool hopper : {false, true}) {
    INFO((hopper ? "stage 8" : "stage 7"));
    PlannerOptions o;
    if (hopper) {
      o.tiles = TilePolicy::hopper;
      o.hopper = kStage8Routing;
    }
    const Plan without = make_plan(L, o);
    o.take_leaves = true;
    PlanInfo info;
    const Plan declined = make_plan(L, o, &info);
    REQUIRE(info.leaf_tails == 0);
    REQUIRE(info.leaf_tails_declined > 0);
    REQUIRE(info.leaf_tail_buckets_added > 0);
    REQUIRE(plan_difference(declined, without).empty());
  }
}
// [test-take-leaves]

TEST_CASE("HopperRouting::min_kv: short ranges packed at most 64 rows, on the pack kernel; plans stay valid") {
  // Ranges of this tree: 256-token roots, 256-token middles, 32-token leaves (544 tokens deep).
  Shape s = llama_shape();
  const PagedLayout L = build_layout(parse_tree_spec("2,8,16,256_256,256,32,32"), s, true, 1);
  for (int min_kv : {0, 64, 512, 1024}) {
    INFO("min_kv " << min_kv);
    PlannerOptions o;
    o.tiles = TilePolicy::hopper;
    o.hopper.min_kv = min_kv;
    const Plan p = make_plan(L, o);
    REQUIRE(validate_plan(L, p).empty());
    int most_rows = 0, kept = 0;
    for (const Pack& pk : p.packs) {
      const int rows = pk.rows(s.group());
      most_rows = std::max(most_rows, rows);
      const bool short_64 = rows > kHopperMinRows / 2 && rows <= kHopperTileRows[0] && pk.kv_len < min_kv;
      const TileShape policy = hopper_policy_tile(rows, pk.kv_len);  // without the knob
      const TileShape usual = is_hopper_tile(policy) ? policy : fit_tile(policy, s.head_dim, s.kv_element_bytes());
      REQUIRE(pk.tile == (short_64 ? choose_tile(rows, pk.kv_len) : usual));
      kept += short_64;
    }
    REQUIRE((kept > 0) == (min_kv > 0));
    // Every range is shorter than 1024 tokens: no pack over 64 rows then; without the knob, 128.
    REQUIRE(most_rows == (min_kv == 1024 ? kHopperTileRows[0] : kClusterSliceRows));
  }
  // Over every range the walk is stage 7's: the short ranges' choices count 64-row packs too, so
  // the packs (queries, blocks) and partials are those of the table policy, only the tiles differ.
  for (const char* spec : {"2,8,16,256_256,256,32,32", "1,16,32,64,128,1024_256,128,64,32,32,32"}) {
    INFO(spec);
    Shape deep = llama_shape();
    deep.num_q_heads = 64;
    const PagedLayout D = build_layout(parse_tree_spec(spec), deep, true, 1);
    PlannerOptions table, hopper;
    hopper.tiles = TilePolicy::hopper;
    hopper.hopper.min_kv = 4096;
    const Plan a = make_plan(D, table), b = make_plan(D, hopper);
    REQUIRE(a.packs.size() == b.packs.size());
    REQUIRE(a.partials == b.partials);
    for (size_t i = 0; i < a.packs.size(); ++i) {
      REQUIRE(a.packs[i].queries == b.packs[i].queries);
      REQUIRE(a.packs[i].blocks == b.packs[i].blocks);
      REQUIRE_FALSE(is_hopper_tile(b.packs[i].tile));
    }
  }
  // wide_kv alone: no 128-row pack over a shorter range, and the 64-row packs keep stage
  // 8's kernel (every range of this tree is shorter than 1024 tokens).
  PlannerOptions wide;
  wide.tiles = TilePolicy::hopper;
  wide.hopper.wide_kv = 1024;
  const Plan w = make_plan(L, wide);
  REQUIRE(validate_plan(L, w).empty());
  int hopper_64 = 0;
  for (const Pack& pk : w.packs) {
    REQUIRE(pk.rows(s.group()) <= kHopperTileRows[0]);
    hopper_64 += pk.tile == TileShape{kHopperTileRows[0], kHopperKvTile, TileKernel::hopper};
  }
  REQUIRE(hopper_64 > 0);
  PlannerOptions bad;
  bad.tiles = TilePolicy::hopper;
  bad.hopper.min_kv = -1;
  REQUIRE_THROWS_AS(make_plan(L, bad), Error);
  bad.hopper.min_kv = 0;
  bad.hopper.wide_kv = -1;
  REQUIRE_THROWS_AS(make_plan(L, bad), Error);
  bad.hopper.wide_kv = 0;
  bad.hopper.max_rows = 96;
  REQUIRE_THROWS_AS(make_plan(L, bad), Error);
}

TEST_CASE("SmallLoader: names round-trip, the default is cp.async, an unknown name is a usage error") {
  for (const SmallLoader l : kSmallLoaders)
    REQUIRE(parse_small_loader(small_loader_name(l)) == l);
  REQUIRE(std::string(small_loader_name(HopperRouting{}.small_loader)) == "cp.async");
  REQUIRE(std::string(small_loader_name(kStage8Routing.small_loader)) == "cp.async");
  REQUIRE(kStage8Routing.flags().find("--hopper-small-loader cp.async") != std::string::npos);
  try {
    parse_small_loader("ldg");
    FAIL("an unknown loader was accepted");
  } catch (const Error& e) {
    REQUIRE(e.kind() == ErrorKind::usage);
    REQUIRE(std::string(e.what()) == "--hopper-small-loader must be cp.async, tma or tma-kv (got 'ldg')");
  }
}

TEST_CASE("HopperRouting::max_rows 192: nodes of more than 128 rows get 192-row packs over long ranges only") {
  // 64 requests over a 4096-token prefix at group 8: 512 rows per KV head. Default: 4 packs of
  // 128 rows over the prefix; at 192: 3 packs (192, 192, 128 rows), so the prefix is read 3 times.
  Shape s = llama_shape();
  s.num_q_heads = 64;
  const PagedLayout L = build_layout(parse_tree_spec("1,64_4096,32"), s, true, 1);
  PlannerOptions o;
  o.tiles = TilePolicy::hopper;
  o.split_kv = false;
  o.hopper.wide_kv = kDefaultHopperWideKv;
  auto prefix_packs = [&](const Plan& p) {
    std::vector<int> rows;
    for (const Pack& pk : p.packs)
      if (pk.kv_len == 4096) rows.push_back(pk.rows(s.group()));
    std::sort(rows.begin(), rows.end());
    return rows;
  };
  const Plan base = make_plan(L, o);
  REQUIRE(validate_plan(L, base).empty());
  REQUIRE(prefix_packs(base) == std::vector<int>{128, 128, 128, 128});
  o.hopper.max_rows = kHopperTileRows[2];
  const Plan tall = make_plan(L, o);
  REQUIRE(validate_plan(L, tall).empty());
  REQUIRE(prefix_packs(tall) == std::vector<int>{128, 192, 192});
  for (const Pack& pk : tall.packs)
    if (pk.rows(s.group()) > kHopperTileRows[1]) REQUIRE(pk.tile == TileShape{192, kHopperKvTile, TileKernel::hopper});
  // The suffixes (32 tokens, shorter than wide_kv) stay at 64 rows or fewer.
  for (const Pack& pk : tall.packs)
    if (pk.kv_len < kDefaultHopperWideKv) REQUIRE(pk.rows(s.group()) <= kHopperTileRows[0]);
}

TEST_CASE("HopperRouting::min_piece: the KV split leaves 128- and 192-row packs pieces of that many tokens") {
  // 64 requests over a 1536-token prefix at group 4 (256 rows per KV head): with 128-row packs
  // allowed from 1024 tokens, two 128-row packs over the prefix, which the split cuts to fill 132
  // SMs. Without a minimum piece they become pieces of 192 tokens; with 256 no piece of them is
  // shorter than 256 (the halving then stops at 384); the 16-row suffix packs are cut alike.
  const Shape s = llama_shape();
  const PagedLayout L = build_layout(parse_tree_spec("1,64_1536,128"), s, true, 1);
  PlannerOptions o;
  o.tiles = TilePolicy::hopper;
  o.hopper = kStage8Routing;
  o.hopper.min_piece = 0;  // the split's own minimum first (stage 8's default is kDefaultHopperMinPiece)
  o.hopper.wide_kv = 1024;
  auto tall_pieces = [&](const Plan& p) {
    std::vector<int32_t> tokens;
    for (const Pack& pk : p.packs)
      if (pk.rows(s.group()) > kHopperMinRows) tokens.push_back(pk.kv_len);
    std::sort(tokens.begin(), tokens.end());
    return tokens;
  };
  auto small_pieces = [&](const Plan& p) {
    std::vector<std::pair<int32_t, int32_t>> out;  // (token_begin, kv_len) of the packs of 64 rows or fewer
    for (const Pack& pk : p.packs)
      if (pk.rows(s.group()) <= kHopperMinRows) out.emplace_back(pk.token_begin, pk.kv_len);
    std::sort(out.begin(), out.end());
    return out;
  };
  const Plan base = make_plan(L, o);
  REQUIRE(validate_plan(L, base).empty());
  const std::vector<int32_t> base_tall = tall_pieces(base);
  REQUIRE(base_tall.size() == 16);
  REQUIRE(base_tall.front() == 192);
  REQUIRE(base_tall.back() == 192);
  for (const int min_piece : {256, 384, 512, 1536, 4096, std::numeric_limits<int>::max()}) {
    CAPTURE(min_piece);
    o.hopper.min_piece = min_piece;
    const Plan p = make_plan(L, o);
    REQUIRE(validate_plan(L, p).empty());
    const std::vector<int32_t> tall = tall_pieces(p);
    REQUIRE_FALSE(tall.empty());
    REQUIRE(tall.front() >= std::min(min_piece, 1536));  // a pack shorter than the minimum stays whole
    REQUIRE(std::accumulate(tall.begin(), tall.end(), int64_t{0}) == 2 * 1536);
    REQUIRE(tall.size() < base_tall.size());
    REQUIRE(small_pieces(p).size() >= small_pieces(base).size() / 2);
  }
  // 0 is the split's own minimum only: the same plan as a routing that never names it.
  o.hopper.min_piece = 0;
  const Plan zero = make_plan(L, o);
  REQUIRE(tall_pieces(zero) == base_tall);
  REQUIRE(small_pieces(zero) == small_pieces(base));
  // Without stage 8's tiles the knob changes nothing (stage 7's plan).
  PlannerOptions seven;
  const Plan p7 = make_plan(L, seven);
  seven.hopper.min_piece = 1024;
  const Plan p7_piece = make_plan(L, seven);
  REQUIRE(p7.packs.size() == p7_piece.packs.size());
  for (size_t i = 0; i < p7.packs.size(); ++i) REQUIRE(p7.packs[i].blocks == p7_piece.packs[i].blocks);
  PlannerOptions bad;
  bad.tiles = TilePolicy::hopper;
  bad.hopper.min_piece = -1;
  REQUIRE_THROWS_AS(make_plan(L, bad), Error);
}

TEST_CASE("validator: hand-broken plans are rejected, naming the fault") {
  Shape s = small_shape(2, 16, 2);
  const PagedLayout L = build_layout(parse_tree_spec("1,3_70,40"), s, true, 4);  // 110 tokens: 7 blocks
  const Plan good = chunked_plan(L, 16);  // one page per pack, request r's packs in slot order
  REQUIRE(validate_plan(L, good).empty());
  auto pack_of = [&](const Plan& p, int r, int slot) {
    for (size_t i = 0; i < p.packs.size(); ++i)
      if (p.packs[i].queries[0] == r && p.packs[i].slots[0] == slot) return i;
    FAIL("no such pack");
    return size_t{0};
  };
  const auto& table0 = L.block_tables[0];

  SECTION("overlap") {
    Plan bad = good;
    Pack& p = bad.packs[pack_of(bad, 0, 1)];  // [16, 32) -> [0, 32)
    p.token_begin = 0;
    p.kv_len = 32;
    p.blocks = {table0[0], table0[1]};
    const auto faults = validate_plan(L, bad);
    INFO(join(faults));
    REQUIRE(has_fault(faults, "overlap: request 0 tokens [0, 16)"));
  }
  SECTION("gap") {
    // [broken gap]
    Plan bad = good;
    bad.packs.erase(bad.packs.begin() + static_cast<std::ptrdiff_t>(pack_of(bad, 0, 1)));
    for (Pack& p : bad.packs)
      if (p.queries[0] == 0 && p.slots[0] > 1) --p.slots[0];
    --bad.partials[0];
    const auto faults = validate_plan(L, bad);
    INFO(join(faults));
    REQUIRE(faults.size() == 1);
    REQUIRE(has_fault(faults, "gap: request 0 tokens [16, 32)"));
    // [broken gap]
  }
  SECTION("duplicate slot") {
    Plan bad = good;
    bad.packs[pack_of(bad, 0, 2)].slots[0] = 1;
    const auto faults = validate_plan(L, bad);
    INFO(join(faults));
    REQUIRE(has_fault(faults, "duplicate slot: request 0 slot 1"));
    REQUIRE(has_fault(faults, "missing slot: request 0 slot 2"));
  }
  SECTION("missing query") {
    Plan bad = good;
    bad.packs.erase(std::remove_if(bad.packs.begin(), bad.packs.end(), [](const Pack& p) { return p.queries[0] == 2; }),
                    bad.packs.end());
    bad.partials[2] = 0;
    const auto faults = validate_plan(L, bad);
    INFO(join(faults));
    REQUIRE(faults.size() == 1);
    REQUIRE(has_fault(faults, "missing query: request 2 is in no pack"));
  }
  SECTION("slots out of block order") {
    Plan bad = good;
    std::swap(bad.packs[pack_of(bad, 1, 0)].slots[0], bad.packs[pack_of(bad, 1, 3)].slots[0]);
    REQUIRE(has_fault(validate_plan(L, bad), "slot order: request 1"));
  }
  SECTION("a partial block before the query's last pack") {
    Plan bad = good;
    bad.packs[pack_of(bad, 0, 0)].kv_len = 10;
    const auto faults = validate_plan(L, bad);
    REQUIRE(has_fault(faults, "partial block: pack"));
    REQUIRE(has_fault(faults, "gap: request 0 tokens [10, 16)"));
  }
  SECTION("wrong blocks, misaligned range, partial counts") {
    Plan bad = good;
    std::swap(bad.packs[pack_of(bad, 0, 0)].blocks[0], bad.packs[pack_of(bad, 0, 1)].blocks[0]);
    REQUIRE(has_fault(validate_plan(L, bad), "blocks: pack"));
    bad = good;
    bad.packs[pack_of(bad, 0, 1)].token_begin = 8;
    REQUIRE(has_fault(validate_plan(L, bad), "alignment: pack"));
    bad = good;
    bad.partials[1] += 1;
    const auto faults = validate_plan(L, bad);
    REQUIRE(has_fault(faults, "partials: request 1"));
    REQUIRE(has_fault(faults, "missing slot: request 1"));
    bad = good;
    bad.partials.pop_back();
    REQUIRE(has_fault(validate_plan(L, bad), "partials: the plan has partial counts for"));
  }
  SECTION("rows beyond the tile, unbuilt tiles") {
    Shape wide = small_shape(16, 16, 1);
    const PagedLayout W = build_layout(parse_tree_spec("1,8_64,16"), wide, false, 1);
    PlannerOptions o;
    o.split_kv = false;
    Plan plan = make_plan(W, o);
    REQUIRE(validate_plan(W, plan).empty());
    Pack& prefix = plan.packs.front();  // 4 queries x 16 = 64 rows
    REQUIRE(prefix.queries.size() == 4);
    Plan bad = plan;
    bad.packs.front().tile = {32, 64};
    REQUIRE(has_fault(validate_plan(W, bad), "rows: pack 0 has 64 rows, more than its tile's m = 32"));
    bad = plan;
    Pack& other = bad.packs[1];
    REQUIRE(other.token_begin == 0);
    bad.packs.front().queries.push_back(other.queries.front());
    bad.packs.front().slots.push_back(0);
    other.queries.erase(other.queries.begin());
    other.slots.erase(other.slots.begin());
    REQUIRE(has_fault(validate_plan(W, bad), "rows: pack 0 has 80 rows"));
    bad = plan;
    bad.packs.front().tile = {48, 64};
    REQUIRE(has_fault(validate_plan(W, bad), "tile: pack 0 has tile 48x64"));
    // The kernel is part of the tile: stage 8's kernel runs 64, 128 or 192 rows x
    // hopper_kv_tile(rows) only, the pack kernel at most kMaxTileRows rows.
    bad = plan;
    bad.packs.front().tile = {32, kHopperKvTile, TileKernel::hopper};
    REQUIRE(has_fault(validate_plan(W, bad), "tile: pack 0 has tile 32x64h"));
    bad.packs.front().tile = {kHopperMaxRows, kHopperKvTile, TileKernel::pack};
    REQUIRE(has_fault(validate_plan(W, bad), "tile: pack 0 has tile 192x64,"));
    bad.packs.front().tile = {128, kHopperKvTile, TileKernel::hopper};
    REQUIRE(has_fault(validate_plan(W, bad), "tile: pack 0 has tile 128x64h"));
    bad.packs.front().tile = {kHopperMaxRows, kHopperKvTile, TileKernel::hopper};
    REQUIRE(validate_plan(W, bad).empty());
  }
}

TEST_CASE("validator: broken leaf tails are rejected, naming the fault") {
  Shape s = small_shape(4, 16, 2);
  const PagedLayout L = build_layout(parse_tree_spec("1,4_64,32"), s, true, 2);  // 4 leaves of 2 pages
  PlannerOptions o;
  o.take_leaves = true;
  o.split_kv = false;
  const Plan good = make_plan(L, o);
  REQUIRE(validate_plan(L, good).empty());
  REQUIRE(good.packs.size() == 1);
  REQUIRE(good.packs[0].tails.size() == 4);
  auto faults_of = [&](const Plan& bad) {
    const auto faults = validate_plan(L, bad);
    INFO(join(faults));
    return faults;
  };
  SECTION("a tail reads another request's block") {
    Plan bad = good;
    std::swap(bad.packs[0].tails[0].blocks[1], bad.packs[0].tails[1].blocks[1]);
    REQUIRE(has_fault(faults_of(bad), "tails: pack 0 reads physical block"));
  }
  SECTION("a second tail of one query") {
    Plan bad = good;
    bad.packs[0].tails[1].entry = bad.packs[0].tails[0].entry;
    REQUIRE(has_fault(faults_of(bad), "tails: pack 0 tail 1 is a second tail of entry"));
  }
  SECTION("a tail shorter than its request's rest leaves a gap") {
    Plan bad = good;
    bad.packs[0].tails[2].kv_len = 16;
    bad.packs[0].tails[2].blocks.pop_back();
    REQUIRE(has_fault(faults_of(bad), "gap: request"));
  }
  SECTION("a tail that ends inside a page before the last") {
    Plan bad = good;
    bad.packs[0].tails[0].kv_len = 20;
    REQUIRE(has_fault(faults_of(bad), "tails: pack 0 tail 0 ends inside a page but is not the pack's last tail"));
  }
  SECTION("tails after a range that ends inside a block") {
    Plan bad = good;
    bad.packs[0].kv_len = 60;
    bad.packs[0].blocks.resize(4);
    REQUIRE(has_fault(faults_of(bad), "tails: pack 0 has tails after a range ending at token 60"));
  }
  SECTION("the tails' tile on a pack without tails, and a plain tile on one with tails") {
    Plan bad = good;
    bad.packs[0].tile.kernel = TileKernel::pack;
    REQUIRE(has_fault(faults_of(bad), "tile: pack 0 has tails but tile"));
    Plan bare = good;
    bare.packs[0].tails.clear();
    REQUIRE(has_fault(faults_of(bare), "tile: pack 0 has the tails' tile"));
  }
}

TEST_CASE("traffic model: floor <= packed <= per request <= per query head") {
  SECTION("a shared prefix") {
    const PagedLayout L = build_layout(parse_tree_spec("1,64_4096,256"), llama_shape(), true, 1);
    const Plan plan = make_plan(L, PlannerOptions{});
    const Traffic t = traffic_model(L, plan);
    REQUIRE(t.unique == L.unique_kv_bytes() + L.q_and_out_bytes());
    REQUIRE(t.per_request == L.total_kv_bytes() + L.q_and_out_bytes());
    REQUIRE(t.per_query_head == 4 * L.total_kv_bytes() + L.q_and_out_bytes());
    REQUIRE(t.unique < t.packed);
    REQUIRE(t.packed < t.per_request / 3);
    REQUIRE(t.per_request < t.per_query_head);
  }
  SECTION("no sharing, no split: the packed plan reads what one request per CTA reads") {
    const PagedLayout L = build_layout(parse_tree_spec("64_2048"), llama_shape(), true, 1);
    PlannerOptions o;
    o.split_kv = false;
    const Traffic t = traffic_model(L, make_plan(L, o));
    REQUIRE(t.packed == t.per_request);
    REQUIRE(t.unique == t.per_request);
  }
}

TEST_CASE("planning time: 1024 requests on a 3-level tree") {
  const PagedLayout L = build_layout(parse_tree_spec("1,8,1024_2048,512,64"), llama_shape(), true, 1);
  Plan plan;
  std::vector<double> ms;
  for (int run = 0; run < kPlanTimingRuns; ++run) {
    const auto t0 = std::chrono::steady_clock::now();
    plan = make_plan(L, PlannerOptions{});
    ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
  }
  std::sort(ms.begin(), ms.end());
  const double median = ms[ms.size() / 2];
  std::printf("planning 1024 requests (1,8,1024_2048,512,64, 32/8 heads): %.3f ms (median of %d), %zu packs\n", median,
              kPlanTimingRuns, plan.packs.size());
  REQUIRE(validate_plan(L, plan).empty());
  // The budget is 1 ms per request; the planner should be far below it.
  REQUIRE(median < 1.0 * L.num_requests());
}

TEST_CASE("layouts that do not match their lengths are usage errors") {
  PagedLayout L = build_layout(parse_tree_spec("1,2_40,8"), llama_shape(), false, 1);
  L.block_tables[1].pop_back();
  REQUIRE_THROWS_AS(make_plan(L, PlannerOptions{}), Error);
}
