#include "patlab/serving/memsim.hpp"

#include <algorithm>
#include <cmath>
#include <deque>

#include "patlab/error.hpp"
#include "patlab/serving/scheduler.hpp"

namespace patlab::serving {

namespace {
/// Steps between progress callbacks.
constexpr int64_t kProgressEvery = 2000;
}  // namespace

std::string policy_name(MemPolicy p) {
  switch (p) {
    case MemPolicy::reserve_max: return "reserve-max";
    case MemPolicy::reserve_exact: return "reserve-exact";
    case MemPolicy::paged: return "paged";
    case MemPolicy::paged_cache: return "paged+cache";
    case MemPolicy::exact: return "exact";
  }
  return "?";
}

int64_t total_samples(const Trace& trace) {
  int64_t n = 0;
  for (const TraceRequest& r : trace.requests) n += r.samples;
  return n;
}

FirstFit::FirstFit(int64_t capacity) : free_{{0, capacity}}, free_slots_(capacity) {}

int64_t FirstFit::allocate(int64_t n) {
  for (size_t i = 0; i < free_.size(); ++i) {
    if (free_[i].second < n) continue;
    const int64_t start = free_[i].first;
    free_[i].first += n;
    free_[i].second -= n;
    if (free_[i].second == 0) free_.erase(free_.begin() + static_cast<std::ptrdiff_t>(i));
    free_slots_ -= n;
    return start;
  }
  return -1;
}

void FirstFit::release(int64_t start, int64_t n) {
  auto it = std::lower_bound(free_.begin(), free_.end(), std::make_pair(start, int64_t{0}));
  it = free_.insert(it, {start, n});
  free_slots_ += n;
  auto next = it + 1;
  if (next != free_.end() && it->first + it->second == next->first) {
    it->second += next->second;
    free_.erase(next);
  }
  if (it != free_.begin()) {
    auto prev = it - 1;
    if (prev->first + prev->second == it->first) {
      prev->second += it->second;
      free_.erase(it);
    }
  }
}

int64_t FirstFit::largest() const {
  int64_t m = 0;
  for (const auto& f : free_) m = std::max(m, f.second);
  return m;
}

namespace {

/// Accumulates the per-step samples into the result's means and peaks; the idle steps jumped
/// over hold nothing (every MemSample field 0) and count in the means as such.
void summarize(MemResult& res) {
  double running = 0, held = 0, stored = 0, referenced = 0;
  for (const MemSample& s : res.series) {
    running += s.running;
    held += static_cast<double>(s.held);
    stored += static_cast<double>(s.stored);
    referenced += static_cast<double>(s.referenced);
    res.max_running = std::max(res.max_running, s.running);
    res.peak_held = std::max(res.peak_held, s.held);
  }
  res.steps = static_cast<int64_t>(res.series.size()) + res.idle_steps;
  const double n = std::max<double>(1.0, static_cast<double>(res.steps));
  res.mean_running = running / n;
  res.mean_held = held / n;
  res.mean_stored = stored / n;
  res.mean_referenced = referenced / n;
}

/// Whether the replay is idle before the next arrival at `step`: then it jumps to that arrival
/// (res.idle_steps counts the steps skipped) and returns true with `step` moved there.
bool jump_idle(bool idle, const std::vector<int64_t>& arrive, size_t next, int64_t& step, MemResult& res) {
  if (!idle || next >= arrive.size() || arrive[next] <= step) return false;
  res.idle_steps += arrive[next] - step;
  step = arrive[next];
  return true;
}

// [paged replay]
MemResult replay_paged(const Trace& trace, const std::vector<int64_t>& arrive, const MemsimOptions& o,
                        MemPolicy policy, const MemProgress& progress) {
  BlockManagerOptions bo;
  bo.page_size = policy == MemPolicy::exact ? 1 : o.page_size;
  bo.num_blocks = static_cast<int32_t>(o.capacity_tokens / bo.page_size);
  bo.prefix_caching = policy != MemPolicy::paged;
  SchedulerOptions so;
  so.max_running = o.max_running;
  so.token_seed = trace.seed;
  so.vocab = trace.vocab;
  Scheduler sched(bo, so);
  const int64_t samples = total_samples(trace);
  MemResult res;
  res.policy = policy;
  size_t next = 0;
  for (int64_t step = 0; next < trace.requests.size() || !sched.idle(); ++step) {
    if (jump_idle(sched.idle(), arrive, next, step, res)) sched.skip_to(step);
    while (next < trace.requests.size() && arrive[next] <= step) {
      sched.add(trace.requests[next], static_cast<int32_t>(next));
      ++next;
    }
    const StepEvents ev = sched.step();
    res.finished += static_cast<int64_t>(ev.finished.size());
    res.preemptions += static_cast<int64_t>(ev.preempted.size());
    res.prompt_tokens += ev.prefill_tokens;
    res.hit_tokens += ev.hit_tokens;
    const BlockStats st = sched.blocks().stats();
    if (sched.idle() && next == trace.requests.size()) break;  // the step only retired the last ones
    res.series.push_back({step, static_cast<int32_t>(sched.running().size()), static_cast<int32_t>(sched.waiting()),
                          st.slots_in_use, st.tokens_stored, st.tokens_referenced});
    if (progress && step % kProgressEvery == 0) progress(policy, step, res.finished, samples);
  }
  res.cow_copies = sched.blocks().counters().cow_copies;
  summarize(res);
  return res;
}
// [paged replay]

/// One sample's contiguous region.
struct Region {
  int64_t start = 0, size = 0, length = 0;
  int32_t generated = 0, output = 0;
};

// [reserve replay]
MemResult replay_reserved(const Trace& trace, const std::vector<int64_t>& arrive, const MemsimOptions& o,
                        MemPolicy policy, const MemProgress& progress) {
  FirstFit space(o.capacity_tokens);
  const int64_t samples = total_samples(trace);
  std::deque<size_t> waiting;
  std::vector<Region> running;
  MemResult res;
  res.policy = policy;
  size_t next = 0;
  for (int64_t step = 0; next < trace.requests.size() || !waiting.empty() || !running.empty(); ++step) {
    jump_idle(waiting.empty() && running.empty(), arrive, next, step, res);
    while (next < trace.requests.size() && arrive[next] <= step) waiting.push_back(next++);
    std::vector<Region> still;
    for (const Region& r : running) {  // retire
      if (r.generated < r.output) {
        still.push_back(r);
      } else {
        space.release(r.start, r.size);
        ++res.finished;
      }
    }
    running.swap(still);
    for (Region& r : running) {  // decode: the region already holds the slot
      ++r.length;
      ++r.generated;
    }
    while (!waiting.empty()) {  // admit, first come first served, all samples at once
      const TraceRequest& q = trace.requests[waiting.front()];
      if (o.max_running > 0 && static_cast<int>(running.size()) + q.samples > o.max_running) break;
      const int64_t need = q.max_tokens();
      const int64_t size = policy == MemPolicy::reserve_max ? std::max(o.reserve_tokens, need) : need;
      std::vector<int64_t> starts;
      for (int k = 0; k < q.samples; ++k) {
        const int64_t s = space.allocate(size);
        if (s < 0) break;
        starts.push_back(s);
      }
      if (static_cast<int>(starts.size()) < q.samples) {
        for (int64_t s : starts) space.release(s, size);
        break;
      }
      for (int64_t s : starts)
        running.push_back({s, size, static_cast<int64_t>(q.prompt.size()), 0, q.output_tokens});
      res.prompt_tokens += static_cast<int64_t>(q.prompt.size()) * q.samples;
      waiting.pop_front();
    }
    if (running.empty() && waiting.empty() && next == trace.requests.size()) break;
    MemSample s{step, static_cast<int32_t>(running.size()), static_cast<int32_t>(waiting.size()), 0, 0, 0};
    for (const Region& r : running) {
      s.held += r.size;
      s.stored += r.length;
    }
    s.referenced = s.stored;
    res.series.push_back(s);
    if (progress && step % kProgressEvery == 0) progress(policy, step, res.finished, samples);
  }
  summarize(res);
  return res;
}
// [reserve replay]

}  // namespace

MemResult simulate_memory(const Trace& trace, const MemsimOptions& o, MemPolicy policy, const MemProgress& progress) {
  require(o.step_seconds > 0 && std::isfinite(o.step_seconds), "step time must be > 0 seconds");
  require(o.page_size >= 1, "page size must be >= 1");
  require(o.reserve_tokens >= 1, "reserved tokens per sample must be >= 1");
  require(o.max_running >= 0, "max running must be >= 0 (0: no limit)");
  require(o.capacity_tokens <= kMaxMemsimTokens, "KV capacity of " + std::to_string(o.capacity_tokens) +
                                                     " tokens is past what memsim models (2^31 - 1)");
  const int page = policy == MemPolicy::exact ? 1 : o.page_size;
  const std::vector<int64_t> arrive =
      trace.check_step_simulation(o.capacity_tokens, page, o.max_running, o.step_seconds);
  if (policy == MemPolicy::reserve_max || policy == MemPolicy::reserve_exact) {
    for (size_t r = 0; r < trace.requests.size(); ++r) {
      const TraceRequest& q = trace.requests[r];
      const int64_t size = policy == MemPolicy::reserve_max ? std::max(o.reserve_tokens, q.max_tokens()) : q.max_tokens();
      require(size * q.samples <= o.capacity_tokens,
              "request " + std::to_string(r) + ": " + std::to_string(q.samples) + " contiguous regions of " +
                  std::to_string(size) + " tokens exceed the cache of " + std::to_string(o.capacity_tokens) + " tokens");
    }
    return replay_reserved(trace, arrive, o, policy, progress);
  }
  return replay_paged(trace, arrive, o, policy, progress);
}

}  // namespace patlab::serving
