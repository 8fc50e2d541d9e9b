// Traces: the JSON format (shared segments, own random tokens, literal ids), its one-line errors,
// the round trip through trace_to_json, and the generator's distributions.
#include <cmath>
#include <string>
#include <vector>

#include "../catch.hpp"
#include "../test_util.hpp"
#include "close_to.hpp"
#include "patlab/serving/trace.hpp"

using namespace patlab;
using namespace patlab::serving;

namespace {
const char* kTrace = R"({
  "format": "patlab-trace-1", "seed": 7, "vocab": 1000,
  "shared": {"sys": 40, "tools": [5, 6, 7]},
  "requests": [
    {"arrival": 0.0, "prompt": ["sys", 10], "output": 5},
    {"arrival": 0.5, "prompt": ["sys", "tools", 3, [1, 2]], "output": 2, "n": 3},
    {"arrival": 0.5, "prompt": [[9, 9, 9]], "output": 1}
  ]})";

std::string with(const std::string& request) {
  return R"({"format": "patlab-trace-1", "shared": {"sys": 4}, "requests": [)" + request + "]}";
}
}  // namespace

TEST_CASE("a trace file expands shared segments, own tokens and literal ids", "[trace]") {
  const Trace t = parse_trace_json(kTrace, "t.json");
  REQUIRE(t.requests.size() == 3);
  CHECK(t.vocab == 1000);
  const auto& a = t.requests[0].prompt;
  const auto& b = t.requests[1].prompt;
  REQUIRE(a.size() == 50);
  REQUIRE(b.size() == 40 + 3 + 3 + 2);
  CHECK(std::equal(a.begin(), a.begin() + 40, b.begin()));  // the shared system prompt
  CHECK(std::vector<TokenId>(b.begin() + 40, b.begin() + 43) == std::vector<TokenId>{5, 6, 7});
  CHECK(std::vector<TokenId>(b.end() - 2, b.end()) == std::vector<TokenId>{1, 2});
  CHECK_FALSE(std::equal(a.begin() + 40, a.begin() + 43, b.begin() + 43));  // own tokens differ
  for (TokenId id : a) CHECK((id >= 0 && id < 1000));
  CHECK(t.requests[1].samples == 3);
  CHECK(t.requests[2].prompt == std::vector<TokenId>{9, 9, 9});
  CHECK(t.max_request_tokens() == 55);
  // Same file, same tokens; the JSON writer round-trips.
  CHECK(parse_trace_json(kTrace, "t.json").requests[0].prompt == a);
  const Trace back = parse_trace_json(trace_to_json(t), "back.json");
  REQUIRE(back.requests.size() == 3);
  for (size_t r = 0; r < 3; ++r) {
    CHECK(back.requests[r].prompt == t.requests[r].prompt);
    CHECK(back.requests[r].output_tokens == t.requests[r].output_tokens);
    CHECK(back.requests[r].samples == t.requests[r].samples);
    CHECK(close_to(back.requests[r].arrival, t.requests[r].arrival));
  }
}

