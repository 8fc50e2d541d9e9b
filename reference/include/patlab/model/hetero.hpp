/// @file hetero.hpp
/// @brief Heterogeneous-length batches: N requests whose own context lengths are drawn from a
/// log-normal fitted to a public production trace, a fraction of them behind one shared system
/// prompt (patlab issues 11 and 16).
///
/// **Source.** The Azure LLM inference trace 2023 (github.com/Azure/AzurePublicDataset,
/// `data/AzureLLMInferenceTrace_conv.csv` and `data/AzureLLMInferenceTrace_code.csv`, commit
/// b469a11; the trace of the Splitwise paper, ISCA 2024): one row per request of two Azure
/// services on 2023-11-16, with its `ContextTokens` (prompt) and `GeneratedTokens`. The
/// percentiles below are computed from the `ContextTokens` column of those files (nearest rank):
///
/// | trace | requests | p10 | p25 | p50 | p75 | p90 | p99 | max |
/// | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |
/// | conv (conversation) | 19366 | 207 | 396 | 1020 | 1189 | 2735 | 4142 | 14050 |
/// | code (coding) | 8819 | 147 | 578 | 1469 | 2745 | 5194 | 7436 | 7437 |
///
/// **Fit.** A log-normal whose median is the trace's median and whose sigma is the trace's
/// p10-p90 spread in log space, sigma = (ln p90 - ln p10) / (2 * 1.2816): conv median 1020,
/// sigma 1.007; code median 1469, sigma 1.391. Draws are rounded and clamped to [min, max]
/// (defaults 20 and 12288, issue 16's "20 to 12K tokens"). The traces are not log-normal (conv
/// has clusters near 200, 1000-1300 and 4080 tokens), so the fit keeps the centre and the
/// spread, not the shape: its p10/p90 are 281/3708 (conv) and 247/8732 (code) where the traces
/// have 207/2735 and 147/5194. docs/workload-format.md gives the same numbers.
///
/// **Draws.** Normal deviates come from Box-Muller on the raw 64-bit output of std::mt19937_64
/// (fully specified by the standard), not from std::normal_distribution (whose output differs
/// between standard libraries), so a seed gives the same batch with libstdc++ and libc++.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "patlab/model/workload.hpp"

namespace patlab {

/// A log-normal fit of a trace's context lengths, from three of the trace's percentiles.
struct LengthFit {
  const char* name;    ///< CLI name, e.g. "conv"
  const char* source;  ///< the trace file the numbers come from
  double trace_p10;    ///< the trace's 10th percentile of context tokens
  double trace_p50;    ///< the trace's median
  double trace_p90;    ///< the trace's 90th percentile

  /// ln of the fit's median (the trace's median).
  double mu() const;
  /// The fit's standard deviation of ln(tokens): the trace's p10-p90 spread in log space.
  double sigma() const;
  /// The fit's quantile at standard normal deviate `z` (before rounding and clamping).
  double quantile(double z) const;
};

/// The fits patlab knows, the first being the default ("conv", then "code").
const std::vector<LengthFit>& length_fits();
/// The fit called `name`; throws Error(usage) listing the known names.
const LengthFit& find_length_fit(const std::string& name);

/// The standard normal deviate of the 90th percentile (the 10th is its negative).
inline constexpr double kZ90 = 1.2815515655446004;
/// Default clamp of the drawn lengths (issue 16: "lengths from 20 to 12K tokens").
inline constexpr int kDefaultHeteroMin = 20;
/// Default upper clamp, 12K tokens.
inline constexpr int kDefaultHeteroMax = 12288;
/// Default system prompt length: a choice (the traces do not record prompt structure).
inline constexpr int kDefaultHeteroPrefix = 2048;
/// Default batch size (issue 16's example batch).
inline constexpr int kDefaultHeteroRequests = 96;
/// Default fraction of requests behind the shared prompt (issue 16: "3 in 4").
inline constexpr double kDefaultHeteroShared = 0.75;

/// `n` lengths drawn from `fit`, rounded and clamped to [lo, hi], fully determined by `seed`.
/// Throws Error(usage) unless 1 <= lo <= hi <= kMaxRequestTokens and n >= 0.
std::vector<int64_t> draw_lengths(uint64_t seed, const LengthFit& fit, int n, int64_t lo, int64_t hi);

/// Knobs of hetero_batch (the CLI's --hetero-* options).
struct HeteroOptions {
  int requests = kDefaultHeteroRequests;  ///< N, requests in the batch
  double shared = kDefaultHeteroShared;   ///< fraction F of the requests behind the prompt, in [0, 1]
  int64_t prefix = kDefaultHeteroPrefix;  ///< P, system prompt tokens (unused when no request shares)
  int64_t min_tokens = kDefaultHeteroMin; ///< lower clamp of a request's own tokens
  int64_t max_tokens = kDefaultHeteroMax; ///< upper clamp of a request's own tokens
  std::string dist = "conv";              ///< name of the LengthFit
};

/// Requests behind the shared prompt: round(F * N), halves away from zero.
int hetero_shared_count(const HeteroOptions& options);

/// A heterogeneous batch: request r owns a segment "r<r>" of a length drawn from the fit (its
/// own tokens, after the prompt if it has one); round(F * N) requests, picked by a seeded
/// shuffle, sit under one root segment "sys" of P tokens, the others are roots of their own.
/// With F = 0 (or round(F * N) = 0) there is no "sys" segment and nothing is shared. Fully
/// determined by `seed`. Throws Error(usage) naming the bad knob (--hetero-requests,
/// --hetero-shared, --hetero-prefix, --hetero-min, --hetero-max, --hetero-dist) before drawing.
TokenTree hetero_batch(uint64_t seed, const HeteroOptions& options);

}  // namespace patlab
