// Sparse decode on the GPU (issue 17) against the float64 sparse oracle: the GPU's selection
// against the CPU's (identical, or within sparse_check.hpp's tie rule), then every method's
// outputs (the gated sum and the selected branch alone), NaN-poisoned before each run: nsa (top-n
// in NSA's loop order, and split into chunks as patlab sparse also times it), fsa (top-n in FSA's,
// by spans: with the span length the device's SM count gives, which on these small cases is
// mostly 1 block; with 1-block spans; with the longest spans, gpu::kMaxSpanBlocks, so that spans
// hold blocks that only some of their rows chose, and requests past a row tile split a span into
// several packs; and with 16-row packs), psa (the progressive budget in NSA's order split
// into balanced chunks, and in FSA's order, whose rows then choose uneven numbers of blocks).
// Shapes cross page and selection-block boundaries (odd lengths, requests shorter than one
// compressed block or the window), groups 1, 3, 4, 7 and 8, d 64 and 128 (and 256 once), fp16
// and bf16, shared-prefix trees; seeds are fixed and printed. Exits 77 (skipped) without a device.
#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

#include "../catch.hpp"
#include "../test_util.hpp"
#include "patlab/cuda/sparse.hpp"
#include "patlab/sparse/sparse_check.hpp"
#include "patlab/sparse/sparse_oracle.hpp"

