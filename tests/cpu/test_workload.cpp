// The workload model: tree notation, JSON workload files, random trees, presets, shapes. Every
// error a user can provoke must be a patlab::Error of kind usage (or io) with a one-line message
// that names the fault.
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <set>
#include <string>
#include <unistd.h>
#include <vector>

#include "../catch.hpp"
#include "../test_util.hpp"
#include "patlab/error.hpp"
#include "patlab/model/kv_cache.hpp"
#include "patlab/report/json.hpp"
#include "patlab/model/workload.hpp"

using namespace patlab;

namespace {

/// Runs `f`, which must throw patlab::Error of `kind` whose one-line message contains `needle`.
/// Names of the segments on request r's path, joined with '+'.
std::string path_names(const TokenTree& t, int r) {
  std::string s;
  for (int seg : t.path(r)) s += (s.empty() ? "" : "+") + t.segments[static_cast<size_t>(seg)].name;
  return s;
}

/// parse_workload_json with shape keys read, for the error tests.
TokenTree parse_json(const std::string& text) {
  ShapeOverrides shape;
  return parse_workload_json(text, "f.json", &shape);
}

/// A minimal valid file with `extra` spliced into the top-level object.
std::string with(const std::string& extra) {
  return R"({"segments": {"a": 10, "b": 20}, "requests": ["a+b"])" + extra + "}";
}

}  // namespace

TEST_CASE("tree spec: segments, parents and request paths") {
  SECTION("1,4_100,37: one shared root, four leaves") {
    const TokenTree t = parse_tree_spec("1,4_100,37");
    REQUIRE(t.segments.size() == 5);
    REQUIRE(t.num_requests() == 4);
    CHECK(t.depth() == 2);
    CHECK(t.description == "tree 1,4_100,37");
    CHECK(t.segments[0].name == "L1.0");
    CHECK(t.segments[0].parent == -1);
    CHECK(t.segments[0].tokens == 100);
    for (int r = 0; r < 4; ++r) {
      CHECK(t.path(r) == std::vector<int>{0, 1 + r});
      CHECK(t.request_tokens(r) == 137);
      CHECK(path_names(t, r) == "L1.0+L2." + std::to_string(r));
    }
  }
  SECTION("2,6_10,3: two roots with three children each, in order") {
    const TokenTree t = parse_tree_spec("2,6_10,3");
    REQUIRE(t.num_requests() == 6);
    for (int r = 0; r < 6; ++r) CHECK(t.path(r).front() == (r < 3 ? 0 : 1));
    CHECK(t.segments[static_cast<size_t>(t.request_ends[5])].parent == 1);
  }
  SECTION("64_2048: no sharing at all") {
    const TokenTree t = parse_tree_spec("64_2048");
    CHECK(t.num_requests() == 64);
    CHECK(t.depth() == 1);
    for (const Segment& s : t.segments) CHECK(s.parent == -1);
  }
  SECTION("1,2,4_5,6,7: three levels") {
    const TokenTree t = parse_tree_spec("1,2,4_5,6,7");
    REQUIRE(t.num_requests() == 4);
    CHECK(t.depth() == 3);
    CHECK(t.request_tokens(3) == 18);
    CHECK(path_names(t, 0) == "L1.0+L2.0+L3.0");
    CHECK(path_names(t, 1) == "L1.0+L2.0+L3.1");
    CHECK(path_names(t, 2) == "L1.0+L2.1+L3.2");
    CHECK(path_names(t, 3) == "L1.0+L2.1+L3.3");
  }
  SECTION("the PAT paper's kernel trees parse to the advertised sizes") {
    const char* specs[] = {"1,10_4096,416",
                           "1,256_256,32",
                           "1,1024_2048,32",
                           "1,2,64_1024,256,256",
                           "1,4,256_32,256,32",
                           "1,8,512_32,512,256",
                           "1,4,16,512_1024,256,128,32",
                           "1,16,32,64,128,1024_256,128,64,32,32,32",
                           "8,16,32,256_512,512,256,32",
                           "256_1024",
                           "256_4096"};
    for (const char* spec : specs) {
      CAPTURE(spec);
      const TokenTree t = parse_tree_spec(spec);
      const std::string counts = std::string(spec).substr(0, std::string(spec).find('_'));
      int64_t segments = 0, last = 0;
      size_t levels = 0;
      for (size_t b = 0, e; b <= counts.size(); b = e + 1, ++levels) {
        e = counts.find(',', b);
        if (e == std::string::npos) e = counts.size();
        last = std::stoll(counts.substr(b, e - b));
        segments += last;
      }
      CHECK(static_cast<int64_t>(t.segments.size()) == segments);
      CHECK(t.num_requests() == last);
      CHECK(t.depth() == static_cast<int>(levels));
    }
  }
  SECTION("the largest batch is accepted") {
    CHECK(parse_tree_spec("65536_1").num_requests() == kMaxRequests);
    CHECK(parse_tree_spec("1_16777216").request_tokens(0) == kMaxRequestTokens);
  }
}

