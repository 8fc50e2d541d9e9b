#include "patlab/serving/trace.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <map>
#include <random>
#include <set>

#include "patlab/error.hpp"
#include "patlab/input_file.hpp"
#include "patlab/report/json.hpp"

namespace patlab::serving {

namespace {

/// Seed streams of the random token ids: one per shared segment, one per request.
constexpr uint32_t kSharedStream = 11, kOwnStream = 12, kArrivalStream = 13, kLengthStream = 14, kSystemStream = 15;

std::mt19937_64 stream(uint64_t seed, uint32_t kind, uint64_t index) {
  std::seed_seq seq{static_cast<uint32_t>(seed), static_cast<uint32_t>(seed >> 32), kind,
                    static_cast<uint32_t>(index), static_cast<uint32_t>(index >> 32)};
  return std::mt19937_64(seq);
}

std::vector<TokenId> random_tokens(std::mt19937_64& rng, int64_t n, int vocab) {
  std::uniform_int_distribution<TokenId> draw(0, vocab - 1);
  std::vector<TokenId> out(static_cast<size_t>(n));
  for (TokenId& t : out) t = draw(rng);
  return out;
}

/// A whole number in [lo, hi] or a one-line error naming `what`.
int64_t integer(const json::Value& v, const std::string& what, int64_t lo, int64_t hi) {
  require(v.is_number() && std::floor(v.num) == v.num, what + " must be an integer");
  require(v.num >= static_cast<double>(lo) && v.num <= static_cast<double>(hi),
          what + " must be in [" + std::to_string(lo) + ", " + std::to_string(hi) + "] (got " +
              std::to_string(static_cast<int64_t>(v.num)) + ")");
  return static_cast<int64_t>(v.num);
}

std::vector<TokenId> token_ids(const json::Value& v, const std::string& what, int vocab) {
  require(v.is_array() && !v.arr.empty(), what + " must be a non-empty array of token ids");
  std::vector<TokenId> ids;
  for (size_t i = 0; i < v.arr.size(); ++i)
    ids.push_back(static_cast<TokenId>(integer(v.arr[i], what + "[" + std::to_string(i) + "]", 0, vocab - 1)));
  return ids;
}

/// Refuses a trace whose prompts would expand too long: a request past kMaxTraceTokens, or all
/// of them together past kMaxTraceTotalTokens. Reads the lengths from the parts, before a token
/// id is drawn or copied.
void check_lengths(const Trace& t) {
  const std::vector<int64_t> lengths = t.prompt_lengths();
  int64_t total = 0;
  for (size_t r = 0; r < lengths.size(); ++r) {
    require(lengths[r] <= kMaxTraceTokens, "request " + std::to_string(r) + ": prompt of " +
                                               std::to_string(lengths[r]) + " tokens is too long (max " +
                                               std::to_string(kMaxTraceTokens) + ")");
    total += lengths[r];
    require(total <= kMaxTraceTotalTokens,
            "the prompts of requests 0-" + std::to_string(r) + " hold " + std::to_string(total) + " tokens: past the " +
                std::to_string(kMaxTraceTotalTokens) + " (2^28) a trace may hold in all");
  }
}

/// Fills every request's prompt from its parts and the shared segments' ids (check_lengths() first).
void expand(Trace& t) {
  std::map<std::string, const SharedSegment*> by_name;
  for (size_t s = 0; s < t.shared.size(); ++s) {
    SharedSegment& seg = t.shared[s];
    if (seg.ids.empty()) {
      auto rng = stream(t.seed, kSharedStream, s);
      seg.ids = random_tokens(rng, seg.tokens, t.vocab);
    }
    seg.tokens = static_cast<int64_t>(seg.ids.size());
    by_name[seg.name] = &seg;
  }
  for (size_t r = 0; r < t.requests.size(); ++r) {
    TraceRequest& req = t.requests[r];
    auto rng = stream(t.seed, kOwnStream, r);
    req.prompt.clear();
    for (const PromptPart& p : req.parts) {
      std::vector<TokenId> add = !p.shared.empty() ? by_name.at(p.shared)->ids
                                 : p.random > 0    ? random_tokens(rng, p.random, t.vocab)
                                                   : p.ids;
      req.prompt.insert(req.prompt.end(), add.begin(), add.end());
    }
  }
}

PromptPart parse_part(const json::Value& v, const std::string& what, const std::map<std::string, int64_t>& shared,
                      int vocab) {
  PromptPart p;
  if (v.is_string()) {
    require(shared.count(v.str) != 0, what + ": unknown shared segment \"" + v.str + "\"");
    p.shared = v.str;
  } else if (v.is_number()) {
    p.random = integer(v, what + " (own random tokens)", 1, kMaxTraceTokens);
  } else {
    p.ids = token_ids(v, what, vocab);
  }
  return p;
}

TraceRequest parse_request(const json::Value& v, size_t index, const std::map<std::string, int64_t>& shared,
                           int vocab) {
  const std::string what = "request " + std::to_string(index);
  require(v.is_object(), what + " must be an object");
  for (const auto& kv : v.obj)
    require(kv.first == "arrival" || kv.first == "prompt" || kv.first == "output" || kv.first == "n",
            what + ": unknown key \"" + kv.first + "\" (arrival, prompt, output, n)");
  TraceRequest r;
  const json::Value* arrival = v.find("arrival");
  require(arrival && arrival->is_number(), what + ": \"arrival\" (seconds) is required");
  require(arrival->num >= 0 && std::isfinite(arrival->num), what + ": arrival must be >= 0 seconds");
  r.arrival = arrival->num;
  const json::Value* prompt = v.find("prompt");
  require(prompt && prompt->is_array() && !prompt->arr.empty(), what + ": \"prompt\" must be a non-empty array of parts");
  for (size_t i = 0; i < prompt->arr.size(); ++i)
    r.parts.push_back(parse_part(prompt->arr[i], what + " prompt[" + std::to_string(i) + "]", shared, vocab));
  const json::Value* output = v.find("output");
  require(output != nullptr, what + ": \"output\" (tokens to generate) is required");
  r.output_tokens = static_cast<int32_t>(integer(*output, what + ": output", 1, kMaxTraceTokens));
  if (const json::Value* n = v.find("n")) r.samples = static_cast<int32_t>(integer(*n, what + ": n", 1, kMaxSamples));
  return r;
}

}  // namespace

std::vector<int64_t> Trace::prompt_lengths() const {
  std::map<std::string, int64_t> segment;
  for (const SharedSegment& seg : shared)
    segment[seg.name] = seg.ids.empty() ? seg.tokens : static_cast<int64_t>(seg.ids.size());
  std::vector<int64_t> lengths;
  lengths.reserve(requests.size());
  for (const TraceRequest& q : requests) {
    int64_t n = static_cast<int64_t>(q.prompt.size());
    if (n == 0)
      for (const PromptPart& p : q.parts)
        n += !p.shared.empty() ? segment.at(p.shared) : p.random > 0 ? p.random : static_cast<int64_t>(p.ids.size());
    lengths.push_back(n);
  }
  return lengths;
}

int64_t Trace::max_request_tokens() const {
  const std::vector<int64_t> lengths = prompt_lengths();
  int64_t m = 0;
  for (size_t r = 0; r < requests.size(); ++r) m = std::max(m, lengths[r] + requests[r].output_tokens);
  return m;
}

void Trace::check_samples(int max_running) const {
  for (size_t r = 0; r < requests.size(); ++r)
    require(max_running == 0 || requests[r].samples <= max_running,
            "request " + std::to_string(r) + " has n = " + std::to_string(requests[r].samples) +
                " samples, more than --max-running " + std::to_string(max_running) +
                " (they are admitted together: it would wait forever)");
}

std::vector<int64_t> Trace::arrival_steps(double step_seconds) const {
  require(step_seconds > 0 && std::isfinite(step_seconds), "the step time must be a finite number of seconds > 0");
  std::vector<int64_t> steps;
  steps.reserve(requests.size());
  for (size_t r = 0; r < requests.size(); ++r) {
    const double step = std::floor(requests[r].arrival / step_seconds);
    require(step >= 0 && step <= static_cast<double>(kMaxArrivalStep),
            "request " + std::to_string(r) + " arrives at " + number_text(requests[r].arrival) + " s, step " +
                number_text(step) + " at " + number_text(step_seconds * 1e3) +
                " ms per step: past the last step a simulation counts (2^53)");
    steps.push_back(static_cast<int64_t>(step));
  }
  return steps;
}

void Trace::check_fits(int64_t capacity_tokens, int page) const {
  require(capacity_tokens >= page, "KV capacity of " + std::to_string(capacity_tokens) +
                                       " tokens is too small for one block of " + std::to_string(page) + " tokens");
  const int64_t usable = capacity_tokens / page * page;
  const std::vector<int64_t> lengths = prompt_lengths();
  for (size_t r = 0; r < requests.size(); ++r) {
    const int64_t need = lengths[r] + requests[r].output_tokens;
    require(need <= usable, "request " + std::to_string(r) + " needs " + std::to_string(need) +
                                " KV tokens (prompt + output), the cache holds " + std::to_string(usable));
  }
}

std::vector<int64_t> Trace::check_step_simulation(int64_t capacity_tokens, int page, int max_running,
                                                  double step_seconds) const {
  check_fits(capacity_tokens, page);
  check_samples(max_running);
  return arrival_steps(step_seconds);
}

Trace parse_trace_json(const std::string& text, const std::string& origin, const TraceCheck& check) {
  const json::Value doc = json::parse(text, origin);
  try {
    require(doc.is_object(), "a trace is a JSON object");
    for (const auto& kv : doc.obj)
      require(kv.first == "format" || kv.first == "seed" || kv.first == "vocab" || kv.first == "shared" ||
                  kv.first == "requests" || kv.first == "description",
              "unknown key \"" + kv.first + "\" (format, description, seed, vocab, shared, requests)");
    const json::Value* format = doc.find("format");
    require(format && format->is_string() && format->str == "patlab-trace-1", "\"format\" must be \"patlab-trace-1\"");
    Trace t;
    t.description = origin;
    if (const json::Value* d = doc.find("description")) t.description = d->is_string() ? d->str : origin;
    if (const json::Value* s = doc.find("seed")) t.seed = static_cast<uint64_t>(integer(*s, "seed", 0, int64_t{1} << 53));
    if (const json::Value* v = doc.find("vocab")) t.vocab = static_cast<int32_t>(integer(*v, "vocab", 2, int64_t{1} << 30));
    std::map<std::string, int64_t> names;
    if (const json::Value* shared = doc.find("shared")) {
      require(shared->is_object(), "\"shared\" must be an object of name: length or name: [token ids]");
      for (const auto& kv : shared->obj) {
        SharedSegment seg;
        seg.name = kv.first;
        require(!seg.name.empty(), "a shared segment needs a name");
        if (kv.second.is_number()) {
          seg.tokens = integer(kv.second, "shared segment \"" + seg.name + "\" length", 1, kMaxTraceTokens);
        } else {
          seg.ids = token_ids(kv.second, "shared segment \"" + seg.name + "\"", t.vocab);
          seg.literal = true;
        }
        names[seg.name] = seg.tokens;
        t.shared.push_back(std::move(seg));
      }
    }
    const json::Value* requests = doc.find("requests");
    require(requests && requests->is_array() && !requests->arr.empty(), "\"requests\" must be a non-empty array");
    for (size_t i = 0; i < requests->arr.size(); ++i) {
      t.requests.push_back(parse_request(requests->arr[i], i, names, t.vocab));
      require(i == 0 || t.requests[i].arrival >= t.requests[i - 1].arrival,
              "request " + std::to_string(i) + " arrives before request " + std::to_string(i - 1) +
                  " (requests must be sorted by arrival)");
    }
    if (check) check(t);
    check_lengths(t);
    expand(t);
    return t;
  } catch (const Error& e) {
    throw Error(e.kind(), origin + ": " + e.what());
  }
}

Trace load_trace_file(const std::string& path, const TraceCheck& check) {
  return parse_trace_json(read_input_file(path, "trace file", kMaxTraceFileBytes), path, check);
}

namespace {
std::string ids_json(const std::vector<TokenId>& ids) {
  std::string s = "[";
  for (size_t i = 0; i < ids.size(); ++i) s += (i ? "," : "") + std::to_string(ids[i]);
  return s + "]";
}

std::string number(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.17g", v);
  return buf;
}
}  // namespace

std::string trace_to_json(const Trace& t) {
  std::string s = "{\n  \"format\": \"patlab-trace-1\",\n  \"description\": " + json::quote(t.description) +
                  ",\n  \"seed\": " + std::to_string(t.seed) + ",\n  \"vocab\": " + std::to_string(t.vocab) +
                  ",\n  \"shared\": {";
  for (size_t i = 0; i < t.shared.size(); ++i)
    s += (i ? ", " : "") + json::quote(t.shared[i].name) + ": " +
         (t.shared[i].literal ? ids_json(t.shared[i].ids) : std::to_string(t.shared[i].tokens));
  s += "},\n  \"requests\": [\n";
  for (size_t r = 0; r < t.requests.size(); ++r) {
    const TraceRequest& q = t.requests[r];
    s += "    {\"arrival\": " + number(q.arrival) + ", \"prompt\": [";
    for (size_t i = 0; i < q.parts.size(); ++i) {
      const PromptPart& p = q.parts[i];
      s += i ? ", " : "";
      s += !p.shared.empty() ? json::quote(p.shared) : p.random > 0 ? std::to_string(p.random) : ids_json(p.ids);
    }
    s += "], \"output\": " + std::to_string(q.output_tokens);
    if (q.samples != 1) s += ", \"n\": " + std::to_string(q.samples);
    s += r + 1 < t.requests.size() ? "},\n" : "}\n";
  }
  return s + "  ]\n}\n";
}

namespace {
double number_value(const std::string& key, const std::string& text) {
  char* end = nullptr;
  const double v = std::strtod(text.c_str(), &end);
  require(!text.empty() && end && *end == '\0' && std::isfinite(v),
          "trace generator: " + key + "=" + text + " is not a number");
  return v;
}

int64_t whole(const std::string& key, const std::string& text, int64_t lo, int64_t hi) {
  const double v = number_value(key, text);
  require(std::floor(v) == v && v >= static_cast<double>(lo) && v <= static_cast<double>(hi),
          "trace generator: " + key + " must be an integer in [" + std::to_string(lo) + ", " + std::to_string(hi) +
              "] (got " + text + ")");
  return static_cast<int64_t>(v);
}

/// "1024x0.5+512x0.25" -> lengths and fractions.
void parse_systems(const std::string& text, TraceGenOptions& o) {
  for (const std::string& item : split(text, '+')) {
    require(!item.empty(), "trace generator: system=" + text + " has an empty item (a stray +)");
    const size_t x = item.find('x');
    require(x != std::string::npos, "trace generator: system=" + text + " must be LENxFRACTION[+LENxFRACTION...]");
    o.system_lengths.push_back(whole("system length", item.substr(0, x), 1, kMaxTraceTokens));
    o.system_fractions.push_back(number_value("system fraction", item.substr(x + 1)));
  }
}
}  // namespace

TraceGenOptions parse_trace_gen(const std::string& spec) {
  const std::string prefix = "gen:";
  require(spec.rfind(prefix, 0) == 0, "trace generator spec must start with gen: (got " + spec + ")");
  TraceGenOptions o;
  const std::string keys = spec.substr(prefix.size());
  if (keys.empty()) return o;  // "gen:": every default
  std::set<std::string> seen;
  for (const std::string& item : split(keys, ',')) {
    require(!item.empty(), "trace generator: " + spec + " has an empty item (a stray comma)");
    const size_t eq = item.find('=');
    require(eq != std::string::npos, "trace generator: " + item + " is not key=value");
    const std::string key = item.substr(0, eq), val = item.substr(eq + 1);
    require(seen.insert(key).second, "trace generator: " + key + " is given twice");
    if (key == "requests") o.requests = static_cast<int>(whole(key, val, 1, 1 << 20));
    else if (key == "rate") o.rate = number_value(key, val);
    else if (key == "prompt") o.prompt_mean = number_value(key, val);
    else if (key == "output") o.output_mean = number_value(key, val);
    else if (key == "sigma") o.sigma = number_value(key, val);
    else if (key == "max") o.max_tokens = whole(key, val, 2, kMaxTraceTokens);
    else if (key == "system") parse_systems(val, o);
    else if (key == "n") o.samples = static_cast<int>(whole(key, val, 1, kMaxSamples));
    else if (key == "seed") o.seed = static_cast<uint64_t>(whole(key, val, 0, int64_t{1} << 53));
    else if (key == "vocab") o.vocab = static_cast<int>(whole(key, val, 2, int64_t{1} << 30));
    else
      throw Error(ErrorKind::usage, "trace generator: unknown key " + key +
                                        " (requests, rate, prompt, output, sigma, max, system, n, seed, vocab)");
  }
  return o;
}

// [generate]
Trace generate_trace(const TraceGenOptions& o, const TraceCheck& check) {
  require(o.requests >= 1, "trace generator: requests must be >= 1");
  require(o.rate >= 0 && std::isfinite(o.rate), "trace generator: rate must be >= 0 requests/s (0: all at once)");
  require(o.prompt_mean >= 1 && o.output_mean >= 1, "trace generator: prompt and output means must be >= 1 token");
  require(o.sigma >= 0 && o.sigma <= 4, "trace generator: sigma must be in [0, 4]");
  require(o.system_lengths.size() == o.system_fractions.size(), "trace generator: one fraction per system prompt");
  double fractions = 0;
  for (double f : o.system_fractions) {
    require(f >= 0 && f <= 1, "trace generator: system prompt fractions must be in [0, 1]");
    fractions += f;
  }
  require(fractions <= 1 + 1e-9, "trace generator: system prompt fractions sum to more than 1");
  Trace t;
  t.seed = o.seed;
  t.vocab = o.vocab;
  for (size_t s = 0; s < o.system_lengths.size(); ++s)
    t.shared.push_back({"system" + std::to_string(s), o.system_lengths[s], {}, false});
  auto arrivals = stream(o.seed, kArrivalStream, 0);
  auto lengths = stream(o.seed, kLengthStream, 0);
  auto systems = stream(o.seed, kSystemStream, 0);
  std::exponential_distribution<double> gap(o.rate > 0 ? o.rate : 1.0);
  // Lognormal with the given mean: mu = ln(mean) - sigma^2 / 2.
  std::lognormal_distribution<double> prompt(std::log(o.prompt_mean) - o.sigma * o.sigma / 2, o.sigma);
  std::lognormal_distribution<double> output(std::log(o.output_mean) - o.sigma * o.sigma / 2, o.sigma);
  std::uniform_real_distribution<double> unit(0.0, 1.0);
  double now = 0;
  for (int r = 0; r < o.requests; ++r) {
    TraceRequest q;
    if (o.rate > 0) now += gap(arrivals);
    q.arrival = now;
    const double u = unit(systems);
    double acc = 0;
    for (size_t s = 0; s < o.system_fractions.size(); ++s) {
      acc += o.system_fractions[s];
      if (u < acc) {
        q.parts.push_back({t.shared[s].name, 0, {}});
        break;
      }
    }
    const int64_t own = std::clamp<int64_t>(std::llround(prompt(lengths)), 1, o.max_tokens - 1);
    q.parts.push_back({"", own, {}});
    q.output_tokens = static_cast<int32_t>(std::clamp<int64_t>(std::llround(output(lengths)), 1, o.max_tokens - own));
    q.samples = o.samples;
    t.requests.push_back(std::move(q));
  }
  if (check) check(t);
  check_lengths(t);
  expand(t);
  return t;
}
// [generate]

Trace resolve_trace(const std::string& arg, const TraceCheck& check) {
  if (arg.rfind("gen:", 0) == 0) {
    Trace t = generate_trace(parse_trace_gen(arg), check);
    t.description = arg;
    return t;
  }
  return load_trace_file(arg, check);
}

}  // namespace patlab::serving
