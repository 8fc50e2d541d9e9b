/// @file memsim.hpp
/// @brief The memory study: one trace replayed token by token under several KV allocation
/// policies, on the same step semantics as the Scheduler (scheduler.hpp).
///
/// Policies:
/// - **reserve-max** (Orca (Max) in the vLLM paper): each sample reserves a contiguous region
///   of `reserve_tokens` slots (or its prompt + output if longer) at admission, placed first-fit;
///   no sharing, no preemption (the region never overflows).
/// - **reserve-exact** (Orca (Oracle)): the same with exactly prompt + output slots.
/// - **paged**: the block manager with `page`-token blocks, forks shared, no prefix caching.
/// - **paged+cache**: the same with prefix caching.
/// - **exact**: the block manager with 1-token blocks and prefix caching: no slot is ever empty,
///   the exact need of this scheduler.
/// Arrivals are mapped to steps by an assumed decode step time (`step_seconds`). Idle steps
/// (nothing running or waiting, the next arrival still ahead) are not replayed one by one: the
/// replay jumps to the arrival's step. They hold nothing, so they count in the steps and the
/// means as zeros (the same numbers as stepping through them) and get no MemSample.
#pragma once

#include <cstdint>
#include <functional>
#include <limits>
#include <string>
#include <vector>

#include "patlab/serving/trace.hpp"

namespace patlab::serving {

/// Largest KV capacity memsim models, in tokens: the exact policy's 1-token blocks are counted
/// in 32 bits (BlockManagerOptions::num_blocks).
inline constexpr int64_t kMaxMemsimTokens = std::numeric_limits<int32_t>::max();

/// Knobs of the replay.
struct MemsimOptions {
  int64_t capacity_tokens = 0;    ///< KV token slots that fit the GPU memory given to the cache
  int page_size = 16;             ///< block size of the paged policies
  double step_seconds = 0.02;     ///< assumed decode step time: maps arrival seconds to steps
  int max_running = 0;            ///< vLLM's max_num_seqs; 0 = no limit (memory is the limit)
  int64_t reserve_tokens = 2048;  ///< reserve-max: slots reserved per sample
};

/// The allocation policies of the study.
enum class MemPolicy { reserve_max, reserve_exact, paged, paged_cache, exact };
/// Short name ("reserve-max", ...).
std::string policy_name(MemPolicy p);

/// The state after one step.
struct MemSample {
  int64_t step = 0;         ///< the step, from 0
  int32_t running = 0;      ///< sequences decoding
  int32_t waiting = 0;      ///< sequences queued (arrived, or preempted)
  int64_t held = 0;         ///< slots held by running sequences (reserved regions or blocks in use)
  int64_t stored = 0;       ///< slots holding a token (each shared block once)
  int64_t referenced = 0;   ///< tokens the running sequences read (sum of lengths)
};

/// What one policy did with the trace.
struct MemResult {
  MemPolicy policy = MemPolicy::paged;  ///< the policy replayed
  int64_t steps = 0;          ///< steps until every sequence finished (idle steps included)
  int64_t idle_steps = 0;     ///< idle steps jumped over (in `steps`, not in `series`)
  int64_t finished = 0;       ///< sequences finished (must equal the trace's samples)
  int32_t max_running = 0;    ///< largest batch that fit
  double mean_running = 0;    ///< mean batch over steps
  int64_t peak_held = 0;      ///< largest MemSample::held over steps
  double mean_held = 0;       ///< MemSample::held, mean over steps
  double mean_stored = 0;     ///< MemSample::stored, mean over steps
  double mean_referenced = 0;  ///< MemSample::referenced, mean over steps
  int64_t preemptions = 0;    ///< preemptions by recompute (0 for the reserve policies)
  int64_t prompt_tokens = 0;  ///< prompt tokens prefilled (recomputed ones included, hits excluded)
  int64_t hit_tokens = 0;     ///< prompt tokens taken from the prefix cache
  int64_t cow_copies = 0;     ///< copy-on-write block copies (0 for the reserve policies)
  std::vector<MemSample> series;  ///< one sample per step replayed (none for the idle steps jumped over)

  /// Held slots without a token, as a fraction of held slots (mean over steps).
  double waste_fraction() const { return mean_held > 0 ? 1.0 - mean_stored / mean_held : 0.0; }
  /// Tokens read per token stored (mean over steps).
  double sharing() const { return mean_stored > 0 ? mean_referenced / mean_stored : 1.0; }
};

/// Progress callback: (policy, step, finished sequences, total sequences).
using MemProgress = std::function<void(MemPolicy, int64_t, int64_t, int64_t)>;

/// Replays `trace` under `policy`. Throws Error(usage) on a capacity past kMaxMemsimTokens, if
/// the trace cannot fit (check_fits) or
/// an arrival is past the last step (Trace::arrival_steps).
MemResult simulate_memory(const Trace& trace, const MemsimOptions& options, MemPolicy policy,
                          const MemProgress& progress = nullptr);

/// Samples of a trace (sum of n).
int64_t total_samples(const Trace& trace);

/// Contiguous first-fit allocation of slot ranges in [0, capacity) (the reserve policies).
class FirstFit {
 public:
  /// All of [0, capacity) free.
  explicit FirstFit(int64_t capacity);
  /// Start of a free range of `n` slots (the lowest that fits), or -1.
  int64_t allocate(int64_t n);
  /// Returns [start, start + n) (coalesced with its free neighbours).
  void release(int64_t start, int64_t n);
  /// Largest free range.
  int64_t largest() const;
  /// Free slots over all ranges.
  int64_t free_slots() const { return free_slots_; }

 private:
  std::vector<std::pair<int64_t, int64_t>> free_;  ///< sorted (start, length)
  int64_t free_slots_ = 0;
};

}  // namespace patlab::serving