TEST_CASE("tree spec errors name the fault") {
  struct Case {
    const char* spec;
    const char* needle;
  };
  const Case cases[] = {
      {"", "malformed tree spec ''"},
      {"abc", "malformed tree spec 'abc'"},
      {"1,4", "malformed tree spec '1,4'"},
      {"1_2_3", "malformed tree spec '1_2_3'"},
      {"1,x_100,37", "malformed tree spec"},
      {"1,4_100,3.5", "malformed tree spec"},
      {"1,-4_100,37", "malformed tree spec"},
      {" 1,4_100,37", "malformed tree spec"},
      {"1,4_,37", "malformed tree spec"},
      {"1,4_100,1234567890123", "malformed tree spec"},
      {"1,4_100", "has 2 node counts but 1 token counts"},
      {"1_100,37", "has 1 node counts but 2 token counts"},
      {"0,4_100,37", "a level has 0 nodes"},
      {"1,4_0,37", "a level has 0 tokens per node"},
      {"1,4_100,0", "a level has 0 tokens per node"},
      {"2,3_4,5", "level 2 has 3 nodes, not a multiple of the 2 above it"},
      {"4,2_4,5", "level 2 has 2 nodes, not a multiple of the 4 above it"},
      {"65537_10", "makes 65537 requests (at most 65536)"},
      {"999999999999_5", "makes 999999999999 requests"},
      {"1,2_16777216,1", "makes requests of 16777217 tokens (at most 16777216)"},
      {"1,128_16000000,1", "makes 2048000128 tokens summed over its requests (at most 268435456)"},
      {"1,65536,65536,65536,65536,65536,65536,65536,65536,65536,65536,65536,65536,"
       "65536,65536,65536,65536,65536_1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1",
       "more than 1048576 segments (the limit)"},
  };
  for (const Case& c : cases) {
    CAPTURE(c.spec);
    require_error([&] { parse_tree_spec(c.spec); }, c.needle);
  }
}