TEST_CASE("malformed traces name the problem in one line", "[trace]") {
  require_error([] { parse_trace_json(with(R"({"arrival": 0, "prompt": ["sys"], "output": -3})"), "x"); },
                "x: request 0: output must be in [1,");
  require_error([] { parse_trace_json(with(R"({"arrival": 0, "prompt": [-5], "output": 3})"), "x"); },
                "request 0 prompt[0] (own random tokens) must be in [1,");
  require_error([] { parse_trace_json(with(R"({"arrival": 0, "prompt": ["nope"], "output": 3})"), "x"); },
                "unknown shared segment \"nope\"");
  require_error([] { parse_trace_json(with(R"({"arrival": 0, "prompt": ["sys"], "output": 3, "n": 0})"), "x"); },
                "request 0: n must be in [1, 256]");
  require_error([] { parse_trace_json(with(R"({"arrival": -1, "prompt": ["sys"], "output": 3})"), "x"); },
                "arrival must be >= 0");
  require_error([] { parse_trace_json(with(R"({"arrival": 0, "prompt": [], "output": 3})"), "x"); },
                "\"prompt\" must be a non-empty array");
  require_error([] { parse_trace_json(with(R"({"arrival": 0, "prompt": ["sys"], "outptu": 3})"), "x"); },
                "unknown key \"outptu\"");
  require_error([] { parse_trace_json(with(R"({"arrival": 1, "prompt": ["sys"], "output": 3}, {"arrival": 0, "prompt": ["sys"], "output": 3})"), "x"); },
                "request 1 arrives before request 0");
  require_error([] { parse_trace_json(with(R"({"arrival": 0, "prompt": [[1, 99999]], "output": 3})"), "x"); },
                "prompt[0][1] must be in [0, 31999]");
  require_error([] { parse_trace_json(R"({"requests": []})", "x"); }, "\"format\" must be \"patlab-trace-1\"");
  require_error([] { parse_trace_json("{", "x"); }, "x:");
  require_error([] { load_trace_file("/nonexistent/trace.json"); }, "cannot read trace file", ErrorKind::io);
  // Refused by kind before reading: reading /dev/zero never ended.
  require_error([] { load_trace_file("/dev/zero"); }, "trace file '/dev/zero' is not a regular file");
  require_error([] { load_trace_file("/tmp"); }, "(it is a directory)", ErrorKind::io);
}

TEST_CASE("impossible traces: a request longer than the cache, a cache smaller than a block", "[trace]") {
  const Trace t = parse_trace_json(kTrace, "t.json");
  t.check_fits(64, 16);
  require_error([&] { t.check_fits(50, 16); }, "request 0 needs 55 KV tokens (prompt + output), the cache holds 48");
  require_error([&] { t.check_fits(8, 16); }, "too small for one block of 16 tokens");
  CHECK_NOTHROW(t.check_samples(0));
  require_error([&] { t.check_samples(1); }, "request 1 has n = 3 samples, more than --max-running 1");
}

TEST_CASE("a trace is checked before its prompts are expanded: lengths from the parts, limits, the caller's check",
          "[trace]") {
  // The caller's check sees the lengths the expanded prompts will have, and no token id yet.
  std::vector<int64_t> seen;
  const Trace t = parse_trace_json(kTrace, "t.json", [&](const Trace& u) {
    seen = u.prompt_lengths();
    for (const TraceRequest& r : u.requests) CHECK(r.prompt.empty());
    u.check_fits(64, 16);
  });
  std::vector<int64_t> expanded;
  for (const TraceRequest& r : t.requests) expanded.push_back(static_cast<int64_t>(r.prompt.size()));
  CHECK(seen == expanded);
  CHECK(t.prompt_lengths() == expanded);
  // What it refuses stops the parse (and the generator) before the token ids take memory: 100
  // prompts of 2^24 - 1 shared tokens were 6.7 GB before the cache check refused the first.
  require_error([] { parse_trace_json(kTrace, "t.json", [](const Trace& u) { u.check_fits(48, 16); }); },
                "t.json: request 0 needs 55 KV tokens");
  const auto refuse = [](const Trace& u) { u.check_fits(65536, 16); };
  require_error([&] { resolve_trace("gen:requests=100,system=16777215x1,max=2,rate=0", refuse); },
                "request 0 needs 16777217 KV tokens (prompt + output), the cache holds 65536");
  // The trace's own limits, from the parts too: one prompt, and all of them together.
  require_error([] { resolve_trace("gen:requests=2,system=16777216x1,max=16,rate=0"); }, "request 0: prompt of");
  require_error([] { resolve_trace("gen:requests=100,system=16777215x1,max=2,rate=0"); },
                "the prompts of requests 0-16 hold 285212672 tokens: past the 268435456 (2^28) a trace may hold in all");
}

