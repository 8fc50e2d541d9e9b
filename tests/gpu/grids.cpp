// The grids of cases the GPU tests check every stage on. Host code only: the CPU test
// tests/cpu/test_gpu_grids.cpp checks that they cover what harness.hpp says.
#include <string>
#include <utility>
#include <vector>

#include "harness.hpp"
#include "patlab/model/kv_cache.hpp"
#include "patlab/model/workload.hpp"

namespace patlab::test {

namespace {

std::string data_name(DataKind data) { return data == DataKind::peaked ? "peaked" : "flat"; }

std::string shape_name(const Shape& s) {
  return std::string(dtype_name(s.dtype)) + (s.kv_fp8() ? " kv fp8" : "") + " d" + std::to_string(s.head_dim) +
         " g" + std::to_string(s.group()) + " hkv" + std::to_string(s.num_kv_heads) + " page" +
         std::to_string(s.page_size);
}

/// `s` with an fp8 e4m3 KV cache.
Shape with_fp8_kv(Shape s) {
  s.kv_dtype = KvDType::fp8_e4m3;
  return s;
}

/// Cases under construction: every new shape takes the next KV head count of kGridKvHeads (the
/// group stays), every case the next seed.
class Grid {
 public:
  explicit Grid(uint64_t seed) : seed_(seed) {}

  /// The next shape: `group` query heads per KV head, the KV heads from the cycle.
  Shape shape(DType dtype, int head_dim, int group, int page) {
    constexpr size_t kCycle = sizeof(kGridKvHeads) / sizeof(kGridKvHeads[0]);
    Shape s;
    s.num_kv_heads = kGridKvHeads[shapes_++ % kCycle];
    s.num_q_heads = s.num_kv_heads * group;
    s.head_dim = head_dim;
    s.page_size = page;
    s.dtype = dtype;
    return s;
  }

  /// Adds `tree` on `shape` with `data`.
  void add(const std::string& name, const TokenTree& tree, const Shape& shape, DataKind data = DataKind::flat) {
    Case c;
    c.name = name + ", " + shape_name(shape) + ", " + data_name(data);
    if (max_kv_tile_ > 0) c.name += ", KV tile <= " + std::to_string(max_kv_tile_);
    c.tree = tree;
    c.shape = shape;
    c.seed = seed_ + cases_.size();
    c.data = data;
    c.max_kv_tile = max_kv_tile_;
    cases_.push_back(std::move(c));
  }

  /// Adds `tree` on `shape` twice: flat data, then peaked.
  void add_flat_and_peaked(const std::string& name, const TokenTree& tree, const Shape& shape) {
    add(name, tree, shape, DataKind::flat);
    add(name, tree, shape, DataKind::peaked);
  }

  /// The KV tile cap of the cases added from now on.
  void set_max_kv_tile(int tokens) { max_kv_tile_ = tokens; }
  size_t size() const { return cases_.size(); }
  std::vector<Case> take() { return std::move(cases_); }

 private:
  uint64_t seed_;
  size_t shapes_ = 0;
  int max_kv_tile_ = 0;
  std::vector<Case> cases_;
};

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

/// Asymmetric small tree: queries of one pack with different split counts.
TokenTree asymmetric_tree() {
  return parse_workload_json(R"({"segments": {"sys": 1000, "docA": 700, "u1": 33, "u2": 45, "u3": 129},
                                 "requests": ["sys+docA+u1", "sys+docA+u2", "sys+u3"]})",
                             "asymmetric");
}

/// No sharing, mixed lengths: requests land in different tile buckets.
TokenTree mixed_tree() {
  return parse_workload_json("{\"segments\": {\"a\": 3, \"b\": 20, \"c\": 47, \"d\": 100, \"e\": 200, \"f\": 1500, "
                             "\"g\": 4097}, \"requests\": [\"a\", \"b\", \"c\", \"d\", \"e\", \"f\", \"g\"]}",
                             "mixed");
}

