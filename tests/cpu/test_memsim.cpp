// The scheduler over the block manager (continuous batching, forks, preemption by recompute) and
// the memory study built on it: every sequence finishes with the right tokens, every step's
// snapshot is a consistent layout the planner accepts, and the policies compare as they must.
#include <algorithm>
#include <cmath>
#include <map>
#include <string>
#include <vector>

#include "../catch.hpp"
#include "../test_util.hpp"
#include "close_to.hpp"
#include "patlab/planner/planner.hpp"
#include "patlab/serving/memsim.hpp"
#include "patlab/serving/scheduler.hpp"

using namespace patlab;
using namespace patlab::serving;

TEST_CASE("first fit places, frees and coalesces contiguous ranges", "[memsim]") {
  FirstFit f(100);
  CHECK(f.allocate(40) == 0);
  CHECK(f.allocate(40) == 40);
  CHECK(f.allocate(30) == -1);  // 20 left
  f.release(0, 40);
  CHECK(f.largest() == 40);
  CHECK(f.allocate(30) == 0);
  f.release(40, 40);
  CHECK(f.largest() == 70);  // [30, 100) coalesced
  f.release(0, 30);
  CHECK(f.largest() == 100);
  CHECK(f.free_slots() == 100);
}

namespace {

/// Checks a snapshot of the running batch: lengths match the tables, refcounts count the
/// tables, used_tokens match the last blocks; the planner's plan of it is valid.
void check_snapshot(const Scheduler& s, const Shape& shape, bool plan) {
  const PagedLayout L = s.snapshot(shape);
  REQUIRE(L.num_requests() == static_cast<int>(s.running().size()));
  std::vector<int32_t> refs(static_cast<size_t>(L.num_blocks), 0);
  for (int r = 0; r < L.num_requests(); ++r) {
    const auto& table = L.block_tables[static_cast<size_t>(r)];
    REQUIRE(static_cast<int64_t>(table.size()) == (L.lengths[static_cast<size_t>(r)] + shape.page_size - 1) / shape.page_size);
    REQUIRE(L.lengths[static_cast<size_t>(r)] == s.blocks().length(s.running()[static_cast<size_t>(r)]));
    std::vector<int32_t> used, want;
    for (size_t i = 0; i < table.size(); ++i) {
      ++refs[static_cast<size_t>(table[i])];
      used.push_back(L.used_tokens[static_cast<size_t>(table[i])]);
      want.push_back(std::min<int32_t>(shape.page_size, L.lengths[static_cast<size_t>(r)] - static_cast<int32_t>(i) * shape.page_size));
    }
    REQUIRE(used == want);
  }
  REQUIRE(L.refcounts == refs);
  if (plan && L.num_requests() > 0) {
    const std::vector<std::string> faults = validate_plan(L, make_plan(L, PlannerOptions{}));
    INFO((faults.empty() ? std::string() : faults.front()));
    REQUIRE(faults.empty());
  }
}

/// Runs a trace through the scheduler, checking every step; returns the preemptions.
int64_t run_checked(const Trace& trace, int32_t blocks, int page, int max_running, bool plan) {
  BlockManagerOptions bo;
  bo.num_blocks = blocks;
  bo.page_size = page;
  SchedulerOptions so;
  so.max_running = max_running;
  Scheduler s(bo, so);
  const Shape shape = shape_of(32, 8, 128, page);
  int64_t preemptions = 0;
  std::map<SeqId, bool> finished;
  size_t next = 0;
  for (int64_t step = 0; next < trace.requests.size() || !s.idle(); ++step) {
    REQUIRE(step < 1000000);  // liveness: the trace drains
    // Two arrivals per step.
    for (int k = 0; k < 2 && next < trace.requests.size(); ++k, ++next) s.add(trace.requests[next], static_cast<int32_t>(next));
    const StepEvents ev = s.step();
    preemptions += static_cast<int64_t>(ev.preempted.size());
    for (SeqId id : ev.finished) {
      REQUIRE(s.state(id).status == SeqStatus::finished);
      finished[id] = true;
    }
    for (SeqId id : s.running()) {  // the KV of every sequence: its prompt, then its own outputs
      const SeqState& st = s.state(id);
      const auto& toks = s.blocks().tokens(id);
      const auto& prompt = trace.requests[static_cast<size_t>(st.request)].prompt;
      std::vector<TokenId> want = prompt;
      for (int64_t p = st.prompt_tokens; p < st.prompt_tokens + st.generated; ++p) want.push_back(s.output_token(id, p));
      REQUIRE(toks == want);
    }
    if (step % 7 == 0) check_snapshot(s, shape, plan);
    const std::vector<std::string> faults = s.blocks().check_invariants();
    REQUIRE(faults.empty());
  }
  int64_t samples = 0;
  for (const TraceRequest& r : trace.requests) samples += r.samples;
  CHECK(static_cast<int64_t>(finished.size()) == samples);  // nobody lost
  for (const auto& kv : s.states()) CHECK(kv.second.generated == kv.second.output_tokens);
  const BlockStats st = s.blocks().stats();
  CHECK(st.in_use == 0);
  CHECK(st.free + st.cached == st.capacity);
  return preemptions;
}

Trace small_trace(uint64_t seed, int samples) {
  TraceGenOptions o;
  o.requests = 60;
  o.rate = 0;
  o.prompt_mean = 40;
  o.output_mean = 30;
  o.max_tokens = 150;
  o.system_lengths = {70};
  o.system_fractions = {0.6};
  o.samples = samples;
  o.seed = seed;
  return generate_trace(o);
}

}  // namespace

