// The serve loop (serve_loop.hpp) on the CPU with a fake executor that records every call: on a
// few generated traces, every step's plan is valid and identical to make_plan()'s under the
// executor's planner options, the executor sees apply() before set_batch() before run_layers(),
// every K/V slot a batch reads was written (or copied) with its position, the batch's request
// count is the scheduler's running count, every request finishes (also under preemption), plan
// times are recorded, faults stop the loop, and idle gaps before an arrival are jumped over with
// the same steps after them.
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "../catch.hpp"
#include "../test_util.hpp"
#include "close_to.hpp"
#include "patlab/planner/planner.hpp"
#include "patlab/serving/serve_loop.hpp"
#include "patlab/serving/trace.hpp"

using namespace patlab;
using namespace patlab::serving;

namespace {

/// SMs the fake executor's stage plans for: not the planner's default, so a loop that ignored the
/// executor's options would make plans that differ from the fake's make_plan().
constexpr int kFakeSms = 8;
/// Kernel microseconds the fake reports for layer l: kFakeLayerUs * (l + 1).
constexpr double kFakeLayerUs = 10.0;
/// Host milliseconds the fake's set_batch() reports.
constexpr double kFakeSetBatchMs = 0.5;
/// Layers of the fake executor.
constexpr int kFakeLayers = 3;
/// Marks a K/V slot no write has reached.
constexpr int64_t kUnwritten = -1;

/// An executor that records what the loop asks of it and checks each batch on its own: the plan
/// against make_plan() and the validator, and every slot the batch reads against a shadow pool of
/// the token positions the write logs put there.
class FakeExecutor : public StepExecutor {
 public:
  FakeExecutor(const Shape& shape, int32_t capacity_blocks, bool with_plan, bool fill_waves = true)
      : shape_(shape), with_plan_(with_plan),
        positions_(static_cast<size_t>(capacity_blocks) * static_cast<size_t>(shape.page_size), kUnwritten) {
    options_.sms = kFakeSms;
    options_.fill_waves = fill_waves;
  }

  bool planner_options(PlannerOptions& options) const override {
    options = options_;
    return with_plan_;
  }

  void apply(const WriteLog& log) override {
    calls.push_back('a');
    const int page = shape_.page_size;
    for (const BlockCopy& c : log.copies)
      for (int32_t t = 0; t < c.tokens; ++t) slot(c.dst, t) = slot(c.src, t);
    for (const KvWrite& w : log.writes)
      for (int32_t k = 0; k < w.count; ++k) {
        REQUIRE(w.offset + k < page);
        slot(w.block, w.offset + k) = w.position + k;
      }
  }

  double set_batch(const PagedLayout& layout, const Plan* plan) override {
    calls.push_back('b');
    batch_requests.push_back(layout.num_requests());
    if (with_plan_) {
      REQUIRE(plan != nullptr);
      plans_valid += validate_plan(layout, *plan).empty();
      plans_identical += plan_difference(*plan, make_plan(layout, options_)).empty();
    } else {
      plans_null += plan == nullptr;
    }
    slots_stale += stale_slots(layout);
    return kFakeSetBatchMs;
  }

  std::vector<double> run_layers() override {
    calls.push_back('r');
    std::vector<double> us;
    for (int l = 0; l < kFakeLayers; ++l) us.push_back(kFakeLayerUs * (l + 1));
    return us;
  }

  CheckResult check_layer0() override {
    calls.push_back('c');
    CheckResult r;
    r.pass = ++checks != fail_check;
    return r;
  }

  std::string calls;                ///< a apply, b set_batch, r run_layers, c check_layer0
  std::vector<int32_t> batch_requests;
  int64_t plans_valid = 0, plans_identical = 0, plans_null = 0, slots_stale = 0;
  int64_t checks = 0;
  int64_t fail_check = 0;           ///< the check with this number (from 1) fails; 0 = none

