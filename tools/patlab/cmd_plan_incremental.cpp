// patlab plan --incremental STEPS: decode steps on a workload (every request one token longer
// per step, a new block every `page` steps), each planned twice: from scratch by make_plan() and
// by IncrementalPlanner::update() (told that the tables only grow at their ends, as the block
// manager's do). Times both per step, requires the two plans to be identical, and reports what
// the incremental planner reused and which way each step went (fast, resplit, ...). CPU only.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <iostream>
#include <numeric>
#include <string>
#include <vector>

#include "commands.hpp"
#include "patlab/error.hpp"
#include "patlab/planner/incremental_planner.hpp"

namespace patlab::cli {

namespace {

/// Percentile of the per-step times reported next to the median.
constexpr double kTailPercentile = 0.99;

/// A decode batch on a layout: every step appends one token to every request. A full last block
/// gets a new block after it; a shared partial last block is copied first (copy-on-write). Tables
/// change only at their ends (TableHint::append_only holds).
class DecodeBatch {
 public:
  explicit DecodeBatch(PagedLayout layout) : layout_(std::move(layout)) {}
  const PagedLayout& layout() const { return layout_; }
  /// One decode step: every request one token longer.
  void step() {
    for (int r = 0; r < layout_.num_requests(); ++r) append(r);
  }

 private:
  void append(int r) {
    std::vector<int32_t>& table = layout_.block_tables[static_cast<size_t>(r)];
    int32_t& length = layout_.lengths[static_cast<size_t>(r)];
    const int page = layout_.shape.page_size;
    const int32_t used = length % page;
    if (used == 0) {
      table.push_back(new_block());
    } else if (layout_.refcounts[static_cast<size_t>(table.back())] > 1) {
      --layout_.refcounts[static_cast<size_t>(table.back())];
      table.back() = new_block();
    }
    layout_.used_tokens[static_cast<size_t>(table.back())] = used + 1;
    ++length;
  }
  int32_t new_block() {
    layout_.refcounts.push_back(1);
    layout_.used_tokens.push_back(0);
    return layout_.num_blocks++;
  }

  PagedLayout layout_;
};

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

double percentile(std::vector<double> v, double p) {
  std::sort(v.begin(), v.end());
  const size_t rank = static_cast<size_t>(std::ceil(p * static_cast<double>(v.size())));
  return v[std::min(v.size(), std::max<size_t>(rank, 1)) - 1];
}

double ms_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
}

std::string length_span(const PagedLayout& L) {
  const auto [lo, hi] = std::minmax_element(L.lengths.begin(), L.lengths.end());
  return *lo == *hi ? std::to_string(*lo) : std::to_string(*lo) + "-" + std::to_string(*hi);
}

}  // namespace

