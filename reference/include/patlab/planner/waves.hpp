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
#include <vector>

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

/// CTAs of one length: `count` CTAs that read `tokens` KV tokens each.
struct CtaGroup {
  int64_t tokens = 0;  ///< KV tokens each CTA reads
  int64_t count = 0;   ///< CTAs of that length
};

/// A longest-first list schedule of CTAs over CTA slots, and its time when a CTA alone goes faster.
struct LptSchedule {
  int64_t makespan_tokens = 0;  ///< the busiest slot's tokens (every CTA at one slot's share)
  int64_t last_start = 0;       ///< tokens into the schedule when the last CTA starts
  /// Time in units of one token at one slot's share of a saturated GPU (bandwidth / slots): all
  /// slots are busy until the last start; after it, the `a` CTAs still running each stream at
  /// min(rate_cap, ctas_per_sm / ceil(a / sms)) times that share: an SM's share of the bandwidth
  /// split among the CTAs of the busiest SM, and no more than one CTA can take alone.
  double time = 0;
};

/// Measured per-CTA rate cap of the pack kernel, over one slot's share of a saturated H200: 16 and
/// 8 requests of 32K tokens at 32/8 and 64/8 (128 and 64 CTAs of the 16x64 tile, at most one per
/// SM) streamed 22.4 GB/s per CTA, against 4178 GB/s / 396 slots = 10.6 GB/s
/// (docs/results/2026-12-02-h200-stage7-baseline). Not the HBM bounds it but the CTA itself: a
/// deeper K/V ring (more copies in flight) did not raise the rate (19 GB/s per CTA with three
/// stages, 128 CTAs of 16_8192), and Nsight Compute found the warps issuing, one instruction every
/// 4.4 cycles each with one warp per scheduler (the fp8 kernel; docs/results/2026-12-03-h200-pack-ring,
/// run 1).
inline constexpr double kCtaRateCap = 2.0;

/// Head dim up to which an fp8 CTA's rate cap is kCtaRateCap (cta_rate_cap()).
inline constexpr int kFp8RateCapHeadDim = 128;

/// The rate cap of a lone CTA at head dim `head_dim` with a KV cache of `kv_elem_bytes`-byte
/// elements: kCtaRateCap, except for fp8 past kFp8RateCapHeadDim, where it falls with d (never
/// below 1, a slot's share). An fp8 CTA converts every element it reads in its own warps, so its
/// work per token grows with d while its bytes per token stay half of fp16's. Measured on the H200
/// (docs/results/2026-12-03-h200-loader-checks, run 1): at d = 256, 16 requests of 8192 tokens
/// (Gemma-2-9B, 128 CTAs of the 16x64 tile, one per SM) streamed 32.6 GB/s per CTA with fp16 and
/// 15.3 GB/s with fp8: alone on its SM, an fp8 CTA took about the share of one of the 264 slots
/// that the three-stage fp8 ring gives (15.8 GB/s), so a cap of 1.0 there; at d = 128, 32
/// requests of 16384 tokens (256 CTAs on 396 slots) streamed 14.5 GB/s per fp8 CTA, 1.4 slot
/// shares, with two CTAs on most SMs.
constexpr double cta_rate_cap(int kv_elem_bytes, int head_dim) {
  if (kv_elem_bytes >= 2 || head_dim <= kFp8RateCapHeadDim) return kCtaRateCap;
  const double cap = kCtaRateCap * kFp8RateCapHeadDim / head_dim;
  return cap > 1.0 ? cap : 1.0;
}

/// The schedule of `groups`' CTAs started longest first on whichever of the sms x ctas_per_sm
/// slots frees first (the list schedule of wave_report(), counted by groups of equal CTAs: the
/// cost grows with the distinct lengths and finishing times, not with the CTAs), with a CTA
/// alone streaming at most `rate_cap` times a slot's share. `groups` is sorted in place. Throws
/// Error(usage) unless sms >= 1, ctas_per_sm >= 1 and rate_cap >= 1.
LptSchedule lpt_schedule(std::vector<CtaGroup>& groups, int64_t sms, int64_t ctas_per_sm, double rate_cap = kCtaRateCap);

/// The waves of `plan`'s CTAs (each pack runs one CTA per KV head of `shape`, reading its kv_len
/// tokens) on `sms` SMs holding `ctas_per_sm` CTAs each, with the CTAs started longest first (the
/// order stage 7 launches them in) on whichever slot frees first. Throws Error(usage) unless
/// sms >= 1 and ctas_per_sm >= 1.
WaveReport wave_report(const Plan& plan, const Shape& shape, int sms, int ctas_per_sm);

}  // namespace patlab