TEST_CASE("workload JSON: paths of names, sharing and shape keys") {
  SECTION("the asymmetric example: names shared along common prefixes") {
    ShapeOverrides shape;
    const TokenTree t = parse_workload_json(
        R"({"segments": {"sys": 1000, "docA": 700, "u1": 33, "u2": 45, "u3": 129},
            "requests": ["sys+docA+u1", " sys + docA + u2 ", ["sys", "u3"]],
            "comment": "anything"})",
        "ex.json", &shape);
    REQUIRE(t.num_requests() == 3);
    CHECK(t.segments.size() == 5);  // sys, docA once each, then three leaves
    CHECK(path_names(t, 0) == "sys+docA+u1");
    CHECK(path_names(t, 1) == "sys+docA+u2");
    CHECK(path_names(t, 2) == "sys+u3");
    CHECK(t.path(0)[1] == t.path(1)[1]);  // docA is one node
    CHECK(t.request_tokens(0) == 1733);
    CHECK(t.request_tokens(1) == 1745);
    CHECK(t.request_tokens(2) == 1129);
    CHECK(t.description == "workload ex.json");
    CHECK_FALSE(shape.heads.has_value());
    CHECK_FALSE(shape.head_dim.has_value());
    CHECK_FALSE(shape.page_size.has_value());
    CHECK_FALSE(shape.dtype.has_value());
  }
  SECTION("the same name after different prefixes is a different node") {
    const TokenTree t = parse_json(R"({"segments": {"a": 1, "b": 2}, "requests": ["a+b", "b+a", "a"]})");
    CHECK(t.segments.size() == 4);
    CHECK(t.path(2) == std::vector<int>{t.path(0)[0]});  // "a" ends at the inner node a
    CHECK(t.request_tokens(1) == 3);
  }
  SECTION("shape keys") {
    ShapeOverrides shape;
    parse_workload_json(with(R"(, "heads": "16/8", "head_dim": 64, "page": 32, "dtype": "bf16")"), "f.json", &shape);
    CHECK(shape.heads == std::optional<std::string>("16/8"));
    CHECK(shape.head_dim == std::optional<int>(64));
    CHECK(shape.page_size == std::optional<int>(32));
    CHECK(shape.dtype == std::optional<std::string>("bf16"));
  }
  SECTION("a file on disk; its path names its errors") {
    const auto dir = std::filesystem::temp_directory_path();
    const std::string good = (dir / ("patlab_test_good_" + std::to_string(getpid()) + ".json")).string();
    const std::string bad = (dir / ("patlab_test_bad_" + std::to_string(getpid()) + ".json")).string();
    std::ofstream(good) << with("");
    std::ofstream(bad) << "{\"segments\": {\"a\": 10},\n \"requests\": [\"a\", ]}";
    CHECK(load_workload_file(good).request_tokens(0) == 30);
    require_error([&] { load_workload_file(bad); }, bad + ": line 2: unexpected character ']'");
    std::filesystem::remove(good);
    std::filesystem::remove(bad);
    require_error([&] { load_workload_file(good); }, "cannot read workload file '" + good + "'", ErrorKind::io);
    require_error([&] { load_workload_file(dir.string()); }, "cannot read workload file", ErrorKind::io);
  }
  SECTION("files are refused by kind and size before they are read") {
    require_error([] { load_workload_file("/dev/zero"); }, "workload file '/dev/zero' is not a regular file");
    const std::string huge = (std::filesystem::temp_directory_path() /
                              ("patlab_test_huge_" + std::to_string(getpid()) + ".json")).string();
    { std::ofstream(huge) << "{}"; }
    std::filesystem::resize_file(huge, static_cast<uintmax_t>(kMaxWorkloadFileBytes) + 1);  // sparse
    require_error([&] { load_workload_file(huge); }, "is larger than 16 MiB");
    std::filesystem::remove(huge);
  }
  SECTION("a JSON array past max_items stops the parser") {
    CHECK(json::parse("[1, 2, 3]", "x", 3).arr.size() == 3);
    require_error([] { json::parse("[1, 2, 3, 4]", "x", 3); }, "x: line 1: an array with more than 3 elements");
    require_error([] { json::parse(R"({"a": 1, "b": 2})", "x", 1); }, "an object with more than 1 members");
  }
}

