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

/// TRACE, --model, --capacity-gib, --page and --write-trace.
struct ServingOptions {
  std::string trace;
  std::string model = serving::model_presets().front().name;
  double capacity_gib = kDefaultCapacityGib;
  int page = kDefaultServingPage;
  std::string write_trace;

  /// Registers the options on `cmd`.
  void add_to(CLI::App& cmd);
  /// The trace (file or gen: spec), written to --write-trace when given; Error(usage) on bad input.
  serving::Trace load() const;
  /// The model preset; Error(usage) on an unknown name.
  const serving::ModelPreset& preset() const { return serving::find_model(model); }
  /// KV bytes the capacity stands for; Error(usage) unless > 0.
  double capacity_bytes() const;
};

}  // namespace patlab::cli