int run_plan_incremental(const WorkloadChoice& choice, const PlannerOptions& options, int steps, Format format) {
  require(steps >= 1 && steps <= kMaxIncrementalSteps, "--incremental: " + std::to_string(steps) +
                                                           " decode steps (must be in [1, " +
                                                           std::to_string(kMaxIncrementalSteps) + "])");
  int64_t longest = 0;
  for (int r = 0; r < choice.tree.num_requests(); ++r) longest = std::max(longest, choice.tree.request_tokens(r));
  require(longest + steps <= kMaxRequestTokens, "--incremental: " + std::to_string(steps) + " steps make a request of " +
                                                    std::to_string(longest + steps) + " tokens, more than the " +
                                                    std::to_string(kMaxRequestTokens) + " supported");
  DecodeBatch batch(build_layout(choice.tree, choice.shape, choice.shuffle, choice.seed));
  const int R = batch.layout().num_requests();
  std::vector<int64_t> ids(static_cast<size_t>(R));
  std::iota(ids.begin(), ids.end(), 0);
  const std::string lengths_before = length_span(batch.layout());

  IncrementalPlanner incremental(options);
  UpdateStats first;
  incremental.update(batch.layout(), ids, &first);  // step 0: the full build
  std::vector<double> scratch_ms, incremental_ms, written, grown;
  int64_t identical = 0, valid = 0, rebuilt_steps = 0, split_steps = 0, packs = 0;
  UpdatePathCounts by_path{};
  std::string difference, fault;
  // Each step plans the whole batch from scratch too, so a long run takes a while: say so.
  Phase phase("decode steps, each planned from scratch and incrementally", steps);
  for (int s = 0; s < steps; phase.steps_done(++s)) {
    batch.step();
    const PagedLayout& layout = batch.layout();
    auto t0 = std::chrono::steady_clock::now();
    const Plan scratch = make_plan(layout, options);
    scratch_ms.push_back(ms_since(t0));
    UpdateStats st;
    t0 = std::chrono::steady_clock::now();
    const Plan& plan = incremental.update(layout, ids, &st, TableHint::append_only);
    incremental_ms.push_back(ms_since(t0));
    ++by_path[static_cast<size_t>(st.path)];
    const std::string diff = plan_difference(plan, scratch);
    identical += diff.empty();
    if (!diff.empty() && difference.empty()) difference = "step " + std::to_string(s + 1) + ": " + diff;
    const std::vector<std::string> faults = validate_plan(layout, plan);
    valid += faults.empty();
    if (!faults.empty() && fault.empty()) fault = "step " + std::to_string(s + 1) + ": " + faults.front();
    rebuilt_steps += st.subtrees_rebuilt > 0;
    split_steps += st.split_changed > 0;
    written.push_back(st.packs_written);
    grown.push_back(st.walk_packs_grown);
    packs = st.packs;
  }
  const double scratch_median = median(scratch_ms), incremental_median = median(incremental_ms);
  const double scratch_tail = percentile(scratch_ms, kTailPercentile), incremental_tail = percentile(incremental_ms, kTailPercentile);
  const std::string tail = "p" + std::to_string(static_cast<int>(kTailPercentile * 100));
  Table summary = key_values("incremental plan", {
      {"workload", choice.tree.description},
      {"shape", choice.shape.describe()},
      {"requests", Cell::integer(R)},
      {"SMs (target GPU)", Cell::integer(options.sms)},
      {"KV split", options.split_kv ? "on" : "off (--no-split)"},
      {"decode steps (each: every request +1 token)", Cell::integer(steps)},
      {"tokens per request, before the first step", lengths_before},
      {"tokens per request, after the last step", length_span(batch.layout())},
      {"packs, last step", Cell::integer(packs)},
      {"from scratch ms, median", Cell::num(scratch_median, 4)},
      {"from scratch ms, " + tail, Cell::num(scratch_tail, 4)},
      {"incremental ms, median", Cell::num(incremental_median, 4)},
      {"incremental ms, " + tail, Cell::num(incremental_tail, 4)},
      {"speedup (medians)", Cell::num(scratch_median / incremental_median, 2)},
      {"speedup (" + tail + "s)", Cell::num(scratch_tail / incremental_tail, 2)},
      {"first update (full build) ms", Cell::num(first.seconds * 1e3, 4)},
      {"steps by update path", describe_paths(by_path)},
      {"steps that re-planned a subtree", Cell::integer(rebuilt_steps)},
      {"steps whose KV split changed", Cell::integer(split_steps)},
      {"walk packs grown per step, median", Cell::num(median(grown), 0)},
      {"plan packs written per step, median", Cell::num(median(written), 0)},
      {"plans identical to make_plan()", std::to_string(identical) + " of " + std::to_string(steps) +
                                             (difference.empty() ? " (PASS)" : " (FAIL: first at " + difference + ")")},
      {"validator", std::to_string(valid) + " of " + std::to_string(steps) + " plans valid" +
                        (fault.empty() ? " (PASS)" : " (FAIL: first at " + fault + ")")},
  });
  print(std::cout, {summary}, format);
  if (!fault.empty()) std::cerr << "patlab: plan fault at " << fault << "\n";
  if (!difference.empty()) std::cerr << "patlab: incremental plan differs from make_plan() at " << difference << "\n";
  return fault.empty() && difference.empty() ? 0 : 1;
}

}  // namespace patlab::cli
