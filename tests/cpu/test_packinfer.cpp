// PackInfer on the host (packinfer/groups.hpp, packinfer/layout.hpp): coverage and the balance
// bound of the groups on heterogeneous batches and trees, co-location, the validator failing on
// broken groups (and on a request cut differently at two KV heads), the bytes of one group, the
// regions' maps, the GPU's flattened items (the same K/V through region slots as through
// blocks), the re-layout's bytes, a hand-worked payoff, the policy's refusals and bad parameters.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <map>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

#include "../catch.hpp"
#include "../test_util.hpp"
#include "patlab/error.hpp"
#include "patlab/model/hetero.hpp"
#include "patlab/model/kv_cache.hpp"
#include "patlab/model/traffic.hpp"
#include "patlab/packinfer/group_kernel.hpp"
#include "patlab/packinfer/groups.hpp"
#include "patlab/packinfer/layout.hpp"
#include "patlab/planner/planner_steps.hpp"

using namespace patlab;
using namespace patlab::packinfer;

namespace {

/// A heterogeneous batch laid out at 32/8, d=128, page 16 (seed printed by the callers).
PagedLayout hetero_layout(uint64_t seed, int requests, double shared) {
  HeteroOptions h;
  h.requests = requests;
  h.shared = shared;
  return build_layout(hetero_batch(seed, h), shape_of(32, 8, 128, 16), true, seed);
}

/// Checks that `plan` is valid and within its bound.
void check_groups(const PagedLayout& layout, const GroupPlan& plan) {
  const std::vector<std::string> faults = validate_groups(layout, plan);
  INFO("first fault: " << (faults.empty() ? "" : faults.front()));
  CHECK(faults.empty());
  CHECK(static_cast<int64_t>(plan.groups.size()) == plan.slots);
  CHECK(plan.max_cost() <= plan.bound());
  int64_t sum = 0;
  for (const Group& g : plan.groups) sum += g.cost;
  CHECK(plan.mean_cost == (sum + plan.slots - 1) / plan.slots);
}

/// Options for `sms` SMs of `ctas` CTAs each.
GroupOptions options_of(int sms, int ctas, Units units) {
  GroupOptions o;
  o.sms = sms;
  o.ctas_per_sm = ctas;
  o.units = units;
  return o;
}

/// The group each (family, head) of `plan` has items in.
std::map<std::pair<int32_t, int32_t>, std::set<size_t>> family_groups(const GroupPlan& plan) {
  std::map<std::pair<int32_t, int32_t>, std::set<size_t>> out;
  for (size_t g = 0; g < plan.groups.size(); ++g)
    for (const WorkItem& it : plan.groups[g].items) out[{it.family, it.kv_head}].insert(g);
  return out;
}

}  // namespace

TEST_CASE("groups cover every (request, KV head, token) once and keep the bound on hetero batches", "[packinfer]") {
  for (uint64_t seed : {1u, 2u, 3u})
    for (double shared : {0.75, 0.0})
      for (int requests : {24, 96})
        for (Units units : {Units::packs, Units::requests}) {
          INFO("hetero seed " << seed << ", shared " << shared << ", " << requests << " requests, " << units_name(units));
          const PagedLayout layout = hetero_layout(seed, requests, shared);
          check_groups(layout, make_groups(layout, options_of(132, 3, units)));
        }
}

TEST_CASE("groups cover and keep the bound on random trees", "[packinfer]") {
  RandomTreeOptions r;
  for (uint64_t seed = 1; seed <= 12; ++seed) {
    INFO("random tree seed " << seed);
    const PagedLayout layout = build_layout(random_tree(seed, r), shape_of(16, 4, 64, 16), true, seed);
    for (Units units : {Units::packs, Units::requests}) check_groups(layout, make_groups(layout, options_of(8, 2, units)));
  }
}