TEST_CASE("workload JSON errors name the file and the fault") {
  struct Case {
    std::string text;
    const char* needle;
  };
  std::string many = R"({"segments": {"a": 1}, "requests": [)";
  for (int i = 0; i <= kMaxRequests; ++i) many += i ? ",\"a\"" : "\"a\"";
  many += "]}";
  const Case cases[] = {
      // malformed JSON, with the line of the fault
      {"", "f.json: line 1: unexpected end of input"},
      {"{", "f.json: line 1: expected a string key"},
      {"{\n\"segments\": {\"a\": 1,}\n}", "f.json: line 2: expected a string key"},
      {"{\"segments\": {\"a\": 1}}\n\n x", "f.json: line 3: unexpected text after the JSON value"},
      {"{\"segments\": {\"a\": 0x10}, \"requests\": [\"a\"]}", "line 1: malformed number"},
      {"{\"segments\": {\"a\": 1, \"a\": 2}, \"requests\": [\"a\"]}", "duplicate key \"a\""},
      {"{\"segments\": {\"a\": 1}, \"requests\": [\"a]}", "unterminated string"},
      // structure
      {"[1, 2]", "f.json: the top level must be an object"},
      {with(R"(, "head-dim": 64)"), "f.json: unknown key \"head-dim\""},
      {R"({"requests": ["a"]})", "\"segments\" must be a non-empty object"},
      {R"({"segments": {}, "requests": ["a"]})", "\"segments\" must be a non-empty object"},
      {R"({"segments": [10], "requests": ["a"]})", "\"segments\" must be a non-empty object"},
      {R"({"segments": {"a": 1}})", "\"requests\" must be a non-empty array"},
      {R"({"segments": {"a": 1}, "requests": []})", "\"requests\" must be a non-empty array"},
      {R"({"segments": {"a": 1}, "requests": "a"})", "\"requests\" must be a non-empty array"},
      // segment lengths
      {R"({"segments": {"a": "10"}, "requests": ["a"]})", "segment \"a\" must have an integer token count"},
      {R"({"segments": {"a": 1.5}, "requests": ["a"]})", "segment \"a\" must have an integer token count"},
      {R"({"segments": {"a": true}, "requests": ["a"]})", "segment \"a\" must have an integer token count"},
      {R"({"segments": {"a": 1e999}, "requests": ["a"]})", "segment \"a\" must have an integer token count"},
      {R"({"segments": {"a": 0}, "requests": ["a"]})", "segment \"a\" has 0 tokens (must be >= 1)"},
      {R"({"segments": {"a": -3}, "requests": ["a"]})", "segment \"a\" has -3 tokens (must be >= 1)"},
      {R"({"segments": {"a": 16777217}, "requests": ["a"]})", "segment \"a\" has 16777217 tokens (at most 16777216)"},
      {R"({"segments": {"a": 1e300}, "requests": ["a"]})", "segment \"a\" has 1e+300 tokens (at most"},
      // requests
      {R"({"segments": {"a": 1}, "requests": ["a", 5]})", "request 1 must be \"a+b+c\" or an array of segment names"},
      {R"({"segments": {"a": 1}, "requests": [["a", 3]]})", "request 0 must list segment names"},
      {R"({"segments": {"a": 1}, "requests": [[]]})", "request 0 is empty"},
      {R"({"segments": {"a": 1}, "requests": ["a+zz"]})", "request 0 names unknown segment \"zz\""},
      {R"({"segments": {"a": 1}, "requests": ["a", "a+"]})", "request 1 names unknown segment \"\""},
      {R"({"segments": {"a": 16777216, "b": 1}, "requests": ["a+b"]})", "request 0 has 16777217 tokens"},
      {many, "too many requests (65537; at most 65536)"},
      // shape keys
      {with(R"(, "heads": 32)"), "f.json: \"heads\" must be a string"},
      {with(R"(, "dtype": 16)"), "f.json: \"dtype\" must be a string"},
      {with(R"(, "head_dim": "128")"), "f.json: \"head_dim\" must be an integer"},
      {with(R"(, "page": 16.5)"), "f.json: \"page\" must be an integer"},
      {with(R"(, "page": 1e300)"), "f.json: \"page\" must be an integer"},
  };
  for (const Case& c : cases) {
    CAPTURE(c.text.substr(0, 120));
    require_error([&] { parse_json(c.text); }, c.needle);
  }
  // Shape keys are type-checked only when the caller reads them; their values are checked by
  // Shape::validate() like every other source of a shape.
  CHECK(parse_workload_json(with(R"(, "heads": 32)"), "f.json").num_requests() == 1);
}

