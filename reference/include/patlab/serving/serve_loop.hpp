/// @file serve_loop.hpp
/// @brief The decode loop of `patlab serve`: a trace drives the scheduler step by step, each
/// step's batch is planned by the incremental planner (checked by the validator, optionally
/// against make_plan() from scratch), and an executor (the GPU, or a fake in the CPU tests) gets
/// the step's cache writes, the batch and its plan, and runs the attention of every layer.
///
/// One step:
///  1. the trace's requests that arrived by this step join the waiting queue;
///  2. Scheduler::step() (retire, decode, admit, fork: scheduler.hpp);
///  3. the block manager's writes since the last step are taken (every step, executor or not,
///     so the log never grows);
///  4. if the batch is not empty: its snapshot is planned by IncrementalPlanner::update() (timed),
///     with TableHint::append_only when the last step was planned too (a sequence running in both
///     steps only appended: the block manager's contract), and validated once (timed apart, not
///     in the plan time); with `compare_scratch`, make_plan() is timed too and must give the same
///     plan;
///  5. the executor applies the writes, sets the batch with the plan (null when its stage runs
///     no plan), runs every layer, and on the first `check_steps` non-empty steps checks layer 0.
/// A fault (invalid plan, plans that differ, a failed check) stops the loop and is reported.
/// Idle steps (nothing running or waiting, the next arrival still ahead) are not taken one by
/// one: the loop jumps to the arrival's step (or to max_steps). Such a step would change nothing
/// but the step number, so the steps after it are the same; they get no ServeStep, and
/// ServeResult::idle_steps counts them (a trace whose request arrives after 10^6 s finishes at
/// once instead of stepping through 5 x 10^7 empty steps).
#pragma once

#include <cstdint>
#include <functional>
#include <limits>
#include <string>
#include <vector>

#include "patlab/truth/check.hpp"
#include "patlab/planner/incremental_planner.hpp"
#include "patlab/model/kv_cache.hpp"
#include "patlab/planner/plan.hpp"
#include "patlab/planner/planner.hpp"
#include "patlab/serving/block_manager.hpp"
#include "patlab/serving/scheduler.hpp"
#include "patlab/serving/trace.hpp"