namespace {

using namespace patlab;

/// The first seed; case i uses kSeed + i.
constexpr uint64_t kSeed = 20261202;

/// One case of the grid.
struct Case {
  const char* tree;
  int hq, hkv, d, page;
  DType dtype;
  DataKind data;
  int sel_block;
};

/// The grid: groups 1, 3, 4, 7, 8; d 64, 128, 256; pages 16 and 32; l' 32 and 64.
const std::vector<Case>& cases() {
  static const std::vector<Case> c = {
      {"1,4_300,100", 8, 2, 64, 16, DType::fp16, DataKind::peaked, 64},        // group 4
      {"1,4_300,100", 8, 2, 64, 16, DType::bf16, DataKind::flat, 64},
      {"1,3_517,61", 3, 1, 128, 16, DType::fp16, DataKind::peaked, 64},        // group 3, odd lengths
      {"2,6_200,130", 7, 1, 64, 16, DType::bf16, DataKind::peaked, 32},        // group 7, two prefixes, l' 32
      {"1,5_1000,37", 8, 8, 128, 16, DType::fp16, DataKind::flat, 64},         // group 1
      {"1,2,8_640,96,15", 16, 2, 128, 32, DType::fp16, DataKind::peaked, 64},  // group 8, three levels, page 32
      {"1,2,8_640,96,15", 16, 2, 64, 16, DType::bf16, DataKind::peaked, 64},
      {"1,9_20,1", 4, 1, 64, 16, DType::fp16, DataKind::flat, 32},             // requests shorter than l
      {"1,3_777,333", 12, 4, 256, 16, DType::bf16, DataKind::peaked, 64},      // group 3, d 256
      {"1,16_2048,64", 32, 4, 128, 16, DType::fp16, DataKind::peaked, 64},     // group 8, 16 requests on a prefix
      // FSA's spans: many requests on one prefix, so that spans mix rows and split into row tiles
      {"1,40_1500,77", 8, 8, 128, 16, DType::fp16, DataKind::peaked, 64},      // group 1, 40 requests, odd
      {"1,20_1024,200", 21, 3, 64, 16, DType::bf16, DataKind::peaked, 64},     // group 7: 9 requests a tile
      {"1,12_2000,150", 12, 4, 128, 16, DType::fp16, DataKind::flat, 32},      // group 3, l' 32
      {"2,10_900,333", 16, 4, 64, 32, DType::bf16, DataKind::peaked, 64},      // group 4, two prefixes
  };
  return c;
}

/// NSA's parameters, scaled to the small cases: every request clamps what it must.
sparse::SparseOptions options_for(const Case& c, sparse::Budget budget) {
  sparse::SparseOptions o;
  o.sel_block = c.sel_block;
  o.top_n = 6;
  o.window = 128;
  o.gate_cmp = 0.25;
  o.gate_sel = 0.5;
  o.gate_win = 0.25;
  o.budget = budget;
  o.tau = 0.8;
  o.min_budget = 3;
  o.max_budget = 12;
  o.clamp = true;
  return o;
}

/// Runs the GPU orders of one budget on case `i` and checks them against the oracle; FSA's order
/// eleven times: automatic spans (sparse::plan_fsa_spans()) and KV tiles, one block per span (the
/// most partials per request), the longest spans (gpu::kMaxSpanBlocks), 16-row packs (--span-rows
/// 16), packs of up to 64 rows (--span-rows 64), the three-stage ring (--span-stages 3), fp32
/// partials (--fp32-partials, 16-bit in the others), and 32- and 64-token KV tiles
/// (--span-kv-tile) each with automatic and 64-row packs; the split with 16-bit and fp32 partials.
void check_case(size_t i, sparse::Budget budget, const std::vector<gpu::SparseOrder>& orders) {
  const Case& c = cases()[i];
  const uint64_t seed = kSeed + i;
  const Shape shape = shape_of(c.hq, c.hkv, c.d, c.page, c.dtype);
  const sparse::SparseOptions o = options_for(c, budget);
  std::printf("case %zu: tree %s heads %d/%d d=%d page %d %s %s l'=%d, %s, seed %llu\n", i, c.tree, c.hq, c.hkv, c.d,
              c.page, c.dtype == DType::fp16 ? "fp16" : "bf16", data_kind_name(c.data), c.sel_block,
              sparse::budget_name(budget), static_cast<unsigned long long>(seed));
  INFO("case " << i << " tree " << c.tree << " seed " << seed << " budget " << sparse::budget_name(budget));
  const Workload w = make_workload(parse_tree_spec(c.tree), shape, seed, true, c.data);
  o.check_against(w.layout);
  const sparse::Selection cpu = sparse::select_blocks(w, o);
  gpu::SparseRunner runner(w, o);
  const sparse::Selection sel = runner.select();
  const sparse::SelectionAgreement agree = sparse::compare_selections(w, o, cpu, sel);
  INFO("selection: " << agree.summary());
  CHECK(agree.pass());
  // A second selection repeats the first bit for bit (every sum in a fixed order).
  CHECK(runner.select().blocks == sel.blocks);
  const sparse::SparseAttention ref = sparse::sparse_attention(w, o, sel);
  for (gpu::SparseOrder order : orders) {
    const bool half = traffic::kStagesHalfPartials;  // the default partials, beside the KV tiles
    const std::vector<gpu::SpanOptions> spans =
        order == gpu::SparseOrder::fsa
            ? std::vector<gpu::SpanOptions>{{0, 0, 0}, {1, 0, 0}, {gpu::kMaxSpanBlocks, 0, 0}, {0, 16, 0},
                                            {0, 64, 0}, {0, 0, kSpanKvStages}, {0, 0, 0, false},
                                            {0, 0, 0, half, kSpanNarrowKvTile}, {0, 64, 0, half, kSpanNarrowKvTile},
                                            {0, 0, 0, half, kSpanKvTile}, {0, 64, 0, half, kSpanKvTile}}
        : order == gpu::SparseOrder::split ? std::vector<gpu::SpanOptions>{{0, 0, 0}, {0, 0, 0, false}}
                                           : std::vector<gpu::SpanOptions>{{0, 0, 0}};
    for (const gpu::SpanOptions& span : spans) {
      INFO("order " << gpu::order_name(order) << " span blocks " << span.blocks << " rows " << span.rows << " stages "
                    << span.stages << (span.half_partials ? " 16-bit" : " fp32") << " partials, KV tile "
                    << span.kv_tile);
      runner.prepare(order, sel, span);
      const gpu::SparseOutputs out = runner.run_once(order);
      const double roundings = gpu::check_roundings(order, span);
      const CheckResult gated = sparse::check_sparse_output(w, out.out, ref.o, roundings);
      const CheckResult selected = sparse::check_sparse_output(w, out.selected, ref.selected.o, roundings);
      std::printf("  %s (span %d blocks, %d rows, %d stages, %s partials, KV tile %d): %s\n    gated %s; selected %s\n",
                  gpu::order_name(order), span.blocks, span.rows, span.stages, span.half_partials ? "16-bit" : "fp32",
                  span.kv_tile,
                  runner.notes(order).c_str(), gated.summary().c_str(), selected.summary().c_str());
      CHECK(gated.pass);
      CHECK(selected.pass);
      // the branch replayed from a CUDA graph writes the same bits
      CHECK(runner.run_selected_graph_once(order) == out.selected);
    }
  }
}

}  // namespace

TEST_CASE("sparse GPU: nsa, its split and fsa (top-n) against the oracle") {
  for (size_t i = 0; i < cases().size(); ++i)
    check_case(i, sparse::Budget::top_n, {gpu::SparseOrder::nsa, gpu::SparseOrder::split, gpu::SparseOrder::fsa});
}

TEST_CASE("sparse GPU: psa (progressive budget, split and FSA orders) against the oracle") {
  for (size_t i = 0; i < cases().size(); ++i)
    check_case(i, sparse::Budget::progressive, {gpu::SparseOrder::split, gpu::SparseOrder::fsa});
}

TEST_CASE("sparse GPU: an fp8 KV cache is refused with one line") {
  const Shape shape = shape_of(8, 2, 64, 16, DType::fp16, KvDType::fp8_e4m3);
  const Workload w = make_workload(parse_tree_spec("1,2_100,50"), shape, kSeed, true);
  sparse::SparseOptions o;
  o.clamp = true;
  require_error([&] { gpu::SparseRunner runner(w, o); }, "fp8 KV cache is not supported", ErrorKind::unsupported);
}
