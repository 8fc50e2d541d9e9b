// Heterogeneous-length batches (patlab/model/hetero.hpp): a seed gives one batch, lengths stay in
// their clamp, the sharing fraction is exact, the draws follow the stated log-normal fit, F = 0
// shares nothing, and every bad knob is a one-line usage error.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <functional>
#include <set>
#include <string>
#include <vector>

#include "../catch.hpp"
#include "../test_util.hpp"
#include "patlab/error.hpp"
#include "patlab/model/hetero.hpp"
#include "patlab/model/kv_cache.hpp"
#include "patlab/model/workload.hpp"

using namespace patlab;

namespace {

/// Draws in the distribution test: enough for a quantile's log error of about 1-2 %.
constexpr int kDraws = 10000;
/// Largest relative gap allowed between an empirical quantile of kDraws and the fit's quantile.
/// The standard error of ln(quantile) is at most sigma * 0.0175 here (p10/p90, sigma <= 1.4:
/// 2.4 %), so 8 % is more than 3 standard errors; a median or sigma off by 10 % fails it.
constexpr double kQuantileTolerance = 0.08;

/// Relative slack of the closed-form identities of a fit (rounding of exp and log only).
constexpr double kIdentityTolerance = 1e-12;
/// Slack of a sigma quoted to three decimals.
constexpr double kQuotedSigmaTolerance = 5e-4;

/// True when a and b agree to `rel` of b (no Catch Approx: its name differs between Catch2 2 and 3).
bool close(double a, double b, double rel) { return std::fabs(a / b - 1.0) < rel; }

/// The nearest-rank quantile `p` of sorted `xs`.
double quantile(const std::vector<int64_t>& xs, double p) {
  const size_t i = std::min(xs.size() - 1, static_cast<size_t>(p * static_cast<double>(xs.size())));
  return static_cast<double>(xs[i]);
}

/// Requests whose path starts with the "sys" segment.
int sharing_requests(const TokenTree& t) {
  int n = 0;
  for (int r = 0; r < t.num_requests(); ++r) n += t.path(r).size() == 2;
  return n;
}

}  // namespace

TEST_CASE("hetero_batch: the same seed gives the same batch, another seed another") {
  const HeteroOptions o;  // 96 requests, 3 in 4 behind a 2048-token prompt, conv fit, [20, 12288]
  std::set<std::vector<int64_t>> distinct;
  for (uint64_t seed = 1; seed <= 20; ++seed) {
    CAPTURE(seed);
    const TokenTree a = hetero_batch(seed, o);
    const TokenTree b = hetero_batch(seed, o);
    distinct.insert(same_tree_signature(a, b));
    CHECK(a.description == b.description);
  }
  CHECK(distinct.size() == 20);
}

TEST_CASE("hetero_batch: lengths within the clamp, prompt shared by round(F * N) requests") {
  for (double f : {0.0, 0.01, 0.25, 0.5, 0.75, 0.999, 1.0}) {
    for (int n : {1, 7, 96, 333}) {
      HeteroOptions o;
      o.requests = n;
      o.shared = f;
      o.prefix = 2048;
      o.min_tokens = 300;
      o.max_tokens = 1500;  // inside the conv fit's body: both clamps are hit
      CAPTURE(f, n);
      const TokenTree t = hetero_batch(5, o);
      const int expected = static_cast<int>(std::lround(f * n));
      CHECK(hetero_shared_count(o) == expected);
      CHECK(t.num_requests() == n);
      CHECK(sharing_requests(t) == expected);
      CHECK(t.depth() == (expected > 0 ? 2 : 1));
      for (int r = 0; r < n; ++r) {
        const std::vector<int> p = t.path(r);
        const Segment& own = t.segments[static_cast<size_t>(p.back())];
        CHECK(own.name == "r" + std::to_string(r));
        CHECK(own.tokens >= o.min_tokens);
        CHECK(own.tokens <= o.max_tokens);
        if (p.size() == 2) CHECK(t.segments[static_cast<size_t>(p.front())].tokens == o.prefix);
      }
    }
  }
  SECTION("the lengths do not depend on F") {
    HeteroOptions a, b;
    a.shared = 0.0;
    b.shared = 1.0;
    const TokenTree ta = hetero_batch(11, a), tb = hetero_batch(11, b);
    for (int r = 0; r < a.requests; ++r)
      CHECK(ta.segments[static_cast<size_t>(ta.request_ends[r])].tokens ==
            tb.segments[static_cast<size_t>(tb.request_ends[r])].tokens);
  }
}

TEST_CASE("hetero_batch: F = 0 shares nothing, F > 0 shares exactly the prompt") {
  const Shape shape = shape_of(32, 8, 128, 16);
  HeteroOptions o;
  o.shared = 0.0;
  const PagedLayout none = build_layout(hetero_batch(3, o), shape, true, 3);
  CHECK(none.unique_tokens() == none.total_tokens());
  CHECK(none.unique_kv_bytes() == none.total_kv_bytes());

  o.shared = 0.75;
  o.prefix = 2048;  // whole pages: every shared token is in a shared block
  const TokenTree t = hetero_batch(3, o);
  const PagedLayout some = build_layout(t, shape, true, 3);
  const int count = hetero_shared_count(o);
  REQUIRE(count == 72);
  CHECK(some.total_tokens() - some.unique_tokens() == int64_t{count - 1} * o.prefix);
}