TEST_CASE("with many requests per slot the groups are balanced within a few per cent", "[packinfer]") {
  const PagedLayout layout = hetero_layout(1, 960, 0.75);  // seed 1: ten times hetero96
  const GroupPlan plan = make_groups(layout, options_of(16, 2, Units::requests));
  check_groups(layout, plan);
  CHECK(static_cast<double>(plan.max_cost()) <= 1.05 * static_cast<double>(plan.mean_cost));
}

TEST_CASE("a family within the cap is co-located; one over it is spread", "[packinfer]") {
  // Two roots of 4 requests each on 2 groups: each family is half the work, within the cap.
  const PagedLayout small = build_layout(parse_tree_spec("2,8_512,64"), shape_of(4, 1, 64, 16), true, 5);
  const GroupPlan together = make_groups(small, options_of(1, 2, Units::requests));
  check_groups(small, together);
  CHECK(together.families_colocated == 2);
  for (const auto& f : family_groups(together)) CHECK(f.second.size() == 1);
  // One root over 16 groups: the family is over the cap, so its items spread over the groups.
  const PagedLayout one = build_layout(parse_tree_spec("1,16_512,1024"), shape_of(4, 1, 64, 16), true, 5);
  const GroupPlan spread = make_groups(one, options_of(8, 2, Units::requests));
  check_groups(one, spread);
  CHECK(spread.families_spread == 1);
  CHECK(family_groups(spread).begin()->second.size() > 1);
}

TEST_CASE("the validator finds a missing item, a repeated item and a wrong cost", "[packinfer]") {
  const PagedLayout layout = hetero_layout(2, 24, 0.75);
  const GroupPlan good = make_groups(layout, options_of(8, 2, Units::packs));
  REQUIRE(validate_groups(layout, good).empty());
  auto first_busy = [](GroupPlan& p) -> Group& {
    return *std::find_if(p.groups.begin(), p.groups.end(), [](const Group& g) { return !g.items.empty(); });
  };
  GroupPlan missing = good;
  first_busy(missing).items.pop_back();
  CHECK(!validate_groups(layout, missing).empty());
  GroupPlan repeated = good;
  Group& g = first_busy(repeated);
  g.items.push_back(g.items.front());
  price_group(layout, repeated.unit_list, g);
  CHECK(!validate_groups(layout, repeated).empty());
  GroupPlan mispriced = good;
  first_busy(mispriced).cost += 1;
  CHECK(!validate_groups(layout, mispriced).empty());
  GroupPlan overcharged = good;
  first_busy(overcharged).charged_bytes += 1;
  CHECK(!validate_groups(layout, overcharged).empty());
}

TEST_CASE("a group's cost counts a block its items share once, its charged bytes once per item", "[packinfer]") {
  // One prefix of 512 tokens (32 blocks) under 8 requests of 64 own tokens, group 1, 16-row units
  // of requests: on one group every unit's item reads the prefix, so the prefix's bytes are in
  // the cost once and in the charged bytes 8 times.
  const Shape shape = shape_of(1, 1, 64, 16);
  const PagedLayout layout = build_layout(parse_tree_spec("1,8_512,64"), shape, true, 3);
  const GroupPlan plan = make_groups(layout, options_of(1, 1, Units::requests));
  check_groups(layout, plan);
  REQUIRE(plan.groups.size() == 1);
  const Group& g = plan.groups[0];
  const int64_t token = 2 * 64 * 2;  // K and V, d = 64, fp16
  CHECK(g.kv_bytes == (512 + 8 * 64) * token);
  CHECK(g.charged_bytes - g.cost == 7 * 512 * token);
  CHECK(plan.max_charged() == g.charged_bytes);
}