TEST_CASE("random_tree: determined by its seed, within its knobs") {
  const RandomTreeOptions opts;  // 24 requests, depth <= 4, segments <= 700 tokens, <= 3 roots
  std::set<std::vector<int64_t>> distinct;
  for (uint64_t seed = 1; seed <= 40; ++seed) {
    CAPTURE(seed);
    const TokenTree a = random_tree(seed, opts);
    const TokenTree b = random_tree(seed, opts);
    distinct.insert(same_tree_signature(a, b));

    CHECK(a.num_requests() == opts.requests);
    CHECK(a.depth() <= opts.max_depth);
    std::vector<int> children(a.segments.size(), 0);
    int roots = 0;
    for (size_t s = 0; s < a.segments.size(); ++s) {
      const Segment& seg = a.segments[s];
      CHECK(seg.tokens >= 1);
      CHECK(seg.tokens <= opts.max_segment);
      CHECK(seg.parent < static_cast<int>(s));  // parents come first
      if (seg.parent < 0) ++roots; else ++children[static_cast<size_t>(seg.parent)];
    }
    CHECK(roots >= 1);
    CHECK(roots <= opts.max_roots);
    // The requests are exactly the leaves.
    std::set<int> leaves;
    for (size_t s = 0; s < a.segments.size(); ++s)
      if (children[s] == 0) leaves.insert(static_cast<int>(s));
    CHECK(std::set<int>(a.request_ends.begin(), a.request_ends.end()) == leaves);
    CHECK(a.description == "random tree, seed " + std::to_string(seed));
  }
  CHECK(distinct.size() == 40);  // every seed gives another tree

  SECTION("knob corners") {
    RandomTreeOptions o;
    o.requests = 1;
    CHECK(random_tree(7, o).num_requests() == 1);
    o.requests = 9;
    o.max_depth = 1;  // every request its own root
    const TokenTree flat = random_tree(7, o);
    CHECK(flat.num_requests() == 9);
    CHECK(flat.depth() == 1);
    o.max_depth = 16;
    o.max_segment = 1;
    o.max_roots = 1;
    const TokenTree deep = random_tree(7, o);
    CHECK(deep.num_requests() == 9);
    for (const Segment& s : deep.segments) CHECK(s.tokens == 1);
  }
  SECTION("knobs out of range") {
    auto bad = [](std::function<void(RandomTreeOptions&)> set, const char* needle) {
      RandomTreeOptions o;
      set(o);
      require_error([&] { random_tree(1, o); }, needle);
    };
    bad([](RandomTreeOptions& o) { o.requests = 0; }, "--random-requests must be in [1, 65536]");
    bad([](RandomTreeOptions& o) { o.requests = kMaxRequests + 1; }, "--random-requests must be in [1, 65536]");
    bad([](RandomTreeOptions& o) { o.max_depth = 0; }, "--random-depth must be in [1, 16]");
    bad([](RandomTreeOptions& o) { o.max_depth = 17; }, "--random-depth must be in [1, 16]");
    bad([](RandomTreeOptions& o) { o.max_segment = 0; }, "--random-max-segment must be in [1, 1048576]");
    bad([](RandomTreeOptions& o) { o.max_segment = (1 << 20) + 1; }, "--random-max-segment must be in");
    bad([](RandomTreeOptions& o) { o.max_roots = 0; }, "at least one root");
  }
}