TEST_CASE("scheduler: under memory pressure every sequence finishes with its own tokens", "[memsim][scheduler]") {
  const uint64_t kSeed = 11;
  for (int samples : {1, 3}) {
    INFO("n = " << samples << ", seed " << kSeed);
    const Trace t = small_trace(kSeed, samples);
    // 24 blocks of 16 tokens = 384 slots: a few sequences at a time, so appends preempt.
    t.check_fits(24 * 16, 16);
    const int64_t preempted = run_checked(t, 24, 16, 0, true);
    CHECK(preempted > 0);  // the preemption path ran
    CHECK(run_checked(t, 400, 16, 8, true) == 0);  // plenty of memory, batch capped at 8
  }
}

TEST_CASE("scheduler: a fork's first append copies the shared partial block, as vLLM does", "[scheduler]") {
  Trace t = parse_trace_json(R"({"format": "patlab-trace-1", "requests": [
      {"arrival": 0, "prompt": [20], "output": 3, "n": 2}]})", "fork.json");
  BlockManagerOptions bo;
  bo.num_blocks = 8;
  bo.page_size = 16;
  bo.record_writes = true;
  Scheduler s(bo, SchedulerOptions{});
  s.add(t.requests[0], 0);
  StepEvents ev = s.step();
  REQUIRE(ev.admitted.size() == 1);
  REQUIRE(ev.forked == std::vector<SeqId>{seq_id(0, 1)});
  CHECK(s.blocks().block_table(seq_id(0, 0)) == s.blocks().block_table(seq_id(0, 1)));
  WriteLog log = s.blocks().take_writes();
  CHECK(log.writes.size() == 2);  // 16 + 4 prompt tokens in two blocks
  ev = s.step();
  CHECK(ev.decode_tokens == 2);
  log = s.blocks().take_writes();
  REQUIRE(log.copies.size() == 1);  // the first sample's append copied the shared block
  CHECK(log.copies[0].tokens == 4);
  CHECK(log.writes.size() == 2);
  CHECK(s.blocks().block_table(seq_id(0, 0))[0] == s.blocks().block_table(seq_id(0, 1))[0]);
  CHECK(s.blocks().block_table(seq_id(0, 0))[1] != s.blocks().block_table(seq_id(0, 1))[1]);
}