TEST_CASE("the validator finds a request cut differently at two KV heads", "[packinfer]") {
  const PagedLayout layout = hetero_layout(2, 24, 0.75);
  GroupPlan plan = make_groups(layout, options_of(8, 2, Units::packs));
  REQUIRE(validate_groups(layout, plan).empty());
  // One item of KV head 1 with two blocks or more, cut in two: every token is still covered once,
  // but its requests now have one item more at head 1 than at head 0.
  const int page = layout.shape.page_size;
  bool cut = false;
  for (Group& g : plan.groups) {
    for (size_t i = 0; i < g.items.size() && !cut; ++i) {
      const WorkItem it = g.items[i];
      if (it.kv_head != 1 || it.block_end - it.block_begin < 2) continue;
      WorkItem head = it, tail = it;
      head.block_end = tail.block_begin = it.block_begin + 1;
      head.token_end = tail.token_begin = it.token_begin + page;
      g.items[i] = head;
      g.items.push_back(tail);
      cut = true;
    }
  }
  REQUIRE(cut);
  const std::vector<std::string> faults = validate_groups(layout, plan);
  CHECK(std::any_of(faults.begin(), faults.end(),
                    [](const std::string& f) { return f.find("items at KV head 1") != std::string::npos; }));
}

TEST_CASE("one group's bytes are the walk plan's with direct output; alone requests read the floor", "[packinfer]") {
  // One slot: every item whole in one group, so the group kernel reads what stage 6's plan (the
  // walk's packs, no split) reads, with direct output for requests in one pack.
  for (double shared : {0.75, 0.0}) {
    INFO("shared " << shared);
    const PagedLayout layout = hetero_layout(3, 24, shared);
    const GroupPlan plan = make_groups(layout, options_of(1, 1, Units::packs));
    REQUIRE(validate_groups(layout, plan).empty());
    CHECK(plan.cuts == 0);
    PlannerOptions po;
    po.split_kv = false;
    CHECK(group_plan_bytes(layout, plan) == traffic::plan_bytes(layout, make_plan(layout, po), true));
    if (shared == 0.0) {
      const std::vector<int32_t> k = partials_per_request(layout, plan);
      CHECK(std::all_of(k.begin(), k.end(), [](int32_t n) { return n == 1; }));
      CHECK(group_plan_bytes(layout, plan) == traffic::unique_bytes(layout));
    }
  }
}

TEST_CASE("region maps are bijections onto the copied slots, shared blocks once, tails after them", "[packinfer]") {
  const int reserve = 20;
  for (Units units : {Units::packs, Units::requests}) {
    const PagedLayout layout = hetero_layout(3, 48, 0.75);
    const GroupPlan plan = make_groups(layout, options_of(16, 2, units));
    const std::vector<GroupRegion> regions = build_regions(layout, plan, reserve);
    REQUIRE(regions.size() == plan.groups.size());
    const int page = layout.shape.page_size;
    int64_t tails = 0;
    for (size_t g = 0; g < regions.size(); ++g) {
      const GroupRegion& region = regions[g];
      const std::vector<std::pair<BlockKey, int32_t>> position = region_positions(layout, plan, plan.groups[g], region);
      std::set<std::pair<int32_t, int32_t>> keys(region.copied.begin(), region.copied.end());
      CHECK(keys.size() == region.copied.size());  // a block of a head is stored once per region
      std::vector<int> hit(region.copied.size(), 0);
      for (size_t k = 1; k < position.size(); ++k)  // sorted, each key once
        REQUIRE(position[k - 1].first < position[k].first);
      for (const auto& p : position) {
        const auto [r, h, b] = p.first;
        REQUIRE(p.second >= 0);
        REQUIRE(static_cast<size_t>(p.second) < region.copied.size());
        ++hit[static_cast<size_t>(p.second)];
        CHECK(region.copied[static_cast<size_t>(p.second)] ==
              std::make_pair(layout.block_tables[static_cast<size_t>(r)][static_cast<size_t>(b)], h));
      }
      CHECK(std::count(hit.begin(), hit.end(), 0) == 0);  // onto: every slot is some request's block
      std::set<int32_t> tail_slots;
      for (const auto& t : region.tail) {
        CHECK(t.second >= static_cast<int32_t>(region.copied.size()));
        tail_slots.insert(t.second);
      }
      CHECK(tail_slots.size() == region.tail.size());
      if (!tail_slots.empty()) CHECK(*tail_slots.rbegin() == region.slots() - 1);
      tails += static_cast<int64_t>(region.tail.size());
    }
    // Every request at every head gets the blocks its next `reserve` tokens need, in one region.
    int64_t want = 0;
    for (int32_t len : layout.lengths) want += ((len + reserve + page - 1) / page - (len + page - 1) / page);
    CHECK(tails == want * layout.shape.num_kv_heads);
  }
}