TEST_CASE("presets parse, validate and have their advertised sizes") {
  REQUIRE(presets().size() >= 8);
  CHECK(presets().front().name == "sysprompt");
  std::set<std::string> names;
  for (const Preset& p : presets()) {
    CAPTURE(p.name);
    CHECK(names.insert(p.name).second);
    CHECK(&find_preset(p.name) == &p);
    CHECK_NOTHROW(p.shape.validate());
    const TokenTree t = preset_tree(p);
    CHECK_NOTHROW(t.validate());
    CHECK(t.num_requests() >= 1);
    CHECK(t.description.rfind("preset " + p.name + " (", 0) == 0);
    CHECK_FALSE(p.summary.empty());
    CHECK(build_layout(t, p.shape, true, 1).num_requests() == t.num_requests());
  }
  const TokenTree sys = preset_tree(find_preset("sysprompt"));
  CHECK(sys.num_requests() == 64);
  CHECK(sys.request_tokens(0) == 4096 + 256);
  const TokenTree tiny = preset_tree(find_preset("tiny"));
  CHECK(tiny.num_requests() == 4);
  CHECK(tiny.request_tokens(3) == 137);
  CHECK(find_preset("tiny").shape.describe() == "8/2 heads, d=64, page 16, fp16");
  const TokenTree asym = preset_tree(find_preset("asymmetric"));
  REQUIRE(asym.num_requests() == 3);
  CHECK(asym.request_tokens(0) == 1733);
  CHECK(asym.request_tokens(1) == 1745);
  CHECK(asym.request_tokens(2) == 1129);
  require_error([] { find_preset("nope"); }, "unknown preset 'nope' (known: sysprompt, ");
  require_error([] { find_preset(""); }, "tiny");
}

TEST_CASE("Shape::validate names the first unsupported value") {
  Shape s;
  CHECK_NOTHROW(s.validate());
  CHECK(s.describe() == "32/8 heads, d=128, page 16, fp16");
  CHECK(s.group() == 4);
  CHECK(s.kv_bytes_per_token() == 2 * 8 * 128 * 2);
  for (int g : kSupportedGroupSizes)
    for (int d : kSupportedHeadDims)
      for (int page : kSupportedPageSizes) {
        Shape ok;
        ok.num_kv_heads = 2;
        ok.num_q_heads = 2 * g;
        ok.head_dim = d;
        ok.page_size = page;
        ok.dtype = DType::bf16;
        CAPTURE(ok.describe());
        CHECK_NOTHROW(ok.validate());
      }
  auto bad = [](std::function<void(Shape&)> set, const std::string& needle) {
    Shape sh;
    set(sh);
    require_error([&] { sh.validate(); }, needle);
  };
  bad([](Shape& x) { x.num_q_heads = 0; }, "head counts must be >= 1");
  bad([](Shape& x) { x.num_kv_heads = 0; }, "head counts must be >= 1");
  bad([](Shape& x) { x.num_kv_heads = 5; }, "query heads (32) must be a multiple of KV heads (5)");
  bad([](Shape& x) { x.num_kv_heads = 1; }, "unsupported group size 32 (query heads per KV head; supported: 1 to 16)");
  bad([](Shape& x) { x.num_q_heads = 136; }, "unsupported group size 17");
  bad([](Shape& x) { x.num_q_heads = x.num_kv_heads = 256; }, "at most 128 KV heads are supported");
  bad([](Shape& x) { x.head_dim = 96; }, "unsupported head dim 96 (supported: 64, 128, 256)");
  bad([](Shape& x) { x.head_dim = 0; }, "unsupported head dim 0");
  bad([](Shape& x) { x.page_size = 24; }, "unsupported page size 24 (supported: 16, 32, 64)");
  bad([](Shape& x) { x.page_size = 128; }, "unsupported page size 128");
  // The first fault is named: heads before head dim before page.
  bad([](Shape& x) { x.num_kv_heads = 5; x.head_dim = 96; x.page_size = 24; }, "multiple of KV heads");
  bad([](Shape& x) { x.head_dim = 96; x.page_size = 24; }, "head dim 96");
}

