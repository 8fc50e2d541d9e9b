// The wave model of a plan's CTAs (planner/waves.hpp): waves and last-wave fill, the
// longest-first schedule against hand-worked cases, the plans make_plan() makes, and bad input.
#include <cstdint>
#include <vector>

#include "../catch.hpp"
#include "close_to.hpp"
#include "../test_util.hpp"
#include "patlab/error.hpp"
#include "patlab/model/kv_cache.hpp"
#include "patlab/model/workload.hpp"
#include "patlab/planner/planner.hpp"
#include "patlab/planner/waves.hpp"

using namespace patlab;

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