/// 64 requests on a 4096-token prefix, 8 of them also sharing a 640-token middle prefix.
TokenTree middle_prefix_tree() {
  std::string json = R"({"segments": {"p": 4096, "mid": 640)";
  std::string reqs;
  for (int i = 0; i < 64; ++i) {
    json += ", \"u" + std::to_string(i) + "\": " + std::to_string(17 + 13 * i);
    reqs += std::string(i ? ", " : "") + "\"p+" + (i < 8 ? "mid+" : "") + "u" + std::to_string(i) + "\"";
  }
  json += "}, \"requests\": [" + reqs + "]}";
  return parse_workload_json(json, "middle prefix");
}

/// A random tree of `requests` requests, at most `depth` segments deep and `max_segment` tokens a segment.
TokenTree random_tree_of(uint64_t seed, int requests, int depth, int max_segment) {
  RandomTreeOptions o;
  o.requests = requests;
  o.max_depth = depth;
  o.max_segment = max_segment;
  return random_tree(seed, o);
}

}  // namespace

const std::vector<int64_t>& boundary_lengths() {
  static const std::vector<int64_t> lengths = {1, 15, 16, 17, 31, 33, 63, 65, 127, 129, 1000, 4097};
  return lengths;
}

std::vector<Case> boundary_grid(uint64_t seed) {
  Grid grid(seed);
  const TokenTree tree = boundary_tree();
  for (DType dt : {DType::fp16, DType::bf16})
    for (int d : {64, 128})
      for (int g : {1, 2, 4, 8, 16})
        for (int page : {16, 32, 64}) {
          const Shape s = grid.shape(dt, d, g, page);
          if (page == 16)
            grid.add_flat_and_peaked("boundary lengths", tree, s);
          else
            grid.add("boundary lengths", tree, s);
        }
  return grid.take();
}

std::vector<Case> tree_grid(uint64_t seed) {
  Grid grid(seed);
  const TokenTree asym = asymmetric_tree(), mixed = mixed_tree(), middle = middle_prefix_tree();
  for (DType dt : {DType::fp16, DType::bf16})
    for (int d : {64, 128})
      for (int g : {1, 2, 4, 8}) {
        grid.add("asymmetric 3-request tree", asym, grid.shape(dt, d, g, 16));
        grid.add("no sharing, mixed lengths", mixed, grid.shape(dt, d, g, 16));
        grid.add_flat_and_peaked("random tree", random_tree_of(seed + grid.size(), 12, 4, 300), grid.shape(dt, d, g, 16));
      }
  for (DType dt : {DType::fp16, DType::bf16}) {
    grid.add_flat_and_peaked("64 requests, 4096 prefix, 8 share a 640 middle", middle, grid.shape(dt, 128, 4, 16));
    grid.add_flat_and_peaked("deep tree 1,2,4,8,16_64,48,40,33,17", parse_tree_spec("1,2,4,8,16_64,48,40,33,17"),
                             grid.shape(dt, 128, 4, 16));
    grid.add_flat_and_peaked("multi-root tree 4,8,32_300,200,45", parse_tree_spec("4,8,32_300,200,45"),
                             grid.shape(dt, 128, 4, 16));
    grid.add_flat_and_peaked("many queries on one prefix 1,80_900,7", parse_tree_spec("1,80_900,7"),
                             grid.shape(dt, 64, 1, 32));
    grid.add_flat_and_peaked("group 16, 1,12_700,50", parse_tree_spec("1,12_700,50"), grid.shape(dt, 128, 16, 64));
    // More CTAs than the GPU holds at once: stage 3 takes its no-split path.
    grid.add_flat_and_peaked("many short requests 700_23", parse_tree_spec("700_23"), grid.shape(dt, 64, 1, 16));
  }
  const int groups[] = {1, 2, 4, 8};
  for (uint64_t k = 0; k < 6; ++k)
    grid.add_flat_and_peaked("random deep tree", random_tree_of(seed * 31 + k, 40, 5, 900),
                             grid.shape(k % 2 ? DType::bf16 : DType::fp16, k % 3 ? 128 : 64, groups[k % 4],
                                        k % 3 == 2 ? 32 : 16));
  return grid.take();
}