TEST_CASE("the re-layout copies exactly the groups' distinct blocks", "[packinfer]") {
  const PagedLayout layout = hetero_layout(4, 64, 0.75);
  const GroupPlan plan = make_groups(layout, options_of(16, 2, Units::packs));
  const std::vector<GroupRegion> regions = build_regions(layout, plan, kDefaultReserveSteps);
  int64_t tokens = 0, slots = 0;
  std::map<std::pair<int32_t, int32_t>, int> copies;
  for (const Group& g : plan.groups) {
    std::set<std::pair<int32_t, int32_t>> keys;
    for (const WorkItem& it : g.items)
      for (int32_t i = it.block_begin; i < it.block_end; ++i)
        keys.insert({plan.unit_list[static_cast<size_t>(it.unit)].blocks[static_cast<size_t>(i)], it.kv_head});
    for (const auto& k : keys) {
      tokens += layout.used_tokens[static_cast<size_t>(k.first)];
      ++copies[k];
    }
    slots += static_cast<int64_t>(keys.size());
  }
  const Amortisation a = amortise(layout, plan, regions, kRunFixedBytes);
  CHECK(a.copied_bytes == head_bytes(layout.shape, tokens));
  CHECK(a.relayout_cost == 2 * a.copied_bytes + 2 * slots * kRunFixedBytes);
  int64_t dup = 0;
  for (const auto& c : copies) dup += (c.second - 1) * head_bytes(layout.shape, layout.used_tokens[static_cast<size_t>(c.first.first)]);
  CHECK(a.duplicate_bytes == dup);
}

namespace {

/// Checks what stage 10's kernels do with flatten_groups()'s arrays, on the host: the re-layout's
/// copies fill a region pool from a pool whose every (block, head, token) holds its own id; then
/// every item, read through its physical blocks and through its region slots, sees the same ids
/// (and only tokens that hold data). Every (request, KV head) gets each partial slot of its
/// request once, or -1 on all its items when the request is written directly.
void check_flattened(const PagedLayout& layout, const GroupPlan& plan) {
  const std::vector<GroupRegion> regions = build_regions(layout, plan, kDefaultReserveSteps);
  const FlatGroups f = flatten_groups(layout, plan, regions, kMaxTileRows);
  const int page = layout.shape.page_size, hkv = layout.shape.num_kv_heads;
  auto id = [&](int64_t block, int64_t head, int64_t token) { return (block * hkv + head) * page + token + 1; };
  std::vector<int64_t> region(static_cast<size_t>(f.region_slots * page), 0);  // 0: never copied
  for (const RegionCopy& c : f.copies)
    for (int t = 0; t < c.tokens; ++t) region[static_cast<size_t>(int64_t{c.slot} * page + t)] = id(c.block, c.kv_head, t);
  REQUIRE(f.group_begin.back() == f.items());
  std::map<std::pair<int32_t, int32_t>, std::vector<int32_t>> slots_of;  // (request, head) -> its items' slots
  int64_t mismatches = 0;
  for (int64_t i = 0; i < f.items(); ++i) {
    const size_t b0 = static_cast<size_t>(f.block_begin[static_cast<size_t>(i)]);
    const int32_t head = f.kv_head[static_cast<size_t>(i)];
    for (int t = 0; t < f.kv_len[static_cast<size_t>(i)]; ++t) {
      const int64_t paged = id(f.paged_blocks[b0 + static_cast<size_t>(t / page)], head, t % page);
      const int64_t slot = f.region_blocks[b0 + static_cast<size_t>(t / page)];
      if (region[static_cast<size_t>(slot * page + t % page)] != paged) ++mismatches;
    }
    for (int32_t e = f.query_begin[static_cast<size_t>(i)]; e < f.query_begin[static_cast<size_t>(i) + 1]; ++e)
      slots_of[{f.queries[static_cast<size_t>(e)], head}].push_back(f.slots[static_cast<size_t>(e)]);
  }
  CHECK(mismatches == 0);
  CHECK(static_cast<int64_t>(slots_of.size()) == int64_t{layout.num_requests()} * hkv);
  for (auto& [key, slots] : slots_of) {
    const int32_t r = key.first;
    const int32_t first = f.offsets[static_cast<size_t>(r)], last = f.offsets[static_cast<size_t>(r) + 1];
    std::sort(slots.begin(), slots.end());
    std::vector<int32_t> want;
    for (int32_t s = first; s < last; ++s) want.push_back(s);
    if (first == last) want.assign(1, -1);  // written directly by its one item
    INFO("request " << r << ", KV head " << key.second);
    CHECK(slots == want);
  }
}

}  // namespace

