// The wave model of a plan's CTAs (planner/waves.hpp): waves and last-wave fill, the
// longest-first schedule against hand-worked cases, the plans make_plan() makes, and bad input.
#include <algorithm>
#include <cstdint>
#include <string>
#include <vector>

#include "../catch.hpp"
#include "close_to.hpp"
#include "../test_util.hpp"
#include "patlab/error.hpp"
#include "patlab/model/kv_cache.hpp"
#include "patlab/model/workload.hpp"
#include "patlab/planner/planner.hpp"
#include "patlab/planner/planner_steps.hpp"
#include "patlab/planner/tile_budget.hpp"
#include "patlab/planner/waves.hpp"
#include "patlab/truth/dtype.hpp"

using namespace patlab;
using patlab::plan_steps::kFillTieFraction;

namespace {

/// A plan of `count` packs of `kv_len` tokens each (one query each; only kv_len counts here).
Plan equal_packs(int count, int32_t kv_len) {
  Plan plan;
  for (int i = 0; i < count; ++i) {
    Pack p;
    p.queries.push_back(i);
    p.kv_len = kv_len;
    plan.packs.push_back(p);
  }
  return plan;
}

}  // namespace

TEST_CASE("64 requests of 16K tokens at 32/8 on 132 SMs x 3: 1.3 waves, the issue's example", "[waves]") {
  const Shape shape = shape_of(32, 8, 128, 16);
  const WaveReport r = wave_report(equal_packs(64, 16384), shape, 132, 3);
  CHECK(r.ctas == 512);
  CHECK(r.slots == 396);
  CHECK(r.waves == 2);
  CHECK(close_to(r.last_wave_fill, 116.0 / 396.0));
  CHECK(r.makespan_tokens == 2 * 16384);     // 116 slots run two CTAs back to back
  CHECK(r.balanced_tokens == (512 * 16384 + 395) / 396);
  CHECK(close_to(r.balance(), 21184.0 / 32768.0));
}

TEST_CASE("CTAs that fill the slots exactly make one full wave and a perfect balance", "[waves]") {
  const Shape shape = shape_of(32, 8, 128, 16);
  const WaveReport r = wave_report(equal_packs(33, 1000), shape, 132, 2);  // 264 CTAs, 264 slots
  CHECK(r.waves == 1);
  CHECK(close_to(r.last_wave_fill, 1.0));
  CHECK(r.makespan_tokens == 1000);
  CHECK(close_to(r.balance(), 1.0));
}

TEST_CASE("the longest CTA bounds the schedule; the short ones pack around it", "[waves]") {
  const Shape shape = shape_of(4, 1, 128, 16);  // one CTA per pack
  Plan plan = equal_packs(6, 100);
  plan.packs[3].kv_len = 500;  // one long pack among five short
  const WaveReport r = wave_report(plan, shape, 2, 1);  // two slots
  // Longest first: slot A takes the 500, slot B the five 100s back to back (500): both end at 500.
  CHECK(r.makespan_tokens == 500);
  CHECK(r.balanced_tokens == 500);
  CHECK(r.waves == 3);
  CHECK(close_to(r.balance(), 1.0));
  plan.packs[3].kv_len = 900;
  CHECK(wave_report(plan, shape, 2, 1).makespan_tokens == 900);  // now the long one alone decides
}

TEST_CASE("make_plan's KV split brings a short batch up to the slots", "[waves]") {
  // 8 requests of 8192 tokens, no sharing, 32/8: 64 CTAs unsplit on 264 slots. The split cuts them
  // to at least the target, and the schedule ends within a factor 2 of the balanced bound.
  const PagedLayout L = build_layout(parse_tree_spec("8_8192"), shape_of(32, 8, 128, 16), false, 1);
  PlannerOptions whole;
  whole.split_kv = false;
  const WaveReport before = wave_report(make_plan(L, whole), L.shape, kDefaultSms, kSplitCtasPerSm);
  const WaveReport after = wave_report(make_plan(L, PlannerOptions{}), L.shape, kDefaultSms, kSplitCtasPerSm);
  CHECK(before.ctas == 64);
  CHECK(before.balance() < 0.25);
  CHECK(after.ctas >= after.slots);
  CHECK(after.makespan_tokens < before.makespan_tokens);
  CHECK(after.balance() > 0.5);
}

TEST_CASE("wave_report refuses a GPU without slots", "[waves]") {
  const Shape shape = shape_of(32, 8, 128, 16);
  CHECK_THROWS_AS(wave_report(equal_packs(1, 16), shape, 0, 2), Error);
  CHECK_THROWS_AS(wave_report(equal_packs(1, 16), shape, 132, 0), Error);
  const WaveReport empty = wave_report(Plan{}, shape, 132, 2);
  CHECK(empty.ctas == 0);
  CHECK(empty.waves == 0);
}

