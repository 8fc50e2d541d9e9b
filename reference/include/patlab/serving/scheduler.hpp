/// @file scheduler.hpp
/// @brief Continuous batching over the block manager, one decode step at a time, with vLLM v1's
/// preemption by recompute.
///
/// One step():
///  1. *retire*: sequences that appended their last output token in the previous step are freed;
///  2. *decode*: every running sequence appends one token (its next output token's K/V), in
///     admission order. When the pool cannot give a block, the most recently admitted running
///     sequence is preempted (its blocks freed, put back at the *front* of the waiting queue with
///     all its tokens so far, to be recomputed on readmission) until the append fits or the
///     sequence preempted is the one appending. This is vLLM v1's scheduler (vllm/v1/core/sched/
///     scheduler.py, `self.running.pop()` in the loop over running requests, 0.8-0.10 series).
///  3. *admit*: only if nobody was preempted this step (as in v1), waiting sequences are admitted
///     from the front, first come first served, while their prompt's blocks (after cache hits)
///     can be had and the running count stays within max_running; the first that does not fit
///     stops admission (no overtaking). Admission is the prefill: the whole prompt's K/V is
///     written in this step (no chunked prefill), and it yields the first output token.
///  4. *fork*: a request with n > 1 samples forks n - 1 children right after its first admission;
///     they share every block (the partial last one too) and diverge by copy-on-write.
/// A sequence holds prompt + output tokens at its end. Nothing is ever dropped: every sequence
/// is running, waiting, or finished; Trace::check_fits() guarantees each one fits alone.
#pragma once

#include <cstdint>
#include <deque>
#include <unordered_map>
#include <vector>

#include "patlab/serving/block_manager.hpp"
#include "patlab/serving/trace.hpp"

namespace patlab::serving {

/// Stable id of sample `sample` of trace request `request`.
inline SeqId seq_id(int32_t request, int32_t sample) { return SeqId{request} * kMaxSamples + sample; }

/// Knobs of the scheduler.
struct SchedulerOptions {
  int max_running = 0;  ///< most running sequences (vLLM's max_num_seqs); 0 = no limit
  uint64_t token_seed = 1;  ///< seed of the generated (output) token ids
  int vocab = kDefaultVocab;  ///< output token ids are in [0, vocab)
};

/// Where a sequence is.
enum class SeqStatus { waiting, running, finished };

/// One sequence (one sample of one request).
struct SeqState {
  SeqId id = 0;               ///< seq_id(request, sample)
  int32_t request = 0;        ///< trace index
  int32_t sample = 0;         ///< 0..n-1
  int32_t samples = 1;        ///< n of its request (forks pending while !forked)
  int64_t prompt_tokens = 0;  ///< original prompt length
  int32_t output_tokens = 0;  ///< outputs to generate
  int32_t generated = 0;      ///< output tokens whose K/V is appended
  bool forked = false;        ///< request's samples forked (set at first admission, even if n = 1; children copy it)
  SeqStatus status = SeqStatus::waiting;  ///< waiting, running or finished
  int64_t arrival_step = 0;   ///< step it was added in
  int64_t first_step = -1;    ///< step of its first admission (prefill: first token)
  int64_t finish_step = -1;   ///< step of its last append
  int32_t preemptions = 0;    ///< times preempted by recompute
  int64_t hit_tokens = 0;     ///< prompt tokens found in the prefix cache, over all admissions
  std::vector<TokenId> waiting_tokens;  ///< while waiting: what admission must (re)compute
};

/// What one step did.
struct StepEvents {
  int64_t step = 0;              ///< index of this step, from 0 (Scheduler::steps() before it)
  std::vector<SeqId> finished;   ///< retired at the start of this step
  std::vector<SeqId> preempted;  ///< preempted by recompute this step
  std::vector<SeqId> admitted;   ///< prefilled this step (readmissions too)
  std::vector<SeqId> forked;     ///< children created this step
  int64_t decode_tokens = 0;     ///< tokens appended by decoding
  int64_t prefill_tokens = 0;    ///< prompt tokens written by admissions (cache hits excluded)
  int64_t hit_tokens = 0;        ///< prompt tokens taken from the prefix cache
};

/// Continuous batching with preemption by recompute (see the file comment).
class Scheduler {
 public:
  /// Builds its pool from `blocks`; throws Error(usage) on bad pool options or max_running < 0.
  Scheduler(const BlockManagerOptions& blocks, const SchedulerOptions& options);

  /// Queues trace request `index` (all its samples as one sequence until it forks).
  void add(const TraceRequest& request, int32_t index);
  /// One step: retire, decode, admit, fork.
  StepEvents step();
  /// True when nothing is waiting or running.
  bool idle() const { return waiting_.empty() && running_.empty(); }
  /// Moves the step counter to `step` (>= steps()) without stepping: while idle(), each step()
  /// skipped would only have counted. Throws Error(usage) when not idle or `step` < steps().
  void skip_to(int64_t step);
  /// Running sequences in admission order (the batch of the step just taken).
  const std::vector<SeqId>& running() const { return running_; }
  /// Sequences in the waiting queue: queued requests (one each until forked) and preempted sequences.
  size_t waiting() const { return waiting_.size(); }
  /// The state of sequence `id`; throws Error(usage) for an id never seen.
  const SeqState& state(SeqId id) const;
  /// Every sequence seen, by id.
  const std::unordered_map<SeqId, SeqState>& states() const { return seqs_; }
  /// The running batch as a PagedLayout (order = running()).
  PagedLayout snapshot(const Shape& shape) const { return blocks_.snapshot(running_, shape); }
  /// The block manager (the serve loop takes its writes through it).
  BlockManager& blocks() { return blocks_; }
  /// The block manager, read-only (stats, counters, tables).
  const BlockManager& blocks() const { return blocks_; }
  /// Steps taken.
  int64_t steps() const { return step_; }
  /// The output token a sequence generates at `position` (seeded, deterministic).
  TokenId output_token(SeqId id, int64_t position) const;

 private:
  void retire(StepEvents& ev);
  void decode(StepEvents& ev);
  void admit(StepEvents& ev);
  void fork_samples(SeqState& parent, StepEvents& ev);
  /// Frees `id`'s blocks and puts it at the front of the waiting queue with its tokens.
  void preempt(SeqId id, StepEvents& ev);

  BlockManager blocks_;
  SchedulerOptions options_;
  std::unordered_map<SeqId, SeqState> seqs_;
  std::deque<SeqId> waiting_;
  std::vector<SeqId> running_;
  int64_t step_ = 0;
};

}  // namespace patlab::serving