std::vector<Case> with_leaf_tails(std::vector<Case> cases) {
  for (Case& c : cases) {
    c.name += ", leaf tails";
    c.take_leaves = true;
    // Every tail the rules allow, in packs of up to stage 8's tallest tiles, however few: the
    // grids reach each tails instance (the defaults' row cap and CTA gate would leave some out).
    c.leaf_tail_rows = kHopperMaxRows;
    c.leaf_tail_min_cut = 0;
  }
  return cases;
}

std::vector<Case> leaf_tails_grid(uint64_t seed) {
  Grid grid(seed);
  // Eight queries over a 64-token range with leaves of 32 tokens (whole pages at page 16 and 32:
  // eight tails a pack) or 20 (a partial page each: one tail a pack, the others stay packs);
  // three levels with leaves of 13 tokens; a leaf of 65 tokens (too long) beside leaves of 1, 40
  // and 64.
  const TokenTree eight = parse_tree_spec("1,8_64,32"), partial = parse_tree_spec("1,8_64,20"),
                  deep = parse_tree_spec("1,4,16_64,32,13");
  const TokenTree mixed = parse_workload_json(
      R"({"segments": {"p": 96, "a": 65, "b": 1, "c": 40, "d": 64}, "requests": ["p+a", "p+b", "p+c", "p+d", "p"]})",
      "leaves of 65, 1, 40 and 64 tokens");
  int combo = 0;
  for (DType dt : {DType::fp16, DType::bf16})
    for (int d : {64, 128})
      for (int g : {1, 4, 8}) {
        const int page = combo++ % 2 ? 32 : 16;
        grid.add_flat_and_peaked("eight leaves 1,8_64,32", eight, grid.shape(dt, d, g, page));
        grid.add("eight partial leaves 1,8_64,20", partial, grid.shape(dt, d, g, page));
        grid.add("three levels 1,4,16_64,32,13", deep, grid.shape(dt, d, g, page));
        grid.add("mixed leaves", mixed, grid.shape(dt, d, g, 16), DataKind::peaked);
      }
  // Stage 8's wgmma kernel's tails instances: 128- and 192-row packs over a 2048-token prefix (its
  // wide_kv), 32-token leaves; 64-row packs over the 512 tokens above the 1024-leaf tree's leaves
  // (too few CTAs to cut them below its min_kv), one case per dtype.
  for (DType dt : {DType::fp16, DType::bf16})
    for (int d : {64, 128}) {
      grid.add("128-row wgmma packs 1,32_2048,32", parse_tree_spec("1,32_2048,32"), grid.shape(dt, d, 4, 16),
               DataKind::peaked);
      grid.add("192-row wgmma packs 1,24_2048,32", parse_tree_spec("1,24_2048,32"), grid.shape(dt, d, 8, 32));
    }
  const TokenTree leaves1024 = parse_tree_spec("1,16,32,64,128,1024_256,128,64,32,32,32");
  grid.add("64-row wgmma packs, 1024 leaves", leaves1024, grid.shape(DType::fp16, 64, 8, 16));
  grid.add("64-row wgmma packs, 1024 leaves", leaves1024, grid.shape(DType::bf16, 128, 8, 16), DataKind::peaked);
  grid.add_flat_and_peaked("random tree", random_tree_of(seed + 17, 40, 4, 60), grid.shape(DType::fp16, 128, 4, 16));
  std::vector<Case> cases = grid.take();
  return with_leaf_tails(std::move(cases));
}