TEST_CASE("parse_heads and parse_dtype") {
  Shape s;
  parse_heads("16/16", s);
  CHECK(s.num_q_heads == 16);
  CHECK(s.num_kv_heads == 16);
  parse_heads("1024/64", s);
  CHECK(s.num_q_heads == 1024);
  CHECK(s.num_kv_heads == 64);
  parse_heads("32/5", s);  // parsed; validate() rejects it
  CHECK(s.num_kv_heads == 5);
  const char* bad[] = {"", "32", "32/8/2", "a/8", "32/", "/8", "0/8", "32/0", "2000/8", "-32/8", " 32/8", "32 / 8",
                       "32/8x", "3.5/1"};
  for (const char* text : bad) {
    CAPTURE(text);
    Shape t;
    require_error([&] { parse_heads(text, t); }, "malformed heads '" + std::string(text) + "' (expected HQ/HKV");
    CHECK(t.num_q_heads == 32);  // unchanged on error
    CHECK(t.num_kv_heads == 8);
  }
  CHECK(parse_dtype("fp16") == DType::fp16);
  CHECK(parse_dtype("half") == DType::fp16);
  CHECK(parse_dtype("bf16") == DType::bf16);
  CHECK(parse_dtype("bfloat16") == DType::bf16);
  CHECK(std::string(dtype_name(DType::bf16)) == "bf16");
  require_error([] { parse_dtype("fp8"); }, "unsupported dtype 'fp8' for q (fp8 is a KV cache type: --kv-dtype fp8)");
  require_error([] { parse_dtype("int8"); }, "unsupported dtype 'int8' (expected fp16 or bf16)");
  CHECK(parse_kv_dtype("auto") == KvDType::same);
  CHECK(parse_kv_dtype("fp8") == KvDType::fp8_e4m3);
  CHECK(parse_kv_dtype("fp8_e4m3") == KvDType::fp8_e4m3);
  require_error([] { parse_kv_dtype("fp8_e5m2"); }, "unsupported KV cache dtype 'fp8_e5m2' (expected auto, fp8 or fp8_e4m3)");
  require_error([] { parse_kv_dtype("fp16"); }, "unsupported KV cache dtype 'fp16'");
  require_error([] { parse_dtype("FP16"); }, "unsupported dtype 'FP16'");
}

TEST_CASE("TokenTree: per-segment ends and levels in one pass; the structure is validated") {
  const TokenTree t = parse_workload_json(
      R"({"segments": {"sys": 100, "doc": 40, "u1": 3, "u2": 5}, "requests": ["sys+doc+u1", "sys+u2", "sys+doc"]})",
      "t");
  const std::vector<int64_t> end = t.segment_ends();
  const std::vector<int> level = t.segment_levels();
  for (int r = 0; r < t.num_requests(); ++r) {
    const int last = t.request_ends[static_cast<size_t>(r)];
    CHECK(end[static_cast<size_t>(last)] == t.request_tokens(r));
    CHECK(level[static_cast<size_t>(last)] == static_cast<int>(t.path(r).size()));
  }
  CHECK(t.depth() == 3);
  TokenTree bad = t;
  bad.segments[0].parent = 2;  // a parent listed after its child (and a cycle)
  require_error([&] { bad.validate(); }, "a parent must be listed before its children");
  bad = t;
  bad.request_ends.push_back(99);
  require_error([&] { bad.validate(); }, "a request ends at segment 99 of 4");
}

TEST_CASE("TokenTree::validate") {
  TokenTree t;
  require_error([&] { t.validate(); }, "the workload has no requests");
  t.segments.push_back({"x", 0, -1});
  t.request_ends.push_back(0);
  require_error([&] { t.validate(); }, "segment 'x' has 0 tokens (must be >= 1)");
  t.segments[0].tokens = 5;
  CHECK_NOTHROW(t.validate());
}
