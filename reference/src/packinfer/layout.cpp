// Group-contiguous KV (packinfer/layout.hpp): the regions and their maps, a decode step's cost on
// the paged and the contiguous layout, the re-layout's amortisation, and the policy.
#include "patlab/packinfer/layout.hpp"

#include <algorithm>
#include <stdexcept>
#include <string>
#include <unordered_map>

#include "patlab/error.hpp"
#include "patlab/planner/planner_steps.hpp"
#include "patlab/planner/waves.hpp"

namespace patlab::packinfer {

using plan_steps::kCtaFixedBytes;

namespace {

int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

/// Reserves at the tail of `region` the blocks request `r` needs for its next `steps` tokens.
void reserve_tail(const PagedLayout& layout, int32_t r, int32_t head, int steps, GroupRegion& region) {
  const int page = layout.shape.page_size;
  const int64_t len = layout.lengths[static_cast<size_t>(r)];
  for (int64_t b = ceil_div(len, page); b < ceil_div(len + steps, page); ++b) {
    const int32_t slot = static_cast<int32_t>(region.slots());
    region.tail[{r, head, static_cast<int32_t>(b)}] = slot;
  }
}

// [region of a group]
/// The region of one group: slots in the order its items first read them, then the tail.
GroupRegion build_region(const PagedLayout& layout, const GroupPlan& plan, const Group& group, int reserve_steps) {
  const int page = layout.shape.page_size, hkv = layout.shape.num_kv_heads;
  GroupRegion region;
  std::unordered_map<int64_t, int32_t> slot_of;  // (block, head) -> slot
  for (const WorkItem& it : group.items) {
    const Pack& u = plan.unit_list[static_cast<size_t>(it.unit)];
    std::vector<int32_t>& slots = region.item_slots.emplace_back();
    for (int32_t i = it.block_begin; i < it.block_end; ++i) {
      const int32_t block = u.blocks[static_cast<size_t>(i)];
      const auto found =
          slot_of.emplace(block_head_key(block, it.kv_head, hkv), static_cast<int32_t>(region.copied.size()));
      if (found.second) {
        region.copied.push_back({block, it.kv_head});
        region.copied_tokens += block_tokens(it, i, page);
      }
      slots.push_back(found.first->second);
    }
  }
  for (const WorkItem& it : group.items)  // new tokens: at the tail, for requests that end in the group
    for (int32_t r : plan.unit_list[static_cast<size_t>(it.unit)].queries)
      if (it.token_end == layout.lengths[static_cast<size_t>(r)]) reserve_tail(layout, r, it.kv_head, reserve_steps, region);
  return region;
}
// [region of a group]

// [descriptors]
/// Descriptors of a run of `slots` adjacent region slots: one per kTmaBoxTokens tokens, per tensor.
int64_t region_boxes(int64_t slots, int page) { return traffic::kKvTensors * ceil_div(slots * page, kTmaBoxTokens); }

/// Descriptors of `group` on the region: each item reads the slots no earlier item of the group
/// read, in maximal runs of adjacent slots.
int64_t contiguous_runs(const GroupRegion& region, int page) {
  std::vector<bool> read(region.copied.size(), false);  // by slot
  int64_t runs = 0;
  for (const std::vector<int32_t>& slots : region.item_slots) {
    int64_t run = 0;
    int32_t last = -2;
    for (int32_t s : slots) {
      if (read[static_cast<size_t>(s)]) continue;
      read[static_cast<size_t>(s)] = true;
      if (s != last + 1 && run > 0) {
        runs += region_boxes(run, page);
        run = 0;
      }
      ++run;
      last = s;
    }
    if (run > 0) runs += region_boxes(run, page);
  }
  return runs;
}

/// Descriptors of `group` on the paged layout: one per distinct (block, head) and tensor.
int64_t paged_runs(const GroupPlan& plan, const Group& group, int hkv) {
  std::vector<int64_t> keys;
  for (const WorkItem& it : group.items) {
    const Pack& u = plan.unit_list[static_cast<size_t>(it.unit)];
    for (int32_t i = it.block_begin; i < it.block_end; ++i)
      keys.push_back(block_head_key(u.blocks[static_cast<size_t>(i)], it.kv_head, hkv));
  }
  std::sort(keys.begin(), keys.end());
  return traffic::kKvTensors * static_cast<int64_t>(std::unique(keys.begin(), keys.end()) - keys.begin());
}
// [descriptors]

/// Adds one group's share to `m`.
void add_group(StepModel& m, const Group& g, int64_t runs, int64_t table, int64_t run_cost) {
  m.bytes += g.cost;
  m.runs += runs;
  m.table_bytes += table;
  m.max_group = std::max(m.max_group, g.cost + runs * run_cost + table);
}

}  // namespace

void check_reserve(const PagedLayout& layout, int reserve_steps) {
  require(reserve_steps >= 0, "--reserve must be >= 0 decode steps (got " + std::to_string(reserve_steps) + ")");
  const int page = layout.shape.page_size;
  const int64_t tail_blocks =
      int64_t{layout.num_requests()} * layout.shape.num_kv_heads * ((int64_t{reserve_steps} + page - 1) / page);
  require(tail_blocks <= kMaxTailBlocks, "--reserve " + std::to_string(reserve_steps) + ": the regions' tails would hold " +
                                             std::to_string(tail_blocks) + " new blocks (requests x KV heads x " +
                                             "reserved blocks), more than " + std::to_string(kMaxTailBlocks));
}

std::vector<GroupRegion> build_regions(const PagedLayout& layout, const GroupPlan& plan, int reserve_steps) {
  check_reserve(layout, reserve_steps);
  std::vector<GroupRegion> out;
  out.reserve(plan.groups.size());
  for (const Group& g : plan.groups) out.push_back(build_region(layout, plan, g, reserve_steps));
  return out;
}

std::vector<std::pair<BlockKey, int32_t>> region_positions(const PagedLayout& layout, const GroupPlan& plan,
                                                           const Group& group, const GroupRegion& region) {
  if (region.item_slots.size() != group.items.size())
    throw std::logic_error("region_positions: a region of other items");
  const int page = layout.shape.page_size;
  std::vector<std::pair<BlockKey, int32_t>> out;
  for (size_t k = 0; k < group.items.size(); ++k) {
    const WorkItem& it = group.items[k];
    for (int32_t r : plan.unit_list[static_cast<size_t>(it.unit)].queries)
      for (int32_t i = it.block_begin; i < it.block_end; ++i)
        out.push_back({{r, it.kv_head, it.token_begin / page + (i - it.block_begin)},
                       region.item_slots[k][static_cast<size_t>(i - it.block_begin)]});
  }
  std::sort(out.begin(), out.end());
  return out;
}

StepModel paged_step(const PagedLayout& layout, const GroupPlan& plan, int64_t run_cost) {
  StepModel m;
  for (const Group& g : plan.groups) {
    if (g.items.empty()) continue;
    int64_t blocks = 0;
    for (const WorkItem& it : g.items) blocks += it.block_end - it.block_begin;
    add_group(m, g, paged_runs(plan, g, layout.shape.num_kv_heads), blocks * kTableEntryBytes, run_cost);
  }
  return m;
}

StepModel contiguous_step(const PagedLayout& layout, const GroupPlan& plan, const std::vector<GroupRegion>& regions,
                          int64_t run_cost) {
  require(regions.size() == plan.groups.size(), "contiguous_step: one region per group");
  StepModel m;
  for (size_t g = 0; g < plan.groups.size(); ++g) {
    const Group& group = plan.groups[g];
    if (group.items.empty()) continue;
    add_group(m, group, contiguous_runs(regions[g], layout.shape.page_size),
              static_cast<int64_t>(group.items.size()) * kTableEntryBytes, run_cost);
  }
  return m;
}

double Amortisation::amortised_fraction(int64_t steps) const {
  return steps > 0 && contiguous_cost > 0
             ? static_cast<double>(relayout_cost) / (static_cast<double>(steps) * static_cast<double>(contiguous_cost))
             : 0.0;
}

// [amortise]
Amortisation amortise(const PagedLayout& layout, const GroupPlan& plan, const std::vector<GroupRegion>& regions,
                      int64_t run_cost) {
  require(run_cost >= 0, "--run-cost must be >= 0 bytes (got " + std::to_string(run_cost) + ")");
  Amortisation a;
  std::vector<int64_t> copies;  // (block, head) of every copied slot; a pair twice is a duplicate
  for (const GroupRegion& r : regions) {
    a.copied_bytes += head_bytes(layout.shape, r.copied_tokens);
    for (const auto& c : r.copied) copies.push_back(block_head_key(c.first, c.second, layout.shape.num_kv_heads));
  }
  const int64_t slots = static_cast<int64_t>(copies.size());
  std::sort(copies.begin(), copies.end());
  for (size_t i = 1; i < copies.size(); ++i)
    if (copies[i] == copies[i - 1]) {
      const int32_t block = static_cast<int32_t>(copies[i] / layout.shape.num_kv_heads);
      a.duplicate_bytes += head_bytes(layout.shape, layout.used_tokens[static_cast<size_t>(block)]);
    }
  a.relayout_cost = 2 * a.copied_bytes + traffic::kKvTensors * slots * run_cost;
  a.paged_cost = paged_step(layout, plan, run_cost).cost(run_cost);
  a.contiguous_cost = contiguous_step(layout, plan, regions, run_cost).cost(run_cost);
  const int64_t saving = a.paged_cost - a.contiguous_cost;
  a.payoff_steps = saving > 0 ? ceil_div(a.relayout_cost, saving) : -1;
  return a;
}
// [amortise]

int64_t stage7_makespan(const PagedLayout& layout, const GroupPlan& plan, const GroupOptions& options) {
  PlannerOptions po;
  po.sms = options.sms;
  if (options.ctas_per_sm > 0) po.ctas_per_sm.fill(options.ctas_per_sm);
  const Plan p7 = make_plan(layout, po);
  std::vector<CtaGroup> ctas;
  for (const Pack& p : p7.packs)
    ctas.push_back({kCtaFixedBytes + item_overhead_bytes(layout.shape, static_cast<int64_t>(p.queries.size())) +
                        head_bytes(layout.shape, p.kv_len),
                    layout.shape.num_kv_heads});
  return lpt_schedule(ctas, options.sms, std::max(1, plan.ctas_per_sm)).makespan_tokens;
}

void PolicyOptions::validate() const {
  require(horizon_steps >= 1, "--horizon must be >= 1 decode step (got " + std::to_string(horizon_steps) + ")");
  require(run_cost >= 0, "--run-cost must be >= 0 bytes (got " + std::to_string(run_cost) + ")");
}

// [policy]
Verdict decide(int64_t groups_max, int64_t stage7, const Amortisation& a, const PolicyOptions& o) {
  o.validate();
  Verdict v;
  const double needed = static_cast<double>(stage7) * (1.0 - plan_steps::kFillTieFraction);
  v.form_groups = static_cast<double>(groups_max) < needed;
  v.groups_reason = std::string(v.form_groups ? "form groups" : "keep stage 7") + ": largest group " +
                    std::to_string(groups_max / 1024) + " KiB vs stage 7's makespan " + std::to_string(stage7 / 1024) +
                    " KiB (groups must be below it by more than " +
                    std::to_string(static_cast<int>(100 * plan_steps::kFillTieFraction)) + "%)";
  const std::string n = std::to_string(a.payoff_steps);
  const std::string h = std::to_string(o.horizon_steps);
  if (!v.form_groups)
    v.relayout_reason = "no re-layout: no groups";
  else if (a.payoff_steps < 0)
    v.relayout_reason = "no re-layout: the contiguous step saves nothing, it never pays";
  else if (a.payoff_steps > o.horizon_steps)
    v.relayout_reason = "no re-layout: pays after " + n + " steps, beyond the horizon of " + h;
  else {
    v.relayout = true;
    v.relayout_reason = "re-layout: pays after " + n + " steps, within the horizon of " + h;
  }
  return v;
}
// [policy]

// [flatten groups]
FlatGroups flatten_groups(const PagedLayout& layout, const GroupPlan& plan, const std::vector<GroupRegion>& regions,
                          int max_rows) {
  if (regions.size() != plan.groups.size()) throw std::logic_error("flatten_groups: one region per group");
  const Shape& shape = layout.shape;
  const int hkv = shape.num_kv_heads;
  const size_t R = static_cast<size_t>(layout.num_requests());
  FlatGroups f;
  // Partial slots: a request covered by one item per KV head is written directly (no slot).
  const std::vector<int32_t> partials = partials_per_request(layout, plan);
  f.offsets.assign(R + 1, 0);
  for (size_t r = 0; r < R; ++r) {
    f.offsets[r + 1] = f.offsets[r] + (partials[r] == 1 ? 0 : partials[r]);
    if (partials[r] != 1) f.merge_queries.push_back(static_cast<int32_t>(r));
  }
  std::vector<int32_t> next_slot(R * static_cast<size_t>(hkv), 0);  // per (request, KV head)
  int64_t base = 0;  // first slot of the group's region
  for (size_t g = 0; g < plan.groups.size(); ++g) {
    const GroupRegion& region = regions[g];
    for (size_t s = 0; s < region.copied.size(); ++s) {
      const auto [block, head] = region.copied[s];
      f.copies.push_back({block, head, static_cast<int32_t>(base + static_cast<int64_t>(s)),
                          layout.used_tokens[static_cast<size_t>(block)]});
    }
    const std::vector<WorkItem>& items = plan.groups[g].items;
    if (region.item_slots.size() != items.size()) throw std::logic_error("flatten_groups: a region of other items");
    for (size_t k = 0; k < items.size(); ++k) {
      const WorkItem& it = items[k];
      const Pack& u = plan.unit_list[static_cast<size_t>(it.unit)];
      if (u.rows(shape.group()) > max_rows)
        throw std::logic_error("flatten_groups: an item of " + std::to_string(u.rows(shape.group())) + " rows, over " +
                               std::to_string(max_rows));
      for (int32_t r : u.queries) {
        f.queries.push_back(r);
        int32_t& j = next_slot[static_cast<size_t>(r) * hkv + static_cast<size_t>(it.kv_head)];
        f.slots.push_back(partials[static_cast<size_t>(r)] == 1 ? -1 : f.offsets[static_cast<size_t>(r)] + j);
        ++j;
      }
      f.query_begin.push_back(static_cast<int32_t>(f.queries.size()));
      const std::vector<int32_t>& slots = region.item_slots[k];
      for (int32_t i = it.block_begin; i < it.block_end; ++i) {
        f.paged_blocks.push_back(u.blocks[static_cast<size_t>(i)]);
        f.region_blocks.push_back(static_cast<int32_t>(base + slots[static_cast<size_t>(i - it.block_begin)]));
      }
      f.block_begin.push_back(static_cast<int32_t>(f.paged_blocks.size()));
      f.kv_len.push_back(it.tokens());
      f.kv_head.push_back(it.kv_head);
    }
    if (!items.empty()) f.group_begin.push_back(static_cast<int32_t>(f.kv_len.size()));
    base += region.slots();
  }
  f.region_slots = base;
  return f;
}
// [flatten groups]

}  // namespace patlab::packinfer
