#include "patlab/model/workload.hpp"

#include <algorithm>
#include <cmath>
#include <map>
#include <random>

#include "patlab/error.hpp"
#include "patlab/input_file.hpp"
#include "patlab/model/hetero.hpp"
#include "patlab/report/json.hpp"

namespace patlab {

namespace {

template <size_t N>
std::string list(const int (&allowed)[N]) {
  std::string s;
  for (size_t i = 0; i < N; ++i) s += (i ? ", " : "") + std::to_string(allowed[i]);
  return s;
}

/// Parses a whole string as a positive integer; nullopt if it is not one.
std::optional<int64_t> parse_count(const std::string& s) {
  if (s.empty() || s.size() > 12) return std::nullopt;
  int64_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return std::nullopt;
    v = v * 10 + (c - '0');
  }
  return v;
}

std::string trim(const std::string& s) {
  size_t b = s.find_first_not_of(" \t");
  size_t e = s.find_last_not_of(" \t");
  return b == std::string::npos ? "" : s.substr(b, e - b + 1);
}

}  // namespace

void Shape::validate() const {
  require(num_q_heads >= 1 && num_kv_heads >= 1, "head counts must be >= 1");
  require(num_q_heads % num_kv_heads == 0,
          "query heads (" + std::to_string(num_q_heads) + ") must be a multiple of KV heads (" +
              std::to_string(num_kv_heads) + ")");
  require(group() <= kMaxGroupSize, "unsupported group size " + std::to_string(group()) +
                                        " (query heads per KV head; supported: 1 to " + std::to_string(kMaxGroupSize) +
                                        ")");
  require(num_kv_heads <= 128, "at most 128 KV heads are supported");
  require(one_of(head_dim, kSupportedHeadDims),
          "unsupported head dim " + std::to_string(head_dim) + " (supported: " + list(kSupportedHeadDims) + ")");
  require(one_of(page_size, kSupportedPageSizes),
          "unsupported page size " + std::to_string(page_size) + " (supported: " + list(kSupportedPageSizes) + ")");
}

std::string Shape::describe() const {
  return std::to_string(num_q_heads) + "/" + std::to_string(num_kv_heads) + " heads, d=" +
         std::to_string(head_dim) + ", page " + std::to_string(page_size) + ", " + dtype_name(dtype) +
         (kv_fp8() ? std::string(", kv ") + kv_dtype_name(kv_dtype, dtype) : std::string());
}

void parse_heads(const std::string& text, Shape& shape) {
  const std::string malformed = "malformed heads '" + text + "' (expected HQ/HKV, e.g. 32/8)";
  auto parts = split(text, '/');
  require(parts.size() == 2, malformed);
  const std::optional<int64_t> hq = parse_count(parts[0]), hkv = parse_count(parts[1]);
  require(hq.has_value() && hkv.has_value(), malformed);
  const int64_t q = hq.value(), kv = hkv.value();
  require(q > 0 && kv > 0 && q <= 1024, malformed);
  shape.num_q_heads = static_cast<int>(q);
  shape.num_kv_heads = static_cast<int>(kv);
}

std::vector<int> TokenTree::path(int r) const {
  std::vector<int> p;
  for (int s = request_ends.at(r); s >= 0; s = segments[s].parent) p.push_back(s);
  std::reverse(p.begin(), p.end());
  return p;
}

int64_t TokenTree::request_tokens(int r) const {
  int64_t n = 0;
  for (int s = request_ends.at(r); s >= 0; s = segments[s].parent) n += segments[s].tokens;
  return n;
}

std::vector<int64_t> TokenTree::segment_ends() const {
  std::vector<int64_t> end(segments.size());
  for (size_t s = 0; s < segments.size(); ++s) {
    const int parent = segments[s].parent;
    end[s] = (parent < 0 ? 0 : end[static_cast<size_t>(parent)]) + segments[s].tokens;
  }
  return end;
}

std::vector<int> TokenTree::segment_levels() const {
  std::vector<int> level(segments.size());
  for (size_t s = 0; s < segments.size(); ++s) {
    const int parent = segments[s].parent;
    level[s] = parent < 0 ? 1 : level[static_cast<size_t>(parent)] + 1;
  }
  return level;
}