TEST_CASE("draw_lengths: quantiles of 10,000 draws match the stated log-normal fit") {
  for (const LengthFit& fit : length_fits()) {
    CAPTURE(fit.name, fit.mu(), fit.sigma());
    // The fit keeps the trace's median and spreads its p10-p90 gap in log space.
    CHECK(close(std::exp(fit.mu()), fit.trace_p50, kIdentityTolerance));
    CHECK(close(fit.quantile(kZ90) / fit.quantile(-kZ90), fit.trace_p90 / fit.trace_p10, kIdentityTolerance));
    // Clamps far outside the fit's p10..p90, so the clamp cannot move those quantiles.
    std::vector<int64_t> xs = draw_lengths(2024, fit, kDraws, 1, kMaxRequestTokens);
    std::sort(xs.begin(), xs.end());
    for (double z : {-kZ90, 0.0, kZ90}) {
      const double p = z < 0 ? 0.1 : z > 0 ? 0.9 : 0.5;
      CAPTURE(p, quantile(xs, p), fit.quantile(z));
      CHECK(close(quantile(xs, p), fit.quantile(z), kQuantileTolerance));
    }
  }
  SECTION("the stated numbers") {  // docs/workload-format.md and hetero.hpp quote these
    const std::string conv_name = "conv", code_name = "code";  // named: no temporary beside the reference
    const LengthFit& conv = find_length_fit(conv_name);
    CHECK(std::fabs(conv.sigma() - 1.007) < kQuotedSigmaTolerance);
    CHECK(std::lround(conv.quantile(-kZ90)) == 281);
    CHECK(std::lround(conv.quantile(kZ90)) == 3708);
    const LengthFit& code = find_length_fit(code_name);
    CHECK(std::fabs(code.sigma() - 1.391) < kQuotedSigmaTolerance);
    CHECK(std::lround(code.quantile(-kZ90)) == 247);
    CHECK(std::lround(code.quantile(kZ90)) == 8732);
    CHECK(&find_length_fit(length_fits().front().name) == &conv);  // conv is the default
  }
}

TEST_CASE("hetero_batch: bad knobs are one-line usage errors") {
  auto bad = [](std::function<void(HeteroOptions&)> set, const char* needle) {
    HeteroOptions o;
    set(o);
    require_error([&] { hetero_batch(1, o); }, needle);
  };
  bad([](HeteroOptions& o) { o.requests = 0; }, "--hetero-requests must be in [1, 65536]");
  bad([](HeteroOptions& o) { o.requests = kMaxRequests + 1; }, "--hetero-requests must be in [1, 65536]");
  bad([](HeteroOptions& o) { o.shared = -0.01; }, "--hetero-shared must be a fraction in [0, 1]");
  bad([](HeteroOptions& o) { o.shared = 1.5; }, "--hetero-shared must be a fraction in [0, 1]");
  bad([](HeteroOptions& o) { o.shared = std::nan(""); }, "--hetero-shared must be a fraction in [0, 1]");
  bad([](HeteroOptions& o) { o.prefix = 0; }, "--hetero-prefix must be in [1, ");
  bad([](HeteroOptions& o) { o.min_tokens = 0; }, "--hetero-min must be in [1, ");
  bad([](HeteroOptions& o) { o.max_tokens = kMaxRequestTokens + 1; }, "--hetero-max must be in [1, ");
  bad([](HeteroOptions& o) { o.min_tokens = 500, o.max_tokens = 499; }, "--hetero-min (500) is larger than --hetero-max (499)");
  bad([](HeteroOptions& o) { o.prefix = kMaxRequestTokens, o.max_tokens = 1, o.min_tokens = 1; },
      "--hetero-prefix plus --hetero-max must be at most");
  bad([](HeteroOptions& o) { o.dist = "chat"; }, "unknown --hetero-dist 'chat' (known: conv, code)");
  // Past the batch limit: validate() names it.
  bad([](HeteroOptions& o) { o.requests = kMaxRequests, o.min_tokens = o.max_tokens = 1 << 13; }, "tokens in all (at most");
  require_error([] { draw_lengths(1, length_fits().front(), -1, 1, 2); }, "negative");
}

TEST_CASE("preset hetero96 is issue 16's batch") {
  const Preset p = find_preset("hetero96");
  const TokenTree t = preset_tree(p);
  CHECK(t.num_requests() == 96);
  CHECK(sharing_requests(t) == 72);
  CHECK(t.description.find("preset hetero96 (hetero conv, seed 1") == 0);
  const TokenTree again = hetero_batch(1, HeteroOptions{});
  REQUIRE(again.segments.size() == t.segments.size());
  for (size_t s = 0; s < t.segments.size(); ++s) CHECK(t.segments[s].tokens == again.segments[s].tokens);
}
