#include "patlab/model/hetero.hpp"

#include <algorithm>
#include <cmath>
#include <random>

#include "patlab/error.hpp"

namespace patlab {

namespace {

/// 2^-53: the spacing of the doubles in [0.5, 1), and the step of uniform01().
constexpr double kUnitStep = 1.0 / 9007199254740992.0;
constexpr double kTwoPi = 6.283185307179586;

/// A uniform double in (0, 1) from the top 53 bits of one draw (never 0, so its log is finite).
double uniform01(std::mt19937_64& rng) { return (static_cast<double>(rng() >> 11) + 0.5) * kUnitStep; }

/// One standard normal deviate (Box-Muller, cosine branch).
double standard_normal(std::mt19937_64& rng) {
  const double u1 = uniform01(rng);
  const double u2 = uniform01(rng);
  return std::sqrt(-2.0 * std::log(u1)) * std::cos(kTwoPi * u2);
}

void check_clamp(int64_t lo, int64_t hi) {
  require(lo >= 1 && lo <= kMaxRequestTokens,
          "hetero batch: --hetero-min must be in [1, " + std::to_string(kMaxRequestTokens) + "]");
  require(hi >= 1 && hi <= kMaxRequestTokens,
          "hetero batch: --hetero-max must be in [1, " + std::to_string(kMaxRequestTokens) + "]");
  require(lo <= hi, "hetero batch: --hetero-min (" + std::to_string(lo) + ") is larger than --hetero-max (" +
                        std::to_string(hi) + ")");
}

void check_options(const HeteroOptions& o) {
  require(o.requests >= 1 && o.requests <= kMaxRequests,
          "hetero batch: --hetero-requests must be in [1, " + std::to_string(kMaxRequests) + "]");
  require(std::isfinite(o.shared) && o.shared >= 0.0 && o.shared <= 1.0,
          "hetero batch: --hetero-shared must be a fraction in [0, 1]");
  require(o.prefix >= 1 && o.prefix <= kMaxRequestTokens,
          "hetero batch: --hetero-prefix must be in [1, " + std::to_string(kMaxRequestTokens) + "]");
  check_clamp(o.min_tokens, o.max_tokens);
  require(o.max_tokens + o.prefix <= kMaxRequestTokens,
          "hetero batch: --hetero-prefix plus --hetero-max must be at most " + std::to_string(kMaxRequestTokens) +
              " tokens (the longest request)");
  find_length_fit(o.dist);
}

/// The requests behind the prompt: the first `count` of a seeded shuffle of 0..n-1, as flags.
std::vector<bool> pick_sharing(std::mt19937_64& rng, int n, int count) {
  std::vector<int> order(static_cast<size_t>(n));
  for (int r = 0; r < n; ++r) order[static_cast<size_t>(r)] = r;
  // Fisher-Yates on raw draws (std::shuffle's use of the engine is not specified).
  for (int i = n - 1; i > 0; --i) std::swap(order[static_cast<size_t>(i)], order[rng() % static_cast<uint64_t>(i + 1)]);
  std::vector<bool> sharing(static_cast<size_t>(n), false);
  for (int i = 0; i < count; ++i) sharing[static_cast<size_t>(order[static_cast<size_t>(i)])] = true;
  return sharing;
}

std::string fraction_text(int count, int n) {
  return std::to_string(count) + " of " + std::to_string(n);
}

}  // namespace

double LengthFit::mu() const { return std::log(trace_p50); }

double LengthFit::sigma() const { return (std::log(trace_p90) - std::log(trace_p10)) / (2.0 * kZ90); }

double LengthFit::quantile(double z) const { return std::exp(mu() + sigma() * z); }

const std::vector<LengthFit>& length_fits() {
  static const std::vector<LengthFit> all = {
      {"conv", "Azure LLM inference trace 2023, AzureLLMInferenceTrace_conv.csv, 19366 requests", 207, 1020, 2735},
      {"code", "Azure LLM inference trace 2023, AzureLLMInferenceTrace_code.csv, 8819 requests", 147, 1469, 5194},
  };
  return all;
}

const LengthFit& find_length_fit(const std::string& name) {
  std::string known;
  for (const LengthFit& f : length_fits()) {
    if (name == f.name) return f;
    known += (known.empty() ? "" : ", ") + std::string(f.name);
  }
  throw Error(ErrorKind::usage, "hetero batch: unknown --hetero-dist '" + name + "' (known: " + known + ")");
}

std::vector<int64_t> draw_lengths(uint64_t seed, const LengthFit& fit, int n, int64_t lo, int64_t hi) {
  require(n >= 0, "hetero batch: a negative number of lengths");
  check_clamp(lo, hi);
  std::mt19937_64 rng(seed);
  std::vector<int64_t> out(static_cast<size_t>(n));
  for (int64_t& len : out) {
    const double x = std::round(fit.quantile(standard_normal(rng)));
    // Clamp as a double first: a far tail draw may not fit in int64.
    len = static_cast<int64_t>(std::clamp(x, static_cast<double>(lo), static_cast<double>(hi)));
  }
  return out;
}

int hetero_shared_count(const HeteroOptions& o) {
  return static_cast<int>(std::lround(o.shared * static_cast<double>(o.requests)));
}

TokenTree hetero_batch(uint64_t seed, const HeteroOptions& o) {
  check_options(o);
  const LengthFit& fit = find_length_fit(o.dist);
  const int n = o.requests;
  const int count = hetero_shared_count(o);
  const std::vector<int64_t> own = draw_lengths(seed, fit, n, o.min_tokens, o.max_tokens);
  // A second stream for the pick, so the lengths do not depend on F.
  std::mt19937_64 pick_rng(seed ^ 0x9e3779b97f4a7c15ULL);
  const std::vector<bool> sharing = pick_sharing(pick_rng, n, count);
  TokenTree tree;
  tree.description = std::string("hetero ") + fit.name + ", seed " + std::to_string(seed) + ", " +
                     std::to_string(n) + " requests of " + std::to_string(o.min_tokens) + "-" +
                     std::to_string(o.max_tokens) + " own tokens, " +
                     (count > 0 ? fraction_text(count, n) + " share a " + std::to_string(o.prefix) + "-token prompt"
                                : std::string("no sharing"));
  int sys = -1;
  if (count > 0) {
    tree.segments.push_back(Segment{"sys", o.prefix, -1});
    sys = 0;
  }
  for (int r = 0; r < n; ++r) {
    const size_t i = static_cast<size_t>(r);
    tree.segments.push_back(Segment{"r" + std::to_string(r), own[i], sharing[i] ? sys : -1});
    tree.request_ends.push_back(static_cast<int>(tree.segments.size()) - 1);
  }
  tree.validate();
  return tree;
}

}  // namespace patlab