std::vector<Case> tall_grid(uint64_t seed) {
  Grid grid(seed);
  const int pages[] = {16, 32, 64};
  int combo = 0;
  for (DType dt : {DType::fp16, DType::bf16})
    for (int d : {64, 128})
      for (int g : {3, 8, 16}) {
        const Shape s = grid.shape(dt, d, g, pages[combo % 3]);
        // 192 / g requests fill one 192-row pack; 300 / g requests (288-300 rows) take two packs of
        // up to 192 rows where 128-row ones would take three: a 192-row pack and a smaller one.
        const int full = kHopperTileRows[2] / g, over = 300 / g;
        const std::string odd = std::to_string(1000 + 37 * combo);
        grid.add("one 192-row pack 1," + std::to_string(full) + "_" + odd + ",29",
                 parse_tree_spec("1," + std::to_string(full) + "_" + odd + ",29"), s,
                 combo % 2 ? DataKind::peaked : DataKind::flat);
        grid.add("a 192-row pack and a smaller one 1," + std::to_string(over) + "_" + odd + ",130",
                 parse_tree_spec("1," + std::to_string(over) + "_" + odd + ",130"), s,
                 combo % 2 ? DataKind::flat : DataKind::peaked);
        ++combo;
      }
  grid.add_flat_and_peaked("random tree of 40 requests", random_tree_of(seed + 3, 40, 3, 1500),
                           grid.shape(DType::fp16, 128, 8, 16));
  return grid.take();
}

std::vector<Case> stress_grid(uint64_t seed) {
  Grid grid(seed);
  for (DType dt : {DType::fp16, DType::bf16}) {
    // 256 queries on a 4096-token prefix: at group 4 eight 128-row slices per KV range piece.
    grid.add_flat_and_peaked("huge prefix among tiny suffixes 1,256_4096,3", parse_tree_spec("1,256_4096,3"),
                             grid.shape(dt, 128, 4, 16));
    // 128 queries at group 8 on a 3000-token prefix (eight slices), 64 on each 200-token middle (four).
    grid.add_flat_and_peaked("two levels 1,2,128_3000,200,5", parse_tree_spec("1,2,128_3000,200,5"),
                             grid.shape(dt, 64, 8, 16));
    grid.add_flat_and_peaked("many short, a few long 4,300_1500,17", parse_tree_spec("4,300_1500,17"),
                             grid.shape(dt, 128, 2, 32));
  }
  return grid.take();
}

std::vector<Case> tile128_grid(uint64_t seed) {
  Grid grid(seed);
  grid.set_max_kv_tile(kLargeKvTile);
  const TokenTree boundary = boundary_tree(), asym = asymmetric_tree();
  const int pages[] = {16, 32, 64};
  int combo = 0;
  for (DType dt : {DType::fp16, DType::bf16})
    for (int d : {64, 128})
      for (int g : {1, 2, 8}) {
        const DataKind data = combo % 2 ? DataKind::peaked : DataKind::flat;
        grid.add("boundary lengths", boundary, grid.shape(dt, d, g, pages[combo % 3]), data);
        grid.add("asymmetric 3-request tree", asym, grid.shape(dt, d, g, 16), data);
        grid.add("random deep tree", random_tree_of(seed + grid.size(), 24, 4, 900), grid.shape(dt, d, g, 16),
                 combo % 2 ? DataKind::flat : DataKind::peaked);
        ++combo;
      }
  return grid.take();
}

