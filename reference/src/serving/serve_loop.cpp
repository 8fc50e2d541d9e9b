#include "patlab/serving/serve_loop.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <numeric>

#include "patlab/error.hpp"
#include "patlab/planner/incremental_planner.hpp"
#include "patlab/serving/layerkv.hpp"
#include "patlab/serving/memsim.hpp"

namespace patlab::serving {

namespace {

double ms_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
}

void check_options(const ServeLoopOptions& o) {
  o.shape.validate();
  require(o.capacity_blocks > 0, "the pool needs at least one block (got " + std::to_string(o.capacity_blocks) + ")");
  require(o.layers >= 1, "layers must be >= 1 (got " + std::to_string(o.layers) + ")");
  require(o.max_running >= 0, "max running must be >= 0 (0: no limit)");
  require(o.step_seconds > 0 && std::isfinite(o.step_seconds), "the step time must be > 0");
  require(o.max_steps >= 0, "max steps must be >= 0 (0: until the trace is done)");
  require(o.check_steps >= 0, "check steps must be >= 0");
}

/// The planner options of the run: the executor's (its stage's tiles and SMs) when it has them.
PlannerOptions loop_planner_options(const ServeLoopOptions& o, StepExecutor* executor, bool& with_plan) {
  PlannerOptions p;
  p.max_kv_tile = o.max_kv_tile;
  with_plan = true;
  if (executor) {
    PlannerOptions stage;
    with_plan = executor->planner_options(stage);
    if (with_plan) p = stage;
  }
  return p;
}

/// The step's counts from the scheduler's events and the pool.
ServeStep count_step(const StepEvents& ev, const Scheduler& sched, const WriteLog& log, const ServeLoopOptions& o) {
  ServeStep s;
  s.step = ev.step;
  s.running = static_cast<int32_t>(sched.running().size());
  s.waiting = static_cast<int32_t>(sched.waiting());
  s.admitted = static_cast<int32_t>(ev.admitted.size());
  s.finished = static_cast<int32_t>(ev.finished.size());
  s.preempted = static_cast<int32_t>(ev.preempted.size());
  s.decode_tokens = ev.decode_tokens;
  s.prefill_tokens = ev.prefill_tokens;
  for (const KvWrite& w : log.writes) s.written_tokens += w.count;
  s.copied_blocks = static_cast<int32_t>(log.copies.size());
  const BlockStats st = sched.blocks().stats();
  s.blocks_in_use = st.in_use;
  s.kv_bytes_in_use = int64_t{st.in_use} * o.shape.page_size * o.shape.kv_bytes_per_token() * o.layers;
  s.sharing = st.sharing();
  return s;
}

/// The scheduler over a pool of capacity_blocks that logs its writes for the executor.
Scheduler make_scheduler(const Trace& trace, const ServeLoopOptions& o) {
  BlockManagerOptions bo;
  bo.num_blocks = o.capacity_blocks;
  bo.page_size = o.shape.page_size;
  bo.prefix_caching = o.prefix_caching;
  bo.record_writes = true;
  SchedulerOptions so;
  so.max_running = o.max_running;
  so.token_seed = trace.seed;
  so.vocab = trace.vocab;
  return Scheduler(bo, so);
}

// [serve plan]
/// Step 4: the batch's plan by the incremental planner (timed; `hint` from the loop), validated
/// once (timed apart), and with compare_scratch timed from scratch too and required to be the
/// same. A fault goes to `fault` (built only then: the step's own work is what is timed).
const Plan& plan_step(IncrementalPlanner& planner, const PagedLayout& layout, const std::vector<SeqId>& ids,
                      TableHint hint, const ServeLoopOptions& o, const PlannerOptions& options, ServeStep& s,
                      std::string& fault) {
  UpdateStats st;
  auto t0 = std::chrono::steady_clock::now();
  const Plan& plan = planner.update(layout, ids, &st, hint);
  s.plan_ms = ms_since(t0);
  s.plan_path = st.path;
  s.packs = static_cast<int32_t>(plan.packs.size());
  t0 = std::chrono::steady_clock::now();
  const std::vector<std::string> faults = validate_plan(layout, plan);
  s.validate_ms = ms_since(t0);
  const std::string at = "step " + std::to_string(s.step) + ": ";
  if (!faults.empty()) fault = at + "invalid plan: " + faults.front();
  if (o.compare_scratch && fault.empty()) {
    t0 = std::chrono::steady_clock::now();
    const Plan scratch = make_plan(layout, options);
    s.scratch_ms = ms_since(t0);
    const std::string diff = plan_difference(plan, scratch);
    if (!diff.empty()) fault = at + "incremental plan differs from make_plan(): " + diff;
  }
  return plan;
}
// [serve plan]

// [serve run]
/// Step 5: the executor gets the step's writes, then the batch and its plan, runs every layer,
/// and on the first check_steps batch steps checks layer 0 (a failure goes to res.fault).
void run_step(StepExecutor& executor, const WriteLog& log, const PagedLayout& layout, const Plan* plan,
              const ServeLoopOptions& o, ServeStep& s, ServeResult& res) {
  executor.apply(log);
  s.set_batch_ms = executor.set_batch(layout, plan);
  const std::vector<double> us = executor.run_layers();
  if (!us.empty()) {
    s.kernel_us_total = std::accumulate(us.begin(), us.end(), 0.0);
    s.kernel_us_layer = s.kernel_us_total / static_cast<double>(us.size());
  }
  if (res.checked_steps >= o.check_steps) return;
  const CheckResult check = executor.check_layer0();
  ++res.checked_steps;
  s.checked = check.pass;
  if (!check.pass) res.fault = "step " + std::to_string(s.step) + ": layer 0 check: " + check.summary();
}
// [serve run]

}  // namespace