TEST_CASE("memsim: the policies on one trace", "[memsim]") {
  const Trace t = small_trace(5, 2);
  MemsimOptions o;
  o.capacity_tokens = 4096;
  o.page_size = 16;
  o.step_seconds = 0.02;
  o.reserve_tokens = 512;
  std::map<MemPolicy, MemResult> r;
  for (MemPolicy p : {MemPolicy::reserve_max, MemPolicy::reserve_exact, MemPolicy::paged, MemPolicy::paged_cache, MemPolicy::exact})
    r[p] = simulate_memory(t, o, p);
  for (const auto& kv : r) {
    INFO(policy_name(kv.first));
    CHECK(kv.second.finished == total_samples(t));
    CHECK(kv.second.peak_held <= o.capacity_tokens);
    CHECK(kv.second.mean_held >= kv.second.mean_stored);
  }
  CHECK(close_to(r[MemPolicy::exact].waste_fraction(), 0.0));  // 1-token blocks: no empty slot
  CHECK(r[MemPolicy::paged].waste_fraction() < r[MemPolicy::reserve_exact].waste_fraction());
  CHECK(r[MemPolicy::reserve_exact].waste_fraction() < r[MemPolicy::reserve_max].waste_fraction());
  CHECK(r[MemPolicy::paged].max_running > r[MemPolicy::reserve_max].max_running);
  CHECK(r[MemPolicy::paged].sharing() > 1.0);     // forks share their prompts
  CHECK(close_to(r[MemPolicy::reserve_max].sharing(), 1.0));
  CHECK(r[MemPolicy::paged_cache].hit_tokens > 0);  // the shared system prompt hits
  CHECK(r[MemPolicy::paged].hit_tokens == 0);
  CHECK(r[MemPolicy::paged_cache].prompt_tokens < r[MemPolicy::paged].prompt_tokens);
  // Deterministic: the same trace replays the same way.
  const MemResult again = simulate_memory(t, o, MemPolicy::paged_cache);
  CHECK(again.steps == r[MemPolicy::paged_cache].steps);
  CHECK(again.mean_held == r[MemPolicy::paged_cache].mean_held);
  // Impossible: a reservation larger than the cache, a cache smaller than one request.
  o.reserve_tokens = 5000;
  require_error([&] { simulate_memory(t, o, MemPolicy::reserve_max); }, "contiguous regions of 5000 tokens");
  o.capacity_tokens = 64;
  require_error([&] { simulate_memory(t, o, MemPolicy::paged); }, "KV tokens (prompt + output), the cache holds 64");
  // 2^31 one-token blocks do not fit the exact policy's 32-bit block count: refused, not wrapped.
  o.capacity_tokens = kMaxMemsimTokens + 1;
  require_error([&] { simulate_memory(t, o, MemPolicy::exact); }, "past what memsim models (2^31 - 1)");
}

TEST_CASE("memsim: idle steps before an arrival are jumped over and count as empty steps", "[memsim]") {
  // Two requests of the same lengths, the second 10^6 s (5 x 10^7 steps) after the first: the
  // replay is the first request's twice, and the gap counts in the steps and means as empty steps.
  const auto trace = [](const std::string& second) {
    return parse_trace_json(R"({"format": "patlab-trace-1", "requests": [{"arrival": 0, "prompt": [40], "output": 20})" +
                                second + "]}",
                            "arrivals");
  };
  const Trace one = trace(""), two = trace(R"(, {"arrival": 1e6, "prompt": [40], "output": 20})");
  MemsimOptions o;
  o.capacity_tokens = 4096;
  const int64_t arrival = static_cast<int64_t>(std::floor(1e6 / o.step_seconds));
  for (MemPolicy p : {MemPolicy::reserve_max, MemPolicy::reserve_exact, MemPolicy::paged, MemPolicy::paged_cache, MemPolicy::exact}) {
    INFO(policy_name(p));
    const MemResult a = simulate_memory(one, o, p), b = simulate_memory(two, o, p);
    CHECK(a.idle_steps == 0);
    CHECK(b.steps == arrival + a.steps);
    CHECK(b.idle_steps == arrival - a.steps - 1);  // the step that retires the first request is replayed
    CHECK(b.series.size() == 2 * a.series.size() + 1);
    CHECK(b.series.back().step == arrival + a.series.back().step);
    CHECK(b.peak_held == a.peak_held);
    CHECK(b.max_running == a.max_running);
    CHECK(b.finished == 2);
    CHECK(close_to(b.mean_held * static_cast<double>(b.steps), 2 * a.mean_held * static_cast<double>(a.steps)));
    CHECK(close_to(b.mean_running * static_cast<double>(b.steps), 2 * a.mean_running * static_cast<double>(a.steps)));
  }
  // Past the last step: refused with the request named, not cast to a wrong step.
  const Trace far = trace(R"(, {"arrival": 1e300, "prompt": [4], "output": 2})");
  require_error([&] { simulate_memory(far, o, MemPolicy::paged); }, "request 1 arrives at 1e+300 s");
}