TEST_CASE("the generator: seeded, Poisson arrivals, lognormal lengths, shared system prompts", "[trace]") {
  TraceGenOptions o;
  o.requests = 20000;
  o.rate = 5.0;
  o.max_tokens = int64_t{1} << 20;  // no clipping, so the means can be checked
  o.system_lengths = {300, 100};
  o.system_fractions = {0.5, 0.25};
  o.seed = 3;
  const Trace t = generate_trace(o);
  REQUIRE(t.requests.size() == 20000);
  double own = 0, out = 0;
  int64_t with_sys0 = 0, with_sys1 = 0;
  for (const TraceRequest& r : t.requests) {
    const PromptPart& last = r.parts.back();
    own += static_cast<double>(last.random);
    out += r.output_tokens;
    with_sys0 += r.parts.front().shared == "system0";
    with_sys1 += r.parts.front().shared == "system1";
  }
  // Means within 5% (the standard error of a lognormal mean with sigma 1 over 20000 draws is ~1%).
  CHECK(close_to(own / 20000, o.prompt_mean, 0.05));
  CHECK(close_to(out / 20000, o.output_mean, 0.05));
  CHECK(close_to(t.requests.back().arrival / 20000, 1 / o.rate, 0.05));
  CHECK(close_to(static_cast<double>(with_sys0) / 20000, 0.5, 0.05));
  CHECK(close_to(static_cast<double>(with_sys1) / 20000, 0.25, 0.05));
  // Determinism and the seed's effect.
  TraceGenOptions small = o;
  small.requests = 50;
  CHECK(generate_trace(small).requests[7].prompt == generate_trace(small).requests[7].prompt);
  small.seed = 4;
  CHECK(generate_trace(small).requests[7].prompt != t.requests[7].prompt);
  // Clipping keeps own prompt + output within max.
  small.max_tokens = 64;
  for (const TraceRequest& r : generate_trace(small).requests) CHECK(r.parts.back().random + r.output_tokens <= 64);
}

TEST_CASE("generator specs: keys and their errors", "[trace]") {
  const TraceGenOptions o = parse_trace_gen("gen:requests=12,rate=0,system=512x0.5+64x0.1,n=4,seed=9");
  CHECK(o.requests == 12);
  CHECK(o.rate == 0);
  CHECK(o.system_lengths == std::vector<int64_t>{512, 64});
  CHECK(o.samples == 4);
  const Trace t = resolve_trace("gen:requests=12,rate=0,n=4");
  CHECK(t.requests.back().arrival == 0);
  CHECK(t.requests[0].samples == 4);
  require_error([] { parse_trace_gen("gen:requests=-1"); }, "requests must be an integer in [1,");
  require_error([] { parse_trace_gen("gen:frob=1"); }, "unknown key frob");
  require_error([] { parse_trace_gen("gen:system=512"); }, "LENxFRACTION");
  require_error([] { parse_trace_gen("gen:n=1000"); }, "n must be an integer in [1, 256]");
  // Every key at most once, and no empty item: a stray comma or + is refused, not skipped.
  require_error([] { parse_trace_gen("gen:requests=4,requests=5"); }, "requests is given twice");
  require_error([] { parse_trace_gen("gen:requests=4,"); }, "empty item (a stray comma)");
  require_error([] { parse_trace_gen("gen:,requests=4"); }, "empty item (a stray comma)");
  require_error([] { parse_trace_gen("gen:requests=4,,n=2"); }, "empty item (a stray comma)");
  require_error([] { parse_trace_gen("gen:system=100x0.5+"); }, "empty item (a stray +)");
  require_error([] { parse_trace_gen("gen:system=+100x0.5"); }, "empty item (a stray +)");
  CHECK(parse_trace_gen("gen:").requests == TraceGenOptions{}.requests);  // every default
  require_error([] { generate_trace(parse_trace_gen("gen:system=10x0.7+10x0.7")); }, "sum to more than 1");
  require_error([] { generate_trace(parse_trace_gen("gen:rate=-2")); }, "rate must be >= 0");
}
