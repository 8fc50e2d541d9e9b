// Options shared by the serving commands (memsim, layerkv): the trace, the model and the KV
// capacity it is given.
#pragma once

#include <CLI/CLI.hpp>
#include <cstdint>
#include <string>

#include "patlab/serving/model.hpp"
#include "patlab/serving/trace.hpp"

namespace patlab::cli {

/// Default GPU memory given to the KV cache, GiB (a choice that makes memory the limit).
inline constexpr double kDefaultCapacityGib = 8.0;
/// Default tokens per KV block (vLLM's default block size).
inline constexpr int kDefaultServingPage = 16;
/// Largest --capacity-gib: 1 PiB (2^20 GiB), far above any GPU's memory and small enough that the
/// token and block counts made from it (bytes / bytes per token) stay exact in 64-bit integers.
inline constexpr double kMaxCapacityGib = 1 << 20;

/// Shortest --step-ms of memsim and serve: 1 us, so that arrivals of up to 285 years map to steps
/// within Trace::arrival_steps()'s 2^53.
inline constexpr double kMinStepMs = 1e-3;
/// Longest --step-ms: one minute, far above any decode step.
inline constexpr double kMaxStepMs = 60e3;
/// Throws Error(usage) unless `step_ms` (--step-ms) is a finite number in [kMinStepMs, kMaxStepMs].
void check_step_ms(double step_ms);
/// The help text of --step-ms, its range included.
std::string step_ms_help();

/// TRACE, --model, --capacity-gib, --page and --write-trace.
struct ServingOptions {
  std::string trace;
  std::string model = serving::model_presets().front().name;
  double capacity_gib = kDefaultCapacityGib;
  int page = kDefaultServingPage;
  std::string write_trace;

  /// Registers the options on `cmd`.
  void add_to(CLI::App& cmd);
  /// The trace (file or gen: spec), written to --write-trace when given; Error(usage) on bad
  /// input and on what `check` refuses, which sees the trace before its prompts are expanded (a
  /// request too long for the cache is refused before the token ids take memory).
  serving::Trace load(const serving::TraceCheck& check = {}) const;
  /// The model preset; Error(usage) on an unknown name.
  const serving::ModelPreset& preset() const { return serving::find_model(model); }
  /// KV bytes the capacity stands for; Error(usage) unless --capacity-gib is a finite number in
  /// (0, kMaxCapacityGib].
  double capacity_bytes() const;
};

}  // namespace patlab::cli
