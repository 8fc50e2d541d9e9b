// patlab packinfer: PackInfer's execution groups and group-contiguous KV on a workload, on the
// CPU (issue 16): the groups' balance against the guarantee, the regions, a decode step's cost
// on the paged and the contiguous layout, the steps the re-layout needs to pay off, and the
// policy's verdict. The GPU kernels are not built yet: every number is the host's model.
#include <algorithm>
#include <iostream>
#include <memory>

#include "commands.hpp"
#include "options.hpp"
#include "patlab/error.hpp"
#include "patlab/packinfer/group_kernel.hpp"
#include "patlab/packinfer/groups.hpp"
#include "patlab/packinfer/layout.hpp"
#include "patlab/planner/planner_steps.hpp"

namespace patlab::cli {

namespace {

using namespace patlab::packinfer;

/// The amortisation target of issue 16: the re-layout's share of this many steps.
constexpr int kIssueAmortisationSteps = 16;

struct PackInferOptions {
  WorkloadOptions workload;
  std::string format = "table";
  std::string units = "packs";
  GroupOptions groups;
  PolicyOptions policy;
  int reserve = kDefaultReserveSteps;
};

Cell kib(int64_t bytes) { return Cell::bytes(static_cast<double>(bytes)); }

/// Min, median and max of `v` (sorted here), as "a / b / c".
std::string spread(std::vector<int64_t> v, bool bytes) {
  if (v.empty()) return "-";
  std::sort(v.begin(), v.end());
  auto show = [&](int64_t x) { return bytes ? kib(x).text : std::to_string(x); };
  return show(v.front()) + " / " + show(v[v.size() / 2]) + " / " + show(v.back());
}

/// "16 rows (...), 64 rows (...)": each instance's model time and which one stage 10 runs.
std::string instance_text(const GroupChoice& c) {
  std::string s;
  for (size_t i = 0; i < c.scores.size(); ++i) {
    const int cap = kGroupRowCaps[i];
    s += (i ? "; " : "") + std::to_string(cap) + " rows: " + kib(static_cast<int64_t>(c.scores[i])).text +
         (cap == c.plan.max_rows ? " (runs)" : "");
  }
  return s;
}

Table groups_table(const GroupPlan& plan, const GroupChoice& stage10, const std::vector<std::string>& faults) {
  std::vector<int64_t> costs, items;
  for (const Group& g : plan.groups)
    if (!g.items.empty()) {
      costs.push_back(g.cost);
      items.push_back(static_cast<int64_t>(g.items.size()));
    }
  const int64_t max = plan.max_cost();
  return key_values("execution groups", {
      {"units", std::string(units_name(plan.units)) + " (" + std::to_string(plan.unit_list.size()) + ", at most " +
                    std::to_string(plan.max_rows) + " rows each)"},
      {"groups (CTA slots: SMs x " + std::to_string(plan.ctas_per_sm) + " per SM)", Cell::integer(plan.slots)},
      {"groups with work", Cell::integer(static_cast<int64_t>(costs.size()))},
      {"items per group, min / median / max", spread(items, false)},
      {"pieces added by cuts", Cell::integer(plan.cuts)},
      {"families co-located (whole in one group)", Cell::integer(plan.families_colocated)},
      {"families spread (over the cap)", Cell::integer(plan.families_spread)},
      {"item cap (target - fixed CTA cost)", kib(plan.cap)},
      {"group cost, min / median / max", spread(costs, true)},
      {"mean group cost (all slots)", kib(plan.mean_cost)},
      {"balance (mean / max)", Cell::num(max > 0 ? static_cast<double>(plan.mean_cost) / static_cast<double>(max) : 1.0, 3)},
      {"bound (mean + largest placed)", kib(plan.bound())},
      {"max <= bound", max <= plan.bound() ? "yes" : "NO"},
      {"validator", faults.empty() ? "PASS (every request, KV head and token in exactly one item; costs priced)"
                                   : "FAIL: " + std::to_string(faults.size()) + " faults, first: " + faults.front()},
      {"stage 10's instance (model end time, bytes at a third of an SM)", instance_text(stage10)},
  });
}

Table layout_table(const PagedLayout& layout, const std::vector<GroupRegion>& regions, const Amortisation& a, int reserve) {
  std::vector<int64_t> slots;
  int64_t tail = 0;
  for (const GroupRegion& r : regions)
    if (r.slots() > 0) {
      slots.push_back(r.slots());
      tail += static_cast<int64_t>(r.tail.size());
    }
  return key_values("group-contiguous layout", {
      {"regions", Cell::integer(static_cast<int64_t>(slots.size()))},
      {"region slots (blocks of one head), min / median / max", spread(slots, false)},
      {"tail slots reserved (" + std::to_string(reserve) + " steps of new tokens)", Cell::integer(tail)},
      {"bytes copied by the re-layout", kib(a.copied_bytes)},
      {"of which blocks stored in more than one region", kib(a.duplicate_bytes)},
      {"unique K/V bytes of the batch (floor)", kib(layout.unique_kv_bytes())},
  });
}

Table step_table(const StepModel& paged, const StepModel& contiguous, int64_t run_cost) {
  Table t;
  t.title = "decode step model";
  t.columns = {"layout", "bytes", "descriptors", "table bytes", "cost (bytes + descriptors x run cost + table)",
               "costliest group"};
  auto row = [&](const char* name, const StepModel& m) {
    t.add({name, kib(m.bytes), Cell::integer(m.runs), kib(m.table_bytes), kib(m.cost(run_cost)), kib(m.max_group)});
  };
  row("paged (block tables)", paged);
  row("group-contiguous regions", contiguous);
  return t;
}

Table policy_table(const Amortisation& a, int64_t groups_max, int64_t stage7, const Verdict& v, const PolicyOptions& p) {
  const std::string never = "never (no saving)";
  return key_values("amortisation and policy", {
      {"run cost (bytes per descriptor; an assumption)", Cell::integer(p.run_cost)},
      {"re-layout cost (2 x copied + copy descriptors x run cost)", kib(a.relayout_cost)},
      {"saving per step", kib(a.paged_cost - a.contiguous_cost)},
      {"N: steps to pay off", a.payoff_steps < 0 ? Cell(never) : Cell::integer(a.payoff_steps)},
      {"re-layout share of " + std::to_string(kIssueAmortisationSteps) + " steps, % (issue: <= 5)",
       Cell::num(100.0 * a.amortised_fraction(kIssueAmortisationSteps), 1)},
      {"horizon (steps before the batch changes)", Cell::integer(p.horizon_steps)},
      {"largest group", kib(groups_max)},
      {"stage 7 makespan (its CTAs, longest first, same slots)", kib(stage7)},
      {"groups", v.groups_reason},
      {"re-layout", v.relayout_reason},
      {"model", "bytes the GPU streams + fixed costs in bytes (waves.hpp units); stage 10 (packinfer) runs these "
                "groups on the GPU (measured on the H200: slower than stage 7, chapter 23 section 8)"},
  });
}

int run_packinfer(PackInferOptions o) {
  const Format format = parse_format(o.format);
  o.groups.units = parse_units(o.units);
  o.groups.validate();
  o.policy.validate();
  require(o.reserve >= 0, "--reserve must be >= 0 decode steps (got " + std::to_string(o.reserve) + ")");
  const WorkloadChoice choice = o.workload.resolve();
  const PagedLayout layout = build_layout(choice.tree, choice.shape, choice.shuffle, choice.seed);
  check_reserve(layout, o.reserve);
  progress("packinfer: groups over " + std::to_string(layout.num_requests()) + " requests");
  const GroupPlan plan = make_groups(layout, o.groups);
  const std::vector<std::string> faults = validate_groups(layout, plan);
  const std::vector<GroupRegion> regions = build_regions(layout, plan, o.reserve);
  const Amortisation a = amortise(layout, plan, regions, o.policy.run_cost);
  const int64_t stage7 = stage7_makespan(layout, plan, o.groups);
  const Verdict v = decide(plan.max_cost(), stage7, a, o.policy);
  GroupOptions stage10 = o.groups;
  stage10.units = Units::packs;
  const GroupChoice instance = choose_group_instance(layout, stage10);
  Table run = key_values("packinfer", {
      {"workload", choice.tree.description},
      {"shape", choice.shape.describe()},
      {"requests", Cell::integer(layout.num_requests())},
      {"SMs (target GPU)", Cell::integer(o.groups.sms)},
      {"seed", Cell::integer(static_cast<int64_t>(choice.seed))},
  });
  print(std::cout,
        {run, groups_table(plan, instance, faults), layout_table(layout, regions, a, o.reserve),
         step_table(paged_step(layout, plan, o.policy.run_cost), contiguous_step(layout, plan, regions, o.policy.run_cost),
                    o.policy.run_cost),
         policy_table(a, plan.max_cost(), stage7, v, o.policy)},
        format);
  for (const std::string& f : faults) std::cerr << "patlab: group fault: " << f << "\n";
  return faults.empty() ? kExitOk : kExitCheckFailed;
}

}  // namespace

void add_packinfer(CLI::App& app, Action& action) {
  auto o = std::make_shared<PackInferOptions>();
  auto* cmd = app.add_subcommand("packinfer", "PackInfer on the CPU (issue 16): execution groups and their balance, "
                                              "group-contiguous KV, the re-layout's payoff in decode steps, the policy");
  o->workload.add_to(*cmd);
  add_format(*cmd, o->format);
  cmd->add_option("--sms", o->groups.sms, "SMs of the GPU: groups = SMs x CTAs per SM")->capture_default_str();
  cmd->add_option("--ctas-per-sm", o->groups.ctas_per_sm, "Resident CTAs per SM (0: the planner's estimate)")
      ->capture_default_str();
  cmd->add_option("--units", o->units, "What the groups are made of: packs (PAT's tree walk) or requests")
      ->capture_default_str();
  cmd->add_option("--min-piece-blocks", o->groups.min_piece_blocks, "Shortest piece a cut makes, in blocks")
      ->capture_default_str();
  cmd->add_option("--max-rows", o->groups.max_rows,
                  "Most rows of one pack unit: 16, 32 or 64 (stage 10 runs 16 or 64, whichever its model prefers)")
      ->capture_default_str();
  cmd->add_option("--horizon", o->policy.horizon_steps, "Decode steps before the batch changes (the policy's horizon)")
      ->capture_default_str();
  cmd->add_option("--run-cost", o->policy.run_cost, "Fixed cost of one copy descriptor, in bytes (an assumption)")
      ->capture_default_str();
  cmd->add_option("--reserve", o->reserve, "Decode steps of new tokens each region reserves at its tail")
      ->capture_default_str();
  cmd->callback([&action, o] { action = [o] { return run_packinfer(*o); }; });
}

}  // namespace patlab::cli
