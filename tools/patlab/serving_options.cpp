#include "serving_options.hpp"

#include <cmath>

#include "options.hpp"
#include "patlab/error.hpp"
#include "patlab/output_file.hpp"

namespace patlab::cli {

void check_step_ms(double step_ms) {
  require(std::isfinite(step_ms) && step_ms >= kMinStepMs && step_ms <= kMaxStepMs,
          "--step-ms must be a finite number in [" + number_text(kMinStepMs) + ", " + number_text(kMaxStepMs) +
              "] ms (got " + number_text(step_ms) + ")");
}

std::string step_ms_help() {
  return "Assumed decode step time in ms, in [" + number_text(kMinStepMs) + ", " + number_text(kMaxStepMs) +
         "] (maps arrival times to steps; idle steps before an arrival are jumped over, not replayed)";
}

void ServingOptions::add_to(CLI::App& cmd) {
  cmd.add_option("TRACE", trace,
                 "A trace file (docs/trace-format.md) or a generator spec gen:requests=N,rate=R,prompt=MEAN,"
                 "output=MEAN,sigma=S,max=T,system=LENxFRAC[+...],n=N,seed=S")
      ->required();
  std::string names;
  for (const auto& m : serving::model_presets()) names += (names.empty() ? "" : ", ") + m.name;
  cmd.add_option("--model", model, "Model preset: layers, heads, head dim, parameters (" + names + ")")
      ->capture_default_str();
  cmd.add_option("--capacity-gib", capacity_gib,
                 "GPU memory given to the KV cache, GiB (all layers), in (0, " + number_text(kMaxCapacityGib) + "]")
      ->capture_default_str();
  cmd.add_option("--page", page, "Tokens per KV block")->capture_default_str();
  cmd.add_option("--write-trace", write_trace, "Also write the trace (e.g. a generated one) to this JSON file")
      ->check(non_empty());
}

serving::Trace ServingOptions::load(const serving::TraceCheck& check) const {
  require(page >= 1 && page <= 1024, "--page must be in [1, 1024] (got " + std::to_string(page) + ")");
  preset();
  capacity_bytes();
  serving::Trace t = serving::resolve_trace(trace, check);
  if (!write_trace.empty()) {
    write_output_file(write_trace, "trace file", [&](std::ostream& out) { out << serving::trace_to_json(t); });
  }
  return t;
}

double ServingOptions::capacity_bytes() const {
  require(capacity_gib > 0 && capacity_gib <= kMaxCapacityGib,  // false for NaN too
          "--capacity-gib must be a finite number in (0, " + number_text(kMaxCapacityGib) + "] GiB (got " +
              number_text(capacity_gib) + ")");
  return capacity_gib * static_cast<double>(int64_t{1} << 30);
}

}  // namespace patlab::cli
