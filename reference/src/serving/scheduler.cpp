#include "patlab/serving/scheduler.hpp"

#include <algorithm>

#include "patlab/error.hpp"

namespace patlab::serving {

Scheduler::Scheduler(const BlockManagerOptions& blocks, const SchedulerOptions& options)
    : blocks_(blocks), options_(options) {
  require(options.max_running >= 0, "max running sequences must be >= 0 (0: no limit)");
}

const SeqState& Scheduler::state(SeqId id) const {
  auto it = seqs_.find(id);
  require(it != seqs_.end(), "unknown sequence " + std::to_string(id));
  return it->second;
}

TokenId Scheduler::output_token(SeqId id, int64_t position) const {
  uint64_t x = options_.token_seed ^ (static_cast<uint64_t>(id) * 0x9E3779B97F4A7C15ULL) ^
               (static_cast<uint64_t>(position) * 0xC2B2AE3D27D4EB4FULL);
  x ^= x >> 31;
  x *= 0xbf58476d1ce4e5b9ULL;
  x ^= x >> 29;
  return static_cast<TokenId>(x % static_cast<uint64_t>(options_.vocab));
}

void Scheduler::add(const TraceRequest& request, int32_t index) {
  require(!request.prompt.empty(), "request " + std::to_string(index) + " has an empty prompt");
  SeqState s;
  s.id = seq_id(index, 0);
  require(seqs_.count(s.id) == 0, "request " + std::to_string(index) + " added twice");
  s.request = index;
  s.samples = request.samples;
  s.prompt_tokens = static_cast<int64_t>(request.prompt.size());
  s.output_tokens = request.output_tokens;
  s.arrival_step = step_;
  s.waiting_tokens = request.prompt;
  waiting_.push_back(s.id);
  seqs_.emplace(s.id, std::move(s));
}

void Scheduler::skip_to(int64_t step) {
  require(idle(), "the scheduler skips steps only while nothing is waiting or running");
  require(step >= step_, "the scheduler cannot skip back to step " + std::to_string(step) + " from step " +
                             std::to_string(step_));
  step_ = step;
}

// [step]
StepEvents Scheduler::step() {
  StepEvents ev;
  ev.step = step_;
  retire(ev);
  decode(ev);
  if (ev.preempted.empty()) admit(ev);
  ++step_;
  return ev;
}
// [step]

void Scheduler::retire(StepEvents& ev) {
  std::vector<SeqId> still;
  for (SeqId id : running_) {
    SeqState& s = seqs_.at(id);
    if (s.generated < s.output_tokens) {
      still.push_back(id);
      continue;
    }
    blocks_.free(id);
    s.status = SeqStatus::finished;
    ev.finished.push_back(id);
  }
  running_.swap(still);
}

void Scheduler::preempt(SeqId id, StepEvents& ev) {
  SeqState& s = seqs_.at(id);
  s.waiting_tokens = blocks_.tokens(id);
  blocks_.free(id);
  s.status = SeqStatus::waiting;
  ++s.preemptions;
  waiting_.push_front(id);
  ev.preempted.push_back(id);
}

// [decode]
void Scheduler::decode(StepEvents& ev) {
  for (size_t i = 0; i < running_.size(); ++i) {
    const SeqId id = running_[i];
    SeqState& s = seqs_.at(id);
    const TokenId token = output_token(id, blocks_.length(id));
    bool appended = true;
    while (!blocks_.append(id, token)) {
      const SeqId victim = running_.back();  // the most recently admitted
      running_.pop_back();
      preempt(victim, ev);
      if (victim == id) {
        appended = false;
        break;
      }
    }
    if (!appended) break;  // it was the last running sequence
    ++s.generated;
    ++ev.decode_tokens;
    s.finish_step = step_;
  }
}
// [decode]

// [admit]
void Scheduler::admit(StepEvents& ev) {
  while (!waiting_.empty()) {
    SeqState& s = seqs_.at(waiting_.front());
    const int needed = s.forked ? 1 : s.samples;
    if (options_.max_running > 0 && static_cast<int>(running_.size()) + needed > options_.max_running) break;
    int64_t hits = 0;
    if (!blocks_.admit(s.id, s.waiting_tokens, &hits)) break;
    waiting_.pop_front();
    ev.prefill_tokens += static_cast<int64_t>(s.waiting_tokens.size()) - hits;
    ev.hit_tokens += hits;
    s.hit_tokens += hits;
    s.waiting_tokens.clear();
    s.waiting_tokens.shrink_to_fit();
    s.status = SeqStatus::running;
    if (s.first_step < 0) s.first_step = step_;
    running_.push_back(s.id);
    ev.admitted.push_back(s.id);
    if (!s.forked) fork_samples(s, ev);
  }
}
// [admit]

void Scheduler::fork_samples(SeqState& parent, StepEvents& ev) {
  parent.forked = true;
  for (int32_t k = 1; k < parent.samples; ++k) {
    SeqState child = parent;
    child.id = seq_id(parent.request, k);
    child.sample = k;
    child.hit_tokens = 0;
    blocks_.fork(parent.id, child.id);
    running_.push_back(child.id);
    ev.forked.push_back(child.id);
    seqs_.emplace(child.id, std::move(child));
  }
}

}  // namespace patlab::serving