TEST_CASE("lpt_schedule: the time of the tail, when the CTAs left stream faster", "[waves]") {
  // The example again: 512 CTAs of 16384 tokens on 132 SMs x 3. 396 start at once; 116 start
  // at 16384 when the first ones end; from then on 116 CTAs run, at most one per SM, each at the
  // cap of 2 slots' shares: the tail takes 16384 / 2.
  std::vector<CtaGroup> groups{{16384, 512}};
  const LptSchedule s = lpt_schedule(groups, 132, 3);
  CHECK(s.makespan_tokens == 2 * 16384);
  CHECK(s.last_start == 16384);
  CHECK(close_to(s.time, 16384 + 16384 / kCtaRateCap));
  // 192 CTAs on 132 SMs: 60 SMs hold two, which share the SM's 3 slots' worth: 1.5 each.
  std::vector<CtaGroup> two_per_sm{{1000, 192}};
  CHECK(close_to(lpt_schedule(two_per_sm, 132, 3).time, 1000 / 1.5));
  // Mixed lengths start longest first: one slot takes 500, the other five 100s (schedule of the
  // test above), both busy to the end.
  std::vector<CtaGroup> mixed{{100, 5}, {500, 1}};
  const LptSchedule m = lpt_schedule(mixed, 2, 1, 1.0);
  CHECK(m.makespan_tokens == 500);
  CHECK(m.last_start == 400);
  CHECK(close_to(m.time, 500));
  std::vector<CtaGroup> none;
  CHECK_THROWS_AS(lpt_schedule(none, 0, 3), Error);
  CHECK_THROWS_AS(lpt_schedule(none, 132, 3, 0.5), Error);
}

namespace {

/// make_plan() of `spec` (no sharing unless the spec shares) at `heads` Hq/Hkv, d=128, page 16,
/// on 132 SMs holding 3 CTAs of every tile, with its PlanInfo.
Plan plan_with_fill(const std::string& spec, int hq, int hkv, PlanInfo& info, PlannerOptions o = PlannerOptions{}) {
  const PagedLayout L = build_layout(parse_tree_spec(spec), shape_of(hq, hkv, 128, 16), true, 1);
  o.ctas_per_sm.fill(3);
  const Plan plan = make_plan(L, o, &info);
  INFO(spec << ": " << info.fill.choice);
  REQUIRE(validate_plan(L, plan).empty());
  return plan;
}

}  // namespace

TEST_CASE("wave fill: few long requests are cut to one full wave", "[waves][fill]") {
  PlanInfo info;
  // 16 requests of 32K at 32/8: 128 CTAs on 396 slots. Three parts each make 384 CTAs: one wave,
  // 97% full; the fair-share halving made 512 (4 parts), 1.3 waves.
  Plan plan = plan_with_fill("16_32768", 32, 8, info);
  CHECK(info.fill.evaluated);
  CHECK(info.fill.slots == 396);
  CHECK(info.fill.ctas_fair == 512);
  CHECK(plan.packs.size() == 48);
  CHECK(info.fill.cost_chosen < info.fill.cost_fair);
  CHECK(info.fill.cost_chosen < info.fill.cost_whole);
  // 8 requests of 32K at 64/8: 64 CTAs, six parts each: 384.
  plan = plan_with_fill("8_32768", 64, 8, info);
  CHECK(plan.packs.size() == 48);
  // 48 requests of 8K: 384 CTAs already fill a wave: no cut.
  plan = plan_with_fill("48_8192", 32, 8, info);
  CHECK(info.fill.choice == "no cut");
  CHECK(plan.packs.size() == 48);
}

TEST_CASE("wave fill: an fp8 CTA at d = 256 streams one slot's share, so the fill cuts", "[waves][fill]") {
  // The rate cap: fp16 at every d and fp8 up to d = 128 keep kCtaRateCap; fp8 at d = 256 falls to 1.
  CHECK(cta_rate_cap(2, 256) == kCtaRateCap);
  CHECK(cta_rate_cap(1, 64) == kCtaRateCap);
  CHECK(cta_rate_cap(1, 128) == kCtaRateCap);
  CHECK(cta_rate_cap(1, 256) == 1.0);
  // Gemma-2-9B (16/8 heads, d = 256), 16 requests of 8192 tokens: 128 CTAs. With fp16 the 16x64
  // tile holds one CTA per SM (132 slots) and a lone CTA streams at the copy rate: no cut. With fp8
  // it holds two (264 slots) and a lone CTA only a slot's share: two parts each, 256 CTAs.
  for (KvDType kv : {KvDType::same, KvDType::fp8_e4m3}) {
    const Shape shape = shape_of(16, 8, 256, 16, DType::fp16, kv);
    const PagedLayout L = build_layout(parse_tree_spec("16_8192"), shape, true, 1);
    PlannerOptions o;
    o.ctas_per_sm.fill(estimate_ctas_per_sm(256, 16, 64, shape.kv_element_bytes()));
    PlanInfo info;
    const Plan plan = make_plan(L, o, &info);
    INFO(kv_dtype_option_name(kv) << ": " << info.fill.choice);
    REQUIRE(validate_plan(L, plan).empty());
    CHECK(info.fill.slots == (kv == KvDType::same ? 132 : 264));
    CHECK(plan.packs.size() == (kv == KvDType::same ? 16u : 32u));
  }
}