namespace {

/// The fp8 KV cache sub-grid of shapes_grid(): the boundary batch for both q dtypes, every head
/// dim and groups 1, 3 and 8 (pages cycling, every third also on peaked data); trees (asymmetric, random, a middle
/// prefix) for both dtypes; and two cases under the KV tile cap of 128.
void add_fp8_cases(Grid& grid, uint64_t seed) {
  const TokenTree boundary = boundary_tree(), asym = asymmetric_tree(), middle = middle_prefix_tree();
  const int pages[] = {16, 32, 64};
  grid.set_max_kv_tile(0);
  int combo = 0;
  for (DType dt : {DType::fp16, DType::bf16})
    for (int d : {64, 128, kLargeHeadDim})
      for (int g : {1, 3, 8}) {
        const Shape s = with_fp8_kv(grid.shape(dt, d, g, pages[combo % 3]));
        if (combo % 3 == 0)
          grid.add_flat_and_peaked("fp8 KV, boundary lengths", boundary, s);
        else
          grid.add("fp8 KV, boundary lengths", boundary, s);
        ++combo;
      }
  for (DType dt : {DType::fp16, DType::bf16}) {
    grid.add("fp8 KV, asymmetric 3-request tree", asym, with_fp8_kv(grid.shape(dt, 128, 4, 16)));
    grid.add_flat_and_peaked("fp8 KV, random tree", random_tree_of(seed * 7 + grid.size(), 12, 4, 300),
                             with_fp8_kv(grid.shape(dt, 64, 8, 16)));
    grid.add("fp8 KV, 64 requests, 4096 prefix, 8 share a 640 middle", middle, with_fp8_kv(grid.shape(dt, 128, 8, 16)));
  }
  grid.set_max_kv_tile(kLargeKvTile);
  grid.add("fp8 KV, random deep tree", random_tree_of(seed * 13 + grid.size(), 24, 4, 900),
           with_fp8_kv(grid.shape(DType::fp16, 128, 2, 16)));
  grid.add("fp8 KV, boundary lengths", boundary, with_fp8_kv(grid.shape(DType::bf16, kLargeHeadDim, 16, 16)));
}

}  // namespace

std::vector<Case> shapes_grid(uint64_t seed) {
  Grid grid(seed);
  const TokenTree boundary = boundary_tree(), asym = asymmetric_tree(), middle = middle_prefix_tree();
  const int pages[] = {16, 32, 64};
  // d=256 at every group of the sub-grid: boundary lengths, pages and dtypes cycling.
  int combo = 0;
  for (int g : kShapeGridGroups) {
    const DType dt = combo % 2 ? DType::bf16 : DType::fp16;
    const Shape s = grid.shape(dt, kLargeHeadDim, g, pages[combo % 3]);
    if (combo % 3 == 0)
      grid.add_flat_and_peaked("boundary lengths", boundary, s);
    else
      grid.add("boundary lengths", boundary, s);
    ++combo;
  }
  // The groups of real models that are not powers of two, at d 64 and 128.
  for (int g : kShapeGridGroups) {
    if ((g & (g - 1)) == 0) continue;
    for (int d : {64, 128}) {
      grid.add("boundary lengths", boundary, grid.shape(combo % 2 ? DType::bf16 : DType::fp16, d, g, 16));
      ++combo;
    }
  }
  // Full packs of floor(64 / g) queries: 63 rows at group 7, 60 at groups 5, 6 and 12.
  for (int g : {5, 7, 12}) {
    const int d = g == 5 ? kLargeHeadDim : (g == 7 ? 128 : 64);
    grid.add_flat_and_peaked("64 requests, 4096 prefix, 8 share a 640 middle", middle,
                             grid.shape(g == 7 ? DType::bf16 : DType::fp16, d, g, 16));
  }
  // The planner's torture cases at d=256 and odd groups.
  for (int g : {1, 3, 6, 16}) {
    grid.add("asymmetric 3-request tree", asym, grid.shape(DType::bf16, kLargeHeadDim, g, 16));
    grid.add_flat_and_peaked("random tree", random_tree_of(seed + grid.size(), 12, 4, 300),
                             grid.shape(DType::fp16, kLargeHeadDim, g, 32));
  }
  // The KV tile cap at 128: the table asks for n = 128, which does not fit at d=256 (the
  // planner lowers it to 64); at d=128 the 64x128 tile runs with 8 warps.
  grid.set_max_kv_tile(kLargeKvTile);
  for (int g : {7, 16}) {
    grid.add("random deep tree", random_tree_of(seed * 31 + grid.size(), 24, 4, 900),
             grid.shape(DType::fp16, kLargeHeadDim, g, 16));
    grid.add("64 requests, 4096 prefix, 8 share a 640 middle", middle, grid.shape(DType::bf16, 128, g == 7 ? 1 : 2, 16));
  }
  add_fp8_cases(grid, seed);
  return grid.take();
}

}  // namespace patlab::test