 private:
  int64_t& slot(int32_t block, int32_t s) {
    return positions_.at(static_cast<size_t>(block) * static_cast<size_t>(shape_.page_size) + static_cast<size_t>(s));
  }
  /// Slots of the batch that do not hold the position a request reads there.
  int64_t stale_slots(const PagedLayout& layout) {
    int64_t stale = 0;
    const int page = shape_.page_size;
    for (int r = 0; r < layout.num_requests(); ++r)
      for (int32_t t = 0; t < layout.lengths[static_cast<size_t>(r)]; ++t)
        stale += slot(layout.block_tables[static_cast<size_t>(r)][static_cast<size_t>(t / page)], t % page) != t;
    return stale;
  }

  Shape shape_;
  bool with_plan_;
  PlannerOptions options_;
  std::vector<int64_t> positions_;  ///< [block, slot]: the token position written there
};

Trace trace_of(const std::string& spec) { return generate_trace(parse_trace_gen(spec)); }

/// A trace of one request (prompt 40 own tokens, 20 outputs) per arrival time, each given as JSON text.
Trace arrivals_trace(const std::vector<std::string>& arrivals) {
  std::string requests;
  for (const std::string& a : arrivals)
    requests += (requests.empty() ? "" : ", ") + std::string(R"({"arrival": )") + a +
                R"(, "prompt": [40], "output": 20})";
  return parse_trace_json(R"({"format": "patlab-trace-1", "requests": [)" + requests + "]}", "arrivals");
}

ServeLoopOptions loop_options(int32_t capacity_blocks) {
  ServeLoopOptions o;
  o.shape = shape_of(8, 2, 64, 16);
  o.capacity_blocks = capacity_blocks;
  o.compare_scratch = true;
  o.check_steps = kCheckAllSteps;
  return o;
}

/// The per-step call pattern the loop must follow: "abrc" per batch step (checks on all).
std::string expected_calls(const ServeResult& r, bool checks) {
  std::string s;
  for (const ServeStep& st : r.steps)
    if (st.running > 0) s += checks ? "abrc" : "abr";
  return s;
}

/// Runs `trace` with a fake executor and checks everything the file comment lists.
ServeResult run_and_check(const Trace& trace, const ServeLoopOptions& o, bool fill_waves = true) {
  FakeExecutor fake(o.shape, o.capacity_blocks, true, fill_waves);
  const ServeResult r = run_serve_loop(trace, o, &fake);
  INFO("trace " << trace.description << ", fault: " << r.fault);
  CHECK(r.fault.empty());
  CHECK(r.trace_done);
  CHECK(r.finished == r.sequences);
  CHECK(r.planned_with_executor);
  CHECK(r.planner.sms == kFakeSms);
  CHECK(fake.calls == expected_calls(r, true));
  std::vector<int32_t> running;
  int64_t batch_steps = 0, finished = 0;
  for (const ServeStep& s : r.steps) {
    finished += s.finished;
    if (s.running == 0) continue;
    ++batch_steps;
    running.push_back(s.running);
    CHECK(s.plan_ms >= 0);
    CHECK(s.validate_ms >= 0);  // measured apart from the plan
    CHECK(s.scratch_ms >= 0);
    CHECK(s.packs > 0);
    CHECK(s.checked);
    CHECK(s.set_batch_ms == kFakeSetBatchMs);
    CHECK(close_to(s.kernel_us_total, kFakeLayerUs * kFakeLayers * (kFakeLayers + 1) / 2));
    CHECK(close_to(s.kernel_us_layer, kFakeLayerUs * (kFakeLayers + 1) / 2));
    CHECK(s.kv_bytes_in_use == int64_t{s.blocks_in_use} * o.shape.page_size * o.shape.kv_bytes_per_token() * o.layers);
  }
  CHECK(batch_steps > 0);
  CHECK(finished == r.finished);  // the last step, which only retires, is in the series too
  CHECK(fake.batch_requests == running);
  CHECK(fake.plans_valid == batch_steps);
  CHECK(fake.plans_identical == batch_steps);
  CHECK(fake.slots_stale == 0);
  CHECK(r.checked_steps == batch_steps);
  return r;
}

}  // namespace