int TokenTree::depth() const {
  const std::vector<int> level = segment_levels();
  int d = 0;
  for (int end : request_ends) d = std::max(d, level[static_cast<size_t>(end)]);
  return d;
}

void TokenTree::validate() const {
  require(!request_ends.empty(), "the workload has no requests");
  require(num_requests() <= kMaxRequests, "too many requests (" + std::to_string(num_requests()) +
                                              "; at most " + std::to_string(kMaxRequests) + ")");
  require(static_cast<int64_t>(segments.size()) <= kMaxSegments,
          "too many segments (" + std::to_string(segments.size()) + "; at most " + std::to_string(kMaxSegments) + ")");
  // Parents before children: every per-segment quantity is then one pass, and there is no cycle.
  for (size_t s = 0; s < segments.size(); ++s)
    require(segments[s].parent >= -1 && segments[s].parent < static_cast<int>(s),
            "segment '" + segments[s].name + "' names parent " + std::to_string(segments[s].parent) +
                " (a parent must be listed before its children)");
  for (int end : request_ends)
    require(end >= 0 && end < static_cast<int>(segments.size()),
            "a request ends at segment " + std::to_string(end) + " of " + std::to_string(segments.size()));
  for (const Segment& s : segments) {
    require(s.tokens >= 1, "segment '" + s.name + "' has " + std::to_string(s.tokens) + " tokens (must be >= 1)");
    require(s.tokens <= kMaxRequestTokens, "segment '" + s.name + "' has " + std::to_string(s.tokens) +
                                               " tokens (at most " + std::to_string(kMaxRequestTokens) + ")");
  }
  // Segments are <= kMaxRequestTokens and there are <= kMaxSegments of them: no sum overflows.
  const std::vector<int64_t> end = segment_ends();
  int64_t total = 0;
  for (int r = 0; r < num_requests(); ++r) {
    const int64_t tokens = end[static_cast<size_t>(request_ends[static_cast<size_t>(r)])];
    require(tokens <= kMaxRequestTokens, "request " + std::to_string(r) + " has " + std::to_string(tokens) +
                                             " tokens (at most " + std::to_string(kMaxRequestTokens) + ")");
    total += tokens;
  }
  require(total <= kMaxTotalTokens, "the requests have " + std::to_string(total) + " tokens in all (at most " +
                                        std::to_string(kMaxTotalTokens) + ")");
}