TEST_CASE("flattened groups read the same K/V through the region slots as through the blocks", "[packinfer]") {
  for (double shared : {0.75, 0.0}) {
    INFO("hetero, shared " << shared);
    const PagedLayout layout = hetero_layout(4, 24, shared);
    check_flattened(layout, make_groups(layout, options_of(8, 2, Units::packs)));
  }
  RandomTreeOptions r;
  for (uint64_t seed = 1; seed <= 6; ++seed) {
    INFO("random tree seed " << seed);
    const PagedLayout layout = build_layout(random_tree(seed, r), shape_of(16, 4, 64, 16), true, seed);
    for (Units units : {Units::packs, Units::requests}) check_flattened(layout, make_groups(layout, options_of(4, 2, units)));
  }
}

TEST_CASE("flatten_groups refuses an item over the kernel's rows", "[packinfer]") {
  const PagedLayout layout = hetero_layout(2, 24, 0.75);
  const GroupPlan plan = make_groups(layout, options_of(8, 2, Units::packs));
  CHECK_THROWS_AS(flatten_groups(layout, plan, build_regions(layout, plan, 0), 1), std::logic_error);
}

TEST_CASE("packs cut to 16 rows cover the batch, and the 16-row instance's items fit it", "[packinfer]") {
  for (uint64_t seed : {1u, 2u})
    for (double shared : {0.75, 0.0}) {
      INFO("hetero seed " << seed << ", shared " << shared);
      const PagedLayout layout = hetero_layout(seed, 96, shared);
      GroupOptions o = options_of(132, 3, Units::packs);
      o.max_rows = kGroupRowCaps[0];
      const GroupPlan plan = make_groups(layout, o);
      check_groups(layout, plan);
      CHECK(plan.max_rows == kGroupRowCaps[0]);
      for (const Pack& u : plan.unit_list) CHECK(u.rows(layout.shape.group()) <= kGroupRowCaps[0]);
      check_flattened(layout, plan);
    }
  RandomTreeOptions r;
  for (uint64_t seed = 1; seed <= 4; ++seed) {
    INFO("random tree seed " << seed << " at group 5");
    const PagedLayout layout = build_layout(random_tree(seed, r), shape_of(20, 4, 64, 16), true, seed);
    GroupOptions o = options_of(8, 2, Units::packs);
    o.max_rows = kGroupRowCaps[0];
    const GroupPlan plan = make_groups(layout, o);
    check_groups(layout, plan);
    for (const Pack& u : plan.unit_list) CHECK(u.rows(layout.shape.group()) <= kGroupRowCaps[0]);
  }
}