TEST_CASE("serve loop: generated traces, every plan valid and equal to make_plan's, every request finishes",
          "[serve]") {
  const char* specs[] = {
      "gen:requests=30,rate=40,prompt=60,output=40,sigma=0.5,max=300,system=100x0.5,n=2,seed=11",
      "gen:requests=40,rate=0,prompt=30,output=20,sigma=0.5,max=200,system=64x0.8+40x0.2,seed=12",
      "gen:requests=20,rate=100,prompt=50,output=30,sigma=0.8,max=200,n=3,seed=13",
  };
  // These batches are within the wave fill's reach (at most 4 waves of 8 SMs' slots), where the
  // cuts are decided again every step (the resplit path): once with the fill, once without it,
  // where growth takes the fast path.
  for (const bool fill : {true, false})
  for (const char* spec : specs) {
    INFO("wave fill " << (fill ? "on" : "off"));
    const ServeResult r = run_and_check(trace_of(spec), loop_options(4096), fill);
    CHECK(r.preemptions == 0);  // the pool holds every request at once
    const ServeSummary m = summarize(r);
    CHECK(m.plan_ms_median > 0);
    CHECK(m.validate_ms_median > 0);
    CHECK(m.speedup > 0);
    // Every batch step was planned, the first one in full, and plain decode steps took the fast
    // path (the loop passes the block manager's append-only promise).
    CHECK(m.plan_paths[0] + m.plan_paths[1] + m.plan_paths[2] + m.plan_paths[3] == m.batch_steps);
    CHECK(m.plan_paths[static_cast<size_t>(UpdatePath::full)] >= 1);
    CHECK(m.plan_paths[static_cast<size_t>(fill ? UpdatePath::resplit : UpdatePath::fast)] > 0);
    CHECK(close_to(m.kernel_us_median, kFakeLayerUs * (kFakeLayers + 1) / 2));
    CHECK(m.plan_percent_of_layer > 0);
    CHECK(m.set_batch_ms_median == kFakeSetBatchMs);
  }
}

TEST_CASE("serve loop: a pool too small for the batch preempts, and still every request finishes", "[serve]") {
  // 16 requests of at most 300 tokens (19 blocks) at once, into 48 blocks: two or three at a time.
  const Trace trace = trace_of("gen:requests=16,rate=0,prompt=120,output=120,sigma=0.3,max=300,system=48x1,seed=21");
  ServeLoopOptions o = loop_options(48);
  o.layers = 2;
  const ServeResult r = run_and_check(trace, o);
  CHECK(r.preemptions > 0);
}

TEST_CASE("serve loop: a stage without a plan gets null, the loop still plans and checks", "[serve]") {
  const Trace trace = trace_of("gen:requests=10,rate=50,prompt=40,output=20,seed=31");
  const ServeLoopOptions o = loop_options(1024);
  FakeExecutor fake(o.shape, o.capacity_blocks, false);
  const ServeResult r = run_serve_loop(trace, o, &fake);
  CHECK(r.fault.empty());
  CHECK(!r.planned_with_executor);
  CHECK(r.planner.sms == kDefaultSms);
  CHECK(fake.plans_null == static_cast<int64_t>(fake.batch_requests.size()));
  CHECK(fake.slots_stale == 0);
  CHECK(r.finished == r.sequences);
}

TEST_CASE("serve loop: check_steps, max_steps, a failed check, no executor", "[serve]") {
  const Trace trace = trace_of("gen:requests=12,rate=50,prompt=40,output=30,seed=41");
  ServeLoopOptions o = loop_options(1024);

  o.check_steps = 2;
  FakeExecutor two(o.shape, o.capacity_blocks, true);
  ServeResult r = run_serve_loop(trace, o, &two);
  CHECK(r.fault.empty());
  CHECK(two.checks == 2);
  CHECK(r.checked_steps == 2);
  CHECK(two.calls.substr(0, 8) == "abrcabrc");
  CHECK(two.calls.find('c', 8) == std::string::npos);

  o.check_steps = kCheckAllSteps;
  FakeExecutor failing(o.shape, o.capacity_blocks, true);
  failing.fail_check = 3;
  r = run_serve_loop(trace, o, &failing);
  CHECK(r.fault.find("layer 0 check") != std::string::npos);
  CHECK(failing.checks == 3);                // the loop stopped at the failing step
  CHECK(failing.calls.back() == 'c');

  o.max_steps = 5;
  FakeExecutor capped(o.shape, o.capacity_blocks, true);
  r = run_serve_loop(trace, o, &capped);
  CHECK(r.steps.size() == 5);
  CHECK(!r.trace_done);

  o.max_steps = 0;
  r = run_serve_loop(trace, o, nullptr);
  CHECK(r.fault.empty());
  CHECK(r.finished == r.sequences);
  const ServeSummary m = summarize(r);
  CHECK(m.kernel_us_median == 0);
  CHECK(m.set_batch_ms_median == 0);
  CHECK(m.plan_ms_median > 0);
  for (const ServeStep& s : r.steps) CHECK(std::isnan(s.kernel_us_layer));
}