TokenTree parse_tree_spec(const std::string& spec) {
  const std::string bad = "malformed tree spec '" + spec + "' (expected a,b,c_x,y,z, e.g. 1,64_4096,256)";
  auto halves = split(spec, '_');
  require(halves.size() == 2, bad);
  auto counts_s = split(halves[0], ',');
  auto tokens_s = split(halves[1], ',');
  require(counts_s.size() == tokens_s.size(),
          "tree spec '" + spec + "' has " + std::to_string(counts_s.size()) + " node counts but " +
              std::to_string(tokens_s.size()) + " token counts");
  std::vector<int64_t> counts, tokens;
  for (const auto& c : counts_s) {
    auto v = parse_count(c);
    require(v.has_value(), bad);
    require(*v >= 1, "tree spec '" + spec + "': a level has 0 nodes");
    counts.push_back(*v);
  }
  for (const auto& t : tokens_s) {
    auto v = parse_count(t);
    require(v.has_value(), bad);
    require(*v >= 1, "tree spec '" + spec + "': a level has 0 tokens per node (lengths must be >= 1)");
    tokens.push_back(*v);
  }
  for (size_t l = 1; l < counts.size(); ++l) {
    require(counts[l] % counts[l - 1] == 0 && counts[l] >= counts[l - 1],
            "tree spec '" + spec + "': level " + std::to_string(l + 1) + " has " + std::to_string(counts[l]) +
                " nodes, not a multiple of the " + std::to_string(counts[l - 1]) + " above it");
  }
  require(counts.back() <= kMaxRequests, "tree spec '" + spec + "' makes " + std::to_string(counts.back()) +
                                             " requests (at most " + std::to_string(kMaxRequests) + ")");
  // The sizes follow from the numbers: refuse before building a single segment. Segments first:
  // with at most kMaxSegments levels of at most 12-digit lengths, the token sum cannot overflow.
  int64_t segments = 0;
  for (int64_t c : counts) {
    segments += c;
    require(segments <= kMaxSegments, "tree spec '" + spec + "' makes more than " + std::to_string(kMaxSegments) +
                                          " segments (the limit)");
  }
  int64_t request_tokens = 0;
  for (int64_t t : tokens) request_tokens += t;
  require(request_tokens <= kMaxRequestTokens, "tree spec '" + spec + "' makes requests of " +
                                                   std::to_string(request_tokens) + " tokens (at most " +
                                                   std::to_string(kMaxRequestTokens) + ")");
  require(counts.back() * request_tokens <= kMaxTotalTokens,
          "tree spec '" + spec + "' makes " + std::to_string(counts.back() * request_tokens) +
              " tokens summed over its requests (at most " + std::to_string(kMaxTotalTokens) + ")");
  TokenTree tree;
  tree.description = "tree " + spec;
  std::vector<int> prev;  // segment indices of the level above
  for (size_t l = 0; l < counts.size(); ++l) {
    std::vector<int> cur;
    int64_t per_parent = l == 0 ? counts[0] : counts[l] / counts[l - 1];
    size_t parents = l == 0 ? 1 : prev.size();
    for (size_t p = 0; p < parents; ++p) {
      for (int64_t c = 0; c < per_parent; ++c) {
        Segment s;
        s.name = "L" + std::to_string(l + 1) + "." + std::to_string(cur.size());
        s.tokens = tokens[l];
        s.parent = l == 0 ? -1 : prev[p];
        cur.push_back(static_cast<int>(tree.segments.size()));
        tree.segments.push_back(s);
      }
    }
    prev = cur;
  }
  tree.request_ends = prev;
  tree.validate();
  return tree;
}