TEST_CASE("the group kernel's instances: three 16-row CTAs per SM at d=128, two of 64 rows", "[packinfer]") {
  CHECK(estimate_group_ctas_per_sm(128, 16, 2) == 3);
  CHECK(estimate_group_ctas_per_sm(128, 16, 1) == 3);
  CHECK(estimate_group_ctas_per_sm(128, kMaxTileRows, 2) == 2);
  CHECK(estimate_group_ctas_per_sm(256, 16, 2) == 1);
  // the 16-row CTA at d=128 is stage 7's 16x64 tile: 4 KB of Q and a 64 KB ring, nothing else
  CHECK(group_smem_bytes(128, 16, 2) == 16 * 128 * 2 + 2 * kKvStages * kGroupKvTile * 128 * 2);
  // 20/9 rings of 64 KiB saturate an SM (the 2026-12-05 run): three CTAs of the 16-row instance
  // stream a third of the SM each, two of the 64-row one 0.45 each (0.9 of the SM between them);
  // a ring of half the bytes (fp8) keeps half as much in flight
  CHECK(group_end_time(1000, 3, 128, 16, 2) == 3000.0);
  CHECK(std::abs(group_end_time(1000, 2, 128, kMaxTileRows, 2) - 20000.0 / 9) < 0.1);
  CHECK(std::abs(group_end_time(1000, 2, 128, kMaxTileRows, 1) - 40000.0 / 9) < 0.1);
}

TEST_CASE("stage 10's instance: 16 rows on a heterogeneous batch without sharing, 64 on one long shared prefix",
          "[packinfer]") {
  GroupOptions base;
  base.sms = 132;
  const PagedLayout hetero = hetero_layout(1, 96, 0.0);  // hetero96's lengths, no system prompt
  const GroupChoice h = choose_group_instance(hetero, base);
  REQUIRE(h.scores.size() == std::size(kGroupRowCaps));
  CHECK(h.plan.max_rows == kGroupRowCaps[0]);
  CHECK(h.scores[0] < h.scores[1]);
  check_groups(hetero, h.plan);
  const PagedLayout prefix = build_layout(parse_tree_spec("1,128_16384,256"), shape_of(32, 8, 128, 16), true, 1);
  const GroupChoice p = choose_group_instance(prefix, base);
  CHECK(p.plan.max_rows == kGroupRowCaps[1]);
  CHECK(p.scores[1] < p.scores[0]);
  CHECK(p.plan.ctas_per_sm == estimate_group_ctas_per_sm(128, kGroupRowCaps[1], 2));
}

TEST_CASE("a hand-worked payoff: one request of 64 tokens at d=64, one KV head", "[packinfer]") {
  // One group (1 SM x 1 CTA), one item of 4 blocks. Paged: 2 tensors x 4 blocks = 8 descriptors,
  // 4 table entries (16 B). Region: 4 adjacent slots, 64 tokens, 1 box per tensor = 2
  // descriptors, 1 offset (4 B). Saving = 6 x 640 + 12 = 3852 B. Copied: 64 tokens x K+V x 64 x
  // 2 B = 16384 B; re-layout = 2 x 16384 + 8 x 640 = 37888 B; N = ceil(37888 / 3852) = 10.
  const PagedLayout layout = build_layout(parse_tree_spec("1_64"), shape_of(1, 1, 64, 16), true, 1);
  const GroupPlan plan = make_groups(layout, options_of(1, 1, Units::requests));
  check_groups(layout, plan);
  const std::vector<GroupRegion> regions = build_regions(layout, plan, 0);
  const StepModel paged = paged_step(layout, plan, 640), contiguous = contiguous_step(layout, plan, regions, 640);
  CHECK(paged.runs == 8);
  CHECK(paged.table_bytes == 16);
  CHECK(contiguous.runs == 2);
  CHECK(contiguous.table_bytes == 4);
  CHECK(paged.bytes == contiguous.bytes);
  const Amortisation a = amortise(layout, plan, regions, 640);
  CHECK(a.copied_bytes == 16384);
  CHECK(a.relayout_cost == 37888);
  CHECK(a.paged_cost - a.contiguous_cost == 3852);
  CHECK(a.payoff_steps == 10);
  PolicyOptions p;
  p.run_cost = 640;
  p.horizon_steps = 10;
  CHECK(decide(1, 2, a, p).relayout);
  p.horizon_steps = 9;  // the batch changes one step before the re-layout would pay
  const Verdict late = decide(1, 2, a, p);
  CHECK(!late.relayout);
  CHECK(late.relayout_reason.find("beyond the horizon of 9") != std::string::npos);
}