namespace patlab::serving {

/// What runs a step's attention: the GPU (gpu::ServeSession behind an adapter in the CLI) or a
/// fake that records calls (tests). The loop calls, per step with a non-empty batch: apply(),
/// set_batch(), run_layers(), then maybe check_layer0(). A step with an empty batch (before the
/// first arrival, or one that only retired) writes nothing and calls nothing.
class StepExecutor {
 public:
  virtual ~StepExecutor() = default;
  /// The planner options the stage plans with, or false when it executes no plan.
  virtual bool planner_options(PlannerOptions& options) const = 0;
  /// Applies the step's cache changes (copies first, then written slots).
  virtual void apply(const WriteLog& log) = 0;
  /// Sets the step's batch and plan (null for a stage without plan); returns host ms.
  virtual double set_batch(const PagedLayout& layout, const Plan* plan) = 0;
  /// Runs the stage on every layer; returns each layer's kernel time in microseconds.
  virtual std::vector<double> run_layers() = 0;
  /// Checks the last run's layer 0 against the oracle.
  virtual CheckResult check_layer0() = 0;
};

/// check_steps value meaning "check every non-empty step".
inline constexpr int64_t kCheckAllSteps = std::numeric_limits<int64_t>::max();

/// Knobs of the loop.
struct ServeLoopOptions {
  Shape shape;                  ///< attention shape of one layer (its page size is the block size)
  int32_t capacity_blocks = 0;  ///< blocks of the pool (per layer: every layer has the same tables)
  int layers = 1;               ///< layers (memory in use is counted over all of them)
  bool prefix_caching = true;   ///< the block manager's prefix cache
  int max_running = 0;          ///< most running sequences; 0 = memory is the limit
  double step_seconds = 0.02;   ///< assumed decode step time: maps arrival seconds to steps
  int64_t max_steps = 0;        ///< stop after this many steps (idle ones included); 0 = until the trace is done
  int64_t check_steps = 1;      ///< check layer 0 on the first this many non-empty steps
  bool compare_scratch = false; ///< also plan each step from scratch; the plans must be equal
  int max_kv_tile = kDefaultMaxKvTile;  ///< planner's KV tile cap when the executor gives no options
};

/// What one step did and cost. Times that were not measured are NaN.
struct ServeStep {
  int64_t step = 0;             ///< step index, from 0 (StepEvents::step)
  int32_t running = 0;          ///< sequences in the batch after the step
  int32_t waiting = 0;          ///< sequences in the waiting queue after the step
  int32_t admitted = 0;         ///< sequences admitted (prefilled) this step, readmissions included
  int32_t finished = 0;         ///< sequences retired this step
  int32_t preempted = 0;        ///< sequences preempted by recompute this step
  int64_t decode_tokens = 0;    ///< tokens appended by decoding
  int64_t prefill_tokens = 0;   ///< prompt tokens written by admissions (cache hits excluded)
  int64_t written_tokens = 0;   ///< K/V slots the step wrote (WriteLog::writes)
  int32_t copied_blocks = 0;    ///< copy-on-write copies (WriteLog::copies)
  int32_t blocks_in_use = 0;    ///< blocks with reference count > 0 after the step (per layer)
  int64_t kv_bytes_in_use = 0;  ///< blocks in use x page x KV bytes per token x layers
  double sharing = 1.0;         ///< BlockStats::sharing(): tokens referenced per token stored
  int32_t packs = 0;            ///< packs of the step's plan
  double plan_ms = std::numeric_limits<double>::quiet_NaN();          ///< incremental update
  UpdatePath plan_path = UpdatePath::full;  ///< which way the update went (when plan_ms is measured)
  double validate_ms = std::numeric_limits<double>::quiet_NaN();      ///< validate_plan() of the step's plan
  double scratch_ms = std::numeric_limits<double>::quiet_NaN();       ///< make_plan() from scratch
  double set_batch_ms = std::numeric_limits<double>::quiet_NaN();     ///< executor's host time
  double kernel_us_layer = std::numeric_limits<double>::quiet_NaN();  ///< mean over layers
  double kernel_us_total = std::numeric_limits<double>::quiet_NaN();  ///< sum over layers
  bool checked = false;         ///< layer 0 was checked on this step (and passed)
};

/// The whole run.
struct ServeResult {
  std::vector<ServeStep> steps;  ///< one per step taken, in order (idle steps jumped over have none)
  int64_t idle_steps = 0;       ///< idle steps jumped over: nothing ran or waited, an arrival was ahead
  int64_t sequences = 0;        ///< samples of the trace (every one must finish)
  int64_t finished = 0;         ///< sequences finished
  int64_t preemptions = 0;      ///< preemptions by recompute, over all steps
  int64_t checked_steps = 0;    ///< steps whose layer 0 was checked
  bool trace_done = false;      ///< every request arrived and the scheduler is idle
  bool planned_with_executor = false;  ///< the plans used the executor's planner options
  PlannerOptions planner;       ///< the options every plan was made with
  std::string fault;            ///< first fault, "" if none: "step N: ..." (the loop stopped there)
};

/// Called after every step with the result so far (progress lines).
using ServeProgress = std::function<void(const ServeResult&)>;

/// Runs the loop over `trace` (see the file comment). `executor` may be null (no GPU: everything
/// but the attention runs). Throws Error(usage) on bad options, on a trace with a request that
/// cannot fit the pool alone (Trace::check_fits) or has more samples than max_running
/// (Trace::check_samples: it would wait forever) and on an arrival past the last step
/// (Trace::arrival_steps), before the first step.
ServeResult run_serve_loop(const Trace& trace, const ServeLoopOptions& options, StepExecutor* executor,
                           const ServeProgress& progress = {});

/// Medians and tails of a run's per-step numbers (steps with an empty batch left out).
struct ServeSummary {
  int64_t steps = 0;                ///< steps taken (empty-batch steps and idle steps jumped over included)
  int64_t idle_steps = 0;           ///< idle steps jumped over (ServeResult::idle_steps)
  int64_t batch_steps = 0;          ///< steps with a non-empty batch
  int32_t max_running = 0;          ///< largest ServeStep::running of any step
  int32_t peak_blocks = 0;          ///< most blocks in use after a step (per layer)
  int64_t peak_kv_bytes = 0;        ///< most KV bytes in use after a step (all layers)
  double mean_sharing = 1.0;        ///< over batch steps
  /// Median incremental plan time per batch step (ServeStep::plan_ms), in ms.
  double plan_ms_median = 0, plan_ms_p99 = 0;        ///< plan time at kServeTailQuantile (p99), in ms
  /// Median make_plan() time from scratch per batch step (ServeStep::scratch_ms), in ms; 0 without compare_scratch.
  double scratch_ms_median = 0, scratch_ms_p99 = 0;  ///< 0 without compare_scratch
  double validate_ms_median = 0;                     ///< the validator per step (not in the plan time)
  UpdatePathCounts plan_paths{};                     ///< planned steps by update path
  /// Median kernel time of one layer per batch step (ServeStep::kernel_us_layer), in us; 0 without an executor.
  double kernel_us_median = 0, kernel_us_p99 = 0;    ///< per layer; 0 without an executor
  double step_kernel_us_median = 0;                  ///< all layers
  double set_batch_ms_median = 0;                    ///< executor's host time per step; 0 without one
  /// Plan time per step as a % of one layer's kernel time (medians); 0 without kernels.
  double plan_percent_of_layer = 0;
  /// Scratch over incremental plan time (medians); 0 without compare_scratch.
  double speedup = 0;
};

/// Percentile of the per-step numbers reported next to the median.
inline constexpr double kServeTailQuantile = 0.99;

/// The summary of `result`.
ServeSummary summarize(const ServeResult& result);

}  // namespace patlab::serving