TEST_CASE("wave fill: the issue's 1.3 waves keep a full wave whole and cut the tail", "[waves][fill]") {
  // 64 requests of 16K at 32/8: 512 CTAs, 1.3 waves, and no piece is longer than the fair share, so
  // the halving cuts nothing. The fill keeps the 49 longest packs whole (392 CTAs, one wave) and
  // cuts the other 15 into three parts: the tail's 360 CTAs fill the second wave.
  PlanInfo info;
  const Plan plan = plan_with_fill("64_16384", 32, 8, info);
  CHECK(info.fill.ctas_fair == 512);
  CHECK(info.fill.choice == "1 waves whole, the rest in 3 parts");
  CHECK(plan.packs.size() == 49 + 15 * 3);
  CHECK(static_cast<double>(info.fill.cost_chosen) < 0.95 * static_cast<double>(info.fill.cost_whole));
}

TEST_CASE("wave fill window: 5.2 waves are priced only in a window of more than 5", "[waves][fill]") {
  // 256 requests of 1024 tokens at 32/8: 2048 CTAs on 396 slots, 5.2 waves, the last 17% full.
  PlanInfo info;
  PlannerOptions narrow_window;
  narrow_window.fill_window_waves = 4;
  const Plan narrow = plan_with_fill("256_1024", 32, 8, info, narrow_window);
  CHECK_FALSE(info.fill.evaluated);  // 4 waves leave it as the walk made it
  CHECK(narrow.packs.size() == 256);
  REQUIRE(patlab::kDefaultFillWindowWaves >= 6);  // the default (8, measured) prices it
  const Plan cut = plan_with_fill("256_1024", 32, 8, info);
  REQUIRE(info.fill.evaluated);
  // Five full waves stay whole (1980 CTAs: 247 packs of 8 KV heads); the other 9 requests are cut
  // into 5 parts each, 360 CTAs: a sixth wave 91% full instead of 17%, priced below no cut.
  CHECK(info.fill.choice == "5 waves whole, the rest in 5 parts");
  CHECK(cut.packs.size() == 247 + 9 * 5);
  CHECK(info.fill.cost_chosen < info.fill.cost_whole);
  // A window of 1 wave prices nothing here, as the fill was before it existed.
  PlannerOptions one;
  one.fill_window_waves = 1;
  plan_with_fill("16_8192", 32, 8, info, one);  // 128 CTAs: within one wave, still priced
  CHECK(info.fill.evaluated);
  plan_with_fill("64_16384", 32, 8, info, one);  // 512 CTAs: 1.3 waves, outside the window
  CHECK_FALSE(info.fill.evaluated);
}

TEST_CASE("wave fill: never above no cut or the fair-share cuts; its limits hold", "[waves][fill]") {
  const char* specs[] = {"64_16384", "100_12000", "128_8192", "4_32768", "1,10_4096,416", "1,2,64_1024,256,256",
                         "3,9_2000,900", "1,64_32768,512", "40_3000"};
  for (const char* spec : specs)
    for (int hkv : {2, 8}) {
      PlanInfo info;
      const Plan plan = plan_with_fill(spec, 32, hkv, info);
      INFO(spec << " Hkv " << hkv << ": " << info.fill.choice);
      if (!info.fill.evaluated) {
        CHECK(info.fill.ctas_whole > patlab::kDefaultFillWindowWaves * info.fill.slots);
        CHECK(info.fill.ctas_chosen == info.fill.ctas_fair);
        continue;
      }
      CHECK(info.fill.cost_chosen <= std::min(info.fill.cost_whole, info.fill.cost_fair) * (1 + kFillTieFraction));
      CHECK(static_cast<int64_t>(plan.packs.size()) * hkv == info.fill.ctas_chosen);
      // Pieces: at least min_split_blocks blocks each, at most max_splits_per_query added per query.
      for (const Pack& p : plan.packs)
        if (plan.partials[static_cast<size_t>(p.queries[0])] > 1) CHECK(p.kv_len > 0);
    }
  // The cap: one added piece per query at most, so no pack is cut into more than two.
  PlannerOptions capped;
  capped.max_splits_per_query = 1;
  PlanInfo info;
  const Plan plan = plan_with_fill("4_32768", 32, 8, info, capped);
  for (int32_t k : plan.partials) CHECK(k <= 2);
  // The shortest piece: no part under min_split_blocks blocks.
  PlannerOptions long_pieces;
  long_pieces.min_split_blocks = 1024;  // 16K tokens: a 32K request makes two parts at most
  const Plan coarse = plan_with_fill("4_32768", 32, 8, info, long_pieces);
  for (const Pack& p : coarse.packs) CHECK(p.kv_len >= 1024 * 16);
  // Off: the fair-share cuts alone.
  PlannerOptions off;
  off.fill_waves = false;
  plan_with_fill("16_32768", 32, 8, info, off);
  CHECK_FALSE(info.fill.evaluated);
  CHECK(info.fill.ctas_chosen == 512);
}