TokenTree parse_workload_json(const std::string& text, const std::string& origin, ShapeOverrides* shape_out) {
  json::Value doc = json::parse(text, origin, static_cast<size_t>(kMaxSegments));
  require(doc.is_object(), origin + ": the top level must be an object with \"segments\" and \"requests\"");
  for (const auto& kv : doc.obj) {
    static const char* known[] = {"segments", "requests", "heads", "head_dim", "page", "dtype", "kv_dtype",
                                  "comment"};
    require(std::find_if(std::begin(known), std::end(known), [&](const char* k) { return kv.first == k; }) !=
                std::end(known),
            origin + ": unknown key \"" + kv.first + "\"");
  }
  const json::Value* segs = doc.find("segments");
  const json::Value* reqs = doc.find("requests");
  require(segs && segs->is_object() && !segs->obj.empty(),
          origin + ": \"segments\" must be a non-empty object of name: token count");
  require(reqs && reqs->is_array() && !reqs->arr.empty(), origin + ": \"requests\" must be a non-empty array");
  require(static_cast<int64_t>(segs->obj.size()) <= kMaxSegments, origin + ": too many segments (" +
                                                                      std::to_string(segs->obj.size()) + "; at most " +
                                                                      std::to_string(kMaxSegments) + ")");
  require(reqs->arr.size() <= static_cast<size_t>(kMaxRequests), origin + ": too many requests (" +
                                                                    std::to_string(reqs->arr.size()) + "; at most " +
                                                                    std::to_string(kMaxRequests) + ")");
  std::map<std::string, int64_t> seg_tokens;
  for (const auto& kv : segs->obj) {
    const json::Value& v = kv.second;
    // Range before any cast: converting a double outside int64 (1e300, -inf) is undefined.
    require(v.is_number() && std::isfinite(v.num) && v.num == std::floor(v.num),
            origin + ": segment \"" + kv.first + "\" must have an integer token count");
    require(v.num >= 1, origin + ": segment \"" + kv.first + "\" has " + number_text(v.num) +
                            " tokens (must be >= 1)");
    require(v.num <= static_cast<double>(kMaxRequestTokens), origin + ": segment \"" + kv.first + "\" has " +
                                                                 number_text(v.num) + " tokens (at most " +
                                                                 std::to_string(kMaxRequestTokens) + ")");
    seg_tokens[kv.first] = static_cast<int64_t>(v.num);
  }
  TokenTree tree;
  tree.description = "workload " + origin;
  // A trie keyed by the path of names: the same name after different prefixes is another node.
  std::map<std::pair<int, std::string>, int> child;
  for (size_t r = 0; r < reqs->arr.size(); ++r) {
    const json::Value& rv = reqs->arr[r];
    std::vector<std::string> names;
    if (rv.is_string()) {
      for (const auto& n : split(rv.str, '+')) names.push_back(trim(n));
    } else if (rv.is_array()) {
      for (const auto& n : rv.arr) {
        require(n.is_string(), origin + ": request " + std::to_string(r) + " must list segment names");
        names.push_back(n.str);
      }
    } else {
      throw Error(ErrorKind::usage, origin + ": request " + std::to_string(r) +
                                        " must be \"a+b+c\" or an array of segment names");
    }
    require(!names.empty(), origin + ": request " + std::to_string(r) + " is empty");
    int parent = -1;
    for (const auto& n : names) {
      auto it = seg_tokens.find(n);
      require(it != seg_tokens.end(), origin + ": request " + std::to_string(r) + " names unknown segment \"" + n + "\"");
      auto key = std::make_pair(parent, n);
      auto found = child.find(key);
      if (found == child.end()) {
        Segment s;
        s.name = n;
        s.tokens = it->second;
        s.parent = parent;
        tree.segments.push_back(s);
        found = child.emplace(key, static_cast<int>(tree.segments.size()) - 1).first;
      }
      parent = found->second;
    }
    tree.request_ends.push_back(parent);
  }
  if (shape_out) {
    auto str = [&](const char* key) -> std::optional<std::string> {
      const json::Value* v = doc.find(key);
      if (!v) return std::nullopt;
      require(v->is_string(), origin + ": \"" + key + "\" must be a string");
      return v->str;
    };
    auto num = [&](const char* key) -> std::optional<int> {
      const json::Value* v = doc.find(key);
      if (!v) return std::nullopt;
      require(v->is_number() && std::isfinite(v->num) && v->num == std::floor(v->num) && std::fabs(v->num) <= 1e6,
              origin + ": \"" + key + "\" must be an integer");
      return static_cast<int>(v->num);
    };
    shape_out->heads = str("heads");
    shape_out->dtype = str("dtype");
    shape_out->kv_dtype = str("kv_dtype");
    shape_out->head_dim = num("head_dim");
    shape_out->page_size = num("page");
  }
  tree.validate();
  return tree;
}

TokenTree load_workload_file(const std::string& path, ShapeOverrides* shape_out) {
  return parse_workload_json(read_input_file(path, "workload file", kMaxWorkloadFileBytes), path, shape_out);
}