ServeResult run_serve_loop(const Trace& trace, const ServeLoopOptions& o, StepExecutor* executor,
                           const ServeProgress& progress) {
  check_options(o);
  const std::vector<int64_t> arrive = trace.check_step_simulation(int64_t{o.capacity_blocks} * o.shape.page_size,
                                                                  o.shape.page_size, o.max_running, o.step_seconds);
  ServeResult res;
  bool with_plan = true;
  res.planner = loop_planner_options(o, executor, with_plan);
  res.planned_with_executor = executor && with_plan;
  res.sequences = total_samples(trace);

  Scheduler sched = make_scheduler(trace, o);
  IncrementalPlanner planner(res.planner);
  size_t next = 0;
  bool planned_last_step = false;  // then every sequence running in both steps only appended
  // [serve loop]
  for (int64_t step = 0; o.max_steps == 0 || step < o.max_steps; ++step) {
    if (sched.idle() && next < trace.requests.size() && arrive[next] > step) {
      // Idle until the next arrival: each step would only count. Jump to it (or to max_steps).
      const int64_t to = o.max_steps == 0 ? arrive[next] : std::min(arrive[next], o.max_steps);
      res.idle_steps += to - step;
      sched.skip_to(to);
      step = to;
      if (step == o.max_steps) break;  // the step limit came before the arrival
    }
    // Steps 1-3: arrivals, the scheduler's step, its cache writes.
    while (next < trace.requests.size() && arrive[next] <= step) {
      sched.add(trace.requests[next], static_cast<int32_t>(next));
      ++next;
    }
    const StepEvents ev = sched.step();
    const WriteLog log = sched.blocks().take_writes();
    ServeStep s = count_step(ev, sched, log, o);
    res.finished += s.finished;
    res.preemptions += s.preempted;
    if (sched.idle() && next == trace.requests.size()) {  // the step only retired the last ones
      res.trace_done = true;
      res.steps.push_back(s);
      break;
    }
    if (s.running > 0) {
      const PagedLayout layout = sched.snapshot(o.shape);
      const TableHint hint = planned_last_step ? TableHint::append_only : TableHint::compare;
      const Plan& plan = plan_step(planner, layout, sched.running(), hint, o, res.planner, s, res.fault);
      if (executor && res.fault.empty()) run_step(*executor, log, layout, with_plan ? &plan : nullptr, o, s, res);
    }
    planned_last_step = s.running > 0;
    res.steps.push_back(s);
    if (progress) progress(res);
    if (!res.fault.empty()) break;
  }
  // [serve loop]
  return res;
}

ServeSummary summarize(const ServeResult& r) {
  ServeSummary m;
  m.steps = static_cast<int64_t>(r.steps.size()) + r.idle_steps;
  m.idle_steps = r.idle_steps;
  std::vector<double> plan, scratch, validate, kernel, step_kernel, set_batch;
  double sharing = 0;
  for (const ServeStep& s : r.steps) {
    m.max_running = std::max(m.max_running, s.running);
    m.peak_blocks = std::max(m.peak_blocks, s.blocks_in_use);
    m.peak_kv_bytes = std::max(m.peak_kv_bytes, s.kv_bytes_in_use);
    if (s.running == 0) continue;
    ++m.batch_steps;
    sharing += s.sharing;
    if (!std::isnan(s.plan_ms)) {
      plan.push_back(s.plan_ms);
      ++m.plan_paths[static_cast<size_t>(s.plan_path)];
    }
    if (!std::isnan(s.validate_ms)) validate.push_back(s.validate_ms);
    if (!std::isnan(s.scratch_ms)) scratch.push_back(s.scratch_ms);
    if (!std::isnan(s.kernel_us_layer)) kernel.push_back(s.kernel_us_layer);
    if (!std::isnan(s.kernel_us_total)) step_kernel.push_back(s.kernel_us_total);
    if (!std::isnan(s.set_batch_ms)) set_batch.push_back(s.set_batch_ms);
  }
  if (m.batch_steps) m.mean_sharing = sharing / static_cast<double>(m.batch_steps);
  m.plan_ms_median = quantile(plan, 0.5);
  m.plan_ms_p99 = quantile(plan, kServeTailQuantile);
  m.scratch_ms_median = quantile(scratch, 0.5);
  m.scratch_ms_p99 = quantile(scratch, kServeTailQuantile);
  m.validate_ms_median = quantile(validate, 0.5);
  m.kernel_us_median = quantile(kernel, 0.5);
  m.kernel_us_p99 = quantile(kernel, kServeTailQuantile);
  m.step_kernel_us_median = quantile(step_kernel, 0.5);
  m.set_batch_ms_median = quantile(set_batch, 0.5);
  if (m.kernel_us_median > 0) m.plan_percent_of_layer = 100.0 * m.plan_ms_median * 1e3 / m.kernel_us_median;
  if (m.plan_ms_median > 0 && !scratch.empty()) m.speedup = m.scratch_ms_median / m.plan_ms_median;
  return m;
}

}  // namespace patlab::serving