TEST_CASE("the policy refuses where it does not pay", "[packinfer]") {
  SECTION("requests of one block: nothing to make contiguous, the saving is zero") {
    const PagedLayout layout = build_layout(parse_tree_spec("64_10"), shape_of(8, 2, 128, 16), true, 7);
    const GroupPlan plan = make_groups(layout, options_of(4, 2, Units::requests));
    const Amortisation a = amortise(layout, plan, build_regions(layout, plan, 0), kRunFixedBytes);
    CHECK(a.payoff_steps == -1);
    const Verdict v = decide(1, 2, a, PolicyOptions{});
    CHECK(!v.relayout);
    CHECK(v.relayout_reason.find("never pays") != std::string::npos);
  }
  SECTION("groups no better than stage 7 are not formed, and then nothing is re-laid out") {
    const Amortisation a;
    const Verdict tie = decide(100, 100, a, PolicyOptions{});
    CHECK(!tie.form_groups);
    CHECK(!tie.relayout);
    CHECK(decide(90, 100, a, PolicyOptions{}).form_groups);
    CHECK(!decide(98, 100, a, PolicyOptions{}).form_groups);  // within kFillTieFraction: a tie
  }
  SECTION("hetero96 without sharing and with a short horizon: no re-layout") {
    const PagedLayout layout = hetero_layout(1, 96, 0.0);
    const GroupPlan plan = make_groups(layout, options_of(132, 3, Units::packs));
    const Amortisation a = amortise(layout, plan, build_regions(layout, plan, 0), kRunFixedBytes);
    PolicyOptions p;
    p.horizon_steps = 1;
    REQUIRE(a.payoff_steps != 1);
    CHECK(!decide(1, 2, a, p).relayout);
  }
}

TEST_CASE("bad parameters throw Error(usage) naming the knob", "[packinfer]") {
  const PagedLayout layout = hetero_layout(1, 8, 0.5);
  require_error([&] { make_groups(layout, options_of(0, 2, Units::packs)); }, "--sms must be an SM count in [1, 1024]");
  require_error([&] { make_groups(layout, options_of(4, -1, Units::packs)); }, "--ctas-per-sm must be in [1, 32]");
  require_error([&] { make_groups(layout, options_of(4, 33, Units::packs)); }, "--ctas-per-sm must be in [1, 32]");
  GroupOptions o = options_of(4, 2, Units::packs);
  o.min_piece_blocks = 0;
  require_error([&] { make_groups(layout, o); }, "--min-piece-blocks must be >= 1");
  o = options_of(4, 2, Units::packs);
  o.max_rows = 48;
  require_error([&] { make_groups(layout, o); }, "--max-rows must be 16, 32 or 64");
  require_error([] { parse_units("heads"); }, "unknown --units 'heads' (known: packs, requests)");
  const GroupPlan plan = make_groups(layout, options_of(4, 2, Units::packs));
  require_error([&] { build_regions(layout, plan, -1); }, "--reserve must be >= 0");
  require_error([&] { amortise(layout, plan, build_regions(layout, plan, 0), -1); }, "--run-cost must be >= 0");
  PolicyOptions p;
  p.horizon_steps = 0;
  require_error([&] { decide(1, 2, Amortisation{}, p); }, "--horizon must be >= 1");
}