TEST_CASE("serve loop: bad options and a pool too small for one request", "[serve]") {
  const Trace trace = trace_of("gen:requests=4,rate=0,prompt=100,output=50,sigma=0.1,seed=51");
  ServeLoopOptions o = loop_options(1024);
  o.layers = 0;
  require_error([&] { run_serve_loop(trace, o, nullptr); }, "layers must be >= 1");
  o = loop_options(4);  // 64 tokens: less than any request of this trace
  require_error([&] { run_serve_loop(trace, o, nullptr); }, "KV tokens");
  o = loop_options(0);
  require_error([&] { run_serve_loop(trace, o, nullptr); }, "at least one block");
  // Samples are admitted together: n = 4 under a limit of 2 running sequences waited forever.
  o = loop_options(1024);
  o.max_running = 2;
  require_error([&] { run_serve_loop(trace_of("gen:requests=2,rate=0,prompt=10,output=5,n=4"), o, nullptr); },
                "request 0 has n = 4 samples, more than --max-running 2");
}

TEST_CASE("serve loop: idle steps before an arrival are jumped over, the steps after them unchanged", "[serve]") {
  // The second request arrives 10^6 s (5 x 10^7 steps) after the first has finished: stepping
  // through the gap took minutes and gigabytes. Jumped over, the run is the first request's
  // twice, the second shifted to its arrival step, and the summary counts the gap's steps.
  const ServeLoopOptions o = loop_options(1024);
  const ServeResult one = run_and_check(arrivals_trace({"0"}), o);
  const ServeResult two = run_and_check(arrivals_trace({"0", "1e6"}), o);
  const int64_t arrival = static_cast<int64_t>(std::floor(1e6 / o.step_seconds));
  const ServeSummary m1 = summarize(one), m2 = summarize(two);
  CHECK(m1.idle_steps == 0);
  CHECK(m2.steps == arrival + m1.steps);
  CHECK(m2.idle_steps == arrival - m1.steps);
  CHECK(m2.batch_steps == 2 * m1.batch_steps);
  REQUIRE(two.steps.size() == 2 * one.steps.size());
  for (size_t i = 0; i < one.steps.size(); ++i) {
    const ServeStep& a = one.steps[i];
    const ServeStep& b = two.steps[one.steps.size() + i];
    CHECK(two.steps[i].step == a.step);
    CHECK(b.step == arrival + a.step);
    CHECK(b.running == a.running);
    CHECK(b.admitted == a.admitted);
    CHECK(b.finished == a.finished);
    CHECK(b.written_tokens == a.written_tokens);
    CHECK(b.blocks_in_use == a.blocks_in_use);
  }

  // A step limit inside the gap stops there: the steps counted, no batch, the trace not done.
  ServeLoopOptions capped = o;
  capped.max_steps = 1000;
  const ServeResult late = run_serve_loop(arrivals_trace({"1e6"}), capped, nullptr);
  CHECK(late.steps.empty());
  CHECK(late.idle_steps == 1000);
  CHECK(summarize(late).steps == 1000);
  CHECK(!late.trace_done);
}

TEST_CASE("serve loop: an arrival past the last step is refused, not cast", "[serve]") {
  ServeLoopOptions o = loop_options(1024);
  require_error([&] { run_serve_loop(arrivals_trace({"0", "1e300"}), o, nullptr); },
                "request 1 arrives at 1e+300 s, step 5e+301 at 20 ms per step: past the last step");
  o.step_seconds = 1e-300;
  require_error([&] { run_serve_loop(arrivals_trace({"0", "1"}), o, nullptr); }, "request 1 arrives at 1 s");
}
