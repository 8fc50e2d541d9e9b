// patlab serve's GPU side: a pool that lives across decode steps (gpu::ServeSession), driven by
// the block manager's scheduler and the incremental planner, checked against the float64 oracle
// on every step: new tokens appended, blocks allocated and freed, forks with copy-on-write,
// preemption by recompute, the plan of every step.
#include <cstdio>
#include <string>
#include <vector>

#include "../catch.hpp"
#include "../test_util.hpp"
#include "patlab/truth/check.hpp"
#include "patlab/gpu.hpp"
#include "patlab/planner/incremental_planner.hpp"
#include "patlab/planner/planner.hpp"
#include "patlab/serving/scheduler.hpp"
#include "patlab/serving/trace.hpp"

namespace {

using namespace patlab;

/// Pool blocks: small, so that the scheduler preempts.
constexpr int32_t kPoolBlocks = 40;
/// Layers of the session: layer 0 is checked, layer 1 shares the tables and the plan.
constexpr int kLayers = 2;
/// Most steps a trace may take before the test gives up.
constexpr int kMaxSteps = 2000;
constexpr uint64_t kSeed = 20261201;

/// Twelve requests, most on one system prompt, two samples each: forks, shared partial blocks.
serving::Trace small_trace(uint64_t seed) {
  serving::TraceGenOptions g;
  g.requests = 12;
  g.rate = 0;
  g.prompt_mean = 60;
  g.output_mean = 24;
  g.max_tokens = 200;
  g.system_lengths = {100};
  g.system_fractions = {0.75};
  g.samples = 2;
  g.seed = seed;
  return serving::generate_trace(g);
}

/// Runs the trace through scheduler -> incremental plan -> GPU, checking every non-empty step.
void serve_and_check(const std::string& slug, DType dtype) {
  const Shape shape = shape_of(8, 2, 64, 16, dtype);
  const serving::Trace trace = small_trace(kSeed);
  trace.check_fits(int64_t{kPoolBlocks} * shape.page_size, shape.page_size);
  serving::Scheduler sched({kPoolBlocks, shape.page_size, true, true}, {0, trace.seed, trace.vocab});
  for (int32_t i = 0; i < static_cast<int32_t>(trace.requests.size()); ++i) sched.add(trace.requests[i], i);

  gpu::ServeConfig config;
  config.shape = shape;
  config.pool_blocks = kPoolBlocks;
  config.layers = kLayers;
  config.stage = slug;
  config.seed = kSeed;
  gpu::ServeSession session(config);
  PlannerOptions options;
  const bool plans = session.planner_options(options);
  IncrementalPlanner planner(options);

  int steps = 0, checked = 0, preempted = 0, forked = 0;
  while (!sched.idle() && steps < kMaxSteps) {
    const serving::StepEvents ev = sched.step();
    ++steps;
    preempted += static_cast<int>(ev.preempted.size());
    forked += static_cast<int>(ev.forked.size());
    const PagedLayout layout = sched.snapshot(shape);
    session.apply(sched.blocks().take_writes());
    if (layout.num_requests() == 0) continue;  // the step only retired sequences
    const std::vector<int64_t> ids(sched.running().begin(), sched.running().end());
    const Plan& plan = planner.update(layout, ids);
    INFO("stage " << slug << ", " << dtype_name(dtype) << ", step " << steps << ", seed " << kSeed);
    REQUIRE(validate_plan(layout, plan).empty());
    session.set_batch(layout, plans ? &plan : nullptr);
    const std::vector<double> us = session.run_layers();
    REQUIRE(us.size() == static_cast<size_t>(kLayers));
    const CheckResult c = session.check_layer0();
    INFO(c.summary());
    REQUIRE(c.pass);
    ++checked;
  }
  REQUIRE(sched.idle());
  std::printf("serve %-12s %s: %d steps, %d checked, %d forks, %d preemptions, all requests finished\n", slug.c_str(),
              dtype_name(dtype), steps, checked, forked, preempted);
  CHECK(forked > 0);
  CHECK(checked > 0);
}

}  // namespace

TEST_CASE("serve: every step of a living pool matches the oracle") {
  for (const char* slug : {"naive", "gqa", "splitkv", "packed", "multitile", "multistream", "pat"})
    serve_and_check(slug, DType::fp16);
  serve_and_check("pat", DType::bf16);
}

TEST_CASE("serve: stage 10 re-lays out each layer's pools and matches the oracle every step") {
  serve_and_check("packinfer", DType::fp16);
}