TEST_CASE("KV split: a row class's cuts must shorten its own kernel", "[waves][split]") {
  // Gemma-2-9B's shape (16/8 heads, d = 256) on a 4-level tree: 16 prefix packs of 64 rows (1408
  // tokens each, 128 CTAs) beside 512 one-tile packs of 2 rows. The fair-share rule halves the
  // prefix packs. With one 64-row CTA per SM (132 slots) their 128 CTAs are one wave, and 256
  // halves two: the class's kernel ends no earlier, so the packs stay whole. Two per SM would make
  // the halves one wave, half as long, but the 4096 CTAs of 2 rows want room on every SM, and a
  // 16x64 CTA at d = 256 (136 KB) fits beside no 64x64 one (160 KB): the class keeps one slot per
  // SM, and the packs stay whole again.
  const PagedLayout L = build_layout(parse_tree_spec("1,4,16,512_1024,256,128,32"), shape_of(16, 8, 256, 16), true, 1);
  const auto prefix_packs = [](const Plan& plan) {
    return std::count_if(plan.packs.begin(), plan.packs.end(), [](const Pack& p) { return p.queries.size() * 2 > 32; });
  };
  PlannerOptions o;
  o.split_kv = true;
  o.fill_waves = false;
  o.ctas_per_sm = {3, 3, 1, 1};
  PlanInfo info;
  const Plan one = make_plan(L, o, &info);
  REQUIRE(validate_plan(L, one).empty());
  CHECK(prefix_packs(one) == 16);
  o.ctas_per_sm = {3, 3, 2, 2};
  const Plan two = make_plan(L, o, &info);
  REQUIRE(validate_plan(L, two).empty());
  CHECK(prefix_packs(two) == 16);
}

TEST_CASE("KV split: a larger class's cuts leave room for the smallest class's CTAs", "[waves][split]") {
  // d = 128, two 64x64 CTAs (81 KB each) or three 16x64 ones (69 KB) per SM; one of the first
  // leaves room for two of the second, two leave none (docs/results/2026-12-03-h200-cta-timeline).
  PlannerOptions o;
  o.ctas_per_sm = {3, 3, 2, 2};
  const auto prefix_packs = [](const Plan& plan, int group) {
    return std::count_if(plan.packs.begin(), plan.packs.end(),
                         [&](const Pack& p) { return p.rows(group) > 32; });
  };
  // 16 prefix packs of 8192 tokens (128 CTAs) beside 2048 CTAs of 16 rows: halved, they would be
  // 256 CTAs, two on most SMs, and the 16-row CTAs would wait for them; on one slot per SM the
  // halves end no earlier, so the packs stay whole.
  const PagedLayout wide = build_layout(parse_tree_spec("4,256_8192,512"), shape_of(32, 8, 128, 16), true, 1);
  const Plan kept = make_plan(wide, o);
  REQUIRE(validate_plan(wide, kept).empty());
  CHECK(prefix_packs(kept, 4) == 16);
  // 8 prefix packs of 1280 tokens (64 CTAs) beside 512 CTAs of 16 rows: halved, 128 CTAs, one per
  // SM with room beside each: the cut stands.
  const PagedLayout narrow = build_layout(parse_tree_spec("1,2,64_1024,256,256"), shape_of(64, 8, 128, 16), true, 1);
  const Plan cut = make_plan(narrow, o);
  REQUIRE(validate_plan(narrow, cut).empty());
  CHECK(prefix_packs(cut, 8) == 16);
  // With more SMs than 16-row CTAs the small class cannot want every SM, and the halving of the
  // wide tree stands.
  o.sms = 4096;
  const Plan many = make_plan(wide, o);
  REQUIRE(validate_plan(wide, many).empty());
  CHECK(prefix_packs(many, 4) > 16);
}
