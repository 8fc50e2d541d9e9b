#include "harness.hpp"

#include <cstdio>

#include "../catch.hpp"
#include "patlab/check.hpp"
#include "patlab/gpu.hpp"
#include "patlab/kv_cache.hpp"
#include "patlab/oracle.hpp"

namespace patlab::test {

namespace {

/// Shape with `group` query heads per KV head and two KV heads.
Shape make_shape(DType dtype, int head_dim, int group, int page) {
  Shape s;
  s.num_kv_heads = 2;
  s.num_q_heads = 2 * group;
  s.head_dim = head_dim;
  s.page_size = page;
  s.dtype = dtype;
  return s;
}

/// A request per boundary length alone, plus a 1000-token prefix shared by requests whose own
/// parts have the short boundary lengths.
TokenTree boundary_tree() {
  TokenTree t;
  t.description = "boundary lengths";
  for (int64_t len : boundary_lengths()) {
    t.segments.push_back({"own" + std::to_string(len), len, -1});
    t.request_ends.push_back(static_cast<int>(t.segments.size()) - 1);
  }
  t.segments.push_back({"prefix", 1000, -1});
  const int prefix = static_cast<int>(t.segments.size()) - 1;
  for (int64_t len : {1, 15, 16, 17, 127, 129}) {
    t.segments.push_back({"after" + std::to_string(len), len, prefix});
    t.request_ends.push_back(static_cast<int>(t.segments.size()) - 1);
  }
  return t;
}

std::string shape_name(const Shape& s) {
  return std::string(dtype_name(s.dtype)) + " d" + std::to_string(s.head_dim) + " g" + std::to_string(s.group()) +
         " page" + std::to_string(s.page_size);
}

}  // namespace

const std::vector<int64_t>& boundary_lengths() {
  static const std::vector<int64_t> lengths = {1, 15, 16, 17, 31, 33, 63, 65, 127, 129, 1000, 4097};
  return lengths;
}

std::vector<Case> boundary_grid(uint64_t seed) {
  std::vector<Case> cases;
  for (DType dt : {DType::fp16, DType::bf16})
    for (int d : {64, 128})
      for (int g : {1, 2, 4, 8, 16})
        for (int page : {16, 32, 64}) {
          Case c;
          c.shape = make_shape(dt, d, g, page);
          c.tree = boundary_tree();
          c.seed = seed + cases.size();
          c.name = "boundary lengths, " + shape_name(c.shape);
          cases.push_back(c);
        }
  return cases;
}

std::vector<Case> tree_grid(uint64_t seed) {
  std::vector<Case> cases;
  auto add = [&](const std::string& name, TokenTree tree, const Shape& shape) {
    cases.push_back({name + ", " + shape_name(shape), std::move(tree), shape, seed + cases.size()});
  };
  // Asymmetric small trees: queries of one pack with different split counts.
  const char* asym = R"({"segments": {"sys": 1000, "docA": 700, "u1": 33, "u2": 45, "u3": 129},
                         "requests": ["sys+docA+u1", "sys+docA+u2", "sys+u3"]})";
  // 64 requests on a 4096-token prefix, 8 of them also sharing a 640-token middle prefix.
  std::string mid = R"({"segments": {"p": 4096, "mid": 640)";
  std::string reqs;
  for (int i = 0; i < 64; ++i) {
    mid += ", \"u" + std::to_string(i) + "\": " + std::to_string(17 + 13 * i);
    reqs += std::string(i ? ", " : "") + "\"p+" + (i < 8 ? "mid+" : "") + "u" + std::to_string(i) + "\"";
  }
  mid += "}, \"requests\": [" + reqs + "]}";
  // No sharing, mixed lengths: requests land in different tile buckets.
  const std::string mixed = "{\"segments\": {\"a\": 3, \"b\": 20, \"c\": 47, \"d\": 100, \"e\": 200, \"f\": 1500, \"g\": 4097},"
                            " \"requests\": [\"a\", \"b\", \"c\", \"d\", \"e\", \"f\", \"g\"]}";
  for (DType dt : {DType::fp16, DType::bf16})
    for (int d : {64, 128})
      for (int g : {1, 2, 4, 8}) {
        const Shape s = make_shape(dt, d, g, 16);
        add("asymmetric 3-request tree", parse_workload_json(asym, "asymmetric"), s);
        add("no sharing, mixed lengths", parse_workload_json(mixed, "mixed"), s);
        RandomTreeOptions o;
        o.requests = 12;
        o.max_segment = 300;
        add("random tree", random_tree(seed + cases.size(), o), s);
      }
  for (DType dt : {DType::fp16, DType::bf16}) {
    const Shape s = make_shape(dt, 128, 4, 16);
    add("64 requests, 4096 prefix, 8 share a 640 middle", parse_workload_json(mid, "middle prefix"), s);
    add("deep tree 1,2,4,8,16_64,48,40,33,17", parse_tree_spec("1,2,4,8,16_64,48,40,33,17"), s);
    add("multi-root tree 4,8,32_300,200,45", parse_tree_spec("4,8,32_300,200,45"), s);
    add("many queries on one prefix 1,80_900,7", parse_tree_spec("1,80_900,7"), make_shape(dt, 64, 1, 32));
    add("group 16, 1,12_700,50", parse_tree_spec("1,12_700,50"), make_shape(dt, 128, 16, 64));
    // More CTAs than the GPU holds at once: stage 3 takes its no-split path.
    add("many short requests 700_23", parse_tree_spec("700_23"), make_shape(dt, 64, 1, 16));
  }
  for (uint64_t k = 0; k < 6; ++k) {
    RandomTreeOptions o;
    o.requests = 40;
    o.max_depth = 5;
    o.max_segment = 900;
    const int groups[] = {1, 2, 4, 8};
    add("random deep tree", random_tree(seed * 31 + k, o),
        make_shape(k % 2 ? DType::bf16 : DType::fp16, k % 3 ? 128 : 64, groups[k % 4], k % 3 == 2 ? 32 : 16));
  }
  return cases;
}

void check_stage(const std::string& slug, const std::vector<Case>& cases) {
  int passed = 0;
  for (const Case& c : cases) {
    INFO("stage " << slug << ", case: " << c.name << ", seed " << c.seed);
    const Workload w = make_workload(c.tree, c.shape, c.seed, true);
    const AttentionResult oracle = naive_attention(w);
    const double emulated = l2_error(emulated_attention(w), oracle);
    gpu::Runner runner(w);
    const std::string why = runner.unsupported(slug);
    INFO("unsupported: " << why);
    REQUIRE(why.empty());
    runner.prepare(slug);
    const std::vector<uint16_t> first = runner.run_once(slug);
    const CheckResult result = check_output(decode(first, c.shape.dtype), oracle, c.shape.dtype, emulated);
    INFO(result.summary() << " (worst element " << result.worst << ")");
    CHECK(result.pass);
    // Deterministic kernels give the same bits every run; anything else is a race.
    const std::vector<uint16_t> second = runner.run_once(slug);
    CHECK(first == second);
    if (result.pass && first == second) ++passed;
    std::printf("%-8s %-70s %s\n", slug.c_str(), c.name.c_str(), result.summary().c_str());
  }
  std::printf("%s: %d of %zu cases passed\n", slug.c_str(), passed, cases.size());
  REQUIRE(passed == static_cast<int>(cases.size()));
}

}  // namespace patlab::test