TokenTree random_tree(uint64_t seed, const RandomTreeOptions& o) {
  require(o.requests >= 1 && o.requests <= kMaxRequests, "random tree: --random-requests must be in [1, 65536]");
  require(o.max_depth >= 1 && o.max_depth <= 16, "random tree: --random-depth must be in [1, 16]");
  require(o.max_segment >= 1 && o.max_segment <= 1 << 20, "random tree: --random-max-segment must be in [1, 1048576]");
  require(o.max_roots >= 1, "random tree: at least one root");
  std::mt19937_64 rng(seed);
  auto uniform = [&](int64_t lo, int64_t hi) { return std::uniform_int_distribution<int64_t>(lo, hi)(rng); };
  TokenTree tree;
  tree.description = "random tree, seed " + std::to_string(seed);
  std::vector<int> depth;
  std::vector<int> children;
  auto add = [&](int parent) {
    Segment s;
    s.parent = parent;
    s.tokens = uniform(1, o.max_segment);
    s.name = "S" + std::to_string(tree.segments.size());
    tree.segments.push_back(s);
    depth.push_back(parent < 0 ? 1 : depth[parent] + 1);
    children.push_back(0);
    if (parent >= 0) ++children[parent];
  };
  // With depth 1 every request is a root of its own (no node could take a child: the loop below
  // would never end).
  int roots = o.max_depth == 1 ? o.requests : static_cast<int>(uniform(1, std::min(o.max_roots, o.requests)));
  for (int i = 0; i < roots; ++i) add(-1);
  int leaves = roots;
  // Grow until there are enough leaves: a child under a leaf keeps the count, under an inner
  // node it adds one, so shapes of every depth and fan-out come out.
  while (leaves < o.requests) {
    int n = static_cast<int>(uniform(0, static_cast<int64_t>(tree.segments.size()) - 1));
    if (depth[n] >= o.max_depth) continue;
    if (children[n] > 0) ++leaves;
    add(n);
  }
  for (int s = 0; s < static_cast<int>(tree.segments.size()); ++s)
    if (children[s] == 0) tree.request_ends.push_back(s);
  tree.validate();
  return tree;
}

const std::vector<Preset>& presets() {
  static const std::vector<Preset> all = [] {
    Shape llama;  // Llama-3-8B attention: 32 query heads, 8 KV heads, d=128
    Shape mha = llama;
    mha.num_kv_heads = 32;
    Shape small;
    small.num_q_heads = 8;
    small.num_kv_heads = 2;
    small.head_dim = 64;
    return std::vector<Preset>{
        {"sysprompt", "a 4096-token system prompt shared by 64 requests, 256 own tokens each (default)",
         "1,64_4096,256", llama},
        {"long-prefix", "a 16K-token prefix shared by 128 requests, 256 own tokens each (larger than L2)",
         "1,128_16384,256", llama},
        {"rag", "system prompt 1024, 4 documents of 2048 tokens, 16 users per document with 64 own tokens",
         "1,4,64_1024,2048,64", llama},
        {"sampling", "8 prompts of 2048 tokens, 32 parallel samples of 64 tokens each", "8,256_2048,64", llama},
        {"no-sharing", "64 requests of 2048 tokens that share nothing (control)", "64_2048", llama},
        {"asymmetric", "3 requests: sys+docA+u1, sys+docA+u2, sys+u3 (odd lengths, uneven tree)",
         R"({"segments": {"sys": 1000, "docA": 700, "u1": 33, "u2": 45, "u3": 129},
             "requests": ["sys+docA+u1", "sys+docA+u2", "sys+u3"]})",
         llama},
        {"mha", "256 requests with a 2048-token prefix and 128 own tokens, 32/32 heads", "1,256_2048,128", mha},
        {"tiny", "4 requests sharing 100 tokens with 37 own each, 8/2 heads, d=64 (quick checks)", "1,4_100,37",
         small},
        {"hetero96",
         "96 requests of 20-12288 own tokens (log-normal fit of the Azure 2023 conversation trace), 72 behind a "
         "2048-token system prompt (issue 16's example)",
         "--hetero 1", llama, [] { return hetero_batch(1, HeteroOptions{}); }},
    };
  }();
  return all;
}

const Preset& find_preset(const std::string& name) {
  std::string known;
  for (const Preset& p : presets()) {
    if (p.name == name) return p;
    known += (known.empty() ? "" : ", ") + p.name;
  }
  throw Error(ErrorKind::usage, "unknown preset '" + name + "' (known: " + known + ")");
}

TokenTree preset_tree(const Preset& preset) {
  if (preset.build) {
    TokenTree t = preset.build();
    t.description = "preset " + preset.name + " (" + t.description + ")";
    return t;
  }
  TokenTree t = preset.tree.front() == '{' ? parse_workload_json(preset.tree, "preset " + preset.name)
                                           : parse_tree_spec(preset.tree);
  t.description = "preset " + preset.name + " (" + (preset.tree.front() == '{' ? "asymmetric tree" : preset.tree) + ")";
  return t;
}

}  // namespace patlab
