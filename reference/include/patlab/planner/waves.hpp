/// @file waves.hpp
/// @brief How a plan's CTAs fill the GPU: waves, the last wave's fill, and a list schedule of the
/// CTAs over the CTA slots (SMs x resident CTAs per SM). The numbers a KV split that counts waves
/// has to get right (tutorial chapter 16, "Counting waves").
///
/// The model counts KV tokens only: a CTA's time is taken as proportional to the tokens it
/// reads (decode attention is memory-bound), with no fixed cost per CTA and no merge. The slots
/// are the SM count times the CTAs one SM holds at once of the plan's tile instance: on the GPU
/// the occupancy calculator says it; here it is a parameter.
#pragma once

#include <cstdint>

#include "patlab/model/workload.hpp"
#include "patlab/planner/plan.hpp"

namespace patlab {

/// A plan's CTAs against the GPU's CTA slots.
struct WaveReport {
  int64_t ctas = 0;             ///< packs x KV heads
  int64_t slots = 0;            ///< SMs x resident CTAs per SM
  int64_t waves = 0;            ///< ceil(ctas / slots): rounds of launches if every CTA took as long
  double last_wave_fill = 0;    ///< CTAs in the last of those waves / slots (1 = full)
  int64_t makespan_tokens = 0;  ///< longest-first list schedule over the slots: tokens of the busiest slot
  int64_t balanced_tokens = 0;  ///< all CTAs' tokens / slots, rounded up: no schedule ends earlier
  /// balanced / makespan: 1 when the schedule ends as early as any could.
  double balance() const {
    return makespan_tokens > 0 ? static_cast<double>(balanced_tokens) / static_cast<double>(makespan_tokens) : 1.0;
  }
};

/// The waves of `plan`'s CTAs (each pack runs one CTA per KV head of `shape`, reading its kv_len
/// tokens) on `sms` SMs holding `ctas_per_sm` CTAs each, with the CTAs started longest first (the
/// order stage 7 launches them in) on whichever slot frees first. Throws Error(usage) unless
/// sms >= 1 and ctas_per_sm >= 1.
WaveReport wave_report(const Plan& plan, const Shape& shape, int sms, int ctas_per_sm);

}  // namespace patlab
